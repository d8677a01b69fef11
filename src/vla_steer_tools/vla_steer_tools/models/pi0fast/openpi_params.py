"""openpi's pi0-FAST parameter tree (orbax, JAX layouts) -> transformers PaliGemma tensors.

openpi (`training/checkpoints.py`) saves the inference params as the orbax PyTree item
`<checkpoint>/params/` = `{"params": {"PaliGemma": {"llm": ..., "img": ...}}}`; trees saved
during training end every path with nnx's `value` (openpi's `restore_params` drops it, so do we).
`llm` is big_vision's Gemma as `models/gemma_fast.py` builds it (layers stacked on axis 0 by
`nn.scan`), `img` the SigLIP So400m/14 of `models/siglip.py` (`Transformer/encoderblock`, also
stacked) with its `head` Dense as PaliGemma's projector. Einsum weights are re-laid out as
torch Linear weights (out, in): e.g. `q_einsum` (L, N, D, H) -> q_proj (N*H, D) per layer.

Every tree key must be used exactly once: a key the mapping does not know, or one it needs
and does not find, is a CheckpointError naming it (a silently dropped LoRA adapter or a
missing layer would otherwise give a model that loads and acts wrongly).
orbax/jax are imported inside `read_params_tree` only, so the rest of the package never needs them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...errors import CheckpointError
from .config import VARIANTS

ROOT = ("params", "PaliGemma")  # openpi's item key, then the nnx.Dict holding llm / img
_NNX_LEAF = "value"


def read_params_tree(params_dir: Path) -> dict[str, np.ndarray]:
    """The orbax params item at `params_dir` as {"llm/...": ndarray} (numpy, stored dtype)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # host arrays only; no TPU/GPU backend probing
    import jax
    import orbax.checkpoint as ocp

    if not (params_dir / "_METADATA").is_file() and not (params_dir / "_CHECKPOINT_METADATA").is_file():
        raise CheckpointError(f"{params_dir} is not an orbax checkpoint (no _METADATA): pass the openpi checkpoint "
                              "directory that holds params/ (and assets/)")
    try:
        with ocp.PyTreeCheckpointer() as ckptr:
            meta = ckptr.metadata(params_dir)
            tree = getattr(getattr(meta, "item_metadata", meta), "tree", meta)  # orbax >= 0.11 wraps it
            restore_args = jax.tree.map(lambda _: ocp.ArrayRestoreArgs(restore_type=np.ndarray), tree)
            restored = ckptr.restore(params_dir, ocp.args.PyTreeRestore(item=tree, restore_args=restore_args))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"cannot read the orbax params at {params_dir}: {exc}") from exc
    return strip_root(flatten(restored), str(params_dir))


def flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], np.ndarray]:
    out: dict[tuple[str, ...], np.ndarray] = {}
    for key, value in tree.items():
        path = prefix + (str(key),)
        if isinstance(value, Mapping):
            out.update(flatten(value, path))
        else:
            out[path] = np.asarray(value)
    return out


def strip_root(flat: Mapping[tuple[str, ...], np.ndarray], where: str) -> dict[str, np.ndarray]:
    """Drop the `params/PaliGemma` root and nnx's trailing `value`; paths joined with '/'."""
    if flat and all(path[-1] == _NNX_LEAF for path in flat):
        flat = {path[:-1]: v for path, v in flat.items()}
    foreign = sorted("/".join(p) for p in flat if p[: len(ROOT)] != ROOT)
    if foreign:
        raise CheckpointError(f"openpi params at {where}: keys outside {'/'.join(ROOT)}/ (not a pi0 / pi0-FAST "
                              f"params tree): {foreign[:8]}")
    return {"/".join(path[len(ROOT):]): v for path, v in flat.items()}


_BLOCK = "img/Transformer/encoderblock/"
_ATTN = _BLOCK + "MultiHeadDotProductAttention_0/"
#: Every key of a pi0-FAST tree and its number of dims (stacked layers add the leading axis).
VISION_KEYS: dict[str, int] = {
    "img/embedding/kernel": 4, "img/embedding/bias": 1, "img/pos_embedding": 3,
    **{_BLOCK + f"LayerNorm_{i}/{p}": 2 for i in (0, 1) for p in ("scale", "bias")},
    **{_BLOCK + f"MlpBlock_0/Dense_{i}/kernel": 3 for i in (0, 1)},
    **{_BLOCK + f"MlpBlock_0/Dense_{i}/bias": 2 for i in (0, 1)},
    **{_ATTN + f"{n}/kernel": 4 for n in ("query", "key", "value", "out")},
    **{_ATTN + f"{n}/bias": 3 for n in ("query", "key", "value")}, _ATTN + "out/bias": 2,
    "img/Transformer/encoder_norm/scale": 1, "img/Transformer/encoder_norm/bias": 1,
    "img/head/kernel": 2, "img/head/bias": 1,
}
TEXT_KEYS: dict[str, int] = {
    "llm/embedder/input_embedding": 2, "llm/final_norm/scale": 1,
    "llm/layers/attn/q_einsum/w": 4, "llm/layers/attn/kv_einsum/w": 5, "llm/layers/attn/attn_vec_einsum/w": 4,
    "llm/layers/mlp/gating_einsum": 4, "llm/layers/mlp/linear": 3,
    "llm/layers/pre_attention_norm/scale": 2, "llm/layers/pre_ffw_norm/scale": 2,
}
#: gemma_fast's attention when num_kv_heads == num_heads: one einsum instead of q + kv.
_QKV = "llm/layers/attn/qkv_einsum/w"


def expected_keys(flat: Mapping[str, np.ndarray]) -> dict[str, int]:
    keys = {**VISION_KEYS, **TEXT_KEYS}
    if _QKV in flat:
        del keys["llm/layers/attn/q_einsum/w"], keys["llm/layers/attn/kv_einsum/w"]
        keys[_QKV] = 5
    return keys


def check_tree(flat: Mapping[str, np.ndarray], where: str) -> None:
    """CheckpointError naming every missing, unexpected (LoRA called out) or mis-ranked key."""
    keys = expected_keys(flat)
    missing = sorted(k for k in keys if k not in flat)
    left = sorted(k for k in flat if k not in keys)
    lora = [k for k in left if "lora" in k]
    other = [k for k in left if "lora" not in k]
    ranks = sorted(f"{k} {flat[k].shape} (expected {n} dims)" for k, n in keys.items()
                   if k in flat and flat[k].ndim != n)
    problems = []
    if missing:
        problems.append(f"missing keys: {missing[:12]}")
    if lora:
        problems.append(f"LoRA adapters {lora[:6]} (merge them into the base weights first; not converted)")
    if other:
        problems.append(f"unexpected keys: {other[:12]}" + (f" ... ({len(other) - 12} more)" if len(other) > 12 else ""))
    if ranks:
        problems.append(f"wrong ranks: {ranks[:6]}")
    if problems:
        raise CheckpointError(f"openpi params at {where} are not a pi0-FAST PaliGemma tree; " + "; ".join(problems))


def infer_shape(flat: Mapping[str, np.ndarray], where: str) -> tuple[str, int]:
    """(VARIANTS name, image size) whose widths match a checked tree; CheckpointError listing them if none."""
    vocab, width = flat["llm/embedder/input_embedding"].shape
    if _QKV in flat:
        depth, _, heads, _, head_dim = flat[_QKV].shape
        kv_heads = heads
    else:
        depth, heads, _, head_dim = flat["llm/layers/attn/q_einsum/w"].shape
        kv_heads = flat["llm/layers/attn/kv_einsum/w"].shape[2]
    patch, _, _, v_width = flat["img/embedding/kernel"].shape
    v_depth, _, v_heads, _ = flat[_ATTN + "query/kernel"].shape
    found = {"text": dict(hidden_size=width, num_hidden_layers=depth,
                          intermediate_size=flat["llm/layers/mlp/gating_einsum"].shape[3], num_attention_heads=heads,
                          num_key_value_heads=kv_heads, head_dim=head_dim, vocab_size=vocab),
             "vision": dict(hidden_size=v_width, intermediate_size=flat[_BLOCK + "MlpBlock_0/Dense_0/kernel"].shape[2],
                            num_hidden_layers=v_depth, num_attention_heads=v_heads, patch_size=patch),
             "projection_dim": flat["img/head/kernel"].shape[1]}
    n_patches = flat["img/pos_embedding"].shape[1]
    side = math.isqrt(n_patches)
    if side * side != n_patches:
        raise CheckpointError(f"openpi params at {where}: {n_patches} SigLIP positions are not a square grid")
    for name, variant in VARIANTS.items():
        if variant == found:
            return name, side * patch
    raise CheckpointError(f"openpi params at {where}: no known PaliGemma variant has these widths {found} "
                          f"(known: {sorted(VARIANTS)})")


def to_transformers(flat: Mapping[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """Every tensor of a pi0-FAST tree under its transformers PaliGemmaForConditionalGeneration name."""
    check_tree(flat, where)
    return {**_vision(flat), **_language(flat)}


def _vision(t: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    v = "model.vision_tower."
    kernel = t["img/embedding/kernel"]  # (p, p, 3, W): flax Conv HWIO
    pos = t["img/pos_embedding"]  # (1, patches, W), row-major over the patch grid
    out = {v + "embeddings.patch_embedding.weight": kernel.transpose(3, 2, 0, 1),
           v + "embeddings.patch_embedding.bias": t["img/embedding/bias"],
           v + "embeddings.position_embedding.weight": pos.reshape(-1, pos.shape[-1])}
    stacked = {"layer_norm1.weight": "LayerNorm_0/scale", "layer_norm1.bias": "LayerNorm_0/bias",
               "layer_norm2.weight": "LayerNorm_1/scale", "layer_norm2.bias": "LayerNorm_1/bias",
               "mlp.fc1.weight": "MlpBlock_0/Dense_0/kernel", "mlp.fc1.bias": "MlpBlock_0/Dense_0/bias",
               "mlp.fc2.weight": "MlpBlock_0/Dense_1/kernel", "mlp.fc2.bias": "MlpBlock_0/Dense_1/bias"}
    projections = {"q_proj": "query", "k_proj": "key", "v_proj": "value"}
    o_kernel = t[_ATTN + "out/kernel"]  # (L, N, H, W)
    for i in range(o_kernel.shape[0]):
        layer = f"{v}encoder.layers.{i}."
        for name, key in stacked.items():
            value = t[_BLOCK + key][i]
            out[layer + name] = value.T if value.ndim == 2 else value  # Dense kernels are (in, out)
        for proj, name in projections.items():
            kern = t[f"{_ATTN}{name}/kernel"][i]  # (W, N, H)
            out[f"{layer}self_attn.{proj}.weight"] = kern.reshape(kern.shape[0], -1).T
            out[f"{layer}self_attn.{proj}.bias"] = t[f"{_ATTN}{name}/bias"][i].reshape(-1)
        out[f"{layer}self_attn.out_proj.weight"] = o_kernel[i].reshape(-1, o_kernel.shape[-1]).T
        out[f"{layer}self_attn.out_proj.bias"] = t[_ATTN + "out/bias"][i]
    out[v + "post_layernorm.weight"] = t["img/Transformer/encoder_norm/scale"]
    out[v + "post_layernorm.bias"] = t["img/Transformer/encoder_norm/bias"]
    out["model.multi_modal_projector.linear.weight"] = t["img/head/kernel"].T
    out["model.multi_modal_projector.linear.bias"] = t["img/head/bias"]
    return out


def _language(t: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    lm, lay = "model.language_model.", "llm/layers/"
    out = {lm + "embed_tokens.weight": t["llm/embedder/input_embedding"], lm + "norm.weight": t["llm/final_norm/scale"]}
    if _QKV in t:  # (L, 3, N, D, H)
        q, kv = t[_QKV][:, 0], t[_QKV][:, 1:]
    else:
        q, kv = t[lay + "attn/q_einsum/w"], t[lay + "attn/kv_einsum/w"]  # (L, N, D, H), (L, 2, K, D, H)
    o = t[lay + "attn/attn_vec_einsum/w"]  # (L, N, H, D)
    gating, linear = t[lay + "mlp/gating_einsum"], t[lay + "mlp/linear"]  # (L, 2, D, F), (L, F, D)
    for i in range(q.shape[0]):
        layer = f"{lm}layers.{i}."
        out[layer + "self_attn.q_proj.weight"] = _heads_to_linear(q[i])
        out[layer + "self_attn.k_proj.weight"] = _heads_to_linear(kv[i, 0])
        out[layer + "self_attn.v_proj.weight"] = _heads_to_linear(kv[i, 1])
        out[layer + "self_attn.o_proj.weight"] = o[i].reshape(-1, o.shape[-1]).T  # (D, N*H)
        out[layer + "mlp.gate_proj.weight"] = gating[i, 0].T
        out[layer + "mlp.up_proj.weight"] = gating[i, 1].T
        out[layer + "mlp.down_proj.weight"] = linear[i].T
        out[layer + "input_layernorm.weight"] = t[lay + "pre_attention_norm/scale"][i]  # both apply (1 + scale)
        out[layer + "post_attention_layernorm.weight"] = t[lay + "pre_ffw_norm/scale"][i]
    return out


def _heads_to_linear(w: np.ndarray) -> np.ndarray:
    """(N, D, H) einsum weight -> (N*H, D) torch Linear weight, head-major like transformers' view."""
    return w.transpose(0, 2, 1).reshape(-1, w.shape[1])
