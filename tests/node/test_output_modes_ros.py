"""Issue 9, item 1 at the ROS level: in every output mode, a hostile model (NaN, inf, 1e300, far out
of range) and hostile joint states (NaN, inf, 7 rad past the limit) never get a non-finite or
out-of-limits command onto the wire — holds included. Every received message is checked; nothing
here depends on timing (the test waits for a number of messages, then checks all of them)."""

from __future__ import annotations

import itertools
import math
import threading
import time

import numpy as np
import pytest

from .conftest import CountingPolicy, Driver

pytestmark = [pytest.mark.ros, pytest.mark.slow]

TOL = 1e-6
JOINT_ACTIONS = [[math.nan] * 7, [math.inf, 0, 0, 0, 0, 0, 0], [1e300] * 7, [7.0, -7.0, 0, 0, 0, 0, 0],
                 [0.5, -0.5, 0, 0, 0, 0, 0], [0.15, -0.15, 0, 0, 0, 0, 0]]
EE_ACTIONS = [[math.nan] * 7, [1e300] * 7, [-math.inf, 0, 0, 0, 0, 0, 0], [1.0, 1.0, 1.0, 0, 0, 0, 1.0],
              [0.1, 0.0, -0.1, 0.0, 0.0, 0.2, -1.0]]
JOINT_STATES = [[0.1, -0.2], [math.nan, 0.0], [0.1, math.inf], [7.0, 0.0], [0.1, -0.2], [0.1, -0.2]]
LIMITS = {"limits.joint_position_min_rad": [-1.0, -1.0], "limits.joint_position_max_rad": [1.0, 1.0],
          "limits.max_joint_vel_rad_s": 1.0, "control_hz": 10.0, "limits.max_ee_step_m": 0.05,
          "limits.workspace_min_m": [-1.0, -1.0, 0.0], "limits.workspace_max_m": [1.0, 1.0, 2.0],
          "output.ee_linear_m_per_unit": 0.05, "output.lockstep": False, "output.dry_run": False,
          "watchdog.max_input_age_s": 30.0}


def _hostile_policy(space: str):
    from vla_steer_tools.types import ActionChunk

    policy = CountingPolicy()
    actions = itertools.cycle(JOINT_ACTIONS if space.startswith("joint") else EE_ACTIONS)
    policy.action_space = space
    policy.infer = lambda obs: (policy.calls.append(obs), ActionChunk(np.array([next(actions)], np.float64), space))[1]
    return policy


def _subscribe(driver: Driver, mode: str) -> list:
    from geometry_msgs.msg import TwistStamped
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    from vla_policy.commands import OUTPUTS

    topic, _ = OUTPUTS[mode]
    msg_type = {"joint_trajectory": JointTrajectory, "joint_position": Float64MultiArray,
                "ee_twist": TwistStamped, "ee_delta": Float64MultiArray}[mode]
    received: list = []
    driver.node.create_subscription(msg_type, topic, received.append, 50)
    return received


def _check(mode: str, msgs: list) -> None:
    previous = None
    for msg in msgs:
        if mode.startswith("joint"):
            values = np.asarray(msg.points[0].positions if mode == "joint_trajectory" else msg.data)
            assert values.shape == (2,) and np.all(np.isfinite(values)), values
            assert np.all(np.abs(values) <= 1.0 + TOL), values
            if previous is not None:
                assert np.all(np.abs(values - previous) <= 0.1 + TOL), (previous, values)
            previous = values
        elif mode == "ee_delta":
            values = np.asarray(msg.data)
            assert values.shape == (7,) and np.all(np.isfinite(values)), values
            assert np.linalg.norm(values[:3] * 0.05) <= 0.05 + TOL
        else:
            t = msg.twist
            linear = np.array([t.linear.x, t.linear.y, t.linear.z])
            assert np.all(np.isfinite(linear)) and np.all(np.isfinite([t.angular.x, t.angular.y, t.angular.z]))
            assert np.linalg.norm(linear * 0.1) <= 0.05 + TOL


@pytest.mark.parametrize("mode", ["joint_trajectory", "joint_position", "ee_twist", "ee_delta"])
def test_no_unsafe_command_reaches_the_wire(mode, real_images, direction_dir, tmp_path):
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState

    from vla_policy.policy_node import PolicyNode

    from .conftest import write_params

    space = "joint_position_7d" if mode.startswith("joint") else "ee_delta_7d"
    policy = _hostile_policy(space)
    params = write_params(tmp_path / "params.yaml", **{**LIMITS, "steering.direction_dirs": [str(direction_dir)]})
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = PolicyNode(context=ctx, params_file=str(params), policy=policy,
                      parameter_overrides=[Parameter("output.mode", value=mode)])
    executor = MultiThreadedExecutor(num_threads=2, context=ctx)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    driver = Driver(real_images, name=f"modes_driver_{mode}")
    received = _subscribe(driver, mode) if mode != "ee_delta" else None
    stop = threading.Event()
    try:
        node.autostart()
        driver.wait_until_connected()
        driver.send_instruction()
        pose = PoseStamped()
        pose.pose.position.z, pose.pose.orientation.w = 1.0, 1.0

        def stream() -> None:
            for joints in itertools.cycle(JOINT_STATES):
                if stop.is_set():
                    return
                for key, pub in driver.cams.items():
                    pub.publish(driver.frames[key])
                driver.joints.publish(JointState(name=["j1", "j2"], position=joints))
                driver.gripper.publish(JointState(name=["l", "r"], position=[0.04, -0.04]))
                driver.ee_pose.publish(pose)
                time.sleep(0.05)

        streamer = threading.Thread(target=stream, daemon=True)
        streamer.start()
        msgs = (lambda: received) if received is not None else (lambda: [m for _, m in driver.get("action")])
        driver.wait_for(lambda: len(msgs()) >= 12 and len(policy.calls) >= 2 * len(JOINT_ACTIONS), 180.0,
                        f"12 {mode} messages")
        stop.set()
        streamer.join(5.0)
        _check(mode, list(msgs()))
    finally:
        stop.set()
        executor.shutdown(timeout_sec=5.0)
        spin.join(timeout=5.0)
        node.destroy_node()
        ctx.try_shutdown()
        driver.close()
