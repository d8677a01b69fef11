"""`vla-steer validate CONCEPT`: may this direction drive the arm?

Dose-response over alphas against matched random controls (the steering study's fixed plan,
steering_study.plan_conditions: baseline, the concept and `--controls` random neuron sets of the same
layers, count and signs at every alpha, the concept's adverb), either
  * closed loop in LIBERO through the bridge and the node (steering_study.run_study; about 1 min per
    episode on 2 CPU cores, so the defaults are small: 1 alpha, 3 controls, 5 placements), or
  * open loop on a recorded bag (`--bag`): every observation through the model under each condition
    (the core's replay), pairs = observations, no success rate.
The verdict (vla_steer_tools.steering.validation) goes into OUT/validation.md and, unless --no-write,
into the direction file's provenance, which `steering.require_validated` reads.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from vla_steer_tools.analysis.compare_runs import analyze
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.models.registry import load_policy
from vla_steer_tools.replay.action_metrics import translation_speed
from vla_steer_tools.replay.pipeline import ReplaySetup, default_direction_dir, replay
from vla_steer_tools.replay.variants import UNSTEERED, Variant, concept_variant
from vla_steer_tools.steering.directions import DirectionLibrary, load_direction, save_direction
from vla_steer_tools.steering.validation import EXPECTED_EFFECTS, alpha_verdict, mark_validation, summary_line

from .evaluate import DEFAULT_MINIVLA
from .steering_study import _write_controls, concept_name, control_name, plan_conditions, run_study


def _variants(conds: list[dict], library: DirectionLibrary, mode: str | None) -> list[Variant]:
    out = []
    for c in conds:
        kind = c.get("kind", "baseline")
        if kind == "baseline":
            out.append(Variant(UNSTEERED))
        elif kind == "adverb":
            out.append(Variant(c["name"], "adverb", c["concept"], instruction_suffix=c["instruction_suffix"]))
        else:
            out.append(concept_variant(c["name"], kind, c["concept"], library.get(c["concepts"][0]), c["alpha"], mode,
                                       c.get("seed", -1)))
    return out


def open_loop(args, conds, lib_dirs, out: Path, policy) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """condition -> per-observation metric (pairs = observations); success not measured."""
    library = DirectionLibrary([*lib_dirs, out / "directions"])
    setup = ReplaySetup(bag=Path(args.bag), out=out / "replay", position=args.position,
                        max_observations=args.max_observations)
    run, _ = replay(policy, setup, _variants(conds, library, args.mode or None), progress=not args.no_progress)
    metric, _ = EXPECTED_EFFECTS[args.concept]
    values = {}
    for c in conds:
        first = run.predictions[UNSTEERED if c["name"] == "baseline" else c["name"]][:, 0, :].astype(np.float64)
        values[c["name"]] = translation_speed(first) if metric == "speed" else first[:, 2]
    return values, {}


def closed_loop(args, out: Path) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """condition -> per-placement metric via the steering study (resumable: re-run continues)."""
    ns = argparse.Namespace(out=str(out / "closed-loop"), direction_dir=[str(d) for d in args.direction_dir or []] or None,
                            model_family=args.model_family, model_path=args.model_path, alphas=args.alphas,
                            controls=args.controls, concepts=[args.concept], init_states=args.init_states, seed=args.seed,
                            suite=args.suite, task=args.task, report_only=False, max_steps=args.max_steps, mode=args.mode,
                            position=args.position, image_size=64, execute_steps=4)
    run_study(ns)
    rows = json.loads((out / "closed-loop" / "results.json").read_text())
    metric, _ = EXPECTED_EFFECTS[args.concept]
    key = "early_speed_m_s" if metric == "speed" else "max_height_m"
    values = {n: np.array([r[key] for r in sorted(rs, key=lambda r: r["label"])], float) for n, rs in rows.items()}
    success = {n: float(np.mean([r["success"] for r in rs])) for n, rs in rows.items()}
    return values, success


def verdicts(args, values, success) -> list:
    _, sign = EXPECTED_EFFECTS[args.concept]
    out = []
    for alpha in args.alphas:
        name = concept_name(args.concept, alpha)
        ctrls = [values[control_name(args.concept, k, alpha)] for k in range(args.controls)]
        sx = {"baseline": success["baseline"], "concept": success[name]} if success else None
        out.append(alpha_verdict(alpha, sign, values["baseline"], values[name], ctrls, sx, args.max_success_drop))
    return out


def report(args, how: str, vs: list, stamp: str) -> str:
    lines = [f"# Validation of `{args.concept}` ({args.model_family} {args.model_path})", "", f"Mode: {how}. Metric: "
             f"{EXPECTED_EFFECTS[args.concept][0]} ({'higher' if EXPECTED_EFFECTS[args.concept][1] > 0 else 'lower'} "
             f"expected). {args.controls} matched random controls per alpha. Pass = intended direction AND 95% "
             "bootstrap CI excludes 0 AND beyond the controls' 95th percentile AND success kept "
             f"(at most {100 * args.max_success_drop:.0f} points below baseline), at every alpha tested.", "",
             "| alpha | effect | 95% CI | controls' effects | controls' 95th pct (signed) | success base / concept | verdict |",
             "|---|---|---|---|---|---|---|"]
    for v in vs:
        succ = "n/a (open loop)" if v.success_kept is None else f"{v.success_baseline:.0%} / {v.success_concept:.0%}"
        why = [w for w, ok in (("wrong direction", v.intended), ("CI includes 0", v.ci_excludes_zero),
                               ("within controls", v.beyond_controls), ("success lost", v.success_kept is not False)) if not ok]
        lines.append(f"| {v.alpha:g} | {100 * v.relative:+.1f}% ({v.effect:+.4g}) | {v.ci95[0]:+.4g} .. {v.ci95[1]:+.4g} | "
                     f"{', '.join(f'{x:+.4g}' for x in v.control_effects)} | {v.control_p95:+.4g} | {succ} | "
                     f"{'PASS' if v.passed else 'FAIL: ' + ', '.join(why)} |")
    if args.controls < 5:
        lines += ["", f"Note: with {args.controls} controls the 95th percentile is about their maximum; use >= 5 for a "
                  "verdict that gates a robot."]
    lines += ["", f"**Verdict**: {stamp}", ""]
    return "\n".join(lines)


def run_validate(args: argparse.Namespace) -> int:
    if args.concept not in EXPECTED_EFFECTS:
        raise ConfigError(f"no expected effect known for {args.concept!r}; validate knows {', '.join(EXPECTED_EFFECTS)}")
    if args.controls < 1:
        raise ConfigError("--controls must be >= 1: a verdict needs matched random controls")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lib_dirs = [Path(d) for d in (args.direction_dir or [default_direction_dir(args.model_family)])]
    library = DirectionLibrary(lib_dirs)
    conds = plan_conditions([args.concept], args.alphas, args.controls)
    if args.bag:
        policy = load_policy(args.model_family, args.model_path)
        widths = {("backbone", i): int(m.in_features) for i, m in enumerate(policy.adapter.layers("backbone"))}
        _write_controls([args.concept], args.controls, library, widths, out / "directions")
        values, success = open_loop(args, conds, lib_dirs, out, policy)
        how, analysed = f"open loop on bag {args.bag}", out / "replay"
    else:
        values, success = closed_loop(args, out)
        how = (f"closed loop, LIBERO {args.suite} task {args.task}, placements {args.init_states} (seed {args.seed}), "
               f"{args.max_steps} steps")
        analysed = out / "closed-loop"
    vs = verdicts(args, values, success)
    stamp = summary_line(args.concept, vs, how.split(",")[0])
    text = report(args, how, vs, stamp)
    (out / "validation.md").write_text(text)
    (out / "validation.json").write_text(json.dumps({"concept": args.concept, "how": how, "stamp": stamp,
                                                     "alphas": [v.as_dict() for v in vs]}, indent=1, default=float))
    analyze([analysed], out / "analysis")
    print(text)
    if not args.no_write:
        path = library.path(args.concept)
        save_direction(mark_validation(load_direction(path), stamp), path)
        print(f"wrote the verdict into {path} (provenance)")
    print(f"wrote {out}/validation.md, validation.json, analysis/ (dose_response.png, report.md)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="may this direction drive the arm? dose-response vs matched random controls",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("concept", help="direction name (fast, slow, up, down)")
    p.add_argument("--model-family", default="minivla")
    p.add_argument("--model-path", default=DEFAULT_MINIVLA)
    p.add_argument("--direction-dir", action="append", help="direction folder (default for minivla: config/directions/smollm2)")
    p.add_argument("--alphas", type=lambda s: [float(x) for x in s.split(",")], default=[10.0],
                   help="comma-separated alphas (default 10; each with its own matched controls)")
    p.add_argument("--controls", type=int, default=3, help="matched random controls per alpha (default 3)")
    p.add_argument("--mode", default="")
    p.add_argument("--position", default="")
    p.add_argument("--max-success-drop", type=float, default=0.1, help="success kept = at most this much below baseline")
    p.add_argument("--bag", default=None, help="open loop on this recorded bag instead of closed loop in LIBERO")
    p.add_argument("--max-observations", type=int, default=0, help="open loop: only the first N observations")
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--task", type=int, default=1)
    p.add_argument("--init-states", default="random:5", help="closed loop: placements (default random:5)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--max-steps", type=int, default=160, help="closed loop: steps per episode (the mini-VLA succeeds ~143)")
    p.add_argument("--no-write", action="store_true", help="do not write the verdict into the direction file")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True)
    p.set_defaults(func=run_validate)
