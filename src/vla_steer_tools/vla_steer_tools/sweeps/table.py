"""The sweep's results on disk, written as they come in, so a killed sweep loses at most the
episodes that were running.

  plan.json      the cells, episode starts and setup; a resumed sweep must match it exactly
  results.jsonl  one row per finished (cell, episode), appended and flushed as it arrives
  cells.csv      one row per finished cell (every episode in), appended when its last one arrives
  results.json   cell -> its episodes' rows, rewritten after every row (what `vla-steer analyze` reads)

Resuming reads results.jsonl (a torn last line from a kill is dropped) and runs only the
(cell, episode) pairs that have no row, so a finished cell is never repeated.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..analysis.episodes import wilson_interval
from ..atomic import atomic_write_text
from ..errors import ConfigError

#: Per-episode numbers every row carries (besides the cell's identity and the episode label).
METRICS = ("success", "steps", "early_speed_m_s", "mean_speed_m_s", "carry_height_m", "max_height_m", "path_length_m")
CELL_COLUMNS = ("cell", "kind", "concept", "size", "alpha", "seed", "episodes", "success_rate", "success_ci_low",
                "success_ci_high", "early_speed_m_s", "mean_speed_m_s", "carry_height_m", "max_height_m", "steps")


def _key(row: Mapping) -> tuple[str, str]:
    return str(row["cell"]), str(row["episode"])


class ResultsTable:
    def __init__(self, out: str | Path, plan: dict) -> None:
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"--out {self.out} is a file, not a directory")
        self.out.mkdir(parents=True, exist_ok=True)
        self.plan = plan
        self._check_plan()
        self.rows: dict[tuple[str, str], dict] = {_key(r): r for r in self._read_rows()}
        self._cells_done = {r["cell"] for r in self._read_cells()}
        self._episodes = [e["label"] for e in plan["episodes"]]

    # -- plan ----------------------------------------------------------------------------------
    def _check_plan(self) -> None:
        path = self.out / "plan.json"
        text = json.dumps(self.plan, indent=1, sort_keys=True)
        if path.is_file():
            old = json.loads(path.read_text())
            if old != json.loads(text):
                diff = sorted(k for k in set(old) | set(self.plan) if old.get(k) != self.plan.get(k))
                raise ConfigError(f"{self.out} holds a sweep of another plan (differs in: {', '.join(diff)}); "
                                  "re-run the same command to resume, or pick a new --out")
        else:
            atomic_write_text(path, text + "\n")

    # -- reading ---------------------------------------------------------------------------------
    def _read_rows(self) -> list[dict]:
        path = self.out / "results.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill: that episode runs again
        return rows

    def _read_cells(self) -> list[dict]:
        path = self.out / "cells.csv"
        if not path.is_file():
            return []
        with path.open(newline="") as f:
            return list(csv.DictReader(f))

    def todo(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [p for p in pairs if p not in self.rows]

    # -- writing ---------------------------------------------------------------------------------
    def add(self, row: dict) -> None:
        """One finished episode: appended to results.jsonl, results.json rewritten, and the cell's
        summary appended to cells.csv if this was its last episode."""
        self.rows[_key(row)] = row
        with (self.out / "results.jsonl").open("a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
            f.flush()
        self._write_results_json()
        cell = str(row["cell"])
        if cell not in self._cells_done and all((cell, e) in self.rows for e in self._episodes):
            self._append_cell(cell)

    def _write_results_json(self) -> None:
        by_cell: dict[str, list[dict]] = {}
        for c in self.plan["cells"]:
            rows = [self.rows[(c["name"], e)] for e in self._episodes if (c["name"], e) in self.rows]
            if rows:
                by_cell[c["name"]] = [{**r, "label": r["episode"]} for r in rows]
        atomic_write_text(self.out / "results.json", json.dumps(by_cell, indent=1, sort_keys=True) + "\n")

    def _append_cell(self, cell: str) -> None:
        summary = self.cell_summary(cell)
        path = self.out / "cells.csv"
        new = not path.is_file()
        with path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CELL_COLUMNS)
            if new:
                w.writeheader()
            w.writerow(summary)
        self._cells_done.add(cell)

    def cell_summary(self, cell: str) -> dict:
        meta = next(c for c in self.plan["cells"] if c["name"] == cell)
        rows = [self.rows[(cell, e)] for e in self._episodes if (cell, e) in self.rows]
        k = sum(bool(r["success"]) for r in rows)
        lo, hi = wilson_interval(k, len(rows))
        out = {"cell": cell, "kind": meta["kind"], "concept": meta["concept"], "size": meta["size"],
               "alpha": meta["alpha"], "seed": meta["seed"], "episodes": len(rows),
               "success_rate": round(k / len(rows), 4) if rows else math.nan,
               "success_ci_low": round(lo, 4), "success_ci_high": round(hi, 4)}
        for m in ("early_speed_m_s", "mean_speed_m_s", "carry_height_m", "max_height_m", "steps"):
            vals = np.array([r[m] for r in rows], dtype=np.float64)
            out[m] = round(float(np.nanmean(vals)), 5) if np.isfinite(vals).any() else math.nan
        return out

    def finished(self) -> bool:
        return all((c["name"], e) in self.rows for c in self.plan["cells"] for e in self._episodes)

    def sorted_rows(self, drop: Sequence[str] = ("wall_s", "worker")) -> list[dict]:
        """Every row in plan order, without the fields that depend on scheduling (for comparisons)."""
        out = []
        for c in self.plan["cells"]:
            for e in self._episodes:
                if (c["name"], e) in self.rows:
                    out.append({k: v for k, v in self.rows[(c["name"], e)].items() if k not in drop})
        return out
