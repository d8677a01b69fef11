"""A short report of one steered run: what ran, how the end effector moved before and after
steering was switched on, and a trajectory figure. Used by `vla-steer demo` and `vla-steer report`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from .metrics import EpisodeMetrics, compare, episode_metrics
from .plots import plot_trace
from .trace import EpisodeTrace, load_trace


@dataclass(frozen=True)
class RunReport:
    model_id: str
    random_weights: bool
    ee_samples: int
    steering_on_s: float | None
    concepts: tuple[str, ...]
    alphas: tuple[float, ...]
    before: EpisodeMetrics | None
    after: EpisodeMetrics | None
    mean_inference_ms: float

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("model_id", "random_weights", "ee_samples", "steering_on_s",
                                             "concepts", "alphas", "mean_inference_ms")}
        out["before"] = self.before.as_dict() if self.before else None
        out["after"] = self.after.as_dict() if self.after else None
        out["relative_change"] = compare(self.before, self.after) if self.before and self.after else None
        return out


def _split(trace: EpisodeTrace) -> tuple[np.ndarray, np.ndarray]:
    """Positions before steering switched on, and from the last of those on (so the first step
    taken under steering counts as "after")."""
    t_on = trace.steering_on_time()
    if t_on is None:
        return trace.ee_pos, trace.ee_pos[:0]
    idx = int(np.searchsorted(trace.ee_t, t_on))  # first sample at or after the switch
    return trace.ee_pos[:idx], trace.ee_pos[max(idx - 1, 0):]


def build_report(trace: EpisodeTrace) -> RunReport:
    before, after = _split(trace)
    on = next((ev for ev in trace.steering if ev.enabled and ev.concepts), None)
    return RunReport(
        model_id=trace.model_id,
        random_weights=trace.random_weights,
        ee_samples=len(trace.ee_pos),
        steering_on_s=trace.steering_on_time(),
        concepts=on.concepts if on else (),
        alphas=on.alphas if on else (),
        before=episode_metrics(before) if len(before) else None,
        after=episode_metrics(after) if len(after) > 1 else None,
        mean_inference_ms=float(np.mean(trace.inference_s) * 1000.0) if trace.inference_s.size else float("nan"),
    )


def format_report(report: RunReport) -> str:
    """Plain-text summary, honest about random weights."""
    lines = [f"model: {report.model_id}" + ("  [RANDOM WEIGHTS — test fixture]" if report.random_weights else "")]
    lines.append(f"end-effector samples: {report.ee_samples}; mean inference {report.mean_inference_ms:.1f} ms")
    if not report.ee_samples:
        lines.append("no end-effector poses (/ee_pose) in the bag: nothing to compare before/after steering")
    if report.steering_on_s is None:
        lines.append("steering was never switched on")
    else:
        pairs = ", ".join(f"{c} (alpha {a:g})" for c, a in zip(report.concepts, report.alphas))
        lines.append(f"steering on at t={report.steering_on_s:.2f} s: {pairs}")
    header = f"{'':34s}{'before':>12s}{'after':>12s}{'change':>10s}"
    lines.append(header)
    if report.before:
        change = compare(report.before, report.after) if report.after else {}
        for key, unit, scale in (("mean_step_displacement", "mm/step", 1e3), ("mean_dz", "mm/step", 1e3),
                                 ("mean_dy", "mm/step", 1e3), ("max_height", "m", 1.0), ("path_length", "m", 1.0)):
            b = getattr(report.before, key) * scale
            a = getattr(report.after, key) * scale if report.after else float("nan")
            c = change.get(key, float("nan"))
            lines.append(f"{key + ' [' + unit + ']':34s}{b:12.3f}{a:12.3f}{c * 100:9.1f}%")
    if report.random_weights:
        lines.append("note: with random weights, a change after steering shows the hook acts on the model,")
        lines.append("      not that the concept means anything; point model.path at a real checkpoint.")
    return "\n".join(lines)


def write_report(bag: str | Path, out_dir: str | Path) -> tuple[RunReport, Path]:
    """Read `bag`, write report.json, report.txt and trajectory.png into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trace = load_trace(bag)
    report = build_report(trace)
    for name, text in (("report.json", json.dumps(report.as_dict(), indent=2, default=float)),
                       ("report.txt", format_report(report) + "\n")):
        atomic_write_text(out / name, text)
    plot_trace(trace, out / "trajectory.png")
    return report, out
