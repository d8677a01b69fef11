"""One closed-loop episode of a sweep cell, without ROS or DDS: the bridge's env wrapper, the
steered policy and the node's chunk pacing and ee-step limit, in one process.

Why not through the ROS graph: a sweep runs hundreds of episodes side by side (Ray workers), and
each graph would need its own DDS domain. What must stay identical is what the arm does, so this
runner uses the same pieces as the node and the bridge: `LiberoEnv` (rendering, orientation,
privileged state), `SteeredPolicy` (the hooks), the node's lockstep pacing (a chunk's first
`execute_steps` rows, each on the next simulator step, then a new inference on the newest frames)
and the node's `limit_ee_action` with the limits of config/policy_libero.yaml. A test runs the same
episode through the bridge and the node in lockstep and compares (tests/sim/test_sweep.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from vla_steer_tools.analysis.episodes import motion_metrics
from vla_steer_tools.datasets.state import libero_state
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.expert.tasks import geometry_for
from vla_steer_tools.models.registry import load_policy
from vla_steer_tools.policy import SteeredPolicy
from vla_steer_tools.steering.hooks import SteeringConfig
from vla_steer_tools.sweeps.plan import Cell, EpisodeKey
from vla_steer_tools.types import Observation

from .env import LiberoEnv

#: The bridge's control rate in simulation (LIBERO: 20 Hz): speeds in m/s use it.
FPS = 20.0


@dataclass(frozen=True)
class SweepSetup:
    """What every episode of a sweep shares (plain data: it travels to Ray workers)."""

    family: str
    model_path: str
    suite: str
    task_id: int
    model_options: dict = field(default_factory=dict)
    image_size: int = 64
    execute_steps: int = 4
    max_steps: int = 280
    cameras: tuple[str, ...] = ("agentview", "wrist")
    position: str = ""
    node_params: str = ""  # the policy node's params file whose limits apply ("" = config/policy_libero.yaml)

    def __post_init__(self) -> None:
        """Checked here, before any worker starts (a bad value would otherwise surface as a Ray
        worker's traceback)."""
        if self.max_steps < 1 or self.execute_steps < 1:
            raise ConfigError(f"max steps {self.max_steps} and execute steps {self.execute_steps} must be >= 1")
        if not 8 <= self.image_size <= 1024:
            raise ConfigError(f"image size {self.image_size} px out of range 8..1024")
        if not self.cameras:
            raise ConfigError("a sweep needs at least one camera")
        geometry_for(self.suite, self.task_id)  # a task with an expert geometry: its table height and hold test

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def node_limits(params_file: str = "") -> tuple[Any, float]:
    """The node's SafetyLimits and ee metres per action unit, read from its LIBERO params file."""
    from vla_policy.compose import config_dir
    from vla_policy.params import from_mapping
    from vla_policy.safety import SafetyLimits

    path = Path(params_file) if params_file else config_dir() / "policy_libero.yaml"
    tree = yaml.safe_load(path.read_text())["vla_policy"]["ros__parameters"]
    flat = {f"{group}.{k}": v for group in ("limits", "output") for k, v in (tree.get(group) or {}).items()}
    p = from_mapping(flat)
    return SafetyLimits.from_params(p), float(p.output_ee_linear_m_per_unit)


class EpisodeRunner:
    """Holds one env and one steered policy; `run(cell, episode)` -> that episode's results row."""

    def __init__(self, setup: SweepSetup, policy: Any = None) -> None:
        self.setup = setup
        base = policy if policy is not None else load_policy(setup.family, setup.model_path, **setup.model_options)
        self.policy = SteeredPolicy(base)
        self.env = LiberoEnv(setup.suite, setup.task_id, image_size=setup.image_size, max_steps=setup.max_steps)
        self.geometry = geometry_for(setup.suite, setup.task_id)
        self.limits, self.m_per_unit = node_limits(setup.node_params)

    def run(self, cell: Cell, episode: EpisodeKey) -> dict:
        t0 = time.perf_counter()
        trace = self.trace(cell, episode)
        m = motion_metrics(trace["positions"], trace["openings"], FPS, self.geometry.table_z_m,
                           self.geometry.min_hold_opening_m)
        path = float(np.linalg.norm(np.diff(trace["positions"], axis=0), axis=1).sum())
        return {"cell": cell.name, "kind": cell.kind, "concept": cell.concept, "alpha": cell.alpha, "size": cell.size,
                "seed": cell.seed, "episode": episode.label, "instruction": trace["instruction"],
                "success": trace["success"], "steps": trace["steps"], "path_length_m": round(path, 6),
                **{k: (round(v, 6) if np.isfinite(v) else None) for k, v in m.items()},
                "wall_s": round(time.perf_counter() - t0, 2)}

    def trace(self, cell: Cell, episode: EpisodeKey) -> dict:
        """The episode itself: positions/openings at every published observation and the actions sent."""
        from vla_policy.safety import limit_ee_action

        s = self.setup
        self.policy.update(SteeringConfig(directions=cell.directions, enabled=bool(cell.directions),
                                          position=s.position))
        self.env.max_steps_override = s.max_steps
        obs = self.env.reset(s.suite, s.task_id, episode.init_state or 0, placement_seed=episode.placement_seed)
        self.policy.reset()
        instruction = self.env.instruction + cell.instruction_suffix
        positions, openings, actions = [obs.ee_pos.copy()], [_opening(obs)], []
        queue: list[np.ndarray] = []
        while not obs.done:
            if not queue:
                state = libero_state(obs.ee_pos, obs.ee_quat, obs.gripper)
                result = self.policy.infer(Observation(images={c: obs.images[c] for c in s.cameras},
                                                       instruction=instruction, state=state))
                queue = [np.asarray(r, dtype=np.float64) for r in result.chunk.actions[:s.execute_steps]]
            action = limit_ee_action(queue.pop(0), obs.ee_pos, self.limits, self.m_per_unit)
            actions.append(action)
            obs = self.env.step(action)
            positions.append(obs.ee_pos.copy())
            openings.append(_opening(obs))
        return {"positions": np.asarray(positions), "openings": np.asarray(openings), "actions": np.asarray(actions),
                "success": bool(obs.success), "steps": int(obs.step), "instruction": instruction}

    def close(self) -> None:
        self.policy.close()
        self.env.close()


def _opening(obs: Any) -> float:
    return float(obs.gripper[0] - obs.gripper[1])
