"""Step time of the ur5_sim twin: physics per control step (0.1 s of sim time = 50 MuJoCo steps of
2 ms, tracking a moving setpoint) and offscreen rendering of both cameras, at a few image sizes.

    OMP_NUM_THREADS=1 tools/env.sh python bench/bench_ur5_twin.py [--steps 20]

Timed work lives here, not in tests (it depends on the machine and its load).
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    args = parser.parse_args()
    from ur5_sim.scene import HOME, UR_JOINTS
    from ur5_sim.twin import Ur5Twin

    print(f"load average {os.getloadavg()[0]:.1f}; {args.steps} steps of 0.1 s per size")
    for size in args.sizes:
        twin = Ur5Twin(image_size=size)
        q = np.array(HOME)
        physics, render = [], []
        for _ in range(args.steps):
            q[0] += 0.05
            twin.command_trajectory(UR_JOINTS, [0.1], [q.tolist()])
            twin.advance(0.1)
            twin.observe()
            physics.append(twin.timing.physics_s)
            render.append(twin.timing.render_s)
        twin.close()
        p, r = np.array(physics) * 1e3, np.array(render) * 1e3
        print(f"{size:4d} px: physics median {np.median(p):6.1f} ms (p90 {np.percentile(p, 90):6.1f}), "
              f"render 2 cameras median {np.median(r):6.1f} ms (p90 {np.percentile(r, 90):6.1f})")


if __name__ == "__main__":
    main()
