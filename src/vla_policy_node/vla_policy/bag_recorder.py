"""Record topics into a rosbag2 (MCAP) directory from inside a running graph, without rosbag2.

Subscriptions take the serialized bytes (`raw=True`) and hand them to the core's BagWriter, so
what is stored is exactly what went over the wire and any rosbag2 / rosbags reader decodes it.

Like `ros2 bag record`, a topic is subscribed once a publisher is seen, with a QoS adapted to the
publishers' offers (reliable / transient-local only where every publisher offers it, so nothing is
incompatible and latched messages are received), and the publishers' offered profiles go into the
bag, so `ros2 bag play` republishes the latched instruction and steering state as transient-local.
The bag is flushed every `flush_period_s`: a recorder that is SIGKILLed loses at most that much,
and `vla-steer bag reindex` recovers the rest. SIGTERM and SIGHUP close the bag like Ctrl-C.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.topic_endpoint_info import TopicEndpointInfo
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from vla_steer_tools.analysis.bags import BagWriter

#: What the demo records: (topic, ROS type).
DEFAULT_TOPICS: tuple[tuple[str, str], ...] = (
    ("/camera/agentview/image_raw", "sensor_msgs/msg/Image"),
    ("/camera/wrist/image_raw", "sensor_msgs/msg/Image"),  # open-loop replay needs every camera the policy saw
    ("/joint_states", "sensor_msgs/msg/JointState"),
    ("/gripper_state", "sensor_msgs/msg/JointState"),  # with /ee_pose: the LIBERO state the policy saw
    ("/ee_pose", "geometry_msgs/msg/PoseStamped"),
    ("/instruction", "std_msgs/msg/String"),
    ("/vla/action", "std_msgs/msg/Float64MultiArray"),
    ("/vla/action_chunk", "vla_steer_msgs/msg/ActionChunk"),
    ("/vla/steering_state", "vla_steer_msgs/msg/SteeringState"),
    ("/vla/concept_activations", "vla_steer_msgs/msg/ConceptActivations"),
    ("/libero/episode_status", "vla_steer_msgs/msg/EpisodeStatus"),
    ("/libero/episode_summary", "vla_steer_msgs/msg/EpisodeSummary"),
)

#: Subscription queue depth: small for images (each can be MBs), generous for everything else.
IMAGE_DEPTH, DEFAULT_DEPTH = 5, 200


def message_class(type_name: str) -> type:
    """"pkg/msg/Type" -> the generated Python class."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def _qos_time(duration: Duration) -> QosTime:
    sec, nsec = divmod(int(duration.nanoseconds), 1_000_000_000)
    return QosTime(sec, nsec)


def offered_qos(profile: QoSProfile) -> Qos:
    """A publisher's profile as rosbags' Qos (same policy numbers as rmw); infinite durations
    become {sec: 9223372036, nsec: 854775807}, rosbag2's encoding of RMW_DURATION_INFINITE."""
    return Qos(QosHistory(int(profile.history)), int(profile.depth), QosReliability(int(profile.reliability)),
               QosDurability(int(profile.durability)), _qos_time(profile.deadline), _qos_time(profile.lifespan),
               QosLiveliness(int(profile.liveliness)), _qos_time(profile.liveliness_lease_duration),
               bool(profile.avoid_ros_namespace_conventions))


def adapted_request(publishers: Sequence[TopicEndpointInfo], depth: int) -> QoSProfile:
    """The subscription QoS rosbag2 requests (Rosbag2QoS::adapt_request_to_offers): compatible with
    every publisher, and transient-local when all of them latch."""
    offers = [p.qos_profile for p in publishers]
    reliable = all(q.reliability == ReliabilityPolicy.RELIABLE for q in offers)
    latched = all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offers)
    return QoSProfile(depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class BagRecorder(Node):
    """A node that writes every message on `topics` to a new bag at `path`."""

    def __init__(self, path: str | Path, topics: Sequence[tuple[str, str]] = DEFAULT_TOPICS,
                 flush_period_s: float = 1.0, discovery_period_s: float = 0.2, **kwargs) -> None:
        super().__init__("vla_bag_recorder", **kwargs)
        self._writer = BagWriter(path)
        self._lock = threading.Lock()
        self._closed = False
        self._waiting = dict(topics)  # topic -> type: no publisher seen yet, not subscribed
        self._subscribe_discovered()
        self.create_timer(discovery_period_s, self._subscribe_discovered)
        self.create_timer(flush_period_s, self.flush)
        self.get_logger().info(f"recording {len(topics)} topics to {path}")

    def _subscribe_discovered(self) -> None:
        """Subscribe to each waiting topic that now has publishers, recording their offered QoS."""
        for topic, type_name in list(self._waiting.items()):
            publishers = [p for p in self.get_publishers_info_by_topic(topic) if p.topic_type == type_name]
            if not publishers:
                continue
            with self._lock:
                if self._closed:
                    return
                self._writer.add_topic(topic, type_name, [offered_qos(p.qos_profile) for p in publishers])
            depth = IMAGE_DEPTH if type_name.endswith("/Image") else DEFAULT_DEPTH
            self.create_subscription(message_class(type_name), topic, self._callback(topic),
                                     adapted_request(publishers, depth), raw=True)
            del self._waiting[topic]

    def _callback(self, topic: str) -> Callable[[bytes], None]:
        def write(data: bytes) -> None:
            with self._lock:
                if not self._closed:
                    self._writer.write(topic, self.get_clock().now().nanoseconds, data)

        return write

    @property
    def message_count(self) -> int:
        return self._writer.count

    def flush(self) -> None:
        """Hand everything received so far to the file (survives a SIGKILL of this process)."""
        with self._lock:
            if not self._closed:
                self._writer.flush()

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


#: Signals that end a recording cleanly (bag closed, metadata.yaml written): Ctrl-C, `kill`, a
#: closed terminal. SIGKILL cannot be caught: `vla-steer bag reindex` recovers such a bag.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_on_signals(stop: threading.Event) -> None:
    """Make STOP_SIGNALS set `stop` (main thread only) instead of killing the process mid-write."""
    def handler(signum: int, _frame: object) -> None:
        print(f"{signal.Signals(signum).name}: closing the bag", file=sys.stderr, flush=True)
        stop.set()

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def run_record(args) -> int:
    import rclpy
    from rclpy.context import Context

    from .compose import running

    topics = [_parse_topic(t) for t in args.topic] or list(DEFAULT_TOPICS)
    stop = threading.Event()
    stop_on_signals(stop)
    context = Context()
    rclpy.init(context=context)
    try:
        recorder = BagRecorder(args.out, topics, flush_period_s=args.flush_period, context=context)
        print(f"recording {len(topics)} topics to {args.out} (Ctrl-C to stop)", flush=True)
        with running([recorder], context, threads=2):
            stop.wait(args.duration if args.duration > 0 else None)
            recorder.close()
        print(f"wrote {recorder.message_count} messages; analyse with: vla-steer report {args.out}", flush=True)
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
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C / SIGTERM)")
    p.add_argument("--flush-period", type=float, default=1.0,
                   help="seconds between flushes to disk: at most this much is lost if the recorder is SIGKILLed")
    p.set_defaults(func=run_record)
