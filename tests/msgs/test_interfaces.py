"""vla_steer_msgs: the generated interfaces build, import, and cross process boundaries over DDS.

Each DDS test runs the other side in a separate Python process (spawned with the same
environment, so the same ROS_DOMAIN_ID and localhost-only discovery).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

import rclpy  # noqa: E402
import rclpy.executors  # noqa: E402

from vla_steer_msgs.msg import (  # noqa: E402
    ActionChunk,
    ConceptActivations,
    EpisodeStatus,
    EpisodeSummary,
    SteeringConcept,
    SteeringState,
)
from vla_steer_msgs.srv import ListConcepts, ResetEpisode, SetSteering  # noqa: E402

TIMEOUT_S = 30.0


def _concept() -> SteeringConcept:
    return SteeringConcept(
        name="fast",
        components=["backbone", "backbone", "action_expert"],
        layers=[3, 17, 2],
        neurons=[11, 1187, 5],
        alpha=8.0,
        mode=SteeringConcept.MODE_OVERRIDE,
        signs=[1.0, -1.0, 1.0],
        provenance="keyword search, projection smollm2-abc123",
    )


def test_fields_and_constants() -> None:
    c = _concept()
    assert (SteeringConcept.MODE_OVERRIDE, SteeringConcept.MODE_ADD, SteeringConcept.MODE_SCALE) == (
        "override",
        "add",
        "scale",
    )
    assert SteeringState.POSITION_PREFILL == "prefill"
    state = SteeringState(enabled=True, concepts=[c], position_policy="all", model_id="m", inference_count=3)
    assert state.concepts[0].neurons.tolist() == [11, 1187, 5]
    chunk = ActionChunk(horizon=2, action_dim=3, data=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], action_space="x")
    assert len(chunk.data) == chunk.horizon * chunk.action_dim
    act = ConceptActivations(concept_names=["fast"], mean_activation=[0.1], max_activation=[0.5], steered=[True])
    assert act.steered == [True]
    assert EpisodeStatus(step=4, max_steps=520).max_steps == 520
    assert EpisodeSummary(path_length=0.3).path_length == pytest.approx(0.3)
    assert SetSteering.Request(concepts=[c], enabled=True).enabled
    assert ListConcepts.Response(names=["a"], descriptions=["b"], neuron_counts=[3]).neuron_counts.tolist() == [3]
    assert ResetEpisode.Request(suite="libero_10", task_id=3).task_id == 3


def test_serialization_round_trip() -> None:
    from rclpy.serialization import deserialize_message, serialize_message

    state = SteeringState(enabled=True, concepts=[_concept()], position_policy="prefill", model_id="tiny")
    back = deserialize_message(serialize_message(state), SteeringState)
    assert back == state


def _run_child(code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.ros
def test_publish_subscribe_across_processes() -> None:
    """A subscriber in another process receives the exact SteeringState we publish."""
    child = _run_child(
        """
        import sys, rclpy
        from rclpy.qos import QoSProfile, DurabilityPolicy, ReliabilityPolicy
        from vla_steer_msgs.msg import SteeringState
        rclpy.init()
        node = rclpy.create_node("msgs_test_listener")
        got = []
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(SteeringState, "vla_test/steering_state", got.append, qos)
        print("READY", flush=True)
        import time
        end = time.monotonic() + 25
        while not got and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        if not got:
            print("TIMEOUT", flush=True); sys.exit(1)
        m = got[0]
        print("GOT", m.model_id, m.inference_count, m.concepts[0].name,
              list(m.concepts[0].layers), list(m.concepts[0].signs), m.position_policy, flush=True)
        node.destroy_node(); rclpy.shutdown()
        """
    )
    assert child.stdout.readline().strip() == "READY"
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("msgs_test_talker", context=context)
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        pub = node.create_publisher(SteeringState, "vla_test/steering_state", qos)
        pub.publish(
            SteeringState(enabled=True, concepts=[_concept()], position_policy="decode", model_id="tiny-openvla", inference_count=42)
        )
        out, _ = child.communicate(timeout=TIMEOUT_S)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert child.returncode == 0, out
    assert "GOT tiny-openvla 42 fast [3, 17, 2] [1.0, -1.0, 1.0] decode" in out, out


@pytest.mark.ros
def test_service_call_across_processes() -> None:
    """A SetSteering server in another process answers our request with the resulting state."""
    child = _run_child(
        """
        import rclpy
        from vla_steer_msgs.srv import SetSteering
        rclpy.init()
        node = rclpy.create_node("msgs_test_server")
        calls = []
        def handle(req, resp):
            calls.append(req)
            resp.success = req.enabled and all(c.alpha > 0 for c in req.concepts)
            resp.message = f"{len(req.concepts)} concept(s)"
            resp.state.enabled = req.enabled
            resp.state.concepts = req.concepts
            return resp
        node.create_service(SetSteering, "vla_test/set_steering", handle)
        print("READY", flush=True)
        import time
        end = time.monotonic() + 25
        while not calls and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        for _ in range(20):  # let the response go out
            rclpy.spin_once(node, timeout_sec=0.05)
        node.destroy_node(); rclpy.shutdown()
        """
    )
    assert child.stdout.readline().strip() == "READY"
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("msgs_test_client", context=context)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        client = node.create_client(SetSteering, "vla_test/set_steering")
        assert client.wait_for_service(timeout_sec=TIMEOUT_S), "service never appeared"
        future = client.call_async(SetSteering.Request(concepts=[_concept()], enabled=True))
        deadline = time.monotonic() + TIMEOUT_S
        while not future.done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert future.done(), "no response"
        resp = future.result()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    child.communicate(timeout=TIMEOUT_S)
    assert resp.success and resp.message == "1 concept(s)"
    assert resp.state.enabled and resp.state.concepts[0].neurons.tolist() == [11, 1187, 5]
