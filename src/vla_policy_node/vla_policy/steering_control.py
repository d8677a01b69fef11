"""Turn the node's two steering inputs (the `steering.*` parameters and the SetSteering service)
into one core `SteeringConfig`, and list the loadable directions.

The parameters are the one source of truth: a SetSteering request is translated into the
`steering.*` values that describe it exactly (`from_request` checks that the parameters rebuild
the very same config), and the node writes them back. So `ros2 param get` always tells what
runs, and a later `steering.enabled=true` cannot silently change alpha or mode back.

Concepts with explicit neurons (not in the direction library) are remembered by name for the
node's lifetime (`session`), so that the parameters naming them stay valid and steering can
always be changed or switched off through parameters. Such a concept may not reuse a library
name with other neurons (that would make the name mean two things).

Model-dependent checks (layer and neuron ranges) happen in the core's `Steerer.validate`, called
by the node before it accepts a change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from vla_steer_msgs.msg import SteeringConcept

from vla_steer_tools.errors import ConfigError, DirectionError, UnknownChoiceError
from vla_steer_tools.steering.directions import (
    Direction, DirectionLibrary, check_alpha, check_mode, describe_direction,
)
from vla_steer_tools.policy import SteeredPolicy
from vla_steer_tools.steering.hooks import SteeringConfig
from vla_steer_tools.steering.validation import refusal_reason

from .conversions import msg_to_direction
from .params import PolicyParams, from_mapping

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SteeringChange:
    """A validated SetSteering request: the config, the `steering.*` values that describe it,
    and the explicit-neuron concepts to remember once the node has accepted it."""

    config: SteeringConfig
    params: dict[str, Any]
    session: dict[str, Direction] = field(default_factory=dict)


class SteeringControl:
    """The direction library of the node and the two ways of building a SteeringConfig."""

    def __init__(self, direction_dirs: Sequence[str], session: dict[str, Direction] | None = None) -> None:
        """`session`: the explicit-neuron concepts to keep (the node passes one dict for its whole
        lifetime, so that cleanup + configure does not forget names the parameters still hold)."""
        existing = [d for d in direction_dirs if Path(d).is_dir()]
        for missing in sorted(set(direction_dirs) - set(existing)):
            log.warning("steering.direction_dirs: %r is not a directory (cwd %s); no concepts from it",
                        missing, Path.cwd())
        self.library = DirectionLibrary(existing)
        self.session: dict[str, Direction] = {} if session is None else session

    # ------------------------------------------------------------------ lookups
    def lookup(self, name: str, session: Mapping[str, Direction] | None = None) -> Direction:
        """A direction by name: the library, then concepts given with explicit neurons."""
        session = self.session if session is None else session
        if name in self.library:
            return self.library.get(name)
        if name in session:
            return session[name]
        broken = self.library.broken_reason(name)
        if broken:
            raise DirectionError(f"concept {name!r} is unavailable, its file is broken: {broken}")
        raise UnknownChoiceError("concept", name, [*self.library.names(), *session])

    def from_params(self, p: PolicyParams, session: Mapping[str, Direction] | None = None) -> SteeringConfig:
        """The config the `steering.*` parameters describe; ConfigError for an unknown concept."""
        directions = tuple(self._named(name, p.steering_alpha, p.steering_mode, session)
                           for name in p.steering_concepts)
        if p.steering_enabled and p.steering_require_validated:  # every way in ends here: params and SetSteering
            for direction in directions:
                reason = refusal_reason(direction)
                if reason:
                    raise ConfigError(f"steering.require_validated: {reason}")
        return SteeringConfig(directions=directions, enabled=p.steering_enabled, position=p.steering_position)

    def _named(self, name: str, alpha: float, mode: str, session: Mapping[str, Direction] | None = None) -> Direction:
        """A known direction with alpha/mode overridden when given (0 / "" keep its own)."""
        return self.lookup(name, session).with_options(alpha=alpha or None, mode=mode or None)

    # ------------------------------------------------------------------ SetSteering
    def from_request(self, concepts: Sequence[SteeringConcept], enabled: bool, p: PolicyParams) -> SteeringChange:
        """The config a SetSteering request asks for, and the parameter values that describe it.

        A concept with no neurons is looked up by name (its alpha/mode replaced when the request's
        are non-zero/non-empty); one with neurons is used as given. An empty list keeps the current
        concepts, so `enabled` alone switches steering on or off. ConfigError/DirectionError when
        the request is invalid or cannot be expressed by the `steering.*` parameters.
        """
        if not concepts:
            values: dict[str, Any] = {"steering.enabled": bool(enabled)}
            return SteeringChange(self.from_params(from_mapping(values, base=p)), values)
        session = dict(self.session)
        wanted, bases = [], []
        for c in concepts:
            direction, base = self._requested(c, session)
            wanted.append(direction)
            bases.append(base)
        names = [d.name for d in wanted]
        if len(set(names)) != len(names):
            raise ConfigError(f"concept names must be unique, got {names}")
        alpha = _common([d.alpha for d in wanted], [b.alpha for b in bases], 0.0)
        mode = _common([d.mode for d in wanted], [b.mode for b in bases], "")
        if alpha is None or mode is None:
            raise ConfigError(_unrepresentable(wanted, bases))
        values = {"steering.enabled": bool(enabled), "steering.concepts": names,
                  "steering.alpha": float(alpha), "steering.mode": mode}
        config = self.from_params(from_mapping(values, base=p), session)
        if config.directions != tuple(wanted):
            raise ConfigError(_unrepresentable(wanted, bases))
        new = {n: d for n, d in session.items() if self.session.get(n) != d}
        return SteeringChange(config, values, new)

    def _requested(self, c: SteeringConcept, session: dict[str, Direction]) -> tuple[Direction, Direction]:
        """(the direction the concept asks for, the one its name stands for); updates `session`."""
        if c.mode:
            check_mode(c.mode, f"concept {c.name!r}")
        if len(c.neurons) == 0:
            base = self.lookup(c.name, session)
            return base.with_options(alpha=c.alpha or None, mode=c.mode or None), base
        direction = msg_to_direction(c)
        direction.check()  # name rule, alpha range, duplicate neurons, signs
        if c.name in self.library:
            base = self.library.get(c.name)
            if (base.neurons, base.signs or (1.0,) * len(base.neurons)) != \
                    (direction.neurons, direction.signs or (1.0,) * len(direction.neurons)):
                raise ConfigError(f"concept {c.name!r} is a library direction with other neurons; give "
                                  "explicit neurons a name of their own (library: "
                                  f"{', '.join(self.library.names())})")
            return base.with_options(alpha=check_alpha(c.alpha, f"concept {c.name!r}: alpha"),
                                     mode=direction.mode), base
        session[c.name] = direction
        return direction, direction

    def commit(self, change: SteeringChange) -> None:
        """Remember the change's explicit-neuron concepts (after the node accepted it)."""
        self.session.update(change.session)

    def set_steering(self, policy: SteeredPolicy | None, concepts: Sequence[SteeringConcept], enabled: bool,
                     p: PolicyParams, model_state: str = "not loaded") -> tuple[SteeringChange, int]:
        """The SetSteering transaction: build, validate against the loaded model, queue, remember.

        Refused while no model is loaded (loading, unconfigured, failed): only the model can say
        whether a layer or neuron exists, and accepting blindly is how a bad request used to make
        the later load fail. Returns the change (its `params` are for the node to write back) and
        the index of the first inference that runs with it. Nothing is changed on any error.
        """
        if policy is None:
            raise ConfigError(f"set_steering refused: the model is {model_state}; steering is validated "
                              "against the loaded model, call again once it is ready (the steering.* "
                              "parameters can be set meanwhile and are checked when it loads)")
        explicit = []
        for c in concepts:
            if len(c.neurons):
                explicit.append(msg_to_direction(c))
                explicit[-1].check()
        policy.validate(SteeringConfig(tuple(explicit)))  # first: whether the neurons exist at all
        change = self.from_request(concepts, enabled, p)
        since = policy.update(change.config)  # DirectionError if it does not fit the model
        self.commit(change)
        return change, since

    # ------------------------------------------------------------------ ListConcepts
    def listing(self) -> tuple[list[str], list[str], list[int]]:
        """(names, descriptions, neuron counts) of every known direction, then every broken file
        (named by its file name, described as BROKEN with the reason, 0 neurons)."""
        names, descriptions, counts = [], [], []
        for name in self.library.names():
            d = self.library.get(name)
            names.append(name), descriptions.append(describe_direction(d)), counts.append(len(d.neurons))
        for name, d in sorted(self.session.items()):
            names.append(name)
            descriptions.append(f"{describe_direction(d)} (explicit neurons from set_steering, no file)")
            counts.append(len(d.neurons))
        for path, reason in sorted(self.library.broken.items()):
            names.append(path.name), descriptions.append(f"BROKEN, not loaded: {reason}"), counts.append(0)
        return names, descriptions, counts


def _common(wanted: list[Any], own: list[Any], neutral: Any) -> Any:
    """The one parameter value giving every concept its wanted value (`neutral` = each its own)."""
    if wanted == own:
        return neutral
    if len(set(wanted)) == 1 and wanted[0] != neutral:
        return wanted[0]
    return None  # not expressible by one value


def _unrepresentable(wanted: list[Direction], bases: list[Direction]) -> str:
    parts = [f"{d.name}: {d.mode} alpha {d.alpha:g} (own {b.mode} {b.alpha:g})" for d, b in zip(wanted, bases)]
    return ("the steering.* parameters hold one alpha and one mode for all concepts (0 / empty = each "
            f"concept's own); this request cannot be expressed by them: {'; '.join(parts)}. Give every "
            "concept the same alpha and mode, or 0 / empty for their own")
