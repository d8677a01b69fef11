"""A sweep's verdict per concept x set size x alpha: the `validate` rule (steering/validation.py)
applied to the sweep's closed-loop rows — the effect the intended way, its 95% CI excluding zero,
beyond the 95th percentile of the matched random controls, success kept."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..steering.validation import EXPECTED_EFFECTS, AlphaVerdict, alpha_verdict
from .table import ResultsTable

#: Fewer paired episode starts than this give no verdict: a bootstrap CI of one or two pairs is
#: degenerate (one pair: the CI is the point), so anything would "exclude zero".
MIN_PAIRS = 3
#: Fewer matched controls than this: the verdict carries a warning (the 95th percentile of 3
#: controls is nearly their maximum).
MIN_CONTROLS = 5

#: validate's metric names -> the sweep row's closed-loop metric.
ROW_METRIC = {"speed": "early_speed_m_s", "dz": "max_height_m"}


def _values(table: ResultsTable, cell: str, metric: str, episodes: Sequence[str]) -> np.ndarray:
    return np.array([np.nan if table.rows[(cell, e)][metric] is None else table.rows[(cell, e)][metric]
                     for e in episodes], dtype=np.float64)


def _success(table: ResultsTable, cell: str, episodes: Sequence[str]) -> float:
    return float(np.mean([bool(table.rows[(cell, e)]["success"]) for e in episodes]))


def sweep_verdicts(table: ResultsTable) -> list[tuple[dict, AlphaVerdict]]:
    """(concept cell, verdict) for every finished concept cell with finished controls."""
    episodes = [e["label"] for e in table.plan["episodes"]]
    cells = table.plan["cells"]
    done = {c["name"] for c in cells if all((c["name"], e) in table.rows for e in episodes)}
    if "baseline" not in done or len(episodes) < MIN_PAIRS:
        return []
    out = []
    for c in cells:
        if c["kind"] != "concept" or c["name"] not in done or c["concept"] not in EXPECTED_EFFECTS:
            continue
        metric_name, sign = EXPECTED_EFFECTS[c["concept"]]
        metric = ROW_METRIC[metric_name]
        controls = [k["name"] for k in cells if k["kind"] == "control" and k["concept"] == c["concept"]
                    and k["size"] == c["size"] and k["alpha"] == c["alpha"] and k["name"] in done]
        if not controls:
            continue
        v = alpha_verdict(c["alpha"], sign, _values(table, "baseline", metric, episodes),
                          _values(table, c["name"], metric, episodes),
                          [_values(table, k, metric, episodes) for k in controls],
                          success={"baseline": _success(table, "baseline", episodes),
                                   "concept": _success(table, c["name"], episodes)})
        out.append((c, v))
    return out


def verdict_markdown(verdicts: list[tuple[dict, AlphaVerdict]], episodes: int) -> str:
    lines = ["# Sweep verdicts", "",
             "Per concept x set size x alpha, the `vla-steer validate` rule on the closed-loop rows: PASS needs "
             "the paired effect (vs the baseline, same episode starts) the intended way, its 95% bootstrap CI "
             "excluding 0, beyond the 95th percentile of the matched random controls' effects, and success "
             "kept (at most 10 points below the baseline; 'not measured' when the baseline never succeeded).", "",
             "| cell | effect | 95% CI | controls' effects | verdict | success baseline / cell |",
             "|---|---|---|---|---|---|"]
    if episodes < MIN_PAIRS:
        lines.append(f"| (no verdict: {episodes} episode start(s), fewer than {MIN_PAIRS} pairs) | | | | | |")
    elif not verdicts:
        lines.append("| (no concept cell with finished controls) | | | | | |")
    for c, v in verdicts:
        ctrl = ", ".join(f"{x:+.4f}" for x in v.control_effects)
        why = "PASS" if v.passed else "FAIL (" + ", ".join(
            w for w, ok in (("wrong way", v.intended), ("CI includes 0", v.ci_excludes_zero),
                            ("within controls", v.beyond_controls), ("success lost", v.success_kept is not False))
            if not ok) + ")"
        lines.append(f"| {c['name']} | {v.effect:+.4f} ({100 * v.relative:+.1f}%) | {v.ci95[0]:+.4f}..{v.ci95[1]:+.4f} "
                     f"| {ctrl} | {why} | {v.success_baseline:.0%} / {v.success_concept:.0%} |")
    few = sorted({len(v.control_effects) for _, v in verdicts if len(v.control_effects) < MIN_CONTROLS})
    if few:
        lines += ["", f"Warning: {'/'.join(map(str, few))} matched control(s) per cell; with fewer than "
                      f"{MIN_CONTROLS} the controls' 95th percentile is close to their maximum (use --controls 5+)."]
    return "\n".join(lines) + "\n"
