"""The policy boundary: `infer(observation) -> ActionChunk` and `reset()`.

Every model family implements `Policy`; the ROS node, the simulator demo and the benchmarks only
ever see this interface, so there are no model-family branches outside `models/`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

from .models.base import ModelAdapter
from .steering.hooks import Steerer, SteeringConfig
from .steering.probe import ConceptStat
from .types import ActionChunk, Observation


class Policy(ABC):
    """A VLA policy that can be steered through its `adapter`."""

    #: Name of the action space the chunks are in, e.g. "ee_delta_7d".
    action_space: str = ""

    @property
    @abstractmethod
    def adapter(self) -> ModelAdapter:
        """Where this policy's FFNs and token matrix are (for hooks, probes and projection)."""

    @abstractmethod
    def infer(self, observation: Observation) -> ActionChunk:
        """Run one inference and return the whole action chunk (horizon x dim)."""

    def reset(self) -> None:
        """Forget per-episode state (none by default)."""


@dataclass(frozen=True)
class SteeredResult:
    """One steered inference.

    chunk: the action chunk (its `steered` flag says whether any edit was applied).
    activations: direction name -> pre-edit activation summary of this inference.
    index: 0-based number of this inference since the wrapper was built (every started inference
        takes one, a failed one too).
    config: the steering config the inference ran with.
    config_changed: True when a new config took effect at this inference, so a consumer should
        drop actions still queued from chunks computed under the old one.
    config_since: index of the first inference that ran with `config`.
    """

    chunk: ActionChunk
    activations: dict[str, ConceptStat]
    index: int
    config: SteeringConfig
    config_changed: bool = False
    config_since: int = 0


@dataclass(frozen=True)
class SteeringStatus:
    """The config the next inference will use and the index of the first inference that runs
    (or ran) with it: exact, because both are read under the lock that swaps configs in."""

    config: SteeringConfig
    since: int


class SteeredPolicy:
    """A Policy whose steering can be changed live from any thread.

    `update()` validates at once (raising DirectionError to the caller) and queues the config;
    `infer()` swaps the queued config in under a lock right before the model runs, so an
    inference never sees a half-applied change and no hook is ever re-registered.

    Inference numbers are handed out in the same critical section that swaps a queued config in
    (`_state_lock`), and `update()` reads the next number under that lock too. So the index
    `update()` returns is exactly the first inference that runs with the new config, whether or
    not an inference is running at that moment (reading a counter that the running inference
    bumps at its end is off by one exactly then).
    """

    def __init__(self, policy: Policy, config: SteeringConfig = SteeringConfig()) -> None:
        self.policy = policy
        self._steerer = Steerer(policy.adapter, config)
        self._pending: SteeringConfig | None = None
        self._state_lock = threading.Lock()  # _pending, _next_index, _since
        self._infer_lock = threading.Lock()
        self._next_index = 0  # number of inferences started
        self._since = 0  # first inference with the current config

    @property
    def adapter(self) -> ModelAdapter:
        return self.policy.adapter

    @property
    def action_space(self) -> str:
        return self.policy.action_space

    @property
    def inference_count(self) -> int:
        """Inferences started so far (the index the next one gets)."""
        with self._state_lock:
            return self._next_index

    @property
    def config(self) -> SteeringConfig:
        """The config the next inference will use (the queued one if any)."""
        return self.status().config

    def status(self) -> SteeringStatus:
        """The config the next inference will use and the first inference that runs with it."""
        with self._state_lock:
            if self._pending is not None:
                return SteeringStatus(self._pending, self._next_index)
            return SteeringStatus(self._steerer.config, self._since)

    def validate(self, config: SteeringConfig) -> None:
        """Raise DirectionError if `config` does not fit the model; changes nothing."""
        self._steerer.validate(config)

    def update(self, config: SteeringConfig) -> int:
        """Queue `config` for the next inference (any thread); DirectionError if it does not fit.

        Returns the index of the first inference that runs with `config` (an unchanged config
        keeps the index it already had).
        """
        self._steerer.validate(config)
        with self._state_lock:
            if config == self._steerer.config:
                self._pending = None  # back to what runs now: nothing to swap
                return self._since
            if config != self._pending:
                self._pending = config
            return self._next_index

    def _start_inference(self) -> tuple[int, bool]:
        """Swap a queued config in and take this inference's index, atomically."""
        with self._state_lock:
            index, self._next_index = self._next_index, self._next_index + 1
            pending, self._pending = self._pending, None
            changed = pending is not None and pending != self._steerer.config
            if changed:
                self._steerer.apply(pending)  # validated in update(); builds the plan, no hooks
                self._since = index
            return index, changed

    def infer(self, observation: Observation) -> SteeredResult:
        with self._infer_lock:
            index, changed = self._start_inference()
            self._steerer.begin_inference()
            chunk = self.policy.infer(observation)
            return SteeredResult(
                chunk=replace(chunk, steered=self._steerer.steered),
                activations=self._steerer.activations(),
                index=index,
                config=self._steerer.config,
                config_changed=changed,
                config_since=self._since,
            )

    def reset(self) -> None:
        with self._infer_lock:
            self.policy.reset()

    def close(self) -> None:
        """Remove the hooks; the wrapped policy runs unsteered afterwards."""
        with self._infer_lock:
            self._steerer.close()

    def __enter__(self) -> "SteeredPolicy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
