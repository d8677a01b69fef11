"""OpenVLA's `config.json` (Prismatic "openvla" model type), read without the hub's remote code.

The official checkpoints describe their vision towers only by timm model id; the shapes behind
those ids live in `VIT_SPECS` so the towers can be built without timm (which does not import here).
Ids starting with `vla_steer_tiny_` are test-fixture towers written by `fixtures.tiny_checkpoints`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import CheckpointError, ConfigError, UnknownChoiceError

#: Token appended after "Out:" when missing (the empty SentencePiece piece "▁" in Llama-2).
EMPTY_TOKEN_ID = 29871


@dataclass(frozen=True)
class ViTSpec:
    """Shape of one timm ViT as Prismatic creates it (`num_classes=0`, `img_size=224`)."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden: int
    patch_size: int = 14
    class_token: bool = True
    reg_tokens: int = 0
    no_embed_class: bool = False  # True: position embeddings cover patches only (DINOv2-reg)
    layer_scale: bool = False
    attn_pool: bool = False  # SigLIP's "map" head: loaded (it is in the checkpoint), never run
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

#: timm id -> tower shape. Real towers first, then the tiny test-fixture towers.
VIT_SPECS: dict[str, ViTSpec] = {
    "vit_large_patch14_reg4_dinov2.lvd142m": ViTSpec(
        1024, 24, 16, 4096, reg_tokens=4, no_embed_class=True, layer_scale=True,
        image_mean=_IMAGENET_MEAN, image_std=_IMAGENET_STD,
    ),
    "vit_so400m_patch14_siglip_224": ViTSpec(1152, 27, 16, 4304, class_token=False, attn_pool=True),
    "vla_steer_tiny_reg4_dinov2": ViTSpec(
        32, 3, 2, 64, reg_tokens=4, no_embed_class=True, layer_scale=True,
        image_mean=_IMAGENET_MEAN, image_std=_IMAGENET_STD,
    ),
    "vla_steer_tiny_siglip": ViTSpec(48, 3, 2, 96, class_token=False, attn_pool=True),
}


@dataclass(frozen=True)
class OpenVLAConfig:
    """The fields of an official OpenVLA `config.json` this runtime uses."""

    timm_model_ids: tuple[str, ...]
    image_sizes: tuple[int, ...]
    text_config: dict[str, Any]
    norm_stats: dict[str, Any] = field(default_factory=dict)
    n_action_bins: int = 256
    pad_to_multiple_of: int = 64
    pad_token_id: int = 32000
    use_fused_vision_backbone: bool = True
    vision_backbone_id: str = ""
    llm_backbone_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def vit_specs(self) -> tuple[ViTSpec, ...]:
        return tuple(VIT_SPECS[i] for i in self.timm_model_ids)

    @property
    def base_vocab_size(self) -> int:
        """Vocabulary without the padding rows: action ids count down from here (32000)."""
        return int(self.text_config.get("vocab_size", 32000)) - self.pad_to_multiple_of

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "OpenVLAConfig":
        if raw.get("model_type") not in ("openvla", None):
            raise ConfigError(f"config.json has model_type {raw.get('model_type')!r}, expected 'openvla'")
        ids = tuple(raw.get("timm_model_ids") or ())
        if not ids:
            raise ConfigError("config.json has no 'timm_model_ids' (is this an OpenVLA checkpoint?)")
        for timm_id in ids:
            if timm_id not in VIT_SPECS:
                raise UnknownChoiceError("vision backbone (timm id)", timm_id, VIT_SPECS)
        fused = bool(raw.get("use_fused_vision_backbone", len(ids) == 2))
        if fused != (len(ids) == 2):
            raise ConfigError(f"use_fused_vision_backbone={fused} but {len(ids)} timm ids: {list(ids)}")
        sizes = tuple(int(s) for s in raw.get("image_sizes") or [224] * len(ids))
        text = dict(raw.get("text_config") or {})
        text.setdefault("model_type", "llama")
        if text["model_type"] != "llama":
            raise UnknownChoiceError("OpenVLA language model type", text["model_type"], ["llama"])
        return cls(
            timm_model_ids=ids,
            image_sizes=sizes,
            text_config=text,
            norm_stats=dict(raw.get("norm_stats") or {}),
            n_action_bins=int(raw.get("n_action_bins", 256)),
            pad_to_multiple_of=int(raw.get("pad_to_multiple_of", 64)),
            pad_token_id=int(raw.get("pad_token_id", 32000)),
            use_fused_vision_backbone=fused,
            vision_backbone_id=str(raw.get("vision_backbone_id", "")),
            llm_backbone_id=str(raw.get("llm_backbone_id", "")),
            raw=raw,
        )

    @classmethod
    def from_dir(cls, directory: Path) -> "OpenVLAConfig":
        path = Path(directory) / "config.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CheckpointError(f"no config.json in {directory}") from exc
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
        config = cls.from_dict(raw)
        stats_path = Path(directory) / "dataset_statistics.json"
        if not config.norm_stats and stats_path.is_file():  # fine-tunes may keep them only here
            stats = json.loads(stats_path.read_text(encoding="utf-8"))
            config = cls.from_dict({**raw, "norm_stats": stats})
        return config

    def llama_config(self):
        """transformers LlamaConfig; unspecified fields take Llama-2-7B's defaults, as upstream."""
        from transformers import LlamaConfig

        fields = {k: v for k, v in self.text_config.items() if k not in ("model_type", "torch_dtype", "dtype")}
        fields.setdefault("pad_token_id", self.pad_token_id)
        return LlamaConfig(**fields)
