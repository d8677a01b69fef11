"""The simulated UR5e: MuJoCo physics, the controllers' setpoint and offscreen camera images.

Plain Python (no ROS): `twin_node.py` adapts it. `Ur5Twin.advance(dt)` runs physics for `dt`
seconds of sim time while the actuators track the current `Setpoint` (velocity feed-forward on
the Menagerie's position servos, so a ramp is tracked without the servo's lag — like a UR's own
joint controllers); `observe()` reads joints, tool pose and renders the cameras.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import mujoco
import numpy as np

from .scene import CAMERAS, GRIPPER_PREFIX, HOME, UR_JOINTS, build_spec, joint_addresses
from .trajectory import CommandError, Setpoint, check_positions, reorder

GRIPPER_CTRL_MAX = 255.0  # the 2F-85 actuator's ctrlrange top (fully closed)


@dataclass
class TwinObservation:
    time_s: float  # sim time
    joint_pos: np.ndarray  # (6,) rad, UR_JOINTS order
    joint_vel: np.ndarray  # (6,) rad/s
    gripper: float  # 0 = open .. 1 = closed (driver joint over its range)
    ee_pos: np.ndarray  # (3,) m, the 2F-85's pinch site in the base frame
    ee_quat_xyzw: np.ndarray  # (4,)
    images: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (H, W, 3) uint8


@dataclass
class StepTiming:
    physics_s: float = 0.0
    render_s: float = 0.0


class Ur5Twin:
    """`Ur5Twin(image_size=128)`; `.command_trajectory(names, offsets, points)`, `.command_positions(q)`,
    `.command_gripper(closure)`, `.advance(0.1)`, `.observe()`."""

    def __init__(self, image_size: int = 128, cameras: Sequence[str] = CAMERAS,
                 initial: Sequence[float] = HOME) -> None:
        for cam in cameras:
            if cam not in CAMERAS:
                raise ValueError(f"unknown camera {cam!r}; the scene has {list(CAMERAS)}")
        self.model = build_spec(image_size).compile()
        self.data = mujoco.MjData(self.model)
        self.cameras = tuple(cameras)
        self._qadr, self._dadr = joint_addresses(self.model)
        arm = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_ACTUATOR, n)
               for n in ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")]
        self._arm_act = np.array(arm)
        kp = self.model.actuator_gainprm[self._arm_act, 0]
        self._kv_over_kp = -self.model.actuator_biasprm[self._arm_act, 2] / kp  # (6,) s
        self._grip_act = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_ACTUATOR,
                                           GRIPPER_PREFIX + "fingers_actuator")
        self._grip_joint = self.model.jnt_qposadr[mujoco.mj_name2id(
            self.model, mujoco.mjtObj.mjOBJ_JOINT, GRIPPER_PREFIX + "right_driver_joint")]
        self._pinch = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, GRIPPER_PREFIX + "pinch")
        ranges = self.model.actuator_ctrlrange[self._arm_act]  # the servos' own command range
        self.joint_min, self.joint_max = ranges[:, 0].copy(), ranges[:, 1].copy()
        self._renderer = mujoco.Renderer(self.model, image_size, image_size) if cameras else None
        self.image_size = image_size
        self.timing = StepTiming()
        self.reset(initial)

    # -- state ----------------------------------------------------------------------------------
    def reset(self, q: Sequence[float] = HOME) -> None:
        q0 = check_positions(q, self.joint_min, self.joint_max, "initial joint positions")
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qadr] = q0
        self.data.ctrl[self._arm_act] = q0
        self.setpoint = Setpoint.hold(0.0, q0)
        self._gripper = 0.0
        mujoco.mj_forward(self.model, self.data)

    @property
    def time_s(self) -> float:
        return float(self.data.time)

    # -- commands (each checked first; a CommandError leaves everything as it was) ---------------
    def command_trajectory(self, names: Sequence[str], offsets_s: Sequence[float],
                           points: Sequence[Sequence[float]]) -> None:
        rows = reorder(names, UR_JOINTS, points)
        targets = np.vstack([check_positions(r, self.joint_min, self.joint_max, "trajectory point")
                             for r in rows]) if rows else np.zeros((0, 6))
        self.setpoint = self.setpoint.follow(self.time_s, offsets_s, targets)

    def command_positions(self, q: Sequence[float]) -> None:
        target = check_positions(q, self.joint_min, self.joint_max, "position command")
        self.setpoint = Setpoint.hold(self.time_s, target)

    def command_gripper(self, closure: float) -> None:
        value = float(closure)
        if not np.isfinite(value) or not 0.0 <= value <= 1.0:
            raise CommandError(f"gripper closure {closure!r} must be in 0..1")
        self._gripper = value

    # -- simulation -----------------------------------------------------------------------------
    def advance(self, duration_s: float) -> None:
        """Physics for `duration_s` of sim time (whole physics steps), tracking the setpoint."""
        t0 = time.perf_counter()
        steps = max(1, int(round(duration_s / self.model.opt.timestep)))
        self.data.ctrl[self._grip_act] = self._gripper * GRIPPER_CTRL_MAX
        for _ in range(steps):
            sp, sp_vel = self.setpoint.sample(self.time_s)
            ctrl = sp + self._kv_over_kp * sp_vel  # PD around the moving setpoint: no ramp lag
            self.data.ctrl[self._arm_act] = np.clip(ctrl, self.joint_min, self.joint_max)
            mujoco.mj_step(self.model, self.data)
        self.timing.physics_s = time.perf_counter() - t0

    def observe(self, render: bool = True) -> TwinObservation:
        d = self.data
        quat_wxyz = np.empty(4)
        mujoco.mju_mat2Quat(quat_wxyz, d.site_xmat[self._pinch])
        obs = TwinObservation(
            time_s=self.time_s, joint_pos=d.qpos[self._qadr].copy(), joint_vel=d.qvel[self._dadr].copy(),
            gripper=float(np.clip(d.qpos[self._grip_joint] / 0.8, 0.0, 1.0)),
            ee_pos=d.site_xpos[self._pinch].copy(), ee_quat_xyzw=np.roll(quat_wxyz, -1))
        if render and self._renderer is not None:
            t0 = time.perf_counter()
            for cam in self.cameras:
                self._renderer.update_scene(d, camera=cam)
                obs.images[cam] = self._renderer.render().copy()
            self.timing.render_s = time.perf_counter() - t0
        return obs

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
