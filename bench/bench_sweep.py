"""Sweep throughput: closed-loop episodes per hour with 1 and 2 Ray workers, and the scaling ratio.

The shipped mini-VLA on libero_object task 1 (the sweep's default), the same cells and episode
starts for both runs (baseline + `fast` at alpha 10 over --episodes starts of --max-steps steps),
each run into its own fresh directory, both timed from the first Ray call to the last row
(worker start-up, model and LIBERO loading included, as a user waits for them). Prints episodes per
hour for each and the ratio 2-worker / 1-worker measured in this one invocation; on a machine
with two cores, 2.0 is the ceiling.

    tools/env.sh python bench/bench_sweep.py [--episodes 3] [--max-steps 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3, help="episode starts per cell (2 cells)")
    parser.add_argument("--max-steps", type=int, default=60)
    args = parser.parse_args()

    from libero_sim_bridge.sweep_episode import SweepSetup
    from libero_sim_bridge.sweep_ray import run_sweep
    from vla_policy.compose import config_dir
    from vla_steer_tools.cli.policy_args import DEFAULT_MODEL
    from vla_steer_tools.steering.directions import DirectionLibrary
    from vla_steer_tools.sweeps.plan import Cell, parse_episodes

    setup = SweepSetup("minivla", DEFAULT_MODEL, "libero_object", 1, max_steps=args.max_steps)
    fast = DirectionLibrary([str(config_dir() / "directions" / "smollm2")]).get("fast").with_options(alpha=10.0)
    cells = [Cell("baseline", "baseline"), Cell("fast n=10 a=10", "concept", "fast", 10.0, 10, directions=(fast,))]
    episodes = parse_episodes(f"30-{30 + args.episodes - 1}", seed=0)
    rates = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            table = run_sweep(setup, cells, episodes, Path(tmp) / "sweep", workers=workers, progress=False)
            wall = time.perf_counter() - t0
            n = len(table.rows)
            rates[workers] = n / wall * 3600.0
            print(f"{workers} worker(s): {n} episodes of <= {args.max_steps} steps in {wall:.1f} s "
                  f"= {rates[workers]:.1f} episodes/hour")
    print(f"scaling 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x (measured in this run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
