"""Resuming `data generate` is safe only with the same plan: a dataset from other arguments is refused
(no simulator needed: the episodes on disk carry their specs in their metadata)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from libero_sim_bridge.demos import GenerateOptions, check_resumable, plan_episodes
from vla_steer_tools.datasets.instructions import load_wordings
from vla_steer_tools.datasets.lerobot_v3 import EpisodeFrames, LeRobotWriter
from vla_steer_tools.errors import ConfigError

TASK = ("libero_object", 1)
TEXTS = {TASK: "pick up the cream cheese and place it in the basket"}


def _plan(**kw):
    args = dict(init_states=[0, 1], speeds=["slow", "fast"], heights=["low", "high"], noise=0.15,
                noise_fraction=0.5, seed=0)
    args.update(kw)
    return plan_episodes([TASK], args["init_states"], args["speeds"], args["heights"], args["noise"],
                         args["noise_fraction"], args["seed"], load_wordings(), TEXTS)


def _write(root, spec, image_size=32):
    ep = EpisodeFrames(images={"wrist": np.zeros((2, 4, 4, 3), np.uint8)},
                       vectors={"action": np.zeros((2, 7), np.float32)}, task=spec.instruction,
                       meta={**asdict(spec), "success": True, "steps": 2, "image_size": image_size})
    LeRobotWriter(root).write_episode(spec.index, ep)


def test_the_same_plan_resumes(tmp_path):
    specs = _plan()
    _write(tmp_path, specs[1])
    check_resumable(_plan(), tmp_path, GenerateOptions(image_size=32))  # no error


@pytest.mark.parametrize("change", [dict(seed=1), dict(speeds=["fast", "slow"]), dict(init_states=[5, 1]),
                                    dict(noise=0.3, noise_fraction=1.0), dict(init_states=["r0", 1])])
def test_a_different_plan_is_refused_naming_the_episode_and_field(tmp_path, change):
    specs = _plan()
    for s in specs:
        _write(tmp_path, s)
    with pytest.raises(ConfigError, match=r"holds episode \d+ of a different plan .*on disk"):
        check_resumable(_plan(**change), tmp_path, GenerateOptions(image_size=32))


def test_another_image_size_is_refused(tmp_path):
    specs = _plan()
    _write(tmp_path, specs[0], image_size=64)
    with pytest.raises(ConfigError, match="image_size"):
        check_resumable(specs, tmp_path, GenerateOptions(image_size=32))


@pytest.mark.parametrize("bad", [dict(noise=-0.1), dict(noise=float("nan")), dict(noise_fraction=1.5)])
def test_bad_noise_settings_are_clear_errors(bad):
    with pytest.raises(ConfigError, match="noise"):
        _plan(**bad)


@pytest.mark.parametrize("bad", [dict(max_steps=0), dict(grasp_jitter_m=-0.01), dict(cameras=())])
def test_bad_options_are_clear_errors(bad):
    with pytest.raises(ConfigError):
        GenerateOptions(**bad)
