"""The steering study's plan and verdict: fixed before any episode, never a verdict on partial data."""

import math

from vla_policy.steering_study import concept_name, control_name, plan_conditions, verdict


def test_plan_has_every_concept_alpha_with_its_controls_and_one_adverb():
    conds = plan_conditions(["fast", "slow"], [3.0, 10.0], controls=5)
    names = [c["name"] for c in conds]
    assert names[0] == "baseline" and len(names) == len(set(names))
    for concept in ("fast", "slow"):
        for alpha in (3.0, 10.0):
            assert concept_name(concept, alpha) in names
            assert all(control_name(concept, k, alpha) in names for k in range(5))
    assert names.count("adverb 'quickly'") == 1 and names.count("adverb 'slowly'") == 1
    assert len(names) == 1 + 2 * (2 * (1 + 5) + 1)
    # control k is the same neuron set at every alpha: one direction file per seed
    ctrl = [c for c in conds if c.get("kind") == "control"]
    assert {tuple(c["concepts"]) for c in ctrl} == {(f"{c}_random{k}",) for c in ("fast", "slow") for k in range(5)}


def _res(concept_speeds, ctrl_speeds, base=(0.15, 0.151, 0.149), concept="fast", alpha=10.0):
    r = {"baseline": list(base), concept_name(concept, alpha): list(concept_speeds)}
    for k, v in enumerate(ctrl_speeds):
        r[control_name(concept, k, alpha)] = list(v)
    return r


def test_verdict_yes_only_when_beating_every_control_the_concepts_way():
    ctrls = [(0.152, 0.153, 0.152)] * 5
    assert verdict("fast", 10.0, _res((0.17, 0.171, 0.169), ctrls), 5)["status"] == "yes"
    ctrls_one_higher = ctrls[:4] + [(0.18, 0.181, 0.179)]
    assert verdict("fast", 10.0, _res((0.17, 0.171, 0.169), ctrls_one_higher), 5)["status"] == "no"
    # slow must go down: a faster 'slow' is a no even when it beats the controls upwards
    assert verdict("slow", 10.0, _res((0.17, 0.171, 0.169), ctrls, concept="slow"), 5)["status"] == "no"
    assert verdict("slow", 10.0, _res((0.12, 0.121, 0.119), ctrls, concept="slow"), 5)["status"] == "yes"


def test_verdict_is_incomplete_with_missing_controls_and_not_run_without_the_concept():
    v = verdict("fast", 10.0, _res((0.17, 0.171, 0.169), [(0.152, 0.153, 0.152)] * 3), 5)
    assert v["status"] == "incomplete" and len(v["controls"]) == 3
    assert verdict("fast", 3.0, _res((0.17, 0.171, 0.169), []), 5)["status"] == "not run"


def test_verdict_needs_significance_against_the_baseline():
    noisy = _res((0.16, 0.14, 0.18), [(0.151, 0.15, 0.152)] * 5, base=(0.15, 0.13, 0.17))
    v = verdict("fast", 10.0, noisy, 5)
    assert v["p"] > 0.05 and v["status"] == "no" and not math.isnan(v["p"])
