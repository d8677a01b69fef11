"""Per-episode motion statistics recomputed from recorded states (not from the settings), so
`data info` shows whether the executed speed and carry height follow what was asked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..expert.waypoint_expert import FINGERS_OPEN_M


@dataclass(frozen=True)
class EpisodeMotion:
    """p90_speed_m_s: 90th percentile of end-effector speed. carry_height_m: highest hand position
    above the table while the hand is closed on the object. steps: frames in the episode."""

    p90_speed_m_s: float
    mean_speed_m_s: float
    carry_height_m: float
    steps: int


def episode_motion(state: np.ndarray, fps: float, table_z_m: float, min_hold_opening_m: float) -> EpisodeMotion:
    """state: (T, 8) LIBERO states of one episode."""
    state = np.asarray(state, dtype=np.float64)
    pos = state[:, :3]
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=1) * fps if len(pos) > 1 else np.zeros(1)
    opening = state[:, 6] - state[:, 7]
    holding = (opening > min_hold_opening_m) & (opening < FINGERS_OPEN_M - 0.008)
    height = float(pos[holding, 2].max() - table_z_m) if holding.any() else float("nan")
    return EpisodeMotion(p90_speed_m_s=float(np.percentile(speed, 90)), mean_speed_m_s=float(speed.mean()),
                         carry_height_m=height, steps=int(len(state)))
