"""LeRobot's pi0-FAST `config.json` (type `pi0_fast`) -> a checked settings object and the
transformers `PaliGemmaConfig` of its backbone; LeRobot weight names -> transformers names.

LeRobot builds pi0-FAST as `model.paligemma_with_expert.paligemma` = a transformers
PaliGemmaForConditionalGeneration (vocab 257,152, image token 257,152, GELU-tanh Gemma), so its
weight names are transformers' own under that prefix, with the SigLIP tower written the
transformers-4 way (`vision_tower.vision_model.*`). The LM head is tied to the input embedding;
LeRobot may store either table or both (`_fix_pytorch_state_dict_keys` copies lm_head into
embed_tokens), and they must agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ...errors import ConfigError, UnknownChoiceError
from ..pi0 import PALIGEMMA_VARIANTS

CONFIG_TYPE = "pi0_fast"
IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ACTION_KEY = "action"
LEROBOT_PREFIX = "model.paligemma_with_expert.paligemma."
EMBED_KEY = "model.language_model.embed_tokens.weight"  # transformers name (inside PaliGemma)
HEAD_KEY = "lm_head.weight"

#: Gemma text model + SigLIP tower per `paligemma_variant` (LeRobot's `get_gemma_config` widths;
#: the SigLIP so400m tower is fixed). `vla_steer_tiny` is the test fixture's.
VARIANTS: dict[str, dict[str, Any]] = {
    "gemma_2b": PALIGEMMA_VARIANTS["gemma_2b"],  # the same PaliGemma as Pi0's
    "gemma_300m": {
        "text": dict(hidden_size=1024, num_hidden_layers=18, intermediate_size=4096, num_attention_heads=8,
                     num_key_value_heads=1, head_dim=256, vocab_size=257152),
        "vision": dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                       patch_size=14),
        "projection_dim": 1024,
    },
    "vla_steer_tiny": {
        "text": dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=2,
                     num_key_value_heads=1, head_dim=32, vocab_size=2048),
        "vision": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       patch_size=14),
        "projection_dim": 64,
    },
}
_NORM_MODES = ("IDENTITY", "MEAN_STD", "MIN_MAX", "QUANTILES", "QUANTILE10")
#: Whose inference conventions a checkpoint follows. "lerobot": LeRobot's pi0_fast (task as given,
#: a second <bos> after the prompt, contiguous positions, LeRobot's normaliser formulas).
#: "openpi": a model trained by openpi (`vla-steer convert openpi-pi0fast` records it in
#: OPENPI_RECORD): openpi's FASTTokenizer lower-cases the task and puts no <bos> between prompt
#: and "Action: "; its `sample_actions` gives the first generated token position prefill_len + 1
#: (one position skipped); its quantile / z-score formulas add 1e-6 to the range / std.
PROMPT_FORMATS = ("lerobot", "openpi")
OPENPI_RECORD = "openpi_conversion.json"


@dataclass(frozen=True)
class Pi0FastSettings:
    """What inference needs from a LeRobot pi0_fast config.json, validated once."""

    variant: str
    image_features: tuple[str, ...]
    image_size: int
    state_dim: int
    action_dim: int
    chunk_size: int
    max_decoding_steps: int
    fast_skip_tokens: int
    tokenizer_max_length: int
    text_tokenizer_name: str
    action_tokenizer_name: str
    norm_modes: Mapping[str, str] = field(default_factory=dict)
    prompt_format: str = "lerobot"

    @classmethod
    def from_lerobot(cls, cfg: Mapping[str, Any]) -> "Pi0FastSettings":
        kind = cfg.get("type")
        if kind != CONFIG_TYPE:
            hint = " (pre-0.4 LeRobot 'pi0fast' checkpoints use another layout and prompt)" if kind == "pi0fast" else ""
            raise ConfigError(f"config.json has type {kind!r}; this loader reads LeRobot {CONFIG_TYPE!r}{hint}")
        if cfg.get("use_relative_actions"):  # silently skipping it would command deltas as absolute
            raise ConfigError("pi0_fast config sets use_relative_actions: relative actions are not implemented")
        if float(cfg.get("temperature", 0.0)) != 0.0:
            raise ConfigError(f"pi0_fast config sets temperature {cfg['temperature']}: only greedy decoding (0.0)")
        variant = cfg.get("paligemma_variant", "gemma_2b")
        if variant not in VARIANTS:
            raise UnknownChoiceError("paligemma_variant", variant, VARIANTS)
        features = cfg.get("input_features", {})
        images = tuple(k for k in features if k.startswith(IMAGE_PREFIX))
        images += tuple(f"{IMAGE_PREFIX}empty_camera_{i}" for i in range(int(cfg.get("empty_cameras", 0)))
                        if f"{IMAGE_PREFIX}empty_camera_{i}" not in features)
        if not images:
            raise ConfigError("pi0_fast config.json declares no image input features (observation.images.*)")
        if STATE_KEY not in features:
            raise ConfigError(f"pi0_fast config.json declares no {STATE_KEY}: its prompt needs the state")
        try:
            action_dim = int(cfg["output_features"][ACTION_KEY]["shape"][0])
            state_dim = int(features[STATE_KEY]["shape"][0])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ConfigError(f"pi0_fast config.json: bad feature shapes ({exc})") from exc
        size = cfg.get("image_resolution") or (224, 224)
        if size[0] != size[1]:
            raise ConfigError(f"non-square image_resolution {list(size)} is not supported")
        modes = {k: str(v) for k, v in cfg.get("normalization_mapping", {}).items()}
        for kind_, mode in modes.items():
            if mode not in _NORM_MODES:
                raise UnknownChoiceError(f"normalization mode for {kind_}", mode, _NORM_MODES)
        return cls(
            variant=variant, image_features=images, image_size=int(size[0]), state_dim=state_dim,
            action_dim=action_dim, chunk_size=int(cfg.get("chunk_size", 50)),
            max_decoding_steps=int(cfg.get("max_decoding_steps", 256)),
            fast_skip_tokens=int(cfg.get("fast_skip_tokens", 128)),
            tokenizer_max_length=int(cfg.get("tokenizer_max_length", 200)),
            text_tokenizer_name=str(cfg.get("text_tokenizer_name", "google/paligemma-3b-pt-224")),
            action_tokenizer_name=str(cfg.get("action_tokenizer_name", "lerobot/fast-action-tokenizer")),
            norm_modes={"STATE": modes.get("STATE", "QUANTILES"), "ACTION": modes.get("ACTION", "QUANTILES")},
        )


def paligemma_config(settings: Pi0FastSettings):
    """transformers PaliGemmaConfig of the checkpoint's backbone (eager-free: SDPA attention)."""
    from transformers import PaliGemmaConfig

    v = VARIANTS[settings.variant]
    vocab = v["text"]["vocab_size"]
    return PaliGemmaConfig(
        text_config={"model_type": "gemma", **v["text"], "hidden_activation": "gelu_pytorch_tanh"},
        vision_config={"model_type": "siglip_vision_model", **v["vision"], "image_size": settings.image_size,
                       "vision_use_head": False, "projection_dim": v["projection_dim"]},
        projection_dim=v["projection_dim"],
        image_token_id=vocab,  # one past the vocabulary, as LeRobot's image_token_index
        tie_word_embeddings=True,
    )


def from_lerobot_key(key: str) -> str | None:
    """transformers PaliGemmaForConditionalGeneration name of a LeRobot weight, None if foreign."""
    if not key.startswith(LEROBOT_PREFIX):
        return None
    return key[len(LEROBOT_PREFIX):].replace("vision_tower.vision_model.", "vision_tower.")


def to_lerobot_key(key: str) -> str:
    """LeRobot name of a transformers PaliGemma weight (what the fixture and converter write)."""
    return LEROBOT_PREFIX + key.replace("model.vision_tower.", "model.vision_tower.vision_model.", 1)
