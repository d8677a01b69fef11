"""Save what the bridge's cameras see after a reset as one PNG: check image orientation by eye.

    tools/env.sh python -m libero_sim_bridge.snapshot --suite libero_spatial --task 0 --out snap.png

Left: agentview, right: wrist, both exactly as the bridge publishes them (same flips). Upright
means: robot at the top of the agentview image, table below it, box labels readable.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from vla_steer_tools.atomic import atomic_path

from .env import CAMERAS, ORIENTATIONS, SUITE_MAX_STEPS, LiberoEnv


def save_png(image: np.ndarray, out: Path) -> None:
    """Atomic write: a partly written PNG never appears under the final name."""
    with atomic_path(out) as tmp:
        imageio.imwrite(tmp, image, format="png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="libero_spatial", choices=sorted(SUITE_MAX_STEPS))
    parser.add_argument("--task", type=int, default=0)
    parser.add_argument("--init-state", type=int, default=0)
    parser.add_argument("--size", type=int, default=256, help="camera image size, px")
    parser.add_argument("--orientation", default="rot180", choices=ORIENTATIONS)
    parser.add_argument("--out", type=Path, default=Path("libero_snapshot.png"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with LiberoEnv(args.suite, args.task, args.init_state, image_size=args.size,
                   orientation=args.orientation) as env:
        obs = env.reset()
        save_png(np.concatenate([obs.images[cam] for cam in CAMERAS], axis=1), args.out)
        print(f"{args.out}: {' | '.join(CAMERAS)} ({args.orientation}) - {env.instruction}")


if __name__ == "__main__":
    main()
