"""Pacing rules of the control loop (no ROS)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

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


# ---------------------------------------------------------------- early chunks (issue 9, item 8)
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _tagged(chunk_id: int, horizon: int, observed_s: float = 0.0) -> SimpleNamespace:
    """A chunk whose row r is the action [chunk_id, r], observed at `observed_s`."""
    actions = np.array([[chunk_id, r] for r in range(horizon)], dtype=np.float32)
    return SimpleNamespace(result=SimpleNamespace(chunk=SimpleNamespace(actions=actions, horizon=horizon)),
                           observed_s=observed_s)


def simulate(latencies: list[float], execute_steps: int = 4, horizon: int = 10, hz: float = 10.0,
             ticks: int = 60) -> list[tuple[int, int]]:
    """Drive the runner like the node does, on a fake clock: a control tick every period, one
    inference at a time whose result arrives `latency` after it was requested. Returns the
    (chunk id, row) of every step sent."""
    runner = ChunkRunner(hz, execute_steps, lockstep=False)
    period, sent, in_flight, measured, started = 1.0 / hz, [], None, float("nan"), 0
    for k in range(ticks):
        now = k * period
        if in_flight is not None and in_flight[0] <= now:
            runner.new_chunk(in_flight[1])
            in_flight = None
        if runner.due(now, from_timer=True, fresh=True):
            chunk_id, row = runner.take(now)
            sent.append((int(chunk_id), int(row)))
        if in_flight is None and runner.wants_inference(now, True, measured):
            latency = latencies[started % len(latencies)]
            in_flight = (now + latency, _tagged(started, horizon, now))
            measured, started = latency, started + 1
    return sent


def _assert_whole_chunks_in_order(sent: list[tuple[int, int]], execute_steps: int) -> None:
    """Every chunk sends rows 0..execute_steps-1 in order, chunks never interleave (the last one
    may be cut by the end of the simulation)."""
    runs: list[list[int]] = []
    ids: list[int] = []
    for chunk_id, row in sent:
        if not ids or ids[-1] != chunk_id:
            assert chunk_id not in ids, f"chunk {chunk_id} resumed after another: {sent}"
            ids.append(chunk_id)
            runs.append([])
        runs[-1].append(row)
    assert ids == sorted(ids), sent
    for rows in runs[:-1]:
        assert rows == list(range(execute_steps)), f"a chunk was cut short or reordered: {sent}"
    assert runs[-1] == list(range(len(runs[-1])))


def test_an_early_chunk_waits_until_the_current_one_is_done():
    r = ChunkRunner(control_hz=10.0, execute_steps=3, lockstep=False)
    r.new_chunk(_tagged(0, 5))
    assert r.take(0.1).tolist() == [0, 0]
    r.new_chunk(_tagged(1, 5))  # arrives after one step: waits
    assert not r.wants_inference(0.15, True, 0.0)  # a chunk is already waiting
    r.new_chunk(_tagged(2, 5))  # a fresher early chunk replaces the waiting one
    sent = [r.take(t).tolist() for t in (0.2, 0.3, 0.4, 0.5, 0.6) if r.due(t, True, True)]
    assert sent == [[0, 1], [0, 2], [2, 0], [2, 1], [2, 2]]
    assert r.remaining() == 0 and r.wants_inference(0.7, True, 0.0)


def test_the_flaky_node_case_is_now_determined():
    """The failing `make test` run: a slow first inference (1 s), then fast ones (20 ms). A fresh
    chunk must not trigger an immediate prefetch, and an early one must not replace the first
    after one step (rows [0, 0, 1, 2, 3, 0, ...] before)."""
    sent = simulate([1.0, 0.02])
    assert [row for _, row in sent][:8] == [0, 1, 2, 3, 0, 1, 2, 3]
    _assert_whole_chunks_in_order(sent, 4)


def test_a_new_chunk_does_not_prefetch_before_its_first_step():
    r = ChunkRunner(control_hz=10.0, execute_steps=4, lockstep=False)
    r.new_chunk(_tagged(0, 10))
    assert not r.wants_inference(5.0, True, latency_s=0.3)  # 4 steps (0.4 s) ahead of now
    assert r.wants_inference(5.0, True, latency_s=0.45)


@settings(max_examples=300, deadline=None)
@given(latencies=st.lists(st.floats(0.0, 1.5), min_size=1, max_size=6),
       execute_steps=st.integers(1, 10), horizon=st.integers(1, 12))
def test_chunks_execute_whole_and_in_order_whatever_the_latency(latencies, execute_steps, horizon):
    sent = simulate(latencies, execute_steps, horizon)
    _assert_whole_chunks_in_order(sent, min(execute_steps, horizon))
    assert sent, "nothing was ever sent"


def test_age_is_measured_from_the_observation_of_the_step_about_to_go_out():
    r = ChunkRunner(control_hz=10.0, execute_steps=2, lockstep=False)
    assert r.age_s(3.0) == float("inf")
    r.new_chunk(_tagged(0, 2, observed_s=1.0))
    r.new_chunk(_tagged(1, 2, observed_s=2.0))  # waits
    assert r.age_s(3.0) == 2.0
    r.take(3.0), r.take(3.1)
    assert r.age_s(3.2) == pytest.approx(1.2)  # the waiting chunk is next
    r.clear()
    assert r.remaining() == 0 and r.age_s(4.0) == float("inf")
