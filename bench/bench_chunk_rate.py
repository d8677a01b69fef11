"""Command rate of the policy node (what the suite does not time).

pi0 (default): the node with the tiny RANDOM-WEIGHT Pi0 (horizon 10, chunk.execute_steps 4,
control_hz 10). openvla: the tiny RANDOM-WEIGHT OpenVLA (horizon 1: one inference per command,
control_hz 3, the rate tests/node/test_policy_node_ros.py once timed). The node is composed in this
process; a driver streams observations at 20 Hz and records when commands arrive. Prints the
median and 95th-percentile interval between commands; target: median within 10 % of the period.
The suite checks the order of the rows (tests/node/test_compose_inprocess.py), this the timing.

    tools/env.sh python bench/bench_chunk_rate.py [--family pi0|openvla] [--commands 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=40)
    parser.add_argument("--family", choices=("pi0", "openvla"), default="pi0",
                        help="pi0: chunks of 10 at 10 Hz; openvla: one inference per command at 3 Hz")
    args = parser.parse_args()
    hz = 10.0 if args.family == "pi0" else 3.0
    from matplotlib import cbook
    from PIL import Image

    from tests.node.test_compose_inprocess import compose
    from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint

    photo = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((224, 224)))
    images = {"agentview": photo, "wrist": photo}
    with tempfile.TemporaryDirectory() as tmp:
        path = ensure_tiny_checkpoint(args.family, Path(tmp))
        overrides = {"model.family": args.family, "model.path": str(path), "model.options": "",
                     "output.lockstep": False, "control_hz": hz, "chunk.execute_steps": 4 if args.family == "pi0" else 1,
                     "steering.direction_dirs": [str(ROOT / f"config/directions/tiny-{args.family}")]}
        with compose(images, **overrides) as (_node, driver):
            driver.start_stream(hz=20.0)
            driver.wait_for(lambda: len(driver.get("action")) >= args.commands, 60.0 + 3 * args.commands / hz,
                            "commands")
            driver.stop_stream()
        times = np.array([t for t, _ in driver.get("action")][: args.commands])
    gaps = np.diff(times)
    median, p95 = float(np.median(gaps)), float(np.percentile(gaps, 95))
    period = 1.0 / hz
    print(f"{args.family}: {len(times)} commands: interval median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms "
          f"(target {period * 1000:.0f} ms; ratio {median / period:.3f})")
    return 0 if abs(median - period) <= 0.1 * period else 1


if __name__ == "__main__":
    sys.exit(main())
