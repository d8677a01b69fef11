"""The node drives the tiny pi0-FAST fixture (family pi0fast, prefill steering): whole decoded
chunks are published and commands go out."""

from __future__ import annotations

import numpy as np
import pytest

from .test_compose_inprocess import compose

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_node_runs_pi0fast_chunks(tmp_path_factory, direction_dir, real_images):
    from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint

    path = ensure_tiny_checkpoint("pi0fast", tmp_path_factory.mktemp("pi0fast"))
    with compose(real_images, **{"model.family": "pi0fast", "model.path": str(path), "model.options": "",
                                 "output.lockstep": False, "control_hz": 10.0, "chunk.execute_steps": 2,
                                 "steering.position": "prefill",
                                 "steering.direction_dirs": [str(direction_dir)]}) as (node, driver):
        driver.start_stream(hz=20.0)
        driver.wait_for(lambda: len(driver.get("action")) >= 4, 60.0, "4 commands")
        driver.stop_stream()
    chunks = [np.asarray(m.data).reshape(m.horizon, m.action_dim) for _, m in driver.get("chunk")]
    assert chunks and all(c.shape == (2, 7) and np.all(np.isfinite(c)) for c in chunks)
    # commands went out (each passed the node's clipping / limits gate, so they need not equal rows)
    assert all(len(m.data) == 7 and np.all(np.isfinite(m.data)) for _, m in driver.get("action")[:4])
