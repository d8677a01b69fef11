"""What the expert's hand must not touch: world-frame collision boxes of the scene's bodies.

Why boxes per body: the expert only needs to know whether its hand, placed at a candidate grasp,
would come close to something (a cabinet beside the bowl); one axis-aligned box per top-level body
(the union of its collision geoms' boxes) answers that cheaply and is small enough to record with
every frame, so relabelling a recorded rollout sees what the generator saw. The robot, the table,
the floor, the object being grasped and the target it goes onto are left out.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

#: How many boxes a frame carries (the nearest to the object); absent ones are far-away dummies.
MAX_OBSTACLES = 8
#: Corner of a dummy box: far from any LIBERO scene, so it never constrains the hand.
FAR_M = 1.0e3
_SKIP_PREFIXES = ("robot", "gripper", "mount")
_SKIP_BODIES = ("world", "table", "floor")


def _root_body(model: Any, body_id: int) -> int:
    while int(model.body_parentid[body_id]) != 0:
        body_id = int(model.body_parentid[body_id])
    return body_id


class ObstacleBoxes:
    """`boxes(sim, exclude)` -> (MAX_OBSTACLES, 2, 3) boxes nearest to `near` (the object)."""

    def __init__(self) -> None:
        self._model_id: int | None = None
        self._geoms = np.zeros(0, dtype=np.int64)
        self._roots: list[str] = []

    def _index(self, model: Any) -> None:
        """Which geoms collide and which top-level body each belongs to (per model: a hard reset
        rebuilds the simulator)."""
        geoms, roots = [], []
        for g in range(int(model.ngeom)):
            if int(model.geom_contype[g]) == 0 and int(model.geom_conaffinity[g]) == 0:
                continue  # visual only
            if int(model.geom_type[g]) == 0:
                continue  # a plane (the floor)
            root = model.body_id2name(_root_body(model, int(model.geom_bodyid[g]))) or ""
            if root.startswith(_SKIP_PREFIXES) or root in _SKIP_BODIES:
                continue
            geoms.append(g)
            roots.append(root)
        self._geoms = np.asarray(geoms, dtype=np.int64)
        self._roots = roots
        self._model_id = id(model)

    def boxes(self, sim: Any, exclude: Sequence[str], near: np.ndarray) -> np.ndarray:
        if self._model_id != id(sim.model):
            self._index(sim.model)
        out = np.full((MAX_OBSTACLES, 2, 3), FAR_M)
        out[:, 1] += 1.0
        if self._geoms.size == 0:
            return out
        m, d, g = sim.model, sim.data, self._geoms
        centre_local, half_local = m.geom_aabb[g, :3], m.geom_aabb[g, 3:]
        rot = np.asarray(d.geom_xmat[g]).reshape(-1, 3, 3)
        centre = np.asarray(d.geom_xpos[g]) + np.einsum("nij,nj->ni", rot, centre_local)
        half = np.einsum("nij,nj->ni", np.abs(rot), half_local)
        lo, hi = centre - half, centre + half
        merged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for i, root in enumerate(self._roots):
            if any(root.startswith(x) for x in exclude):
                continue
            if root in merged:
                a, b = merged[root]
                merged[root] = (np.minimum(a, lo[i]), np.maximum(b, hi[i]))
            else:
                merged[root] = (lo[i], hi[i])
        ranked = sorted(merged.values(), key=lambda box: _distance(box, near))[:MAX_OBSTACLES]
        for k, (a, b) in enumerate(ranked):
            out[k, 0], out[k, 1] = a, b
        return out


def _distance(box: tuple[np.ndarray, np.ndarray], point: np.ndarray) -> float:
    lo, hi = box
    return float(np.linalg.norm(np.maximum(0.0, np.maximum(lo - point, point - hi))))
