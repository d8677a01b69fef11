"""Pi0 runtime (transformers' native PI0) on the tiny LeRobot-format checkpoint: loading, key
mapping, normalization by hand, deterministic noise, bad input, bad checkpoints, steering."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vla_steer_tools.errors import CheckpointError, ConfigError, ObservationError
from vla_steer_tools.fixtures.tiny_checkpoints import tiny_observation as make_obs
from vla_steer_tools.models.pi0 import from_lerobot_key, resize_with_pad, to_lerobot_key
from vla_steer_tools.models.registry import load_policy
from vla_steer_tools.policy import Policy
from vla_steer_tools.types import NeuronRef, Observation


def test_loads_through_public_entry_point(pi0_policy, pi0_dir):
    assert isinstance(pi0_policy, Policy)
    adapter = pi0_policy.adapter
    assert adapter.random_weights
    assert adapter.components == ("backbone", "action_expert")
    assert [adapter.width("backbone", 0), adapter.width("action_expert", 1)] == [128, 64]
    assert adapter.token_matrix().shape == (1024, 64)  # tied PaliGemma embedding
    assert adapter.extra["token_matrices"]["action_expert"]().shape == (1024, 32)  # expert width
    # every LeRobot tensor reached the transformers module it names
    stored = load_file(str(pi0_dir / "model.safetensors"))
    model_state = pi0_policy.model.state_dict()
    for key in ("model.paligemma_with_expert.paligemma.model.language_model.layers.1.mlp.down_proj.weight",
                "model.paligemma_with_expert.gemma_expert.model.layers.0.mlp.up_proj.weight",
                "model.paligemma_with_expert.paligemma.model.vision_tower.vision_model.embeddings.patch_embedding.weight",
                "model.state_proj.weight", "model.action_out_proj.bias"):
        assert torch.equal(model_state[from_lerobot_key(key)], stored[key]), key


def test_key_mapping_round_trip_and_old_layout(pi0_policy):
    for key in pi0_policy.model.state_dict():
        assert from_lerobot_key(to_lerobot_key(key)) == key
    old = {  # LeRobot < 0.4 (transformers 4.4x PaliGemma) names
        "model.paligemma_with_expert.paligemma.language_model.model.layers.0.mlp.down_proj.weight":
            "model.vlm.language_model.layers.0.mlp.down_proj.weight",
        "model.paligemma_with_expert.paligemma.language_model.lm_head.weight":
            "model.vlm.language_model.embed_tokens.weight",
        "model.paligemma_with_expert.paligemma.vision_tower.vision_model.post_layernorm.bias":
            "model.vlm.vision_tower.post_layernorm.bias",
        "model.paligemma_with_expert.paligemma.multi_modal_projector.linear.weight":
            "model.vlm.multi_modal_projector.linear.weight",
    }
    for src, dst in old.items():
        assert from_lerobot_key(src) == dst


def test_full_chunk_deterministic_for_fixed_seed(pi0_policy, pi0_dir):
    obs = make_obs(seed=1)
    first, second = pi0_policy.infer(obs), pi0_policy.infer(obs)
    assert first.actions.shape == (10, 7) and first.actions.dtype == np.float32
    assert np.array_equal(first.actions, second.actions)
    other_seed = load_policy("pi0", pi0_dir, device="cpu", seed=7).infer(obs)
    assert not np.allclose(other_seed.actions, first.actions)


def test_state_normalization_and_unnormalization_by_hand(pi0_policy, pi0_dir):
    stats = load_file(str(pi0_dir / "policy_preprocessor_step_5_normalizer_processor.safetensors"))
    mean, std = stats["observation.state.mean"].numpy(), stats["observation.state.std"].numpy()
    obs = make_obs(seed=2)
    inputs = pi0_policy.prepare(obs)
    state = inputs["state"][0].numpy()
    np.testing.assert_allclose(state[:8], (obs.state - mean) / (std + 1e-8), rtol=1e-5)
    assert state.shape == (32,) and not state[8:].any()  # zero-padded to max_state_dim
    with torch.inference_mode():
        raw = pi0_policy.model.sample_actions(**inputs)[0, :, :7].numpy()
    a_mean, a_std = stats["action.mean"].numpy(), stats["action.std"].numpy()
    np.testing.assert_allclose(pi0_policy.infer(obs).actions, raw * a_std + a_mean, rtol=1e-5, atol=1e-6)


def test_prompt_tokens(pi0_policy):
    inputs = pi0_policy.prepare(make_obs(instruction="pick up the bowl"))
    ids = inputs["input_ids"][0].tolist()
    image_token = pi0_policy.model.config.vlm_config.image_token_id
    assert ids[:512] == [image_token] * 512  # 2 cameras x 256 patches
    text = ids[512:]
    assert text[0] == pi0_policy.tokenizer.bos_token_id
    assert pi0_policy.tokenizer.decode(text[1:]) == "pick up the bowl\n"
    assert inputs["pixel_values"].shape == (1, 2, 3, 224, 224)


def _reference_resize_with_pad(image: np.ndarray, size: int) -> torch.Tensor:
    """openpi / LeRobot >= 0.4, written out here: scale by the longer side (int sizes), bilinear
    without antialias, paste at offset ((size - new) // 2) on a black canvas, then [0, 1] -> [-1, 1]."""
    h, w = image.shape[:2]
    scale = max(w / size, h / size)
    new_h, new_w = int(h / scale), int(w / scale)
    pixels = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None] / 255.0
    resized = torch.nn.functional.interpolate(pixels, size=(new_h, new_w), mode="bilinear", align_corners=False)[0]
    canvas = torch.zeros(3, size, size)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[:, top:top + new_h, left:left + new_w] = resized.clamp(0.0, 1.0)
    return canvas * 2.0 - 1.0


@pytest.mark.parametrize("shape", [(100, 200), (480, 640), (640, 480), (101, 224), (224, 224), (300, 7), (57, 91)])
def test_resize_with_pad_centres_the_image_like_the_reference(shape):
    img = np.random.default_rng(shape[0] * 1000 + shape[1]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = resize_with_pad(img, 224)
    assert out.shape == (3, 224, 224)
    assert torch.equal(out, _reference_resize_with_pad(img, 224))


def test_resize_with_pad_splits_the_padding_evenly():
    out = resize_with_pad(np.full((100, 200, 3), 255, dtype=np.uint8), 224)  # 200 -> 224 wide, 112 high
    assert torch.all(out[:, :56] == -1.0) and torch.all(out[:, 168:] == -1.0)  # 56 rows above, 56 below
    assert torch.all(out[:, 56:168] == 1.0)
    out = resize_with_pad(np.full((224, 99, 3), 255, dtype=np.uint8), 224)  # 125 padding columns
    columns = (out[0] == 1.0).all(dim=0).nonzero().flatten()
    assert (int(columns[0]), int(columns[-1])) == (62, 160)  # 62 left, 63 right (odd one after)


def test_non_square_camera_reaches_the_model_centred(pi0_policy):
    wrist = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    obs = make_obs(seed=3)
    obs = Observation(images={**obs.images, next(iter(obs.images)): wrist}, instruction=obs.instruction, state=obs.state)
    pixels = pi0_policy.prepare(obs)["pixel_values"][0, 0]
    assert torch.equal(pixels, _reference_resize_with_pad(wrist, 224).to(pixels.dtype))


def test_missing_camera_is_masked_but_all_missing_is_an_error(pi0_policy):
    one_cam = pi0_policy.prepare(make_obs(cameras=("agentview",)))
    assert one_cam["pixel_values"].shape[1] == 1
    assert pi0_policy.infer(make_obs(cameras=("agentview",))).actions.shape == (10, 7)
    with pytest.raises(ObservationError, match="agentview"):
        pi0_policy.infer(make_obs(cameras=("left",)))


def test_bad_inputs_are_rejected(pi0_policy):
    with pytest.raises(ObservationError, match="non-finite"):
        pi0_policy.infer(make_obs(state=[0, 0, np.nan, 0, 0, 0, 0, 0]))
    with pytest.raises(ObservationError, match="expects 8"):
        pi0_policy.infer(make_obs(state=[0.0] * 7))
    with pytest.raises(ObservationError, match="instruction"):
        pi0_policy.infer(make_obs(instruction=""))
    bad = Observation(images={"agentview": np.zeros((224, 224, 1), np.uint8)}, instruction="x",
                      state=np.zeros(8, np.float32))
    with pytest.raises(ObservationError, match="shape"):
        pi0_policy.infer(bad)


def test_missing_statistics_is_a_config_error(pi0_dir, tmp_path):
    ckpt = shutil.copytree(pi0_dir, tmp_path / "nostats")
    for f in ckpt.glob("policy_*processor*"):
        f.unlink()
    with pytest.raises(ConfigError, match=r"observation\.state\.mean"):
        load_policy("pi0", ckpt, device="cpu")
    with pytest.raises(ConfigError, match="single set of statistics"):
        load_policy("pi0", pi0_dir, device="cpu", unnorm_key="libero")


def test_checkpoint_with_wrong_keys_names_them_in_lerobot_names(pi0_dir, tmp_path):
    ckpt = shutil.copytree(pi0_dir, tmp_path / "bad")
    state = load_file(str(ckpt / "model.safetensors"))
    gone = "model.paligemma_with_expert.gemma_expert.model.layers.1.mlp.down_proj.weight"
    del state[gone]
    state["model.some_new_head.weight"] = torch.zeros(2)
    save_file(state, str(ckpt / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"unexpected keys: \['model\.some_new_head\.weight'\]"):
        load_policy("pi0", ckpt, device="cpu")
    del state["model.some_new_head.weight"]
    save_file(state, str(ckpt / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing keys: " + gone.replace(".", r"\.")):
        load_policy("pi0", ckpt, device="cpu")
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["paligemma_variant"] = "gemma_7b"
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="gemma_2b"):
        load_policy("pi0", ckpt, device="cpu")


@pytest.mark.parametrize("component", ["backbone", "action_expert"])
def test_steering_changes_chunk_and_removal_restores_it(pi0_policy, component):
    from vla_steer_tools.steering.directions import Direction
    from vla_steer_tools.steering.hooks import steering

    obs = make_obs(seed=3)
    baseline = pi0_policy.infer(obs).actions
    width = pi0_policy.adapter.width(component, 0)
    neurons = tuple(NeuronRef(component, layer, i) for layer in (0, 1) for i in range(0, width, 4))
    with steering(pi0_policy.adapter, Direction(name="push", neurons=neurons, alpha=10.0)):
        steered = pi0_policy.infer(obs).actions
    assert np.abs(steered - baseline).max() > 1e-3
    assert np.array_equal(pi0_policy.infer(obs).actions, baseline)


def test_pre_0_4_lerobot_layout_gives_the_same_chunk(pi0_dir, pi0_policy, tmp_path):
    """Older LeRobot checkpoints keep the statistics as buffers inside model.safetensors and use
    transformers 4.4x PaliGemma names; both must load to the same policy."""
    old = shutil.copytree(pi0_dir, tmp_path / "old")
    stats = load_file(str(old / "policy_preprocessor_step_5_normalizer_processor.safetensors"))
    for f in old.glob("policy_*processor*"):
        f.unlink()
    state = load_file(str(old / "model.safetensors"))
    renamed = {}
    for key, value in state.items():
        key = key.replace("paligemma.model.language_model.", "paligemma.language_model.model.")
        key = key.replace("paligemma.model.", "paligemma.")
        renamed[key] = value
    renamed["normalize_inputs.buffer_observation_state.mean"] = stats["observation.state.mean"]
    renamed["normalize_inputs.buffer_observation_state.std"] = stats["observation.state.std"]
    renamed["unnormalize_outputs.buffer_action.mean"] = stats["action.mean"]
    renamed["unnormalize_outputs.buffer_action.std"] = stats["action.std"]
    save_file(renamed, str(old / "model.safetensors"))
    obs = make_obs(seed=4)
    np.testing.assert_array_equal(load_policy("pi0", old, device="cpu").infer(obs).actions,
                                  pi0_policy.infer(obs).actions)


def test_unsupported_aloha_conversion_is_refused(pi0_dir, tmp_path):
    ckpt = shutil.copytree(pi0_dir, tmp_path / "aloha")
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["adapt_to_pi_aloha"] = True
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="adapt_to_pi_aloha"):
        load_policy("pi0", ckpt, device="cpu")


def test_expert_token_table_is_optional_and_unused(pi0_dir, pi0_policy, tmp_path):
    ckpt = shutil.copytree(pi0_dir, tmp_path / "no_expert_head")
    state = load_file(str(ckpt / "model.safetensors"))
    del state["model.paligemma_with_expert.gemma_expert.lm_head.weight"]
    save_file(state, str(ckpt / "model.safetensors"))
    policy = load_policy("pi0", ckpt, device="cpu")
    assert not policy.adapter.extra["token_matrices"]["action_expert"]().any()  # zero-filled
    obs = make_obs(seed=5)
    np.testing.assert_array_equal(policy.infer(obs).actions, pi0_policy.infer(obs).actions)


def test_projection_keeps_components_in_their_token_space(pi0_policy, tmp_path):
    """The expert's value vectors are narrower than PaliGemma's tokens: skipped by default, an
    error when asked for with the backbone's matrix, fine with the expert's own matrix."""
    from vla_steer_tools.interp.projection import Projection, ProjectionOptions, project

    default = Projection.load(project(pi0_policy.adapter, tmp_path / "default"))
    assert {comp for comp, _ in default.manifest["layers"]} == {"backbone"}
    with pytest.raises(ConfigError, match="token-matrix"):
        project(pi0_policy.adapter, tmp_path / "bad", ProjectionOptions(components=("action_expert",)))
    expert = Projection.load(project(pi0_policy.adapter, tmp_path / "expert", ProjectionOptions(
        components=("action_expert",), token_matrix="action_expert")))
    assert {comp for comp, _ in expert.manifest["layers"]} == {"action_expert"}
