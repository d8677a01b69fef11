"""The node's control logic on a fake clock, without spinning (issue 9, items 1-3): lifecycle
transitions, holds, stale observations, failing inferences, diagnostics and throttled echoes.

The node is built in its own rclpy context but never spun: the test calls its callbacks and
`_tick()` itself, with a fake monotonic clock, and waits for the inference thread with
`wait_idle()` (an event, not a duration). Publishers are replaced by recorders.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import pytest

from .conftest import CountingPolicy, write_params

pytestmark = pytest.mark.ros


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Recorder:
    """Stands in for a publisher."""

    def __init__(self) -> None:
        self.msgs: list[Any] = []

    def publish(self, msg: Any) -> None:
        self.msgs.append(msg)


class LogRecorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str):
        return lambda text, **_: self.lines.append((level, text))


@contextmanager
def built(tmp_path, policy=None, clock=None, **params) -> Iterator[Any]:
    import rclpy

    from vla_policy.policy_node import PolicyNode

    defaults = {"output.lockstep": False, "output.dry_run": False, "autostart": False,
                "steering.direction_dirs": [str(tmp_path / "directions")], "model.path": str(tmp_path / "no_model")}
    (tmp_path / "directions").mkdir(exist_ok=True)
    path = write_params(tmp_path / "params.yaml", **{**defaults, **params})
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = PolicyNode(context=ctx, params_file=str(path), policy=policy, clock=clock or FakeClock())
    node._cmd_pub, node._diag_pub, node._chunk_pub = Recorder(), Recorder(), Recorder()
    try:
        yield node
    finally:
        node.destroy_node()
        ctx.try_shutdown()


def feed(node, *, instruction: str = "pick up the bowl", joints=(0.1, -0.2)) -> None:
    """One full set of inputs (both cameras, joint states, ee pose, gripper) at the node's clock."""
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from vla_policy.conversions import rgb_to_image

    frame = rgb_to_image(np.zeros((224, 224, 3), np.uint8))
    for key in ("agentview", "wrist"):
        node._image_cb(key)(frame)
    node._on_joint_states(JointState(name=["j1", "j2"], position=list(joints)))
    node._on_gripper(JointState(name=["l", "r"], position=[0.04, -0.04]))
    pose = PoseStamped()
    pose.pose.position.z, pose.pose.orientation.w = 1.0, 1.0
    node._on_ee_pose(pose)
    if instruction is not None:
        node._on_instruction(String(data=instruction))


def step(node) -> None:
    """One control tick, then the inference it asked for (if any) to completion."""
    node._tick(from_timer=True)
    if node._worker is not None:
        assert node._worker.wait_idle(30.0)


def diag(node) -> tuple[int, str]:
    """The diagnostics the node publishes now (its 1 Hz timer does the same)."""
    node._publish_diagnostics()
    status = node._diag_pub.msgs[-1].status[0]
    return status.level, status.message


def _ok(level) -> bool:
    from diagnostic_msgs.msg import DiagnosticStatus

    return level == DiagnosticStatus.OK


def _level(name: str):
    from diagnostic_msgs.msg import DiagnosticStatus

    return getattr(DiagnosticStatus, name)


# ---------------------------------------------------------------- lifecycle (item 3)
def test_a_failed_configure_keeps_the_node_unconfigured_and_says_why(tmp_path):
    from vla_policy.policy_node import AutostartError, FAILURE

    with built(tmp_path) as node:  # model.path does not exist
        assert node.lifecycle_state == "unconfigured"
        assert node.trigger_configure() == FAILURE
        assert node.lifecycle_state == "unconfigured" and node._policy is None
        level, message = diag(node)
        assert level == _level("ERROR") and "configure failed" in message and "no_model" in message
        node._p = dataclasses.replace(node._p, autostart=True)
        with pytest.raises(AutostartError, match="no_model"):
            node.autostart()


def test_configure_activate_deactivate_cleanup(tmp_path):
    from vla_policy.policy_node import SUCCESS

    policy = CountingPolicy()
    with built(tmp_path, policy, **{"output.mode": "ee_twist"}) as node:
        feed(node)
        step(node)
        assert node._cmd_pub.msgs == [] and policy.calls == []  # unconfigured: nothing runs
        assert node.trigger_configure() == SUCCESS and node.lifecycle_state == "inactive"
        assert any(layer._forward_pre_hooks for layer in policy.adapter.layers("backbone"))  # steering hooks
        step(node)
        assert node._cmd_pub.msgs == [] and policy.calls == []  # inactive: nothing is commanded
        assert _ok(diag(node)[0]) and "inactive" in diag(node)[1]
        assert node.trigger_activate() == SUCCESS
        step(node)  # asks for inference 1
        step(node)  # sends its step
        assert len(node._cmd_pub.msgs) == 1 and node._cmd_pub.msgs[0].twist.linear.x != 0.0
        assert diag(node) == (_level("OK"), "running")
        assert node.trigger_deactivate() == SUCCESS
        hold = node._cmd_pub.msgs[-1]
        assert len(node._cmd_pub.msgs) == 2 and hold.twist.linear.x == 0.0  # deactivate: one hold
        step(node)
        assert len(node._cmd_pub.msgs) == 2
        assert node.trigger_cleanup() == SUCCESS and node.lifecycle_state == "unconfigured"
        assert node._policy is None and node._worker is None
        assert not any(layer._forward_pre_hooks for layer in policy.adapter.layers("backbone"))  # hooks gone


# ---------------------------------------------------------------- holds and the gate (items 1, 2)
def _active(node) -> None:
    from vla_policy.policy_node import SUCCESS

    assert node.trigger_configure() == SUCCESS and node.trigger_activate() == SUCCESS


def test_a_command_from_a_stale_observation_is_never_sent(tmp_path):
    """A 20 s inference (the 100 kB-instruction case): its command is refused, the node holds
    and the diagnostics say why, instead of "running"."""
    clock, policy = FakeClock(), CountingPolicy()
    infer = policy.infer

    def slow(obs):
        clock.t += 20.0
        return infer(obs)

    policy.infer = slow
    with built(tmp_path, policy, clock, **{"output.mode": "ee_twist", "watchdog.max_observation_age_s": 1.0}) as node:
        _active(node)
        feed(node)
        step(node)  # inference: 20 s pass
        feed(node)  # inputs are fresh again, but the chunk is from 20 s ago
        step(node)
        twists = [m.twist for m in node._cmd_pub.msgs]
        assert twists and all(t.linear.x == 0.0 and t.angular.z == 0.0 for t in twists), "only holds"
        level, message = diag(node)
        assert level == _level("WARN") and "observation 20.00 s old" in message
        policy.infer = infer  # a fast model again: commands resume
        feed(node)
        step(node)  # the chunk computed during step 2 is 20 s old too: refused
        step(node)
        assert node._cmd_pub.msgs[-1].twist.linear.x != 0.0 and _ok(diag(node)[0])


def test_a_failing_inference_holds_at_once_and_diagnostics_escalate(tmp_path):
    policy = CountingPolicy()
    infer = policy.infer
    policy.infer = lambda obs: infer(obs) if obs.instruction != "explode" else (_ for _ in ()).throw(
        ValueError("state has non-finite values"))
    with built(tmp_path, policy, **{"output.mode": "ee_twist"}) as node:
        _active(node)
        feed(node)
        step(node)
        step(node)
        assert len(node._cmd_pub.msgs) == 1
        feed(node, instruction="explode")
        node._tick(from_timer=True)  # sends the step computed before; asks for an inference: it fails
        node._worker.wait_idle(30.0)
        # the hold went out from the failure callback itself, before any further tick
        assert node._cmd_pub.msgs[-1].twist.linear.x == 0.0
        failed_at = len(node._cmd_pub.msgs) - 1
        level, message = diag(node)
        assert level == _level("WARN") and "non-finite" in message
        for _ in range(3):
            step(node)
        level, message = diag(node)
        assert level == _level("ERROR") and "in a row failed" in message
        assert all(m.twist.linear.x == 0.0 for m in node._cmd_pub.msgs[failed_at:])


def test_non_finite_actions_are_an_error_and_never_a_command(tmp_path):
    from vla_steer_tools.types import ActionChunk

    policy = CountingPolicy()
    policy.infer = lambda obs: ActionChunk(np.full((1, 7), np.nan, np.float32), "ee_delta_7d")
    with built(tmp_path, policy, **{"output.mode": "ee_delta"}) as node:
        _active(node)
        feed(node)
        for _ in range(3):
            step(node)
        assert node._cmd_pub.msgs == []  # ee_delta: silence is the hold
        level, message = diag(node)
        assert level == _level("ERROR") and "non-finite actions" in message


def test_nan_joint_states_with_an_ee_output_hold_within_one_tick(tmp_path):
    """Issue 9: NaN joint states + ee output: inferences failed, no hold, diagnostics OK."""
    policy = CountingPolicy()
    with built(tmp_path, policy, **{"output.mode": "ee_twist", "state.source": "joint_states"}) as node:
        _active(node)
        feed(node)
        step(node)
        step(node)
        sent = len(node._cmd_pub.msgs)
        calls = len(policy.calls)
        feed(node, joints=(math.nan, 0.0))
        step(node)
        assert node._cmd_pub.msgs[-1].twist.linear.x == 0.0 and len(node._cmd_pub.msgs) == sent + 1
        assert len(policy.calls) == calls  # no inference on a faulty reading
        level, message = diag(node)
        assert level == _level("WARN") and "joint_states: non-finite" in message


def test_joint_hold_is_the_last_safe_command_never_the_sensor(tmp_path):
    from vla_steer_tools.types import ActionChunk

    policy = CountingPolicy()
    policy.action_space = "joint_position_7d"
    policy.infer = lambda obs: ActionChunk(np.array([[0.15, -0.15, 0, 0, 0, 0, 0]], np.float32), "joint_position_7d")
    params = {"output.mode": "joint_position", "limits.joint_position_min_rad": [-1.0, -1.0],
              "limits.joint_position_max_rad": [1.0, 1.0], "limits.max_joint_vel_rad_s": 1.0,
              "control_hz": 10.0}
    with built(tmp_path, policy, **params) as node:
        _active(node)
        feed(node)
        step(node)
        step(node)
        [first] = node._cmd_pub.msgs
        assert np.allclose(first.data, [0.15, -0.2 + 0.05])  # rate-limited from the measured joints
        for bad in ((math.nan,) * 2, (0.1, math.inf), (7.0, 0.0)):
            feed(node, joints=bad)
            step(node)
        for msg in node._cmd_pub.msgs[1:]:
            assert np.all(np.isfinite(msg.data)) and max(map(abs, msg.data)) <= 1.0
            assert list(msg.data) == list(first.data) or np.all(np.abs(np.subtract(msg.data, first.data)) <= 0.1)


def test_going_live_after_a_dry_run_limits_the_first_command_from_the_arm_not_the_unsent_ones(tmp_path):
    """Dry run computes commands but sends none: the arm stays where it is. Switching to live must
    rate-limit the first command from the measured joints; the unsent commands had walked 0.5 rad
    towards the target, and the first live command would have jumped by that much."""
    from rclpy.parameter import Parameter

    from vla_steer_tools.types import ActionChunk

    policy = CountingPolicy()
    policy.action_space = "joint_position_7d"
    policy.infer = lambda obs: ActionChunk(np.array([[0.15, -0.15, 0, 0, 0, 0, 0]], np.float32), "joint_position_7d")
    params = {"output.mode": "joint_position", "output.dry_run": True, "limits.joint_position_min_rad": [-1.0, -1.0],
              "limits.joint_position_max_rad": [1.0, 1.0], "limits.max_joint_vel_rad_s": 1.0, "control_hz": 10.0}
    arm = (-0.5, 0.5)
    with built(tmp_path, policy, **params) as node:
        _active(node)
        for _ in range(6):
            feed(node, joints=arm)
            step(node)
        assert node._cmd_pub.msgs == []  # dry run: nothing sent
        node.set_parameters([Parameter("output.dry_run", value=False)])
        feed(node, joints=arm)
        step(node)
        step(node)
        first = node._cmd_pub.msgs[0]
        assert np.allclose(first.data, [-0.4, 0.4])  # one 0.1 rad step from where the arm is


# ---------------------------------------------------------------- echoes (item 2)
def test_instruction_echoes_are_truncated_and_throttled(tmp_path):
    """280 instructions in 3 s gave 266 INFO lines; a 100 kB one was accepted."""
    from std_msgs.msg import String

    clock = FakeClock()
    with built(tmp_path, CountingPolicy(), clock, **{"instruction.max_chars": 200}) as node:
        log = LogRecorder()
        node.get_logger = lambda: log
        for i in range(280):
            clock.t += 3.0 / 280
            node._on_instruction(String(data=f"instruction number {i} " + "y" * (i % 7) * 50))
        node._on_instruction(String(data="z" * 100_000))
        accepted = [t for level, t in log.lines if level == "info"]
        rejected = [t for level, t in log.lines if level == "warning"]
        assert len(accepted) <= 4 and len(rejected) <= 4, log.lines  # one a second, each kind, over 3 s
        assert all(len(text) < 400 for _, text in log.lines)
        assert any("suppressed" in text for _, text in log.lines[1:])
        assert node._inputs.instruction != "z" * 100_000
        assert any("instruction: rejected an instruction of 100000 characters" in r
                   for r in node._inputs.stale(clock.t))


def test_non_finite_logits_are_an_error_at_once(tmp_path):
    policy = CountingPolicy()
    policy.infer = lambda obs: (_ for _ in ()).throw(FloatingPointError("non-finite logits at action token 0"))
    with built(tmp_path, policy, **{"output.mode": "ee_twist"}) as node:
        _active(node)
        feed(node)
        step(node)
        level, message = diag(node)
        assert level == _level("ERROR") and "non-finite logits" in message
        assert [m.twist.linear.x for m in node._cmd_pub.msgs] == [0.0]  # held at once
