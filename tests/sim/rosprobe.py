"""Helpers for the bridge tests: start the bridge as a subprocess and talk to it from a probe node
(the scripted policy) in this process, every wait bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import Log
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray, String

from vla_steer_msgs.msg import EpisodeStatus, EpisodeSummary
from vla_steer_msgs.srv import ResetEpisode


def start_bridge(log_path: Path, *params: str) -> subprocess.Popen:
    """`python -m libero_sim_bridge.bridge_node --ros-args -p ...` with its output in log_path."""
    args = [sys.executable, "-m", "libero_sim_bridge.bridge_node", "--ros-args"]
    for p in params:
        args += ["-p", p]
    log = open(log_path, "w")  # noqa: SIM115 - closed by stop_bridge via the process
    env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)


def stop_bridge(proc: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """SIGINT (what Ctrl-C sends), then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


class Probe:
    """A scripted policy: publishes vla/action, records what the bridge publishes."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node("scripted_policy", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.statuses: list[EpisodeStatus] = []
        self.summaries: list[EpisodeSummary] = []
        self.poses: list[PoseStamped] = []
        self.images: dict[str, Image] = {}
        self.instructions: list[str] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.rosout: list[Log] = []
        latched = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        n = self.node
        n.create_subscription(EpisodeStatus, "libero/episode_status", self.statuses.append, 50)
        n.create_subscription(EpisodeSummary, "libero/episode_summary", self.summaries.append,
                              latched)
        n.create_subscription(PoseStamped, "ee_pose", self.poses.append, 50)
        n.create_subscription(String, "instruction", lambda m: self.instructions.append(m.data),
                              latched)
        n.create_subscription(DiagnosticArray, "diagnostics", self.diagnostics.append, 10)
        n.create_subscription(Log, "/rosout", self.rosout.append, 100)
        for cam in ("agentview", "wrist"):
            n.create_subscription(Image, f"camera/{cam}/image_raw",
                                  lambda m, cam=cam: self.images.__setitem__(cam, m),
                                  qos_profile_sensor_data)
        self.action_pub = n.create_publisher(Float64MultiArray, "vla/action", 10)
        self.reset_client = n.create_client(ResetEpisode, "/libero/reset_episode")

    def spin_until(self, pred: Callable[[], bool], timeout_s: float, what: str) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if pred():
                return
            self.executor.spin_once(timeout_sec=0.05)
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def bridge_log(self, level: int = Log.WARN) -> list[str]:
        """Messages the bridge node logged at `level` or above (from /rosout)."""
        return [m.msg for m in self.rosout if m.name == "libero" and m.level >= level]

    def last_status(self) -> EpisodeStatus | None:
        return self.statuses[-1] if self.statuses else None

    def pose_at(self, status: EpisodeStatus) -> np.ndarray:
        """The ee position published with a status (same header stamp)."""
        self.spin_until(lambda: any(p.header.stamp == status.header.stamp for p in self.poses),
                        5, "the ee_pose of a status")
        p = next(p for p in reversed(self.poses) if p.header.stamp == status.header.stamp)
        return np.array([p.pose.position.x, p.pose.position.y, p.pose.position.z])

    def act(self, values: list[float], expect_step: int | None,
            timeout_s: float = 20) -> EpisodeStatus | None:
        """Publish one action; if expect_step is given, wait for the status of that step."""
        self.action_pub.publish(Float64MultiArray(data=[float(v) for v in values]))
        if expect_step is None:
            return None
        self.spin_until(lambda: self.last_status() is not None
                        and self.last_status().step == expect_step, timeout_s,
                        f"episode status step {expect_step}")
        return self.last_status()

    def reset(self, suite: str, task_id: int, init_state_id: int, timeout_s: float = 120):
        assert self.reset_client.wait_for_service(timeout_sec=30), "no reset_episode service"
        future = self.reset_client.call_async(ResetEpisode.Request(
            suite=suite, task_id=task_id, init_state_id=init_state_id))
        self.spin_until(future.done, timeout_s, "reset_episode response")
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
