"""Typed errors. Each names the bad value and, where there is a finite set, lists the valid ones,
so that a ROS service or the CLI can hand the message to the user unchanged."""

from __future__ import annotations

from typing import Iterable


class VlaSteerError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(VlaSteerError, ValueError):
    """A configuration value (path, name, number) is invalid."""


class UnknownChoiceError(ConfigError):
    """A name is not among the valid choices; the message lists them and a close match."""

    def __init__(self, what: str, value: object, choices: Iterable[str]) -> None:
        import difflib

        choices = sorted(choices)
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(f"unknown {what} {value!r}{hint}; valid: {', '.join(choices) or '(none)'}")
        self.value = value
        self.choices = choices


class ModelLayoutError(VlaSteerError):
    """A model's module tree is not the layout an adapter expects (where are the MLPs?)."""


class CheckpointError(VlaSteerError):
    """A checkpoint is missing, corrupt, or does not match its config (lists the bad keys)."""


class DirectionError(VlaSteerError, ValueError):
    """A steering direction does not fit the loaded model (shape, range, alpha)."""


class ObservationError(VlaSteerError, ValueError):
    """An observation cannot be fed to the policy (image size/channels, empty text, NaN state)."""
