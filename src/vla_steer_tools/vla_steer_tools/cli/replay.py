"""`vla-steer replay BAG`: open-loop replay of a recorded run under steering variants."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from .policy_args import add_policy_args, direction_dirs, load_policy_from_args, parse_list


def _cameras(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or ():
        key, sep, topic = item.partition("=")
        if not sep or not key or not topic:
            raise ConfigError(f"--camera {item!r}: expected KEY=TOPIC, e.g. wrist=/camera/wrist/image_raw")
        out[key] = topic
    return out


def run(args: argparse.Namespace) -> int:
    from ..replay.pipeline import ReplaySetup, replay
    from ..replay.outputs import format_summary
    from ..replay.variants import plan_variants
    from ..steering.directions import DirectionLibrary

    setup = ReplaySetup(bag=args.bag, out=args.out or args.bag.parent / "replay", cameras=_cameras(args.camera),
                        state_source=args.state_source, instruction=args.instruction, position=args.position,
                        max_observations=args.max_observations)
    library = DirectionLibrary(direction_dirs(args))
    variants = plan_variants(library, parse_list(args.directions), parse_list(args.alphas, float), args.mode)
    policy = load_policy_from_args(args)
    if policy.adapter.random_weights:
        print(f"NOTE: {policy.adapter.model_id} has RANDOM weights (a test fixture): results carry no meaning.")
    _, meta = replay(policy, setup, variants, progress=not args.no_progress)
    print(format_summary(meta))
    print(f"wrote {setup.out}/predictions.parquet, replay.json, replay.md, actions.png")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay", help="open-loop replay of a bag: the same observations through the model under steering variants",
        description="Reads every observation of a recorded rosbag2 bag (camera frames, instruction, state), runs the "
        "model on each one once per variant (unsteered, then every direction x alpha; alpha 0 = unsteered) and writes "
        "OUT/predictions.parquet (one row per variant, observation and chunk step, with the observation's stamp), "
        "replay.json / replay.md (per-variant speed, per-axis command, gripper; paired vs unsteered with bootstrap "
        "CIs) and actions.png (against the recorded commands). No ROS needed.")
    p.add_argument("bag", type=Path, help="rosbag2 directory (e.g. runs/demo-*/bag)")
    p.add_argument("--directions", default="fast,slow", help="comma-separated direction names (default fast,slow)")
    p.add_argument("--alphas", default="0,4,8,16", help="comma-separated alphas (default 0,4,8,16; 0 = unsteered)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default BAG/../replay)")
    add_policy_args(p)
    p.add_argument("--camera", action="append", metavar="KEY=TOPIC",
                   help="image topic for a camera key (default: every /camera/<key>/image_raw in the bag)")
    p.add_argument("--state-source", default="auto", choices=("auto", "ee_pose_gripper", "joint_states", "none"),
                   help="how the state vector is built (the node's state.source; auto: ee_pose_gripper if recorded)")
    p.add_argument("--instruction", default=None, help="replace the recorded instruction")
    p.add_argument("--max-observations", type=int, default=0, help="only the first N observations (0 = all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
