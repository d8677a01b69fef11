"""When to send which step of the current action chunk, and when to ask for the next inference.

Pure timing logic, no ROS and no clock of its own (every method takes `now_s`), so the pacing rules
are unit-tested with fake times:
- normal mode: one step per control tick (an exact `control_hz`), and the next inference starts
  early enough (by the last measured latency) that a new chunk is ready as this one runs out;
- lockstep (simulation): a step goes out only once every camera delivered a new frame since the
  previous step (capped at `control_hz`), and the next inference starts on such a fresh frame set.

A chunk that arrives early — while the current one still has steps of its `execute_steps` to send
(a prefetch that came back faster than the last latency predicted) — does NOT cut the current one
short: it waits as the *next* chunk and starts, at its first row, right after the current chunk's
last executed step. A newer early chunk replaces a waiting one (the freshest observation wins among
chunks not yet started). So every chunk executes rows 0 .. execute_steps-1 in order, exactly what
`chunk.execute_steps` promises, whatever the inference timing; only a hold (`clear`) drops steps.
While a chunk waits no further inference is requested. A waiting chunk ages like any other: the
node refuses a step whose observation is older than `watchdog.max_observation_age_s` (`age_s`).
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
        self.next: Any = None  # an early chunk waiting for the current one to finish
        self.step = 0
        self.last_send_s = -math.inf

    def configure(self, control_hz: float, execute_steps: int, lockstep: bool) -> None:
        self.period_s = 1.0 / control_hz
        self.execute_steps = execute_steps
        self.lockstep = lockstep

    def new_chunk(self, outcome: Any) -> None:
        """Start `outcome` now if the current chunk is done, else queue it as the next one."""
        if self._left() > 0:
            self.next = outcome
        else:
            self.current, self.next, self.step = outcome, None, 0

    def clear(self) -> None:
        """Drop the current and the waiting chunk (a hold)."""
        self.current, self.next, self.step = None, None, 0

    def remaining(self) -> int:
        """Steps still to send: of the current chunk, or of the waiting one once it is done."""
        self._advance()
        return self._left()

    def due(self, now_s: float, from_timer: bool, fresh: bool) -> bool:
        """Whether a step should be sent now."""
        if self.remaining() <= 0:
            return False
        if self.lockstep:
            return fresh and now_s - self.last_send_s >= 0.95 * self.period_s
        return from_timer

    def age_s(self, now_s: float) -> float:
        """Age at `now_s` of the observation the next step was computed from (inf without one)."""
        self._advance()
        return math.inf if self.current is None else now_s - self.current.observed_s

    def take(self, now_s: float) -> np.ndarray:
        """The next action (action_dim,), marking it sent."""
        self._advance()
        action = np.asarray(self.current.result.chunk.actions[self.step])  # (action_dim,)
        self.step += 1
        self.last_send_s = now_s
        return action

    def wants_inference(self, now_s: float, fresh: bool, latency_s: float) -> bool:
        if self.next is not None:
            return False  # a chunk is already waiting
        remaining = self.remaining()
        if self.lockstep:
            return remaining <= 0 and fresh
        latency_s = 0.0 if math.isnan(latency_s) else latency_s
        # a chunk none of whose steps went out yet runs from now, not from the previous chunk's send
        start_s = self.last_send_s if self.step > 0 else now_s
        return remaining <= 0 or now_s + latency_s >= start_s + remaining * self.period_s

    def _left(self) -> int:
        if self.current is None:
            return 0
        return max(0, min(self.current.result.chunk.horizon, self.execute_steps) - self.step)

    def _advance(self) -> None:
        """Start the waiting chunk once the current one has no steps left."""
        if self.next is not None and self._left() <= 0:
            self.current, self.next, self.step = self.next, None, 0
