"""The bridge's parameters: declared once here, valued once in config/libero_sim.yaml.

`SPECS` names every parameter with its type, description and allowed range or choices; it has no
values. The values come from the YAML (installed as share/libero_sim_bridge/config/libero_sim.yaml,
a symlink to the workspace's config/ in a `--symlink-install` build), which the node reads as its
defaults, so `ros2 run libero_sim_bridge bridge` works without a params file while
`-p name:=value`, `--params-file` and `parameter_overrides=[...]` still win. A test checks that the
YAML names exactly these keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml
from vla_steer_tools.errors import ConfigError, UnknownChoiceError

from .env import CAMERAS, ORIENTATIONS, SUITE_MAX_STEPS

NODE_NAME = "libero"
MODES: tuple[str, ...] = ("lockstep", "realtime")
IDLE_ACTIONS: tuple[str, ...] = ("hold", "zero")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type and what values are allowed (no value: that is the YAML's job)."""

    name: str
    kind: type
    description: str
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    read_only: bool = False


SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("suite", str, "LIBERO suite of the first episode and of resets that name none.",
              choices=tuple(SUITE_MAX_STEPS)),
    ParamSpec("task_id", int, "Task index in the suite.", lo=0, hi=89),
    ParamSpec("init_state_id", int, "Index of the benchmark's fixed init state.", lo=0, hi=49),
    ParamSpec("mode", str, "lockstep: one sim step per action received; "
              "realtime: steps at rate_hz.", choices=MODES, read_only=True),
    ParamSpec("rate_hz", float, "Step rate in realtime mode, Hz.", lo=0.1, hi=100.0,
              read_only=True),
    ParamSpec("realtime_idle_action", str, "Realtime, no new action since the last step: hold = "
              "repeat it, zero = no motion (gripper command kept).", choices=IDLE_ACTIONS),
    ParamSpec("image_size", int, "Square camera image size, px.", lo=8, hi=1024,
              read_only=True),
    ParamSpec("fast_render", bool, "Cheaper rendering (no AA/reflections/skybox), reapplied "
              "per reset.", read_only=True),
    ParamSpec("image_orientation", str, "Flip applied to LIBERO's raw images (rot180 = what "
              "OpenVLA/openpi LIBERO checkpoints were trained on).", choices=ORIENTATIONS,
              read_only=True),
    ParamSpec("cameras", list, "Cameras published on camera/<name>/image_raw.",
              choices=tuple(CAMERAS), read_only=True),
    ParamSpec("max_steps", int, "Episode step limit; 0 = the LIBERO protocol's limit for the "
              "suite.", lo=0, hi=100000),
    ParamSpec("settle_steps", int, "No-op steps after reset (objects come to rest).", lo=0,
              hi=1000),
    ParamSpec("republish_period_s", float, "Re-publish the reset observation this often until the "
              "first action arrives, s.", lo=0.05, hi=60.0),
    ParamSpec("action_queue_depth", int, "Lockstep: actions waiting to execute; more are dropped.",
              lo=1, hi=1000, read_only=True),
    ParamSpec("frame_id", str, "header.frame_id of ee_pose.", read_only=True),
    ParamSpec("start_episode", bool, "Create the env and reset on start.", read_only=True),
)

SPEC_BY_NAME: Mapping[str, ParamSpec] = {s.name: s for s in SPECS}


@dataclass(frozen=True)
class BridgeParams:
    """Typed view of the parameter values (field names = SPECS names)."""

    suite: str
    task_id: int
    init_state_id: int
    mode: str
    rate_hz: float
    realtime_idle_action: str
    image_size: int
    fast_render: bool
    image_orientation: str
    cameras: tuple[str, ...]
    max_steps: int
    settle_steps: int
    republish_period_s: float
    action_queue_depth: int
    frame_id: str
    start_episode: bool


def default_params_file() -> Path:
    """The installed copy of config/libero_sim.yaml."""
    from ament_index_python.packages import (
        PackageNotFoundError,
        get_package_share_directory,
    )

    try:
        share = Path(get_package_share_directory("libero_sim_bridge"))
    except PackageNotFoundError as exc:
        raise ConfigError("package libero_sim_bridge is not installed: run tools/setup.sh") from exc
    return share / "config" / "libero_sim.yaml"


def load_defaults(path: str | Path | None = None) -> dict[str, Any]:
    """The node's section of a params YAML, checked: every SPECS key present, no unknown key."""
    path = Path(path) if path is not None else default_params_file()
    if not path.is_file():
        raise ConfigError(f"bridge params file not found: {path}")
    doc = yaml.safe_load(path.read_text()) or {}
    try:
        values = dict(doc[NODE_NAME]["ros__parameters"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: no '{NODE_NAME}: ros__parameters:' section") from exc
    missing = sorted(set(SPEC_BY_NAME) - set(values))
    unknown = sorted(set(values) - set(SPEC_BY_NAME))
    if missing or unknown:
        raise ConfigError(f"{path}: missing parameters {missing}, unknown parameters {unknown}")
    for name, value in values.items():
        check_value(name, value)
    return values


def check_value(name: str, value: Any) -> None:
    """ConfigError naming the parameter and the bad value, if it breaks its spec."""
    if name not in SPEC_BY_NAME:
        raise UnknownChoiceError("bridge parameter", name, SPEC_BY_NAME)
    spec = SPEC_BY_NAME[name]
    if not _type_ok(spec.kind, value):
        raise ConfigError(f"parameter {name}={value!r}: expected {spec.kind.__name__}")
    items = list(value) if spec.kind is list else [value]
    for item in items:
        if spec.choices and item not in spec.choices:
            raise UnknownChoiceError(f"value for parameter {name}", item, spec.choices)
    if spec.kind in (int, float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"parameter {name}={value!r} is not finite")
        if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
            raise ConfigError(f"parameter {name}={value!r} out of range {spec.lo}..{spec.hi}")
    if spec.kind is list and not items:
        raise ConfigError(f"parameter {name} must not be empty")


def _type_ok(kind: type, value: Any) -> bool:
    """bool is not an int here, an int is a fine float (YAML writes 20 for 20.0)."""
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, kind)


def from_mapping(values: Mapping[str, Any]) -> BridgeParams:
    """Validated, typed parameters from a name -> value mapping holding every SPECS name."""
    for name in SPEC_BY_NAME:
        if name not in values:
            raise ConfigError(f"parameter {name} has no value")
        check_value(name, values[name])
    kw = {f.name: values[f.name] for f in fields(BridgeParams)}
    kw["cameras"] = tuple(kw["cameras"])
    kw["rate_hz"] = float(kw["rate_hz"])
    kw["republish_period_s"] = float(kw["republish_period_s"])
    return BridgeParams(**kw)
