"""LIBERO benchmark episodes behind a small, ROS-free interface.

`LiberoEnv` owns one LIBERO `OffScreenRenderEnv` and runs episodes the way the LIBERO evaluation
protocol does (the one OpenVLA's and openpi's LIBERO scripts follow):
  * the task's bddl file and its fixed init states come from `libero.libero.benchmark`;
  * reset = `env.reset()` then `set_init_state(init_states[init_state_id])`, then `settle_steps`
    no-op steps (arm still, gripper open) so objects dropped into the scene come to rest;
  * at most `SUITE_MAX_STEPS[suite]` policy steps; success is LIBERO's own bddl goal predicate.

Image orientation: MuJoCo's offscreen buffer is read bottom row first, so LIBERO's raw camera
images are upside down. We rotate both cameras by 180 degrees (`img[::-1, ::-1]`), exactly what
OpenVLA's and openpi's LIBERO code apply before feeding their checkpoints. Checked on a saved PNG
(libero_spatial task 0, wrist camera): after the rotation the "COOKIES" label on the box reads left
to right, the robot stands at the top of the agentview image and the table is below it; with only a
vertical flip the label is mirrored. `orientation="raw"` / `"vflip"` exist for other checkpoints.

Rendering uses OpenGL (EGL/OSMesa) whose context is bound to the creating thread: create, reset and
step a `LiberoEnv` from one thread only (the ROS bridge runs it on a dedicated worker thread).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from vla_steer_tools.errors import ConfigError, UnknownChoiceError, VlaSteerError

from .obstacles import ObstacleBoxes

LOG = logging.getLogger(__name__)

#: Policy steps per episode in the LIBERO evaluation protocol (settle steps not counted).
SUITE_MAX_STEPS: Mapping[str, int] = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}

#: Our camera name -> LIBERO observation key.
CAMERAS: Mapping[str, str] = {"agentview": "agentview_image", "wrist": "robot0_eye_in_hand_image"}
#: LIBERO camera (robosuite) names, in the order of `CAMERAS`.
_LIBERO_CAMERA_NAMES: tuple[str, ...] = ("agentview", "robot0_eye_in_hand")

ORIENTATIONS: tuple[str, ...] = ("rot180", "vflip", "raw")
ACTION_DIM = 7
#: dx dy dz droll dpitch dyaw = 0, gripper -1 = open (LIBERO: -1 open, +1 close).
NOOP_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)


class ActionError(VlaSteerError, ValueError):
    """An action cannot be executed (wrong length, NaN/inf); the sim does not step on it."""


class EpisodeOverError(VlaSteerError):
    """A step was asked for after the episode ended (success or step limit); reset first."""


@dataclass(frozen=True)
class SimObservation:
    """What the simulator shows after a reset or a step.

    images: camera name ("agentview", "wrist") -> uint8 (H, W, 3) RGB, oriented per `orientation`.
    joint_pos: the 7 arm joint angles, rad. gripper: the 2 finger joint positions, m.
    ee_pos: end-effector position (3,), m, world frame. ee_quat: orientation (4,), x y z w.
    step: policy steps taken in this episode. done: success or step limit reached.
    """

    images: Mapping[str, np.ndarray]
    joint_pos: np.ndarray
    joint_vel: np.ndarray
    ee_pos: np.ndarray
    ee_quat: np.ndarray
    gripper: np.ndarray
    step: int
    done: bool
    success: bool
    sim_time_s: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)


def validate_action(action: Any) -> np.ndarray:
    """The action as float64 (7,), or ActionError saying exactly what is wrong with it."""
    try:
        arr = np.asarray(action, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ActionError(f"action is not numeric: {exc}") from exc
    if arr.shape != (ACTION_DIM,):
        raise ActionError(f"action has {arr.size} values, expected {ACTION_DIM} "
                          "(dx dy dz droll dpitch dyaw gripper)")
    bad = [i for i, v in enumerate(arr) if not math.isfinite(v)]
    if bad:
        raise ActionError(f"action has non-finite values at index {bad}: {arr.tolist()}")
    return arr


def orient(image: np.ndarray, orientation: str) -> np.ndarray:
    """Apply the chosen flip to a raw LIBERO image (H, W, 3); returns a contiguous copy."""
    if orientation == "rot180":
        return np.ascontiguousarray(image[::-1, ::-1])
    if orientation == "vflip":
        return np.ascontiguousarray(image[::-1])
    if orientation == "raw":
        return np.ascontiguousarray(image)
    raise UnknownChoiceError("image orientation", orientation, ORIENTATIONS)


def max_steps_for(suite: str) -> int:
    """The protocol's step limit for a suite, with an error listing the suites."""
    if suite not in SUITE_MAX_STEPS:
        raise UnknownChoiceError("LIBERO suite", suite, SUITE_MAX_STEPS)
    return SUITE_MAX_STEPS[suite]


class LiberoEnv:
    """One LIBERO task at a time; `reset` may switch suite/task (the env is then rebuilt).

    image_size: square camera resolution, px. fast_render: no anti-aliasing, reflections or skybox
    and an offscreen buffer the size of the images (about 2-3x faster steps; images differ slightly
    from stock LIBERO renders). max_steps: override of the suite's protocol limit (0 = protocol);
    kept in `max_steps_override`, read at every step.
    """

    def __init__(
        self,
        suite: str,
        task_id: int,
        init_state_id: int = 0,
        image_size: int = 224,
        fast_render: bool = True,
        *,
        max_steps: int = 0,
        settle_steps: int = 10,
        orientation: str = "rot180",
        seed: int = 0,
    ) -> None:
        if image_size < 8 or image_size > 1024:
            raise ConfigError(f"image_size {image_size} px out of range 8..1024")
        if orientation not in ORIENTATIONS:
            raise UnknownChoiceError("image orientation", orientation, ORIENTATIONS)
        if max_steps < 0 or settle_steps < 0:
            raise ConfigError(f"max_steps {max_steps} / settle_steps {settle_steps} must be >= 0")
        self.image_size = int(image_size)
        self.fast_render = bool(fast_render)
        self.orientation = orientation
        self.settle_steps = int(settle_steps)
        self.seed = int(seed)
        self.max_steps_override = int(max_steps)
        self._env: Any = None
        self._key: tuple[str, int] | None = None
        self._init_states: np.ndarray | None = None
        self.suite, self.task_id, self.init_state_id = suite, int(task_id), int(init_state_id)
        self.instruction = ""
        self.placement_seed: int | None = None
        self._step = 0
        self._done = False
        self._success = False
        self._last: SimObservation | None = None
        self._obstacles = ObstacleBoxes()
        self._check_task(suite, int(task_id), int(init_state_id))

    # -- public API ---------------------------------------------------------------------------
    @property
    def max_steps(self) -> int:
        return self.max_steps_override or max_steps_for(self.suite)

    @property
    def last_observation(self) -> SimObservation | None:
        return self._last

    def reset(self, suite: str | None = None, task_id: int | None = None,
              init_state_id: int | None = None, placement_seed: int | None = None) -> SimObservation:
        """Start an episode from one of the benchmark's fixed init states, or, with
        `placement_seed`, from a fresh random placement of the task's objects: LIBERO's own
        placement sampler (the bddl's regions) seeded with it, no stored init state."""
        suite = self.suite if suite is None else suite
        task_id = self.task_id if task_id is None else int(task_id)
        init_state_id = self.init_state_id if init_state_id is None else int(init_state_id)
        self._check_task(suite, task_id, init_state_id)
        t0 = time.perf_counter()
        if self._key != (suite, task_id):
            self._build(suite, task_id)
        self._check_init_state(suite, task_id, init_state_id)
        self.suite, self.task_id, self.init_state_id = suite, task_id, init_state_id
        self._env.seed(self.seed if placement_seed is None else int(placement_seed))
        if placement_seed is not None:
            # robosuite's placement samplers draw from numpy's global generator
            np.random.seed(int(placement_seed) % (2**32))
        raw = self._env.reset()  # hard reset: rebuilds the sim and its render context
        self._apply_render_options()
        assert self._init_states is not None
        self.placement_seed = None if placement_seed is None else int(placement_seed)
        if placement_seed is None:
            raw = self._env.set_init_state(self._init_states[init_state_id])
        for _ in range(self.settle_steps):
            raw, _, _, _ = self._env.step(NOOP_ACTION)
        self._step, self._done, self._success = 0, False, bool(self._env.check_success())
        self._last = self._observation(raw)
        where = f"random placement {placement_seed}" if placement_seed is not None else f"init state {init_state_id}"
        LOG.info("reset %s task %d %s in %.1f s: %s", suite, task_id, where, time.perf_counter() - t0,
                 self.instruction)
        return self._last

    def step(self, action: Any) -> SimObservation:
        """One control step (20 Hz sim time) with a validated 7-D ee-delta + gripper action."""
        arr = validate_action(action)
        if self._env is None or self._last is None:
            raise EpisodeOverError("no episode running: call reset() first")
        if self._done:
            raise EpisodeOverError(
                f"episode over after {self._step} steps (success={self._success}): reset first")
        raw, _, success, _ = self._env.step(arr)
        self._step += 1
        self._success = bool(success)
        self._done = self._success or self._step >= self.max_steps
        self._last = self._observation(raw)
        return self._last

    def close(self) -> None:
        """Free the sim and its GL context (from the thread that created them)."""
        if self._env is not None:
            try:
                self._env.close()
            finally:
                self._env = None
                self._key = None

    def __enter__(self) -> "LiberoEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------
    def _check_task(self, suite: str, task_id: int, init_state_id: int) -> None:
        max_steps_for(suite)
        n_tasks = _benchmark(suite).n_tasks
        if not 0 <= task_id < n_tasks:
            raise ConfigError(f"task_id {task_id} out of range for {suite}: 0..{n_tasks - 1}")
        if init_state_id < 0:
            raise ConfigError(f"init_state_id {init_state_id} must be >= 0")

    def _build(self, suite: str, task_id: int) -> None:
        """Create the LIBERO env for a task (3-10 s) and load its init states."""
        from libero.libero.envs import OffScreenRenderEnv

        self.close()
        bench = _benchmark(suite)
        init_states = np.asarray(bench.get_task_init_states(task_id))  # (n_init, state_dim)
        t0 = time.perf_counter()
        self._env = OffScreenRenderEnv(
            bddl_file_name=bench.get_task_bddl_file_path(task_id),
            camera_names=list(_LIBERO_CAMERA_NAMES),
            camera_heights=self.image_size,
            camera_widths=self.image_size,
            ignore_done=True,  # step limits are ours (the suite table), not robosuite's horizon
        )
        self._key = (suite, task_id)
        self._init_states = init_states
        # The benchmark's task text (what OpenVLA/openpi prompt with), not the bddl's variant.
        self.instruction = str(bench.get_task(task_id).language)
        LOG.info("created LIBERO env %s task %d (%d init states) in %.1f s", suite, task_id,
                 len(init_states), time.perf_counter() - t0)

    def _check_init_state(self, suite: str, task_id: int, init_state_id: int) -> None:
        assert self._init_states is not None
        if init_state_id >= len(self._init_states):
            raise ConfigError(f"init_state_id {init_state_id} out of range for {suite} task "
                              f"{task_id}: 0..{len(self._init_states) - 1}")

    def _apply_render_options(self) -> None:
        """Fast render settings live in the sim's model and render context: reapply per reset."""
        if self.fast_render:
            from .render import apply_fast_render

            apply_fast_render(self._env.sim, self.image_size)

    def _observation(self, raw: Mapping[str, Any]) -> SimObservation:
        images = {name: orient(raw[key], self.orientation) for name, key in CAMERAS.items()}
        return SimObservation(
            images=images,
            joint_pos=np.asarray(raw["robot0_joint_pos"], dtype=np.float64).copy(),
            joint_vel=np.asarray(raw["robot0_joint_vel"], dtype=np.float64).copy(),
            ee_pos=np.asarray(raw["robot0_eef_pos"], dtype=np.float64).copy(),
            ee_quat=np.asarray(raw["robot0_eef_quat"], dtype=np.float64).copy(),
            gripper=np.asarray(raw["robot0_gripper_qpos"], dtype=np.float64).copy(),
            step=self._step,
            done=self._done,
            success=self._success,
            sim_time_s=float(self._env.sim.data.time),
            extra=self._privileged(raw),
        )

    def _privileged(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Simulator-only facts (what a scripted expert reads, never a policy): the positions of
        the task's object of interest and target, the finger joint speeds, and the collision boxes
        of the other bodies nearest the object (what the expert's hand must keep clear of)."""
        names = list(getattr(self._env.env, "obj_of_interest", []) or [])
        out: dict[str, Any] = {"gripper_vel": np.asarray(raw.get("robot0_gripper_qvel", np.zeros(2)),
                                                         dtype=np.float64).copy()}
        if len(names) >= 2 and f"{names[0]}_pos" in raw and f"{names[1]}_pos" in raw:
            out["object_name"], out["target_name"] = names[0], names[1]
            out["object_pos"] = np.asarray(raw[f"{names[0]}_pos"], dtype=np.float64).copy()
            out["target_pos"] = np.asarray(raw[f"{names[1]}_pos"], dtype=np.float64).copy()
            out["obstacles"] = self._obstacles.boxes(self._env.sim, exclude=names[:2], near=out["object_pos"])
        return out


_BENCHMARKS: dict[str, Any] = {}


def _benchmark(suite: str) -> Any:
    """The libero benchmark object of a suite (cached: building it parses all task names)."""
    if suite not in _BENCHMARKS:
        max_steps_for(suite)
        from libero.libero import benchmark

        _BENCHMARKS[suite] = benchmark.get_benchmark_dict()[suite]()
    return _BENCHMARKS[suite]
