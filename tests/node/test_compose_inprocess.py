"""The node built in-process (as the one-process demo composes it): parameter overrides + params
file, a MultiThreadedExecutor, lockstep pacing, SetSteering, and dry_run."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pytest

from .conftest import ROOT, Driver

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@contextmanager
def compose(real_images, **overrides) -> Iterator[tuple]:
    """PolicyNode from config/policy_libero.yaml + overrides, on a MultiThreadedExecutor, and a Driver."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from vla_policy.policy_node import PolicyNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = PolicyNode(context=ctx, params_file=str(ROOT / "config/policy_libero.yaml"),
                      parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    executor = MultiThreadedExecutor(num_threads=2, context=ctx)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    driver = Driver(real_images, name="compose_driver")
    try:
        node.autostart()  # policy_libero.yaml: autostart true
        assert node.lifecycle_state == "active"
        driver.wait_until_connected()
        driver.send_instruction()
        yield node, driver
    finally:
        executor.shutdown(timeout_sec=5.0)
        spin.join(timeout=5.0)
        node.destroy_node()
        ctx.try_shutdown()
        driver.close()


@pytest.fixture()
def composed(tiny_openvla, direction_dir, real_images, request):
    overrides = {"model.path": str(tiny_openvla), "steering.direction_dirs": [str(direction_dir)],
                 **getattr(request, "param", {})}
    with compose(real_images, **overrides) as pair:
        yield pair


def test_lockstep_sends_one_action_per_observation(composed):
    node, driver = composed
    assert node.get_parameter("output.lockstep").value is True  # from policy_libero.yaml
    for n in (1, 2, 3):
        driver.publish_inputs()
        driver.wait_for(lambda: len(driver.get("action")) >= n, 20.0, f"action {n}")
        time.sleep(0.4)  # no second action without a new observation
        assert len(driver.get("action")) == n
    driver.publish_inputs(cameras=("agentview",))  # one camera only: not a new observation
    time.sleep(0.6)
    assert len(driver.get("action")) == 3


def test_set_steering_service_and_parameter_sync(composed):
    from vla_steer_msgs.msg import SteeringConcept
    from vla_steer_msgs.srv import SetSteering

    node, driver = composed
    client = driver.node.create_client(SetSteering, "/vla_policy/set_steering")
    assert client.wait_for_service(timeout_sec=10.0)

    def call(**kwargs) -> SetSteering.Response:
        future = client.call_async(SetSteering.Request(**kwargs))
        return driver.wait_for(lambda: future.done() and future.result(), 10.0, "set_steering")

    bad = call(concepts=[SteeringConcept(name="fast", components=["backbone"], layers=[7], neurons=[0])], enabled=True)
    assert not bad.success and "7" in bad.message  # layer 7 does not exist in the 2-layer model
    ok = call(concepts=[SteeringConcept(name="fast", alpha=3.0)], enabled=True)
    assert ok.success and ok.state.enabled and ok.state.concepts[0].alpha == 3.0 and ok.state.random_weights
    assert node.get_parameter("steering.concepts").value == ["fast"]
    assert node.get_parameter("steering.enabled").value is True
    off = call(enabled=False)  # no concepts: keep them, switch off
    assert off.success and not off.state.enabled and off.state.concepts[0].name == "fast"
    driver.publish_inputs()
    chunk = driver.wait_for(lambda: driver.get("chunk"), 20.0, "a chunk")[0][1]
    assert not chunk.steered


@pytest.mark.parametrize("composed", [{"output.dry_run": True}], indirect=True)
def test_dry_run_publishes_chunks_but_never_commands(composed):
    node, driver = composed
    for _ in range(3):
        driver.publish_inputs()
        time.sleep(0.3)
    chunks = driver.wait_for(lambda: driver.get("chunk"), 20.0, "chunks in dry run")
    assert np.all(np.isfinite(np.asarray(chunks[0][1].data)))
    time.sleep(0.5)
    assert driver.get("action") == []


def test_pi0_chunks_execute_step_by_step_at_the_control_rate(tmp_path_factory, direction_dir, real_images):
    """Tiny Pi0 (horizon 10, LIBERO state from ee_pose + gripper_state): execute_steps rows of
    each chunk go out one per control tick, in order, then the next chunk's rows — whatever the
    inference timing (an early chunk waits: chunk_runner.py). Nothing here depends on how fast
    this machine is: the command rate itself is measured in bench/bench_chunk_rate.py."""
    from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint

    path = ensure_tiny_checkpoint("pi0", tmp_path_factory.mktemp("pi0"))
    # the LIBERO config's options are OpenVLA's; Pi0 LIBERO checkpoints need none
    with compose(real_images, **{"model.family": "pi0", "model.path": str(path), "model.options": "",
                                 "output.lockstep": False,
                                 "control_hz": 10.0, "chunk.execute_steps": 4, "steering.direction_dirs": [str(direction_dir)]}) as (
            node, driver):
        driver.start_stream(hz=20.0)
        driver.wait_for(lambda: len(driver.get("action")) >= 14, 30.0, "14 commands")
        driver.stop_stream()
    chunks = [np.asarray(m.data).reshape(m.horizon, m.action_dim) for _, m in driver.get("chunk")]
    assert all(c.shape == (10, 7) for c in chunks) and len(chunks) >= 14 / 4
    actions = [np.asarray(m.data) for _, m in driver.get("action")][:14]
    # each command is a row of a published chunk (Pi0's fixed noise + constant frames: equal chunks)
    rows = []
    for action in actions:
        hits = {r for chunk in chunks for r in range(10) if np.allclose(chunk[r], action, atol=1e-6)}
        assert len(hits) == 1, f"command matches rows {hits} of the chunks"
        rows.append(hits.pop())
    assert rows[:4] == [0, 1, 2, 3] and max(rows) <= 3, rows  # chunk.execute_steps = 4
    for r0, r1 in zip(rows, rows[1:]):
        assert r1 in (r0 + 1, 0), rows  # in order; a new chunk starts at its first row
        if r1 == 0:
            assert r0 == 3, rows  # a chunk is never cut short by an early one
