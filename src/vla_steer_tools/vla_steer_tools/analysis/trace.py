"""An episode as plain arrays, extracted from a recorded bag.

Everything the report and the plots need, decoupled from rosbags' message objects so that the
metrics and plots can be tested on hand-made arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bags import read_bag

EE_POSE_TOPIC = "/ee_pose"
ACTION_TOPIC = "/vla/action"
CHUNK_TOPIC = "/vla/action_chunk"
STATE_TOPIC = "/vla/steering_state"
ACTIVATIONS_TOPIC = "/vla/concept_activations"


def _stamp_s(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


@dataclass
class SteeringEvent:
    """Steering as announced by the policy node at time t_s (bag receive time)."""

    t_s: float
    enabled: bool
    concepts: tuple[str, ...]
    alphas: tuple[float, ...]
    model_id: str
    random_weights: bool


@dataclass
class EpisodeTrace:
    """Time series of one run; times are bag receive times in seconds from the first message."""

    ee_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,)
    ee_pos: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (N, 3) metres
    action_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (M,)
    actions: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))  # (M, 7)
    inference_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,)
    steering: list[SteeringEvent] = field(default_factory=list)
    act_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (J,)
    act_names: tuple[str, ...] = ()
    act_mean: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (J, C)

    def steering_on_time(self) -> float | None:
        """First time steering was enabled with at least one concept, else None."""
        for ev in self.steering:
            if ev.enabled and ev.concepts:
                return ev.t_s
        return None

    @property
    def model_id(self) -> str:
        return self.steering[-1].model_id if self.steering else ""

    @property
    def random_weights(self) -> bool:
        return any(ev.random_weights for ev in self.steering)


def load_trace(bag: str | Path) -> EpisodeTrace:
    """Read the topics the demo records into an EpisodeTrace."""
    ee_t, ee, act_t, acts, inf, steer = [], [], [], [], [], []
    a_t, a_rows, a_names = [], [], None
    t0 = None
    last_pose_stamp = None
    topics = [EE_POSE_TOPIC, ACTION_TOPIC, CHUNK_TOPIC, STATE_TOPIC, ACTIVATIONS_TOPIC]
    for m in read_bag(bag, topics):
        t0 = m.stamp_ns if t0 is None else t0
        t = (m.stamp_ns - t0) * 1e-9
        if m.topic == EE_POSE_TOPIC:
            stamp = _stamp_s(m.msg.header)
            if stamp == last_pose_stamp:  # a re-published observation (the bridge repeats the reset one)
                continue
            last_pose_stamp = stamp
            p = m.msg.pose.position
            ee_t.append(t)
            ee.append((p.x, p.y, p.z))
        elif m.topic == ACTION_TOPIC:
            act_t.append(t)
            acts.append(np.asarray(m.msg.data, dtype=float))
        elif m.topic == CHUNK_TOPIC:
            inf.append(m.msg.inference_time)
        elif m.topic == STATE_TOPIC:
            steer.append(
                SteeringEvent(
                    t, bool(m.msg.enabled), tuple(c.name for c in m.msg.concepts),
                    tuple(float(c.alpha) for c in m.msg.concepts), m.msg.model_id, bool(m.msg.random_weights),
                )
            )
        elif m.topic == ACTIVATIONS_TOPIC and len(m.msg.concept_names):
            names = tuple(m.msg.concept_names)
            if a_names is None:
                a_names = names
            if names == a_names:
                a_t.append(t)
                a_rows.append(np.asarray(m.msg.mean_activation, dtype=float))
    return EpisodeTrace(
        ee_t=np.asarray(ee_t), ee_pos=np.asarray(ee, dtype=float).reshape(-1, 3),
        action_t=np.asarray(act_t), actions=np.asarray(acts, dtype=float).reshape(len(acts), -1) if acts else np.zeros((0, 7)),
        inference_s=np.asarray(inf), steering=_dedupe(steer),
        act_t=np.asarray(a_t), act_names=a_names or (), act_mean=np.asarray(a_rows).reshape(len(a_rows), -1) if a_rows else np.zeros((0, 0)),
    )


def _dedupe(events: list[SteeringEvent]) -> list[SteeringEvent]:
    """Keep only state changes (the node also republishes at 1 Hz)."""
    out: list[SteeringEvent] = []
    for ev in events:
        if not out or (ev.enabled, ev.concepts, ev.alphas) != (out[-1].enabled, out[-1].concepts, out[-1].alphas):
            out.append(ev)
    return out
