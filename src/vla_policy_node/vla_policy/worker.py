"""The inference thread: loads the model, then runs one inference per request on the newest
observation available when the inference *starts* (never a queue of stale frames).

Why a thread of its own: a model call takes from milliseconds (tiny fixtures) to seconds (7B on a
CPU); on the ROS callback thread it would stall the control timer, the watchdog and the services.
The node asks for an inference with `request()`; the worker calls the node's `snapshot()` to get
the freshest observation at that moment, runs the steered policy and hands the result to
`on_result`. Loading happens on the same thread, so the node's constructor returns at once and
reports "loading" in its diagnostics until the model is ready.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from vla_steer_tools.policy import Policy, SteeredPolicy
from vla_steer_tools.steering.hooks import SteeringConfig
from vla_steer_tools.types import Observation

from .params import PolicyParams, model_options

log = logging.getLogger(__name__)


def load_from_params(p: PolicyParams) -> Policy:
    """Load the configured model through the core registry (no family branches here)."""
    from vla_steer_tools.models.registry import load_policy

    return load_policy(p.model_family, p.model_path, device=p.model_device, dtype=p.model_dtype, **model_options(p))


@dataclass(frozen=True)
class InferenceOutcome:
    """One finished inference: the steered result plus when its observation was taken."""

    result: Any  # SteeredResult: .chunk, .activations, .index, .config
    observation: Observation
    snapshot_time_s: float  # monotonic time the observation was taken from the latest inputs
    latency_s: float  # wall time of the whole policy call (preprocessing + model + decoding)


class InferenceWorker:
    """Owns the policy and the thread that runs it."""

    def __init__(self, load: Callable[[], Policy], steering: SteeringConfig,
                 snapshot: Callable[[], Observation | None],
                 on_result: Callable[[InferenceOutcome], None],
                 on_error: Callable[[str], None], on_ready: Callable[[], None]) -> None:
        self._load = load
        self._initial_steering = steering
        self._snapshot = snapshot
        self._on_result = on_result
        self._on_error = on_error
        self._on_ready = on_ready
        self._wake = threading.Condition()
        self._requested = False
        self._busy = False
        self._stop = False
        self.policy: SteeredPolicy | None = None
        self.state = "loading"  # loading | ready | failed: <reason>
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vla_policy_inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        """Block until the model is loaded (or failed); True when ready."""
        self._ready.wait(timeout_s)
        return self.state == "ready"

    @property
    def idle(self) -> bool:
        """Ready, not running and no request pending."""
        with self._wake:
            return self.state == "ready" and not self._busy and not self._requested

    def request(self) -> bool:
        """Ask for one inference; False (nothing queued) while loading or already busy."""
        with self._wake:
            if self.state != "ready" or self._busy or self._requested:
                return False
            self._requested = True
            self._wake.notify()
            return True

    def update_steering(self, config: SteeringConfig) -> None:
        """Hand a new config to the policy; it applies at the next inference."""
        with self._wake:  # the load on the worker thread reads _initial_steering under this lock
            if self.policy is None:
                self._initial_steering = config
                return
        self.policy.update(config)

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            t0 = time.monotonic()
            policy = self._load()
            with self._wake:
                self.policy = SteeredPolicy(policy, self._initial_steering)
            log.info("model ready after %.1f s", time.monotonic() - t0)
            self.state = "ready"
            self._on_ready()
        except Exception as exc:  # noqa: BLE001 - any load failure must reach diagnostics, not kill silently
            self.state = f"failed: {exc}"
            self._on_error(f"model loading failed: {type(exc).__name__}: {exc}")
            return
        finally:
            self._ready.set()
        while True:
            with self._wake:
                while not self._requested and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                self._requested, self._busy = False, True
            try:
                self._infer_once()
            finally:
                with self._wake:
                    self._busy = False

    def _infer_once(self) -> None:
        observation = self._snapshot()
        if observation is None:  # inputs went stale between request and start
            return
        taken = time.monotonic()
        try:
            result = self.policy.infer(observation)
        except Exception as exc:  # noqa: BLE001 - a bad frame must not end the thread
            self._on_error(f"inference failed: {type(exc).__name__}: {exc}")
            return
        self._on_result(InferenceOutcome(result, observation, taken, time.monotonic() - taken))
