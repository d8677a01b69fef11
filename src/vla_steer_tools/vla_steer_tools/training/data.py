"""Frames of LeRobot v3 demonstration datasets in memory, as the mini-VLA trainer samples them.

Everything is loaded once into numpy arrays (64 px images of ~40k frames are about 1 GB), because
decoding PNGs per sample would cost more than the model on 2 cores. The instruction of a sample is
drawn from all wordings of its episode's setting (config/instructions.yaml), so the head reads the
meaning of "slowly" / "carrying it high" rather than one fixed string per episode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..datasets.instructions import Wordings
from ..datasets.lerobot_v3 import decode_png, episode_files, read_episode_meta
from ..errors import ConfigError


@dataclass
class FrameSet:
    """images: camera -> (N, S, S, 3) uint8; state (N, 8); action (N, 7) clean expert action;
    episode_start / episode_end: (N,) frame index bounds of each frame's episode;
    wording_ids: (N,) index into `wording_sets`; wording_sets: list of lists of texts."""

    images: dict[str, np.ndarray]
    state: np.ndarray
    action: np.ndarray
    episode_start: np.ndarray
    episode_end: np.ndarray
    wording_ids: np.ndarray
    wording_sets: list[list[str]]
    episodes: list[int]

    def __len__(self) -> int:
        return int(self.state.shape[0])

    def chunk_targets(self, idx: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Actions t..t+chunk-1 of each frame (within its episode; past the end the last one,
        masked out): (B, chunk, 7) and a (B, chunk) bool mask of real steps."""
        steps = idx[:, None] + np.arange(chunk)[None]
        valid = steps < self.episode_end[idx][:, None]
        steps = np.minimum(steps, self.episode_end[idx][:, None] - 1)
        return self.action[steps], valid


def is_validation(dataset: str, episode_index: int, fraction: float) -> bool:
    """A stable per-episode split (hash of dataset name and index), independent of file order."""
    h = int(hashlib.sha256(f"{Path(dataset).name}:{episode_index}".encode()).hexdigest()[:8], 16)
    return (h % 1000) < fraction * 1000


def load_frames(datasets: Sequence[str], cameras: Sequence[str], wordings: Wordings, split: str,
                val_fraction: float, task_filter: Sequence[tuple[str, int]] = (), only_success: bool = True) -> FrameSet:
    """Read every frame of the chosen split of `datasets` (the clean `action` column as target)."""
    import pyarrow.parquet as pq

    imgs: dict[str, list] = {c: [] for c in cameras}
    states, actions, starts, ends, wids = [], [], [], [], []
    wording_sets: list[list[str]] = []
    set_index: dict[tuple, int] = {}
    episodes: list[int] = []
    offset = 0
    for ds in datasets:
        files = episode_files(ds)
        if not files:
            raise ConfigError(f"{ds}: no episodes found")
        for ep_idx, path in files:
            meta = read_episode_meta(path)
            if task_filter and (meta.get("suite"), meta.get("task_id")) not in set(task_filter):
                continue
            # failed expert demos are dropped; relabelled rollouts are kept whatever their outcome
            # (their labels are the expert's, and the failures are the states DAgger is for)
            if only_success and not meta.get("success", False) and meta.get("source", "expert") == "expert":
                continue
            if (split == "val") != is_validation(ds, ep_idx, val_fraction):
                continue
            cols = ["observation.state", "action"] + [f"observation.images.{c}" for c in cameras]
            table = pq.read_table(path, columns=cols)
            n = table.num_rows
            states.append(np.asarray(table.column("observation.state").combine_chunks().flatten()).reshape(n, -1))
            actions.append(np.asarray(table.column("action").combine_chunks().flatten()).reshape(n, -1))
            for c in cameras:
                imgs[c].append(np.stack([decode_png(v["bytes"]) for v in table.column(f"observation.images.{c}").to_pylist()]))
            base = meta.get("task_text") or _base_task(meta)
            key = (base, meta.get("speed", "normal"), meta.get("height", "normal"))
            if key not in set_index:
                set_index[key] = len(wording_sets)
                wording_sets.append(wordings.all_for(*key))
            wids.append(np.full(n, set_index[key]))
            starts.append(np.full(n, offset))
            ends.append(np.full(n, offset + n))
            episodes.append(ep_idx)
            offset += n
    if not states:
        raise ConfigError(f"no {split} episodes in {list(datasets)} (task filter {list(task_filter)})")
    return FrameSet(images={c: np.concatenate(v) for c, v in imgs.items()},
                    state=np.concatenate(states).astype(np.float32), action=np.concatenate(actions).astype(np.float32),
                    episode_start=np.concatenate(starts), episode_end=np.concatenate(ends),
                    wording_ids=np.concatenate(wids), wording_sets=wording_sets, episodes=episodes)


def _base_task(meta: dict) -> str:
    """The task's own instruction (LIBERO's language), recorded as `task_text` by the generator."""
    from ..expert.tasks import task_text

    return task_text(meta["suite"], int(meta["task_id"]))
