"""Open-loop replay (issue 10): a recorded bag's observations through the mini-VLA under steering
variants; the unsteered variant is exactly the plain model, steered ones differ; the parquet reads back."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from libero_bag import INSTRUCTION, write_libero_bag  # noqa: E402

from vla_steer_tools.errors import ConfigError  # noqa: E402
from vla_steer_tools.replay.observations import camera_topics, read_episode  # noqa: E402
from vla_steer_tools.replay.outputs import RECORDED, read_replay  # noqa: E402
from vla_steer_tools.replay.pipeline import ReplaySetup, default_direction_dir, replay  # noqa: E402
from vla_steer_tools.replay.variants import UNSTEERED, plan_variants  # noqa: E402
from vla_steer_tools.steering.directions import DirectionLibrary  # noqa: E402


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    return write_libero_bag(tmp_path_factory.mktemp("replay") / "bag", n=3)


@pytest.fixture(scope="module")
def minivla():
    from vla_steer_tools.models.registry import load_policy

    return load_policy("minivla", "vla-steer/minivla-libero-object", device="cpu")


def test_observations_are_rebuilt_as_the_node_does(bag):
    ep = read_episode(bag, camera_topics(bag, ["agentview", "wrist"]))
    assert len(ep.observations) == 3  # the re-published reset observation counts once
    obs = ep.observations[1]
    assert obs.instruction == INSTRUCTION and set(obs.images) == {"agentview", "wrist"}
    assert obs.images["wrist"].shape == (64, 64, 3) and obs.images["wrist"].flags.writeable
    # ee xyz + axis-angle of (x=1, w=0) = pi about x + two finger positions, from the same stamp
    np.testing.assert_allclose(obs.state, [0, 0.01, 0.99, np.pi, 0, 0, 0.021, 0.021], atol=1e-6)
    np.testing.assert_array_equal(ep.stamps_ns, [0, 50_000_000, 100_000_000])
    np.testing.assert_allclose(ep.recorded_action_per_observation()[:, 2], -0.2)


def test_missing_camera_names_the_topics(bag):
    with pytest.raises(ConfigError, match="no image topic '/camera/front/image_raw'.*--camera front=TOPIC"):
        camera_topics(bag, ["front"])


def test_replay_variants_unsteered_equals_the_plain_model(bag, minivla, tmp_path):
    library = DirectionLibrary([default_direction_dir("minivla")])
    variants = plan_variants(library, ["fast"], [0, 16])
    assert [v.name for v in variants] == [UNSTEERED, "fast a=16"]  # alpha 0 folds into unsteered
    setup = ReplaySetup(bag=bag, out=tmp_path / "out")
    run, meta = replay(minivla, setup, variants, progress=False)
    ep = read_episode(bag, camera_topics(bag, ["agentview", "wrist"]))
    plain = np.stack([minivla.infer(o).actions for o in ep.observations])
    np.testing.assert_array_equal(run.predictions[UNSTEERED], plain)
    assert np.abs(run.predictions["fast a=16"] - plain).max() > 1e-3  # steering reaches the actions
    back = read_replay(setup.out)
    np.testing.assert_array_equal(back.chunks["fast a=16"], run.predictions["fast a=16"])
    np.testing.assert_allclose(back.recorded[:, 2], -0.2)
    np.testing.assert_array_equal(back.stamps_ns, ep.stamps_ns)
    assert RECORDED in meta["metrics"] and "fast a=16" in meta["comparisons"]
    assert (setup.out / "actions.png").stat().st_size > 10_000
