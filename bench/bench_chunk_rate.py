"""Command rate of the policy node executing Pi0 chunks (what the suite no longer times).

The node (tiny RANDOM-WEIGHT Pi0, horizon 10, chunk.execute_steps 4, control_hz 10) is composed
in this process; a driver streams observations at 20 Hz and records when commands arrive. Prints
the median and 95th-percentile interval between commands; target: median within 10 % of 0.1 s.
The suite checks the order of the rows (tests/node/test_compose_inprocess.py), this the timing.

    tools/env.sh python bench/bench_chunk_rate.py [--commands 40]
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
    args = parser.parse_args()
    from matplotlib import cbook
    from PIL import Image

    from tests.node.test_compose_inprocess import compose
    from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint

    photo = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((224, 224)))
    images = {"agentview": photo, "wrist": photo}
    with tempfile.TemporaryDirectory() as tmp:
        path = ensure_tiny_checkpoint("pi0", Path(tmp))
        overrides = {"model.family": "pi0", "model.path": str(path), "model.options": "", "output.lockstep": False,
                     "control_hz": 10.0, "chunk.execute_steps": 4,
                     "steering.direction_dirs": [str(ROOT / "config/directions/tiny-pi0")]}
        with compose(images, **overrides) as (_node, driver):
            driver.start_stream(hz=20.0)
            driver.wait_for(lambda: len(driver.get("action")) >= args.commands, 120.0, "commands")
            driver.stop_stream()
        times = np.array([t for t, _ in driver.get("action")][: args.commands])
    gaps = np.diff(times)
    median, p95 = float(np.median(gaps)), float(np.percentile(gaps, 95))
    print(f"{len(times)} commands: interval median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (target 100 ms)")
    return 0 if abs(median - 0.1) <= 0.01 else 1


if __name__ == "__main__":
    sys.exit(main())
