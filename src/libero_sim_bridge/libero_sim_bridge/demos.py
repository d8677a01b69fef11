"""Scripted demonstrations in LIBERO: plan episodes, run the expert, record them (no ROS).

`plan_episodes` turns the user's choices into a deterministic list of `EpisodeSpec`s (episode index
= position in that list, so a resumed run skips exactly the episodes already on disk);
`record_episode` runs one of them in a `LiberoEnv` rendered exactly as the bridge renders (same
class, fast render, 180-degree rotation), and `generate` farms the missing ones out to worker
processes with a progress bar.

DART-style noise: with `noise > 0` a fraction of the episodes execute the expert's action plus
Gaussian noise on the position/rotation dims, while the dataset's `action` column keeps what the
expert wanted (`action.executed` has what ran), so a policy learns to recover from small errors.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import random
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from vla_steer_tools.datasets.instructions import Wordings, load_wordings
from vla_steer_tools.datasets.lerobot_v3 import (EpisodeFrames, LeRobotWriter, episode_data_path, finalize,
                                                 read_episode_meta)
from vla_steer_tools.datasets.state import flat_obstacles, libero_state
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.expert.tasks import geometry_for
from vla_steer_tools.expert.waypoint_expert import EXPERT_VERSION, ExpertSettings, ExpertState, WaypointExpert

from .env import LiberoEnv, SimObservation

LOG = logging.getLogger(__name__)
PHASES = ("approach", "descend", "close", "lift", "carry", "lower", "release", "retreat", "reopen")


@dataclass(frozen=True)
class EpisodeSpec:
    """Everything that determines one demonstration (its index is its place in the plan).
    init_state: a LIBERO fixed init state id, or None with placement_seed: a random placement."""

    index: int
    suite: str
    task_id: int
    init_state: int | None
    placement_seed: int | None
    speed: str
    height: str
    noise: float
    seed: int
    instruction: str = ""


@dataclass(frozen=True)
class GenerateOptions:
    cameras: tuple[str, ...] = ("agentview", "wrist")
    image_size: int = 64
    max_steps: int = 600
    grasp_jitter_m: float = 0.01
    settle_steps: int = 10

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ConfigError(f"max steps {self.max_steps} must be >= 1")
        if not 0.0 <= self.grasp_jitter_m <= 0.03:
            raise ConfigError(f"grasp jitter {self.grasp_jitter_m} m out of range 0..0.03")
        if not self.cameras or any(not c for c in self.cameras):
            raise ConfigError(f"cameras {self.cameras!r}: name at least one camera")


#: Episode fields that must agree between a planned spec and the episode already on disk.
RESUME_KEYS = ("suite", "task_id", "init_state", "placement_seed", "speed", "height", "noise", "seed", "instruction")


def check_resumable(specs: Sequence[EpisodeSpec], out_dir: str | Path, opts: GenerateOptions) -> None:
    """Refuse to resume into a dataset made from a different plan: an episode on disk whose spec
    differs from the planned spec at its index (other tasks, init states, settings, seed, image
    size or cameras) would silently mix two datasets under one episode numbering."""
    root = Path(out_dir)
    for spec in specs:
        path = root / episode_data_path(spec.index)
        if not path.is_file():
            continue
        meta = read_episode_meta(path)
        planned = {**asdict(spec), "image_size": opts.image_size}
        diff = [k for k in (*RESUME_KEYS, "image_size") if k in meta and meta[k] != planned[k]]
        if diff:
            shown = ", ".join(f"{k}: on disk {meta[k]!r}, planned {planned[k]!r}" for k in diff[:3])
            raise ConfigError(f"{out_dir} holds episode {spec.index} of a different plan ({shown}); "
                              "re-run with the same arguments to resume, or pick a new --out")


def plan_episodes(tasks: Sequence[tuple[str, int]], init_states: Sequence[int | str], speeds: Sequence[str],
                  heights: Sequence[str], noise: float, noise_fraction: float, seed: int,
                  wordings: Wordings, task_texts: dict[tuple[str, int], str], all_combos: bool = False) -> list[EpisodeSpec]:
    """The deterministic episode list. init_states: ints (fixed states) or "r<k>" (k-th random
    placement). Without `all_combos`, each (task, init state, speed) gets one height, cycling
    through `heights` (a Latin square: every speed meets every height equally often)."""
    if noise < 0 or not np.isfinite(noise):
        raise ConfigError(f"noise std {noise} must be a finite number >= 0 (action units)")
    if not 0.0 <= noise_fraction <= 1.0:
        raise ConfigError(f"noise fraction {noise_fraction} must be in 0..1")
    specs: list[EpisodeSpec] = []
    for suite, task in tasks:
        for i_pos, init in enumerate(init_states):
            for s_pos, speed in enumerate(speeds):
                hs = heights if all_combos else [heights[(i_pos + s_pos) % len(heights)]]
                for height in hs:
                    idx = len(specs)
                    rng = random.Random(f"{seed}:{idx}")
                    fixed = isinstance(init, int)
                    specs.append(EpisodeSpec(
                        index=idx, suite=suite, task_id=task,
                        init_state=init if fixed else None,
                        placement_seed=None if fixed else int(f"{seed}{int(str(init)[1:]):05d}") % (2**31),
                        speed=speed, height=height,
                        noise=noise if rng.random() < noise_fraction else 0.0,
                        seed=rng.randrange(2**31),
                        instruction=wordings.pick(task_texts[(suite, task)], speed, height, rng)))
    return specs


def _expert_state(obs: SimObservation) -> ExpertState:
    x = obs.extra
    if "object_pos" not in x:
        raise ConfigError("this LIBERO task reports no object of interest: no expert for it")
    return ExpertState(ee_pos=obs.ee_pos, ee_quat=obs.ee_quat, fingers=obs.gripper,
                       finger_vel=x["gripper_vel"], object_pos=x["object_pos"], target_pos=x["target_pos"],
                       obstacles=x.get("obstacles"))


def record_episode(env: LiberoEnv, spec: EpisodeSpec, opts: GenerateOptions, wordings: Wordings) -> EpisodeFrames:
    """Run the expert for one spec; every frame's inputs, the clean and executed actions."""
    rng = np.random.default_rng(spec.seed)
    # sideways +-jitter; vertically only upwards (0..30%), so the grasp point never sinks into the table
    jitter = rng.uniform(-opts.grasp_jitter_m, opts.grasp_jitter_m, size=3) * [1.0, 1.0, 0.0]
    jitter[2] = rng.uniform(0.0, 0.3 * opts.grasp_jitter_m)
    settings = ExpertSettings(speed=wordings.speed_value(spec.speed), carry_height_m=wordings.height_value(spec.height),
                              grasp_jitter_m=tuple(jitter), close_radius_m=0.006 + rng.uniform(0, opts.grasp_jitter_m))
    expert = WaypointExpert(geometry_for(spec.suite, spec.task_id), settings)
    env.max_steps_override = opts.max_steps
    obs = env.reset(spec.suite, spec.task_id, spec.init_state or 0, placement_seed=spec.placement_seed)
    frames: dict[str, list] = {c: [] for c in opts.cameras}
    rec: dict[str, list] = {k: [] for k in ("observation.state", "action", "action.executed", "privileged.object_pos",
                                            "privileged.target_pos", "privileged.ee_quat", "privileged.finger_vel",
                                            "privileged.obstacles", "expert.phase")}
    while not obs.done:
        es = _expert_state(obs)
        out = expert.act(es)
        executed = out.action.copy()
        if spec.noise > 0:
            executed[:6] += rng.normal(0.0, spec.noise, size=6) * [1, 1, 1, 0.3, 0.3, 0.3]
            executed[:6] = np.clip(executed[:6], -1.0, 1.0)
        for c in opts.cameras:
            frames[c].append(obs.images[c])
        rec["observation.state"].append(libero_state(obs.ee_pos, obs.ee_quat, obs.gripper))
        rec["action"].append(out.action)
        rec["action.executed"].append(executed)
        rec["privileged.object_pos"].append(es.object_pos)
        rec["privileged.target_pos"].append(es.target_pos)
        rec["privileged.ee_quat"].append(es.ee_quat)
        rec["privileged.finger_vel"].append(es.finger_vel)
        rec["privileged.obstacles"].append(flat_obstacles(es.obstacles))
        rec["expert.phase"].append([PHASES.index(out.phase)])
        obs = env.step(executed)
    meta = {**asdict(spec), "success": bool(obs.success), "steps": int(obs.step),
            "speed_value": settings.speed, "carry_height_m": settings.carry_height_m,
            "grasp_jitter_m": list(map(float, jitter)), "close_radius_m": settings.close_radius_m,
            "image_size": opts.image_size, "source": "expert", "task_text": env.instruction,
            "expert_version": EXPERT_VERSION}
    return EpisodeFrames(images={c: np.stack(v) for c, v in frames.items()},
                         vectors={k: np.asarray(v, dtype=np.float32) for k, v in rec.items()},
                         task=spec.instruction, meta=meta)


# ------------------------------------------------------------------------------- workers

_WORKER: dict = {}


def _work(spec: EpisodeSpec, opts: GenerateOptions, out_dir: str, wordings_path: str | None) -> tuple[int, bool, int]:
    """Worker-process entry: one env per process, reused across episodes and tasks."""
    if "env" not in _WORKER:
        logging.getLogger("libero_sim_bridge.env").setLevel(logging.WARNING)
        _WORKER["env"] = LiberoEnv(spec.suite, spec.task_id, image_size=opts.image_size,
                                   settle_steps=opts.settle_steps, max_steps=opts.max_steps)
        _WORKER["wordings"] = load_wordings(wordings_path)
    ep = record_episode(_WORKER["env"], spec, opts, _WORKER["wordings"])
    LeRobotWriter(out_dir).write_episode(spec.index, ep)
    return spec.index, bool(ep.meta["success"]), ep.length


def generate(specs: Sequence[EpisodeSpec], out_dir: str | Path, opts: GenerateOptions, workers: int = 1,
             wordings_path: str | None = None) -> dict:
    """Record every spec whose episode is not on disk yet; then rebuild the meta files."""
    from tqdm import tqdm

    writer = LeRobotWriter(out_dir)
    check_resumable(specs, out_dir, opts)
    todo = [s for s in specs if not writer.has_episode(s.index)]
    done = len(specs) - len(todo)
    if done:
        print(f"resuming: {done} of {len(specs)} episodes already in {out_dir}")
    results: list[tuple[int, bool, int]] = []
    bar = tqdm(total=len(specs), initial=done, unit="ep", desc="demonstrations")
    if workers <= 1:
        for s in todo:
            results.append(_work(s, opts, str(out_dir), wordings_path))
            bar.update(1)
            bar.set_postfix(ok=sum(r[1] for r in results), failed=sum(not r[1] for r in results))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futs = [pool.submit(_work, s, opts, str(out_dir), wordings_path) for s in todo]
            for fut in as_completed(futs):
                results.append(fut.result())
                bar.update(1)
                bar.set_postfix(ok=sum(r[1] for r in results), failed=sum(not r[1] for r in results))
    bar.close()
    return finalize(out_dir, fps=20)
