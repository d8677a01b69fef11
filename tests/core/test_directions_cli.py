"""`vla-steer directions import|export` as a hostile user runs it (issue 9, item 5)."""

from __future__ import annotations

import json

import pytest

from vla_steer_tools.cli import main as cli_main
from vla_steer_tools.steering.directions import Direction, load_direction, save_direction
from vla_steer_tools.types import NeuronRef


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _import(capsys, src, out_dir, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "directions", "import", str(src), "--width", "100", "--layers", "4", "--out-dir", str(out_dir), *extra)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@pytest.mark.parametrize("text_value, shown", [
    ("39587.7", "39587.7"), ("true", "True"), ("null", "None"), ('"abc"', "'abc'"),
    ("1e30", "1e+30"), ("1.5e2", "150.0"),
])
def test_import_bad_value_is_a_clear_error_naming_cluster_and_position(tmp_path, capsys, suffix, text_value, shown):
    src = tmp_path / f"paper{suffix}"
    src.write_text(f'{{"ok": [1], "up": [5, {text_value}]}}')  # JSON is YAML too
    code, out, err = _import(capsys, src, tmp_path / "out")
    assert code == 2 and "Traceback" not in err
    assert f"cluster 'up', position 1 in paper{suffix}: {shown} is not an integer flat index" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir()), "wrote files despite the error"


@pytest.mark.parametrize("name, text, message", [
    ("inf.yaml", "up: [5, .inf]\n", "inf is not an integer flat index"),
    ("nan.json", '{"up": [NaN]}', "nan is not an integer flat index"),
    ("bad.json", '{"up": [1, 2', "not valid JSON: Expecting"),
    ("bad.yaml", "up: [1, 2\n", "not valid YAML"),
    ("dupe.json", '{"up": [1], "up": [2]}', "duplicate keys ['up']"),
    ("dupe.yaml", "up: [1]\nup: [2]\n", "duplicate key 'up'"),
    ("twice.json", '{"up": [7, 3, 7]}', "flat index 7 listed twice (cluster 'up', positions 0 and 2"),
    ("list.json", "[1, 2]", "expected a mapping"),
    ("bin.json", None, "not UTF-8"),
])
def test_import_bad_files(tmp_path, capsys, name, text, message):
    src = tmp_path / name
    if text is None:
        src.write_bytes(b"\xff\xfe{")
    else:
        src.write_text(text)
    code, _, err = _import(capsys, src, tmp_path / "out")
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["../escaped", "sub/x", ".hidden", "..", "a\\b"])
def test_import_never_writes_outside_out_dir(tmp_path, capsys, name):
    src = tmp_path / "paper.json"
    src.write_text(json.dumps({"fine": [1], name: [2]}))
    out_dir = tmp_path / "deep" / "out"
    code, _, err = _import(capsys, src, out_dir)
    assert code == 2 and f"cluster name {name!r} is not allowed" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["paper.json"], "a file was written"


def _fast() -> Direction:
    refs = tuple(NeuronRef("backbone", layer, i) for layer, i in [(1, 5), (0, 7), (3, 99), (2, 0), (1, 6), (0, 8)])
    return Direction("fast", refs, alpha=8.0, mode="add", signs=(-1.0,) * 6, provenance="keyword 'fast'",
                     model_id="m", description="speed", model_shapes=(("backbone", 4, 100),))


def test_export_keeps_signs_alpha_mode_in_a_sidecar_that_import_reads(tmp_path, capsys):
    save_direction(_fast(), tmp_path / "fast.yaml")
    out = tmp_path / "flat" / "dirs.json"
    code, stdout, err = run(capsys, "directions", "export", str(tmp_path / "fast.yaml"), "--out", str(out))
    assert code == 0 and json.loads(out.read_text()) == {"fast": [105, 7, 399, 200, 106, 8]}
    side = tmp_path / "flat" / "dirs.meta.json"
    assert side.is_file() and "sidecar" in stdout
    assert "warning: the flat format holds neuron ids only; fast (6 non-+1 signs, alpha 8, mode add)" in err
    code, stdout, _ = run(capsys, "directions", "import", str(out), "--out-dir", str(tmp_path / "back"))  # width from the sidecar
    assert code == 0 and "read signs, alpha and mode from" in stdout
    assert load_direction(tmp_path / "back" / "fast.yaml") == _fast()
    # without the sidecar the flat file alone gives the defaults (what the paper's files hold)
    code, _, _ = run(capsys, "directions", "import", str(out), "--width", "100", "--no-sidecar", "--out-dir", str(tmp_path / "bare"))
    bare = load_direction(tmp_path / "bare" / "fast.yaml")
    assert code == 0 and bare.neurons == _fast().neurons and bare.signs == () and bare.mode == "override"


def test_export_errors(tmp_path, capsys):
    save_direction(_fast(), tmp_path / "a" / "fast.yaml")
    save_direction(Direction("fast", (NeuronRef("backbone", 0, 1),)), tmp_path / "b" / "fast.yaml")
    code, _, err = run(capsys, "directions", "export", str(tmp_path / "a" / "fast.yaml"), str(tmp_path / "b" / "fast.yaml"),
                       "--width", "100", "--out", str(tmp_path / "x.json"))
    assert code == 2 and "both hold direction 'fast'" in err and not (tmp_path / "x.json").exists()
    code, _, err = run(capsys, "directions", "export", str(tmp_path / "a" / "fast.yaml"), "--width", "11008",
                       "--out", str(tmp_path / "x.json"))
    assert code == 2 and "width 11008 does not match its recorded model shape backbone 4 layers x 100" in err
    assert not (tmp_path / "x.json").exists()


def test_import_research_code_token_form(tmp_path, capsys):
    src = tmp_path / "clusters.json"
    src.write_text(json.dumps({"up_10": {"105": ["up", "upward"], "3": ["high", "lift"]}}))
    code, stdout, _ = _import(capsys, src, tmp_path / "out")
    assert code == 0 and "up_10.yaml (2 neurons)" in stdout
    d = load_direction(tmp_path / "out" / "up_10.yaml")
    assert d.neurons == (NeuronRef("backbone", 1, 5), NeuronRef("backbone", 0, 3)) and "upward" in d.provenance
