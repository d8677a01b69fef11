"""LIBERO step rate with and without the bridge's fast render mode, measured in one run.

    tools/env.sh python bench/bench_sim_step.py                 # 128 px, 20 steps each (~1 min)
    tools/env.sh python bench/bench_sim_step.py --size 224 --steps 50

Each mode gets its own env (one GL context at a time: robosuite does not switch contexts between
envs), the same task, init state and action sequence (a slow up/down wave so the arm moves and the
images change). Reported: median ms per step (2 cameras rendered), steps/s and the speed-up.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np
from libero_sim_bridge.env import LiberoEnv
from tqdm import tqdm


def measure(fast: bool, args: argparse.Namespace) -> float:
    """Median seconds per step for one render mode."""
    env = LiberoEnv(args.suite, args.task, 0, image_size=args.size, fast_render=fast,
                    settle_steps=0, max_steps=args.steps + args.warmup + 1)
    try:
        env.reset()
        times = []
        label = "fast render" if fast else "stock render"
        for i in tqdm(range(args.warmup + args.steps), desc=label, leave=False):
            action = np.zeros(7)
            action[2], action[6] = np.sin(i / 4.0), -1.0
            t0 = time.perf_counter()
            env.step(action)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        return statistics.median(times)
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="camera image size, px")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--suite", default="libero_spatial")
    parser.add_argument("--task", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    stock = measure(False, args)
    fast = measure(True, args)
    print(f"LIBERO {args.suite} task {args.task}, {args.size} px, agentview + wrist, "
          f"median of {args.steps} steps")
    print(f"  stock render: {stock * 1000:7.1f} ms/step  {1 / stock:6.1f} steps/s")
    print(f"  fast render : {fast * 1000:7.1f} ms/step  {1 / fast:6.1f} steps/s")
    print(f"  speed-up (stock / fast): {stock / fast:.2f}x")


if __name__ == "__main__":
    main()
