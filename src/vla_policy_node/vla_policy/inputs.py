"""The newest value of every input the policy needs, and how old each one is.

The node's callbacks write here; the inference worker reads one consistent `Observation` when an
inference starts (`snapshot`). Only the latest frame per camera is kept, so a slow model never
works through a backlog of stale frames. `fresh` tracks which cameras delivered a frame since the
last command, for lockstep simulation (one action per new observation).
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from vla_steer_tools.types import Observation

from .commands import RobotState
from .params import PolicyParams
from .safety import Watchdog


def watchdog_ages(p: PolicyParams) -> dict[str, float]:
    """Input name -> maximum age (s) from the parameters; 0 = must have been received once."""
    ages = {f"camera {k}": p.watchdog_max_input_age_s for k in p.cameras_keys}
    ages["instruction"] = p.watchdog_instruction_max_age_s
    if p.watchdog_require_joint_states:
        ages["joint_states"] = p.watchdog_max_input_age_s
    if p.state_source == "ee_pose_gripper":
        ages["ee_pose"] = ages["gripper_state"] = p.watchdog_max_input_age_s
    return ages


def quat_to_axis_angle(q_xyzw: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> axis * angle (3,), as robosuite's quat2axisangle (LIBERO state)."""
    x, y, z, w = (float(v) for v in q_xyzw)
    w = min(max(w, -1.0), 1.0)
    den = np.sqrt(1.0 - w * w)
    if den < 1e-8:
        return np.zeros(3)
    return np.array([x, y, z]) * (2.0 * np.arccos(w) / den)


class LatestInputs:
    """Latest images, instruction, joint state and ee position, with a watchdog over their ages."""

    def __init__(self, p: PolicyParams) -> None:
        self._lock = threading.Lock()
        self.camera_keys = tuple(p.cameras_keys)
        self.watchdog = Watchdog(watchdog_ages(p))
        self.robot = RobotState(list(p.output_joint_names), None, None)
        self._fixed_joint_names = list(p.output_joint_names)
        self.state_source = p.state_source
        self._ee_quat: np.ndarray | None = None  # (4,) x y z w
        self._gripper: np.ndarray | None = None  # (G,) finger positions
        self._images: dict[str, np.ndarray] = {}
        self._stamp_s = 0.0
        self._fresh: set[str] = set()
        self.instruction = ""

    def reconfigure(self, p: PolicyParams) -> None:
        with self._lock:
            self.watchdog.set_max_ages(watchdog_ages(p))
            self._fixed_joint_names = list(p.output_joint_names)
            self.state_source = p.state_source

    def set_image(self, key: str, rgb: np.ndarray, stamp_s: float, now: float) -> None:
        with self._lock:
            self._images[key] = rgb
            self._stamp_s = max(self._stamp_s, stamp_s)
            self._fresh.add(key)
            self.watchdog.feed(f"camera {key}", now)

    def set_instruction(self, text: str, now: float) -> bool:
        """Store the instruction; True when it changed."""
        with self._lock:
            changed, self.instruction = text != self.instruction, text
            self.watchdog.feed("instruction", now)
            return changed

    def set_joints(self, names: Sequence[str], positions: Sequence[float], now: float) -> list[str]:
        """Store joint positions in command order; returns the configured joints that are missing."""
        wanted = self._fixed_joint_names or list(names)
        by_name = dict(zip(names, positions))
        missing = [n for n in wanted if n not in by_name]
        if not missing:
            with self._lock:
                self.robot.joint_names = wanted
                self.robot.joint_positions = np.array([by_name[n] for n in wanted], dtype=np.float64)  # (J,)
                self.watchdog.feed("joint_states", now)
        return missing

    def set_ee_pose(self, xyz: Sequence[float], quat_xyzw: Sequence[float], now: float) -> None:
        with self._lock:
            self.robot.ee_position_m = np.asarray(xyz, dtype=np.float64)  # (3,)
            self._ee_quat = np.asarray(quat_xyzw, dtype=np.float64)  # (4,)
            self.watchdog.feed("ee_pose", now)

    def set_gripper(self, positions: Sequence[float], now: float) -> None:
        with self._lock:
            self._gripper = np.asarray(positions, dtype=np.float64)  # (G,)
            self.watchdog.feed("gripper_state", now)

    def all_fresh(self) -> bool:
        """Every camera delivered a frame since the last `consume_fresh()`."""
        with self._lock:
            return self._fresh >= set(self.camera_keys)

    def consume_fresh(self) -> None:
        with self._lock:
            self._fresh.clear()

    def snapshot(self) -> Observation | None:
        """The newest inputs as one Observation; None until every camera has delivered a frame."""
        with self._lock:
            if len(self._images) < len(self.camera_keys):
                return None
            state = self._state()
            if state is None:
                return None
            return Observation(images=dict(self._images), instruction=self.instruction,
                               state=state.astype(np.float32), stamp_s=self._stamp_s)

    def _state(self) -> np.ndarray | None:
        """The state vector for `state_source`; None while a needed input is missing."""
        if self.state_source == "none":
            return np.zeros(0)
        if self.state_source == "joint_states":
            return np.zeros(0) if self.robot.joint_positions is None else self.robot.joint_positions
        if self.robot.ee_position_m is None or self._ee_quat is None or self._gripper is None:
            return None
        return np.concatenate([self.robot.ee_position_m, quat_to_axis_angle(self._ee_quat), self._gripper])  # (6+G,)
