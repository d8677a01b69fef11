"""`vla-steer eval`: closed-loop success rate of a policy in LIBERO, through the ROS graph.

The same path as the demo: the LIBERO bridge and the `vla_policy` node composed in this process,
in lockstep (one action per simulator step), talking over DDS. For each episode the evaluator
deactivates the node (it holds and drops queued actions), resets the bridge through its
`~/reset_episode` service (a fixed init state or a seeded random placement, optionally another
instruction wording), re-activates the node and waits for `libero/episode_summary`. It records the
end-effector path and finger opening from `ee_pose` / `gripper_state` to compute the early-phase
speed and carry height. Steering, when asked, is set through the node's parameters before the
first episode — exactly what `ros2 param set` would do.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Sequence

import numpy as np
import rclpy
import yaml
from geometry_msgs.msg import PoseStamped
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from vla_steer_tools.analysis.episodes import (EpisodeOutcome, format_summary, motion_metrics, plot_outcomes,
                                               summarize)
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.models.registry import load_policy

from vla_steer_msgs.msg import EpisodeSummary
from vla_steer_msgs.srv import ResetEpisode

from vla_steer_bringup.compose import build_graph

from .compose import config_dir, running

RESET_TIMEOUT_S = 120.0
DEFAULT_MINIVLA = "vla-steer/minivla-libero-object"


@dataclass(frozen=True)
class EpisodeRequest:
    """What to reset to: a fixed init state, or (placement_seed >= 0) a random placement."""

    label: str
    init_state: int = 0
    placement_seed: int = -1
    instruction: str = ""


def parse_episodes(text: str, seed: int) -> list[EpisodeRequest]:
    """'30-49' -> fixed init states; 'random:20' -> 20 placements seeded from --seed."""
    out: list[EpisodeRequest] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if part.startswith("random:"):
                n = int(part[7:])
                out += [EpisodeRequest(f"rand{seed}-{k}", placement_seed=seed * 1000 + k) for k in range(n)]
            elif "-" in part:
                lo, hi = part.split("-", 1)
                out += [EpisodeRequest(f"init{i}", init_state=i) for i in range(int(lo), int(hi) + 1)]
            else:
                out.append(EpisodeRequest(f"init{int(part)}", init_state=int(part)))
        except ValueError as exc:
            raise ConfigError(f"bad --init-states item {part!r}: expected 30-49, 7 or random:20") from exc
    if not out:
        raise ConfigError("no episodes to evaluate")
    return out


@dataclass
class Trace:
    """End-effector positions and finger openings of the running episode (deduplicated stamps)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    positions: list = field(default_factory=list)
    openings: list = field(default_factory=list)
    stamps: set = field(default_factory=set)
    summary: EpisodeSummary | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def clear(self) -> None:
        with self.lock:
            self.positions, self.openings, self.stamps, self.summary = [], [], set(), None
            self.done.clear()

    def on_pose(self, msg: PoseStamped) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        with self.lock:
            if key not in self.stamps:
                self.stamps.add(key)
                p = msg.pose.position
                self.positions.append((p.x, p.y, p.z))

    def on_gripper(self, msg: JointState) -> None:
        if len(msg.position) >= 2:
            with self.lock:
                self.openings.append(float(msg.position[0] - msg.position[1]))

    def on_summary(self, msg: EpisodeSummary) -> None:
        if not msg.interrupted:
            with self.lock:
                self.summary = msg
            self.done.set()


@dataclass(frozen=True)
class EvalSetup:
    family: str
    model_path: str
    model_options: dict
    suite: str
    task_id: int
    image_size: int
    execute_steps: int
    max_steps: int
    steering: dict  # {} or concepts/alpha/mode/position/direction_dirs


def _overrides(s: EvalSetup) -> list[tuple[str, str, Parameter]]:
    o = [("libero", "suite", Parameter("suite", value=s.suite)),
         ("libero", "task_id", Parameter("task_id", value=s.task_id)),
         ("libero", "mode", Parameter("mode", value="lockstep")),
         ("libero", "image_size", Parameter("image_size", value=s.image_size)),
         ("libero", "max_steps", Parameter("max_steps", value=s.max_steps)),
         ("vla_policy", "cameras.width_px", Parameter("cameras.width_px", value=s.image_size)),
         ("vla_policy", "cameras.height_px", Parameter("cameras.height_px", value=s.image_size)),
         ("vla_policy", "model.path", Parameter("model.path", value=str(s.model_path))),
         ("vla_policy", "model.family", Parameter("model.family", value=s.family)),
         ("vla_policy", "model.options", Parameter("model.options", value=yaml.safe_dump(s.model_options or {}).strip())),
         ("vla_policy", "chunk.execute_steps", Parameter("chunk.execute_steps", value=s.execute_steps))]
    st = s.steering
    if st.get("concepts"):
        o += [("vla_policy", "steering.direction_dirs", Parameter("steering.direction_dirs", value=list(st["direction_dirs"]))),
              ("vla_policy", "steering.concepts", Parameter("steering.concepts", value=list(st["concepts"]))),
              ("vla_policy", "steering.alpha", Parameter("steering.alpha", value=float(st.get("alpha", 0.0)))),
              ("vla_policy", "steering.mode", Parameter("steering.mode", value=st.get("mode", ""))),
              ("vla_policy", "steering.position", Parameter("steering.position", value=st.get("position", ""))),
              ("vla_policy", "steering.enabled", Parameter("steering.enabled", value=True))]
    return o


def run_episodes(setup: EvalSetup, episodes: Sequence[EpisodeRequest], policy=None, condition: str = "",
                 progress: bool = True) -> list[EpisodeOutcome]:
    """Evaluate `episodes` in one composed graph; returns one outcome per episode."""
    from tqdm import tqdm
    from vla_steer_tools.expert.tasks import geometry_for

    geo = geometry_for(setup.suite, setup.task_id)
    if policy is None:
        policy = load_policy(setup.family, setup.model_path, **setup.model_options)
    context = Context()
    rclpy.init(context=context)
    outcomes: list[EpisodeOutcome] = []
    try:
        overrides = [("libero", "start_episode", Parameter("start_episode", value=False)), *_overrides(setup)]
        nodes = build_graph("libero_sim", context, overrides, extra={"vla_policy": {"policy": policy}})
        policy_node = next(n for n in nodes if n.get_name() == "vla_policy")
        watcher = rclpy.create_node("vla_eval", context=context)
        trace = Trace()
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        watcher.create_subscription(PoseStamped, "ee_pose", trace.on_pose, reliable)
        watcher.create_subscription(JointState, "gripper_state", trace.on_gripper, reliable)
        watcher.create_subscription(EpisodeSummary, "libero/episode_summary", trace.on_summary,
                                    QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                                               durability=DurabilityPolicy.TRANSIENT_LOCAL))
        reset = watcher.create_client(ResetEpisode, "libero/reset_episode")
        with running([*nodes, watcher], context):
            if not reset.wait_for_service(timeout_sec=30.0):
                raise ConfigError("the LIBERO bridge's reset service did not appear within 30 s")
            bar = tqdm(episodes, desc=f"eval {condition or setup.suite}", unit="ep", disable=not progress)
            for ep in bar:
                outcomes.append(_one_episode(setup, ep, policy_node, reset, trace, geo, condition))
                bar.set_postfix(success=f"{sum(o.success for o in outcomes)}/{len(outcomes)}")
    finally:
        rclpy.try_shutdown(context=context)
    return outcomes


def _one_episode(setup: EvalSetup, ep: EpisodeRequest, policy_node, reset, trace: Trace, geo,
                 condition: str) -> EpisodeOutcome:
    if policy_node.lifecycle_state == "active":
        policy_node.trigger_deactivate()
    trace.clear()
    req = ResetEpisode.Request(suite=setup.suite, task_id=setup.task_id, init_state_id=ep.init_state,
                               placement_seed=ep.placement_seed, instruction=ep.instruction)
    fut = reset.call_async(req)
    deadline = time.monotonic() + RESET_TIMEOUT_S
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not fut.done() or not fut.result().success:
        raise ConfigError(f"reset to {ep.label} failed: {fut.result().message if fut.done() else 'timeout'}")
    instruction = fut.result().instruction
    policy_node.trigger_activate()
    limit = setup.max_steps * 2.0 + 120.0  # generous: lockstep runs as fast as the model
    if not trace.done.wait(timeout=limit):
        raise ConfigError(f"episode {ep.label} did not end within {limit:.0f} s")
    with trace.lock:
        pos, op, summary = np.asarray(trace.positions), np.asarray(trace.openings), trace.summary
    m = motion_metrics(pos, op, 20.0, geo.table_z_m, geo.min_hold_opening_m)
    return EpisodeOutcome(label=ep.label, instruction=instruction, success=bool(summary.success),
                          steps=int(summary.steps), condition=condition, **m)


def run_eval(args: argparse.Namespace) -> int:
    out = Path(args.out or f"runs/eval-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    steering = {}
    if args.concept:
        dirs = args.direction_dir or [str(config_dir() / "directions" / "smollm2")]
        steering = {"concepts": args.concept, "alpha": args.alpha, "mode": args.mode, "position": args.position,
                    "direction_dirs": dirs}
    setup = EvalSetup(family=args.model_family, model_path=args.model_path,
                      model_options=yaml.safe_load(args.model_options) or {} if args.model_options else {},
                      suite=args.suite, task_id=args.task, image_size=args.image_size,
                      execute_steps=args.execute_steps, max_steps=args.max_steps, steering=steering)
    episodes = [EpisodeRequest(e.label, e.init_state, e.placement_seed, args.instruction or "")
                for e in parse_episodes(args.init_states, args.seed)]
    policy = load_policy(setup.family, setup.model_path, **setup.model_options)
    if policy.adapter.random_weights:
        print("NOTE: this model has RANDOM weights (a test fixture): success rates mean nothing")
    outcomes = run_episodes(setup, episodes, policy=policy)
    title = (f"{setup.family} {setup.model_path} on {setup.suite} task {setup.task_id}, {args.init_states}"
             + (f", steering {args.concept} alpha {args.alpha}" if args.concept else ""))
    text = format_summary(title, outcomes)
    print(text)
    (out / "summary.txt").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({"setup": setup.__dict__, "summary": summarize(outcomes),
                                                  "episodes": [o.as_dict() for o in outcomes]}, indent=2, default=str))
    plot_outcomes(outcomes, out / "eval.png", title)
    print(f"results: {out / 'results.json'}  figure: {out / 'eval.png'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="closed-loop success rate in LIBERO through the bridge + policy node",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-family", default="minivla")
    p.add_argument("--model-path", default=DEFAULT_MINIVLA, help="checkpoint dir or id (default: the shipped mini-VLA)")
    p.add_argument("--model-options", default=None, help="family load options as YAML, e.g. '{gripper: binary}'")
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--task", type=int, default=1)
    p.add_argument("--init-states", default="30-49", help="fixed init states (30-49) or seeded random placements (random:20)")
    p.add_argument("--seed", type=int, default=7, help="seed of the random placements")
    p.add_argument("--instruction", default="", help="instruction wording instead of the task's own")
    p.add_argument("--max-steps", type=int, default=400, help="step limit per episode")
    p.add_argument("--execute-steps", type=int, default=4, help="actions of each chunk executed before re-planning")
    p.add_argument("--image-size", type=int, default=64, help="camera resolution (the mini-VLA was trained at 64)")
    p.add_argument("--concept", action="append", help="steer with this direction (repeatable)")
    p.add_argument("--alpha", type=float, default=0.0, help="steering alpha (0 = the direction file's own)")
    p.add_argument("--mode", default="", help="override | add | scale ('' = the file's)")
    p.add_argument("--position", default="", choices=("", "all", "prefill", "decode"),
                   help="all | prefill | decode (default: the model family's own, pi0fast prefill, others all)")
    p.add_argument("--direction-dir", action="append", help="direction folder (default config/directions/smollm2)")
    p.add_argument("--out", default="", help="output dir (default runs/eval-<time>)")
    p.set_defaults(func=run_eval)
