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
    index: 0-based number of this inference since the wrapper was built.
    config: the steering config the inference ran with.
    config_changed: True when a new config took effect at this inference, so a consumer should
        drop actions still queued from chunks computed under the old one.
    """

    chunk: ActionChunk
    activations: dict[str, ConceptStat]
    index: int
    config: SteeringConfig
    config_changed: bool = False


class SteeredPolicy:
    """A Policy whose steering can be changed live from any thread.

    `update()` validates at once (raising DirectionError to the caller) and queues the config;
    `infer()` swaps the queued config in under a lock right before the model runs, so an
    inference never sees a half-applied change and no hook is ever re-registered.
    """

    def __init__(self, policy: Policy, config: SteeringConfig = SteeringConfig()) -> None:
        self.policy = policy
        self._steerer = Steerer(policy.adapter, config)
        self._pending: SteeringConfig | None = None
        self._pending_lock = threading.Lock()
        self._infer_lock = threading.Lock()
        self.inference_count = 0

    @property
    def adapter(self) -> ModelAdapter:
        return self.policy.adapter

    @property
    def action_space(self) -> str:
        return self.policy.action_space

    @property
    def config(self) -> SteeringConfig:
        """The config the next inference will use (the queued one if any)."""
        with self._pending_lock:
            return self._pending if self._pending is not None else self._steerer.config

    def update(self, config: SteeringConfig) -> None:
        """Queue `config` for the next inference (any thread); DirectionError if it does not fit."""
        self._steerer.validate(config)
        with self._pending_lock:
            self._pending = config

    def infer(self, observation: Observation) -> SteeredResult:
        with self._infer_lock:
            with self._pending_lock:
                pending, self._pending = self._pending, None
            changed = pending is not None and pending != self._steerer.config
            if pending is not None:
                self._steerer.apply(pending)
            self._steerer.begin_inference()
            chunk = self.policy.infer(observation)
            stats = self._steerer.activations()
            steered = self._steerer.steered
            result = SteeredResult(
                chunk=replace(chunk, steered=steered),
                activations=stats,
                index=self.inference_count,
                config=self._steerer.config,
                config_changed=changed,
            )
            self.inference_count += 1
            return result

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
