"""Run a sweep's (cell, episode) pairs: as Ray tasks on workers that each hold the model and a
LIBERO env once (a local Ray instance by default, or a cluster via `address`), or in this process
(`workers=0`, no Ray). Rows reach the results table as each episode finishes, in any order; the
table (vla_steer_tools/sweeps/table.py) makes a re-run skip what is done.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Sequence

from vla_steer_tools.errors import ConfigError
from vla_steer_tools.sweeps.plan import Cell, EpisodeKey
from vla_steer_tools.sweeps.table import ResultsTable

from .sweep_episode import EpisodeRunner, SweepSetup

#: Ray's object store for a local instance (the rows are tiny; Ray's default takes 30% of RAM).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


class SweepWorker:
    """A worker process: one EpisodeRunner, the plan's cells by name (sent once, not per task)."""

    def __init__(self, setup: SweepSetup, cells: Sequence[Cell], episodes: Sequence[EpisodeKey]) -> None:
        import torch

        torch.set_num_threads(1)  # one core per worker: two OpenMP threads on one busy core ran 6x slower
        self.cells = {c.name: c for c in cells}
        self.episodes = {e.label: e for e in episodes}
        self.runner = EpisodeRunner(setup)

    def run(self, pair: tuple[str, str]) -> dict:
        row = self.runner.run(self.cells[pair[0]], self.episodes[pair[1]])
        row["worker"] = os.getpid()
        return row


def sweep_plan(setup: SweepSetup, cells: Sequence[Cell], episodes: Sequence[EpisodeKey]) -> dict:
    """What plan.json holds: enough to refuse resuming into another sweep (neurons included)."""
    return {"setup": setup.as_dict(), "episodes": [asdict(e) for e in episodes],
            "cells": [{**c.label(), "neurons": [[d.name, [[n.component, n.layer, n.index] for n in d.neurons],
                                                  list(d.signs), d.alpha, d.mode] for d in c.directions]}
                      for c in cells]}


def run_sweep(setup: SweepSetup, cells: Sequence[Cell], episodes: Sequence[EpisodeKey], out: str | Path,
              workers: int = 2, address: str | None = None, progress: bool = True) -> ResultsTable:
    """Every (cell, episode) pair without a row yet; returns the table (complete unless killed)."""
    from tqdm import tqdm

    if workers < 0:
        raise ConfigError(f"--workers {workers} must be >= 0 (0: in this process, without Ray)")
    table = ResultsTable(out, sweep_plan(setup, cells, episodes))
    pairs = [(c.name, e.label) for c in cells for e in episodes]  # cell by cell: cells finish early
    todo = table.todo(pairs)
    done = len(pairs) - len(todo)
    if done and progress:
        print(f"resuming: {done} of {len(pairs)} episodes already in {out}")
    bar = tqdm(total=len(pairs), initial=done, unit="ep", desc="sweep", disable=not progress)
    try:
        rows = _in_process(setup, cells, episodes, todo) if workers == 0 else \
            _on_ray(setup, cells, episodes, todo, workers, address)
        for row in rows:
            table.add(row)
            bar.update(1)
            bar.set_postfix(cell=row["cell"][:24], success=row["success"])
    finally:
        bar.close()
    return table


def _in_process(setup: SweepSetup, cells: Sequence[Cell], episodes: Sequence[EpisodeKey],
                todo: Sequence[tuple[str, str]]) -> Iterator[dict]:
    if not todo:
        return
    worker = SweepWorker(setup, cells, episodes)
    try:
        for pair in todo:
            yield worker.run(pair)
    finally:
        worker.runner.close()


def _on_ray(setup: SweepSetup, cells: Sequence[Cell], episodes: Sequence[EpisodeKey], todo: Sequence[tuple[str, str]],
            workers: int, address: str | None) -> Iterator[dict]:
    if not todo:
        return
    import ray
    from ray.util import ActorPool

    started = not ray.is_initialized()
    if started:
        local = {} if address else {"num_cpus": workers, "object_store_memory": LOCAL_OBJECT_STORE_BYTES}
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 **local)
    try:
        remote = ray.remote(num_cpus=1)(SweepWorker)
        actors = [remote.remote(setup, list(cells), list(episodes)) for _ in range(max(1, min(workers, len(todo))))]
        pool = ActorPool(actors)
        yield from pool.map_unordered(lambda actor, pair: actor.run.remote(pair), list(todo))
    finally:
        if started:
            ray.shutdown()
