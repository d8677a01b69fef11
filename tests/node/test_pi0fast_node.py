"""The node drives the tiny pi0-FAST fixture (family pi0fast, its default prefill steering):
whole decoded chunks are published, and every command is a chunk row after the node's ee step
limit, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from .test_compose_inprocess import compose

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_node_runs_pi0fast_chunks(tmp_path_factory, direction_dir, real_images):
    from vla_policy.safety import SafetyLimits, limit_ee_action
    from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint

    path = ensure_tiny_checkpoint("pi0fast", tmp_path_factory.mktemp("pi0fast"))
    with compose(real_images, **{"model.family": "pi0fast", "model.path": str(path), "model.options": "",
                                 "output.lockstep": False, "control_hz": 10.0, "chunk.execute_steps": 2,
                                 "steering.direction_dirs": [str(direction_dir)]}) as (node, driver):
        driver.start_stream(hz=20.0)
        driver.wait_for(lambda: len(driver.get("action")) >= 4, 60.0, "4 commands")
        driver.stop_stream()
        params = node._p
    # steering.position left at "" (config/policy_libero.yaml): the node reports pi0fast's own
    assert params.steering_position == ""
    assert driver.get("state") and driver.get("state")[-1][1].position_policy == "prefill"
    chunks = [np.asarray(m.data, dtype=np.float64).reshape(m.horizon, m.action_dim) for _, m in driver.get("chunk")]
    assert chunks and all(c.shape == (2, 7) and np.all(np.isfinite(c)) for c in chunks)
    # Why a command need not equal its row: output.mode ee_delta passes each row through
    # limit_ee_action, which scales the xyz step down to limits.max_ee_step_m (0.05 m at
    # output.ee_linear_m_per_unit 0.05 m/unit = a norm of 1 model unit; no workspace box in
    # policy_libero.yaml); rotation and gripper pass unchanged. So each command is exactly that
    # function of one published row, computed here from the node's own parameters.
    limits = SafetyLimits.from_params(params)
    expected = [limit_ee_action(row, None, limits, params.output_ee_linear_m_per_unit) for c in chunks for row in c]
    commands = [np.asarray(m.data, dtype=np.float64) for _, m in driver.get("action")]
    assert len(commands) >= 4
    for command in commands:
        assert command.shape == (7,)
        assert any(np.array_equal(command, e) for e in expected), (command, expected)
    # the limit is what separates commands from rows: a row within it is sent unchanged, a longer
    # xyz step is scaled to exactly the limit (direction kept), rotation and gripper never change
    scale = params.output_ee_linear_m_per_unit
    for row, e in zip((row for c in chunks for row in c), expected):
        assert np.array_equal(e[3:], row[3:])
        if np.linalg.norm(row[:3]) * scale <= limits.max_ee_step_m:
            assert np.array_equal(e, row)
        else:
            assert np.isclose(np.linalg.norm(e[:3]) * scale, limits.max_ee_step_m, rtol=1e-12)
            assert np.allclose(e[:3] / np.linalg.norm(e[:3]), row[:3] / np.linalg.norm(row[:3]), rtol=1e-12)
