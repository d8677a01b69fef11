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
