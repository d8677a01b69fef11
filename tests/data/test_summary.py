"""`data info`'s per-start success table: a failing placement must show even when the mean is high."""

from vla_steer_tools.datasets.summary import start_label, success_by_start


def _m(success, init=None, seed=None, task=1):
    return {"suite": "libero_object", "task_id": task, "init_state": init, "placement_seed": seed, "success": success}


def test_success_is_counted_per_start_and_task():
    metas = [_m(True, init=0), _m(True, init=0), _m(False, init=0), _m(True, seed=17), _m(True, init=0, task=2)]
    cells = success_by_start(metas)
    assert cells[("libero_object:1", "init 0")] == (2, 3)
    assert cells[("libero_object:1", "random 17")] == (1, 1)
    assert cells[("libero_object:2", "init 0")] == (1, 1)
    assert len(cells) == 3


def test_init_state_zero_is_a_fixed_state_not_missing():
    assert start_label(_m(True, init=0)) == "init 0"
    assert start_label(_m(True, seed=0)) == "random 0"
    assert start_label({"success": True}) == "?"


def test_carry_height_counts_a_lifted_object_held_at_any_finger_opening():
    """A bowl held by a rim at a 3.4 mm opening (under the 4.5 mm hold opening) carried at 0.30 m:
    with the object's positions the carry height is 0.30 m, not the 0.0x m of the frames the
    finger rule happened to catch."""
    import numpy as np

    from vla_steer_tools.datasets.stats import episode_motion

    t = np.linspace(0, 1, 50)
    hand_z = 0.90 + 0.05 + 0.30 * np.sin(np.pi * t)  # up to 0.30 m above the table and back
    state = np.zeros((50, 8))
    state[:, 2] = hand_z
    state[:, 6], state[:, 7] = 0.0017, -0.0017  # 3.4 mm: shut-on-nothing width
    state[:5, 6], state[:5, 7] = 0.0030, -0.0030  # 6 mm while closing (the finger rule's only frames)
    obj = np.zeros((50, 3))
    obj[:, 2] = np.maximum(0.899, hand_z - 0.05)
    with_obj = episode_motion(state, 20, 0.90, 0.0045, obj)
    assert abs(with_obj.carry_height_m - (hand_z.max() - 0.90)) < 1e-9
    fingers_only = episode_motion(state, 20, 0.90, 0.0045)
    assert fingers_only.carry_height_m < 0.2  # the old rule: misses the carry
