"""SimWorker ordering and episode bookkeeping, with a fake env (no simulator, no ROS)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from libero_sim_bridge.env import SimObservation, validate_action
from libero_sim_bridge.sim_worker import SimWorker, WorkerCallbacks


class FakeEnv:
    """Moves the end effector by the action's xyz; done after `max_steps` steps.
    `gate` (if set) makes each step wait, so a test can pile up commands."""

    def __init__(self, max_steps: int = 3) -> None:
        self.max_steps = max_steps
        self.instruction = "fake task"
        self.last_observation: SimObservation | None = None
        self.actions: list[np.ndarray] = []
        self.gate: threading.Event | None = None
        self.closed_on: str = ""
        self._pos = np.zeros(3)
        self._step = 0

    def _obs(self) -> SimObservation:
        done = self._step >= self.max_steps
        self.last_observation = SimObservation(
            images={}, joint_pos=np.zeros(7), joint_vel=np.zeros(7), ee_pos=self._pos.copy(),
            ee_quat=np.array([0, 0, 0, 1.0]), gripper=np.zeros(2), step=self._step, done=done,
            success=False)
        return self.last_observation

    def reset(self, suite: str, task_id: int, init_state_id: int, placement_seed: int | None = None) -> SimObservation:
        self.placement_seed = placement_seed
        if task_id == 99:
            raise ValueError("task_id 99 out of range")
        self._pos, self._step = np.zeros(3), 0
        return self._obs()

    def step(self, action: np.ndarray) -> SimObservation:
        if self.gate is not None:
            assert self.gate.wait(5)
        action = validate_action(action)
        self.actions.append(action)
        self._pos = self._pos + action[:3]
        self._step += 1
        return self._obs()

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


class Recorder:
    def __init__(self) -> None:
        self.resets: list[SimObservation] = []
        self.steps: list[SimObservation] = []
        self.results: list = []
        self.errors: list[str] = []
        self.step_event = threading.Event()

    def callbacks(self) -> WorkerCallbacks:
        def on_step(obs, info):
            self.steps.append(obs)
            self.step_event.set()
        return WorkerCallbacks(on_reset=lambda obs, info: self.resets.append(obs), on_step=on_step,
                               on_episode_end=self.results.append, on_error=self.errors.append)


@pytest.fixture()
def worker_env():
    env, rec = FakeEnv(), Recorder()
    worker = SimWorker(lambda: env, rec.callbacks(), queue_depth=2)
    worker.start()
    yield worker, env, rec
    worker.stop(5)


def _wait(cond, timeout: float = 5.0) -> None:
    ev = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if cond():
            return
        ev.wait(0.01)
    raise AssertionError("condition not met in time")


def test_steps_run_in_order_and_episode_summary_on_done(worker_env) -> None:
    worker, env, rec = worker_env
    info = worker.request_reset("libero_spatial", 0, 0).result(5)
    assert info.instruction == "fake task" and worker.state == "running"
    for dz in (0.1, 0.2):
        assert worker.submit_step(np.array([0, 0, dz, 0, 0, 0, -1.0])) == ""
        _wait(lambda: not worker.busy)
    assert worker.submit_step(np.array([0, 0, 0.3, 0, 0, 0, -1.0])) == ""
    _wait(lambda: len(rec.results) == 1)
    assert [a[2] for a in env.actions] == [0.1, 0.2, 0.3]
    result = rec.results[0]
    assert result.steps == 3 and not result.interrupted
    assert result.metrics.path_length == pytest.approx(0.6)
    assert result.metrics.max_height == pytest.approx(0.6)
    assert worker.state == "done"
    assert "not running" in worker.submit_step(np.zeros(7))


def test_queue_limit_and_reset_drops_pending_steps(worker_env) -> None:
    worker, env, rec = worker_env
    env.max_steps = 100
    worker.request_reset("libero_spatial", 0, 0).result(5)
    env.gate = threading.Event()
    assert worker.submit_step(np.full(7, 0.01)) == ""
    _wait(lambda: worker.busy and worker.pending_steps == 0)  # popped, blocked in env.step
    # one step blocked in env.step; the queue (depth 2) fills, the next is refused
    assert worker.submit_step(np.full(7, 0.02)) == ""
    assert worker.submit_step(np.full(7, 0.03)) == ""
    assert "queue full" in worker.submit_step(np.full(7, 0.04))
    fut = worker.request_reset("libero_spatial", 0, 1)  # drops the 2 queued steps
    env.gate.set()
    fut.result(5)
    _wait(lambda: not worker.busy)
    assert [a[0] for a in env.actions] == [0.01]  # only the step already in progress ran
    assert worker.dropped_steps == 3  # 1 refused (queue full) + 2 dropped by the reset
    assert rec.results and rec.results[-1].interrupted


def test_reset_passes_placement_seed_and_instruction_override(worker_env) -> None:
    worker, env, _ = worker_env
    info = worker.request_reset("libero_spatial", 0, 3, placement_seed=17, instruction="  pick it up slowly ").result(5)
    assert env.placement_seed == 17 and info.placement_seed == 17
    assert info.instruction == "pick it up slowly"
    info = worker.request_reset("libero_spatial", 0, 3).result(5)  # defaults: fixed state, task text
    assert env.placement_seed is None and info.instruction != "pick it up slowly"


def test_failed_reset_reaches_the_caller(worker_env) -> None:
    worker, _, _ = worker_env
    with pytest.raises(ValueError, match="99"):
        worker.request_reset("libero_spatial", 99, 0).result(5)


def test_env_closed_on_the_sim_thread() -> None:
    env, rec = FakeEnv(), Recorder()
    worker = SimWorker(lambda: env, rec.callbacks())
    worker.start()
    worker.request_reset("libero_spatial", 0, 0).result(5)
    worker.stop(5)
    assert env.closed_on == "libero-sim" and worker.state == "stopped"
