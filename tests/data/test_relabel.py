"""DAgger relabelling: every frame of a rollout gets the expert's action for that frame's state."""

from __future__ import annotations

import numpy as np
import pytest

from vla_steer_tools.datasets.instructions import load_wordings
from vla_steer_tools.datasets.lerobot_v3 import EpisodeFrames, LeRobotWriter, finalize, iter_episodes
from vla_steer_tools.datasets.relabel import relabel
from vla_steer_tools.datasets.state import expert_state_at, libero_state
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.expert.tasks import geometry_for
from vla_steer_tools.expert.waypoint_expert import DOWN_QUAT, ExpertSettings, WaypointExpert


def _rollout(n: int, privileged: bool = True) -> EpisodeFrames:
    rng = np.random.default_rng(3)
    ee = np.array([0.05, -0.1, 0.2]) + rng.normal(0, 0.02, (n, 3))
    fingers = np.tile([0.039, -0.039], (n, 1))
    vectors = {"observation.state": np.stack([libero_state(p, DOWN_QUAT, f) for p, f in zip(ee, fingers)]),
               "action": rng.uniform(-1, 1, (n, 7)).astype(np.float32)}
    if privileged:
        vectors.update({"privileged.object_pos": np.tile([0.05, -0.1, 0.009], (n, 1)),
                        "privileged.target_pos": np.tile([0.0, 0.26, -0.005], (n, 1)),
                        "privileged.ee_quat": np.tile(DOWN_QUAT, (n, 1)),
                        "privileged.finger_vel": np.zeros((n, 2))})
    return EpisodeFrames(images={"wrist": np.zeros((n, 16, 16, 3), np.uint8)}, vectors=vectors, task="pick it slowly",
                         meta={"suite": "libero_object", "task_id": 1, "speed": "slow", "height": "high", "success": False})


def test_relabelled_actions_are_the_experts_at_each_visited_state(tmp_path):
    LeRobotWriter(tmp_path / "roll").write_episode(0, _rollout(6))
    finalize(tmp_path / "roll")
    assert relabel(tmp_path / "roll", tmp_path / "out") == 1
    [ep] = list(iter_episodes(tmp_path / "out"))
    w = load_wordings()
    expert = WaypointExpert(geometry_for("libero_object", 1),
                            ExpertSettings(speed=w.speed_value("slow"), carry_height_m=w.height_value("high")))
    want = np.stack([expert.act(expert_state_at(ep.vectors, t)).action for t in range(6)])
    np.testing.assert_allclose(ep.vectors["action"], want, atol=1e-6)
    np.testing.assert_array_equal(ep.vectors["action.executed"], _rollout(6).vectors["action"])
    assert ep.meta["source"] == "relabelled" and ep.task == "pick it slowly"
    assert np.linalg.norm(ep.vectors["action"][0, :3]) <= w.speed_value("slow") + 1e-6  # the slow expert


def test_rollouts_without_privileged_state_are_refused(tmp_path):
    LeRobotWriter(tmp_path / "roll").write_episode(0, _rollout(3, privileged=False))
    with pytest.raises(ConfigError, match="privileged"):
        relabel(tmp_path / "roll", tmp_path / "out")


def test_training_keeps_relabelled_failures_and_drops_failed_demos(tmp_path):
    from vla_steer_tools.training.data import load_frames

    w = LeRobotWriter(tmp_path / "mix")
    failed_demo = _rollout(4)
    failed_demo.meta.update(source="expert")
    relabelled = _rollout(5)
    relabelled.meta.update(source="relabelled")
    w.write_episode(0, failed_demo)
    w.write_episode(1, relabelled)
    frames = load_frames([str(tmp_path / "mix")], ["wrist"], load_wordings(), "train", val_fraction=0.0)
    assert len(frames) == 5 and frames.episodes == [1]
