"""The policy boundary: `infer(observation) -> ActionChunk` and `reset()`.

Every model family implements `Policy`; the ROS node, the simulator demo and the benchmarks only
ever see this interface, so there are no model-family branches outside `models/`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .models.base import ModelAdapter
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
