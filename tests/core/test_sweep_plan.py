"""The sweep's plan (cells decided before any episode) and its resumable results table."""

from __future__ import annotations

import json

import pytest

from vla_steer_tools.analysis.collect import parse_condition
from vla_steer_tools.errors import ConfigError, VlaSteerError
from vla_steer_tools.steering.directions import Direction, DirectionLibrary, save_direction
from vla_steer_tools.sweeps.plan import parse_episodes, plan_cells, subset
from vla_steer_tools.sweeps.table import ResultsTable
from vla_steer_tools.types import NeuronRef

WIDTHS = {("backbone", 0): 64, ("backbone", 1): 64}


@pytest.fixture()
def library(tmp_path):
    neurons = tuple(NeuronRef("backbone", i % 2, 3 * i) for i in range(6))
    save_direction(Direction("fast", neurons, alpha=10.0, signs=(1, -1, 1, -1, 1, -1)), tmp_path / "fast.yaml")
    return DirectionLibrary([str(tmp_path)])


def test_cells_cover_concept_size_alpha_and_matched_controls(library):
    cells = plan_cells(library, WIDTHS, ["fast"], [2.0, 8.0], [2, 4], controls=2, prompt_baseline=True)
    names = [c.name for c in cells]
    assert names[0] == "baseline" and names[-1] == "adverb 'quickly'"
    assert "fast n=2 a=8" in names and "fast n=4 random1 a=2" in names
    assert len(cells) == 1 + 2 * 2 * (1 + 2) + 1
    by = {c.name: c for c in cells}
    concept, control = by["fast n=4 a=2"].directions[0], by["fast n=4 random1 a=2"].directions[0]
    assert [n.index for n in concept.neurons] == [0, 3, 6, 9] and concept.alpha == 2.0
    # matched: same layers in the same order, same count and signs and alpha, other neurons
    assert [n.layer for n in control.neurons] == [n.layer for n in concept.neurons]
    assert control.signs == concept.signs and control.alpha == 2.0
    assert not set(control.neurons) & set(concept.neurons)
    # a control seed picks the same neurons at every alpha (its dose-response is one set's)
    assert by["fast n=4 random1 a=8"].directions[0].neurons == control.neurons
    assert by["fast n=4 random0 a=2"].directions[0].neurons != control.neurons
    # the names parse as `vla-steer analyze` expects, the set size kept in the concept label
    assert parse_condition("fast n=4 random1 a=2") == ("control", "fast n=4", 2.0, 1)
    assert parse_condition("fast n=4 a=8") == ("concept", "fast n=4", 8.0, -1)


@pytest.mark.parametrize("kwargs, match", [
    ({"alphas": [0.0]}, "alpha 0"), ({"alphas": [float("nan")]}, "alpha"), ({"sizes": [7]}, "6 neurons"),
    ({"sizes": [0]}, "set size"), ({"concepts": ["slow"]}, "no direction 'slow'"), ({"controls": -1}, "controls"),
    ({"alphas": [2.0, 2.0]}, "duplicate")])
def test_bad_plans_are_clear_errors(library, kwargs, match):
    args = {"concepts": ["fast"], "alphas": [2.0], "sizes": [], "controls": 1, "prompt_baseline": False, **kwargs}
    with pytest.raises(VlaSteerError, match=match):  # ConfigError, or DirectionError for an alpha
        plan_cells(library, WIDTHS, args["concepts"], args["alphas"], args["sizes"], args["controls"],
                   args["prompt_baseline"])


def test_subset_keeps_order_and_signs(library):
    d = subset(library.get("fast"), 3)
    assert d.signs == (1, -1, 1) and len(d.neurons) == 3 and d.name == "fast_n3"


def test_episode_starts_parse_and_refuse_bad_items():
    keys = parse_episodes("30-32,7,random:2", seed=3)
    assert [k.label for k in keys] == ["init30", "init31", "init32", "init7", "rand3-0", "rand3-1"]
    assert keys[-1].placement_seed == 3001 and keys[0].init_state == 30
    for bad in ("x", "", "3,3", "random:z"):
        with pytest.raises(ConfigError):
            parse_episodes(bad, seed=0)


def _plan(cells=("baseline", "fast n=2 a=2"), episodes=("init0", "init1")) -> dict:
    return {"setup": {"suite": "s"}, "episodes": [{"label": e} for e in episodes],
            "cells": [{"name": c, "kind": "baseline" if c == "baseline" else "concept", "concept": "", "size": 0,
                       "alpha": 0.0, "seed": -1} for c in cells]}


def _row(cell, ep, speed=0.1, success=True) -> dict:
    return {"cell": cell, "episode": ep, "success": success, "steps": 10, "early_speed_m_s": speed,
            "mean_speed_m_s": speed, "carry_height_m": None, "max_height_m": 0.2, "path_length_m": 0.5, "wall_s": 1.0}


def test_the_table_resumes_skips_finished_episodes_drops_a_torn_line_and_refuses_another_plan(tmp_path):
    t = ResultsTable(tmp_path, _plan())
    pairs = [(c, e) for c in ("baseline", "fast n=2 a=2") for e in ("init0", "init1")]
    assert t.todo(pairs) == pairs
    t.add(_row("baseline", "init0"))
    assert not (tmp_path / "cells.csv").exists()  # the cell is not finished yet
    t.add(_row("baseline", "init1", speed=0.3))
    assert (tmp_path / "cells.csv").read_text().count("\n") == 2  # header + the finished cell
    with (tmp_path / "results.jsonl").open("a") as f:
        f.write('{"cell": "fast n=2 a=2", "episo')  # killed mid-write
    again = ResultsTable(tmp_path, _plan())
    assert again.todo(pairs) == pairs[2:]
    assert again.cell_summary("baseline")["early_speed_m_s"] == pytest.approx(0.2)
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["label"] for r in results["baseline"]] == ["init0", "init1"]
    with pytest.raises(ConfigError, match="another plan"):
        ResultsTable(tmp_path, _plan(episodes=("init0", "init2")))
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        ResultsTable(tmp_path / "a_file", _plan())


def _verdict_table(tmp_path, effect: float, control_effects: list[float], n: int = 6):
    from vla_steer_tools.sweeps.table import ResultsTable

    names = ["baseline", "fast n=2 a=2", *[f"fast n=2 random{k} a=2" for k in range(len(control_effects))]]
    plan = {"setup": {}, "episodes": [{"label": f"init{i}"} for i in range(n)],
            "cells": [{"name": c, "kind": "baseline" if c == "baseline" else ("control" if "random" in c else "concept"),
                       "concept": "" if c == "baseline" else "fast", "size": 2, "alpha": 2.0,
                       "seed": -1 if "random" not in c else int(c.split("random")[1][0])} for c in names]}
    t = ResultsTable(tmp_path, plan)
    noise = [0.001, -0.002, 0.0015, -0.001, 0.002, -0.0005][:n]
    for i in range(n):
        t.add(_row("baseline", f"init{i}", speed=0.15 + noise[i]))
        t.add(_row("fast n=2 a=2", f"init{i}", speed=0.15 + effect + noise[(i + 1) % n]))
        for k, ce in enumerate(control_effects):
            t.add(_row(f"fast n=2 random{k} a=2", f"init{i}", speed=0.15 + ce + noise[(i + 2) % n]))
    return t


def test_sweep_verdict_passes_a_planted_effect_and_fails_one_inside_its_controls(tmp_path):
    from vla_steer_tools.sweeps.verdicts import sweep_verdicts, verdict_markdown

    (c, v), = sweep_verdicts(_verdict_table(tmp_path / "a", 0.03, [0.0, 0.002, -0.001, 0.001, 0.0]))
    assert c["name"] == "fast n=2 a=2" and v.passed
    (_, v), = sweep_verdicts(_verdict_table(tmp_path / "b", 0.03, [0.0, 0.04, -0.001, 0.001, 0.0]))
    assert not v.passed and not v.beyond_controls
    assert "within controls" in verdict_markdown([(c, v)], 6)
    # one or two episode starts: no verdict at all (a CI of one pair is its point)
    assert sweep_verdicts(_verdict_table(tmp_path / "c", 0.03, [0.0], n=2)) == []
    assert "no verdict" in verdict_markdown([], 2)
