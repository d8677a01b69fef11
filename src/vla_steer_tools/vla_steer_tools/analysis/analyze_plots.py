"""The figures of `vla-steer analyze`: dose-response per source and concept against the band of
its matched random controls, and trajectories per variant / run."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..atomic import atomic_path
from ..replay.plots import variant_colors
from .collect import Episode


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _concept_panels(sources: Mapping[str, list[Episode]]) -> list[tuple[str, str]]:
    return sorted({(s, e.concept) for s, eps in sources.items() for e in eps if e.kind == "concept"})


def plot_dose_response(path: Path, sources: Mapping[str, list[Episode]], paired: Mapping[str, Mapping[str, dict]]) -> bool:
    """One panel per (source, concept): early-phase motion vs alpha, 95% CI bars (paired bootstrap),
    the min-max band of the matched random controls' means, the baseline. False if nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _concept_panels(sources)
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False, constrained_layout=True)
    for ax, (source, concept) in zip(axes[0], panels):
        eps = sources[source]
        by = defaultdict(list)
        for e in eps:
            by[(e.kind, e.concept, e.alpha, e.seed)].append(e.early_speed)
        base = [e.early_speed for e in eps if e.kind == "baseline"]
        names = {e.alpha: e.condition for e in eps if e.kind == "concept" and e.concept == concept}
        alphas = sorted(names)
        means = [float(np.nanmean(by[("concept", concept, a, -1)])) for a in alphas]
        b = float(np.nanmean(base)) if base else math.nan
        err = None
        cis = [paired.get(source, {}).get(names[a]) for a in alphas]
        if all(cis) and math.isfinite(b):
            err = np.maximum(0.0, [[m - (b + c["ci95"][0]) for m, c in zip(means, cis)],
                                   [(b + c["ci95"][1]) - m for m, c in zip(means, cis)]])  # BCa need not hold the mean
        ax.errorbar(alphas, means, yerr=err, fmt="o-", color="tab:blue", capsize=3, label=f"{concept} (95% CI)")
        ctrl = {a: [float(np.nanmean(v)) for (k, c, al, _), v in by.items() if k == "control" and c == concept and al == a]
                for a in alphas}
        ok = [a for a in alphas if ctrl[a]]
        if ok:
            ax.fill_between(ok, [min(ctrl[a]) for a in ok], [max(ctrl[a]) for a in ok], color="tab:gray", alpha=0.35,
                            label="random controls (min-max)")
            for a in ok:  # each control's mean too: with one alpha the band is a line
                ax.scatter([a] * len(ctrl[a]), ctrl[a], color="tab:gray", s=14, zorder=3)
        if math.isfinite(b):
            ax.axhline(b, color="k", ls="--", lw=0.8, label="baseline")
        unit = eps[0].unit
        ax.set(xlabel="alpha", ylabel=f"early motion ({unit})", title=f"{concept}: {Path(source).name}")
        ax.legend(fontsize=7)
    _save(fig, path)
    return True


def plot_trajectories(path: Path, sources: Mapping[str, list[Episode]], runs: Sequence[Episode]) -> bool:
    """Replays: the integrated height command per variant; bag runs: the end-effector side view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    replays = {s: [e for e in eps if len(e.path)] for s, eps in sources.items()}
    replays = {s: eps for s, eps in replays.items() if eps}
    n = len(replays) + (1 if runs else 0)
    if not n:
        return False
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.0), squeeze=False, constrained_layout=True)
    for ax, (source, eps) in zip(axes[0], replays.items()):
        colors = variant_colors(["unsteered" if e.kind == "baseline" else e.condition for e in eps])
        for e in eps:
            color = colors["unsteered" if e.kind == "baseline" else e.condition]
            ax.plot(e.path[:, 2], color=color, lw=2 if e.kind == "baseline" else 1, label=e.condition)
        ax.set(xlabel="observation", ylabel="cumulative a_z (action units)", title=f"integrated height command: {Path(source).name}")
        ax.legend(fontsize=6)
    if runs:
        ax = axes[0][-1]
        for e in runs:
            ax.plot(e.path[:, 0], e.path[:, 2], label=f"{e.condition} ({e.steps} steps)")
            ax.scatter(e.path[:1, 0], e.path[:1, 2], color="black", s=12)
        ax.set(xlabel="x (m)", ylabel="z (m)", title="end-effector path, side view (dot = start)")
        ax.legend(fontsize=7)
    _save(fig, path)
    return True
