"""Realtime mode over DDS (bridge subprocess) and in-process construction for composition."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from .conftest import TEST_IMAGE_SIZE, TEST_SUITE
from .rosprobe import Probe, start_bridge, stop_bridge

pytestmark = pytest.mark.ros


@pytest.mark.slow
def test_realtime_steps_at_a_fixed_rate_and_idles_without_actions(tmp_path) -> None:
    log = tmp_path / "bridge.log"
    proc = start_bridge(log, f"suite:={TEST_SUITE}", "mode:=realtime", "rate_hz:=10",
                        "realtime_idle_action:=zero", f"image_size:={TEST_IMAGE_SIZE}",
                        "settle_steps:=2", "max_steps:=400")
    probe = Probe()
    try:
        probe.spin_until(lambda: proc.poll() is not None or probe.statuses, 120, "first status")
        assert proc.poll() is None, log.read_text()[-3000:]
        # no actions: the sim still advances (zero action), the arm stays put
        first = probe.last_status()
        probe.spin_for(1.5)
        idle = probe.last_status()
        assert idle.step - first.step >= 3, f"only {idle.step - first.step} steps in 1.5 s at 10 Hz"
        drift = probe.pose_at(idle) - probe.pose_at(first)
        assert np.abs(drift).max() < 0.005, f"arm drifted {drift} m with no action"
        # a stream of +z actions raises the arm
        start_z = probe.pose_at(idle)[2]
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            probe.act([0, 0, 1, 0, 0, 0, -1], expect_step=None)
            probe.spin_for(0.1)
        moving = probe.last_status()
        assert probe.pose_at(moving)[2] - start_z > 0.02
        # actions stop: "zero" idle action, the arm comes to rest. Counted in sim steps, not wall
        # time: on a loaded CPU the sim may run below rate_hz and drain queued actions late.
        stopped = probe.last_status().step
        probe.spin_until(lambda: probe.last_status().step >= stopped + 10, 60, "10 idle steps")
        rest = probe.last_status()
        probe.spin_until(lambda: probe.last_status().step >= rest.step + 10, 60, "10 more idle steps")
        still = probe.pose_at(probe.last_status()) - probe.pose_at(rest)
        assert np.abs(still).max() < 0.005, f"arm kept moving {still} m over 10 idle steps after actions stopped"
    finally:
        probe.close()
        assert stop_bridge(proc) == 0, log.read_text()[-3000:]


def test_node_constructs_in_process_with_overrides() -> None:
    """What a composed demo does: no params file, overrides win over config/libero_sim.yaml."""
    from libero_sim_bridge.bridge_node import LiberoBridgeNode
    from libero_sim_bridge.params import load_defaults

    context = Context()
    rclpy.init(context=context)
    try:
        node = LiberoBridgeNode(context=context, parameter_overrides=[
            Parameter("task_id", value=3), Parameter("start_episode", value=False),
            Parameter("image_size", value=96)])
        try:
            defaults = load_defaults()
            assert node.params.task_id == 3 and node.params.image_size == 96
            assert node.params.suite == defaults["suite"]
            assert node.get_name() == "libero"
            services = {name for name, _ in node.get_service_names_and_types_by_node("libero", "/")}
            assert "/libero/reset_episode" in services
            bad = node.set_parameters([Parameter("suite", value="libero_100")])[0]
            assert not bad.successful and "libero_10" in bad.reason
            ro = node.set_parameters([Parameter("image_size", value=128)])[0]
            assert not ro.successful
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
