"""Record topics into a rosbag2 (MCAP) directory from inside a running graph, without rosbag2.

Subscriptions take the serialized bytes (`raw=True`) and hand them to the core's BagWriter, so
what is stored is exactly what went over the wire and any rosbag2 / rosbags reader decodes it.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Sequence

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from vla_steer_tools.analysis.bags import BagWriter

#: What the demo records: (topic, ROS type). Camera topics use sensor-data QoS.
DEFAULT_TOPICS: tuple[tuple[str, str], ...] = (
    ("/camera/agentview/image_raw", "sensor_msgs/msg/Image"),
    ("/joint_states", "sensor_msgs/msg/JointState"),
    ("/ee_pose", "geometry_msgs/msg/PoseStamped"),
    ("/instruction", "std_msgs/msg/String"),
    ("/vla/action", "std_msgs/msg/Float64MultiArray"),
    ("/vla/action_chunk", "vla_steer_msgs/msg/ActionChunk"),
    ("/vla/steering_state", "vla_steer_msgs/msg/SteeringState"),
    ("/vla/concept_activations", "vla_steer_msgs/msg/ConceptActivations"),
    ("/libero/episode_status", "vla_steer_msgs/msg/EpisodeStatus"),
    ("/libero/episode_summary", "vla_steer_msgs/msg/EpisodeSummary"),
)


def message_class(type_name: str) -> type:
    """"pkg/msg/Type" -> the generated Python class."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class BagRecorder(Node):
    """A node that writes every message on `topics` to a new bag at `path`."""

    def __init__(self, path: str | Path, topics: Sequence[tuple[str, str]] = DEFAULT_TOPICS, **kwargs) -> None:
        super().__init__("vla_bag_recorder", **kwargs)
        self._writer = BagWriter(path)
        self._lock = threading.Lock()
        self._closed = False
        reliable = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        for topic, type_name in topics:
            self._writer.add_topic(topic, type_name)
            qos = qos_profile_sensor_data if "image" in topic else reliable
            self.create_subscription(message_class(type_name), topic, self._callback(topic), qos, raw=True)
        self.get_logger().info(f"recording {len(topics)} topics to {path}")

    def _callback(self, topic: str):
        def write(data: bytes) -> None:
            with self._lock:
                if not self._closed:
                    self._writer.write(topic, self.get_clock().now().nanoseconds, data)

        return write

    @property
    def message_count(self) -> int:
        return self._writer.count

    def close(self) -> None:
        """Finish the bag (idempotent); call before reading it."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._writer.close()


def _parse_topic(text: str) -> tuple[str, str]:
    topic, _, type_name = text.partition(":")
    if not type_name or type_name.count("/") != 2:
        raise ValueError(f"--topic {text!r} must look like /name:pkg/msg/Type")
    return topic, type_name


def run_record(args) -> int:
    import contextlib

    import rclpy
    from rclpy.context import Context

    from .compose import running

    topics = [_parse_topic(t) for t in args.topic] or list(DEFAULT_TOPICS)
    context = Context()
    rclpy.init(context=context)
    try:
        recorder = BagRecorder(args.out, topics, context=context)
        print(f"recording {len(topics)} topics to {args.out} (Ctrl-C to stop)")
        with running([recorder], context, threads=2):
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait(args.duration if args.duration > 0 else None)
            recorder.close()
        print(f"wrote {recorder.message_count} messages; analyse with: vla-steer report {args.out}")
    finally:
        rclpy.try_shutdown(context=context)
    return 0


def register(sub) -> None:
    p = sub.add_parser("record", help="record topics to a rosbag2 (MCAP) without rosbag2 (pip-only installs)",
                       description="Like `ros2 bag record -s mcap`: stores the serialized messages as received. "
                       "Default topics: " + ", ".join(t for t, _ in DEFAULT_TOPICS))
    p.add_argument("out", help="new bag directory")
    p.add_argument("--topic", action="append", default=[], metavar="/NAME:PKG/msg/TYPE",
                   help="topic to record (repeatable; default: the demo's topics)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)")
    p.set_defaults(func=run_record)
