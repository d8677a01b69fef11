"""OpenVLA runtime on the tiny official-format checkpoint: loading, predict_action semantics,
bin decoding / un-normalization by hand, bad input, bad checkpoints, steering."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vla_steer_tools.errors import CheckpointError, ConfigError, ObservationError, UnknownChoiceError
from vla_steer_tools.models.openvla.config import OpenVLAConfig
from vla_steer_tools.models.openvla.processing import ActionDecoder, ImageTransform, build_prompt
from vla_steer_tools.models.registry import load_policy
from vla_steer_tools.policy import Policy
from vla_steer_tools.types import NeuronRef, Observation

from vla_steer_tools.fixtures.tiny_checkpoints import tiny_observation as make_obs


def _copy_checkpoint(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_loads_through_public_entry_point(openvla_policy, openvla_dir):
    assert isinstance(openvla_policy, Policy)
    adapter = openvla_policy.adapter
    assert adapter.random_weights, "fixture must be flagged as random weights"
    assert adapter.components == ("backbone",)
    assert len(adapter.layers("backbone")) == 2 and adapter.width("backbone", 0) == 128
    assert adapter.token_matrix().shape == (32064, 64)  # untied lm_head incl. padding rows
    assert openvla_policy.action_space == "ee_delta_7d"
    # every checkpoint tensor landed in the model (no silently random parameter)
    state = load_file(str(openvla_dir / "model.safetensors"))
    model_state = openvla_policy.model.state_dict()
    assert set(state) == set(model_state)
    for key in ("vision_backbone.featurizer.blocks.0.ls1.scale_factor", "projector.fc3.weight",
                "language_model.lm_head.weight"):
        assert torch.equal(model_state[key], state[key].float()), key


def test_actions_are_deterministic_and_shaped(openvla_policy):
    obs = make_obs(seed=1)
    first = openvla_policy.infer(obs)
    second = openvla_policy.infer(obs)
    assert first.actions.shape == (1, 7) and first.actions.dtype == np.float32
    assert np.array_equal(first.actions, second.actions)
    assert first.inference_s > 0


def test_prompt_and_token_29871(openvla_policy):
    assert build_prompt("Pick up the Bowl ") == "In: What action should the robot take to pick up the bowl?\nOut:"
    ids, pixels = openvla_policy.prepare(make_obs())
    assert ids[0, 0].item() == 1  # <s>
    assert ids[0, -1].item() == 29871
    assert (ids[0, :-1] != 29871).all(), "29871 appended exactly once"
    assert pixels.shape == (1, 6, 224, 224)


def test_bin_decoding_and_unnormalization_by_hand(openvla_dir):
    config = OpenVLAConfig.from_dir(openvla_dir)
    decoder = ActionDecoder(config, None)
    stats = config.norm_stats["libero_10_no_noops"]["action"]
    q01, q99 = np.array(stats["q01"]), np.array(stats["q99"])
    step = 2.0 / 255.0
    # id 31999 -> bin 0 -> centre -1 + step/2 ; id 31872 -> bin 127 -> centre 0 ; id 31744 -> clipped to 254
    ids = np.array([31999, 31872, 31744, 31745, 31999, 31872, 31999])
    expected_norm = np.array([-1 + step / 2, 0.0, 1 - step / 2, 1 - step / 2, -1 + step / 2, 0.0, -1 + step / 2])
    np.testing.assert_allclose(decoder.normalized(ids), expected_norm, atol=1e-12)
    expected = 0.5 * (expected_norm + 1) * (q99 - q01) + q01
    expected[6] = expected_norm[6]  # gripper: mask False -> stays normalized
    np.testing.assert_allclose(decoder(ids), expected.astype(np.float32), rtol=1e-6)
    assert decoder.first_action_id == 31744


def test_infer_equals_hand_decoded_greedy_tokens(openvla_policy):
    obs = make_obs(seed=2)
    ids, pixels = openvla_policy.prepare(obs)
    tokens = openvla_policy.model.generate_greedy(ids, pixels, 7)[0].numpy()
    assert ((tokens >= 31744) & (tokens < 32000)).all(), "fixture head favours action ids"
    np.testing.assert_array_equal(openvla_policy.infer(obs).actions[0], openvla_policy.decoder(tokens))


def test_greedy_with_cache_matches_full_recompute(openvla_policy):
    """The KV-cached loop must pick the same tokens as argmax over full re-encoding."""
    model = openvla_policy.model
    ids, pixels = openvla_policy.prepare(make_obs(seed=3))
    cached = model.generate_greedy(ids, pixels, 7)[0].tolist()
    seq = ids
    full = []
    with torch.inference_mode():
        for _ in range(7):
            logits = model.language_model(inputs_embeds=model.embed_prompt(seq, pixels)).logits
            nxt = int(logits[0, -1].argmax())
            full.append(nxt)
            seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
    assert cached == full


def test_decode_token_shows_action_bins(openvla_policy):
    decode = openvla_policy.adapter.decode_token
    assert decode(31999) == "[action: -0.9961]"
    assert decode(31872) == "[action: +0.0000]"
    assert decode(29871) == " "
    assert decode(447) == " In"  # word-initial piece keeps its leading space
    assert decode(32000) == "<PAD>" and decode(32063) == "[pad 32063]"


def test_image_transform_per_tower_normalization(openvla_dir):
    config = OpenVLAConfig.from_dir(openvla_dir)
    transform = ImageTransform.for_checkpoint(config, openvla_dir)
    gray = np.full((100, 150, 3), 128, dtype=np.uint8)
    out = transform(gray)
    assert out.shape == (6, 224, 224)
    v = 128 / 255.0
    dino = (v - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    siglip = (v - 0.5) / 0.5
    np.testing.assert_allclose(out[:3, 100, 100].numpy(), dino, rtol=1e-5)
    np.testing.assert_allclose(out[3:, 100, 100].numpy(), [siglip] * 3, atol=1e-6)


def test_center_crop_zooms_in(openvla_dir, openvla_policy):
    config = OpenVLAConfig.from_dir(openvla_dir)
    transform = ImageTransform.for_checkpoint(config, openvla_dir)
    img = np.zeros((224, 224, 3), dtype=np.uint8)
    img[:4] = 255  # a white band at the very top: the 0.9-area crop (5.74 px per side) removes it
    plain, cropped = transform(img), transform(img, center_crop=True)
    assert plain[3, 0, 112] > 0.9 and cropped[3, 0, 112] < -0.9


@pytest.mark.parametrize("image, what", [
    (np.zeros((224, 224, 4), np.uint8), "shape"),
    (np.zeros((224, 224), np.uint8), "shape"),
    (np.zeros((224, 224, 3), np.float32), "dtype"),
    (np.zeros((8, 8, 3), np.uint8), "8x8"),
])
def test_bad_images_are_rejected(openvla_policy, image, what):
    obs = Observation(images={"agentview": image}, instruction="pick up the bowl")
    with pytest.raises(ObservationError, match=what):
        openvla_policy.infer(obs)


def test_bad_text_state_and_cameras_are_rejected(openvla_policy):
    with pytest.raises(ObservationError, match="instruction"):
        openvla_policy.infer(make_obs(instruction="   "))
    with pytest.raises(ObservationError, match="non-finite"):
        openvla_policy.infer(make_obs(state=[0.0, float("nan"), 0, 0, 0, 0, 0, 0]))
    with pytest.raises(ObservationError, match="which camera"):
        openvla_policy.infer(make_obs(cameras=("left", "right")))
    with pytest.raises(ObservationError, match="no images"):
        openvla_policy.infer(Observation(images={}, instruction="pick"))


def _with_norm_stats(src, dst, norm_stats):
    path = _copy_checkpoint(src, dst)
    cfg = json.loads((path / "config.json").read_text())
    cfg["norm_stats"] = norm_stats
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "dataset_statistics.json").unlink()
    return path


def test_unnorm_key_errors_list_the_keys(openvla_dir, tmp_path):
    with pytest.raises(UnknownChoiceError, match="libero_10_no_noops"):
        load_policy("openvla", openvla_dir, device="cpu", unnorm_key="bridge_orig")
    stats = json.loads((openvla_dir / "config.json").read_text())["norm_stats"]["libero_10_no_noops"]
    two = _with_norm_stats(openvla_dir, tmp_path / "two", {"a_data": stats, "b_data": stats})
    with pytest.raises(ConfigError, match="a_data, b_data"):
        load_policy("openvla", two, device="cpu")
    assert load_policy("openvla", two, device="cpu", unnorm_key="b_data").decoder.unnorm_key == "b_data"
    none = _with_norm_stats(openvla_dir, tmp_path / "none", {})
    with pytest.raises(ConfigError, match="no norm_stats"):
        load_policy("openvla", none, device="cpu")


def test_checkpoint_with_wrong_keys_names_them(openvla_dir, tmp_path):
    bad = _copy_checkpoint(openvla_dir, tmp_path / "bad")
    state = load_file(str(bad / "model.safetensors"))
    del state["projector.fc3.bias"]
    state["projector.fc4.weight"] = torch.zeros(2, 2)
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys: projector\.fc3\.bias.*unexpected keys: projector\.fc4\.weight"):
        load_policy("openvla", bad, device="cpu")


def test_config_mismatch_and_corrupt_file(openvla_dir, tmp_path):
    deeper = _copy_checkpoint(openvla_dir, tmp_path / "deeper")
    cfg = json.loads((deeper / "config.json").read_text())
    cfg["text_config"]["num_hidden_layers"] = 3
    (deeper / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"missing keys: language_model\.model\.layers\.2\."):
        load_policy("openvla", deeper, device="cpu")
    corrupt = _copy_checkpoint(openvla_dir, tmp_path / "corrupt")
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_policy("openvla", corrupt, device="cpu")
    (corrupt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_policy("openvla", corrupt, device="cpu")


def test_steering_changes_actions_and_removal_restores_them(openvla_policy):
    from vla_steer_tools.steering.directions import Direction
    from vla_steer_tools.steering.hooks import steering

    obs = make_obs(seed=4)
    baseline = openvla_policy.infer(obs).actions
    neurons = tuple(NeuronRef("backbone", layer, i) for layer in (0, 1) for i in range(0, 128, 4))
    direction = Direction(name="test_push", neurons=neurons, alpha=10.0)
    with steering(openvla_policy.adapter, direction):
        steered = openvla_policy.infer(obs).actions
    assert not np.array_equal(steered, baseline)
    after = openvla_policy.infer(obs).actions
    assert np.array_equal(after, baseline)  # bit-for-bit: hooks fully removed


def test_towers_return_second_to_last_block_patches(openvla_policy):
    """Prismatic's featurizer = timm get_intermediate_layers(n={depth-2}): prefix tokens dropped,
    the last block unused."""
    tower = openvla_policy.model.vision_backbone.featurizer
    pixels = openvla_policy.prepare(make_obs(seed=5))[1][:, :3].float()
    with torch.inference_mode():
        before = tower(pixels)
        assert before.shape == (1, 256, 32)  # 16x16 patches; cls + 4 registers dropped
        last = tower.blocks[-1].mlp.fc2.weight
        saved = last.clone()
        last.zero_()
        unchanged = tower(pixels)
        last.copy_(saved)
        used = tower.blocks[-2].mlp.fc2.weight
        saved = used.clone()
        used.zero_()
        changed = tower(pixels)
        used.copy_(saved)
    assert torch.equal(before, unchanged)
    assert not torch.allclose(before, changed)


def test_sharded_checkpoint_and_bf16(openvla_dir, openvla_policy, tmp_path):
    """The 7B repos ship model-0000k-of-0000n shards + index; bf16 is the GPU default."""
    sharded = shutil.copytree(openvla_dir, tmp_path / "sharded")
    state = load_file(str(sharded / "model.safetensors"))
    (sharded / "model.safetensors").unlink()
    keys = sorted(state)
    weight_map = {}
    for i, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2 :])):
        name = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({k: state[k] for k in part}, str(sharded / name))
        weight_map.update({k: name for k in part})
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    obs = make_obs(seed=6)
    assert np.array_equal(load_policy("openvla", sharded, device="cpu").infer(obs).actions,
                          openvla_policy.infer(obs).actions)
    half = load_policy("openvla", sharded, device="cpu", dtype="bf16")
    assert half.model.language_model.lm_head.weight.dtype == torch.bfloat16
    assert half.infer(obs).actions.shape == (1, 7)
    assert torch.get_default_dtype() == torch.float32, "default dtype restored after loading"


def test_libero_gripper_convention_matches_openvla_eval():
    """OpenVLA's LIBERO eval: [0,1] (1 = open) -> 2g-1 -> sign -> invert (-1 open, +1 close)."""
    from vla_steer_tools.models.openvla.processing import libero_gripper

    np.testing.assert_array_equal(libero_gripper(np.array([0.0, 0.2, 0.8, 1.0])), [1.0, 1.0, -1.0, -1.0])


def test_gripper_option_changes_only_the_last_value(openvla_dir):
    from vla_steer_tools.fixtures.tiny_checkpoints import tiny_observation
    from vla_steer_tools.models.openvla.processing import libero_gripper

    obs = tiny_observation(seed=3)
    raw = load_policy("openvla", openvla_dir, device="cpu").infer(obs).actions
    conv = load_policy("openvla", openvla_dir, device="cpu", gripper="libero").infer(obs).actions
    np.testing.assert_array_equal(conv[:, :-1], raw[:, :-1])
    np.testing.assert_array_equal(conv[:, -1], libero_gripper(raw[:, -1]))
    with pytest.raises(UnknownChoiceError, match="gripper"):
        load_policy("openvla", openvla_dir, device="cpu", gripper="sideways")
