"""`vla-steer data info`: what a demonstration dataset holds, recomputed from its recorded states.

Success is read from each episode's record; speed and carry height are recomputed from the
8-D states (stats.py), grouped by the setting the episode was asked for, so the table shows
whether the executed motion follows the settings (slow < normal < fast, low < normal < high).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..expert.tasks import geometry_for
from .lerobot_v3 import episode_files, finalize, iter_episodes, read_info
from .stats import EpisodeMotion, episode_motion

SPEED_ORDER = ("slow", "normal", "fast")
HEIGHT_ORDER = ("low", "normal", "high")


def episode_motions(root: str | Path) -> list[tuple[dict, EpisodeMotion]]:
    out = []
    fps = float(read_info(root).get("fps", 20))
    for ep in iter_episodes(root):
        meta = ep.meta
        try:
            geo = geometry_for(meta["suite"], int(meta["task_id"]))
            table_z, hold = geo.table_z_m, geo.min_hold_opening_m
        except Exception:  # a task without an expert: heights relative to z = 0
            table_z, hold = 0.0, 0.01
        out.append((meta, episode_motion(ep.vectors["observation.state"], fps, table_z, hold,
                                         ep.vectors.get("privileged.object_pos"))))
    return out


def _group(rows, key: str, order) -> list[tuple[str, list[EpisodeMotion]]]:
    groups: dict[str, list[EpisodeMotion]] = defaultdict(list)
    for meta, motion in rows:
        groups[str(meta.get(key, "?"))].append(motion)
    names = [n for n in order if n in groups] + sorted(n for n in groups if n not in order)
    return [(n, groups[n]) for n in names]


def start_label(meta: dict) -> str:
    """Where an episode started: a LIBERO fixed init state or a seeded random placement."""
    if meta.get("init_state") is not None:
        return f"init {meta['init_state']}"
    if meta.get("placement_seed") is not None:
        return f"random {meta['placement_seed']}"
    return "?"


def success_by_start(metas: list[dict]) -> dict[tuple[str, str], tuple[int, int]]:
    """(task, start) -> (successes, episodes): the issue's bar is per init state, not overall,
    since an expert that fails one placement every time hides inside a high mean."""
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for m in metas:
        cell = out[(f"{m.get('suite')}:{m.get('task_id')}", start_label(m))]
        cell[0] += bool(m.get("success"))
        cell[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def _print_starts(metas: list[dict], bar: float = 0.95) -> None:
    cells = success_by_start(metas)
    for task in sorted({t for t, _ in cells}):
        mine = {s: v for (t, s), v in cells.items() if t == task}
        below = sorted((s for s, (k, n) in mine.items() if k < bar * n), key=str)
        full = sum(1 for k, n in mine.values() if k == n)
        print(f"  {task}: {len(mine)} starts, {full} with every episode successful"
              + (f"; below {bar:.0%}: " + ", ".join(f"{s} ({mine[s][0]}/{mine[s][1]})" for s in below) if below else ""))


def print_summary(root: str | Path, png: str | None = None) -> int:
    root = Path(root)
    if episode_files(root) and not (root / "meta" / "info.json").is_file():
        print("meta/ missing (interrupted run): rebuilding it from the data files")
        finalize(root)
    info = read_info(root)
    rows = episode_motions(root)
    ok = sum(bool(m.get("success")) for m, _ in rows)
    print(f"{root}: LeRobot {info['codebase_version']}, {info['total_episodes']} episodes, {info['total_frames']} frames, "
          f"{info['fps']} fps, {info['total_tasks']} wordings")
    tasks = sorted({(m.get("suite"), m.get("task_id")) for m, _ in rows}, key=str)
    for suite, task in tasks:
        sel = [m for m, _ in rows if (m.get("suite"), m.get("task_id")) == (suite, task)]
        print(f"  {suite} task {task}: {sum(bool(m.get('success')) for m in sel)}/{len(sel)} successful")
    print(f"success: {ok}/{len(rows)} ({100.0 * ok / max(1, len(rows)):.1f}%)")
    print("success per start (init state or random placement):")
    _print_starts([m for m, _ in rows])
    print("\nend-effector speed by speed setting (recomputed from states; successful episodes):")
    print(f"  {'setting':8s} {'n':>4s} {'p90 m/s':>9s} {'mean m/s':>9s} {'steps':>7s}")
    good = [(m, mo) for m, mo in rows if m.get("success")]
    for name, ms in _group(good, "speed", SPEED_ORDER):
        print(f"  {name:8s} {len(ms):4d} {np.mean([x.p90_speed_m_s for x in ms]):9.3f} "
              f"{np.mean([x.mean_speed_m_s for x in ms]):9.3f} {np.mean([x.steps for x in ms]):7.0f}")
    print("carry height above the table by height setting:")
    print(f"  {'setting':8s} {'n':>4s} {'height m':>9s} {'min':>7s} {'max':>7s}")
    for name, ms in _group(good, "height", HEIGHT_ORDER):
        hs = np.array([x.carry_height_m for x in ms])
        hs = hs[np.isfinite(hs)]
        if len(hs):
            print(f"  {name:8s} {len(ms):4d} {hs.mean():9.3f} {hs.min():7.3f} {hs.max():7.3f}")
    out = Path(png) if png else root / "summary.png"
    plot_summary(good, out)
    print(f"\nplot: {out}")
    return 0


def plot_summary(rows, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, order, attr, label in (
        (axes[0], "speed", SPEED_ORDER, "p90_speed_m_s", "p90 end-effector speed (m/s)"),
        (axes[1], "height", HEIGHT_ORDER, "carry_height_m", "carry height above table (m)"),
    ):
        groups = _group(rows, key, order)
        data = [[getattr(x, attr) for x in ms if np.isfinite(getattr(x, attr))] for _, ms in groups]
        ax.boxplot(data, tick_labels=[f"{n}\n(n={len(d)})" for (n, _), d in zip(groups, data)])
        ax.set_title(f"by {key} setting")
        ax.set_ylabel(label)
    fig.suptitle("Demonstrations: executed motion per setting (recomputed from recorded states)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
