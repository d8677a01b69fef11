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
