"""The inference thread: runs one inference per request on the newest observation available when
the inference *starts* (never a queue of stale frames).

Why a thread of its own: a model call takes from milliseconds (tiny fixtures) to seconds (7B on a
CPU); on the ROS callback thread it would stall the control timer, the watchdog and the services.
The node asks for an inference with `request()`; the worker calls the node's `snapshot()` to get
the freshest observation at that moment, runs the steered policy and hands the result to
`on_result`, or the reason it failed to `on_error` (with True when the model's numbers were
non-finite, which the node reports as an error at once). Loading is not done here: it is the node's
`configure` transition (policy_node.py), which hands the loaded policy to a new worker.
`stop()` ends the thread and, once it returns True, no callback runs any more — the node calls it
before its publishers and context go away.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from vla_steer_tools.policy import Policy, SteeredPolicy
from vla_steer_tools.types import Observation

from .params import PolicyParams, model_options

log = logging.getLogger(__name__)


def load_from_params(p: PolicyParams) -> Policy:
    """Load the configured model through the core registry (no family branches here)."""
    from vla_steer_tools.models.registry import load_policy

    return load_policy(p.model_family, p.model_path, device=p.model_device, dtype=p.model_dtype, **model_options(p))


@dataclass(frozen=True)
class InferenceOutcome:
    """One finished inference: the steered result plus how old its observation is."""

    result: Any  # SteeredResult: .chunk, .activations, .index, .config
    observation: Observation
    observed_s: float  # monotonic receive time of the observation's oldest camera frame
    latency_s: float  # wall time of the whole policy call (preprocessing + model + decoding)


Snapshot = Callable[[], "tuple[Observation, float] | None"]


class InferenceWorker:
    """Runs `policy` on its own thread, one request at a time."""

    def __init__(self, policy: SteeredPolicy, snapshot: Snapshot, on_result: Callable[[InferenceOutcome], None],
                 on_error: Callable[[str, bool], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._snapshot = snapshot
        self._on_result = on_result
        self._on_error = on_error
        self._clock = clock
        self._wake = threading.Condition()
        self._requested = False
        self._busy = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="vla_policy_inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def idle(self) -> bool:
        """Not running and no request pending."""
        with self._wake:
            return not self._busy and not self._requested

    @property
    def stopping(self) -> bool:
        """`stop()` was called: no callback will run any more."""
        with self._wake:
            return self._stop

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until the pending request (if any) finished; True when idle (for tests)."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._busy and not self._requested, timeout_s)

    def request(self) -> bool:
        """Ask for one inference; False (nothing queued) when stopped or already busy."""
        with self._wake:
            if self._stop or self._busy or self._requested:
                return False
            self._requested = True
            self._wake.notify_all()
            return True

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the thread; True when it has ended (an inference in flight is waited for)."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._requested or self._stop)
                if self._stop:
                    return
                self._requested, self._busy = False, True
            try:
                self._infer_once()
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def _infer_once(self) -> None:
        snap = self._snapshot()
        if snap is None:  # inputs went stale between request and start
            return
        observation, observed_s = snap
        started = self._clock()
        try:
            result = self.policy.infer(observation)
        except Exception as exc:  # noqa: BLE001 - a bad frame must not end the thread
            if not self._stop:  # FloatingPointError: the model computed garbage (non-finite logits)
                self._on_error(f"inference failed: {type(exc).__name__}: {exc}", isinstance(exc, FloatingPointError))
            return
        if not self._stop:
            self._on_result(InferenceOutcome(result, observation, observed_s, self._clock() - started))
