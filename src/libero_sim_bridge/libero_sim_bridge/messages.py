"""Simulator values -> ROS messages (pure functions, no node state)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header

from vla_steer_msgs.msg import EpisodeStatus, EpisodeSummary

from .env import SimObservation
from .sim_worker import EpisodeInfo, EpisodeResult

#: Panda arm and finger joint names as robosuite names them in LIBERO.
ARM_JOINTS: tuple[str, ...] = tuple(f"robot0_joint{i}" for i in range(1, 8))
FINGER_JOINTS: tuple[str, ...] = ("gripper0_finger_joint1", "gripper0_finger_joint2")


def header(stamp: Time, frame_id: str = "") -> Header:
    return Header(stamp=stamp, frame_id=frame_id)


def image_msg(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """uint8 (H, W, 3) RGB -> sensor_msgs/Image rgb8."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    msg = Image(header=header(stamp, frame_id), height=height, width=width, encoding="rgb8",
                is_bigendian=0, step=width * 3)
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def joint_state_msg(names: Sequence[str], position: np.ndarray, velocity: np.ndarray | None,
                    stamp: Time) -> JointState:
    msg = JointState(header=header(stamp), name=list(names))
    msg.position = [float(v) for v in position]
    if velocity is not None:
        msg.velocity = [float(v) for v in velocity]
    return msg


def pose_msg(obs: SimObservation, stamp: Time, frame_id: str) -> PoseStamped:
    """End-effector pose; robosuite quaternions are x y z w like geometry_msgs."""
    msg = PoseStamped(header=header(stamp, frame_id))
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in obs.ee_pos)
    q = msg.pose.orientation
    q.x, q.y, q.z, q.w = (float(v) for v in obs.ee_quat)
    return msg


def status_msg(obs: SimObservation, info: EpisodeInfo, stamp: Time) -> EpisodeStatus:
    return EpisodeStatus(header=header(stamp), suite=info.suite, task_id=info.task_id,
                         init_state_id=info.init_state_id, step=obs.step,
                         max_steps=info.max_steps, done=obs.done, success=obs.success)


def summary_msg(result: EpisodeResult, stamp: Time) -> EpisodeSummary:
    info, m = result.info, result.metrics
    return EpisodeSummary(
        header=header(stamp), suite=info.suite, task_id=info.task_id,
        init_state_id=info.init_state_id, instruction=info.instruction, success=result.success,
        steps=result.steps, mean_step_displacement=m.mean_step_displacement,
        path_length=m.path_length, max_height=m.max_height, min_height=m.min_height,
        mean_dx=m.mean_dx, mean_dy=m.mean_dy, mean_dz=m.mean_dz,
        net_displacement=m.net_displacement, interrupted=result.interrupted)


def diagnostics_msg(name: str, level: bytes, message: str, values: dict[str, object],
                    stamp: Time) -> DiagnosticArray:
    """One DiagnosticStatus; level is DiagnosticStatus.OK / WARN / ERROR (bytes)."""
    status = DiagnosticStatus(level=level, name=name, message=message,
                              hardware_id="libero_sim")
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    return DiagnosticArray(header=header(stamp), status=[status])
