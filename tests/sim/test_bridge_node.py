"""The bridge node over real DDS: the bridge runs as a subprocess (`python -m
libero_sim_bridge.bridge_node`, the same entry point as `ros2 run libero_sim_bridge bridge`), this
process is the scripted policy publishing vla/action. One bridge (one sim) for the module."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import TEST_IMAGE_SIZE, TEST_SUITE
from .rosprobe import Probe, start_bridge, stop_bridge

pytestmark = [pytest.mark.ros, pytest.mark.slow]

MAX_STEPS = 8
UP, PLUS_X, MINUS_Y = [0, 0, 1, 0, 0, 0, -1], [1, 0, 0, 0, 0, 0, -1], [0, -1, 0, 0, 0, 0, -1]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    log = tmp_path_factory.mktemp("bridge") / "bridge.log"
    proc = start_bridge(log, f"suite:={TEST_SUITE}", "task_id:=0", "init_state_id:=0",
                        "mode:=lockstep", f"image_size:={TEST_IMAGE_SIZE}", "settle_steps:=2",
                        f"max_steps:={MAX_STEPS}", "republish_period_s:=0.5")
    probe = Probe()
    try:
        probe.spin_until(lambda: proc.poll() is not None or probe.statuses, 120,
                         "the first episode status")
        assert proc.poll() is None, f"bridge exited early:\n{log.read_text()[-3000:]}"
        yield probe, proc, log
    finally:
        probe.close()
        code = stop_bridge(proc)
        assert code == 0, f"bridge exit code {code}:\n{log.read_text()[-3000:]}"


def _image(probe: Probe, cam: str) -> np.ndarray:
    msg = probe.images[cam]
    assert (msg.encoding, msg.height, msg.width) == ("rgb8", TEST_IMAGE_SIZE, TEST_IMAGE_SIZE)
    return np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)


def test_first_observation_is_published_and_repeated_until_an_action(bridge) -> None:
    probe, _, _ = bridge
    probe.spin_until(lambda: len(probe.images) == 2 and probe.instructions, 10,
                     "both cameras and the instruction")
    assert probe.instructions[-1].startswith("pick up the black bowl")
    probe.spin_until(lambda: len(probe.statuses) >= 3, 5, "repeated step-0 status")
    first = probe.statuses[0]
    assert all(s.step == 0 and s.header.stamp == first.header.stamp for s in probe.statuses)
    assert (first.suite, first.max_steps, first.done) == (TEST_SUITE, MAX_STEPS, False)
    for cam in ("agentview", "wrist"):
        assert _image(probe, cam).std() > 10, f"{cam} image is blank"


def test_lockstep_actions_move_the_arm_as_commanded(bridge) -> None:
    probe, _, _ = bridge
    start = probe.pose_at(probe.last_status())
    wrist0 = _image(probe, "wrist").astype(int)
    for step in (1, 2, 3):
        status = probe.act(UP, expect_step=step)
    after_up = probe.pose_at(status)
    assert after_up[2] - start[2] > 0.015, f"+z moved z by {after_up[2] - start[2]:.4f} m"
    probe.spin_for(0.3)  # images are best-effort: let the newest frame arrive
    assert np.abs(_image(probe, "wrist").astype(int) - wrist0).mean() > 2, "images did not change"
    for step in (4, 5):
        status = probe.act(PLUS_X, expect_step=step)
    after_x = probe.pose_at(status)
    assert after_x[0] - after_up[0] > 0.005, f"+x moved x by {after_x[0] - after_up[0]:.4f} m"
    for step in (6, 7):
        status = probe.act(MINUS_Y, expect_step=step)
    after_y = probe.pose_at(status)
    assert after_y[1] - after_x[1] < -0.005, f"-y moved y by {after_y[1] - after_x[1]:.4f} m"


def test_malformed_actions_are_rejected_with_a_reason_and_no_step(bridge) -> None:
    probe, _, log = bridge
    before = probe.last_status().step
    probe.act([0.0] * 6, expect_step=None)
    probe.act([0, 0, float("nan"), 0, 0, 0, -1], expect_step=None)
    probe.spin_for(1.5)
    assert probe.last_status().step == before, "the sim stepped on a malformed action"
    for reason in ("action has 6 values, expected 7", "action has non-finite values at index [2]"):
        line = f"rejected action on vla/action: {reason}"
        probe.spin_until(lambda line=line: any(line in m for m in probe.bridge_log()), 5,
                         f"log {line!r}")
        assert line in log.read_text()
    probe.spin_until(lambda: any(kv.key == "rejected_actions" and kv.value == "2"
                                 for d in probe.diagnostics for kv in d.status[0].values),
                     5, "diagnostics counting 2 rejected actions")


def test_step_limit_ends_the_episode_with_a_summary(bridge) -> None:
    probe, _, log = bridge
    status = probe.act(UP, expect_step=MAX_STEPS)
    assert status.done and not status.success
    probe.spin_until(lambda: probe.summaries, 5, "the episode summary")
    summary = probe.summaries[-1]
    assert summary.steps == MAX_STEPS and not summary.success
    assert summary.path_length > 0.03 and summary.max_height > summary.min_height
    assert summary.mean_step_displacement == pytest.approx(summary.path_length / MAX_STEPS)
    probe.act(UP, expect_step=None)
    probe.spin_for(1.0)
    assert probe.last_status().step == MAX_STEPS
    assert "episode not running (state: done)" in log.read_text()


def test_reset_service_restores_the_init_state(bridge) -> None:
    probe, _, _ = bridge
    start = probe.pose_at(probe.statuses[0])
    probe.statuses.clear()
    response = probe.reset("", 0, 0)  # "" = the node's suite parameter
    assert response.success, response.message
    assert response.instruction.startswith("pick up the black bowl")
    probe.spin_until(lambda: probe.statuses and probe.statuses[-1].step == 0, 10, "status step 0")
    np.testing.assert_allclose(probe.pose_at(probe.statuses[-1]), start, atol=1e-6)
    status = probe.act(UP, expect_step=1)  # a fresh episode accepts actions again
    assert probe.pose_at(status)[2] > start[2]
    bad = probe.reset("libero_spatial", 12, 0)
    assert not bad.success and "task_id 12 out of range" in bad.message
