"""Read what the experiments write into one table of episodes for `vla-steer analyze`.

Three kinds of directory, told apart by their files:
  * a replay (`vla-steer replay`, `validate --bag`): predictions.parquet + replay.json; one
    open-loop "episode" per variant, paired by observation; motion in action units (|a[:3]|);
  * a recorded run (`vla-steer demo` / `record`): a rosbag2 `bag` (or the dir is one); one episode,
    motion of the end effector from /ee_pose in metres, success from /libero/episode_summary;
  * an evaluation, a study or a sweep (`vla-steer eval` / `study` / `sweep`): results.json of per-episode outcomes,
    paired by init-state label across conditions; speeds in m/s (the bridge's 20 Hz).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .bags import read_bag
from .metrics import episode_metrics
from .trace import load_trace

SUMMARY_TOPIC = "/libero/episode_summary"
#: "fast a=4", "fast random0 a=4", and a sweep's "fast n=5 a=4" / "fast n=5 random0 a=4" (the set size
#: stays part of the concept label, so each size is its own dose-response panel).
_CONDITION = re.compile(r"^(?P<concept>[A-Za-z0-9_.+-]+?(?: n=\d+)?)(?: random(?P<seed>\d+))? a=(?P<alpha>[-0-9.eE+]+)$")


@dataclass
class Episode:
    """One episode of one condition. unit: what the motion numbers are in (m/step, m/s, action).
    pair: the key that pairs it across conditions (observation index, init-state label).
    speed: the main motion metric; early_speed: the same over the first steps only (length control).
    per_step: (T,) per-step motion for a length-controlled mean over any N steps (may be empty)."""

    source: str
    kind: str  # baseline | concept | control | adverb | run
    condition: str
    concept: str
    alpha: float
    seed: int
    pair: str
    unit: str
    steps: int
    success: bool | None
    speed: float
    early_speed: float
    mean_dx: float = math.nan
    mean_dy: float = math.nan
    mean_dz: float = math.nan
    path_length: float = math.nan
    max_height: float = math.nan
    min_height: float = math.nan
    per_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    path: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    def row(self) -> dict:
        keys = ("source", "kind", "condition", "concept", "alpha", "seed", "pair", "unit", "steps", "success", "speed",
                "early_speed", "mean_dx", "mean_dy", "mean_dz", "path_length", "max_height", "min_height")
        return {k: getattr(self, k) for k in keys}


def parse_condition(name: str) -> tuple[str, str, float, int]:
    """Study/replay condition name -> (kind, concept, alpha, seed)."""
    if name in ("baseline", "unsteered"):
        return "baseline", "", 0.0, -1
    if name.startswith("adverb"):
        return "adverb", "", 0.0, -1
    m = _CONDITION.match(name)
    if not m:
        return "run", "", math.nan, -1
    seed = m.group("seed")
    return ("control" if seed is not None else "concept"), m.group("concept"), float(m.group("alpha")), int(seed) if seed else -1


def collect(directory: Path) -> list[Episode]:
    """Every episode in `directory` (a replay, a run with a bag, or an eval/study)."""
    if (directory / "predictions.parquet").is_file():
        return _from_replay(directory)
    if (directory / "results.json").is_file():
        return _from_results(directory)
    bag = directory / "bag" if (directory / "bag").is_dir() else directory
    if (bag / "metadata.yaml").is_file():
        return [_from_bag(directory, bag)]
    raise ConfigError(f"{directory}: neither a replay (predictions.parquet), an eval/study (results.json) nor a run "
                      "with a rosbag2 bag")


def _from_replay(directory: Path) -> list[Episode]:
    from ..replay.action_metrics import translation_speed
    from ..replay.outputs import read_replay

    data = read_replay(directory)
    kinds = {v["name"]: v for v in data.meta["variants"]}
    out = []
    for name, chunks in data.chunks.items():
        v = kinds.get(name, {})
        kind = "baseline" if v.get("kind") == "unsteered" else v.get("kind", "run")
        first = chunks[:, 0, :].astype(np.float64)
        speed = translation_speed(first)
        for i in range(len(first)):  # one pair unit per observation
            out.append(Episode(str(directory), kind, name, v.get("concept", ""), float(v.get("alpha", 0.0)),
                               int(v.get("seed", -1)), f"obs{i}", "action units", 1, None, float(speed[i]), float(speed[i]),
                               float(first[i, 0]), float(first[i, 1]), float(first[i, 2]),
                               per_step=speed[i:i + 1], path=np.cumsum(first[:, :3], axis=0) if i == 0 else np.zeros((0, 3))))
    return out


def _from_results(directory: Path) -> list[Episode]:
    data = json.loads((directory / "results.json").read_text())
    groups = {"baseline": data["episodes"]} if "episodes" in data else {k: v for k, v in data.items() if isinstance(v, list)}
    out = []
    for name, rows in groups.items():
        kind, concept, alpha, seed = parse_condition(name)
        for r in rows:
            out.append(Episode(str(directory), kind, name, concept, alpha, seed, str(r.get("label", "")), "m/s",
                               int(r["steps"]), bool(r["success"]), _number(r["mean_speed_m_s"]), _number(r["early_speed_m_s"]),
                               max_height=_number(r.get("max_height_m")), path_length=_number(r.get("path_length_m"))))
    return out


def _number(value: object) -> float:
    """A results.json number; None (a metric an episode could not have, e.g. no carry) -> NaN."""
    return math.nan if value is None else float(value)


def _from_bag(directory: Path, bag: Path) -> Episode:
    trace = load_trace(bag)
    if len(trace.ee_pos) < 2:
        raise ConfigError(f"{bag}: fewer than 2 end-effector poses; nothing to measure")
    m = episode_metrics(trace.ee_pos)
    success = None
    for msg in read_bag(bag, [SUMMARY_TOPIC]):
        success = bool(msg.msg.success)
    step = np.linalg.norm(np.diff(trace.ee_pos, axis=0), axis=1)
    return Episode(str(directory), "run", directory.name, "", math.nan, -1, directory.name, "m/step", m.steps, success,
                   m.mean_step_displacement, float(step[:40].mean()), m.mean_dx, m.mean_dy, m.mean_dz, m.path_length,
                   m.max_height, m.min_height, per_step=step, path=trace.ee_pos)
