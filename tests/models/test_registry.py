"""The family registry, the fixture cache and the `vla-steer fixtures` command."""

from __future__ import annotations

import json

import pytest
import torch

from vla_steer_tools.cli.main import main
from vla_steer_tools.errors import CheckpointError, ConfigError, UnknownChoiceError
from vla_steer_tools.fixtures.tiny_checkpoints import FIXTURE_MARKER, ensure_tiny_checkpoint, is_fixture
from vla_steer_tools.models.registry import FAMILIES, load_policy


def test_unknown_family_lists_valid_ones():
    with pytest.raises(UnknownChoiceError, match="did you mean 'openvla'.*valid: minivla, openvla, pi0, pi0fast"):
        load_policy("open_vla", "x")
    assert set(FAMILIES) == {"minivla", "openvla", "pi0", "pi0fast"}


def test_unknown_option_and_missing_path(openvla_dir, tmp_path):
    with pytest.raises(ConfigError, match="not supported by model family 'openvla'.*num_steps"):
        load_policy("openvla", openvla_dir, device="cpu", num_steps=3)
    with pytest.raises(CheckpointError, match="not a directory and not a hub id"):
        load_policy("openvla", tmp_path / "nowhere" / "deep")
    with pytest.raises(CheckpointError, match="no config.json"):
        load_policy("pi0", tmp_path)
    with pytest.raises(UnknownChoiceError, match="dtype 'int8'.*bf16"):
        load_policy("openvla", openvla_dir, device="cpu", dtype="int8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_a_config_error(openvla_dir):
    with pytest.raises(ConfigError, match="device 'cuda:0' requested but CUDA is not available"):
        load_policy("openvla", openvla_dir, device="cuda:0")


def test_hub_id_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="openvla/openvla-7b.*HF_HUB_OFFLINE"):
        load_policy("openvla", "openvla/openvla-7b")


def test_ensure_is_idempotent(openvla_dir, tiny_dir):
    before = (openvla_dir / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_checkpoint("openvla", tiny_dir) == openvla_dir
    assert (openvla_dir / "model.safetensors").stat().st_mtime_ns == before
    assert is_fixture(openvla_dir)
    assert json.loads((openvla_dir / FIXTURE_MARKER).read_text())["random_weights"] is True


def test_default_demo_path_is_written_on_first_use(monkeypatch, tmp_path, caplog):
    monkeypatch.chdir(tmp_path)
    policy = load_policy("openvla", ".state/checkpoints/tiny-openvla", device="cpu")
    assert (tmp_path / ".state/checkpoints/tiny-openvla/config.json").is_file()
    assert policy.adapter.random_weights
    assert "RANDOM" in caplog.text


@pytest.mark.parametrize("family, expected", [("openvla", "tokenizer.json"), ("pi0", "policy_postprocessor.json")])
def test_fixtures_cli_writes_official_layout(tmp_path, capsys, family, expected):
    out = tmp_path / family
    assert main(["fixtures", "write", "--family", family, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "RANDOM" in printed and str(out) in printed
    assert (out / expected).is_file() and (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert not list(tmp_path.glob(f".{family}.*")), "no temp dir left behind"


def test_families_without_a_declared_position_steer_every_pass(openvla_policy, pi0_policy):
    """Only pi0fast declares a default position (prefill, tested in test_pi0fast.py); the others
    keep "all", so an unset position changes nothing for them."""
    from vla_steer_tools.steering.hooks import Steerer, SteeringConfig

    for policy in (openvla_policy, pi0_policy):
        assert "default_position" not in policy.adapter.extra and policy.adapter.default_position == "all"
        with Steerer(policy.adapter, SteeringConfig()) as steerer:
            assert steerer.config.position == "" and steerer.position == "all"
