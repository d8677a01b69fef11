"""The mini-VLA family: loading (local dir and shipped id), inference, steering through SmolLM2's
real neurons (the same direction files as `smollm2`), and clear errors on bad checkpoints/inputs."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vla_steer_tools.errors import CheckpointError, ConfigError, ObservationError
from vla_steer_tools.models.minivla.config import MiniVLAConfig
from vla_steer_tools.models.minivla.modeling import MiniVLAHead
from vla_steer_tools.models.minivla.policy import SHIPPED, Normalization
from vla_steer_tools.models.registry import load_policy
from vla_steer_tools.policy import SteeredPolicy
from vla_steer_tools.steering.directions import load_direction
from vla_steer_tools.steering.hooks import SteeringConfig
from vla_steer_tools.types import Observation

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SHIPPED_ID = "vla-steer/minivla-libero-object"


def write_checkpoint(path: Path, seed: int = 0) -> Path:
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    cfg = MiniVLAConfig(d_model=32, n_layers=1, ff=64, image_size=32)
    head = MiniVLAHead(cfg)
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(path / "model.safetensors"))
    (path / "config.json").write_text(cfg.to_json())
    norm = Normalization(np.zeros(8, np.float32), np.ones(8, np.float32), np.zeros(6, np.float32), np.full(6, 0.3, np.float32))
    (path / "normalization.json").write_text(norm.to_json())
    return path


def observation(text: str = "pick up the cream cheese and place it in the basket", seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(images={"agentview": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
                               "wrist": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)},
                       instruction=text, state=rng.normal(size=8).astype(np.float32))


@pytest.fixture(scope="module")
def random_policy(tmp_path_factory):
    return load_policy("minivla", write_checkpoint(tmp_path_factory.mktemp("ck") / "minivla"), device="cpu")


def test_inference_gives_a_bounded_chunk_and_is_deterministic(random_policy):
    a = random_policy.infer(observation()).actions
    b = random_policy.infer(observation()).actions
    assert a.shape == (8, 7) and np.all(np.isfinite(a))
    assert np.all(np.abs(a[:, :6]) <= 1.0) and set(np.unique(a[:, 6])) <= {-1.0, 1.0}
    np.testing.assert_array_equal(a, b)


def test_the_adapter_is_smollm2s_so_its_direction_files_fit(random_policy):
    adapter = random_policy.adapter
    assert len(adapter.layers("backbone")) == 30 and adapter.width("backbone", 25) == 1536
    assert adapter.model_id.startswith("HuggingFaceTB/SmolLM2-135M")
    for name in ("fast", "slow", "up", "down"):
        d = load_direction(ROOT / f"config/directions/smollm2/{name}.yaml")
        for ref in d.neurons:
            adapter.check_neuron(ref)


def test_steering_changes_the_actions_and_removing_it_restores_them_exactly(random_policy):
    obs = observation()
    plain = random_policy.infer(obs).actions
    fast = load_direction(ROOT / "config/directions/smollm2/fast.yaml")
    steered = SteeredPolicy(random_policy, SteeringConfig(directions=(replace(fast, alpha=50.0),), enabled=True))
    try:
        with torch.no_grad():
            out = steered.infer(obs)
        assert out.chunk.steered and not np.array_equal(out.chunk.actions, plain)
    finally:
        steered.close()
    np.testing.assert_array_equal(random_policy.infer(obs).actions, plain)


def test_bad_inputs_are_clear_errors(random_policy):
    obs = observation()
    with pytest.raises(ObservationError, match="wrist"):
        random_policy.infer(Observation(images={"agentview": obs.images["agentview"]}, instruction="x", state=obs.state))
    with pytest.raises(ObservationError, match="expects 8"):
        random_policy.infer(replace(obs, state=np.zeros(7, np.float32)))
    with pytest.raises(ObservationError, match="tokens"):
        random_policy.infer(replace(obs, instruction="pick up the cream cheese " * 20))
    with pytest.raises(ObservationError, match="non-finite"):
        random_policy.infer(replace(obs, state=np.full(8, np.nan, np.float32)))


def test_bad_checkpoints_are_clear_errors(tmp_path):
    good = write_checkpoint(tmp_path / "good")
    no_norm = tmp_path / "no_norm"
    shutil.copytree(good, no_norm)
    (no_norm / "normalization.json").unlink()
    with pytest.raises(CheckpointError, match="normalisation"):
        load_policy("minivla", no_norm, device="cpu")
    other = tmp_path / "other"
    shutil.copytree(good, other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "d_model": 48}))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_policy("minivla", other, device="cpu")
    (other / "config.json").write_text(json.dumps({**cfg, "family": "openvla"}))
    with pytest.raises(CheckpointError, match="not a mini-VLA"):
        load_policy("minivla", other, device="cpu")
    with pytest.raises(ConfigError, match="unknown mini-VLA option"):
        load_policy("minivla", good, device="cpu", center_crop=True)


def test_the_shipped_checkpoint_is_small_and_loads_by_id():
    d = SHIPPED[SHIPPED_ID]
    size = sum(p.stat().st_size for p in d.iterdir())
    assert size < 20e6, f"{size / 1e6:.1f} MB"
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["training"]["step"] > 0 and cfg["training"]["datasets"]  # the recipe that made it
    policy = load_policy("minivla", SHIPPED_ID, device="cpu")
    assert policy.infer(observation()).actions.shape == (8, 7)


def test_the_cached_lm_reload_is_the_gguf_model_exactly(tmp_path, monkeypatch):
    from vla_steer_tools.models.hf_causal_lm import load_causal_lm, load_causal_lm_cached

    monkeypatch.setenv("VLA_STEER_CACHE", str(tmp_path))
    ref, tok, _ = load_causal_lm("smollm2", device="cpu")
    first, _, _ = load_causal_lm_cached("smollm2", device="cpu")  # builds the cache
    again, _, adapter = load_causal_lm_cached("smollm2", device="cpu")  # reads it
    assert list(tmp_path.glob("*/model.safetensors"))
    ids = tok("The robot moves", return_tensors="pt").input_ids
    with torch.no_grad():
        want = ref(input_ids=ids).logits
        torch.testing.assert_close(again(input_ids=ids).logits, want, rtol=0, atol=0)
    assert again.get_output_embeddings().weight.data_ptr() == again.get_input_embeddings().weight.data_ptr()  # tied
    assert len(adapter.layers("backbone")) == 30
