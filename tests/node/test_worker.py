"""The inference thread: one inference per request on the newest observation, failures reported
instead of killing the thread, and no callback after `stop()` (loading is the node's configure)."""

from __future__ import annotations

import threading
import time

import numpy as np

from vla_policy.worker import InferenceWorker
from vla_steer_tools.policy import SteeredPolicy
from vla_steer_tools.types import Observation

from .conftest import CountingPolicy


def _obs(tag: str) -> Observation:
    return Observation(images={"agentview": np.zeros((4, 4, 3), np.uint8)}, instruction=tag)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _worker(policy, snapshot, clock=None):
    results, errors = [], []
    worker = InferenceWorker(SteeredPolicy(policy), snapshot, results.append, lambda m, nf: errors.append((m, nf)),
                             **({"clock": clock} if clock else {}))
    return worker, results, errors


def test_runs_on_the_newest_observation_one_request_at_a_time():
    latest = {"obs": (_obs("first"), 1.0)}
    policy, clock = CountingPolicy(), FakeClock()
    release = threading.Event()
    infer = policy.infer

    def slow_infer(obs):  # the model call "takes" 0.5 s of fake time
        release.wait(10.0)
        clock.t += 0.5
        return infer(obs)

    policy.infer = slow_infer
    worker, results, errors = _worker(policy, lambda: latest["obs"], clock)
    worker.start()
    assert worker.request() and not worker.request()  # one at a time: no queue
    release.set()
    assert worker.wait_idle(10.0)
    assert len(results) == 1 and results[0].latency_s == 0.5 and results[0].observed_s == 1.0
    latest["obs"] = (_obs("third"), 2.0)
    assert worker.request() and worker.wait_idle(10.0)
    assert results[1].observation.instruction == "third" and results[1].result.index == 1
    assert worker.stop() and not errors


def test_inference_failures_are_reported_and_the_thread_survives():
    policy = CountingPolicy()
    policy.infer = lambda obs: (_ for _ in ()).throw(RuntimeError("bad frame"))  # noqa: E731
    worker, results, errors = _worker(policy, lambda: (Observation(images={}, instruction="x"), 0.0))
    worker.start()
    assert worker.request() and worker.wait_idle(10.0)
    assert "bad frame" in errors[0][0] and errors[0][1] is False and not results
    assert worker.request() and worker.wait_idle(10.0)  # the thread survived
    assert len(errors) == 2
    assert worker.stop()


def test_no_snapshot_means_no_inference():
    policy = CountingPolicy()
    worker, results, errors = _worker(policy, lambda: None)
    worker.start()
    assert worker.request() and worker.wait_idle(10.0)
    assert not results and not errors and policy.calls == []
    assert worker.stop()


def test_no_callback_after_stop():
    """Shutdown: a result that finishes after stop() began is dropped, never published."""
    policy, started = CountingPolicy(), threading.Event()
    infer = policy.infer
    box = {}

    def blocking(obs):  # finishes only once stop() has been called
        started.set()
        for _ in range(100_000):
            if box["worker"].stopping:
                break
            time.sleep(0.001)
        return infer(obs)

    policy.infer = blocking
    worker, results, errors = _worker(policy, lambda: (_obs("x"), 0.0))
    box["worker"] = worker
    worker.start()
    assert worker.request() and started.wait(10.0)
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    stopper.join(30.0)
    assert not stopper.is_alive() and results == [] and errors == []
    assert not worker.request()  # stopped: nothing is queued any more


def test_non_finite_model_output_is_flagged():
    policy = CountingPolicy()
    policy.infer = lambda obs: (_ for _ in ()).throw(FloatingPointError("non-finite logits at action token 0"))  # noqa: E731
    worker, results, errors = _worker(policy, lambda: (_obs("x"), 0.0))
    worker.start()
    assert worker.request() and worker.wait_idle(10.0)
    assert errors == [("inference failed: FloatingPointError: non-finite logits at action token 0", True)]
    assert worker.stop()
