"""actions.png of a replay: each variant's predicted translation speed and height command over the
recorded episode, against the commands the robot really got, and the per-variant means with the
bootstrap interval of their difference to the unsteered model."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..atomic import atomic_path
from .action_metrics import translation_speed
from .variants import UNSTEERED


def variant_colors(names: list[str]) -> dict[str, object]:
    """unsteered blue; each concept its own colour map (its first word: "fast a=8", "fast random0 a=8"),
    darker with each further variant of it, so fast and slow stay apart in one legend."""
    import matplotlib

    maps = ["Oranges", "Greens", "Purples", "Reds", "Greys"]
    groups: dict[str, list[str]] = {}
    for n in names:
        if n != UNSTEERED:
            groups.setdefault(n.split(" ")[0], []).append(n)
    out: dict[str, object] = {UNSTEERED: "tab:blue"}
    for g, (concept, members) in enumerate(groups.items()):
        cmap = matplotlib.colormaps[maps[g % len(maps)]]
        for i, n in enumerate(members):
            out[n] = cmap(0.4 + 0.55 * i / max(len(members) - 1, 1))
    return out


def plot_replay(path: Path, chunks: Mapping[str, np.ndarray], recorded: np.ndarray, comparisons: Mapping[str, dict],
                title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(chunks)
    colors = variant_colors(names)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    for name in names:
        first = chunks[name][:, 0, :]
        lw = 2.0 if name == UNSTEERED else 1.0
        axes[0].plot(translation_speed(first), color=colors[name], lw=lw, label=name)
        axes[1].plot(first[:, 2], color=colors[name], lw=lw, label=name)
    if recorded.size and np.isfinite(recorded).any():
        axes[0].plot(translation_speed(recorded), color="black", lw=1, ls="--", label="recorded")
        axes[1].plot(recorded[:, 2], color="black", lw=1, ls="--", label="recorded")
    axes[0].set(xlabel="observation", ylabel="|a[:3]| (action units)", title="commanded translation per step")
    axes[1].set(xlabel="observation", ylabel="a_z (action units)", title="height command")
    axes[0].legend(fontsize=7, loc="best")
    ax = axes[2]
    ref = float(np.nanmean(translation_speed(chunks[UNSTEERED][:, 0, :]))) if UNSTEERED in chunks else float("nan")
    for i, name in enumerate(names):
        mean = float(np.nanmean(translation_speed(chunks[name][:, 0, :])))
        c = comparisons.get(name)
        err = None
        if c:
            err = [[mean - (ref + c["ci95"][0])], [(ref + c["ci95"][1]) - mean]]
        ax.bar(i, mean, color=colors[name], yerr=err, capsize=3)
    if np.isfinite(ref):
        ax.axhline(ref, color="tab:blue", ls=":", lw=1)
    ax.set_xticks(range(len(names)), names, rotation=60, fontsize=7, ha="right")
    ax.set(ylabel="mean |a[:3]|", title="mean speed (bars: 95% CI of the paired difference)")
    fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
