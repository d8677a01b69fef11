"""`vla-steer study`: does concept steering move the arm the way the concept says, beyond chance?

For one policy and task it runs, on the same unseen placements, closed loop through the bridge and
the node (evaluate.py):
  * the unsteered baseline;
  * each concept direction (e.g. fast, slow from config/directions/smollm2) at the given alpha;
  * matched random controls of each concept: the same layers, count, signs and alpha, other
    neurons, several seeds (interp/concepts.py `random_control`);
  * the instruction adverbs as positive control ("... quickly" / "... slowly"), unsteered.
It reports the early-phase end-effector speed (mean over the first 40 steps), carry height and
success per condition, Welch t-tests against the baseline, and a verdict per concept that says
plainly whether it beat every random control in the concept's direction. Nothing is tuned to the
outcome: conditions, seeds and placements are fixed before the first episode runs.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import yaml
from vla_steer_tools.analysis.episodes import EpisodeOutcome, summarize
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.interp.concepts import random_control
from vla_steer_tools.models.registry import load_policy
from vla_steer_tools.steering.directions import DirectionLibrary, save_direction

from .compose import config_dir
from .evaluate import DEFAULT_MINIVLA, EpisodeRequest, EvalSetup, parse_episodes, run_episodes

#: concept -> sign of the effect it should have on early-phase speed (+1 faster, -1 slower).
SPEED_CONCEPTS = {"fast": +1, "slow": -1}
ADVERBS = {"fast": "quickly", "slow": "slowly"}


def _conditions(args, library: DirectionLibrary, widths, ctrl_dir: Path) -> list[dict]:
    conds = [{"name": "baseline", "concepts": [], "instruction_suffix": ""}]
    for concept in args.concepts:
        if concept not in library.names():
            raise ConfigError(f"no direction {concept!r} in {args.direction_dir}")
        d = library.get(concept)
        conds.append({"name": f"{concept} a={args.alpha:g}", "concepts": [concept], "kind": "concept", "concept": concept})
        for seed in range(args.controls):
            ctrl = random_control(d, widths, seed=seed, name=f"{concept}_random{seed}")
            save_direction(ctrl, ctrl_dir / f"{ctrl.name}.yaml")
            conds.append({"name": f"{concept} random{seed}", "concepts": [ctrl.name], "kind": "control", "concept": concept})
        if concept in ADVERBS:
            conds.append({"name": f"adverb '{ADVERBS[concept]}'", "concepts": [], "kind": "adverb", "concept": concept,
                          "instruction_suffix": " " + ADVERBS[concept]})
    return conds


def _welch(a: list[float], b: list[float]) -> float:
    from scipy.stats import ttest_ind

    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def run_study(args: argparse.Namespace) -> int:
    out = Path(args.out or f"runs/study-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    ctrl_dir = out / "directions"
    ctrl_dir.mkdir(parents=True, exist_ok=True)
    lib_dirs = args.direction_dir or [str(config_dir() / "directions" / "smollm2")]
    policy = load_policy(args.model_family, args.model_path)
    widths = {("backbone", i): int(m.in_features) for i, m in enumerate(policy.adapter.layers("backbone"))}
    library = DirectionLibrary(lib_dirs)
    conds = _conditions(args, library, widths, ctrl_dir)
    episodes = parse_episodes(args.init_states, args.seed)
    from vla_steer_tools.expert.tasks import task_text

    base_text = task_text(args.suite, args.task)
    results = _load_results(out)  # resumable: conditions already in results.json are kept
    if results:
        print(f"resuming: {len(results)} of {len(conds)} conditions already in {out / 'results.json'}")
    if args.report_only:
        conds = [c for c in conds if c["name"] in results]
        if "baseline" not in results:
            raise ConfigError(f"{out}: no baseline results yet; nothing to report")
        print(write_report(out, conds, results, args, partial=len(conds)))
        return 0
    print(f"{len(conds)} conditions x {len(episodes)} placements, {args.max_steps} steps each -> {out}")
    for cond in conds:
        if cond["name"] in results:
            continue
        steering = {}
        if cond["concepts"]:
            steering = {"concepts": cond["concepts"], "alpha": args.alpha, "mode": args.mode, "position": args.position,
                        "direction_dirs": [*lib_dirs, str(ctrl_dir)]}
        setup = EvalSetup(family=args.model_family, model_path=args.model_path, model_options={}, suite=args.suite,
                          task_id=args.task, image_size=args.image_size, execute_steps=args.execute_steps,
                          max_steps=args.max_steps, steering=steering)
        eps = [replace(e, instruction=base_text + cond.get("instruction_suffix", "")) for e in episodes]
        results[cond["name"]] = run_episodes(setup, eps, policy=policy, condition=cond["name"])
        (out / "results.json").write_text(json.dumps({n: [o.as_dict() for o in r] for n, r in results.items()}, indent=1))
    report = write_report(out, conds, results, args)
    print(report)
    return 0


def _load_results(out: Path) -> dict[str, list[EpisodeOutcome]]:
    path = out / "results.json"
    if not path.is_file():
        return {}
    return {name: [EpisodeOutcome(**o) for o in rows] for name, rows in json.loads(path.read_text()).items()}


def write_report(out: Path, conds: list[dict], results: dict[str, list[EpisodeOutcome]], args,
                 partial: int | None = None) -> str:
    base = [o.early_speed_m_s for o in results["baseline"]]
    lines = [f"# Steering study: {args.model_family} {args.model_path} on {args.suite} task {args.task}", "",
             f"Placements: `{args.init_states}` (seed {args.seed}), {args.max_steps} steps each, alpha {args.alpha:g}, "
             f"mode {args.mode or 'per file'}, position {args.position}; {args.controls} matched random controls per concept "
             "(same layers, count, signs, alpha). Metric: early-phase end-effector speed = mean speed over the first "
             "40 steps (the approach). Closed loop through the LIBERO bridge and the policy node, lockstep. "
             "Success counts only episodes long enough to finish the task.", "",
             *([f"**Partial run**: only the {partial} conditions below finished; the others were not run.", ""]
               if partial is not None else []),
             "| condition | n | early speed m/s (mean ± sd) | vs baseline | Welch p | success |", "|---|---|---|---|---|---|"]
    b_mean = float(np.nanmean(base))
    for cond in conds:
        r = results[cond["name"]]
        v = np.array([o.early_speed_m_s for o in r])
        s = summarize(r)
        p = _welch(list(v), base) if cond["name"] != "baseline" else float("nan")
        lines.append(f"| {cond['name']} | {len(r)} | {np.nanmean(v):.4f} ± {np.nanstd(v):.4f} | "
                     f"{100 * (np.nanmean(v) - b_mean) / b_mean:+.1f}% | {p:.3g} | {s['successes']}/{s['episodes']} |")
    lines += ["", "## Verdict", ""]
    for concept in args.concepts:
        sign = SPEED_CONCEPTS.get(concept)
        if sign is None:
            continue
        if f"{concept} a={args.alpha:g}" not in results:
            lines.append(f"- **{concept}**: not run.")
            continue
        c = float(np.nanmean([o.early_speed_m_s for o in results[f"{concept} a={args.alpha:g}"]]))
        ctrls = [float(np.nanmean([o.early_speed_m_s for o in results[n]])) for n in results
                 if n.startswith(f"{concept} random")]
        p = _welch([o.early_speed_m_s for o in results[f"{concept} a={args.alpha:g}"]], base)
        beats = bool(ctrls) and all(sign * (c - x) > 0 for x in ctrls) and sign * (c - b_mean) > 0
        if len(ctrls) < args.controls:
            lines.append(f"- **{concept}**: INCOMPLETE, no verdict: only {len(ctrls)} of {args.controls} random controls ran "
                         f"(concept {c:.4f} m/s, baseline {b_mean:.4f}, controls {', '.join(f'{x:.4f}' for x in ctrls)}).")
            continue
        verdict = ("YES: moves the arm in the concept's direction, beyond every random control" if beats and p < 0.05
                   else "NO: not distinguishable from the matched random controls in the concept's direction")
        lines.append(f"- **{concept}** ({'faster' if sign > 0 else 'slower'} expected): concept {c:.4f} m/s, baseline "
                     f"{b_mean:.4f}, random controls {', '.join(f'{x:.4f}' for x in ctrls)}; p = {p:.3g} vs baseline. "
                     f"{verdict}.")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    _plot(out / "study.png", conds, results)
    return text


def _plot(path: Path, conds, results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(conds)), 3.8))
    colors = {"concept": "tab:blue", "control": "tab:gray", "adverb": "tab:green"}
    data = [[o.early_speed_m_s for o in results[c["name"]]] for c in conds]
    parts = ax.boxplot(data, patch_artist=True, tick_labels=[c["name"] for c in conds])
    for box, c in zip(parts["boxes"], conds):
        box.set_facecolor(colors.get(c.get("kind", ""), "white"))
    ax.axhline(float(np.nanmean(data[0])), color="k", lw=0.8, ls="--", label="baseline mean")
    ax.set_ylabel("early-phase ee speed (m/s)")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.set_title("concept steering (blue) vs matched random controls (grey) and adverbs (green)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="steering study: concepts vs matched random controls vs adverbs, closed loop",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-family", default="minivla")
    p.add_argument("--model-path", default=DEFAULT_MINIVLA)
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--task", type=int, default=1)
    p.add_argument("--concepts", type=lambda s: s.split(","), default=["fast", "slow"])
    p.add_argument("--alpha", type=float, default=10.0)
    p.add_argument("--mode", default="")
    p.add_argument("--position", default="all")
    p.add_argument("--controls", type=int, default=5, help="random-neuron control seeds per concept")
    p.add_argument("--init-states", default="random:10", help="placements (unseen in training)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--max-steps", type=int, default=60, help="steps per episode (the early phase is 40)")
    p.add_argument("--execute-steps", type=int, default=4)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--direction-dir", action="append")
    p.add_argument("--report-only", action="store_true", help="write report.md from the conditions already run")
    p.add_argument("--out", default="")
    p.set_defaults(func=run_study)
