"""`vla-steer convert openpi-pi0fast`: an openpi (JAX) pi0-FAST checkpoint -> LeRobot's pi0_fast
layout, the one `load_policy("pi0fast", ...)` reads (and LeRobot itself).

Why: the paper's pi0-FAST checkpoints (LIBERO, the UR5) are openpi checkpoints: an orbax params
tree (`<ckpt>/params/`) plus the dataset statistics openpi trained with
(`<ckpt>/assets/<asset_id>/norm_stats.json`). Written here: `model.safetensors` (transformers
PaliGemma names under LeRobot's prefix, see `openpi_params`), `config.json` (type pi0_fast),
LeRobot's pre/post-processor pipelines with the statistics as `observation.state.*` / `action.*`,
and `openpi_conversion.json` saying where it all came from and that the weights expect openpi's
prompt conventions (`config.PROMPT_FORMATS`: no second <bos>, lower-cased task, openpi's decode
positions and normaliser), which `load_pi0fast` then follows.

What the checkpoint does not hold is asked for: the action horizon and action dim the model was
trained with (openpi keeps them in its Python train config, e.g. pi0_fast_libero: 10 x 7,
pi0_fast_droid: 10 x 8). A wrong pair does not load silently wrong: FAST decoding then fails.
openpi normalises pi0-FAST with quantiles (`use_quantile_norm` for every non-pi0 model).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...errors import CheckpointError, ConfigError, UnknownChoiceError
from .config import ACTION_KEY, IMAGE_PREFIX, OPENPI_RECORD, STATE_KEY, to_lerobot_key

log = logging.getLogger(__name__)

#: openpi's camera names (models/model.py IMAGE_KEYS, what its LIBERO / DROID / ALOHA inputs produce).
OPENPI_CAMERAS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
#: openpi trained pi0-FAST with these tokenizers (FASTTokenizer: big_vision's PaliGemma sentencepiece).
TEXT_TOKENIZER = "google/paligemma-3b-pt-224"
FAST_TOKENIZER = "physical-intelligence/fast"
NORM_MODES = ("QUANTILES", "MEAN_STD")
DTYPES = ("keep", "float32", "bfloat16")
#: openpi norm_stats.json feature names -> LeRobot feature names.
_FEATURES = {"state": STATE_KEY, "actions": ACTION_KEY}
_PRE_STATE = "policy_preprocessor_step_3_normalizer_processor.safetensors"
_POST_STATE = "policy_postprocessor_step_0_unnormalizer_processor.safetensors"
PROVENANCE_FILE = OPENPI_RECORD  # also tells the loader to run openpi's prompt conventions


@dataclass(frozen=True)
class ConvertOptions:
    """What the openpi checkpoint does not record, plus output choices."""

    chunk_size: int
    action_dim: int
    cameras: Sequence[str] = OPENPI_CAMERAS
    state_dim: int | None = None  # default: the length of the state statistics
    asset_id: str | None = None  # default: the only one under assets/
    max_token_len: int = 250  # Pi0FASTConfig.max_token_len default (pi0_fast_libero: 180)
    max_decoding_steps: int = 256
    normalization: str = "QUANTILES"
    dtype: str = "keep"
    tokenizer: Path | None = None  # local PaliGemma tokenizer dir copied to <dst>/tokenizer
    fast_tokenizer: Path | None = None  # local FAST tokenizer dir copied to <dst>/fast_tokenizer
    extra: Mapping[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.chunk_size < 1 or self.action_dim < 1:
            raise ConfigError(f"chunk_size and action_dim must be >= 1 (got {self.chunk_size}, {self.action_dim})")
        if not self.cameras:
            raise ConfigError("at least one camera name is needed")
        if self.normalization not in NORM_MODES:
            raise UnknownChoiceError("normalization", self.normalization, NORM_MODES)
        if self.dtype not in DTYPES:
            raise UnknownChoiceError("dtype", self.dtype, DTYPES)


# ----------------------------------------------------------------------------- statistics


def find_norm_stats(checkpoint: Path, asset_id: str | None) -> tuple[str, Path]:
    """(asset_id, norm_stats.json) under `<checkpoint>/assets/`; the asset id must be given when
    there are several."""
    assets = checkpoint / "assets"
    found = sorted(p.parent.relative_to(assets).as_posix() for p in assets.rglob("norm_stats.json")) \
        if assets.is_dir() else []
    if asset_id is None:
        if len(found) != 1:
            raise CheckpointError(f"{assets} holds {len(found)} norm_stats.json ({found}); pass --asset-id "
                                  "(openpi's AssetsConfig.asset_id)" if found else
                                  f"no assets/<asset_id>/norm_stats.json in {checkpoint}: openpi checkpoints keep "
                                  "the training statistics there")
        asset_id = found[0]
    path = assets / asset_id / "norm_stats.json"
    if not path.is_file():
        raise CheckpointError(f"no {path} (asset ids found: {found})")
    return asset_id, path


def read_norm_stats(path: Path, state_dim: int | None, action_dim: int) -> tuple[dict[str, np.ndarray], int]:
    """openpi's {"norm_stats": {"state"|"actions": {mean, std, q01, q99}}} -> LeRobot's flat
    {"observation.state.q01": ..., "action.mean": ...}, cut to the model's dims (openpi pads
    statistics to the model width in some configs and slices them the same way when
    un-normalising). Returns the statistics and the state dim."""
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))["norm_stats"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is not an openpi norm_stats.json ({exc})") from exc
    missing = [k for k in _FEATURES if k not in stats]
    if missing:
        raise CheckpointError(f"{path} lacks statistics for {missing} (has {sorted(stats)})")
    state_len = len(stats["state"]["mean"])
    dims = {"state": state_dim or state_len, "actions": action_dim}
    out: dict[str, np.ndarray] = {}
    for name, feature in _FEATURES.items():
        for stat in ("mean", "std", "q01", "q99"):
            values = stats[name].get(stat)
            if values is None:
                continue
            arr = np.asarray(values, dtype=np.float32).reshape(-1)
            if arr.size < dims[name]:
                raise CheckpointError(f"{path}: {name}.{stat} has {arr.size} values, the model needs {dims[name]}")
            out[f"{feature}.{stat}"] = arr[: dims[name]]
    return out, dims["state"]


# ----------------------------------------------------------------------------- LeRobot files


def lerobot_config(variant: str, image_size: int, state_dim: int, options: ConvertOptions) -> dict[str, Any]:
    """LeRobot's pi0_fast config.json for the converted model (fields as LeRobot writes them)."""
    images = {f"{IMAGE_PREFIX}{c}": {"type": "VISUAL", "shape": [3, image_size, image_size]} for c in options.cameras}
    return {
        "type": "pi0_fast", "n_obs_steps": 1,
        "input_features": {STATE_KEY: {"type": "STATE", "shape": [state_dim]}, **images},
        "output_features": {ACTION_KEY: {"type": "ACTION", "shape": [options.action_dim]}},
        "device": "cpu", "use_amp": False, "push_to_hub": False,
        "paligemma_variant": variant, "action_expert_variant": "gemma_300m",
        "dtype": "bfloat16" if options.dtype == "bfloat16" else "float32",
        "chunk_size": options.chunk_size, "n_action_steps": options.chunk_size,
        "max_state_dim": max(32, state_dim), "max_action_dim": max(32, options.action_dim),
        "max_action_tokens": options.max_decoding_steps, "use_relative_actions": False,
        "relative_exclude_joints": ["gripper"], "action_feature_names": None, "rtc_config": None,
        "image_resolution": [image_size, image_size], "empty_cameras": 0,
        "tokenizer_max_length": options.max_token_len, "text_tokenizer_name": TEXT_TOKENIZER,
        "action_tokenizer_name": FAST_TOKENIZER, "temperature": 0.0,
        "max_decoding_steps": options.max_decoding_steps, "fast_skip_tokens": 128, "use_kv_cache": True,
        "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": options.normalization,
                                  "ACTION": options.normalization},
        "gradient_checkpointing": False, "compile_model": False,
    }


def write_processor_files(out: Path, config: Mapping[str, Any], stats: Mapping[str, np.ndarray]) -> None:
    """LeRobot's policy_preprocessor / policy_postprocessor pipelines of pi0_fast + their statistics."""
    import torch
    from safetensors.torch import save_file

    features = {**config["input_features"], **config["output_features"]}
    norm = {"config": {"eps": 1e-8, "features": features, "norm_map": config["normalization_mapping"]}}
    pre = {"name": "policy_preprocessor", "steps": [
        {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
        {"registry_name": "to_batch_processor", "config": {}},
        {"registry_name": "relative_actions_processor", "config": {"enabled": False, "exclude_joints": ["gripper"]}},
        {"registry_name": "normalizer_processor", **norm, "state_file": _PRE_STATE},
        {"registry_name": "pi0_fast_prepare_state_tokenizer_processor_step",
         "config": {"max_state_dim": config["max_state_dim"], "task_key": "task"}},
        {"registry_name": "tokenizer_processor", "config": {
            "max_length": config["tokenizer_max_length"], "task_key": "task", "padding_side": "right",
            "padding": "max_length", "truncation": True, "tokenizer_name": config["text_tokenizer_name"]}},
        {"registry_name": "action_tokenizer_processor", "config": {
            "action_tokenizer_name": config["action_tokenizer_name"], "trust_remote_code": True,
            "max_action_tokens": config["max_action_tokens"], "fast_skip_tokens": config["fast_skip_tokens"],
            "paligemma_tokenizer_name": config["text_tokenizer_name"]}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
    ]}
    post = {"name": "policy_postprocessor", "steps": [
        {"registry_name": "unnormalizer_processor", **norm, "state_file": _POST_STATE},
        {"registry_name": "absolute_actions_processor", "config": {"enabled": False}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
    ]}
    for name, spec in (("policy_preprocessor.json", pre), ("policy_postprocessor.json", post)):
        _write_json(out / name, spec)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in stats.items()}
    save_file(tensors, str(out / _PRE_STATE))
    save_file({k: v for k, v in tensors.items() if k.startswith(f"{ACTION_KEY}.")}, str(out / _POST_STATE))


def to_torch(value: np.ndarray, dtype: str):
    """numpy (bf16 from ml_dtypes included) -> a contiguous torch tensor in the chosen dtype."""
    import torch

    if value.dtype.name == "bfloat16":
        tensor = torch.from_numpy(np.ascontiguousarray(value).view(np.uint16)).view(torch.bfloat16)
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(value))
    if dtype == "float32":
        return tensor.float()
    if dtype == "bfloat16":
        return tensor.bfloat16()
    return tensor


def write_weights(out: Path, weights: Mapping[str, np.ndarray], dtype: str) -> int:
    """model.safetensors under LeRobot's names, the tied LM head stored too (as LeRobot does)."""
    from safetensors.torch import save_file
    from tqdm import tqdm

    from .config import EMBED_KEY, HEAD_KEY

    tensors = {to_lerobot_key(k): to_torch(v, dtype) for k, v in tqdm(weights.items(), desc="weights", unit="tensor")}
    tensors[to_lerobot_key(HEAD_KEY)] = tensors[to_lerobot_key(EMBED_KEY)].clone()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return sum(t.numel() for k, t in tensors.items() if not k.endswith(HEAD_KEY))


def check_against_model(weights: Mapping[str, np.ndarray], config: Mapping[str, Any], where: str) -> None:
    """The converted names and shapes against transformers' PaliGemma built on the meta device."""
    import torch
    from transformers import PaliGemmaForConditionalGeneration

    from ..loading import check_keys
    from .config import HEAD_KEY, Pi0FastSettings, paligemma_config

    with torch.device("meta"):
        model = PaliGemmaForConditionalGeneration(paligemma_config(Pi0FastSettings.from_lerobot(config)))
    shapes = {k: torch.empty(v.shape, device="meta") for k, v in weights.items()}
    check_keys(model, shapes, where, optional=(HEAD_KEY,))


# ----------------------------------------------------------------------------- conversion


def convert_openpi_pi0fast(src: str | os.PathLike, dst: str | os.PathLike, options: ConvertOptions,
                           overwrite: bool = False) -> dict[str, Any]:
    """Convert; returns the provenance record (also written to `<dst>/openpi_conversion.json`)."""
    from .openpi_params import infer_shape, read_params_tree, to_transformers

    options.check()
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not (src / "params").is_dir():
        raise CheckpointError(f"{src} has no params/ directory: pass an openpi checkpoint (the step directory "
                              "holding params/ and assets/)")
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise ConfigError(f"{dst} exists and is not empty; pass --overwrite to replace it")
    asset_id, stats_path = find_norm_stats(src, options.asset_id)
    stats, state_dim = read_norm_stats(stats_path, options.state_dim, options.action_dim)
    log.info("reading openpi params %s (orbax)", src / "params")
    flat = read_params_tree(src / "params")
    weights = to_transformers(flat, str(src / "params"))
    variant, image_size = infer_shape(flat, str(src / "params"))
    config = lerobot_config(variant, image_size, state_dim, options)
    check_against_model(weights, config, str(src / "params"))
    record = {"source": str(src.resolve()), "prompt_format": "openpi", "asset_id": asset_id, "paligemma_variant": variant,
              "image_size": image_size, "state_dim": state_dim, "action_dim": options.action_dim,
              "chunk_size": options.chunk_size, "normalization": options.normalization,
              "stored_dtypes": sorted({v.dtype.name for v in flat.values()}), "dtype": options.dtype,
              "openpi_keys": len(flat), **dict(options.extra)}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        _write_json(tmp / "config.json", config)
        write_processor_files(tmp, config, stats)
        record["parameters"] = write_weights(tmp, weights, options.dtype)
        for name, source in (("tokenizer", options.tokenizer), ("fast_tokenizer", options.fast_tokenizer)):
            if source is not None:
                shutil.copytree(Path(source).expanduser(), tmp / name)
        _write_json(tmp / PROVENANCE_FILE, record)
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return record


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
