"""A recorded bag as the observations the policy saw: images, instruction and state per camera frame.

Open-loop replay feeds a model exactly what the robot's policy was fed, so the observations are
rebuilt the way the policy node builds them (vla_policy/inputs.py): one observation per camera
frame of the first camera, every other input the newest one whose header stamp is not later than
that frame's (the LIBERO bridge stamps all of a step's messages alike; a real robot's streams are
matched by time). A re-published frame (same stamp, the bridge repeats the reset observation) is
one observation. Read with `rosbags` through analysis/bags.py, so no ROS install is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..analysis.bags import bag_topics, read_bag
from ..datasets.state import quat_to_axis_angle  # the one LIBERO state convention
from ..errors import ConfigError, ObservationError
from ..types import Observation

INSTRUCTION_TOPIC = "/instruction"
JOINT_TOPIC = "/joint_states"
EE_POSE_TOPIC = "/ee_pose"
GRIPPER_TOPIC = "/gripper_state"
ACTION_TOPIC = "/vla/action"

#: How the state vector is made (the node's `state.source`).
STATE_SOURCES: tuple[str, ...] = ("auto", "ee_pose_gripper", "joint_states", "none")

#: Image encodings understood -> channels (the node's conversions.IMAGE_ENCODINGS).
ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}


def image_to_rgb(msg: Any) -> np.ndarray:
    """A decoded sensor_msgs/Image (rosbags) as uint8 (H, W, 3) RGB; ObservationError if malformed."""
    channels = ENCODINGS.get(msg.encoding)
    if channels is None:
        raise ObservationError(f"image encoding {msg.encoding!r} not supported; valid: {', '.join(ENCODINGS)}")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    if h == 0 or w == 0 or step < w * channels or data.size != step * h:
        raise ObservationError(f"malformed image: {w}x{h}, step {step}, {data.size} bytes")
    pixels = data.reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    if msg.encoding == "bgr8":
        pixels = pixels[:, :, ::-1]
    elif msg.encoding == "mono8":
        pixels = np.repeat(pixels, 3, axis=2)
    return np.array(pixels, dtype=np.uint8, order="C")  # owns writable memory (torch warns on read-only)


def _stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


@dataclass
class _Series:
    """One input's messages in bag order: header stamps (ns) and values."""

    stamps: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    def add(self, stamp: int, value: Any) -> None:
        if self.stamps and stamp == self.stamps[-1]:
            return  # a re-published message
        self.stamps.append(stamp)
        self.values.append(value)

    def at(self, stamp: int) -> Any | None:
        """The newest value stamped at or before `stamp` (None if there is none)."""
        i = int(np.searchsorted(np.asarray(self.stamps, dtype=np.int64), stamp, side="right")) - 1
        return self.values[i] if i >= 0 else None


@dataclass(frozen=True)
class RecordedEpisode:
    """What replay needs from a bag.

    observations: one per frame of the first camera, in time order.
    stamps_ns: each observation's camera header stamp.
    bag_times_ns: when each observation's frame reached the recorder.
    actions / action_times_ns: the commands recorded on /vla/action (M, D) with their receive
    times; empty when the bag has none.
    """

    observations: tuple[Observation, ...]
    stamps_ns: np.ndarray
    bag_times_ns: np.ndarray
    actions: np.ndarray
    action_times_ns: np.ndarray
    cameras: Mapping[str, str]
    state_source: str

    def recorded_action_per_observation(self) -> np.ndarray:
        """(N, D): the first recorded command after each observation arrived (NaN where none did
        before the next observation): the action the robot actually executed for it."""
        n = len(self.observations)
        dim = self.actions.shape[1] if self.actions.size else 7
        out = np.full((n, dim), np.nan)
        if not self.actions.size:
            return out
        idx = np.searchsorted(self.action_times_ns, self.bag_times_ns, side="right")
        ends = np.append(self.bag_times_ns[1:], np.iinfo(np.int64).max)
        for i, j in enumerate(idx):
            if j < len(self.action_times_ns) and self.action_times_ns[j] <= ends[i]:
                out[i] = self.actions[j]
        return out


def camera_topics(bag: str | Path, keys: Sequence[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Camera key -> image topic: `overrides` first, else /camera/<key>/image_raw; clear error if absent."""
    topics = bag_topics(bag)
    out = {}
    for key in keys:
        topic = (overrides or {}).get(key, f"/camera/{key}/image_raw")
        if topic not in topics:
            images = sorted(t for t, (typ, _) in topics.items() if typ == "sensor_msgs/msg/Image")
            raise ConfigError(f"bag {bag} has no image topic {topic!r} for camera {key!r}; its image topics: "
                              f"{', '.join(images) or 'none'} (map one with --camera {key}=TOPIC)")
        out[key] = topic
    return out


def resolve_state_source(bag: str | Path, source: str) -> str:
    """'auto' -> ee_pose_gripper if the bag has /ee_pose and /gripper_state, else joint_states, else none."""
    if source not in STATE_SOURCES:
        raise ConfigError(f"state source {source!r}; valid: {', '.join(STATE_SOURCES)}")
    topics = bag_topics(bag)
    if source == "auto":
        if EE_POSE_TOPIC in topics and GRIPPER_TOPIC in topics:
            return "ee_pose_gripper"
        return "joint_states" if JOINT_TOPIC in topics else "none"
    needed = {"ee_pose_gripper": (EE_POSE_TOPIC, GRIPPER_TOPIC), "joint_states": (JOINT_TOPIC,), "none": ()}[source]
    missing = [t for t in needed if t not in topics]
    if missing:
        raise ConfigError(f"state source {source!r} needs topics {', '.join(missing)}, which bag {bag} lacks")
    return source


def read_episode(bag: str | Path, cameras: Mapping[str, str], state_source: str = "auto",
                 instruction: str | None = None) -> RecordedEpisode:
    """Read `bag` into observations. cameras: key -> topic (see `camera_topics`); instruction
    replaces the recorded one when given."""
    state_source = resolve_state_source(bag, state_source)
    frames = {key: _Series() for key in cameras}
    frame_bag_time: dict[int, int] = {}
    pose, grip, joints, texts = _Series(), _Series(), _Series(), _Series()
    actions, action_t = [], []
    topic_to_key = {topic: key for key, topic in cameras.items()}
    first_topic = next(iter(cameras.values()))
    wanted = [*cameras.values(), INSTRUCTION_TOPIC, JOINT_TOPIC, EE_POSE_TOPIC, GRIPPER_TOPIC, ACTION_TOPIC]
    present = bag_topics(bag)
    for m in read_bag(bag, [t for t in wanted if t in present]):
        if m.topic in topic_to_key:
            stamp = _stamp_ns(m.msg)
            frames[topic_to_key[m.topic]].add(stamp, image_to_rgb(m.msg))
            if m.topic == first_topic:
                frame_bag_time.setdefault(stamp, m.stamp_ns)
        elif m.topic == INSTRUCTION_TOPIC:
            texts.add(m.stamp_ns, str(m.msg.data))
        elif m.topic == EE_POSE_TOPIC:
            p, q = m.msg.pose.position, m.msg.pose.orientation
            pose.add(_stamp_ns(m.msg), np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w]))
        elif m.topic == GRIPPER_TOPIC:
            grip.add(_stamp_ns(m.msg), np.asarray(m.msg.position, dtype=np.float64))
        elif m.topic == JOINT_TOPIC:
            joints.add(_stamp_ns(m.msg), np.asarray(m.msg.position, dtype=np.float64))
        elif m.topic == ACTION_TOPIC:
            actions.append(np.asarray(m.msg.data, dtype=np.float64))
            action_t.append(m.stamp_ns)
    if instruction is None and not texts.values:
        raise ConfigError(f"bag {bag} has no {INSTRUCTION_TOPIC} message; pass --instruction TEXT")
    observations, stamps, bag_times = [], [], []
    for stamp in frames[next(iter(cameras))].stamps:
        images = {key: series.at(stamp) for key, series in frames.items()}
        state = _state(state_source, stamp, pose, grip, joints)
        if any(v is None for v in images.values()) or state is None:
            continue  # an input the policy needs had not arrived yet: the node would hold too
        t_bag = frame_bag_time[stamp]
        text = instruction if instruction is not None else (texts.at(t_bag) or texts.values[0])
        observations.append(Observation(images=images, instruction=text, state=state.astype(np.float32),
                                        stamp_s=stamp * 1e-9))
        stamps.append(stamp)
        bag_times.append(t_bag)
    if not observations:
        raise ConfigError(f"bag {bag}: no complete observation (cameras {dict(cameras)}, state {state_source})")
    return RecordedEpisode(tuple(observations), np.asarray(stamps, dtype=np.int64), np.asarray(bag_times, dtype=np.int64),
                           np.asarray(actions, dtype=np.float64).reshape(len(actions), -1) if actions else np.zeros((0, 7)),
                           np.asarray(action_t, dtype=np.int64), dict(cameras), state_source)


def _state(source: str, stamp: int, pose: _Series, grip: _Series, joints: _Series) -> np.ndarray | None:
    if source == "none":
        return np.zeros(0)
    if source == "joint_states":
        return joints.at(stamp)
    p, g = pose.at(stamp), grip.at(stamp)
    if p is None or g is None:
        return None
    return np.concatenate([p[:3], quat_to_axis_angle(p[3:]), g])  # (6 + fingers,), LIBERO's state
