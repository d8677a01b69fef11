"""`vla-steer report layers`: per-layer shares on a synthetic model with planted neurons (answers
known exactly) and on the real SmolLM2-135M projection (speed / direction neurons where it has them)."""

from __future__ import annotations

import json

import pytest
import torch

from core_synthetic import N_LAYERS, WIDTH, synthetic_adapter
from vla_steer_tools.cli import main as cli_main
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.interp import concepts as C
from vla_steer_tools.interp.layer_report import LayerReportOptions, layer_report, write_layer_report
from vla_steer_tools.interp.projection import Projection, ProjectionOptions, project
from vla_steer_tools.interp.token_categories import (
    TokenCategories, action_mask, load_categories, parse_action_range, word_stem,
)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("lr") / "synthetic"
    return Projection.load(project(synthetic_adapter(), out, ProjectionOptions(top_k=5)))


SPEED_ONLY = TokenCategories({"speed": frozenset({"fast", "quickly", "speed"}), "height": frozenset({"up", "raise"})}, "test")


def test_planted_neurons_are_counted_on_the_side_that_carries_them(synth):
    top = layer_report(synth, SPEED_ONLY, LayerReportOptions(category_min=3))
    flags = top.flags
    assert bool(flags[("backbone", 1)]["speed"][5])  # 4 speed words on top
    assert not bool(flags[("backbone", 3)]["speed"][7])  # its speed words are bottom tokens
    speed_ids = torch.tensor([i for i, t in enumerate(synth.vocab) if C.normalize_token(t) in SPEED_ONLY.words["speed"]])

    def share(layer, sides):  # an independent count: >= 3 speed words on any of the sides
        hit = torch.stack([torch.isin(synth.get("backbone", layer, f"{s}_ids").long(), speed_ids).sum(1) >= 3 for s in sides]).any(0)
        return float(hit.float().mean())

    both = layer_report(synth, SPEED_ONLY, LayerReportOptions(category_min=3, sides="both"))
    assert bool(both.flags[("backbone", 3)]["speed"][7])
    for layer in range(N_LAYERS):
        assert top.row("backbone", layer).categories["speed"] == pytest.approx(share(layer, ["top"]))
        assert both.row("backbone", layer).categories["speed"] == pytest.approx(share(layer, ["top", "bottom"]))
    assert both.row("backbone", 3).categories["speed"] > top.row("backbone", 3).categories["speed"]
    assert len(top.rows) == N_LAYERS and all(r.n_neurons == WIDTH for r in top.rows)


def test_meaningful_criterion_is_scaled_to_the_kept_k_and_stated(synth):
    rep = layer_report(synth, SPEED_ONLY)
    # k = 5 < 30: ceil(4 * 5 / 30) = 1 ... a single category word makes a pattern
    assert rep.criteria["meaningful"].startswith(">= 1 of the top 5") and "scaled" in rep.criteria["meaningful"]
    assert bool(rep.flags[("backbone", 2)]["meaningful"][2])  # up + raise
    strict = layer_report(synth, SPEED_ONLY, LayerReportOptions(meaningful_window=5, meaningful_min=3))
    assert strict.criteria["meaningful"].startswith(">= 3 of the top 5")
    assert bool(strict.flags[("backbone", 1)]["meaningful"][5])  # 4 speed words
    assert not bool(strict.flags[("backbone", 2)]["meaningful"][2])  # only 2 height words


def test_word_stems_and_action_tokens():
    assert word_stem(" Fast") == word_stem("Ġfaster") == word_stem("▁fastest") == "fast"
    assert word_stem("ab") == "" and word_stem("123") == "" and word_stem(" ,") == ""
    vocab = ["a", "[action: +0.5000]", "[fast: 12]", "[action]", "b"]
    assert action_mask(vocab).tolist() == [False, True, True, False, False]
    assert action_mask(vocab, parse_action_range("3-4")).tolist() == [False, False, False, True, True]
    with pytest.raises(ConfigError, match="exceeds the vocabulary"):
        action_mask(vocab, (3, 9))
    with pytest.raises(ConfigError, match="bad action-token range"):
        parse_action_range("9-3")


def test_action_share_with_a_declared_range(synth):
    # declare ids 0-2 (Ġfast, ▁quickly, " Speed") "action tokens": neuron 1/5 has all three on top
    rep = layer_report(synth, SPEED_ONLY, LayerReportOptions(action_range=(0, 2), action_min=2))
    expected = torch.isin(synth.get("backbone", 1, "top_ids").long(), torch.tensor([0, 1, 2])).sum(1) >= 2
    assert torch.equal(rep.flags[("backbone", 1)]["action"], expected) and bool(expected[5])
    assert rep.n_action_tokens == 3 and "ids 0-2" in rep.criteria["action_tokens"]


def test_category_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: {speed: fast}\n")
    with pytest.raises(ConfigError, match="non-empty list of words"):
        load_categories(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_categories(tmp_path / "missing.yaml")
    shipped = load_categories()
    assert {"direction", "speed", "height", "gripper", "colour", "objects"} <= set(shipped.names)


@pytest.mark.slow
def test_smollm2_layer_report_shows_speed_and_direction(smollm2_projection, tmp_path, capsys):
    proj = smollm2_projection
    cats = load_categories()
    rep = layer_report(proj, cats, LayerReportOptions(sides="both"))
    speed_words = cats.words["speed"]
    # the pilot's speed neuron (bottom tokens ' fast', ' faster', ' quick', ' speed') is a speed neuron
    assert bool(rep.flags[("backbone", 25)]["speed"][1187])
    assert not bool(layer_report(proj, cats).flags[("backbone", 25)]["speed"][1187])  # top side only: no
    # every layer that has a neuron with >= 2 speed words (either side) shows a speed share > 0, and only those
    speed_mask = torch.tensor([C.normalize_token(t) in speed_words for t in proj.vocab])
    for layer in proj.layers():
        has = any((speed_mask[proj.get("backbone", layer, f"{s}_ids").long()].sum(1) >= 2).any() for s in ("top", "bottom"))
        assert (rep.row("backbone", layer).categories["speed"] > 0) == bool(has), layer
    assert max(r.categories["speed"] for r in rep.rows) > 0
    assert max(r.categories["direction"] for r in rep.rows) > 0
    assert all(r.action == 0 for r in rep.rows) and rep.n_action_tokens == 0  # a text LM has no action tokens

    files = write_layer_report(proj, tmp_path / "out", rep)
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    assert (tmp_path / "out" / "layer_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "out" / "layer_report.md").read_text()
    assert "meaningful: >= 2 of the top 10 tokens share one pattern" in md and "| backbone | 25 |" in md

    code = cli_main.main(["report", "layers", str(proj.path), "--out", str(tmp_path / "cli"), "--sides", "both"])
    assert code == 0
    data = json.loads((tmp_path / "cli" / "layer_report.json").read_text())
    assert [r["layer"] for r in data["rows"]] == proj.layers()
    assert "last layer" in capsys.readouterr().out
