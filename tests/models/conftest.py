"""Tiny random checkpoints (official formats), written once per test session, and the policies
loaded from them through the public `load_policy` entry point."""

from __future__ import annotations

import pytest

from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint
from vla_steer_tools.models.registry import load_policy


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """Directory holding tiny-openvla/ and tiny-pi0/ for this session."""
    return tmp_path_factory.mktemp("tiny_checkpoints")


@pytest.fixture(scope="session")
def openvla_dir(tiny_dir):
    return ensure_tiny_checkpoint("openvla", tiny_dir)


@pytest.fixture(scope="session")
def pi0_dir(tiny_dir):
    return ensure_tiny_checkpoint("pi0", tiny_dir)


@pytest.fixture(scope="session")
def openvla_policy(openvla_dir):
    return load_policy("openvla", openvla_dir, device="cpu")


@pytest.fixture(scope="session")
def pi0_policy(pi0_dir):
    return load_policy("pi0", pi0_dir, device="cpu")
