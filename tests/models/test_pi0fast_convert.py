"""`vla-steer convert openpi-pi0fast`: a tiny params tree in openpi's layout, written with orbax
itself, converted to LeRobot's pi0_fast layout and loaded through `load_policy`.

The reference is independent of the converter: openpi's own formulas (gemma_fast.py einsums,
RMSNorm (1 + scale), halves RoPE, gelu-tanh gated FFN, logits against the embedding; siglip.py's
flax Conv / MultiHeadDotProductAttention / Dense layouts) written out in numpy over the tree and
compared with the loaded transformers model, so a transposed or head-scrambled weight fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest
import torch

from vla_steer_tools.cli import convert as convert_cli
from vla_steer_tools.errors import CheckpointError
from vla_steer_tools.fixtures.tiny_pi0fast import coefficient_string, write_fast_tokenizer
from vla_steer_tools.fixtures.tokenizers import write_gemma_tokenizer
from vla_steer_tools.models.pi0fast.config import VARIANTS
from vla_steer_tools.models.pi0fast.openpi_params import to_transformers
from vla_steer_tools.models.registry import load_policy

ocp = pytest.importorskip("orbax.checkpoint")

TINY = VARIANTS["vla_steer_tiny"]
IMAGE = 56
STATE_Q01 = np.linspace(-1.0, -0.2, 8)
STATE_Q99 = np.linspace(0.3, 1.5, 8)
ACTION_DIM, CHUNK = 7, 2
MARKED = ("llm/layers/mlp/linear", (1, 5, 3), 0.123)  # (key, openpi index, value): lands in down_proj[1][3, 5]


def openpi_tree(seed: int = 0) -> dict[str, np.ndarray]:
    """Random pi0-FAST params in openpi's key names and layouts (layers stacked on axis 0)."""
    rng = np.random.default_rng(seed)
    t, v = TINY["text"], TINY["vision"]
    d, n, k, h, f, L, V = (t["hidden_size"], t["num_attention_heads"], t["num_key_value_heads"], t["head_dim"],
                           t["intermediate_size"], t["num_hidden_layers"], t["vocab_size"])
    w, nv, m, lv, p = v["hidden_size"], v["num_attention_heads"], v["intermediate_size"], v["num_hidden_layers"], \
        v["patch_size"]
    hv, patches = w // nv, (IMAGE // p) ** 2

    def r(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    blk, att = "img/Transformer/encoderblock/", "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/"
    tree = {
        "img/embedding/kernel": r(p, p, 3, w, scale=0.05), "img/embedding/bias": r(w), "img/pos_embedding": r(1, patches, w),
        blk + "LayerNorm_0/scale": 1 + r(lv, w), blk + "LayerNorm_0/bias": r(lv, w),
        blk + "LayerNorm_1/scale": 1 + r(lv, w), blk + "LayerNorm_1/bias": r(lv, w),
        blk + "MlpBlock_0/Dense_0/kernel": r(lv, w, m), blk + "MlpBlock_0/Dense_0/bias": r(lv, m),
        blk + "MlpBlock_0/Dense_1/kernel": r(lv, m, w), blk + "MlpBlock_0/Dense_1/bias": r(lv, w),
        **{att + f"{q}/kernel": r(lv, w, nv, hv) for q in ("query", "key", "value")},
        **{att + f"{q}/bias": r(lv, nv, hv) for q in ("query", "key", "value")},
        att + "out/kernel": r(lv, nv, hv, w), att + "out/bias": r(lv, w),
        "img/Transformer/encoder_norm/scale": 1 + r(w), "img/Transformer/encoder_norm/bias": r(w),
        "img/head/kernel": r(w, d), "img/head/bias": r(d),
        # stored in bf16 as openpi's bf16 checkpoints do (ml_dtypes arrays through orbax)
        "llm/embedder/input_embedding": r(V, d, scale=0.5).astype(ml_dtypes.bfloat16),
        "llm/final_norm/scale": r(d),
        "llm/layers/attn/q_einsum/w": r(L, n, d, h), "llm/layers/attn/kv_einsum/w": r(L, 2, k, d, h),
        "llm/layers/attn/attn_vec_einsum/w": r(L, n, h, d),
        "llm/layers/mlp/gating_einsum": r(L, 2, d, f), "llm/layers/mlp/linear": r(L, f, d),
        "llm/layers/pre_attention_norm/scale": r(L, d), "llm/layers/pre_ffw_norm/scale": r(L, d),
    }
    key, index, value = MARKED
    tree[key][index] = value
    return tree


def nest(flat: dict[str, np.ndarray], nnx_value: bool) -> dict:
    """openpi's saved item: {"params": {"PaliGemma": {...}}}, leaves wrapped in nnx's "value" if asked."""
    root: dict = {}
    for key, value in flat.items():
        node = root
        parts = ["params", "PaliGemma", *key.split("/")] + (["value"] if nnx_value else [])
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


def write_openpi_checkpoint(out, flat, nnx_value=True, asset_id="ur5e"):
    with ocp.PyTreeCheckpointer() as ckptr:
        ckptr.save(out / "params", nest(flat, nnx_value))
    stats = {"state": {"mean": np.zeros(8), "std": np.ones(8), "q01": STATE_Q01, "q99": STATE_Q99},
             # actions padded to openpi's model width 32, as some configs store them
             "actions": {"mean": np.zeros(32), "std": np.ones(32), "q01": -np.arange(1, 33) / 10,
                         "q99": np.arange(1, 33) / 5}}
    stats = {name: {k: v.tolist() for k, v in s.items()} for name, s in stats.items()}
    (out / "assets" / asset_id).mkdir(parents=True)
    (out / "assets" / asset_id / "norm_stats.json").write_text(json.dumps({"norm_stats": stats}))
    return out


# ----------------------------------------------------------------------------- numpy references


def _rms(x, scale):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * (1 + scale)


def _rope(x, positions):  # (T, heads, H): openpi's _apply_rope, halves rotated
    half = x.shape[-1] // 2
    radians = positions[:, None, None] / 10_000 ** (2.0 * np.arange(half) / x.shape[-1])
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * np.cos(radians) - x2 * np.sin(radians), x2 * np.cos(radians) + x1 * np.sin(radians)], -1)


def _gelu(x):  # flax nn.gelu (approximate=True)
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def gemma_fast_logits(t, tokens):
    """gemma_fast.Module over `tokens` with its default causal mask -> (T, vocab) logits."""
    g = {k: np.asarray(v, dtype=np.float64) for k, v in t.items() if k.startswith("llm/")}
    emb = g["llm/embedder/input_embedding"]
    x = emb[tokens] * np.sqrt(emb.shape[1])
    pos = np.arange(len(tokens), dtype=np.float64)
    causal = np.tril(np.ones((len(tokens), len(tokens)), dtype=bool))
    for i in range(g["llm/layers/attn/q_einsum/w"].shape[0]):
        y = _rms(x, g["llm/layers/pre_attention_norm/scale"][i])
        q = _rope(np.einsum("td,ndh->tnh", y, g["llm/layers/attn/q_einsum/w"][i]), pos) * \
            g["llm/layers/attn/q_einsum/w"].shape[-1] ** -0.5
        k = _rope(np.einsum("td,kdh->tkh", y, g["llm/layers/attn/kv_einsum/w"][i, 0]), pos)
        v = np.einsum("td,kdh->tkh", y, g["llm/layers/attn/kv_einsum/w"][i, 1])
        groups = q.shape[1] // k.shape[1]
        k, v = np.repeat(k, groups, axis=1), np.repeat(v, groups, axis=1)
        probs = _softmax(np.where(causal[None], np.einsum("tnh,snh->nts", q, k), -np.inf))
        enc = np.einsum("nts,snh->tnh", probs, v)
        x = x + np.einsum("tnh,nhd->td", enc, g["llm/layers/attn/attn_vec_einsum/w"][i])
        y = _rms(x, g["llm/layers/pre_ffw_norm/scale"][i])
        gate = g["llm/layers/mlp/gating_einsum"][i]
        x = x + (_gelu(y @ gate[0]) * (y @ gate[1])) @ g["llm/layers/mlp/linear"][i]
    return _rms(x, g["llm/final_norm/scale"]) @ emb.T


def _layer_norm(x, scale, bias):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-6) * scale + bias


def siglip_tokens(t, image):
    """siglip._Module (pool none) + its `head` Dense over one (S, S, 3) image -> (patches, width)."""
    g = {k: np.asarray(v, dtype=np.float64) for k, v in t.items() if k.startswith("img/")}
    blk, att = "img/Transformer/encoderblock/", "img/Transformer/encoderblock/MultiHeadDotProductAttention_0/"
    kernel = g["img/embedding/kernel"]
    p, side = kernel.shape[0], image.shape[0] // kernel.shape[0]
    patches = image.reshape(side, p, side, p, 3)
    x = np.einsum("ahbwc,hwco->abo", patches, kernel).reshape(side * side, -1) + g["img/embedding/bias"]
    x = x + g["img/pos_embedding"][0]
    for i in range(g[blk + "LayerNorm_0/scale"].shape[0]):
        y = _layer_norm(x, g[blk + "LayerNorm_0/scale"][i], g[blk + "LayerNorm_0/bias"][i])
        q, k, v = (np.einsum("td,dnh->tnh", y, g[f"{att}{n}/kernel"][i]) + g[f"{att}{n}/bias"][i]
                   for n in ("query", "key", "value"))
        probs = _softmax(np.einsum("tnh,snh->nts", q, k) / np.sqrt(q.shape[-1]))
        x = x + np.einsum("tnh,nhd->td", np.einsum("nts,snh->tnh", probs, v), g[att + "out/kernel"][i]) + \
            g[att + "out/bias"][i]
        y = _layer_norm(x, g[blk + "LayerNorm_1/scale"][i], g[blk + "LayerNorm_1/bias"][i])
        hidden = _gelu(y @ g[blk + "MlpBlock_0/Dense_0/kernel"][i] + g[blk + "MlpBlock_0/Dense_0/bias"][i])
        x = x + hidden @ g[blk + "MlpBlock_0/Dense_1/kernel"][i] + g[blk + "MlpBlock_0/Dense_1/bias"][i]
    x = _layer_norm(x, g["img/Transformer/encoder_norm/scale"], g["img/Transformer/encoder_norm/bias"])
    return x @ g["img/head/kernel"] + g["img/head/bias"]


# ----------------------------------------------------------------------------- fixtures


def run_cli(argv: list[str]) -> int:
    """The `convert` subcommand through argparse, without the ROS plugin subcommands."""
    parser = argparse.ArgumentParser(prog="vla-steer")
    convert_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def tree():
    return openpi_tree()


@pytest.fixture(scope="module")
def tokenizer_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    write_gemma_tokenizer(root / "paligemma", size=TINY["text"]["vocab_size"])
    rng = np.random.default_rng(1)
    fast = write_fast_tokenizer(root / "fast", [coefficient_string(rng.uniform(-1, 1, (CHUNK, ACTION_DIM)))
                                                for _ in range(32)], vocab_size=256)
    return root / "paligemma", fast


@pytest.fixture(scope="module")
def converted(tree, tokenizer_dirs, tmp_path_factory):
    """The CLI run on an openpi checkpoint saved during training (nnx "value" leaves)."""
    root = tmp_path_factory.mktemp("openpi")
    src = write_openpi_checkpoint(root / "ckpt", tree, nnx_value=True)
    dst = root / "lerobot"
    text, fast = tokenizer_dirs
    code = run_cli(["convert", "openpi-pi0fast", str(src), str(dst), "--chunk-size", str(CHUNK), "--action-dim",
                 str(ACTION_DIM), "--cameras", "base_0_rgb", "wrist_0_rgb", "--max-decoding-steps", "12",
                 "--tokenizer", str(text), "--fast-tokenizer", str(fast)])
    assert code == 0
    return dst


@pytest.fixture(scope="module")
def policy(converted):
    return load_policy("pi0fast", converted, device="cpu")


# ----------------------------------------------------------------------------- tests


def test_cli_writes_the_lerobot_layout(converted, capsys):
    names = {p.name for p in converted.iterdir()}
    assert {"config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json",
            "tokenizer", "fast_tokenizer", "openpi_conversion.json"} <= names
    config = json.loads((converted / "config.json").read_text())
    assert config["type"] == "pi0_fast" and config["paligemma_variant"] == "vla_steer_tiny"
    assert config["image_resolution"] == [IMAGE, IMAGE] and config["chunk_size"] == CHUNK
    assert list(config["input_features"]) == ["observation.state", "observation.images.base_0_rgb",
                                              "observation.images.wrist_0_rgb"]
    record = json.loads((converted / "openpi_conversion.json").read_text())
    assert record["asset_id"] == "ur5e" and record["stored_dtypes"] == ["bfloat16", "float32"]
    assert record["prompt_format"] == "openpi"


def test_a_marked_openpi_value_lands_in_the_right_torch_weight(policy, tree):
    key, (layer, row, col), value = MARKED  # openpi linear (L, F, D): [layer, ffn neuron, model dim]
    down = policy.model.model.language_model.layers[layer].mlp.down_proj.weight  # (D, F)
    assert down[col, row].item() == pytest.approx(value)
    np.testing.assert_array_equal(down.detach().numpy(), tree[key][layer].T)
    embed = policy.model.model.language_model.embed_tokens.weight
    np.testing.assert_array_equal(embed.detach().numpy(), tree["llm/embedder/input_embedding"].astype(np.float32))
    assert policy.model.lm_head.weight.data_ptr() == embed.data_ptr()  # tied


def test_language_model_matches_openpi_gemma_fast_math(policy, tree):
    tokens = np.array([2, 17, 503, 1999, 64, 3, 700])
    expected = gemma_fast_logits(tree, tokens)
    n = len(tokens)  # explicit causal mask: transformers' PaliGemma text config defaults to bidirectional
    causal = torch.zeros(1, 1, n, n).masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), torch.finfo().min)
    with torch.no_grad():
        hidden = policy.model.model.language_model(input_ids=torch.tensor(tokens)[None],
                                                   attention_mask=causal).last_hidden_state
        logits = policy.model.lm_head(hidden)[0].double().numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_vision_tower_and_projector_match_openpi_siglip_math(policy, tree):
    image = np.random.default_rng(3).uniform(-1, 1, (IMAGE, IMAGE, 3))
    expected = siglip_tokens(tree, image)
    pixels = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None]  # NHWC -> NCHW
    with torch.no_grad():
        vision = policy.model.model.vision_tower(pixel_values=pixels).last_hidden_state
        got = policy.model.model.multi_modal_projector(vision)[0].double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_statistics_become_the_normalisers_cut_to_the_model_dims(policy):
    np.testing.assert_allclose(policy.state_norm.stats["q01"], STATE_Q01, rtol=1e-6)
    np.testing.assert_allclose(policy.state_norm.stats["q99"], STATE_Q99, rtol=1e-6)
    assert policy.action_norm.mode == "QUANTILES" and policy.action_norm.stats["q01"].shape == (ACTION_DIM,)
    np.testing.assert_allclose(policy.action_norm.stats["q99"], np.arange(1, 8) / 5, rtol=1e-6)


def test_converted_policy_decodes_deterministically(policy):
    from vla_steer_tools.fixtures.tiny_checkpoints import tiny_observation

    obs = tiny_observation(seed=0, instruction="pick up the bowl", state=np.zeros(8, np.float32),
                           cameras=("base_0_rgb", "wrist_0_rgb"), size=64)
    pixels, ids = policy.prepare(obs)
    first, second = policy.generate(pixels, ids), policy.generate(pixels, ids)
    assert first == second and 1 <= len(first) <= 12  # random weights: a full-length run or an early marker


def test_openpi_prompt_and_normaliser_conventions(policy, tokenizer_dirs):
    """openpi's FASTTokenizer.tokenize: lower-cased task, `_` -> space, <bos> + prefix only (no second
    <bos>); Normalize: (x - q01) / (q99 - q01 + 1e-6) * 2 - 1, the inverse for actions."""
    from transformers import AutoTokenizer

    from vla_steer_tools.types import Observation

    assert policy.settings.prompt_format == "openpi"
    state = np.array([-1.2, -0.5, 0.0, 0.25, 0.5, 0.9, 1.2, 1.6], np.float32)
    image = np.full((56, 56, 3), 255, np.uint8)
    pixels, ids = policy.prepare(Observation(images={"base_0_rgb": image}, instruction=" Pick_Up the BOWL ",
                                             state=state))
    assert pixels.shape == (2, 3, IMAGE, IMAGE)  # the missing wrist camera fed black, as openpi's pi0-FAST inputs
    assert torch.all(pixels[0] == 1) and torch.all(pixels[1] == -1)
    q01, q99 = STATE_Q01.astype(np.float32), STATE_Q99.astype(np.float32)
    normalized = (state - q01) / (q99 - q01 + np.float32(1e-6)) * 2 - 1
    bins = np.digitize(normalized, bins=np.linspace(-1, 1, 257)[:-1]) - 1
    text = f"Task: pick up the bowl, State: {' '.join(map(str, bins))};\n"
    assert ids[0].tolist() == AutoTokenizer.from_pretrained(str(tokenizer_dirs[0]))(text).input_ids
    x = np.linspace(-1, 1, ACTION_DIM, dtype=np.float32)
    lo, hi = -np.arange(1, 8, dtype=np.float32) / 10, np.arange(1, 8, dtype=np.float32) / 5
    np.testing.assert_allclose(policy.action_norm.unnormalize(x), (x + 1) / 2 * (hi - lo + np.float32(1e-6)) + lo,
                               rtol=1e-6)


def _openpi_decode(policy, pixels, ids, skip: int):
    """openpi's sample_actions without a cache: prefix (bidirectional) at positions 0..n-1, the
    k-th generated token at n + skip + k (openpi: skip 1), causal over the generated tokens."""
    model, lm = policy.model, policy.model.model.language_model
    with torch.no_grad():
        image = model.model.get_image_features(pixels).pooler_output.reshape(1, -1, lm.config.hidden_size)
        prefix = torch.cat([image, lm.embed_tokens(ids)], dim=1)
        n, tokens, logits = prefix.shape[1], [], []
        for _ in range(policy.max_decoding_steps):
            seq = torch.cat([prefix, lm.embed_tokens(torch.tensor([tokens]))], 1) if tokens else prefix
            total = seq.shape[1]
            allowed = torch.ones(total, total, dtype=torch.bool).tril()
            allowed[:, :n] = True
            allowed[:n, n:] = False
            mask = torch.zeros(1, 1, total, total).masked_fill(~allowed, torch.finfo().min)
            positions = torch.cat([torch.arange(n), n + skip + torch.arange(len(tokens))])[None]
            out = lm(inputs_embeds=seq, attention_mask=mask, position_ids=positions).last_hidden_state
            logits.append(model.lm_head(out[0, -1]))
            tokens.append(int(logits[-1].argmax()))
            if tokens[-1] == policy.vocab.end_id:
                break
    return tokens, logits


def test_openpi_decode_positions_skip_one_like_openpi(policy):
    from vla_steer_tools.fixtures.tiny_checkpoints import tiny_observation

    obs = tiny_observation(seed=4, instruction="put the mug on the plate", state=np.zeros(8, np.float32),
                           cameras=("base_0_rgb", "wrist_0_rgb"), size=64)
    pixels, ids = policy.prepare(obs)
    expected, logits = _openpi_decode(policy, pixels, ids, skip=1)
    assert policy.generate(pixels, ids) == expected
    _, contiguous = _openpi_decode(policy, pixels, ids, skip=0)  # LeRobot's positions: the test can tell
    assert not torch.allclose(contiguous[1], logits[1], atol=1e-4)


def test_plain_tree_missing_and_unexpected_keys_are_named(tree, tmp_path):
    flat = dict(tree)
    del flat["llm/final_norm/scale"]
    flat["llm/layers/attn/q_einsum/lora_a"] = np.zeros((2, 2), np.float32)
    flat["img/extra/kernel"] = np.zeros((2, 2), np.float32)
    src = write_openpi_checkpoint(tmp_path / "ckpt", flat, nnx_value=False)
    from vla_steer_tools.models.pi0fast.convert_openpi import ConvertOptions, convert_openpi_pi0fast

    with pytest.raises(CheckpointError) as err:
        convert_openpi_pi0fast(src, tmp_path / "out", ConvertOptions(chunk_size=CHUNK, action_dim=ACTION_DIM))
    message = str(err.value)
    assert "missing keys: ['llm/final_norm/scale']" in message
    assert "LoRA adapters ['llm/layers/attn/q_einsum/lora_a']" in message
    assert "unexpected keys: ['img/extra/kernel']" in message
    assert not (tmp_path / "out").exists()


def test_wrong_shapes_and_missing_statistics_are_clear(tree, tmp_path):
    flat = dict(tree)
    flat["llm/layers/mlp/linear"] = flat["llm/layers/mlp/linear"][0]  # a layer axis lost
    with pytest.raises(CheckpointError, match=r"wrong ranks: \['llm/layers/mlp/linear \(128, 64\)"):
        to_transformers(flat, "tree")
    (tmp_path / "ckpt" / "params").mkdir(parents=True)
    from vla_steer_tools.models.pi0fast.convert_openpi import ConvertOptions, convert_openpi_pi0fast

    with pytest.raises(CheckpointError, match="norm_stats.json"):
        convert_openpi_pi0fast(tmp_path / "ckpt", tmp_path / "out", ConvertOptions(chunk_size=2, action_dim=7))


def test_core_cli_does_not_import_jax():
    code = ("import argparse, importlib, sys; from vla_steer_tools.cli.main import CORE_COMMANDS; "
            "sub = argparse.ArgumentParser().add_subparsers(); "
            "[importlib.import_module(f'vla_steer_tools.cli.{n}').register(sub) for n in CORE_COMMANDS]; "
            "print(sorted(m for m in ('jax', 'orbax', 'tensorstore') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
