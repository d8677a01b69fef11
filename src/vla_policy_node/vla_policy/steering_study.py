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
from vla_steer_tools.steering.directions import ALPHA_LIMIT, DirectionLibrary, save_direction

from .compose import config_dir
from .evaluate import DEFAULT_MINIVLA, EpisodeRequest, EvalSetup, parse_episodes, run_episodes

#: concept -> sign of the effect it should have on early-phase speed (+1 faster, -1 slower).
SPEED_CONCEPTS = {"fast": +1, "slow": -1}
ADVERBS = {"fast": "quickly", "slow": "slowly"}


def concept_name(concept: str, alpha: float) -> str:
    return f"{concept} a={alpha:g}"


def control_name(concept: str, seed: int, alpha: float) -> str:
    return f"{concept} random{seed} a={alpha:g}"


def plan_conditions(concepts: list[str], alphas: list[float], controls: int) -> list[dict]:
    """The fixed list of conditions, decided before any episode runs: the baseline, then per concept
    and alpha the concept and its `controls` matched random sets (seed k -> the same neurons at
    every alpha, so the dose-response of a control is one set's), then the concept's adverb."""
    conds = [{"name": "baseline", "concepts": [], "instruction_suffix": ""}]
    for concept in concepts:
        for alpha in alphas:
            conds.append({"name": concept_name(concept, alpha), "concepts": [concept], "kind": "concept",
                          "concept": concept, "alpha": alpha})
            for seed in range(controls):
                conds.append({"name": control_name(concept, seed, alpha), "concepts": [f"{concept}_random{seed}"],
                              "kind": "control", "concept": concept, "alpha": alpha, "seed": seed})
        if concept in ADVERBS:
            conds.append({"name": f"adverb '{ADVERBS[concept]}'", "concepts": [], "kind": "adverb", "concept": concept,
                          "instruction_suffix": " " + ADVERBS[concept]})
    return conds


def _write_controls(concepts: list[str], controls: int, library: DirectionLibrary, widths, ctrl_dir: Path) -> None:
    for concept in concepts:
        if concept not in library.names():
            raise ConfigError(f"no direction {concept!r} in the direction folders; have: {', '.join(library.names())}")
        d = library.get(concept)
        for seed in range(controls):
            ctrl = random_control(d, widths, seed=seed, name=f"{concept}_random{seed}")
            save_direction(ctrl, ctrl_dir / f"{ctrl.name}.yaml")


def verdict(concept: str, alpha: float, results: dict[str, list[float]], controls: int) -> dict:
    """Does `concept` at `alpha` move early-phase speed the concept's way beyond every matched
    random control (and significantly vs the baseline)? results: condition -> per-episode speeds.
    Never a verdict on partial data: missing controls give status 'incomplete'."""
    sign = SPEED_CONCEPTS[concept]
    name = concept_name(concept, alpha)
    if name not in results or "baseline" not in results:
        return {"status": "not run"}
    base = results["baseline"]
    c = float(np.nanmean(results[name]))
    ctrls = [float(np.nanmean(results[control_name(concept, k, alpha)])) for k in range(controls)
             if control_name(concept, k, alpha) in results]
    out = {"concept": c, "baseline": float(np.nanmean(base)), "controls": ctrls, "p": _welch(results[name], base)}
    if len(ctrls) < controls:
        return {**out, "status": "incomplete"}
    beats = bool(ctrls) and all(sign * (c - x) > 0 for x in ctrls) and sign * (c - out["baseline"]) > 0
    return {**out, "status": "yes" if beats and out["p"] < 0.05 else "no"}


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
    bad = [a for a in args.alphas if not (np.isfinite(a) and 0 < a <= ALPHA_LIMIT)]
    if bad or args.controls < 0:
        raise ConfigError(f"alphas must be in (0, {ALPHA_LIMIT:g}] and --controls >= 0 (got alphas {bad}, "
                          f"controls {args.controls})")
    _write_controls(args.concepts, args.controls, library, widths, ctrl_dir)
    conds = plan_conditions(args.concepts, args.alphas, args.controls)
    episodes = parse_episodes(args.init_states, args.seed)
    from vla_steer_tools.expert.tasks import task_text

    base_text = task_text(args.suite, args.task)
    results = _load_results(out)  # resumable: conditions already in results.json are kept
    if results:
        print(f"resuming: {len(results)} of {len(conds)} conditions already in {out / 'results.json'}")
    if args.report_only:
        done = [c for c in conds if c["name"] in results]
        if "baseline" not in results:
            raise ConfigError(f"{out}: no baseline results yet; nothing to report")
        print(write_report(out, done, results, args, partial=len(done) if len(done) < len(conds) else None))
        return 0
    print(f"{len(conds)} conditions x {len(episodes)} placements, {args.max_steps} steps each -> {out}")
    for cond in conds:
        if cond["name"] in results:
            continue
        steering = {}
        if cond["concepts"]:
            steering = {"concepts": cond["concepts"], "alpha": cond["alpha"], "mode": args.mode, "position": args.position,
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
    speeds = {n: [o.early_speed_m_s for o in r] for n, r in results.items()}
    base = speeds["baseline"]
    lines = [f"# Steering study: {args.model_family} {args.model_path} on {args.suite} task {args.task}", "",
             f"Placements: `{args.init_states}` (seed {args.seed}), {args.max_steps} steps each, alphas "
             f"{', '.join(f'{a:g}' for a in args.alphas)}, mode {args.mode or 'per file'}, position {args.position or 'family default'}; "
             f"{args.controls} matched random controls per concept and alpha (same layers, count, signs, alpha; "
             "control k is the same neuron set at every alpha). Metric: early-phase end-effector speed = mean speed "
             "over the first 40 steps (the approach). Closed loop through the LIBERO bridge and the policy node, "
             "lockstep. Success counts only episodes long enough to finish the task.", "",
             *([f"**Partial run**: only the {partial} conditions below finished; the others were not run.", ""]
               if partial is not None else []),
             "| condition | n | early speed m/s (mean ± sd) | vs baseline | Welch p | success |", "|---|---|---|---|---|---|"]
    b_mean = float(np.nanmean(base))
    for cond in conds:
        r = results[cond["name"]]
        v = np.array(speeds[cond["name"]])
        s = summarize(r)
        p = _welch(list(v), base) if cond["name"] != "baseline" else float("nan")
        lines.append(f"| {cond['name']} | {len(r)} | {np.nanmean(v):.4f} ± {np.nanstd(v):.4f} | "
                     f"{100 * (np.nanmean(v) - b_mean) / b_mean:+.1f}% | {p:.3g} | {s['successes']}/{s['episodes']} |")
    lines += ["", "## Verdict", ""]
    for concept in [c for c in args.concepts if c in SPEED_CONCEPTS]:
        for alpha in args.alphas:
            lines.append(_verdict_line(concept, alpha, verdict(concept, alpha, speeds, args.controls), args.controls))
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    _plot(out / "study.png", conds, results)
    if len(args.alphas) > 1:
        _plot_dose(out / "dose_response.png", args, speeds)
    return text


def _verdict_line(concept: str, alpha: float, v: dict, controls: int) -> str:
    head = f"- **{concept} a={alpha:g}**"
    if v["status"] == "not run":
        return f"{head}: not run."
    nums = (f"concept {v['concept']:.4f} m/s, baseline {v['baseline']:.4f}, random controls "
            f"{', '.join(f'{x:.4f}' for x in v['controls'])}")
    if v["status"] == "incomplete":
        return f"{head}: INCOMPLETE, no verdict: only {len(v['controls'])} of {controls} random controls ran ({nums})."
    said = ("YES: moves the arm in the concept's direction, beyond every random control" if v["status"] == "yes"
            else "NO: not distinguishable from the matched random controls in the concept's direction")
    way = "faster" if SPEED_CONCEPTS[concept] > 0 else "slower"
    return f"{head} ({way} expected): {nums}; p = {v['p']:.3g} vs baseline. {said}."


_COLORS = {"concept": "tab:blue", "control": "tab:gray", "adverb": "tab:green"}


def _plot(path: Path, conds, results) -> None:
    """Every episode as a dot (boxes vanish when the spread is a fraction of a mm/s), coloured by
    kind, with each condition's mean as a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = [c for c in conds if c["name"] in results]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(conds)), 4.0))
    rng = np.random.default_rng(0)
    for i, c in enumerate(conds):
        v = np.array([o.early_speed_m_s for o in results[c["name"]]], float)
        color = _COLORS.get(c.get("kind", ""), "black")
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=9, color=color, alpha=0.7)
        ax.plot([i - 0.3, i + 0.3], [np.nanmean(v)] * 2, color=color, lw=2)
    ax.axhline(float(np.nanmean([o.early_speed_m_s for o in results["baseline"]])), color="k", lw=0.8, ls="--",
               label="baseline mean")
    ax.set_xticks(range(len(conds)), [c["name"] for c in conds], rotation=70, fontsize=7)
    ax.set_ylabel("early-phase ee speed (m/s)")
    ax.set_title("concept (blue) vs matched random controls (grey)\nvs adverbs (green); one dot per episode", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_dose(path: Path, args, speeds: dict[str, list[float]]) -> None:
    """Dose-response per concept: the concept's mean speed vs alpha against the band its matched
    random controls span at the same alpha, with the baseline and the adverb as references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    concepts = [c for c in args.concepts if c in SPEED_CONCEPTS]
    fig, axes = plt.subplots(1, len(concepts), figsize=(4.2 * len(concepts), 3.6), squeeze=False)
    b = float(np.nanmean(speeds["baseline"]))
    for ax, concept in zip(axes[0], concepts):
        al = [a for a in args.alphas if concept_name(concept, a) in speeds]
        ax.plot(al, [np.nanmean(speeds[concept_name(concept, a)]) for a in al], "o-", color="tab:blue", label=concept)
        band = [[np.nanmean(speeds[n]) for k in range(args.controls) if (n := control_name(concept, k, a)) in speeds]
                for a in al]
        ok = [i for i, x in enumerate(band) if x]
        if ok:
            ax.fill_between([al[i] for i in ok], [min(band[i]) for i in ok], [max(band[i]) for i in ok],
                            color="tab:gray", alpha=0.35, label="random controls (min-max)")
        ax.axhline(b, color="k", ls="--", lw=0.8, label="baseline")
        adverb = f"adverb '{ADVERBS.get(concept, '')}'"
        if adverb in speeds:
            ax.axhline(float(np.nanmean(speeds[adverb])), color="tab:green", lw=1, label=adverb)
        ax.set_xscale("log")
        ax.set_xlabel("alpha")
        ax.set_ylabel("early-phase ee speed (m/s)")
        ax.set_title(f"{concept}: dose-response", fontsize=9)
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
    p.add_argument("--alphas", "--alpha", type=lambda s: [float(x) for x in s.split(",")], default=[10.0],
                   help="steering strengths, comma-separated (each with its own matched controls)")
    p.add_argument("--mode", default="")
    p.add_argument("--position", default="", choices=("", "all", "prefill", "decode"),
                   help="all | prefill | decode (default: the model family's own, pi0fast prefill, others all)")
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
