"""`vla-steer data generate|info|show|relabel`: scripted LIBERO demonstrations as a LeRobot v3 dataset.

Registered by this package as a `vla_steer.cli` plugin: generating needs the simulator; `info`,
`show` and `relabel` read the dataset files only (the core's `datasets/`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vla_steer_tools.errors import ConfigError


def parse_tasks(text: str, suite: str) -> list[tuple[str, int]]:
    """'0,1' (in --suite) or 'libero_object:1,libero_spatial:0' -> [(suite, task)]."""
    out = []
    for part in text.split(","):
        part = part.strip()
        s, _, t = part.rpartition(":")
        try:
            out.append((s or suite, int(t)))
        except ValueError as exc:
            raise ConfigError(f"bad task {part!r}: expected N or SUITE:N, e.g. libero_object:1") from exc
    return out


def parse_init_states(text: str) -> list[int | str]:
    """'0-29' -> fixed init states; 'random:20' -> 20 seeded random placements; combine with ','."""
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if part.startswith("random:"):
                lo, _, hi = part[7:].partition("-")
                start, stop = (0, int(lo)) if not hi else (int(lo), int(hi) + 1)
                out += [f"r{k}" for k in range(start, stop)]
            elif "-" in part:
                lo, hi = part.split("-", 1)
                out += list(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
        except ValueError as exc:
            raise ConfigError(f"bad init states {part!r}: expected e.g. 0-29, 7, random:20 or random:20-39") from exc
    if not out:
        raise ConfigError("no init states given")
    return out


def _generate(args: argparse.Namespace) -> int:
    from vla_steer_tools.datasets.instructions import load_wordings

    from .demos import GenerateOptions, generate, plan_episodes
    from .env import _benchmark

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: need at least 1 simulator process")
    wordings = load_wordings(args.instructions)
    tasks = parse_tasks(args.tasks, args.suite)
    texts = {(s, t): str(_benchmark(s).get_task(t).language) for s, t in tasks}
    speeds, heights = args.speeds.split(","), args.heights.split(",")
    for s in speeds:
        wordings.speed_value(s)
    for h in heights:
        wordings.height_value(h)
    specs = plan_episodes(tasks, parse_init_states(args.init_states), speeds, heights, args.noise,
                          args.noise_fraction, args.seed, wordings, texts, all_combos=args.all_combos)
    opts = GenerateOptions(cameras=tuple(args.cameras.split(",")), image_size=args.size, max_steps=args.max_steps,
                           grasp_jitter_m=args.grasp_jitter)
    print(f"{len(specs)} episodes planned over {len(tasks)} task(s) -> {args.out}")
    info = generate(specs, args.out, opts, workers=args.workers, wordings_path=args.instructions)
    print(f"dataset: {info['total_episodes']} episodes, {info['total_frames']} frames, {info['total_tasks']} wordings")
    print(f"next: vla-steer data info {args.out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from vla_steer_tools.datasets.summary import print_summary

    return print_summary(args.dataset, png=args.png)


def _show(args: argparse.Namespace) -> int:
    from vla_steer_tools.datasets.viewer import show_episode

    out = show_episode(args.dataset, args.episode, args.out, every=args.every)
    print(f"wrote {out}")
    return 0


def _relabel(args: argparse.Namespace) -> int:
    from vla_steer_tools.datasets.relabel import relabel

    n = relabel(args.rollouts, args.out, instructions=args.instructions)
    print(f"relabelled {n} episodes -> {args.out} (merge by passing both datasets to `vla-steer train`)")
    return 0


def _rollout(args: argparse.Namespace) -> int:
    import yaml
    from vla_steer_tools.datasets.instructions import load_wordings
    from vla_steer_tools.expert.tasks import task_text
    from vla_steer_tools.models.registry import load_policy

    from .rollouts import record_rollouts, rollout_specs

    wordings = load_wordings(args.instructions)
    policy = load_policy(args.model_family, args.model_path, **(yaml.safe_load(args.model_options or "") or {}))
    specs = rollout_specs(args.suite, args.task, parse_init_states(args.init_states), args.speeds.split(","),
                          args.heights.split(","), args.seed, wordings, task_text(args.suite, args.task))
    info = record_rollouts(policy, specs, args.out, args.size, args.max_steps, args.execute_steps)
    print(f"{info['total_episodes']} rollouts in {args.out}; next: vla-steer data relabel {args.out} --out DIR")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="scripted LIBERO demonstrations (LeRobot v3 datasets)",
                       description="Generate, inspect, view and relabel demonstration datasets.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    g = dsub.add_parser("generate", help="record scripted-expert episodes in LIBERO",
                        description="Run the privileged-state expert (expert/waypoint_expert.py) and record both "
                        "cameras, the 8-D state, the expert's clean action and the executed (noisy) one. Resumable: "
                        "re-run the same command to continue; deterministic per --seed.")
    g.add_argument("--suite", default="libero_spatial", help="suite of tasks given as plain numbers")
    g.add_argument("--tasks", default="0", help="task ids in --suite, or SUITE:N items (e.g. libero_object:1,libero_spatial:0)")
    g.add_argument("--init-states", default="0-29", help="fixed init states (0-29) and/or seeded random placements (random:20)")
    g.add_argument("--speeds", default="slow,normal,fast", help="speed settings (config/instructions.yaml)")
    g.add_argument("--heights", default="low,normal,high", help="carry-height settings")
    g.add_argument("--all-combos", action="store_true", help="every speed x height per init state (default: a Latin square)")
    g.add_argument("--cameras", default="agentview,wrist")
    g.add_argument("--size", type=int, default=64, help="image side, px (rendered as the bridge renders)")
    g.add_argument("--noise", type=float, default=0.15, help="DART noise std on executed actions (action units)")
    g.add_argument("--noise-fraction", type=float, default=0.5, help="fraction of episodes with noise")
    g.add_argument("--grasp-jitter", type=float, default=0.01, help="grasp point / close radius jitter, m")
    g.add_argument("--max-steps", type=int, default=600, help="step cap per episode (slow episodes need > 300)")
    g.add_argument("--workers", type=int, default=1, help="parallel simulator processes")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--instructions", default=None, help="wordings file (default config/instructions.yaml)")
    g.add_argument("--out", required=True, help="dataset directory")
    g.set_defaults(func=_generate)
    i = dsub.add_parser("info", help="episodes, success, speed / height per setting (+ PNG)")
    i.add_argument("dataset")
    i.add_argument("--png", default=None, help="summary plot path (default DATASET/summary.png)")
    i.set_defaults(func=_info)
    s = dsub.add_parser("show", help="an episode's frames as a PNG contact sheet or an animated GIF")
    s.add_argument("dataset")
    s.add_argument("--episode", type=int, required=True)
    s.add_argument("--out", required=True, help=".png (contact sheet) or .gif (animation)")
    s.add_argument("--every", type=int, default=10, help="every n-th frame")
    s.set_defaults(func=_show)
    o = dsub.add_parser("rollout", help="record a policy's rollouts with privileged state (for relabel)",
                        description="Runs a policy in LIBERO (no ROS; same chunking and rendering as eval) and records "
                        "every visited state, with the object poses the expert needs, as a LeRobot v3 dataset.")
    o.add_argument("--model-family", default="minivla")
    o.add_argument("--model-path", default="vla-steer/minivla-libero-object")
    o.add_argument("--model-options", default=None)
    o.add_argument("--suite", default="libero_object")
    o.add_argument("--task", type=int, default=1)
    o.add_argument("--init-states", default="random:10", help="as for generate (keep them apart from eval's)")
    o.add_argument("--speeds", default="normal")
    o.add_argument("--heights", default="normal")
    o.add_argument("--size", type=int, default=64)
    o.add_argument("--max-steps", type=int, default=400)
    o.add_argument("--execute-steps", type=int, default=4)
    o.add_argument("--seed", type=int, default=1)
    o.add_argument("--instructions", default=None)
    o.add_argument("--out", required=True)
    o.set_defaults(func=_rollout)
    r = dsub.add_parser("relabel", help="the expert's action for every state a policy visited (DAgger)",
                        description="Reads rollouts recorded with privileged state (vla-steer eval --record) and writes "
                        "a dataset whose `action` is the expert's action at each visited state.")
    r.add_argument("rollouts")
    r.add_argument("--out", required=True)
    r.add_argument("--instructions", default=None)
    r.set_defaults(func=_relabel)
