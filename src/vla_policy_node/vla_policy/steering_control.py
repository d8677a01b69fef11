"""Turn the node's two steering inputs (the `steering.*` parameters and the SetSteering service)
into one core `SteeringConfig`, and list the loadable directions.

Both inputs go through the same direction library and the same rules, so a concept switched on by
`ros2 param set` and by `vla-steer steer` ends up as the identical config. Model-dependent checks
(layer and neuron ranges) happen in the core's `Steerer.validate`, called by the node before it
accepts a change.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from vla_steer_msgs.msg import SteeringConcept

from vla_steer_tools.errors import ConfigError
from vla_steer_tools.steering.directions import MODES, Direction, DirectionLibrary
from vla_steer_tools.steering.hooks import SteeringConfig

from .conversions import msg_to_direction
from .params import PolicyParams

log = logging.getLogger(__name__)


class SteeringControl:
    """The direction library of the node and the two ways of building a SteeringConfig."""

    def __init__(self, direction_dirs: Sequence[str]) -> None:
        existing = [d for d in direction_dirs if Path(d).is_dir()]
        for missing in sorted(set(direction_dirs) - set(existing)):
            log.warning("steering.direction_dirs: %r is not a directory (cwd %s); no concepts from it",
                        missing, Path.cwd())
        self.library = DirectionLibrary(existing)

    def from_params(self, p: PolicyParams) -> SteeringConfig:
        """The config the `steering.*` parameters describe; ConfigError for an unknown concept."""
        directions = tuple(self._named(name, p.steering_alpha, p.steering_mode) for name in p.steering_concepts)
        return SteeringConfig(directions=directions, enabled=p.steering_enabled, position=p.steering_position)

    def from_request(self, concepts: Sequence[SteeringConcept], enabled: bool,
                     current: SteeringConfig) -> SteeringConfig:
        """The config a SetSteering request asks for.

        A concept with no neurons is looked up by name (its alpha/mode replaced when the request's
        are non-zero/non-empty); one with neurons is used as given. An empty list keeps the current
        concepts, so `enabled` alone switches steering on or off.
        """
        if not concepts:
            return current.replace(enabled=enabled)
        directions = []
        for c in concepts:
            if c.mode and c.mode not in MODES:
                raise ConfigError(f"concept {c.name!r}: unknown mode {c.mode!r}; valid: {', '.join(MODES)}")
            if len(c.neurons) == 0:
                directions.append(self._named(c.name, c.alpha, c.mode))
            else:
                direction = msg_to_direction(c)
                direction.check()
                directions.append(direction)
        names = [d.name for d in directions]
        if len(set(names)) != len(names):
            raise ConfigError(f"concept names must be unique, got {names}")
        return current.replace(directions=tuple(directions), enabled=enabled)

    def _named(self, name: str, alpha: float, mode: str) -> Direction:
        """A library direction with alpha/mode overridden when given (0 / "" keep its own)."""
        return self.library.get(name).with_options(alpha=alpha or None, mode=mode or None)

    def listing(self) -> tuple[list[str], list[str], list[int]]:
        """(names, descriptions, neuron counts) of every loadable direction."""
        names = self.library.names()
        return names, [self.library.describe(n) for n in names], [len(self.library.get(n).neurons) for n in names]
