"""Every parameter of the `vla_policy` node, declared once.

`PolicyParams` is the single definition: each field carries its ROS name, a description, a range or
a set of choices and whether it may change at run time. From it this module declares the parameters
(with `rcl_interfaces` descriptors, so `ros2 param describe` shows the same text), reads them back,
validates a whole set (ranges are also enforced by rclpy; cross-field rules only here) and renders a
markdown table for the docs. Values live in `config/*.yaml`; the defaults here are the safe fallback
(`output.dry_run` true, steering off), and a test checks that each YAML names exactly these keys.

This module never imports rclpy at import time beyond the message types, so the validation rules
can be unit-tested without a running ROS context.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from vla_steer_tools.errors import ConfigError, UnknownChoiceError

#: What `output.mode` can publish, and where.
OUTPUT_MODES: tuple[str, ...] = ("joint_trajectory", "joint_position", "ee_twist", "ee_delta", "ee_delta_ik")
#: Arm kinematics the node can compute (vla_steer_tools.kinematics); "none" = no tool pose, no IK.
ROBOT_MODELS: tuple[str, ...] = ("none", "ur5", "ur5e")
MODEL_FAMILIES: tuple[str, ...] = ("openvla", "pi0", "pi0fast", "minivla")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
STEERING_MODES: tuple[str, ...] = ("", "override", "add", "scale")  # "" = each direction's own
STEERING_POSITIONS: tuple[str, ...] = ("", "all", "prefill", "decode")  # "" = the model family's own
#: Where the policy's proprioceptive state comes from (see inputs.py).
STATE_SOURCES: tuple[str, ...] = ("joint_states", "ee_pose_gripper", "none")


def _param(
    name: str,
    default: Any,
    description: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] = (),
    read_only: bool = False,
) -> Any:
    """A dataclass field that knows its ROS parameter name and descriptor data."""
    meta = {"ros_name": name, "description": description, "lo": lo, "hi": hi,
            "choices": choices, "read_only": read_only}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class PolicyParams:
    """The node's configuration. Field order = the order `describe()` lists them."""

    autostart: bool = _param("autostart", False,
                             "Configure (load the model and directions) and activate at start, for users "
                             "without a lifecycle manager; a failure exits the process non-zero. false: "
                             "the node waits unconfigured for `configure` / `activate` transitions.",
                             read_only=True)
    model_family: str = _param("model.family", "openvla", "Model family to load.",
                               choices=MODEL_FAMILIES, read_only=True)
    model_path: str = _param("model.path", ".state/checkpoints/tiny-openvla",
                             "Checkpoint directory (relative paths: from the working directory).",
                             read_only=True)
    model_device: str = _param("model.device", "auto", "Torch device.", choices=DEVICES,
                               read_only=True)
    model_dtype: str = _param("model.dtype", "auto", "Weights dtype.", choices=DTYPES,
                              read_only=True)
    model_unnorm_key: str = _param("model.unnorm_key", "",
                                   "Dataset whose action statistics un-normalize the actions "
                                   "(OpenVLA norm_stats key); empty = the checkpoint's only one.",
                                   read_only=True)
    model_options: str = _param("model.options", "",
                                "Family-specific load options as a YAML mapping, e.g. '{center_crop: true, "
                                "gripper: libero}' for OpenVLA on LIBERO (0.9 center crop; binarised -1 open / "
                                "+1 close gripper, as OpenVLA's LIBERO evaluation); empty = none.",
                                read_only=True)
    cameras_topics: list[str] = _param("cameras.topics", ["camera/agentview/image_raw"],
                                  "Camera image topics (sensor_msgs/Image rgb8, bgr8 or mono8).",
                                  read_only=True)
    cameras_keys: list[str] = _param("cameras.keys", ["agentview"],
                                "Observation image key of each camera topic (same order).",
                                read_only=True)
    cameras_width_px: int = _param("cameras.width_px", 224, "Expected image width; other sizes "
                                   "are rejected.", lo=8, hi=8192, read_only=True)
    cameras_height_px: int = _param("cameras.height_px", 224, "Expected image height.",
                                    lo=8, hi=8192, read_only=True)
    instruction_max_chars: int = _param("instruction.max_chars", 1000,
                                        "Longest instruction accepted (characters); a longer one is "
                                        "rejected and the node holds. Keep it within the model's text "
                                        "context: every character can cost a token, each token adds "
                                        "latency, and OpenVLA's prompt shares Llama-2's 4096-token context "
                                        "with 256 image tokens (Pi0 keeps only tokenizer_max_length = 48).",
                                        lo=1, hi=100000)
    state_source: str = _param("state.source", "joint_states",
                               "Policy state: joint_states positions (output.joint_names order), "
                               "ee_pose_gripper = ee xyz + axis-angle + gripper_state positions "
                               "(LIBERO/openpi layout), or none.", choices=STATE_SOURCES)
    control_hz: float = _param("control_hz", 10.0, "Rate at which chunk steps are published.",
                               lo=0.5, hi=1000.0, read_only=True)
    chunk_execute_steps: int = _param("chunk.execute_steps", 1,
                                      "Steps of each action chunk executed before the next "
                                      "inference result replaces it.", lo=1, hi=1000)
    steering_enabled: bool = _param("steering.enabled", False, "Steer with the active concepts.")
    steering_concepts: list[str] = _param("steering.concepts", [],
                                     "Active concept names, looked up in steering.direction_dirs.")
    steering_direction_dirs: list[str] = _param("steering.direction_dirs", ["config/directions/tiny-openvla"],
                                           "Directories of direction YAML files (one folder per model).", read_only=True)
    steering_alpha: float = _param("steering.alpha", 0.0, "Alpha for every active concept; "
                                   "0 = each direction's own alpha.", lo=-1000.0, hi=1000.0)
    steering_mode: str = _param("steering.mode", "", "Edit mode for every active concept; "
                                "empty = each direction's own.", choices=STEERING_MODES)
    steering_position: str = _param("steering.position", "",
                                    "Token positions edited: all, prefill or decode; empty = the "
                                    "model family's own (pi0fast: prefill, others: all).",
                                    choices=STEERING_POSITIONS)
    steering_require_validated: bool = _param("steering.require_validated", False,
                                              "Refuse to steer with a direction whose provenance lacks a "
                                              "[validation: PASS ...] stamp written by `vla-steer validate` "
                                              "(true on a robot).", read_only=True)
    robot_model: str = _param("robot.model", "none",
                              "Arm kinematics (UR DH parameters): with ur5 or ur5e the node computes the "
                              "tool0 pose in base_link from joint_states, publishes it on ee_pose, uses it for "
                              "the workspace box (instead of a subscribed ee_pose) and can run output.mode "
                              "ee_delta_ik. It must match the arm: the UR5e's base is 7 cm taller than the UR5's. "
                              "none = no kinematics (ee_pose is subscribed).",
                              choices=ROBOT_MODELS, read_only=True)
    output_mode: str = _param("output.mode", "ee_delta", "What is published as the command "
                              "(ee_delta_ik: ee deltas through the robot.model IK to a JointTrajectory).",
                              choices=OUTPUT_MODES, read_only=True)
    output_dry_run: bool = _param("output.dry_run", True, "Compute and publish the chunk but "
                                  "never the command.")
    output_lockstep: bool = _param("output.lockstep", False, "Publish the next step only after a "
                                   "new image arrived on every camera (simulation).")
    output_joint_names: list[str] = _param("output.joint_names", [], "Commanded joints in action "
                                      "order; empty = the order of joint_states.")
    output_ee_linear_m_per_unit: float = _param("output.ee_linear_m_per_unit", 1.0,
                                                "Metres per unit of the model's xyz delta.",
                                                lo=0.0, hi=10.0)
    output_ee_angular_rad_per_unit: float = _param("output.ee_angular_rad_per_unit", 1.0,
                                                   "Radians per unit of the model's rotation "
                                                   "delta.", lo=0.0, hi=10.0)
    limits_max_joint_vel_rad_s: float = _param("limits.max_joint_vel_rad_s", 1.0,
                                               "Joint speed limit for joint commands.",
                                               lo=0.0, hi=10.0)
    limits_joint_position_min_rad: list[float] = _param("limits.joint_position_min_rad", [],
                                                 "Lower joint limits (empty = none).")
    limits_joint_position_max_rad: list[float] = _param("limits.joint_position_max_rad", [],
                                                 "Upper joint limits (empty = none).")
    limits_workspace_min_m: list[float] = _param("limits.workspace_min_m", [],
                                          "End-effector box lower corner x y z (empty = none).")
    limits_workspace_max_m: list[float] = _param("limits.workspace_max_m", [],
                                          "End-effector box upper corner x y z (empty = none).")
    limits_max_ee_step_m: float = _param("limits.max_ee_step_m", 0.05,
                                         "Largest end-effector translation per control step.",
                                         lo=0.0, hi=1.0)
    watchdog_max_input_age_s: float = _param("watchdog.max_input_age_s", 0.5,
                                             "Hold when a camera or joint_states is older.",
                                             lo=0.001, hi=3600.0)
    watchdog_max_observation_age_s: float = _param("watchdog.max_observation_age_s", 1.0,
                                                   "A command computed from an observation older than "
                                                   "this is never sent (the node holds). Chunk steps count "
                                                   "from the same observation: allow inference latency + "
                                                   "chunk.execute_steps / control_hz.",
                                                   lo=0.001, hi=3600.0)
    watchdog_instruction_max_age_s: float = _param("watchdog.instruction_max_age_s", 0.0,
                                                   "Hold when the instruction is older; 0 = an "
                                                   "instruction never expires (it is latched).",
                                                   lo=0.0, hi=1e6)
    watchdog_require_joint_states: bool = _param("watchdog.require_joint_states", True,
                                                 "Hold while joint_states is missing or stale.")


def specs() -> tuple[dataclasses.Field, ...]:
    """The parameter fields, in declaration order."""
    return dataclasses.fields(PolicyParams)


def ros_names() -> list[str]:
    return [f.metadata["ros_name"] for f in specs()]


_ROS_TYPES: dict[str, int] = {
    "bool": ParameterType.PARAMETER_BOOL,
    "int": ParameterType.PARAMETER_INTEGER,
    "float": ParameterType.PARAMETER_DOUBLE,
    "str": ParameterType.PARAMETER_STRING,
    "list[str]": ParameterType.PARAMETER_STRING_ARRAY,
    "list[float]": ParameterType.PARAMETER_DOUBLE_ARRAY,
}
_ARRAY_TYPES = (ParameterType.PARAMETER_STRING_ARRAY, ParameterType.PARAMETER_DOUBLE_ARRAY)


def _ros_type(f: dataclasses.Field) -> int:
    """The rcl_interfaces ParameterType of a field, from its annotation."""
    return _ROS_TYPES[str(f.type)]


def descriptor(f: dataclasses.Field) -> ParameterDescriptor:
    """The rcl_interfaces descriptor (description, range, read-only) of one field."""
    meta = f.metadata
    desc = ParameterDescriptor(name=meta["ros_name"], type=_ros_type(f), read_only=meta["read_only"])
    desc.description = meta["description"]
    if meta["choices"]:
        desc.additional_constraints = "one of: " + ", ".join(repr(c) for c in meta["choices"])
    if meta["lo"] is not None:
        if desc.type == ParameterType.PARAMETER_INTEGER:
            desc.integer_range = [IntegerRange(from_value=int(meta["lo"]), to_value=int(meta["hi"]), step=1)]
        else:
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(meta["lo"]), to_value=float(meta["hi"]), step=0.0)
            ]
    return desc


def declare(node: Any) -> PolicyParams:
    """Declare every parameter on `node` (overrides and params files apply) and return them validated."""
    from rclpy.parameter import Parameter

    for f in specs():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        name, ros_type = f.metadata["ros_name"], Parameter.Type(_ros_type(f))
        if isinstance(default, list) and not default:
            # An empty list has no element type (and a params file's `[]` arrives unset): declare
            # the type, then give it a typed empty value unless an override set one.
            node.declare_parameter(name, ros_type, descriptor(f))
            if node.get_parameter_or(name).type_ == Parameter.Type.NOT_SET:
                node.set_parameters([Parameter(name, ros_type, [])])
        else:
            node.declare_parameter(name, default, descriptor(f))
    return read(node)


def read(node: Any) -> PolicyParams:
    """The node's current parameter values as a validated `PolicyParams`."""
    values = {f.metadata["ros_name"]: node.get_parameter(f.metadata["ros_name"]).value for f in specs()}
    return from_mapping(values)


def from_mapping(values: Mapping[str, Any], base: PolicyParams | None = None) -> PolicyParams:
    """Build params from ROS-named values on top of `base` (defaults if None); validated.

    Raises ConfigError naming the parameter for unknown names or bad values.
    """
    by_name = {f.metadata["ros_name"]: f for f in specs()}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name not in by_name:
            raise UnknownChoiceError("parameter", name, by_name)
        f = by_name[name]
        if _ros_type(f) in _ARRAY_TYPES:
            value = [] if value is None else list(value)
        changes[f.name] = value
    params = dataclasses.replace(base or PolicyParams(), **changes)
    validate(params)
    return params


def validate(p: PolicyParams) -> None:
    """Check every field and the rules between fields; ConfigError names the first bad value."""
    for f in specs():
        _check_field(f, getattr(p, f.name))
    if not p.cameras_topics:
        raise ConfigError("cameras.topics is empty: the policy needs at least one camera")
    if len(p.cameras_topics) != len(p.cameras_keys):
        raise ConfigError(f"cameras.topics has {len(p.cameras_topics)} entries but cameras.keys has "
                          f"{len(p.cameras_keys)}; give one image key per camera topic")
    if len(set(p.cameras_keys)) != len(p.cameras_keys):
        raise ConfigError(f"cameras.keys has duplicates: {p.cameras_keys}")
    if not p.model_path:
        raise ConfigError("model.path is empty")
    model_options(p)
    _check_box("limits.joint_position_min_rad", p.limits_joint_position_min_rad,
               "limits.joint_position_max_rad", p.limits_joint_position_max_rad, None)
    _check_box("limits.workspace_min_m", p.limits_workspace_min_m,
               "limits.workspace_max_m", p.limits_workspace_max_m, 3)
    _check_ik_mode(p)
    n_joints = len(p.limits_joint_position_min_rad)
    if n_joints and p.output_joint_names and n_joints != len(p.output_joint_names):
        raise ConfigError(f"limits.joint_position_min_rad has {n_joints} values but output.joint_names "
                          f"has {len(p.output_joint_names)}")


def _check_ik_mode(p: PolicyParams) -> None:
    """ee_delta_ik needs an arm model and commands exactly that arm's six joints (any order)."""
    if p.output_mode != "ee_delta_ik":
        return
    from vla_steer_tools.kinematics import JOINT_NAMES  # constants only: the solver is not imported

    if p.robot_model == "none":
        raise ConfigError("output.mode ee_delta_ik needs robot.model (ur5 or ur5e): the IK is the arm's")
    if sorted(p.output_joint_names) != sorted(JOINT_NAMES):
        raise ConfigError(f"output.mode ee_delta_ik commands the {p.robot_model} joints {list(JOINT_NAMES)}; "
                          f"output.joint_names is {p.output_joint_names}")


def model_options(p: PolicyParams) -> dict[str, Any]:
    """`model.options` (YAML text) plus `model.unnorm_key` as keyword options for load_policy."""
    try:
        options = yaml.safe_load(p.model_options) if p.model_options.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"model.options is not valid YAML: {exc}") from exc
    if not isinstance(options, dict):
        raise ConfigError(f"model.options must be a YAML mapping like '{{center_crop: true}}', got {p.model_options!r}")
    if p.model_unnorm_key:
        options["unnorm_key"] = p.model_unnorm_key
    return options


def _check_field(f: dataclasses.Field, value: Any) -> None:
    meta = f.metadata
    name = meta["ros_name"]
    if meta["choices"] and value not in meta["choices"]:
        raise UnknownChoiceError(f"value for {name}", value, meta["choices"])
    if meta["lo"] is not None:
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{name} = {value!r} is not a finite number")
        if not meta["lo"] <= value <= meta["hi"]:
            raise ConfigError(f"{name} = {value!r} is outside [{meta['lo']}, {meta['hi']}]")
    if isinstance(value, list):
        for item in value:
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{name} contains a non-finite value: {value}")
            if isinstance(item, str) and not item:
                raise ConfigError(f"{name} contains an empty string: {value}")


def _check_box(lo_name: str, lo: list, hi_name: str, hi: list, size: int | None) -> None:
    """Both bounds empty, or same length (== size if given) with lo < hi elementwise."""
    if not lo and not hi:
        return
    if len(lo) != len(hi) or (size is not None and len(lo) != size):
        want = f"{size} values each" if size else "the same number of values"
        raise ConfigError(f"{lo_name} ({len(lo)} values) and {hi_name} ({len(hi)} values) need {want} "
                          "(live, set both in ONE call: the set_parameters_atomically service)")
    for i, (a, b) in enumerate(zip(lo, hi)):
        if not a < b:
            raise ConfigError(f"{lo_name}[{i}] = {a} is not below {hi_name}[{i}] = {b}")


def describe() -> str:
    """A markdown table of every parameter (for README / `--help`)."""
    rows = ["| parameter | default | range / choices | description |", "|---|---|---|---|"]
    for f in specs():
        meta = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if meta["choices"]:
            limits = ", ".join(repr(c) for c in meta["choices"])
        elif meta["lo"] is not None:
            limits = f"[{meta['lo']}, {meta['hi']}]"
        else:
            limits = ""
        ro = " (read-only)" if meta["read_only"] else ""
        rows.append(f"| `{meta['ros_name']}` | `{default!r}` | {limits} | {meta['description']}{ro} |")
    return "\n".join(rows)


def changed_names(old: PolicyParams, new: PolicyParams, names: Iterable[str]) -> bool:
    """Whether any of the ROS-named fields differ between two param sets."""
    fields = {f.metadata["ros_name"]: f.name for f in specs()}
    return any(getattr(old, fields[n]) != getattr(new, fields[n]) for n in names)
