"""The offline `vla-steer` subcommands, called in-process through `main()`."""

from __future__ import annotations

import json

import pytest

from vla_steer_tools.cli import common, main as cli_main, steer_text
from vla_steer_tools.steering.directions import Direction, load_direction, save_direction
from vla_steer_tools.types import NeuronRef


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_core_commands_registered():
    parser = cli_main.build_parser()
    names = set(parser._subparsers._group_actions[0].choices)
    assert {"project", "concepts", "steer-text", "directions"} <= names


def test_directions_import_export_round_trip(tmp_path, capsys):
    flat = {"up_10": [18 * 11008 + 3, 27 * 11008 + 42], "low_cluster": [0, 15 * 11008 + 1]}
    src = tmp_path / "paper.json"
    src.write_text(json.dumps(flat))
    code, out, _ = run(capsys, "directions", "import", str(src), "--width", "11008", "--layers", "32", "--out-dir", str(tmp_path / "d"))
    assert code == 0 and "up_10.yaml (2 neurons)" in out
    up = load_direction(tmp_path / "d" / "up_10.yaml")
    assert up.neurons == (NeuronRef("backbone", 18, 3), NeuronRef("backbone", 27, 42))
    code, _, _ = run(capsys, "directions", "export", str(tmp_path / "d" / "up_10.yaml"), str(tmp_path / "d" / "low_cluster.yaml"), "--out", str(tmp_path / "back.json"))
    assert code == 0 and json.loads((tmp_path / "back.json").read_text()) == flat


def test_errors_are_reported_not_raised(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": [40 * 100]}))
    code, _, err = run(capsys, "directions", "import", str(bad), "--width", "100", "--layers", "4", "--out-dir", str(tmp_path))
    assert code == 2 and "error: x: flat index 4000 out of range" in err
    code, _, err = run(capsys, "concepts", "show", str(tmp_path / "missing"), "--layer", "0", "--neuron", "0")
    assert code == 2 and "not a finished projection" in err


@pytest.mark.slow
def test_project_find_show_steer_on_smollm2(smollm2, smollm2_projection, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(common, "load_causal_lm", lambda *a, **k: smollm2)  # reuse the loaded model
    monkeypatch.setattr(steer_text, "load_causal_lm", lambda *a, **k: smollm2)
    code, out, _ = run(capsys, "project", "--model", "smollm2", "--layers", "25", "--top-k", "5", "--out", str(tmp_path / "p"))
    assert code == 0 and "top_tokens.txt" in out
    lines = (tmp_path / "p" / "top_tokens.txt").read_text().splitlines()
    assert len(lines) == 1536 and lines[0].startswith(f"[{25 * 1536}] ")

    proj_dir = str(smollm2_projection.path)
    yaml_out = tmp_path / "dirs" / "fast.yaml"
    code, out, _ = run(capsys, "concepts", "find", "--projection", proj_dir, "--concept", "fast", "--size", "5", "--out", str(yaml_out), "--controls", "1")
    assert code == 0 and "backbone/L25/N1187" in out
    fast = load_direction(yaml_out)
    assert len(fast.neurons) == 5 and fast.model_shapes == (("backbone", 30, 1536),)
    control = load_direction(yaml_out.with_name("fast_random0.yaml"))
    assert sorted(r.layer for r in control.neurons) == sorted(r.layer for r in fast.neurons)

    code, out, _ = run(capsys, "concepts", "show", proj_dir, "--layer", "25", "--neuron", "1187", "--k", "3")
    assert code == 0 and "bottom ' fast' -" in out

    code, _, err = run(capsys, "concepts", "find", "--projection", proj_dir, "--concept", "robotarmx", "--method", "semantic")
    assert code == 2 and "not a single token" in err

    code, out, _ = run(capsys, "steer-text", "--model", "smollm2", "--directions", str(yaml_out), "--alpha", "8", "--max-new-tokens", "4", "The robot moves")
    assert code == 0 and "== unsteered" in out and "== steered" in out
    assert "steered=True" in out and "steered=False" in out

    nan = Direction("nan", fast.neurons)
    save_direction(nan, tmp_path / "nan.yaml")
    text = (tmp_path / "nan.yaml").read_text().replace("alpha: 10.0", "alpha: .nan")
    (tmp_path / "nan.yaml").write_text(text)
    code, _, err = run(capsys, "steer-text", "--model", "smollm2", "--directions", str(tmp_path / "nan.yaml"), "The robot")
    assert code == 2 and "alpha must be finite" in err
