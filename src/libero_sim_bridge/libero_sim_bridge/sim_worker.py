"""The thread that owns the simulator: every create/reset/step runs here, in order.

Why a thread of its own: the OpenGL context LIBERO renders with is bound to the thread that made it,
env creation and reset take seconds, and a ROS executor must not block on them. The node hands
commands over (reset, step) and gets observations back through callbacks, called on this thread.
A reset drops the steps still queued for the old episode. No ROS imports: testable on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

import numpy as np
from vla_steer_tools.analysis.metrics import EpisodeMetrics, episode_metrics

from .env import LiberoEnv, SimObservation

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeInfo:
    """Which episode is running."""

    suite: str
    task_id: int
    init_state_id: int
    instruction: str
    max_steps: int
    placement_seed: int = -1


@dataclass(frozen=True)
class EpisodeResult:
    """How an episode went; `interrupted` = a reset came before success or the step limit."""

    info: EpisodeInfo
    success: bool
    steps: int
    metrics: EpisodeMetrics
    interrupted: bool = False


@dataclass
class WorkerCallbacks:
    """Called on the worker thread. on_reset/on_step get the new observation."""

    on_reset: Callable[[SimObservation, EpisodeInfo], None]
    on_step: Callable[[SimObservation, EpisodeInfo], None]
    on_episode_end: Callable[[EpisodeResult], None]
    on_error: Callable[[str], None]


class SimWorker:
    """Runs a `LiberoEnv` on a private thread, fed by a bounded command queue."""

    def __init__(self, make_env: Callable[[], LiberoEnv], callbacks: WorkerCallbacks,
                 queue_depth: int = 10) -> None:
        self._make_env = make_env
        self._cb = callbacks
        self._depth = int(queue_depth)
        self._queue: deque[tuple[str, object, Future | None]] = deque()
        self._cond = threading.Condition()
        self._state = "starting"
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="libero-sim", daemon=True)
        self._positions: list[np.ndarray] = []
        self._info: EpisodeInfo | None = None
        self.last_step_s = 0.0
        self.steps_total = 0
        self.dropped_steps = 0
        self._creation_error: Exception | None = None

    # -- called from any thread ------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def state(self) -> str:
        """starting | resetting | running | done | error | stopped."""
        return self._state

    @property
    def busy(self) -> bool:
        """True while a command runs or waits: realtime ticks skip instead of piling up."""
        with self._cond:
            return self._busy or bool(self._queue)

    @property
    def pending_steps(self) -> int:
        """Steps queued and not yet started."""
        with self._cond:
            return sum(1 for kind, _, _ in self._queue if kind == "step")

    @property
    def info(self) -> EpisodeInfo | None:
        return self._info

    def request_reset(self, suite: str, task_id: int, init_state_id: int, placement_seed: int = -1,
                      instruction: str = "") -> Future:
        """Queue a reset ahead of nothing: pending steps of the old episode are dropped.
        placement_seed >= 0: a seeded random placement instead of the fixed init state;
        instruction: replaces the task's own text when non-empty.
        The future resolves to the EpisodeInfo, or raises the reset's error."""
        fut: Future = Future()
        with self._cond:
            dropped = sum(1 for kind, _, _ in self._queue if kind == "step")
            self._queue = deque(c for c in self._queue if c[0] != "step")
            self.dropped_steps += dropped
            self._queue.append(("reset", (suite, task_id, init_state_id, placement_seed, instruction), fut))
            self._cond.notify()
        return fut

    def submit_step(self, action: np.ndarray) -> str:
        """Queue one step; returns "" when queued, else why not (the caller logs it)."""
        with self._cond:
            if self._state != "running":
                return f"episode not running (state: {self._state})"
            pending = sum(1 for kind, _, _ in self._queue if kind == "step")
            if pending >= self._depth:
                self.dropped_steps += 1
                return f"action queue full ({self._depth} pending steps)"
            self._queue.append(("step", action, None))
            self._cond.notify()
        return ""

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the running command, close the env on its thread, join."""
        with self._cond:
            self._queue.clear()
            self._queue.append(("stop", None, None))
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                LOG.warning("sim thread still busy after %.0f s; leaving it (daemon)", timeout_s)

    # -- the worker thread ------------------------------------------------------------------------
    def _run(self) -> None:
        env: LiberoEnv | None = None
        try:
            env = self._make_env()
        except Exception as exc:  # noqa: BLE001 - reported to the node; resets then fail with it
            self._fail(f"cannot create LIBERO env: {exc}")
            self._creation_error = exc
        try:
            while True:
                kind, payload, fut = self._next()
                if kind == "stop":
                    break
                if kind == "reset":
                    self._do_reset(env, payload, fut)
                else:
                    self._do_step(env, payload)
                with self._cond:
                    self._busy = False
        finally:
            if env is not None:
                env.close()
            self._state = "stopped"

    def _next(self) -> tuple[str, object, Future | None]:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            self._busy = True
            return self._queue.popleft()

    def _do_reset(self, env: LiberoEnv | None, payload: object, fut: Future | None) -> None:
        suite, task_id, init_state_id, placement_seed, instruction = payload  # type: ignore[misc]
        if env is None:
            if fut is not None:
                fut.set_exception(RuntimeError(f"no simulator: {self._creation_error}"))
            return
        self._end_episode(interrupted=True)
        self._state = "resetting"
        try:
            obs = env.reset(suite, task_id, init_state_id,
                            placement_seed=placement_seed if placement_seed >= 0 else None)
        except Exception as exc:  # noqa: BLE001 - handed to the service caller
            LOG.error("reset %s task %s init %s failed: %s", suite, task_id, init_state_id, exc)
            self._state = "error" if env.last_observation is None else "done"
            if fut is not None:
                fut.set_exception(exc)
            return
        self._info = EpisodeInfo(suite, task_id, init_state_id, instruction.strip() or env.instruction,
                                 env.max_steps, placement_seed)
        self._positions = [obs.ee_pos]
        self._state = "running"
        if fut is not None:
            fut.set_result(self._info)
        self._cb.on_reset(obs, self._info)

    def _do_step(self, env: LiberoEnv | None, action: object) -> None:
        if self._state != "running" or env is None:
            self.dropped_steps += 1
            LOG.info("dropped a queued action: episode %s", self._state)
            return
        t0 = time.perf_counter()
        try:
            obs = env.step(action)
        except Exception as exc:  # noqa: BLE001 - a sim failure ends the episode, not the node
            self._fail(f"step failed: {exc}")
            return
        self.last_step_s = time.perf_counter() - t0
        self.steps_total += 1
        self._positions.append(obs.ee_pos)
        assert self._info is not None
        if obs.done:
            self._state = "done"
        self._cb.on_step(obs, self._info)
        if obs.done:
            self._end_episode(interrupted=False, success=obs.success)

    def _end_episode(self, interrupted: bool, success: bool = False) -> None:
        """Report the episode that just ended (or was cut short by a reset after >= 1 step)."""
        if self._info is None or (interrupted and len(self._positions) < 2):
            self._positions = []
            return
        positions = np.stack(self._positions)  # (steps + 1, 3)
        result = EpisodeResult(self._info, success, positions.shape[0] - 1,
                               episode_metrics(positions), interrupted)
        self._positions = []
        self._cb.on_episode_end(result)

    def _fail(self, message: str) -> None:
        LOG.error("%s", message)
        self._state = "error"
        self._cb.on_error(message)
