"""Policy rollouts recorded for DAgger: a `Policy` acts in a `LiberoEnv` (no ROS), every visited
state is stored with the privileged state the expert needs, in the demonstrations' format.

Why not through the ROS graph: relabelling needs the simulator's object poses at each frame,
which the bridge does not publish (a policy must never see them). The policy, its chunking
(`execute_steps` of each chunk) and the rendering are the ones the node and the bridge use, so the
visited states are those of closed-loop evaluation. `vla-steer data relabel` then writes the
expert's action for each frame.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

import numpy as np
from vla_steer_tools.datasets.instructions import Wordings
from vla_steer_tools.datasets.lerobot_v3 import EpisodeFrames, LeRobotWriter, finalize
from vla_steer_tools.datasets.state import OBSTACLES, flat_obstacles, libero_state
from vla_steer_tools.policy import Policy
from vla_steer_tools.types import Observation

from .demos import EpisodeSpec, _expert_state
from .env import LiberoEnv


def rollout_episode(env: LiberoEnv, policy: Policy, spec: EpisodeSpec, image_size: int, max_steps: int,
                    execute_steps: int, cameras: Sequence[str] = ("agentview", "wrist")) -> EpisodeFrames:
    env.max_steps_override = max_steps
    obs = env.reset(spec.suite, spec.task_id, spec.init_state or 0, placement_seed=spec.placement_seed)
    policy.reset()
    frames: dict[str, list] = {c: [] for c in cameras}
    rec: dict[str, list] = {k: [] for k in ("observation.state", "action", "privileged.object_pos",
                                            "privileged.target_pos", "privileged.ee_quat", "privileged.finger_vel",
                                            OBSTACLES)}
    queue: list[np.ndarray] = []
    while not obs.done:
        state = libero_state(obs.ee_pos, obs.ee_quat, obs.gripper)
        if not queue:
            chunk = policy.infer(Observation(images={c: obs.images[c] for c in cameras}, instruction=spec.instruction,
                                             state=state))
            queue = list(chunk.actions[:execute_steps])
        action = np.asarray(queue.pop(0), dtype=np.float64)
        es = _expert_state(obs)
        for c in cameras:
            frames[c].append(obs.images[c])
        rec["observation.state"].append(state)
        rec["action"].append(action)
        rec["privileged.object_pos"].append(es.object_pos)
        rec["privileged.target_pos"].append(es.target_pos)
        rec["privileged.ee_quat"].append(es.ee_quat)
        rec["privileged.finger_vel"].append(es.finger_vel)
        rec[OBSTACLES].append(flat_obstacles(es.obstacles))
        obs = env.step(action)
    meta = {**spec.__dict__, "success": bool(obs.success), "steps": int(obs.step), "image_size": image_size,
            "source": "policy rollout", "task_text": env.instruction}
    return EpisodeFrames(images={c: np.stack(v) for c, v in frames.items()},
                         vectors={k: np.asarray(v, dtype=np.float32) for k, v in rec.items()},
                         task=spec.instruction, meta=meta)


def record_rollouts(policy: Policy, specs: Sequence[EpisodeSpec], out: str | Path, image_size: int,
                    max_steps: int, execute_steps: int) -> dict:
    """Roll out every spec not yet on disk (resumable); returns the dataset info."""
    from tqdm import tqdm

    writer = LeRobotWriter(out)
    env = LiberoEnv(specs[0].suite, specs[0].task_id, image_size=image_size, max_steps=max_steps)
    ok = 0
    try:
        bar = tqdm([s for s in specs if not writer.has_episode(s.index)], desc="rollouts", unit="ep")
        for spec in bar:
            ep = rollout_episode(env, policy, spec, image_size, max_steps, execute_steps)
            writer.write_episode(spec.index, ep)
            ok += bool(ep.meta["success"])
            bar.set_postfix(success=ok)
    finally:
        env.close()
    return finalize(out)


def rollout_specs(suite: str, task: int, init_states: Sequence[int | str], speeds: Sequence[str],
                  heights: Sequence[str], seed: int, wordings: Wordings, task_text: str) -> list[EpisodeSpec]:
    """One rollout per (init state, speed), heights cycled; instruction worded like the demos."""
    specs = []
    for i, init in enumerate(init_states):
        for j, speed in enumerate(speeds):
            height = heights[(i + j) % len(heights)]
            idx = len(specs)
            rng = random.Random(f"rollout:{seed}:{idx}")
            fixed = isinstance(init, int)
            specs.append(EpisodeSpec(index=idx, suite=suite, task_id=task, init_state=init if fixed else None,
                                     placement_seed=None if fixed else (seed * 100000 + int(str(init)[1:])) % (2**31),
                                     speed=speed, height=height, noise=0.0, seed=rng.randrange(2**31),
                                     instruction=wordings.pick(task_text, speed, height, rng)))
    return specs
