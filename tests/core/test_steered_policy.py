"""SteeredPolicy: live config swaps between inferences, telemetry, the steered flag."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from vla_steer_tools.errors import DirectionError
from vla_steer_tools.policy import Policy, SteeredPolicy
from vla_steer_tools.steering.directions import Direction
from vla_steer_tools.steering.hooks import SteeringConfig
from vla_steer_tools.types import ActionChunk, NeuronRef, Observation


class TinyLMPolicy(Policy):
    """A 'policy' whose action is the tiny LM's last-position logits (enough to see edits)."""

    action_space = "logits"

    def __init__(self, model, adapter):
        self.model, self._adapter = model, adapter
        self.started = threading.Event()
        self.release = threading.Event()
        self.block = False

    @property
    def adapter(self):
        return self._adapter

    def infer(self, observation: Observation) -> ActionChunk:
        if self.block:
            self.started.set()
            self.release.wait(timeout=10)
        ids = torch.tensor([[int(c) % 96 for c in observation.instruction.encode()]])
        with torch.no_grad():
            logits = self.model(input_ids=ids).logits[0, -1:]  # (1, vocab)
        return ActionChunk(actions=logits.numpy().astype(np.float32), action_space=self.action_space)


OBS = Observation(images={}, instruction="pick up the bowl")


def test_update_applies_at_next_inference(tiny_llama):
    model, adapter = tiny_llama
    fast = Direction("fast", (NeuronRef("backbone", 1, 3), NeuronRef("backbone", 2, 5)), alpha=8.0)
    policy = TinyLMPolicy(model, adapter)
    with SteeredPolicy(policy, SteeringConfig((fast,), enabled=False)) as sp:
        r0 = sp.infer(OBS)
        assert r0.index == 0 and not r0.chunk.steered and not r0.config_changed
        assert r0.activations["fast"].count > 0 and not r0.activations["fast"].steered

        # An update arriving while an inference runs must not affect that inference.
        policy.block = True
        result = {}
        worker = threading.Thread(target=lambda: result.setdefault("r", sp.infer(OBS)))
        worker.start()
        assert policy.started.wait(timeout=10)
        sp.update(SteeringConfig((fast,), enabled=True))
        policy.release.set()
        worker.join(timeout=10)
        policy.block = False
        r1 = result["r"]
        assert not r1.chunk.steered
        np.testing.assert_array_equal(r1.chunk.actions, r0.chunk.actions)

        r2 = sp.infer(OBS)
        assert r2.chunk.steered and r2.config_changed and r2.config.enabled and r2.index == 2
        assert np.abs(r2.chunk.actions - r0.chunk.actions).max() > 1e-3
        assert r2.activations["fast"].steered
        assert not sp.infer(OBS).config_changed
    assert all(len(m._forward_pre_hooks) == 0 for m in adapter.layers("backbone"))


def test_update_validates_immediately(tiny_llama):
    model, adapter = tiny_llama
    sp = SteeredPolicy(TinyLMPolicy(model, adapter))
    try:
        bad = Direction("bad", (NeuronRef("backbone", 0, 10_000),))
        with pytest.raises(DirectionError, match="out of range"):
            sp.update(SteeringConfig((bad,), enabled=True))
        assert sp.config.directions == ()
    finally:
        sp.close()


def test_state_says_exactly_which_inference_first_runs_with_it(tiny_llama):
    """An update made while inference N runs applies from N+1, one made between inferences from
    the next one; `update()`/`status()` say so exactly (the node used to read a counter that the
    running inference bumps only at its end, and announced N while N+1 was the first steered)."""
    model, adapter = tiny_llama
    fast = Direction("fast", (NeuronRef("backbone", 1, 3),), alpha=8.0)
    policy = TinyLMPolicy(model, adapter)
    with SteeredPolicy(policy, SteeringConfig((fast,), enabled=False)) as sp:
        assert sp.status().since == 0 and sp.infer(OBS).index == 0
        # between inferences: the next one (1)
        on = SteeringConfig((fast,), enabled=True)
        assert sp.update(on) == 1 and sp.status() == type(sp.status())(on, 1)
        r1 = sp.infer(OBS)
        assert r1.index == 1 and r1.chunk.steered and r1.config_changed and r1.config_since == 1
        assert sp.update(on) == 1, "an unchanged config keeps the inference it started at"

        # during inference 2: applies from 3, and the announcement made mid-inference says 3
        policy.block = True
        result = {}
        worker = threading.Thread(target=lambda: result.setdefault("r", sp.infer(OBS)))
        worker.start()
        assert policy.started.wait(timeout=10)
        off = SteeringConfig((fast,), enabled=False)
        since = sp.update(off)
        status = sp.status()
        policy.release.set()
        worker.join(timeout=10)
        policy.block = False
        assert result["r"].index == 2 and result["r"].chunk.steered
        assert since == status.since == 3 and status.config == off
        r3 = sp.infer(OBS)
        assert r3.index == 3 and not r3.chunk.steered and r3.config_changed and r3.config_since == 3
        # back to the running config before it was swapped in: nothing changes, index kept
        sp.update(on)
        assert sp.update(off) == 3 and not sp.infer(OBS).config_changed


def test_a_failed_inference_still_takes_its_index(tiny_llama):
    """So the index announced for a queued config stays exact even if that inference fails."""
    model, adapter = tiny_llama
    policy = TinyLMPolicy(model, adapter)
    fast = Direction("fast", (NeuronRef("backbone", 1, 3),), alpha=8.0)
    with SteeredPolicy(policy) as sp:
        assert sp.update(SteeringConfig((fast,), enabled=True)) == 0
        with pytest.raises(AttributeError):
            sp.infer(None)  # a bad observation: the model call fails
        assert sp.status().since == 0 and sp.infer(OBS).index == 1
