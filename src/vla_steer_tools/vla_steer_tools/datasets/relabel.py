"""`vla-steer data relabel`: DAgger's labelling step — the expert's action at every visited state.

A policy's rollouts (recorded with privileged state by `vla-steer data rollout`) are copied into a
new dataset whose `action` column is what the scripted expert would have done in each frame's
state; `action.executed` keeps what the policy did. Because the expert is a pure function of the
state (expert/waypoint_expert.py), no simulator is needed. The expert's speed and carry height
come from the settings the rollout was asked for (its episode record), so the relabelled data
keep the instruction's meaning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..expert.tasks import geometry_for
from ..expert.waypoint_expert import ExpertSettings, WaypointExpert
from .instructions import load_wordings
from .lerobot_v3 import EpisodeFrames, LeRobotWriter, finalize, image_cameras, iter_episodes
from .state import PRIVILEGED, expert_state_at


def relabel(rollouts: str | Path, out: str | Path, instructions: str | None = None) -> int:
    wordings = load_wordings(instructions)
    writer = LeRobotWriter(out)
    n = 0
    for ep in iter_episodes(rollouts):
        missing = [k for k in PRIVILEGED if k not in ep.vectors and k != "privileged.ee_quat"]
        if missing:
            raise ConfigError(f"{rollouts} episode {ep.index} has no privileged state {missing}: record rollouts with "
                              "`vla-steer data rollout` (it stores what the expert needs)")
        meta = dict(ep.meta)
        expert = WaypointExpert(geometry_for(meta["suite"], int(meta["task_id"])),
                                ExpertSettings(speed=wordings.speed_value(meta.get("speed", "normal")),
                                               carry_height_m=wordings.height_value(meta.get("height", "normal"))))
        labels = np.stack([expert.act(expert_state_at(ep.vectors, t)).action
                           for t in range(len(ep.vectors["observation.state"]))]).astype(np.float32)
        vectors = dict(ep.vectors)
        vectors["action.executed"] = ep.vectors.get("action.executed", ep.vectors.get("action"))
        vectors["action"] = labels
        cams = image_cameras(ep.path)
        meta.update(source="relabelled", relabelled_from=str(rollouts))
        writer.write_episode(ep.index, EpisodeFrames(images={c: ep.images(c) for c in cams}, vectors=vectors,
                                                     task=ep.task, meta=meta))
        n += 1
    if n == 0:
        raise ConfigError(f"{rollouts}: no episodes to relabel")
    finalize(out)
    return n

