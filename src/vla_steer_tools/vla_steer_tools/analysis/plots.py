"""Figures for a steered run: where the end effector went, how fast, and what the concept
neurons did, with the steering-on period shaded so cause and effect sit on one time axis."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..atomic import atomic_path  # noqa: E402
from .trace import EpisodeTrace  # noqa: E402

STEER_COLOR = "#f4a261"


def _shade_steering(ax, trace: EpisodeTrace, t_end: float) -> None:
    on = None
    for ev in trace.steering:
        if ev.enabled and ev.concepts and on is None:
            on = ev.t_s
        elif not (ev.enabled and ev.concepts) and on is not None:
            ax.axvspan(on, ev.t_s, color=STEER_COLOR, alpha=0.25, lw=0)
            on = None
    if on is not None:
        ax.axvspan(on, t_end, color=STEER_COLOR, alpha=0.25, lw=0, label="steering on")


def plot_trace(trace: EpisodeTrace, out: str | Path, title: str = "") -> Path:
    """Write a PNG: xyz over time, per-step displacement, side view of the path, activations."""
    out = Path(out)
    has_act = trace.act_mean.size > 0
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    t_end = float(max(trace.ee_t[-1] if trace.ee_t.size else 0.0, trace.act_t[-1] if trace.act_t.size else 0.0))
    ax = axes[0, 0]
    for i, (axis, color) in enumerate(zip("xyz", ("tab:red", "tab:green", "tab:blue"))):
        if trace.ee_pos.size:
            ax.plot(trace.ee_t, trace.ee_pos[:, i], color=color, label=axis)
    _shade_steering(ax, trace, t_end)
    ax.set(xlabel="time [s]", ylabel="end-effector position [m]", title="End-effector position")
    ax.legend(loc="best", fontsize=8)

    ax = axes[0, 1]
    if len(trace.ee_pos) > 1:
        step = np.linalg.norm(np.diff(trace.ee_pos, axis=0), axis=1)
        ax.plot(trace.ee_t[1:], step * 1000.0, color="black", lw=1)
    _shade_steering(ax, trace, t_end)
    ax.set(xlabel="time [s]", ylabel="displacement per step [mm]", title="Speed (3-D displacement per step)")

    ax = axes[1, 0]
    t_on = trace.steering_on_time()
    if trace.ee_pos.size:
        before = trace.ee_t < (t_on if t_on is not None else np.inf)
        ax.plot(trace.ee_pos[before, 0], trace.ee_pos[before, 2], color="tab:gray", label="before steering")
        if (~before).any():
            start = max(int(np.argmin(before)) - 1, 0)  # join the two segments at the switch
            ax.plot(trace.ee_pos[start:, 0], trace.ee_pos[start:, 2], color=STEER_COLOR, label="steering on")
        ax.scatter(trace.ee_pos[:1, 0], trace.ee_pos[:1, 2], color="black", zorder=3, s=20, label="start")
    ax.set(xlabel="x [m]", ylabel="z (height) [m]", title="Path, side view")
    ax.legend(loc="best", fontsize=8)

    ax = axes[1, 1]
    if has_act:
        for j, name in enumerate(trace.act_names):
            ax.plot(trace.act_t, trace.act_mean[:, j], label=name)
        _shade_steering(ax, trace, t_end)
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no concept activations recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="time [s]", ylabel="mean activation, before own edit", title="Concept neurons (edits in earlier layers propagate)")
    note = " — RANDOM WEIGHTS (machinery demo, no semantic effect expected)" if trace.random_weights else ""
    fig.suptitle((title or f"model: {trace.model_id}") + note, fontsize=11)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out
