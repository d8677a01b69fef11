"""Demonstrations in LeRobot's dataset layout, v3.0 (parquet data + meta/), written without LeRobot.

Layout (LeRobot's path templates; LeRobot itself does not install beside this project's torch, so
the schema is matched field by field against its published `datasets/utils.py` and checked by
`tests/data/test_lerobot_layout.py`):

    meta/info.json                      codebase_version "v3.0", fps, features, path templates
    meta/stats.json                     per-feature min/max/mean/std/count (images: per channel, 0-1)
    meta/tasks.parquet                  task string (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, tasks, data file,
                                        dataset_from_index / dataset_to_index, + our settings
    data/chunk-000/file-NNN.parquet     frames; one file per episode (allowed by v3: a file holds
                                        one or more episodes), images as {bytes: PNG, path} structs
                                        (the Hugging Face `datasets` Image feature, dtype "image")

Why one data file per episode: generation is resumable and parallel. An episode exists exactly when
its data file does (written to a temporary name, then renamed), so an interrupted run continues
where it stopped and never writes an episode twice; the meta files are rebuilt from the data files
by `finalize` (after every run, and by `data info`).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..atomic import atomic_write_text
from ..errors import ConfigError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
#: Columns LeRobot adds to every dataset.
INDEX_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
STATE_NAMES = ["eef_x", "eef_y", "eef_z", "eef_ax", "eef_ay", "eef_az", "finger_l", "finger_r"]
ACTION_NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]


def _pa():
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


def episode_data_path(episode_index: int) -> str:
    return DATA_PATH.format(chunk_index=episode_index // CHUNKS_SIZE, file_index=episode_index % CHUNKS_SIZE)


@dataclass
class EpisodeFrames:
    """One recorded episode before it is written.

    images: camera -> uint8 (T, H, W, 3). vectors: feature name -> float32 (T, D) (state, action,
    action.executed, privileged.*). meta: episode-level values (settings, success, seed, ...),
    JSON-serialisable scalars; task: the instruction this episode is paired with.
    """

    images: Mapping[str, np.ndarray]
    vectors: Mapping[str, np.ndarray]
    task: str
    meta: Mapping[str, Any]

    @property
    def length(self) -> int:
        return int(next(iter(self.vectors.values())).shape[0])


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


class LeRobotWriter:
    """Writes episodes of one dataset; safe to use from several processes (one file per episode)."""

    def __init__(self, root: str | Path, fps: int = 20, robot_type: str = "panda") -> None:
        self.root = Path(root)
        self.fps = int(fps)
        self.robot_type = robot_type

    def has_episode(self, episode_index: int) -> bool:
        return (self.root / episode_data_path(episode_index)).is_file()

    def write_episode(self, episode_index: int, ep: EpisodeFrames) -> Path:
        """Write one episode's frames atomically (temp file + rename); returns its path."""
        pa, pq = _pa()
        n = ep.length
        cols: dict[str, Any] = {}
        for cam, frames in ep.images.items():
            if frames.shape[0] != n:
                raise ConfigError(f"camera {cam} has {frames.shape[0]} frames, vectors have {n}")
            cols[f"observation.images.{cam}"] = pa.array(
                [{"bytes": png_bytes(f), "path": None} for f in frames],
                type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
        for name, arr in ep.vectors.items():
            arr = np.asarray(arr, dtype=np.float32)
            cols[name] = pa.array(list(arr), type=pa.list_(pa.float32(), arr.shape[1]))
        cols["timestamp"] = pa.array(np.arange(n, dtype=np.float32) / self.fps)
        cols["frame_index"] = pa.array(np.arange(n, dtype=np.int64))
        cols["episode_index"] = pa.array(np.full(n, episode_index, dtype=np.int64))
        cols["index"] = pa.array(np.full(n, -1, dtype=np.int64))  # global index: set by finalize
        cols["task_index"] = pa.array(np.full(n, -1, dtype=np.int64))
        meta = {"task": ep.task, **dict(ep.meta)}
        table = pa.table(cols).replace_schema_metadata({b"vla_steer.episode": json.dumps(meta).encode()})
        path = self.root / episode_data_path(episode_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{np.random.randint(1 << 30)}")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)
        return path


def episode_files(root: str | Path) -> list[tuple[int, Path]]:
    """(episode_index, data file) of every complete episode, sorted."""
    root = Path(root)
    out = []
    for path in sorted((root / "data").glob("chunk-*/file-*.parquet")):
        chunk = int(path.parent.name.split("-")[1])
        out.append((chunk * CHUNKS_SIZE + int(path.stem.split("-")[1]), path))
    return sorted(out)


def read_episode_meta(path: Path) -> dict[str, Any]:
    _, pq = _pa()
    md = pq.read_schema(path).metadata or {}
    return json.loads(md.get(b"vla_steer.episode", b"{}"))


def _features(schema, image_shapes: Mapping[str, tuple[int, int, int]]) -> dict[str, Any]:
    pa, _ = _pa()
    feats: dict[str, Any] = {}
    for field in schema:
        name = field.name
        if name in INDEX_FEATURES:
            continue
        if name.startswith("observation.images."):
            feats[name] = {"dtype": "image", "shape": list(image_shapes[name]),
                           "names": ["height", "width", "channels"]}
        elif pa.types.is_fixed_size_list(field.type):
            dim = field.type.list_size
            names = STATE_NAMES if name == "observation.state" and dim == 8 else (
                ACTION_NAMES if name.startswith("action") and dim == 7 else None)
            feats[name] = {"dtype": "float32", "shape": [dim], "names": names}
    feats.update(INDEX_FEATURES)
    return feats


def finalize(root: str | Path, fps: int = 20, robot_type: str = "panda") -> dict[str, Any]:
    """Rebuild meta/ (info, stats, tasks, episodes) from the data files; fixes index/task_index."""
    pa, pq = _pa()
    root = Path(root)
    files = episode_files(root)
    if not files:
        raise ConfigError(f"{root}: no episodes (expected {DATA_PATH.format(chunk_index=0, file_index=0)})")
    metas = [read_episode_meta(p) for _, p in files]
    tasks = sorted({m["task"] for m in metas})
    task_index = {t: i for i, t in enumerate(tasks)}
    rows, stats_acc, offset, image_shapes, schema = [], {}, 0, {}, None
    for (ep_idx, path), meta in zip(files, metas):
        table = pq.read_table(path)
        n = table.num_rows
        ti = task_index[meta["task"]]
        if table.column("index")[0].as_py() != offset or table.column("task_index")[0].as_py() != ti:
            table = table.set_column(table.schema.get_field_index("index"), "index",
                                     pa.array(np.arange(offset, offset + n, dtype=np.int64)))
            table = table.set_column(table.schema.get_field_index("task_index"), "task_index",
                                     pa.array(np.full(n, ti, dtype=np.int64)))
            tmp = path.with_suffix(".tmpfinal")
            pq.write_table(table.replace_schema_metadata(table.schema.metadata), tmp, compression="zstd")
            tmp.replace(path)
        schema = table.schema
        ep_stats = _episode_stats(table, image_shapes)
        _accumulate(stats_acc, ep_stats)
        row = {"episode_index": ep_idx, "tasks": [meta["task"]], "length": n,
               "data/chunk_index": ep_idx // CHUNKS_SIZE, "data/file_index": ep_idx % CHUNKS_SIZE,
               "dataset_from_index": offset, "dataset_to_index": offset + n,
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for feat, st in ep_stats.items():
            for k, v in st.items():
                row[f"stats/{feat}/{k}"] = np.asarray(v, dtype=np.float64).reshape(-1).tolist()
        for k, v in meta.items():
            if k != "task":
                row[f"vla_steer/{k}"] = v
        rows.append(row)
        offset += n
    _write_episodes(root, rows)
    _write_tasks(root, tasks)
    stats = {f: {k: np.asarray(v).tolist() for k, v in _finish(acc).items()} for f, acc in stats_acc.items()}
    atomic_write_text(root / STATS_PATH, json.dumps(stats, indent=2))
    info = {
        "codebase_version": CODEBASE_VERSION, "robot_type": robot_type,
        "total_episodes": len(files), "total_frames": offset, "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
        "fps": int(fps), "splits": {"train": f"0:{len(files)}"},
        "data_path": DATA_PATH, "video_path": None,
        "features": _features(schema, image_shapes),
    }
    atomic_write_text(root / INFO_PATH, json.dumps(info, indent=4))
    return info


def _episode_stats(table, image_shapes: dict) -> dict[str, dict[str, np.ndarray]]:
    """LeRobot's per-episode stats: min, max, mean, std, count (images per channel in [0, 1],
    from a subsample of frames, shape (3, 1, 1) as LeRobot stores them)."""
    pa, _ = _pa()
    out: dict[str, dict[str, np.ndarray]] = {}
    for field in table.schema:
        col = table.column(field.name)
        if field.name.startswith("observation.images."):
            idx = np.linspace(0, table.num_rows - 1, num=min(10, table.num_rows)).astype(int)
            imgs = np.stack([decode_png(col[int(i)].as_py()["bytes"]) for i in idx]).astype(np.float64) / 255.0
            image_shapes[field.name] = imgs.shape[1:]
            px = imgs.reshape(-1, 3)
            out[field.name] = {"min": px.min(0).reshape(3, 1, 1), "max": px.max(0).reshape(3, 1, 1),
                               "mean": px.mean(0).reshape(3, 1, 1), "std": px.std(0).reshape(3, 1, 1),
                               "count": np.array([len(idx)])}
            continue
        if pa.types.is_fixed_size_list(field.type):
            arr = np.asarray(col.combine_chunks().flatten()).reshape(table.num_rows, -1).astype(np.float64)
        elif pa.types.is_floating(field.type) or pa.types.is_integer(field.type):
            arr = np.asarray(col).astype(np.float64).reshape(-1, 1)
        else:
            continue
        out[field.name] = {"min": arr.min(0), "max": arr.max(0), "mean": arr.mean(0), "std": arr.std(0),
                           "count": np.array([arr.shape[0]])}
    return out


def _accumulate(acc: dict, ep: dict) -> None:
    for feat, st in ep.items():
        a = acc.setdefault(feat, {"min": None, "max": None, "sum": 0.0, "sumsq": 0.0, "n": 0})
        n = int(st["count"][0])
        a["min"] = st["min"] if a["min"] is None else np.minimum(a["min"], st["min"])
        a["max"] = st["max"] if a["max"] is None else np.maximum(a["max"], st["max"])
        a["sum"] = a["sum"] + st["mean"] * n
        a["sumsq"] = a["sumsq"] + (st["std"] ** 2 + st["mean"] ** 2) * n
        a["n"] += n


def _finish(a: dict) -> dict[str, np.ndarray]:
    mean = a["sum"] / a["n"]
    std = np.sqrt(np.maximum(a["sumsq"] / a["n"] - mean ** 2, 0.0))
    return {"min": a["min"], "max": a["max"], "mean": mean, "std": std, "count": np.array([a["n"]])}


def _write_episodes(root: Path, rows: Sequence[dict]) -> None:
    pa, pq = _pa()
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    table = pa.table({k: [r.get(k) for r in rows] for k in keys})
    path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def _write_tasks(root: Path, tasks: Sequence[str]) -> None:
    """tasks.parquet as pandas writes `DataFrame({"task_index": ...}, index=tasks)` (LeRobot reads
    it with `pd.read_parquet`, the task strings as the index)."""
    pa, pq = _pa()
    table = pa.table({"task_index": pa.array(range(len(tasks)), type=pa.int64()),
                      "__index_level_0__": pa.array(list(tasks), type=pa.string())})
    pandas_meta = {
        "index_columns": ["__index_level_0__"], "column_indexes": [],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3",
    }
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    path = root / TASKS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


# ------------------------------------------------------------------------------------ reading


@dataclass
class Episode:
    """One episode read back: images camera -> (T, H, W, 3) uint8 (decoded lazily with `images`)."""

    index: int
    task: str
    meta: dict[str, Any]
    vectors: dict[str, np.ndarray]
    path: Path

    def images(self, camera: str) -> np.ndarray:
        _, pq = _pa()
        col = pq.read_table(self.path, columns=[f"observation.images.{camera}"]).column(0)
        return np.stack([decode_png(v["bytes"]) for v in col.to_pylist()])


def image_cameras(path: Path) -> list[str]:
    """Camera names of an episode file (its `observation.images.<camera>` columns), sorted."""
    _, pq = _pa()
    return sorted(f.name.split(".")[-1] for f in pq.read_schema(path) if f.name.startswith("observation.images."))


def read_info(root: str | Path) -> dict[str, Any]:
    path = Path(root) / INFO_PATH
    if not path.is_file():
        raise ConfigError(f"{root} is not a LeRobot v3 dataset (no {INFO_PATH}); run `vla-steer data generate` "
                          "or `vla-steer data info` to finalize an interrupted one")
    return json.loads(path.read_text())


def iter_episodes(root: str | Path, with_vectors: bool = True) -> Iterator[Episode]:
    """Every episode with its float vectors (state, actions, privileged) and its meta."""
    pa, pq = _pa()
    for idx, path in episode_files(root):
        meta = read_episode_meta(path)
        vectors: dict[str, np.ndarray] = {}
        if with_vectors:
            schema = pq.read_schema(path)
            names = [f.name for f in schema if pa.types.is_fixed_size_list(f.type)]
            table = pq.read_table(path, columns=names)
            for name in names:
                col = table.column(name).combine_chunks()
                vectors[name] = np.asarray(col.flatten()).reshape(table.num_rows, -1)
        yield Episode(index=idx, task=meta.get("task", ""), meta=meta, vectors=vectors, path=path)
