"""`vla-steer demo` (what `make demo` runs): simulation + policy + live steering, recorded and reported.

One LIBERO episode in lockstep with the policy node and the sim bridge composed in this process
(the graph of launch/libero_sim.launch.py). Halfway through, steering is switched on the way a user
would do it — a parameter set over DDS (what `ros2 param set /vla_policy steering.enabled true`
sends). Everything is recorded to a rosbag2 (MCAP) and a report compares the end-effector motion
before and after the switch. By default the model is a tiny RANDOM-WEIGHT OpenVLA-format checkpoint
(no model hub here); the output says so, and `--model-path` points it at a real checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from datetime import datetime
from pathlib import Path

import rclpy
import yaml
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from vla_steer_tools.analysis.report import format_report, write_report
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.interp.concepts import direction_from_hits, find_concept
from vla_steer_tools.interp.projection import Projection, ProjectionOptions, project
from vla_steer_tools.models.registry import load_policy
from vla_steer_tools.policy import Policy
from vla_steer_tools.steering.directions import DirectionLibrary, save_direction

from vla_steer_msgs.msg import EpisodeStatus, EpisodeSummary

from .bag_recorder import BagRecorder
from .cli_ros import param_client
from vla_steer_bringup.compose import build_graph

from .compose import config_dir, running
from .params import PolicyParams, model_options

log = logging.getLogger(__name__)
#: The shipped mini-VLA (real weights, trained here on scripted demonstrations of libero_object task 1).
DEFAULT_FAMILY = "minivla"
DEFAULT_MODEL = "vla-steer/minivla-libero-object"


#: The before/after table compares two phases of one episode; say so wherever it is printed.
PHASE_CAVEAT = ("note: 'before' and 'after' are different phases of the task (e.g. approach vs carry), so the "
                "table shows what the arm did, not the steering effect alone; the controlled measurement (same "
                "placements, unsteered baseline, matched random neurons) is `vla-steer study`, "
                "docs/steering-study/report.md")


def ensure_direction(policy: Policy, concept: str, size: int, out_dir: Path, library_dirs: list[str]) -> Path:
    """A direction file named `concept` for this model: from the library if one fits, else found
    now by projecting the model's value vectors and clustering around the concept word."""
    library = DirectionLibrary([d for d in library_dirs if Path(d).is_dir()])
    if concept in library.names():
        print(f"[demo] direction {library.describe(concept)}")
        return Path(library_dirs[0])
    print(f"[demo] no {concept!r} direction for {policy.adapter.model_id}: projecting value vectors and clustering")
    proj_dir = project(policy.adapter, out_dir / "projection", ProjectionOptions(components=("backbone",)))
    proj = Projection.load(proj_dir)
    hits = find_concept(proj, concept, size=size, method="semantic")
    direction = direction_from_hits(proj, concept, hits, how=f"semantic kNN around {concept!r}, k={size}")
    save_direction(direction, out_dir / "directions" / f"{concept}.yaml")
    return out_dir / "directions"


def _load_options(args: argparse.Namespace) -> dict:
    """The node's load options: config/policy_libero.yaml's model.options unless --model-options,
    plus --unnorm-key (the demo loads the policy once and hands it to the node)."""
    model = yaml.safe_load((config_dir() / "policy_libero.yaml").read_text())["vla_policy"]["ros__parameters"]["model"]
    text = args.model_options
    if text is None:  # the config's options are OpenVLA's LIBERO settings; other families: none
        text = model.get("options", "") if args.model_family == model.get("family") else ""
    return model_options(PolicyParams(model_options=text, model_unnorm_key=args.unnorm_key or model.get("unnorm_key", "")))


class StepCounter:
    """Follows libero/episode_status: the sim's step and whether the episode ended."""

    def __init__(self) -> None:
        self.step = 0
        self.max_steps = 0
        self.done = False
        self.changed = threading.Condition()

    def __call__(self, msg: EpisodeStatus) -> None:
        with self.changed:
            self.step, self.max_steps, self.done = int(msg.step), int(msg.max_steps), bool(msg.done)
            self.changed.notify_all()

    def wait_for(self, step: int, timeout_s: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.step >= step or self.done, timeout_s)


def set_remote_parameter(node, target: str, param: Parameter, timeout_s: float = 10.0) -> None:
    """Set a parameter on another node through its parameter services, as `ros2 param set` does.

    Polls the future instead of cli_ros.wait_result: `node` is already spun by the demo's executor."""
    future = param_client(node, target, timeout_s).set_parameters([param])
    deadline = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    result = future.result().results[0] if future.done() else None
    if result is None or not result.successful:
        raise ConfigError(f"{target} refused {param.name}={param.value}: {result.reason if result else 'timeout'}")


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out or f"runs/demo-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    options = _load_options(args)
    policy = load_policy(args.model_family, args.model_path, **options)
    if policy.adapter.random_weights:
        print("[demo] model: tiny RANDOM-WEIGHT checkpoint (test fixture) — it will not solve the task; this "
              "demo shows the machinery (sim -> policy -> steering -> bag -> report).\n"
              "[demo] real checkpoint: vla-steer demo --model-path openvla/openvla-7b-finetuned-libero-10 "
              "--unnorm-key libero_10_no_noops  (GPU and model hub access)")
    # one direction folder per model, named after the checkpoint (config/directions/tiny-openvla);
    # the mini-VLA's neurons are SmolLM2's, so it uses SmolLM2's folder
    folder = "smollm2" if args.model_family == "minivla" else Path(str(args.model_path)).name
    library_dirs = [str(config_dir() / "directions" / folder)]
    found = ensure_direction(policy, args.concept, args.size, out, library_dirs)
    library_dirs = list(dict.fromkeys([str(found), *library_dirs]))
    overrides = [
        ("libero", "suite", Parameter("suite", value=args.suite)),
        ("libero", "task_id", Parameter("task_id", value=args.task_id)),
        ("libero", "mode", Parameter("mode", value="lockstep")),
        ("libero", "image_size", Parameter("image_size", value=args.image_size)),
        ("vla_policy", "cameras.width_px", Parameter("cameras.width_px", value=args.image_size)),
        ("vla_policy", "cameras.height_px", Parameter("cameras.height_px", value=args.image_size)),
        ("vla_policy", "model.path", Parameter("model.path", value=str(args.model_path))),
        ("vla_policy", "model.family", Parameter("model.family", value=args.model_family)),
        ("vla_policy", "steering.direction_dirs", Parameter("steering.direction_dirs", value=library_dirs)),
        ("vla_policy", "steering.concepts", Parameter("steering.concepts", value=[args.concept])),
        ("vla_policy", "steering.alpha", Parameter("steering.alpha", value=float(args.alpha))),
        ("vla_policy", "steering.enabled", Parameter("steering.enabled", value=False)),
    ]
    overrides.append(("vla_policy", "chunk.execute_steps", Parameter("chunk.execute_steps", value=args.execute_steps)))
    overrides.append(("vla_policy", "model.options",
                      Parameter("model.options", value=yaml.safe_dump(options).strip() if options else "")))
    if args.unnorm_key:
        overrides.append(("vla_policy", "model.unnorm_key", Parameter("model.unnorm_key", value=args.unnorm_key)))
    context = Context()
    rclpy.init(context=context)
    try:
        report, args.episode_summary = _run_graph(context, overrides, policy, out / "bag", args.steps, args.switch_at,
                                                  args.concept, args.alpha)
    finally:
        rclpy.try_shutdown(context=context)
    print(format_report(report))
    if args.episode_summary is not None:
        e = args.episode_summary
        verdict = "SUCCESS" if e["success"] else "not solved"
        print(f"[demo] task: {verdict} after {e['steps']} steps ({e['instruction']!r})")
        data = json.loads((out / "report.json").read_text())
        data["episode"] = e
        (out / "report.json").write_text(json.dumps(data, indent=2, default=float))
        with open(out / "report.txt", "a") as fh:
            fh.write(f"task: {verdict} after {e['steps']} steps\n{PHASE_CAVEAT}\n")
        print(f"[demo] {PHASE_CAVEAT}")
    print(f"[demo] bag: {out / 'bag'}   report: {out / 'report.txt'}   figure: {out / 'trajectory.png'}")
    return 0


def _run_graph(context: Context, overrides, policy: Policy, bag: Path, steps: int, switch_at: int,
               concept: str, alpha: float):
    nodes = build_graph("libero_sim", context, overrides, extra={"vla_policy": {"policy": policy}})
    recorder = BagRecorder(bag, context=context)
    watcher = rclpy.create_node("vla_demo", context=context)
    counter = StepCounter()
    watcher.create_subscription(EpisodeStatus, "libero/episode_status", counter, 10)
    summaries: list[EpisodeSummary] = []
    watcher.create_subscription(EpisodeSummary, "libero/episode_summary", summaries.append,
                                QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                                           durability=DurabilityPolicy.TRANSIENT_LOCAL))
    t0 = time.monotonic()
    with running([*nodes, recorder, watcher], context):
        print("[demo] waiting for the simulator and the model (first episode: 10-40 s) ...")
        if not counter.wait_for(1, timeout_s=240.0):
            raise ConfigError("the episode did not start within 240 s (see the log above)")
        steps = min(steps, counter.max_steps) if steps > 0 else counter.max_steps  # 0 = the whole episode
        switch_at = switch_at if 0 < switch_at < steps else steps // 2
        print(f"[demo] running {steps} of the episode's {counter.max_steps} steps; steering switches on at step {switch_at}")
        _progress(counter, switch_at, steps, t0)
        print(f"[demo] step {counter.step}: switching steering ON (concept {concept!r}, alpha {alpha:g}) via "
              "parameter set, like `ros2 param set /vla_policy steering.enabled true`")
        set_remote_parameter(watcher, "/vla_policy", Parameter("steering.enabled", value=True))
        _progress(counter, steps, steps, t0)
        deadline = time.monotonic() + 5.0
        while counter.done and not summaries and time.monotonic() < deadline:
            time.sleep(0.05)
        recorder.close()
        print(f"[demo] ran {counter.step} steps in {time.monotonic() - t0:.1f} s; recorded {recorder.message_count} messages")
    report, _ = write_report(bag, bag.parent)
    done = [m for m in summaries if not m.interrupted]
    episode = ({"success": bool(done[-1].success), "steps": int(done[-1].steps), "instruction": done[-1].instruction}
               if done else None)
    return report, episode


def _progress(counter: StepCounter, until: int, total: int, t0: float) -> None:
    from tqdm import tqdm

    with tqdm(total=total, initial=counter.step, desc="[demo] sim steps", unit="step", leave=False) as bar:
        while counter.step < until and not counter.done:
            if not counter.wait_for(counter.step + 1, timeout_s=120.0):
                raise ConfigError(f"no simulator step for 120 s at step {counter.step}")
            bar.update(counter.step - bar.n)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="LIBERO episode + policy + live steering, recorded and reported (what `make demo` runs)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model-family", default=DEFAULT_FAMILY,
                   help="policy family (minivla | openvla | pi0 | pi0fast; `vla-steer fixtures write --family "
                   "pi0fast` writes a tiny pi0fast to .state/checkpoints/tiny-pi0fast)")
    p.add_argument("--model-path", default=DEFAULT_MODEL,
                   help="checkpoint dir or hub id (default: the shipped mini-VLA; .state/checkpoints/tiny-openvla "
                   "with --model-family openvla is the random-weight machinery-only fixture)")
    p.add_argument("--execute-steps", type=int, default=4, help="actions of each chunk executed before re-planning "
                   "(OpenVLA predicts 1; use 1 for it)")
    p.add_argument("--model-options", default=None,
                   help="family load options as YAML, e.g. '{}' for Pi0 (default: config/policy_libero.yaml's, "
                   "OpenVLA's LIBERO settings)")
    p.add_argument("--unnorm-key", default="", help="OpenVLA dataset key for action un-normalisation")
    p.add_argument("--suite", default="libero_object", help="LIBERO suite")
    p.add_argument("--task-id", type=int, default=1, help="task index in the suite")
    p.add_argument("--steps", type=int, default=0,
                   help="simulator steps to run (default 0 = the whole episode: the suite's step limit, 520 for libero_10)")
    p.add_argument("--switch-at", type=int, default=70, help="step at which steering turns on (default 70: the mini-VLA "
                   "has grasped by then and succeeds around step 140-180, so this is half way; 0 = half the steps run)")
    p.add_argument("--concept", default="fast", help="steering concept (direction name)")
    p.add_argument("--size", type=int, default=10, help="neurons in the concept cluster when it must be found")
    p.add_argument("--alpha", type=float, default=10.0, help="steering strength (the paper used 10 on robots)")
    p.add_argument("--image-size", type=int, default=64, help="camera resolution, px (the mini-VLA was trained at 64)")
    p.add_argument("--out", default="", help="output dir (default runs/demo-<timestamp>)")
    p.set_defaults(func=run_demo)
