"""Fixtures for the policy node tests: the tiny real-format OpenVLA checkpoint, steering directions
that fit it, real photos as camera frames, params files, and a `Driver` that plays the robot/sim
side (cameras, instruction, joint states) and records what the node publishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CAMERAS = ("agentview", "wrist")


@pytest.fixture(scope="session")
def tiny_openvla(tmp_path_factory) -> Path:
    from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint

    return ensure_tiny_checkpoint("openvla", tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def direction_dir(tmp_path_factory) -> Path:
    """'fast' and 'slow' over disjoint neurons of the tiny model's last layer (128 wide)."""
    from vla_steer_tools.steering.directions import Direction, save_direction
    from vla_steer_tools.types import NeuronRef

    out = tmp_path_factory.mktemp("directions")
    for name, start in (("fast", 0), ("slow", 64)):
        neurons = tuple(NeuronRef("backbone", 1, i) for i in range(start, start + 10))
        save_direction(Direction(name, neurons, alpha=50.0, description=f"test {name}"), out / f"{name}.yaml")
    return out


@pytest.fixture(scope="session")
def real_images() -> dict[str, np.ndarray]:
    """A real photograph (matplotlib's sample data): full frame and a 'wrist' close-up, 224 px."""
    import matplotlib.cbook
    from PIL import Image

    photo = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    w, h = photo.size
    wrist = photo.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    return {"agentview": np.asarray(photo.resize((224, 224))), "wrist": np.asarray(wrist.resize((224, 224)))}


def write_params(path: Path, **overrides: Any) -> Path:
    """config/policy_libero.yaml with `overrides` ({"control_hz": 4.0, ...}) written to `path`."""
    data = yaml.safe_load((ROOT / "config/policy_libero.yaml").read_text())
    params = data["vla_policy"]["ros__parameters"]
    for name, value in overrides.items():
        *groups, leaf = name.split(".")
        node = params
        for g in groups:
            node = node[g]
        node[leaf] = value
    path.write_text(yaml.safe_dump(data))
    return path


class Driver:
    """The other side of the node, in its own rclpy context and executor thread."""

    def __init__(self, images: dict[str, np.ndarray], name: str = "test_driver") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float64MultiArray, String
        from vla_steer_msgs.msg import ActionChunk, ConceptActivations, SteeringState

        from vla_policy.conversions import rgb_to_image

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(f"{name}_{os.getpid()}", context=self.context)
        self.frames = {k: rgb_to_image(v) for k, v in images.items()}
        self.cams = {k: self.node.create_publisher(Image, f"camera/{k}/image_raw", qos_profile_sensor_data)
                     for k in CAMERAS}
        self.joints = self.node.create_publisher(JointState, "joint_states", 10)
        self.gripper = self.node.create_publisher(JointState, "gripper_state", 10)
        self.ee_pose = self.node.create_publisher(PoseStamped, "ee_pose", 10)
        self._pose = PoseStamped()
        self._pose.pose.position.z, self._pose.pose.orientation.w = 1.0, 1.0
        self.instruction = self.node.create_publisher(String, "instruction", latched)
        self.records: dict[str, list[tuple[float, Any]]] = {k: [] for k in
                                                             ("action", "chunk", "state", "activations", "diag")}
        self._lock = threading.Lock()
        for key, msg_type, topic, qos in (
            ("action", Float64MultiArray, "vla/action", 10), ("chunk", ActionChunk, "vla/action_chunk", 10),
            ("state", SteeringState, "vla/steering_state", latched),
            ("activations", ConceptActivations, "vla/concept_activations", 10),
            ("diag", DiagnosticArray, "diagnostics", 10),
        ):
            self.node.create_subscription(msg_type, topic, self._recorder(key), qos)
        self._String, self._JointState = String, JointState
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()
        self._stream: threading.Thread | None = None
        self._streaming = threading.Event()
        self.last_publish = 0.0

    def _recorder(self, key: str) -> Callable[[Any], None]:
        def record(msg: Any) -> None:
            with self._lock:
                self.records[key].append((time.monotonic(), msg))
        return record

    def get(self, key: str, since: float = 0.0) -> list[tuple[float, Any]]:
        with self._lock:
            return [r for r in self.records[key] if r[0] >= since]

    def wait_until_connected(self, timeout_s: float = 20.0) -> None:
        """Until the node subscribes to every input and publishes its outputs: best-effort frames
        sent before discovery completes are silently lost."""
        pubs = [*self.cams.values(), self.joints, self.gripper, self.ee_pose]
        self.wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs)
                      and self.node.count_publishers("vla/action_chunk") > 0, timeout_s, "discovery of the node")

    def send_instruction(self, text: str = "pick up the black bowl and place it on the plate") -> None:
        self.instruction.publish(self._String(data=text))

    def publish_inputs(self, cameras: tuple[str, ...] = CAMERAS) -> None:
        for k in cameras:
            self.cams[k].publish(self.frames[k])
        self.joints.publish(self._JointState(name=["j1", "j2"], position=[0.1, -0.2]))
        self.gripper.publish(self._JointState(name=["finger_l", "finger_r"], position=[0.04, -0.04]))
        self.ee_pose.publish(self._pose)
        self.last_publish = time.monotonic()

    def start_stream(self, hz: float = 10.0, cameras: tuple[str, ...] = CAMERAS) -> None:
        self.stop_stream()
        self._streaming.set()

        def loop() -> None:
            while self._streaming.is_set():
                self.publish_inputs(cameras)
                time.sleep(1.0 / hz)
        self._stream = threading.Thread(target=loop, daemon=True)
        self._stream.start()

    def stop_stream(self) -> None:
        self._streaming.clear()
        if self._stream is not None:
            self._stream.join(timeout=5.0)
            self._stream = None

    def wait_for(self, predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")

    def set_parameters(self, node_name: str, values: dict[str, Any], timeout_s: float = 10.0) -> list:
        """SetParameters from this process (what `ros2 param set` sends); returns the results."""
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, node_name)
        assert client.wait_for_services(timeout_sec=timeout_s), "parameter services not available"
        params = [Parameter(k, value=v) if not isinstance(v, tuple) else Parameter(k, v[0], v[1])
                  for k, v in values.items()]
        future = client.set_parameters(params)
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert future.done(), "no answer to set_parameters"
        return list(future.result().results)

    def close(self) -> None:
        self.stop_stream()
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()
        self._spin.join(timeout=5.0)


class NodeProcess:
    """`python -m vla_policy.policy_node --ros-args --params-file ...` with its log in a file."""

    def __init__(self, params_file: Path, log_path: Path) -> None:
        self.log_path = log_path
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vla_policy.policy_node", "--ros-args", "--params-file", str(params_file)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


class CountingPolicy:
    """A tiny core Policy (one real nn.Linear as its FFN site) whose action is the inference count,
    so tests can tell which observation produced which chunk."""

    def __new__(cls, delay_s: float = 0.0):
        import torch
        from torch import nn

        from vla_steer_tools.models.base import ModelAdapter
        from vla_steer_tools.policy import Policy
        from vla_steer_tools.types import ActionChunk

        class _Counting(Policy):
            action_space = "ee_delta_7d"

            def __init__(self) -> None:
                self.calls: list = []
                self._adapter = ModelAdapter("counting (RANDOM WEIGHTS)", {"backbone": [nn.Linear(8, 4)]},
                                             token_matrix=lambda: torch.zeros(16, 4), decode_token=str,
                                             random_weights=True)

            @property
            def adapter(self):
                return self._adapter

            def infer(self, observation):
                time.sleep(delay_s)
                self.calls.append(observation)
                return ActionChunk(np.full((1, 7), len(self.calls), np.float32), self.action_space)

        return _Counting()
