"""One LIBERO env per test session (creating one costs 5-10 s and about 2 GB)."""

from __future__ import annotations

import pytest

#: Small images keep rendering cheap on a CPU (a step is then about 50 ms with fast render).
TEST_IMAGE_SIZE = 64
TEST_SUITE = "libero_spatial"


@pytest.fixture(scope="session")
def libero_env():
    from libero_sim_bridge.env import LiberoEnv

    env = LiberoEnv(TEST_SUITE, 0, 0, image_size=TEST_IMAGE_SIZE, fast_render=True,
                    settle_steps=2)
    env.reset()
    yield env
    env.close()
