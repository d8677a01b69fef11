"""The 8-D LIBERO proprio state (what the bridge publishes and a policy reads) and the expert's
privileged view of a recorded frame, shared by the generator, relabelling and statistics."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ..expert.waypoint_expert import ExpertState

#: Extra per-frame vectors recorded next to the policy's inputs (never fed to a policy).
PRIVILEGED = ("privileged.object_pos", "privileged.target_pos", "privileged.ee_quat", "privileged.finger_vel")
#: Recorded since expert revision 3: (K, 2, 3) obstacle boxes flattened to K * 6 per frame.
OBSTACLES = "privileged.obstacles"


def flat_obstacles(boxes: np.ndarray | None) -> np.ndarray:
    """A frame's obstacle boxes as one flat row (empty when the simulator reported none)."""
    return np.zeros(0) if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1)


def quat_to_axis_angle(q_xyzw: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> axis * angle (3,), as robosuite's quat2axisangle."""
    x, y, z, w = (float(v) for v in q_xyzw)
    w = min(max(w, -1.0), 1.0)
    den = np.sqrt(1.0 - w * w)
    if den < 1e-8:
        return np.zeros(3)
    return np.array([x, y, z]) * (2.0 * np.arccos(w) / den)


def libero_state(ee_pos: np.ndarray, ee_quat: np.ndarray, fingers: np.ndarray) -> np.ndarray:
    """(8,) float32: ee xyz, ee axis-angle, 2 finger positions (LIBERO / openpi convention)."""
    return np.concatenate([ee_pos, quat_to_axis_angle(ee_quat), fingers]).astype(np.float32)


def expert_state_at(vectors: dict[str, np.ndarray], t: int) -> ExpertState:
    """The expert's input for frame t of a recorded episode (state + privileged vectors)."""
    state = vectors["observation.state"][t].astype(np.float64)
    quat = vectors.get("privileged.ee_quat")
    q = quat[t].astype(np.float64) if quat is not None else Rotation.from_rotvec(state[3:6]).as_quat()
    boxes = vectors.get(OBSTACLES)
    obstacles = boxes[t].astype(np.float64).reshape(-1, 2, 3) if boxes is not None and boxes.shape[1] else None
    return ExpertState(ee_pos=state[:3], ee_quat=q, fingers=state[6:8],
                       finger_vel=vectors["privileged.finger_vel"][t].astype(np.float64),
                       object_pos=vectors["privileged.object_pos"][t].astype(np.float64),
                       target_pos=vectors["privileged.target_pos"][t].astype(np.float64), obstacles=obstacles)
