"""Concept discovery on a synthetic model with planted concept neurons (answers known)."""

from __future__ import annotations

import re

import pytest

from core_synthetic import N_LAYERS, WIDTH, synthetic_adapter
from vla_steer_tools.errors import ConfigError, UnknownChoiceError
from vla_steer_tools.interp import concepts as C
from vla_steer_tools.interp.projection import Projection, ProjectionOptions, project
from vla_steer_tools.steering.hooks import Steerer, SteeringConfig
from vla_steer_tools.types import NeuronRef


@pytest.fixture(scope="module")
def proj(tmp_path_factory):
    out = tmp_path_factory.mktemp("proj") / "synthetic"
    return Projection.load(project(synthetic_adapter(), out, ProjectionOptions(top_k=5)))


def B(layer, index):
    return NeuronRef("backbone", layer, index)


@pytest.mark.parametrize(
    "raw, norm", [("Ġfast", "fast"), ("▁Quickly", "quickly"), (" SPEED ", "speed"), ("up", "up"), ("▁", "")]
)
def test_normalize_token(raw, norm):
    assert C.normalize_token(raw) == norm


def test_word_forms():
    assert {"fast", "faster", "quick", "quickly", "speed"} <= set(C.word_forms("Fast"))
    assert {"up", "upward", "raise", "lift", "high"} <= set(C.word_forms("up"))
    assert {"down", "lower", "low"} <= set(C.word_forms("down"))
    assert {"slow", "slowly"} <= set(C.word_forms("slow"))
    assert C.word_forms("grip")[:3] == ("grip", "grips", "gripes")


def test_keyword_finds_planted_neurons_with_signs(proj):
    hits = C.find_concept(proj, "fast", size=5)
    refs = [h.ref for h in hits]
    assert refs[:2] == [B(1, 5), B(3, 7)], refs
    assert hits[0].sign == 1.0 and hits[1].sign == -1.0
    up = [h.ref for h in C.find_concept(proj, "up", size=5)]
    assert up[0] == B(2, 2)
    assert B(2, 11) not in up, "a neuron promoting both up and down is not an up neuron"
    assert C.find_concept(proj, "slow", size=1)[0].ref == B(0, 9)


def test_semantic_cluster_finds_planted_neurons(proj):
    hits = C.find_concept(proj, "fast", size=2, method="semantic")
    assert {h.ref for h in hits} == {B(1, 5), B(3, 7)}
    assert {h.ref: h.sign for h in hits} == {B(1, 5): 1.0, B(3, 7): -1.0}
    assert all(h.score > 0.8 for h in hits)


def test_pools(proj):
    assert C.pool_layers(4, "early") == [0, 1] and C.pool_layers(4, "late") == [2, 3]
    assert C.pool_layers(5, "full") == [0, 1, 2, 3, 4]
    assert [h.ref for h in C.find_concept(proj, "fast", size=1, pool="early")] == [B(1, 5)]
    assert [h.ref for h in C.find_concept(proj, "fast", size=1, pool="late")] == [B(3, 7)]
    with pytest.raises(UnknownChoiceError, match="did you mean 'early'"):
        C.pool_layers(4, "earyl")


def test_direction_and_random_control(proj):
    hits = C.find_concept(proj, "fast", size=3)
    d = C.direction_from_hits(proj, "fast", hits, "keyword test")
    assert d.signs == tuple(h.sign for h in hits)
    assert d.model_shapes == (("backbone", N_LAYERS, WIDTH),) and proj.id in d.provenance
    widths = C.projection_widths(proj)
    c0, c0b, c1 = (C.random_control(d, widths, seed=s) for s in (0, 0, 1))
    assert c0 == c0b and c0.neurons != c1.neurons
    for control in (c0, c1):
        assert sorted(r.layer for r in control.neurons) == sorted(r.layer for r in d.neurons)
        assert not set(control.neurons) & set(d.neurons)
        assert len(set(control.neurons)) == len(d.neurons) and control.signs == d.signs
    # the direction fits the model it was found in, and is refused by another
    adapter = synthetic_adapter()
    Steerer(adapter, SteeringConfig((d,), enabled=True)).close()


def test_concept_must_be_one_token(proj):
    assert proj.vocab[C.concept_token(proj, "fast")] == "Ġfast"
    with pytest.raises(ConfigError, match="not a single token.*alternatives: .*quickly"):
        C.concept_token(proj, "quick")
    with pytest.raises(ConfigError, match="not a single token"):
        C.find_concept(proj, "zebra", method="semantic")


def test_empty_results_and_bad_input(proj):
    with pytest.raises(ConfigError, match="no token of this vocabulary"):
        C.find_concept(proj, "zebra")
    with pytest.raises(ConfigError, match="no neuron in pool 'early'"):
        C.find_concept(proj, "up", pool="early", min_hits=2)
    with pytest.raises(UnknownChoiceError, match="discovery method"):
        C.find_concept(proj, "fast", method="magic")
    with pytest.raises(ConfigError, match="cluster size"):
        C.find_concept(proj, "fast", size=0)


def test_neuron_report(proj):
    text = C.neuron_report(proj, B(3, 7), k=3)
    assert "flat index 79" in text and "RANDOM WEIGHTS" in text
    assert re.search(r"bottom 'Ġfast' -\d\.\d\d, 'ĠFast' -\d\.\d\d, ' Speed' -\d\.\d\d$", text, re.M), text
    with pytest.raises(ConfigError, match="out of range"):
        C.neuron_report(proj, B(0, WIDTH))
