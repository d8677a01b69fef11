"""Motion measures on predicted (or recorded) delta actions, the open-loop counterparts of the
end-effector metrics in analysis/metrics.py.

A LIBERO-style action is (dx, dy, dz, droll, dpitch, dyaw, gripper) in the policy's own units
(LIBERO OSC: 1.0 = a 5 cm target offset), so "speed" here is the commanded translation per step,
|a[:3]|, in action units: comparable between variants of one model, not metres. The first action of
each chunk is what the robot executes next; `chunk_speed` averages the whole chunk.
"""

from __future__ import annotations

import numpy as np

#: Gripper value above which the command means "closed" (LIBERO: -1 open, +1 close).
GRIPPER_CLOSED_ABOVE = 0.0


def translation_speed(actions: np.ndarray) -> np.ndarray:
    """(N, D) actions -> (N,) |a[:3]| (NaN rows stay NaN)."""
    a = np.asarray(actions, dtype=np.float64)
    return np.linalg.norm(a[:, :3], axis=1)


def action_metrics(actions: np.ndarray, chunks: np.ndarray | None = None) -> dict[str, float]:
    """Per-variant summary. actions: (N, D), one executed action per observation (NaN rows are
    skipped); chunks: optional (N, H, D) whole chunks for chunk_speed."""
    a = np.asarray(actions, dtype=np.float64)
    a = a[np.isfinite(a).all(axis=1)] if a.size else a.reshape(0, 7)
    nan = float("nan")
    if not len(a):
        return {"n": 0, "speed": nan, "mean_dx": nan, "mean_dy": nan, "mean_dz": nan, "gripper_mean": nan,
                "gripper_closed_fraction": nan, "chunk_speed": nan}
    out = {"n": int(len(a)), "speed": float(translation_speed(a).mean()),
           "mean_dx": float(a[:, 0].mean()), "mean_dy": float(a[:, 1].mean()), "mean_dz": float(a[:, 2].mean())}
    if a.shape[1] > 6:
        out["gripper_mean"] = float(a[:, 6].mean())
        out["gripper_closed_fraction"] = float((a[:, 6] > GRIPPER_CLOSED_ABOVE).mean())
    else:
        out["gripper_mean"] = out["gripper_closed_fraction"] = nan
    if chunks is not None and np.asarray(chunks).size:
        c = np.asarray(chunks, dtype=np.float64)
        out["chunk_speed"] = float(np.linalg.norm(c[..., :3], axis=-1).mean())
    else:
        out["chunk_speed"] = nan
    return out
