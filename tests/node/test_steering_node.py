"""The node's steering surface over real service and parameter calls (issue 9, item 4): the
service writes back every steering.* parameter, explicit neurons keep parameters usable, one alpha
range, broken direction files are listed, the state names its first inference."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

from .conftest import ROOT

pytestmark = [pytest.mark.ros]


@pytest.fixture(scope="module")
def library(tmp_path_factory, direction_dir):
    """The test directions plus two unreadable files (they used to kill the node at start)."""
    import shutil

    out = tmp_path_factory.mktemp("library")
    for p in direction_dir.iterdir():
        shutil.copy(p, out / p.name)
    (out / "corrupt.yaml").write_text("name: [oops\n")
    (out / "nan.yaml").write_text("name: nan\nalpha: .nan\nneurons: [[backbone, 0, 1]]\n")
    return out


@contextmanager
def _node(tiny_openvla, library) -> Iterator[tuple[Any, Any]]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from vla_policy.policy_node import PolicyNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    overrides = {"model.path": str(tiny_openvla), "steering.direction_dirs": [str(library)]}
    node = PolicyNode(context=ctx, params_file=str(ROOT / "config/policy_libero.yaml"),
                      parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    client = rclpy.create_node("steering_test_client", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    executor.add_node(client)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        assert node.wait_until_ready(120.0)
        yield node, client
    finally:
        executor.shutdown(timeout_sec=5.0)
        spin.join(timeout=5.0)
        client.destroy_node()
        node.destroy_node()
        ctx.try_shutdown()


@pytest.fixture(scope="module")
def running(tiny_openvla, library):
    with _node(tiny_openvla, library) as pair:
        yield pair


def _call(client, srv_type, name: str, request):
    c = client.create_client(srv_type, name)
    assert c.wait_for_service(timeout_sec=30.0)
    done = threading.Event()
    future = c.call_async(request)
    future.add_done_callback(lambda _f: done.set())
    assert done.wait(30.0), f"no answer from {name}"
    client.destroy_client(c)
    return future.result()


def _steer(client, concepts, enabled=True):
    from vla_steer_msgs.srv import SetSteering

    return _call(client, SetSteering, "/vla_policy/set_steering", SetSteering.Request(concepts=concepts, enabled=enabled))


def _concept(name, alpha=0.0, mode="", neurons=()):
    from vla_steer_msgs.msg import SteeringConcept

    return SteeringConcept(name=name, alpha=alpha, mode=mode, components=["backbone"] * len(neurons),
                           layers=[n[0] for n in neurons], neurons=[n[1] for n in neurons])


def _params(node) -> dict[str, Any]:
    names = ("steering.enabled", "steering.concepts", "steering.alpha", "steering.mode")
    return {n: node.get_parameter(n).value for n in names}


def _set(node, **values):
    from rclpy.parameter import Parameter

    return node.set_parameters([Parameter(k.replace("__", "."), value=v) for k, v in values.items()])


def test_service_writes_back_alpha_and_mode(running):
    node, client = running
    response = _steer(client, [_concept("fast", 8.0, "add")])
    assert response.success, response.message
    assert _params(node) == {"steering.enabled": True, "steering.concepts": ["fast"],
                             "steering.alpha": 8.0, "steering.mode": "add"}
    # a later parameter set keeps them (it used to put alpha back to the parameter's old value)
    assert all(r.successful for r in _set(node, steering__enabled=True))
    state = _steer(client, []).state  # enabled only: report the state
    assert [(c.name, c.alpha, c.mode) for c in state.concepts] == [("fast", 8.0, "add")]
    assert response.message == f"applies from inference {response.state.inference_count}"


def test_explicit_neurons_then_parameters_still_work(running):
    node, client = running
    response = _steer(client, [_concept("custom", 5.0, "scale", neurons=((1, 3), (1, 4)))])
    assert response.success, response.message
    assert node.get_parameter("steering.concepts").value == ["custom"]
    for values in ({"steering__alpha": 7.0}, {"steering__enabled": False}):
        results = _set(node, **values)
        assert all(r.successful for r in results), [r.reason for r in results]
    state = _steer(client, [], enabled=False).state
    assert not state.enabled and state.concepts[0].name == "custom" and state.concepts[0].alpha == 7.0


@pytest.mark.parametrize("alpha", [1e39, float("nan"), float("inf"), -1000.5])
def test_one_alpha_range(running, alpha):
    node, client = running
    before = _params(node)
    for concept in (_concept("fast", alpha), _concept("custom2", alpha, neurons=((0, 1),))):
        response = _steer(client, [concept])
        assert not response.success and "alpha" in response.message
    assert _params(node) == before
    assert not all(r.successful for r in _set(node, steering__alpha=alpha))


def test_model_checks_and_broken_files(running):
    from vla_steer_msgs.srv import ListConcepts

    node, client = running
    response = _steer(client, [_concept("custom3", 5.0, neurons=((99, 1),))])
    assert not response.success and "layer 99 out of range" in response.message
    listing = _call(client, ListConcepts, "/vla_policy/list_concepts", ListConcepts.Request())
    described = dict(zip(listing.names, listing.descriptions))
    assert {"fast", "slow"} <= set(listing.names)
    assert "not valid YAML" in described["corrupt.yaml"] and "alpha must be finite" in described["nan.yaml"]


def test_explicit_concepts_survive_cleanup_and_configure(running):
    """The parameters still name the explicit concept after cleanup: configure must not fail on it,
    and it must stay switchable through parameters (runs last: it reloads the model)."""
    from rclpy.lifecycle import TransitionCallbackReturn

    node, client = running
    assert _steer(client, [_concept("custom9", 4.0, neurons=((0, 2),))]).success
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node._config_error
    assert node.get_parameter("steering.concepts").value == ["custom9"]
    assert all(r.successful for r in _set(node, steering__enabled=False))
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
