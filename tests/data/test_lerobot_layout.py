"""The demonstration datasets follow LeRobot's v3.0 layout field by field (LeRobot itself cannot be
installed beside this project's CPU torch: its published `datasets/utils.py` constants and the
meta files of its v3 datasets are the reference, written out here independently)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from vla_steer_tools.datasets.lerobot_v3 import EpisodeFrames, LeRobotWriter, finalize, iter_episodes, read_info
from vla_steer_tools.errors import ConfigError

LEROBOT_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
LEROBOT_INFO_KEYS = {"codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
                     "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path",
                     "features"}
LEROBOT_DEFAULT_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                            "task_index": "int64"}
LEROBOT_EPISODE_COLUMNS = {"episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
                           "dataset_from_index", "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index"}


def _episode(n: int, task: str, seed: int) -> EpisodeFrames:
    rng = np.random.default_rng(seed)
    return EpisodeFrames(
        images={"agentview": rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8),
                "wrist": rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)},
        vectors={"observation.state": rng.normal(size=(n, 8)).astype(np.float32),
                 "action": rng.uniform(-1, 1, (n, 7)).astype(np.float32)},
        task=task, meta={"suite": "libero_object", "task_id": 1, "success": True, "speed": "fast"})


@pytest.fixture
def dataset(tmp_path):
    w = LeRobotWriter(tmp_path / "ds")
    w.write_episode(0, _episode(5, "pick it quickly", 0))
    w.write_episode(1, _episode(3, "pick it", 1))
    finalize(tmp_path / "ds")
    return tmp_path / "ds"


def test_info_json_has_lerobot_v3_fields(dataset):
    info = json.loads((dataset / "meta/info.json").read_text())
    assert set(info) == LEROBOT_INFO_KEYS
    assert info["codebase_version"] == "v3.0" and info["data_path"] == LEROBOT_DATA_PATH
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 8, 2)
    assert info["splits"] == {"train": "0:2"} and isinstance(info["fps"], int)
    for name, dtype in LEROBOT_DEFAULT_FEATURES.items():
        assert info["features"][name]["dtype"] == dtype and info["features"][name]["shape"] == [1]
    img = info["features"]["observation.images.wrist"]
    assert img == {"dtype": "image", "shape": [16, 16, 3], "names": ["height", "width", "channels"]}
    assert info["features"]["action"]["shape"] == [7] and info["features"]["observation.state"]["shape"] == [8]


def test_data_files_have_lerobot_columns_and_global_indices(dataset):
    t0 = pq.read_table(dataset / LEROBOT_DATA_PATH.format(chunk_index=0, file_index=0))
    t1 = pq.read_table(dataset / LEROBOT_DATA_PATH.format(chunk_index=0, file_index=1))
    assert t0.column("index").to_pylist() == [0, 1, 2, 3, 4] and t1.column("index").to_pylist() == [5, 6, 7]
    assert t1.column("frame_index").to_pylist() == [0, 1, 2]
    assert t0.column("timestamp").to_pylist() == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    img = t0.column("observation.images.agentview")[0].as_py()
    assert set(img) == {"bytes", "path"} and img["bytes"][:4] == b"\x89PNG"  # HF datasets Image struct


def test_tasks_and_episodes_meta(dataset):
    tasks = pq.read_table(dataset / "meta/tasks.parquet")
    pandas_meta = json.loads(tasks.schema.metadata[b"pandas"])
    index_col = pandas_meta["index_columns"][0]  # pandas reads the task strings as the index
    by_task = dict(zip(tasks.column(index_col).to_pylist(), tasks.column("task_index").to_pylist()))
    assert set(by_task) == {"pick it quickly", "pick it"}
    data = pq.read_table(dataset / LEROBOT_DATA_PATH.format(chunk_index=0, file_index=0))
    assert set(data.column("task_index").to_pylist()) == {by_task["pick it quickly"]}
    eps = pq.read_table(dataset / "meta/episodes/chunk-000/file-000.parquet")
    assert LEROBOT_EPISODE_COLUMNS <= set(eps.column_names)
    rows = eps.to_pylist()
    assert [(r["dataset_from_index"], r["dataset_to_index"], r["length"]) for r in rows] == [(0, 5, 5), (5, 8, 3)]
    assert {"stats/action/mean", "stats/observation.images.wrist/std"} <= set(eps.column_names)
    stats = json.loads((dataset / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.images.wrist"]["mean"]).shape == (3, 1, 1)
    assert stats["action"]["count"] == [8]


def test_read_back_round_trips_the_frames(dataset):
    eps = list(iter_episodes(dataset))
    assert [e.index for e in eps] == [0, 1] and eps[0].task == "pick it quickly"
    again = _episode(5, "pick it quickly", 0)
    np.testing.assert_array_equal(eps[0].images("wrist"), again.images["wrist"])
    np.testing.assert_array_equal(eps[0].vectors["action"], again.vectors["action"])


def test_an_episode_exists_only_when_its_file_is_complete(tmp_path):
    w = LeRobotWriter(tmp_path / "ds")
    assert not w.has_episode(0)
    w.write_episode(0, _episode(2, "x", 0))
    assert w.has_episode(0) and not list((tmp_path / "ds").rglob("*.tmp*"))


def test_missing_meta_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not a LeRobot v3 dataset"):
        read_info(tmp_path)
    with pytest.raises(ConfigError, match="no episodes"):
        finalize(tmp_path)
