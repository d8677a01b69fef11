"""The newest value of every input the policy needs, and how old each one is.

The node's callbacks write here; the inference worker reads one consistent `Observation` when an
inference starts (`snapshot`). Only the latest frame per camera is kept, so a slow model never
works through a backlog of stale frames. `fresh` tracks which cameras delivered a frame since the
last command, for lockstep simulation (one action per new observation).

A message with non-finite values is never stored: it invalidates its input in the watchdog until
a good one arrives, so the node holds instead of acting on (or echoing) a faulty reading.
"""

from __future__ import annotations

import math
import threading
from typing import Sequence

import numpy as np

from vla_steer_tools.datasets.state import quat_to_axis_angle  # the one LIBERO state convention
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
        self._received: dict[str, float] = {}  # camera key -> monotonic receive time
        self.instruction = ""
        self.max_instruction_chars = p.instruction_max_chars
        self.lockstep = p.output_lockstep

    def reconfigure(self, p: PolicyParams) -> None:
        with self._lock:
            self.watchdog.set_max_ages(watchdog_ages(p))
            self._fixed_joint_names = list(p.output_joint_names)
            self.state_source = p.state_source
            self.max_instruction_chars = p.instruction_max_chars
            self.lockstep = p.output_lockstep

    def set_image(self, key: str, rgb: np.ndarray, stamp_s: float, now: float) -> None:
        with self._lock:
            self._images[key] = rgb
            self._stamp_s = max(self._stamp_s, stamp_s)
            self._fresh.add(key)
            self._received[key] = now
            self.watchdog.feed(f"camera {key}", now)

    def set_instruction(self, text: str, now: float) -> str:
        """Store the instruction; returns why it was rejected ("" when stored).

        A rejected instruction (empty, or longer than `instruction.max_chars`) invalidates the
        instruction input: the node holds rather than carry on with the previous task.
        """
        if not text.strip():
            return self._reject("instruction", "rejected an empty instruction")
        if len(text) > self.max_instruction_chars:
            return self._reject("instruction", f"rejected an instruction of {len(text)} characters "
                                f"(instruction.max_chars is {self.max_instruction_chars})")
        with self._lock:
            self.instruction = text
            self.watchdog.feed("instruction", now)
        return ""

    def set_joints(self, names: Sequence[str], positions: Sequence[float], now: float) -> str:
        """Store joint positions in command order; returns why not ("" when stored).

        A message lacking a configured joint is ignored (another publisher may share the topic);
        one with non-finite positions for our joints invalidates joint_states (a sensor fault).
        """
        wanted = self._fixed_joint_names or list(names)
        by_name = dict(zip(names, positions))
        missing = [n for n in wanted if n not in by_name]
        if missing or not wanted:
            return f"joint_states lacks joints {missing}" if missing else "joint_states names no joints"
        values = np.array([by_name[n] for n in wanted], dtype=np.float64)  # (J,)
        if not np.all(np.isfinite(values)):
            bad = [n for n, v in zip(wanted, values) if not np.isfinite(v)]
            return self._reject("joint_states", f"non-finite positions for {bad}")
        with self._lock:
            if wanted != self.robot.joint_names:  # another joint set: the old reference means nothing
                self.robot.last_joint_command = None
            self.robot.joint_names = wanted
            self.robot.joint_positions = values
            self._fresh.add("joint_states")
            self.watchdog.feed("joint_states", now)
        return ""

    def set_ee_pose(self, xyz: Sequence[float], quat_xyzw: Sequence[float], now: float) -> str:
        """Store the end-effector pose; returns why not ("" when stored)."""
        pos, quat = np.asarray(xyz, dtype=np.float64), np.asarray(quat_xyzw, dtype=np.float64)  # (3,) (4,)
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
            return self._reject("ee_pose", f"non-finite pose {pos.tolist()} {quat.tolist()}")
        with self._lock:
            self.robot.ee_position_m = pos
            self._ee_quat = quat
            self._fresh.add("ee_pose")
            self.watchdog.feed("ee_pose", now)
        return ""

    def set_gripper(self, positions: Sequence[float], now: float) -> str:
        """Store the gripper finger positions; returns why not ("" when stored)."""
        values = np.asarray(positions, dtype=np.float64)  # (G,)
        if not np.all(np.isfinite(values)):
            return self._reject("gripper_state", f"non-finite positions {values.tolist()}")
        with self._lock:
            self._gripper = values
            self._fresh.add("gripper_state")
            self.watchdog.feed("gripper_state", now)
        return ""

    def _reject(self, name: str, reason: str) -> str:
        """Invalidate input `name` until its next good message; returns the reason."""
        with self._lock:
            self.watchdog.invalidate(name, reason)
        return reason

    def stale(self, now: float) -> list[str]:
        """Why the inputs cannot be acted on (watchdog ages and rejected messages); [] when fine."""
        with self._lock:
            return self.watchdog.stale(now)

    def all_fresh(self) -> bool:
        """Every camera delivered a frame since the last `consume_fresh()` and, in lockstep, so did
        every input of the state: a simulator publishes one step's messages one after another, and
        an inference started on the images alone took the previous step's state (6 of 17
        inferences of a recorded LIBERO bag, found by `vla-steer replay`)."""
        with self._lock:
            return self._fresh >= set(self.camera_keys) | self._state_inputs()

    def _state_inputs(self) -> set[str]:
        """The inputs the state vector is built from (only these must be fresh, only in lockstep)."""
        if not self.lockstep or self.state_source == "none":
            return set()
        if self.state_source == "joint_states":
            return {"joint_states"}
        return {"ee_pose", "gripper_state"}

    def consume_fresh(self) -> None:
        with self._lock:
            self._fresh.clear()

    def snapshot(self) -> tuple[Observation, float] | None:
        """The newest inputs as one Observation, with the receive time (monotonic) of its oldest
        camera frame: how old the observation is. None until every camera delivered a frame."""
        with self._lock:
            if len(self._images) < len(self.camera_keys):
                return None
            state = self._state()
            if state is None:
                return None
            observed = min(self._received.get(k, -math.inf) for k in self.camera_keys)
            obs = Observation(images=dict(self._images), instruction=self.instruction,
                              state=state.astype(np.float32), stamp_s=self._stamp_s)
            return obs, observed

    def _state(self) -> np.ndarray | None:
        """The state vector for `state_source`; None while a needed input is missing."""
        if self.state_source == "none":
            return np.zeros(0)
        if self.state_source == "joint_states":
            return np.zeros(0) if self.robot.joint_positions is None else self.robot.joint_positions
        if self.robot.ee_position_m is None or self._ee_quat is None or self._gripper is None:
            return None
        return np.concatenate([self.robot.ee_position_m, quat_to_axis_angle(self._ee_quat), self._gripper])  # (6+G,)
