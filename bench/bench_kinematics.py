"""UR5 / UR5e kinematics: FK and IK time per call, IK round-trip error, how often it refuses.

Random joint configurations (seeded) with sigma_min > 0.05, and random tool deltas of up to 2 cm and
0.1 rad (a 10 Hz policy step well beyond LIBERO's): the IK's joint target is checked by FK against
the requested pose. Prints the numbers; the tests (tests/kinematics) check correctness, this the speed.

    OMP_NUM_THREADS=1 tools/env.sh python bench/bench_kinematics.py [--n 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pinocchio as pin

from vla_steer_tools.kinematics import ArmKinematics, KinematicsError


def run(model: str, n: int) -> None:
    arm = ArmKinematics(model)
    rng = np.random.default_rng(0)
    cases = []
    while len(cases) < n:
        q = rng.uniform(-2.8, 2.8, 6)
        if arm.min_singular_value(q) > 0.05:
            cases.append((q, rng.uniform(-0.02, 0.02, 3), rng.uniform(-0.1, 0.1, 3)))
    t0 = time.perf_counter()
    for q, _, _ in cases:
        arm.forward(q)
    fk_us = (time.perf_counter() - t0) / n * 1e6
    times, pos_err, rot_err, refused = [], [], [], {}
    for q, dp, dr in cases:
        before = arm.forward(q)
        t0 = time.perf_counter()
        try:
            q_ik = arm.solve_delta(q, dp, dr)
        except KinematicsError as exc:
            refused[type(exc).__name__] = refused.get(type(exc).__name__, 0) + 1
            continue
        times.append(time.perf_counter() - t0)
        after = arm.forward(q_ik)
        pos_err.append(np.linalg.norm(after.position_m - before.position_m - dp))
        rot_err.append(np.linalg.norm(pin.log3((pin.exp3(dr) @ before.rotation) @ after.rotation.T)))
    ms = np.array(times) * 1e3
    print(f"{model}: FK {fk_us:.1f} us/call; IK {len(times)}/{n} solved, median {np.median(ms):.2f} ms, "
          f"p95 {np.percentile(ms, 95):.2f} ms, max {ms.max():.2f} ms; round-trip error max "
          f"{max(pos_err) * 1e6:.2f} um / {np.degrees(max(rot_err)) * 1e3:.3f} mdeg; refused {refused or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500, help="cases per arm model (default 500)")
    args = parser.parse_args()
    for model in ("ur5", "ur5e"):
        run(model, args.n)


if __name__ == "__main__":
    main()
