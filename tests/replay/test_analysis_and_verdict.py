"""Analysis metrics on synthetic data with known answers, and the validation verdict on a planted
effect vs random neurons (issue 10)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_steer_tools.analysis.collect import Episode, collect, parse_condition
from vla_steer_tools.analysis.compare_runs import analyze, common_step_speeds, length_confound, paired_vs_baseline
from vla_steer_tools.analysis.stats import paired_comparison
from vla_steer_tools.replay.action_metrics import action_metrics
from vla_steer_tools.steering.validation import alpha_verdict, summary_line


def test_action_metrics_known_speed_axes_and_gripper():
    a = np.tile([0.3, 0.0, 0.4, 0, 0, 0, 1.0], (4, 1))
    a[2, 6] = -1.0
    m = action_metrics(a)
    assert m["speed"] == pytest.approx(0.5) and m["mean_dz"] == pytest.approx(0.4)
    assert m["gripper_closed_fraction"] == pytest.approx(0.75)


def _ep(cond, pair, speed, steps=100, per_step=()):
    kind, concept, alpha, seed = parse_condition(cond)
    return Episode("s", kind, cond, concept, alpha, seed, pair, "m/s", steps, True, speed, speed,
                   per_step=np.asarray(per_step, float))


def test_length_control_and_confound():
    # run A: 2 mm/step for 50 steps then 0 while it waits; run B: 2 mm/step for 30 steps
    a, b = _ep("A", "a", 0.001, 100, [0.002] * 50 + [0.0] * 50), _ep("B", "b", 0.002, 30, [0.002] * 30)
    n, speeds = common_step_speeds([a, b])
    assert n == 30 and speeds == {"A": pytest.approx(0.002), "B": pytest.approx(0.002)}
    eps = [_ep("baseline", str(i), 0.3 - 0.001 * s, s) for i, s in enumerate((100, 150, 200, 250))]
    fit = length_confound(eps)
    assert fit["slope_per_step"] == pytest.approx(-0.001) and fit["r"] == pytest.approx(-1.0)


def test_paired_comparison_recovers_a_planted_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(0.15, 0.02, 30)  # placements differ a lot ...
    c = paired_comparison(base + 0.01 + rng.normal(0, 0.001, 30), base)  # ... the effect is small but paired
    assert c.ci95[0] < 0.01 < c.ci95[1] and c.excludes_zero() and c.d_z > 5


def test_collect_and_analyze_a_study(tmp_path):
    rows = lambda v: [{"label": f"p{i}", "instruction": "x", "success": i % 2 == 0, "steps": 45, "early_speed_m_s": s,
                       "mean_speed_m_s": s, "carry_height_m": float("nan"), "max_height_m": 0.3, "condition": ""}
                      for i, s in enumerate(v)]
    base = [0.15, 0.16, 0.14, 0.155]
    study = tmp_path / "study"
    study.mkdir()
    (study / "results.json").write_text(json.dumps({"baseline": rows(base), "fast a=8": rows([x * 1.2 for x in base]),
                                                    "fast random0 a=8": rows([x + 0.001 for x in base])}))
    eps = collect(study)
    assert {e.kind for e in eps} == {"baseline", "concept", "control"}
    paired = paired_vs_baseline(eps)
    assert paired["fast a=8"]["relative"] == pytest.approx(0.2)
    text = analyze([study], tmp_path / "out")
    assert "+20.0%" in text and (tmp_path / "out" / "dose_response.png").is_file()


def _controls(rng, base, k=5, spread=0.01):
    return [base + rng.normal(0, spread, 1) + rng.normal(0, 0.001, base.size) for _ in range(k)]


def test_verdict_passes_a_planted_effect_and_fails_random_neurons():
    rng = np.random.default_rng(1)
    base = rng.normal(0.15, 0.02, 20)
    controls = _controls(rng, base)  # random neurons: small perturbations of either sign
    planted = base * 1.15 + rng.normal(0, 0.001, 20)  # the concept neurons really speed the arm up
    ok = alpha_verdict(8, +1, base, planted, controls, {"baseline": 0.9, "concept": 0.9})
    assert ok.passed and ok.intended and ok.beyond_controls and ok.success_kept
    random_like = base + 0.005 + rng.normal(0, 0.001, 20)  # a "concept" no better than the controls
    bad = alpha_verdict(8, +1, base, random_like, controls + [base + 0.02])
    assert not bad.passed and not bad.beyond_controls
    slow_wrong_way = alpha_verdict(8, -1, base, planted, controls)
    assert not slow_wrong_way.passed and not slow_wrong_way.intended
    lost = alpha_verdict(8, +1, base, planted, controls, {"baseline": 0.9, "concept": 0.2})
    assert not lost.passed and lost.success_kept is False
    short = alpha_verdict(8, +1, base, planted, controls, {"baseline": 0.0, "concept": 0.0})  # too short to succeed
    assert short.success_kept is None and "baseline never succeeded" in summary_line("fast", [short], "closed loop")
    assert summary_line("fast", [ok], "open loop").startswith("[validation: PASS open loop; fast at alpha 8")
    assert summary_line("fast", [ok, bad], "open loop").startswith("[validation: FAIL")  # every alpha must pass
