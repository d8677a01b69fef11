"""Pi0 as a `Policy`: transformers' native `PI0ForConditionalGeneration` loading LeRobot-format
checkpoints (LeRobot `config.json` + `model.safetensors` + normalizer statistics).

LeRobot names weights after its own module tree (`model.paligemma_with_expert.paligemma...`,
`model.state_proj`, ...); `from_lerobot_key` maps them onto transformers' names (the same renames
transformers applies in its own loader, plus the pre-0.4 LeRobot layout). The preprocessing is the
one the checkpoints were trained with: images resized with padding to 224 and scaled to [-1, 1];
task text + "\\n" after <bos>; state normalized (MEAN_STD by default) and zero-padded to
`max_state_dim`; the first `action_dim` outputs un-normalized. Noise comes from a seeded generator
so the same observation gives the same chunk (pass `seed=None` for fresh noise each call).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError, ObservationError, UnknownChoiceError
from ..policy import Policy
from ..types import ActionChunk, Observation
from .base import ModelAdapter
from .hf_causal_lm import decoder_adapter, token_decoder
from .inputs import check_image, check_instruction, check_state
from .loading import (
    check_keys,
    default_dtype,
    read_safetensors,
    read_lerobot_config,
    resolve_checkpoint_dir,
    resolve_device,
    resolve_dtype,
    safetensors_files,
    skip_init,
)

log = logging.getLogger(__name__)

DEFAULT_TOKENIZER = "google/paligemma-3b-pt-224"
IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ACTION_KEY = "action"
_HUB_FILES = ("*.json", "*.safetensors")

#: PaliGemma variants: Gemma text model, SigLIP tower, projector width. `vla_steer_tiny` = test fixture.
PALIGEMMA_VARIANTS: dict[str, dict[str, Any]] = {
    "gemma_2b": {
        "text": dict(hidden_size=2048, num_hidden_layers=18, intermediate_size=16384, num_attention_heads=8,
                     num_key_value_heads=1, head_dim=256, vocab_size=257152),
        "vision": dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                       patch_size=14),
        "projection_dim": 2048,
    },
    "vla_steer_tiny": {
        "text": dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=2,
                     num_key_value_heads=1, head_dim=32, vocab_size=1024),
        "vision": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                       patch_size=14),
        "projection_dim": 64,
    },
}
#: Action-expert (Gemma) variants; head_dim and kv heads must match the PaliGemma text model.
EXPERT_VARIANTS: dict[str, dict[str, int]] = {
    "gemma_300m": dict(hidden_size=1024, num_hidden_layers=18, intermediate_size=4096, num_attention_heads=8,
                       num_key_value_heads=1, head_dim=256),
    "vla_steer_tiny_expert": dict(hidden_size=32, num_hidden_layers=2, intermediate_size=64, num_attention_heads=2,
                                  num_key_value_heads=1, head_dim=32),
}

# ----------------------------------------------------------------------------- config


def _image_size(lerobot: Mapping[str, Any]) -> int:
    size = lerobot.get("image_resolution") or lerobot.get("resize_imgs_with_padding") or (224, 224)
    if size[0] != size[1]:
        raise ConfigError(f"non-square Pi0 image resolution {list(size)} is not supported")
    return int(size[0])


def build_pi0_config(lerobot: Mapping[str, Any]):
    """transformers `PI0Config` from a LeRobot pi0 `config.json` dict."""
    from transformers import PI0Config

    if lerobot.get("type", "pi0") != "pi0":
        raise ConfigError(f"config.json has type {lerobot.get('type')!r}; this loader reads LeRobot 'pi0'")
    unsupported = [k for k in ("adapt_to_pi_aloha", "use_delta_joint_actions_aloha") if lerobot.get(k)]
    if unsupported:  # silently skipping these would give wrong joint actions
        raise ConfigError(f"Pi0 config sets {unsupported}: the ALOHA joint-space conversions are not implemented")
    pg_name = lerobot.get("paligemma_variant", "gemma_2b")
    ex_name = lerobot.get("action_expert_variant", "gemma_300m")
    if pg_name not in PALIGEMMA_VARIANTS:
        raise UnknownChoiceError("paligemma_variant", pg_name, PALIGEMMA_VARIANTS)
    if ex_name not in EXPERT_VARIANTS:
        raise UnknownChoiceError("action_expert_variant", ex_name, EXPERT_VARIANTS)
    pg = PALIGEMMA_VARIANTS[pg_name]
    vocab = pg["text"]["vocab_size"]
    return PI0Config(
        vlm_config={
            "model_type": "paligemma",
            "text_config": {"model_type": "gemma", **pg["text"]},
            "vision_config": {"model_type": "siglip_vision_model", **pg["vision"], "image_size": _image_size(lerobot),
                              "vision_use_head": False},
            "projection_dim": pg["projection_dim"],
            "image_token_id": vocab,  # one past the vocabulary, as PaliGemma's <image>
        },
        dit_config={"model_type": "gemma", **EXPERT_VARIANTS[ex_name]},
        chunk_size=int(lerobot.get("chunk_size", 50)),
        max_state_dim=int(lerobot.get("max_state_dim", 32)),
        max_action_dim=int(lerobot.get("max_action_dim", 32)),
        num_inference_steps=int(lerobot.get("num_inference_steps", lerobot.get("num_steps", 10))),
        min_period=float(lerobot.get("min_period", 4e-3)),
        max_period=float(lerobot.get("max_period", 4.0)),
    )


# ----------------------------------------------------------------------------- weight names

_PG = r"^model\.paligemma_with_expert\.paligemma\."
_EX = r"^model\.paligemma_with_expert\.gemma_expert\."
#: LeRobot name -> transformers name, first match wins (LeRobot >= 0.4 layout, then the older one).
_FROM_LEROBOT: tuple[tuple[str, str], ...] = (
    (_PG + r"lm_head\.", "model.vlm.language_model.embed_tokens."),
    (_PG + r"model\.", "model.vlm."),
    (_PG + r"language_model\.lm_head\.", "model.vlm.language_model.embed_tokens."),
    (_PG + r"language_model\.model\.", "model.vlm.language_model."),
    (_PG + r"(vision_tower|multi_modal_projector)\.", r"model.vlm.\1."),
    (_EX + r"lm_head\.", "model.dit.embed_tokens."),
    (_EX + r"model\.", "model.dit."),
    (r"^model\.(state_proj|action_in_proj|action_time_mlp_in|action_time_mlp_out)\.", r"embed_action_time.\1."),
    (r"^model\.action_out_proj\.", "action_out_proj."),
)
#: Statistics buffers that pre-0.4 LeRobot kept inside model.safetensors.
_STATS_BUFFER = re.compile(r"^(normalize_inputs|normalize_targets|unnormalize_outputs)\.buffer_(\w+)\.(\w+)$")
#: The expert's token table is never used by Pi0 (it reads embeddings); LeRobot may omit it.
OPTIONAL_KEYS = ("model.dit.embed_tokens.weight",)


def from_lerobot_key(key: str) -> str | None:
    """transformers name of a LeRobot weight name, None when it is not a model weight."""
    for pattern, repl in _FROM_LEROBOT:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new.replace("vision_tower.vision_model.", "vision_tower.")
    return None


def to_lerobot_key(key: str) -> str:
    """LeRobot >= 0.4 name of a transformers PI0 weight (used by the fixture writer)."""
    if key == "model.vlm.language_model.embed_tokens.weight":
        return "model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
    if key == "model.dit.embed_tokens.weight":
        return "model.paligemma_with_expert.gemma_expert.lm_head.weight"
    if key.startswith("model.vlm.vision_tower."):
        return "model.paligemma_with_expert.paligemma.model.vision_tower.vision_model." + key[len("model.vlm.vision_tower."):]
    if key.startswith("model.vlm."):
        return "model.paligemma_with_expert.paligemma.model." + key[len("model.vlm."):]
    if key.startswith("model.dit."):
        return "model.paligemma_with_expert.gemma_expert.model." + key[len("model.dit."):]
    if key.startswith("embed_action_time."):
        return "model." + key[len("embed_action_time."):]
    if key.startswith("action_out_proj."):
        return "model." + key
    raise KeyError(f"no LeRobot name for transformers PI0 weight {key!r}")


def convert_lerobot_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """-> (weights by transformers name, statistics buffers, unrecognised keys).

    A tied table stored twice (embed_tokens and lm_head) maps to one name: embed_tokens wins.
    """
    weights: dict[str, torch.Tensor] = {}
    stats: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key in sorted(state, key=lambda k: "lm_head" in k):  # embed_tokens before lm_head
        match = _STATS_BUFFER.match(key)
        if match:
            feature = match.group(2).replace("_", ".")  # observation_state -> observation.state
            stats.setdefault(f"{feature}.{match.group(3)}", state[key])
            continue
        new = from_lerobot_key(key)
        if new is None:
            unknown.append(key)
        elif new not in weights:
            weights[new] = state[key]
    return weights, stats, unknown


# ----------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Normalizer:
    """LeRobot's per-feature normalization (MEAN_STD, MIN_MAX, QUANTILES or IDENTITY)."""

    mode: str
    stats: Mapping[str, np.ndarray]
    eps: float = 1e-8

    NEEDS = {"MEAN_STD": ("mean", "std"), "MIN_MAX": ("min", "max"), "QUANTILES": ("q01", "q99"), "IDENTITY": ()}

    def normalize(self, x: np.ndarray) -> np.ndarray:
        s = self.stats
        if self.mode == "MEAN_STD":
            return (x - s["mean"]) / (s["std"] + self.eps)
        if self.mode == "MIN_MAX":
            return 2.0 * (x - s["min"]) / (s["max"] - s["min"] + self.eps) - 1.0
        if self.mode == "QUANTILES":
            return 2.0 * (x - s["q01"]) / (s["q99"] - s["q01"] + self.eps) - 1.0
        return x

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        s = self.stats
        if self.mode == "MEAN_STD":
            return x * s["std"] + s["mean"]
        if self.mode == "MIN_MAX":
            return (x + 1.0) / 2.0 * (s["max"] - s["min"]) + s["min"]
        if self.mode == "QUANTILES":
            return (x + 1.0) / 2.0 * (s["q99"] - s["q01"]) + s["q01"]
        return x


def _state_file(directory: Path, pipeline: str, registry_name: str) -> Path | None:
    """The statistics file of a LeRobot processor pipeline step (from its json, else by name)."""
    spec = directory / f"{pipeline}.json"
    if spec.is_file():
        for step in json.loads(spec.read_text(encoding="utf-8")).get("steps", []):
            if step.get("registry_name") == registry_name and step.get("state_file"):
                return directory / step["state_file"]
    found = sorted(directory.glob(f"{pipeline}_step_*_{registry_name}.safetensors"))
    return found[0] if found else None


def read_statistics(directory: Path, buffers: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """"feature.stat" -> array, from the processor state files or (older) model buffers."""
    out: dict[str, np.ndarray] = {k: v.float().numpy() for k, v in buffers.items()}
    for pipeline, step in (("policy_preprocessor", "normalizer_processor"),
                           ("policy_postprocessor", "unnormalizer_processor")):
        path = _state_file(directory, pipeline, step)
        if path is not None:
            if not path.is_file():
                raise CheckpointError(f"{pipeline}.json names {path.name}, which is missing in {directory}")
            out.update({k: v.float().numpy() for k, v in read_safetensors([path]).items()})
    return out


def _normalizer(kind: str, feature: str, lerobot: Mapping[str, Any], stats: Mapping[str, np.ndarray],
                directory: Path) -> Normalizer:
    mode = str(lerobot.get("normalization_mapping", {}).get(kind, "MEAN_STD"))
    if mode not in Normalizer.NEEDS:
        raise UnknownChoiceError(f"normalization mode for {kind}", mode, Normalizer.NEEDS)
    needed = {name: stats.get(f"{feature}.{name}") for name in Normalizer.NEEDS[mode]}
    missing = [f"{feature}.{n}" for n, v in needed.items() if v is None]
    if missing:
        raise ConfigError(
            f"checkpoint {directory} lacks normalization statistics {missing} ({kind} uses {mode}); looked in "
            "policy_preprocessor/postprocessor state files and model.safetensors buffers"
        )
    return Normalizer(mode, {k: np.asarray(v, dtype=np.float32) for k, v in needed.items()})


# ----------------------------------------------------------------------------- images


def centred_padding(pad: int) -> tuple[int, int]:
    """(before, after) for `pad` pixels: split evenly, the odd one after (bottom / right), as
    openpi's `resize_with_pad` and LeRobot >= 0.4's `resize_with_pad_torch` place the image."""
    return pad // 2, pad - pad // 2


def resize_with_pad(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, size, size) in [-1, 1], the preprocessing the checkpoints were
    trained with: aspect kept (bilinear, no antialias), the image centred, padding reads -1.

    Centred, not all the padding on the left/top: that fed a 480x640 wrist camera to the model
    shifted by half the padding (actions 6e-3..8e-3 off the reference). The padding is black (-1 after scaling, as openpi);
    LeRobot 0.4.0-0.4.2 padded its [0, 1] image with -1 before scaling (-3), reported upstream as a
    bug (lerobot#2218, #2650), so that value is not followed.
    """
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W)
    h, w = x.shape[-2:]
    ratio = max(w / size, h / size)
    new_h, new_w = int(h / ratio), int(w / ratio)
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    top, bottom = centred_padding(size - new_h)
    left, right = centred_padding(size - new_w)
    x = F.pad(x, (left, right, top, bottom), value=0.0)
    return x[0] * 2.0 - 1.0


# ----------------------------------------------------------------------------- policy


class Pi0Policy(Policy):
    """Images + instruction + state -> the whole action chunk (chunk_size x action_dim)."""

    def __init__(self, model, tokenizer, lerobot: Mapping[str, Any], state_norm: Normalizer | None,
                 action_norm: Normalizer, model_id: str, image_keys: Sequence[str] | None = None,
                 num_steps: int | None = None, seed: int | None = 0, action_space: str | None = None,
                 random_weights: bool = False) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.features = [k for k in lerobot.get("input_features", {}) if k.startswith(IMAGE_PREFIX)]
        if not self.features:
            raise ConfigError("Pi0 config.json declares no image input features (observation.images.*)")
        default_keys = [k[len(IMAGE_PREFIX):] for k in self.features]
        self.image_keys = list(image_keys) if image_keys else default_keys
        if len(self.image_keys) != len(self.features):
            raise ConfigError(f"image_keys {self.image_keys} must name one camera per checkpoint image feature "
                              f"{self.features}")
        state_feature = lerobot.get("input_features", {}).get(STATE_KEY)
        self.state_dim = int(state_feature["shape"][0]) if state_feature else None
        self.action_dim = int(lerobot["output_features"][ACTION_KEY]["shape"][0])
        self.state_norm, self.action_norm = state_norm, action_norm
        self.image_size = _image_size(lerobot)
        self.max_text_tokens = int(lerobot.get("tokenizer_max_length", 48))
        self.num_steps = num_steps
        self.seed = seed
        self.action_space = action_space or ("ee_delta_7d" if self.action_dim == 7 else f"pi0_{self.action_dim}d")
        self._warned_missing: set[str] = set()
        inner = model.model
        self._adapter = decoder_adapter(
            model_id=model_id,
            layers={"backbone": list(inner.vlm.language_model.layers), "action_expert": list(inner.dit.layers)},
            token_matrix=inner.vlm.language_model.embed_tokens,  # tied (vocab, d_model)
            decode_token=token_decoder(tokenizer),
            final_norm=inner.vlm.language_model.norm,
            random_weights=random_weights,
            family="pi0",
            chunk_size=int(model.config.chunk_size),
            # The expert is narrower than PaliGemma (1024 vs 2048): its value vectors only project
            # onto its own token table (LeRobot's gemma_expert.lm_head; Pi0 never trains or uses it).
            token_matrices={"action_expert": lambda: inner.dit.embed_tokens.weight.detach()},
        )

    @property
    def adapter(self) -> ModelAdapter:
        return self._adapter

    def infer(self, observation: Observation) -> ActionChunk:
        inputs = self.prepare(observation)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.model.sample_actions(**inputs, num_steps=self.num_steps)  # (1, chunk, max_action_dim)
        if out.device.type == "cuda":
            torch.cuda.synchronize(out.device)
        elapsed = time.perf_counter() - start
        normalized = out[0, :, : self.action_dim].float().cpu().numpy()  # (chunk, action_dim)
        actions = self.action_norm.unnormalize(normalized).astype(np.float32)
        return ActionChunk(actions=actions, action_space=self.action_space, inference_s=elapsed, model_id=self.model_id)

    def prepare(self, observation: Observation) -> dict[str, torch.Tensor]:
        """Observation -> keyword arguments of `sample_actions` (batch of one)."""
        text = check_instruction(observation.instruction)
        pixels = self._images(observation)  # (n_cams, 3, S, S)
        state = self._state(observation)  # (max_state_dim,)
        n_cams = pixels.shape[0]
        tokens = self.tokenizer(text + "\n", add_special_tokens=False).input_ids[: self.max_text_tokens - 1]
        image_token = self.model.config.vlm_config.image_token_id
        tokens_per_image = (self.image_size // self.model.config.vlm_config.vision_config.patch_size) ** 2
        ids = [image_token] * (tokens_per_image * n_cams) + [self.tokenizer.bos_token_id] + tokens
        device, dtype = self.adapter.device, self.model.action_out_proj.weight.dtype
        input_ids = torch.tensor([ids], device=device)
        noise = self._noise().to(device=device, dtype=dtype)
        return {
            "state": state[None].to(device=device, dtype=dtype),
            "input_ids": input_ids,
            "pixel_values": pixels[None].to(device=device, dtype=dtype),
            "pixel_attention_mask": torch.ones(1, n_cams, dtype=torch.bool, device=device),
            "attention_mask": torch.ones_like(input_ids),
            "noise": noise,
        }

    def _images(self, observation: Observation) -> torch.Tensor:
        present = [k for k in self.image_keys if k in observation.images]
        if not present:
            raise ObservationError(f"none of this checkpoint's cameras {self.image_keys} is in the observation "
                                   f"(it has {sorted(observation.images)})")
        for key in set(self.image_keys) - set(present) - self._warned_missing:
            log.warning("camera %r missing from observations: Pi0 runs without it (masked out)", key)
            self._warned_missing.add(key)
        return torch.stack([resize_with_pad(check_image(k, observation.images[k]), self.image_size) for k in present])

    def _state(self, observation: Observation) -> torch.Tensor:
        max_dim = int(self.model.config.max_state_dim)
        if self.state_dim is None:
            return torch.zeros(max_dim)
        state = check_state(observation.state, self.state_dim)
        normalized = self.state_norm.normalize(state) if self.state_norm else state
        return F.pad(torch.from_numpy(np.asarray(normalized, dtype=np.float32)), (0, max_dim - self.state_dim))

    def _noise(self) -> torch.Tensor:
        cfg = self.model.config
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        return torch.randn(1, cfg.chunk_size, cfg.max_action_dim, generator=generator)  # (1, chunk, max_action_dim)


# ----------------------------------------------------------------------------- loading


def _tokenizer_source(directory: Path, explicit: str | None) -> str:
    if explicit:
        return explicit
    if (directory / "tokenizer" / "tokenizer.json").is_file() or (directory / "tokenizer" / "tokenizer.model").is_file():
        return str(directory / "tokenizer")
    spec = directory / "policy_preprocessor.json"
    if spec.is_file():
        for step in json.loads(spec.read_text(encoding="utf-8")).get("steps", []):
            if step.get("registry_name") == "tokenizer_processor":
                return step.get("config", {}).get("tokenizer_name") or DEFAULT_TOKENIZER
    return DEFAULT_TOKENIZER


def _load_tokenizer(source: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot load the PaliGemma tokenizer from {source!r} ({exc}); pass tokenizer=LOCAL_DIR "
            "(a copy of google/paligemma-3b-pt-224's tokenizer files) when offline"
        ) from exc


def load_pi0(
    path: str | os.PathLike,
    device: str = "auto",
    dtype: str = "auto",
    tokenizer: str | None = None,
    image_keys: Sequence[str] | None = None,
    num_steps: int | None = None,
    seed: int | None = 0,
    action_space: str | None = None,
    unnorm_key: str | None = None,
) -> Pi0Policy:
    """Load a LeRobot-format Pi0 checkpoint (local dir or hub id) as a Policy."""
    from transformers import PI0ForConditionalGeneration

    from ..fixtures.tiny_checkpoints import is_fixture

    if unnorm_key:
        raise ConfigError(f"unnorm_key={unnorm_key!r}: Pi0 checkpoints carry a single set of statistics")
    directory = resolve_checkpoint_dir(path, _HUB_FILES)
    lerobot = read_lerobot_config(directory)
    config = build_pi0_config(lerobot)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    weights, buffers, unknown = convert_lerobot_state(read_safetensors(safetensors_files(directory), dt))
    stats = read_statistics(directory, buffers)
    state_norm = _normalizer("STATE", STATE_KEY, lerobot, stats, directory) if STATE_KEY in lerobot.get("input_features", {}) else None
    action_norm = _normalizer("ACTION", ACTION_KEY, lerobot, stats, directory)
    with torch.device(dev), default_dtype(dt), skip_init():
        model = PI0ForConditionalGeneration(config)
    if unknown:
        raise CheckpointError(f"checkpoint {directory} does not match its config; unexpected keys: {unknown[:12]}")
    try:
        check_keys(model, weights, str(directory), OPTIONAL_KEYS)
    except CheckpointError as exc:  # name the keys as they are written in the file
        raise CheckpointError(_lerobot_names(str(exc))) from None
    expected = model.state_dict()
    for key in OPTIONAL_KEYS:  # absent optional tables: zeros, not uninitialised memory
        weights.setdefault(key, torch.zeros_like(expected[key]))
    model.load_state_dict(weights, strict=False)
    model.eval()
    random_weights = is_fixture(directory)
    if random_weights:
        log.warning("%s is a vla-steer test fixture: RANDOM WEIGHTS, actions are meaningless", directory)
    tok = _load_tokenizer(_tokenizer_source(directory, tokenizer))
    log.info("loaded Pi0 %s on %s/%s", directory, dev, dt)
    return Pi0Policy(model, tok, lerobot, state_norm, action_norm, str(path), image_keys=image_keys,
                     num_steps=num_steps, seed=seed, action_space=action_space, random_weights=random_weights)


def _lerobot_names(message: str) -> str:
    """Rewrite transformers weight names in an error message into LeRobot's names."""
    def repl(match: re.Match) -> str:
        try:
            return to_lerobot_key(match.group(0))
        except KeyError:
            return match.group(0)

    return re.sub(r"(?:model\.(?:vlm|dit)|embed_action_time|action_out_proj)\.[\w.]+", repl, message)
