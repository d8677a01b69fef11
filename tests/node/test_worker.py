"""The inference thread: loads off the caller's thread, one inference per request on the newest
observation, failures reported instead of killing the thread."""

from __future__ import annotations

import threading
import time

import numpy as np

from vla_policy.worker import InferenceWorker
from vla_steer_tools.steering.directions import Direction
from vla_steer_tools.steering.hooks import SteeringConfig
from vla_steer_tools.types import NeuronRef, Observation

from .conftest import CountingPolicy


def _obs(tag: str) -> Observation:
    return Observation(images={"agentview": np.zeros((4, 4, 3), np.uint8)}, instruction=tag)


def _worker(load, snapshot):
    results, errors, ready = [], [], threading.Event()
    worker = InferenceWorker(load, SteeringConfig(), snapshot, results.append, errors.append, ready.set)
    return worker, results, errors, ready


def test_loads_on_its_thread_and_runs_on_the_newest_observation():
    latest = {"obs": _obs("first")}
    policy = CountingPolicy(delay_s=0.05)
    loaded = threading.Event()

    def slow_load():
        time.sleep(0.2)
        loaded.set()
        return policy

    worker, results, errors, ready = _worker(slow_load, lambda: latest["obs"])
    t0 = time.monotonic()
    worker.start()
    assert time.monotonic() - t0 < 0.1 and worker.state == "loading" and not worker.request()
    assert worker.wait_ready(5.0) and ready.is_set() and worker.state == "ready"
    assert worker.request() and not worker.request()  # one at a time: no queue
    latest["obs"] = _obs("second")  # arrives before the inference starts? either way, no backlog
    deadline = time.monotonic() + 5.0
    while not results and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(results) == 1 and results[0].latency_s >= 0.05
    while not worker.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    latest["obs"] = _obs("third")
    assert worker.request()
    while len(results) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert results[1].observation.instruction == "third" and results[1].result.index == 1
    worker.stop()
    assert not errors


def test_steering_update_before_and_after_load():
    d = Direction("fast", (NeuronRef("backbone", 0, 1),), alpha=5.0)
    worker, results, errors, ready = _worker(CountingPolicy, lambda: _obs("x"))
    worker.update_steering(SteeringConfig(directions=(d,), enabled=True))  # before start: initial config
    worker.start()
    assert worker.wait_ready(5.0)
    assert worker.policy.config.enabled
    worker.update_steering(SteeringConfig(directions=(d,), enabled=False))
    assert not worker.policy.config.enabled
    worker.stop()


def test_load_and_inference_failures_are_reported():
    def broken_load():
        raise FileNotFoundError("no checkpoint at /nowhere")

    worker, results, errors, ready = _worker(broken_load, lambda: _obs("x"))
    worker.start()
    assert not worker.wait_ready(5.0)
    assert worker.state.startswith("failed") and "/nowhere" in errors[0]

    policy = CountingPolicy()
    worker, results, errors, ready = _worker(lambda: policy, lambda: Observation(images={}, instruction="x"))
    policy.infer = lambda obs: (_ for _ in ()).throw(RuntimeError("bad frame"))  # noqa: E731
    worker.start()
    assert worker.wait_ready(5.0) and worker.request()
    deadline = time.monotonic() + 5.0
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "bad frame" in errors[0]
    while not worker.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.request()  # the thread survived
    worker.stop()
