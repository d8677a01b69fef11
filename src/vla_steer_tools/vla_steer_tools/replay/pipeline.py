"""`vla-steer replay` end to end: bag -> observations -> every variant -> files, metrics, figure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..analysis.bags import bag_topics
from ..policy import Policy
from .observations import RecordedEpisode, camera_topics, read_episode
from .outputs import PREDICTIONS, format_summary, variant_metrics, write_meta, write_predictions
from .plots import plot_replay
from .runner import ReplayRun, run_variants
from .variants import Variant

#: Where this checkout keeps its config (direction folders), for defaults that work from anywhere.
REPO_CONFIG = Path(__file__).resolve().parents[4] / "config"


def default_direction_dir(family: str) -> Path | None:
    """The mini-VLA's directions are SmolLM2's (its LM is SmolLM2-135M, unchanged)."""
    name = {"minivla": "smollm2"}.get(family)
    if name is None:
        return None
    local = Path("config/directions") / name
    return local if local.is_dir() else REPO_CONFIG / "directions" / name


def bag_camera_keys(bag: str | Path) -> list[str]:
    """Keys of the /camera/<key>/image_raw topics a bag holds."""
    keys = []
    for topic, (msgtype, _) in sorted(bag_topics(bag).items()):
        parts = topic.strip("/").split("/")
        if msgtype == "sensor_msgs/msg/Image" and len(parts) == 3 and parts[0] == "camera" and parts[2] == "image_raw":
            keys.append(parts[1])
    return keys


@dataclass(frozen=True)
class ReplaySetup:
    """What to replay and how. cameras: key -> topic overrides; state_source: see observations.py."""

    bag: Path
    out: Path
    cameras: Mapping[str, str] = field(default_factory=dict)
    state_source: str = "auto"
    instruction: str | None = None
    position: str = ""
    max_observations: int = 0  # 0 = all


def load_episode(setup: ReplaySetup) -> RecordedEpisode:
    keys = list(dict.fromkeys([*bag_camera_keys(setup.bag), *setup.cameras]))
    episode = read_episode(setup.bag, camera_topics(setup.bag, keys, setup.cameras), setup.state_source, setup.instruction)
    if setup.max_observations and len(episode.observations) > setup.max_observations:
        k = setup.max_observations
        episode = RecordedEpisode(episode.observations[:k], episode.stamps_ns[:k], episode.bag_times_ns[:k],
                                  episode.actions, episode.action_times_ns, episode.cameras, episode.state_source)
    return episode


def replay(policy: Policy, setup: ReplaySetup, variants: Sequence[Variant], progress: bool = True,
           episode: RecordedEpisode | None = None) -> tuple[ReplayRun, dict]:
    """Run and write everything into setup.out; returns the run and the metadata written to replay.json."""
    episode = episode or load_episode(setup)
    run = run_variants(policy, episode, variants, setup.position, progress)
    setup.out.mkdir(parents=True, exist_ok=True)
    write_predictions(setup.out / PREDICTIONS, episode, run)
    metrics, comparisons = variant_metrics(run, episode)
    meta = {"bag": str(setup.bag), "model_id": run.model_id, "random_weights": run.random_weights,
            "action_space": run.action_space, "observations": len(episode.observations),
            "cameras": dict(episode.cameras), "state_source": episode.state_source,
            "instruction": episode.observations[0].instruction, "position": setup.position,
            "variants": [{"name": v.name, "kind": v.kind, "concept": v.concept, "alpha": v.alpha, "seed": v.seed,
                          "directions": [d.name for d in v.directions], "instruction_suffix": v.instruction_suffix}
                         for v in variants],
            "metrics": metrics, "comparisons": comparisons,
            "inference_ms": {k: float(np.mean(t) * 1000) for k, t in run.inference_s.items()}}
    write_meta(setup.out, meta)
    (setup.out / "replay.md").write_text(format_summary(meta))
    title = f"open-loop replay: {run.model_id}" + ("  (RANDOM WEIGHTS)" if run.random_weights else "")
    plot_replay(setup.out / "actions.png", run.predictions, episode.recorded_action_per_observation(), comparisons, title)
    return run, meta
