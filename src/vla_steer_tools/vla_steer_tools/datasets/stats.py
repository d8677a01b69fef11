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


#: The object counts as carried once its body is this far above where it started.
LIFTED_M = 0.015


def episode_motion(state: np.ndarray, fps: float, table_z_m: float, min_hold_opening_m: float,
                   object_pos: np.ndarray | None = None) -> EpisodeMotion:
    """state: (T, 8) LIBERO states of one episode; object_pos: (T, 3) the object's recorded positions.

    "Carried" is the object off the table when its positions were recorded, else a closed hand
    wider than the hold opening. The finger rule alone misses a bowl held by a rim that slipped
    to the opening of a hand shut on nothing: such episodes measured carry heights of 6-9 cm
    whatever their setting."""
    state = np.asarray(state, dtype=np.float64)
    pos = state[:, :3]
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=1) * fps if len(pos) > 1 else np.zeros(1)
    opening = state[:, 6] - state[:, 7]
    closed = opening < FINGERS_OPEN_M - 0.008
    if object_pos is not None and len(object_pos) == len(state):
        obj_z = np.asarray(object_pos, dtype=np.float64)[:, 2]
        holding = closed & (obj_z > obj_z[0] + LIFTED_M)
    else:
        holding = closed & (opening > min_hold_opening_m)
    height = float(pos[holding, 2].max() - table_z_m) if holding.any() else float("nan")
    return EpisodeMotion(p90_speed_m_s=float(np.percentile(speed, 90)), mean_speed_m_s=float(speed.mean()),
                         carry_height_m=height, steps=int(len(state)))
