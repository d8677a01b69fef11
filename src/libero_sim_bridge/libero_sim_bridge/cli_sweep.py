"""`vla-steer sweep`: alpha x set size x concept, matched random controls and a prompt baseline,
closed loop in LIBERO, as Ray tasks; a results table that grows as episodes finish and a report."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from vla_steer_tools.cli.policy_args import DEFAULT_MODEL as DEFAULT_MINIVLA
from vla_steer_tools.errors import ConfigError


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"expected comma-separated numbers, got {text!r}") from exc


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"expected comma-separated integers, got {text!r}") from exc


def _run(args: argparse.Namespace) -> int:
    import yaml
    from vla_steer_tools.sweeps.plan import parse_episodes

    from .sweep_episode import SweepSetup
    from .sweep_ray import run_sweep

    tasks = _ints(args.tasks)
    if len(tasks) != 1:
        raise ConfigError(f"--tasks {args.tasks!r}: one task per sweep (run one sweep per task, each with its --out)")
    episodes = parse_episodes(args.init_states, args.seed)
    if args.episodes:
        if args.episodes > len(episodes):
            raise ConfigError(f"--episodes {args.episodes} but --init-states gives only {len(episodes)} starts")
        episodes = episodes[:args.episodes]
    options = yaml.safe_load(args.model_options) if args.model_options else {}
    if options is not None and not isinstance(options, dict):
        raise ConfigError(f"--model-options must be a YAML mapping, got {args.model_options!r}")
    setup = SweepSetup(family=args.model_family, model_path=args.model_path, suite=args.suite, task_id=tasks[0],
                       model_options=options or {}, image_size=args.image_size, execute_steps=args.execute_steps,
                       max_steps=args.max_steps, position=args.position)
    cells = _plan(args, setup)
    out = Path(args.out or f"runs/sweep-{datetime.now():%Y%m%d-%H%M%S}")
    print(f"sweep: {len(cells)} cells x {len(episodes)} episodes = {len(cells) * len(episodes)} episodes of at most "
          f"{args.max_steps} steps, {args.workers} worker(s){' on ' + args.address if args.address else ''} -> {out}")
    table = run_sweep(setup, cells, episodes, out, workers=args.workers, address=args.address or None)
    print(_cell_table(table))
    if not table.finished():
        print("not finished: re-run the same command to continue")
        return 1
    from vla_steer_tools.analysis.compare_runs import analyze
    from vla_steer_tools.atomic import atomic_write_text
    from vla_steer_tools.sweeps.verdicts import sweep_verdicts, verdict_markdown

    report = out / "report"
    analyze([out], report)
    verdicts = verdict_markdown(sweep_verdicts(table), len(episodes))
    atomic_write_text(out / "verdicts.md", verdicts)
    print(verdicts)
    print(f"wrote {out}/cells.csv, results.jsonl, results.json, verdicts.md and {report}/report.md with its PNGs")
    return 0


def _plan(args: argparse.Namespace, setup) -> list:
    from vla_steer_tools.models.registry import load_policy
    from vla_steer_tools.steering.directions import DirectionLibrary
    from vla_steer_tools.sweeps.plan import plan_cells

    from vla_policy.compose import config_dir

    dirs = args.direction_dir or [str(config_dir() / "directions" / "smollm2")]
    library = DirectionLibrary(dirs)
    concepts, alphas, sizes = [c for c in args.concepts.split(",") if c], _floats(args.alphas), _ints(args.sizes)
    if args.workers < 0:
        raise ConfigError(f"--workers {args.workers} must be >= 0 (0: in this process, without Ray)")
    plan_cells(library, {}, concepts, alphas, [s for s in sizes], 0, False)  # names, alphas, sizes: before the model loads
    # the layer widths the random controls draw from: the model's own
    policy = load_policy(setup.family, setup.model_path, **setup.model_options)
    widths = {("backbone", i): int(m.in_features) for i, m in enumerate(policy.adapter.layers("backbone"))}
    del policy
    return plan_cells(library, widths, concepts, alphas, sizes, args.controls, args.prompt_baseline, args.mode or None)


def _cell_table(table) -> str:
    lines = ["| cell | episodes | success | early speed m/s | carry height m |", "|---|---|---|---|---|"]
    for c in table.plan["cells"]:
        s = table.cell_summary(c["name"]) if any(k[0] == c["name"] for k in table.rows) else None
        if s is None:
            lines.append(f"| {c['name']} | 0 | | | |")
            continue
        lines.append(f"| {c['name']} | {s['episodes']} | {s['success_rate']:.0%} ({s['success_ci_low']:.0%}-"
                     f"{s['success_ci_high']:.0%}) | {s['early_speed_m_s']} | {s['carry_height_m']} |")
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="closed-loop steering sweep in LIBERO on Ray: concepts x alphas x set sizes vs random controls",
        description="Runs every cell (the unsteered baseline; each concept's first N neurons at each alpha; "
        "--controls matched random sets of the same layers, count, signs and alpha; with --prompt-baseline the "
        "concept's word added to the instruction) on the same episode starts, one episode per Ray task on "
        "workers that load the model once. Rows are appended to OUT/results.jsonl as episodes finish and a cell's "
        "summary (success rate with its 95% Wilson CI next to every motion metric) to OUT/cells.csv when its last "
        "episode is in. Re-run the same command to resume: finished episodes are never repeated; another plan in "
        "the same OUT is refused. At the end OUT/report/ holds `vla-steer analyze`'s report and PNGs.",
        epilog="example: vla-steer sweep --concepts fast,slow --alphas 2,4,8,16 --sizes 5,10 --controls 5 "
        "--prompt-baseline --episodes 10 --out runs/sweep1 [--address auto]")
    p.add_argument("--suite", default="libero_object", help="LIBERO suite (default: the mini-VLA's)")
    p.add_argument("--tasks", default="1", help="the task id in --suite (one per sweep)")
    p.add_argument("--concepts", default="fast,slow", help="direction names (files in --direction-dir)")
    p.add_argument("--alphas", default="10", help="comma-separated nonzero alphas")
    p.add_argument("--sizes", default="", help="set sizes: each concept's first N neurons (default: the file's own)")
    p.add_argument("--controls", type=int, default=5, help="matched random-neuron controls per concept and size")
    p.add_argument("--prompt-baseline", action="store_true", help="add cells with the concept's word in the instruction")
    p.add_argument("--episodes", type=int, default=0, help="use the first N starts of --init-states (0: all)")
    p.add_argument("--init-states", default="30-49", help="fixed init states (30-49) and/or seeded placements (random:10)")
    p.add_argument("--seed", type=int, default=7, help="seed of the random placements")
    p.add_argument("--max-steps", type=int, default=280, help="step limit per episode")
    p.add_argument("--execute-steps", type=int, default=4, help="rows of each chunk executed before re-planning")
    p.add_argument("--image-size", type=int, default=64, help="camera resolution (the mini-VLA was trained at 64)")
    p.add_argument("--model-family", default="minivla")
    p.add_argument("--model-path", default=DEFAULT_MINIVLA, help="checkpoint dir or id (default: the shipped mini-VLA)")
    p.add_argument("--model-options", default="", help="family load options as YAML")
    p.add_argument("--direction-dir", action="append", help="direction folder (default config/directions/smollm2)")
    p.add_argument("--mode", default="", help="override | add | scale ('' = each file's)")
    p.add_argument("--position", default="", choices=("", "all", "prefill", "decode"), help="steered positions")
    p.add_argument("--workers", type=int, default=2, help="Ray workers (0: run in this process without Ray)")
    p.add_argument("--address", default="", help="join a Ray cluster (e.g. auto, or ray://host:10001); "
                   "default: start a local instance with --workers CPUs")
    p.add_argument("--out", default="", help="output dir (default runs/sweep-<time>)")
    p.set_defaults(func=_run)
