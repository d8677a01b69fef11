"""The collision boxes the bridge hands the expert: which bodies, where, and the hand's own box."""

from __future__ import annotations

import numpy as np

from libero_sim_bridge.env import LiberoEnv
from libero_sim_bridge.obstacles import FAR_M, MAX_OBSTACLES
from vla_steer_tools.expert.waypoint_expert import HAND_BOX_M


def _inside(point: np.ndarray, box: np.ndarray) -> bool:
    return bool(np.all(point >= box[0]) and np.all(point <= box[1]))


def test_obstacles_cover_the_other_bodies_but_not_the_object_or_its_target(libero_env: LiberoEnv) -> None:
    obs = libero_env.reset(init_state_id=0)
    boxes = obs.extra["obstacles"]
    assert boxes.shape == (MAX_OBSTACLES, 2, 3) and np.all(np.isfinite(boxes))
    real = boxes[boxes[:, 0, 0] < FAR_M / 2]
    assert len(real) >= 3 and np.all(real[:, 1] > real[:, 0])
    assert not any(_inside(obs.extra["object_pos"], b) for b in real)   # the bowl being grasped
    assert not any(_inside(obs.extra["target_pos"], b) for b in real)   # the plate it goes onto
    sim = libero_env._env.sim
    for name in ("cookies_1_main", "glazed_rim_porcelain_ramekin_1_main"):
        centre = np.asarray(sim.data.body_xpos[sim.model.body_name2id(name)])
        # xy: a body's origin may sit at its base, a millimetre under its collision geoms
        assert any(_inside(centre[:2], b[:, :2]) for b in real), name
    # nearest first: the boxes are ordered by their distance to the object
    dist = [np.linalg.norm(np.maximum(0, np.maximum(b[0] - obs.extra["object_pos"], obs.extra["object_pos"] - b[1])))
            for b in real]
    assert dist == sorted(dist)


def test_the_experts_hand_box_is_the_simulated_grippers(libero_env: LiberoEnv) -> None:
    """HAND_BOX_M was measured once; the union of the gripper's collision geoms' boxes at a reset
    must still be it (to 5 mm), or the grasp-side choice reasons about the wrong hand."""
    obs = libero_env.reset(init_state_id=0)
    sim = libero_env._env.sim
    m, d = sim.model, sim.data
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for g in range(m.ngeom):
        body = m.body_id2name(m.geom_bodyid[g]) or ""
        if not body.startswith("gripper0") or (m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0):
            continue
        rot = d.geom_xmat[g].reshape(3, 3)
        centre = d.geom_xpos[g] + rot @ m.geom_aabb[g, :3]
        half = np.abs(rot) @ m.geom_aabb[g, 3:]
        lo, hi = np.minimum(lo, centre - half), np.maximum(hi, centre + half)
    np.testing.assert_allclose(lo - obs.ee_pos, HAND_BOX_M[0], atol=0.005)
    np.testing.assert_allclose(hi - obs.ee_pos, HAND_BOX_M[1], atol=0.005)
