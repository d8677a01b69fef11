"""Bags written by the core's BagWriter read back exactly; traces and plots come out of them."""

from __future__ import annotations

import numpy as np
import pytest

from vla_steer_tools.analysis.bags import BagWriter, bag_topics, make_typestore, read_bag
from vla_steer_tools.analysis.plots import plot_trace
from vla_steer_tools.analysis.trace import load_trace
from vla_steer_tools.errors import ConfigError


def _write_synthetic_episode(path, store, n=40, on_at=20):
    """An episode whose end effector moves 1 mm/step, then 3 mm/step upward once steering is on."""
    Pose = store.types["geometry_msgs/msg/PoseStamped"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    Point = store.types["geometry_msgs/msg/Point"]
    Quat = store.types["geometry_msgs/msg/Quaternion"]
    PoseT = store.types["geometry_msgs/msg/Pose"]
    State = store.types["vla_steer_msgs/msg/SteeringState"]
    Concept = store.types["vla_steer_msgs/msg/SteeringConcept"]
    Acts = store.types["vla_steer_msgs/msg/ConceptActivations"]
    hdr = Header(stamp=Time(sec=0, nanosec=0), frame_id="world")
    concept = Concept(name="up", components=["backbone"], layers=np.array([1], dtype=np.uint32),
                      neurons=np.array([7], dtype=np.uint32), alpha=8.0, mode="override",
                      signs=np.array([], dtype=np.float64), provenance="test")
    z = 0.0
    with BagWriter(path, store) as bag:
        bag.add_topic("/ee_pose", "geometry_msgs/msg/PoseStamped")
        bag.add_topic("/vla/steering_state", "vla_steer_msgs/msg/SteeringState")
        bag.add_topic("/vla/concept_activations", "vla_steer_msgs/msg/ConceptActivations")
        for i in range(n):
            t = i * 100_000_000
            on = i >= on_at
            if i in (0, on_at):
                st = State(header=hdr, enabled=on, concepts=[concept] if on else [], position_policy="all",
                           model_id="tiny", random_weights=True, inference_count=np.uint64(i))
                bag.write("/vla/steering_state", t, store.serialize_cdr(st, "vla_steer_msgs/msg/SteeringState"))
            z += 0.003 if on else 0.001
            stamped = Header(stamp=Time(sec=i, nanosec=0), frame_id="world")
            pose = Pose(header=stamped, pose=PoseT(position=Point(x=0.0, y=0.0, z=z), orientation=Quat(x=0.0, y=0.0, z=0.0, w=1.0)))
            raw = store.serialize_cdr(pose, "geometry_msgs/msg/PoseStamped")
            bag.write("/ee_pose", t + 1, raw)
            if i == 0:  # the bridge re-publishes the reset observation (same stamp) until the first action
                bag.write("/ee_pose", t + 3, raw)
            act = Acts(header=hdr, inference_index=np.uint64(i), concept_names=["up"],
                       mean_activation=np.array([0.1 * i], dtype=np.float32),
                       max_activation=np.array([0.2 * i], dtype=np.float32), steered=np.array([on], dtype=bool))
            bag.write("/vla/concept_activations", t + 2, store.serialize_cdr(act, "vla_steer_msgs/msg/ConceptActivations"))


def test_round_trip_and_trace(tmp_path):
    store = make_typestore()
    bag = tmp_path / "ep"
    _write_synthetic_episode(bag, store)
    topics = bag_topics(bag)
    assert topics["/ee_pose"] == ("geometry_msgs/msg/PoseStamped", 41)  # incl. one re-published pose
    first = next(read_bag(bag, ["/vla/concept_activations"], store))
    assert list(first.msg.concept_names) == ["up"]

    trace = load_trace(bag)
    assert trace.ee_pos.shape == (40, 3)  # the repeat (same header stamp) is dropped
    assert trace.random_weights and trace.model_id == "tiny"
    assert [ev.enabled for ev in trace.steering] == [False, True]
    assert trace.steering_on_time() == pytest.approx(2.0, abs=1e-6)
    steps = np.diff(trace.ee_pos[:, 2])
    assert steps[:19] == pytest.approx(0.001) and steps[20:] == pytest.approx(0.003)
    assert trace.act_names == ("up",) and trace.act_mean[-1, 0] == pytest.approx(3.9, rel=1e-5)

    png = plot_trace(trace, tmp_path / "trace.png")
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_writer_refuses_existing_bag_and_unknown_type(tmp_path):
    (tmp_path / "exists").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        BagWriter(tmp_path / "exists")
    with BagWriter(tmp_path / "new") as bag, pytest.raises(ConfigError, match="unknown"):
        bag.add_topic("/x", "nope_msgs/msg/Nothing")


def test_read_rejects_non_bag(tmp_path):
    with pytest.raises(ConfigError, match="not a rosbag2"):
        list(read_bag(tmp_path))


def test_report_splits_at_steering_switch(tmp_path):
    from vla_steer_tools.analysis.report import format_report, write_report

    bag = tmp_path / "ep"
    _write_synthetic_episode(bag, make_typestore(), n=40, on_at=20)
    report, out = write_report(bag, tmp_path / "rep")
    assert report.before.mean_step_displacement == pytest.approx(0.001)
    assert report.after.mean_step_displacement == pytest.approx(0.003)
    assert report.before.steps == 19 and report.after.steps == 20
    text = format_report(report)
    assert "RANDOM WEIGHTS" in text and "up (alpha 8)" in text
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.txt", "trajectory.png"}
