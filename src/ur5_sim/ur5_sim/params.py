"""The twin's parameters: declared once here (type, range, description), valued once in
config/ur5_sim.yaml, which the node reads as its defaults (like libero_sim_bridge/params.py), so
`ros2 run ur5_sim twin` works without a params file and `-p name:=value` still wins."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml
from vla_steer_tools.errors import ConfigError, UnknownChoiceError

from .scene import CAMERAS

NODE_NAME = "ur5_sim"
MODES: tuple[str, ...] = ("lockstep", "realtime")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: type
    description: str
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    read_only: bool = True


SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("mode", str, "lockstep: one step of step_s per joint command received (then the new "
              "observation); realtime: steps of 1/rate_hz at rate_hz, commands take effect at once.",
              choices=MODES),
    ParamSpec("rate_hz", float, "Realtime step rate, Hz.", lo=0.5, hi=500.0),
    ParamSpec("step_s", float, "Lockstep: sim time advanced per command, s (= the policy's 1/control_hz).",
              lo=0.002, hi=5.0),
    ParamSpec("image_size", int, "Square camera images, px.", lo=16, hi=1024),
    ParamSpec("cameras", list, "Cameras published on camera/<name>/image_raw.", choices=CAMERAS),
    ParamSpec("publish_images", bool, "false = the cameras go silent (the arm keeps its setpoint); "
              "settable at run time.", read_only=False),
    ParamSpec("initial_positions", list, "Joint positions at start, rad (UR joint order)."),
    ParamSpec("republish_period_s", float, "Lockstep: re-publish the latest observation when no "
              "command came for this long, s (a policy that held or refused gets a new frame).",
              lo=0.05, hi=60.0),
    ParamSpec("instruction", str, "Published latched on `instruction` at start (\"\" = none).",
              read_only=False),
    ParamSpec("frame_id", str, "header.frame_id of ur5_sim/tool_pose (the base frame)."),
)
SPEC_BY_NAME: Mapping[str, ParamSpec] = {s.name: s for s in SPECS}


@dataclass(frozen=True)
class TwinParams:
    mode: str
    rate_hz: float
    step_s: float
    image_size: int
    cameras: tuple[str, ...]
    publish_images: bool
    initial_positions: tuple[float, ...]
    republish_period_s: float
    instruction: str
    frame_id: str


def default_params_file() -> Path:
    """The installed config/ur5_sim.yaml, else the workspace's (a source checkout)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory("ur5_sim")) / "config" / "ur5_sim.yaml"
    except PackageNotFoundError:
        return Path(__file__).resolve().parents[3] / "config" / "ur5_sim.yaml"


def load_defaults(path: str | Path | None = None) -> dict[str, Any]:
    """The node's section of a params YAML, checked: exactly the SPECS keys, each valid."""
    path = Path(path) if path is not None else default_params_file()
    if not path.is_file():
        raise ConfigError(f"ur5_sim params file not found: {path}")
    doc = yaml.safe_load(path.read_text()) or {}
    try:
        values = dict(doc[NODE_NAME]["ros__parameters"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: no '{NODE_NAME}: ros__parameters:' section") from exc
    missing, unknown = sorted(set(SPEC_BY_NAME) - set(values)), sorted(set(values) - set(SPEC_BY_NAME))
    if missing or unknown:
        raise ConfigError(f"{path}: missing parameters {missing}, unknown parameters {unknown}")
    for name, value in values.items():
        check_value(name, value)
    return values


def check_value(name: str, value: Any) -> None:
    """ConfigError naming the parameter and the bad value, if it breaks its spec."""
    if name not in SPEC_BY_NAME:
        raise UnknownChoiceError("ur5_sim parameter", name, SPEC_BY_NAME)
    spec = SPEC_BY_NAME[name]
    ok = {float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          list: lambda v: isinstance(v, (list, tuple)), bool: lambda v: isinstance(v, bool),
          str: lambda v: isinstance(v, str)}[spec.kind](value)
    if not ok:
        raise ConfigError(f"parameter {name}={value!r}: expected {spec.kind.__name__}")
    for item in (list(value) if spec.kind is list else [value]):
        if spec.choices and item not in spec.choices:
            raise UnknownChoiceError(f"value for parameter {name}", item, spec.choices)
    if spec.kind in (int, float):
        if not math.isfinite(value) or (spec.lo is not None and value < spec.lo) or (
                spec.hi is not None and value > spec.hi):
            raise ConfigError(f"parameter {name}={value!r} out of range {spec.lo}..{spec.hi}")
    if name == "initial_positions" and (len(value) != 6 or not all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in value)):
        raise ConfigError(f"parameter initial_positions={value!r}: expected 6 finite joint angles (rad)")


def from_mapping(values: Mapping[str, Any]) -> TwinParams:
    """Validated, typed parameters from a mapping holding every SPECS name."""
    for name in SPEC_BY_NAME:
        if name not in values:
            raise ConfigError(f"parameter {name} has no value")
        check_value(name, values[name])
    kw = {f.name: values[f.name] for f in fields(TwinParams)}
    kw["cameras"] = tuple(kw["cameras"])
    kw["initial_positions"] = tuple(float(v) for v in kw["initial_positions"])
    kw["rate_hz"], kw["step_s"] = float(kw["rate_hz"]), float(kw["step_s"])
    kw["republish_period_s"] = float(kw["republish_period_s"])
    return TwinParams(**kw)
