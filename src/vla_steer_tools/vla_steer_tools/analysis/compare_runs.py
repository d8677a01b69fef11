"""`vla-steer analyze`: per-condition tables, length-controlled and paired comparisons, PNGs, report.md.

Length control (an independent reproduction of the steering paper found episode length confounds
speed: a slow episode that fails runs to the step limit, one that succeeds stops early, and the
phases differ in speed): the comparison metric is the mean motion over the first N steps every
episode has (`early_speed`: the first 40 for eval/study results, the first `common_steps` for bag
runs; a replay's unit is one observation, so it has no length), and a regression of whole-episode
speed on length says how strong the confound is in the data at hand (scipy.stats.linregress).
Paired comparisons are each condition vs the source's baseline on the same pair key (init state or
observation), with scipy bootstrap CIs and Cohen's d_z (analysis/stats.py).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import atomic_write_text
from .collect import Episode, collect
from .stats import paired_comparison


def _by_condition(episodes: Sequence[Episode]) -> dict[str, list[Episode]]:
    out: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        out[e.condition].append(e)
    return dict(out)


def _mean(values) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return float(np.nanmean(arr)) if arr.size and np.isfinite(arr).any() else math.nan


def condition_table(episodes: Sequence[Episode]) -> list[dict]:
    rows = []
    for name, eps in _by_condition(episodes).items():
        succ = [e.success for e in eps if e.success is not None]
        rows.append({"condition": name, "kind": eps[0].kind, "concept": eps[0].concept, "alpha": eps[0].alpha,
                     "n": len(eps), "unit": eps[0].unit, "speed": _mean(e.speed for e in eps),
                     "early_speed": _mean(e.early_speed for e in eps), "mean_dx": _mean(e.mean_dx for e in eps),
                     "mean_dy": _mean(e.mean_dy for e in eps), "mean_dz": _mean(e.mean_dz for e in eps),
                     "path_length": _mean(e.path_length for e in eps), "max_height": _mean(e.max_height for e in eps),
                     "min_height": _mean(e.min_height for e in eps), "steps": _mean(e.steps for e in eps),
                     "successes": sum(succ) if succ else None, "judged": len(succ)})
    return rows


def paired_vs_baseline(episodes: Sequence[Episode], seed: int = 0) -> dict[str, dict]:
    """condition -> paired comparison of early_speed vs the baseline on shared pair keys."""
    groups = _by_condition(episodes)
    base = next((eps for eps in groups.values() if eps[0].kind == "baseline"), None)
    if base is None:
        return {}
    ref = {e.pair: e.early_speed for e in base}
    out = {}
    for name, eps in groups.items():
        if eps[0].kind == "baseline":
            continue
        pairs = [(e.early_speed, ref[e.pair]) for e in eps if e.pair in ref]
        if len(pairs) >= 2:
            x, y = np.array(pairs).T
            out[name] = paired_comparison(x, y, seed=seed).as_dict()
    return out


def length_confound(episodes: Sequence[Episode]) -> dict | None:
    """Regression of whole-episode speed on episode length (None when lengths do not vary)."""
    from scipy.stats import linregress

    pts = [(e.steps, e.speed) for e in episodes if e.steps > 1 and math.isfinite(e.speed)]
    if len(pts) < 3 or len({s for s, _ in pts}) < 2:
        return None
    steps, speed = np.array(pts, dtype=np.float64).T
    fit = linregress(steps, speed)
    return {"n": len(pts), "slope_per_step": float(fit.slope), "r": float(fit.rvalue), "p": float(fit.pvalue)}


def common_step_speeds(runs: Sequence[Episode], common_steps: int = 0) -> tuple[int, dict[str, float]]:
    """Bag runs: mean per-step displacement over the first N steps all of them have."""
    lengths = [len(e.per_step) for e in runs if len(e.per_step)]
    if not lengths:
        return 0, {}
    n = min(lengths) if common_steps <= 0 else min(common_steps, min(lengths))
    return n, {e.condition: float(e.per_step[:n].mean()) for e in runs if len(e.per_step)}


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def source_section(source: str, episodes: list[Episode], paired: dict[str, dict], confound: dict | None) -> list[str]:
    unit = episodes[0].unit
    lines = [f"## {source}", "", f"Motion unit: {unit}. " + (
        "Open loop: one pair per observation, early = the same (no episode length)." if unit == "action units" else
        "early = mean over the first 40 steps (length-controlled); speed = whole episode."), "",
             "| condition | n | speed | early | vs baseline, early (95% CI) | d_z | mean dx | mean dy | mean dz | path | max z | min z | steps | success |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in condition_table(episodes):
        c = paired.get(r["condition"])
        vs = f"{100 * c['relative']:+.1f}% ({c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f})" if c else ""
        succ = f"{r['successes']}/{r['judged']}" if r["judged"] else "n/a"
        lines.append(f"| {r['condition']} | {r['n']} | {_fmt(r['speed'])} | {_fmt(r['early_speed'])} | {vs} | "
                     f"{_fmt(c['d_z'], '+.2f') if c else ''} | {_fmt(r['mean_dx'], '+.4f')} | {_fmt(r['mean_dy'], '+.4f')} | "
                     f"{_fmt(r['mean_dz'], '+.4f')} | {_fmt(r['path_length'], '.3f')} | {_fmt(r['max_height'], '.3f')} | "
                     f"{_fmt(r['min_height'], '.3f')} | {_fmt(r['steps'], '.0f')} | {succ} |")
    if confound:
        lines += ["", f"Length confound: whole-episode speed vs episode length over {confound['n']} episodes: slope "
                  f"{confound['slope_per_step']:+.2e} per step, r = {confound['r']:+.2f}, p = {confound['p']:.3g}"
                  + (" — length and speed are related here; compare the early (length-controlled) column."
                     if confound["p"] < 0.05 else ".")]
    return lines + [""]


def analyze(dirs: Sequence[Path], out: Path, common_steps: int = 0) -> str:
    """Write out/report.md, analysis.json, dose_response.png, trajectories.png; return the report."""
    from .analyze_plots import plot_dose_response, plot_trajectories

    out.mkdir(parents=True, exist_ok=True)
    runs: list[Episode] = []
    sources: dict[str, list[Episode]] = {}
    for d in dirs:
        eps = collect(Path(d))
        if eps[0].kind == "run":
            runs += eps
        else:
            sources[str(d)] = eps
    lines = ["# Analysis", "", "Sources: " + ", ".join(f"`{d}`" for d in dirs), "",
             "Paired comparisons: each condition vs its source's baseline on the same init state / observation; "
             "95% CI of the mean paired difference by scipy.stats.bootstrap (BCa, 2000 resamples); d_z = mean "
             "difference / sd of differences.", ""]
    result: dict = {"sources": {}, "runs": {}}
    for source, eps in sources.items():
        paired = paired_vs_baseline(eps)
        confound = length_confound(eps) if eps[0].unit != "action units" else None
        lines += source_section(source, eps, paired, confound)
        result["sources"][source] = {"conditions": condition_table(eps), "paired": paired, "length_confound": confound}
    if runs:
        n, speeds = common_step_speeds(runs, common_steps)
        lines += ["## Recorded runs (bags)", "", f"Length-controlled: mean 3-D end-effector displacement per step over the "
                  f"first {n} steps every run has.", "",
                  "| run | steps | success | mean m/step (whole) | first-N m/step | mean dx | mean dy | mean dz | path m | max z | min z |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for e in runs:
            lines.append(f"| {e.condition} | {e.steps} | {'n/a' if e.success is None else ('yes' if e.success else 'no')} | "
                         f"{e.speed:.4f} | {speeds.get(e.condition, math.nan):.4f} | {e.mean_dx:+.4f} | {e.mean_dy:+.4f} | "
                         f"{e.mean_dz:+.4f} | {e.path_length:.3f} | {e.max_height:.3f} | {e.min_height:.3f} |")
        lines.append("")
        result["runs"] = {"common_steps": n, "episodes": [e.row() for e in runs], "first_n_speed": speeds}
    figures = []
    if plot_dose_response(out / "dose_response.png", sources, {s: result["sources"][s]["paired"] for s in sources}):
        figures.append("dose_response.png")
    if plot_trajectories(out / "trajectories.png", sources, runs):
        figures.append("trajectories.png")
    lines += [f"![{f}]({f})" for f in figures]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "report.md", text)
    atomic_write_text(out / "analysis.json", json.dumps(result, indent=1, default=float))
    return text
