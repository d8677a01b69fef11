"""When to send which step of the current action chunk, and when to ask for the next inference.

Pure timing logic, no ROS, so the pacing rules are unit-tested directly:
- normal mode: one step per control tick (an exact `control_hz`), and the next inference starts
  early enough (by the last measured latency) that a new chunk is ready as this one runs out;
- lockstep (simulation): a step goes out only once every camera delivered a new frame since the
  previous step (capped at `control_hz`), and the next inference starts on such a fresh frame set.
A new chunk replaces whatever is left of the previous one (the freshest observation wins).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class ChunkRunner:
    """Steps through chunks (objects with `.result.chunk.actions`, e.g. InferenceOutcome)."""

    def __init__(self, control_hz: float, execute_steps: int, lockstep: bool) -> None:
        self.configure(control_hz, execute_steps, lockstep)
        self.current: Any = None
        self.step = 0
        self.last_send_s = -math.inf

    def configure(self, control_hz: float, execute_steps: int, lockstep: bool) -> None:
        self.period_s = 1.0 / control_hz
        self.execute_steps = execute_steps
        self.lockstep = lockstep

    def new_chunk(self, outcome: Any) -> None:
        self.current, self.step = outcome, 0

    def clear(self) -> None:
        self.current, self.step = None, 0

    def remaining(self) -> int:
        """Steps of the current chunk still to send (horizon capped by execute_steps)."""
        if self.current is None:
            return 0
        return min(self.current.result.chunk.horizon, self.execute_steps) - self.step

    def due(self, now_s: float, from_timer: bool, fresh: bool) -> bool:
        """Whether a step should be sent now."""
        if self.remaining() <= 0:
            return False
        if self.lockstep:
            return fresh and now_s - self.last_send_s >= 0.95 * self.period_s
        return from_timer

    def take(self, now_s: float) -> np.ndarray:
        """The next action (action_dim,), marking it sent."""
        action = np.asarray(self.current.result.chunk.actions[self.step])  # (action_dim,)
        self.step += 1
        self.last_send_s = now_s
        return action

    def wants_inference(self, now_s: float, fresh: bool, latency_s: float) -> bool:
        remaining = self.remaining()
        if self.lockstep:
            return remaining <= 0 and fresh
        latency_s = 0.0 if math.isnan(latency_s) else latency_s
        return remaining <= 0 or now_s + latency_s >= self.last_send_s + remaining * self.period_s
