"""Episode metrics on hand-computed trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest
from vla_steer_tools.analysis.metrics import (
    compare,
    episode_metrics,
    relative_change,
    step_displacements,
)


def test_straight_line_up() -> None:
    # 3 steps of 1 cm straight up from z = 1.0
    pos = np.array([[0.0, 0.0, 1.00], [0.0, 0.0, 1.01], [0.0, 0.0, 1.02], [0.0, 0.0, 1.03]])
    m = episode_metrics(pos)
    assert m.steps == 3
    assert m.mean_step_displacement == pytest.approx(0.01)
    assert m.path_length == pytest.approx(0.03)
    assert m.max_height == pytest.approx(1.03)
    assert m.min_height == pytest.approx(1.00)
    assert m.mean_dz == pytest.approx(0.01)
    assert m.mean_dx == 0.0 and m.mean_dy == 0.0
    assert m.net_displacement == pytest.approx(0.03)


def test_out_and_back_has_path_but_no_net_motion() -> None:
    # 3-4-5 triangle legs: (0,0,0) -> (3,4,0) -> (0,0,0): two steps of length 5
    pos = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(step_displacements(pos), [5.0, 5.0])
    m = episode_metrics(pos)
    assert m.path_length == pytest.approx(10.0)
    assert m.mean_step_displacement == pytest.approx(5.0)
    assert m.net_displacement == pytest.approx(0.0)
    assert m.mean_dx == pytest.approx(0.0) and m.mean_dy == pytest.approx(0.0)


def test_signed_y_displacement_and_heights() -> None:
    pos = np.array([[0.0, 0.0, 0.5], [0.0, -0.2, 0.9], [0.0, -0.6, 0.2]])
    m = episode_metrics(pos)
    assert m.mean_dy == pytest.approx(-0.3)
    assert m.mean_dz == pytest.approx(-0.15)
    assert m.max_height == pytest.approx(0.9)
    assert m.min_height == pytest.approx(0.2)
    expected = (math.hypot(0.2, 0.4) + math.hypot(0.4, 0.7)) / 2
    assert m.mean_step_displacement == pytest.approx(expected)


def test_single_position_means_no_motion() -> None:
    m = episode_metrics(np.array([[1.0, 2.0, 3.0]]))
    assert m.steps == 0 and m.path_length == 0.0 and m.mean_step_displacement == 0.0
    assert m.max_height == m.min_height == 3.0


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros((4, 2)), np.zeros(3)])
def test_bad_shapes_are_named(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="shape"):
        episode_metrics(bad)


def test_nan_row_is_named() -> None:
    pos = np.zeros((4, 3))
    pos[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"rows \[2\]"):
        episode_metrics(pos)


def test_relative_change_and_compare() -> None:
    assert relative_change(2.0, 2.5) == pytest.approx(0.25)
    assert relative_change(-2.0, -1.0) == pytest.approx(0.5)
    assert math.isnan(relative_change(0.0, 1.0))
    slow = episode_metrics(np.array([[0, 0, 0], [0, 0, 0.01], [0, 0, 0.02]], dtype=float))
    fast = episode_metrics(np.array([[0, 0, 0], [0, 0, 0.02], [0, 0, 0.04]], dtype=float))
    change = compare(slow, fast)
    assert change["mean_step_displacement"] == pytest.approx(1.0)
    assert change["path_length"] == pytest.approx(1.0)
    assert "steps" not in change
