"""Pacing rules of the control loop (no ROS)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from vla_policy.chunk_runner import ChunkRunner


def _outcome(horizon: int) -> SimpleNamespace:
    actions = np.arange(horizon * 2, dtype=np.float32).reshape(horizon, 2)
    return SimpleNamespace(result=SimpleNamespace(chunk=SimpleNamespace(actions=actions, horizon=horizon)))


def test_timer_mode_sends_one_step_per_tick_up_to_execute_steps():
    r = ChunkRunner(control_hz=10.0, execute_steps=3, lockstep=False)
    assert not r.due(0.0, True, True) and r.wants_inference(0.0, False, float("nan"))
    r.new_chunk(_outcome(5))
    assert not r.due(0.01, from_timer=False, fresh=True)  # only ticks send
    sent = [r.take(t) for t in (0.1, 0.2, 0.3) if r.due(t, True, False)]
    assert [a.tolist() for a in sent] == [[0, 1], [2, 3], [4, 5]]
    assert r.remaining() == 0 and not r.due(0.4, True, True)


def test_timer_mode_prefetches_by_the_measured_latency():
    r = ChunkRunner(control_hz=10.0, execute_steps=10, lockstep=False)
    r.new_chunk(_outcome(10))
    r.take(1.0)  # 9 steps (0.9 s) left
    assert not r.wants_inference(1.0, False, latency_s=0.5)
    assert r.wants_inference(1.0, False, latency_s=0.95)
    for t in np.arange(1.1, 1.9, 0.1):
        r.take(float(t))
    assert r.remaining() == 1 and r.wants_inference(1.85, False, latency_s=0.06)


def test_lockstep_waits_for_fresh_frames_and_caps_the_rate():
    r = ChunkRunner(control_hz=10.0, execute_steps=2, lockstep=True)
    assert not r.wants_inference(0.0, fresh=False, latency_s=0.1)
    assert r.wants_inference(0.0, fresh=True, latency_s=0.1)
    r.new_chunk(_outcome(4))
    assert r.due(0.0, from_timer=False, fresh=True)
    r.take(0.0)
    assert not r.due(0.2, True, fresh=False)  # no new observation yet
    assert not r.due(0.05, False, fresh=True)  # faster than control_hz
    assert r.due(0.2, False, fresh=True)
    r.take(0.2)
    assert r.remaining() == 0 and not r.wants_inference(0.3, fresh=False, latency_s=0.1)
    r.configure(10.0, 4, True)
    assert r.remaining() == 2
    r.clear()
    assert r.remaining() == 0
