"""OpenVLA's inputs and outputs: prompt, image transform, action-token decoding, un-normalization.

Mirrors the reference `predict_action` + `PrismaticProcessor` (see shared/notes/models.md):
prompt `In: What action should the robot take to {instruction}?\\nOut:` then token 29871; images
resized to each tower's size (bicubic, as torchvision on PIL) and normalized with each tower's
mean/std, stacked on channels; action id -> bin = clip(V - id - 1, 0, n_bins - 2) -> bin centre
-> `0.5 (x + 1)(q99 - q01) + q01` where `mask`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image

from ...errors import ConfigError, UnknownChoiceError
from .config import OpenVLAConfig

PROMPT_TEMPLATE = "In: What action should the robot take to {instruction}?\nOut:"
#: Area fraction kept by the LIBERO evaluation's center crop (side factor sqrt(0.9)).
LIBERO_CROP_AREA = 0.9


def build_prompt(instruction: str) -> str:
    """The training prompt; the instruction is lower-cased as OpenVLA's own LIBERO/Bridge scripts do."""
    return PROMPT_TEMPLATE.format(instruction=instruction.strip().lower())


@dataclass(frozen=True)
class ImageTransform:
    """Per-tower resize + normalization (from preprocessor_config.json or the tower defaults)."""

    sizes: tuple[int, ...]
    means: tuple[tuple[float, float, float], ...]
    stds: tuple[tuple[float, float, float], ...]

    @classmethod
    def for_checkpoint(cls, config: OpenVLAConfig, directory: Path | None) -> "ImageTransform":
        specs = config.vit_specs
        sizes, means, stds = config.image_sizes, [s.image_mean for s in specs], [s.image_std for s in specs]
        path = Path(directory) / "preprocessor_config.json" if directory else None
        if path is not None and path.is_file():
            pre = json.loads(path.read_text(encoding="utf-8"))
            # The reference normalizes with `tvf_normalize_params` (bf16-rounded means), not `means`.
            params = pre.get("tvf_normalize_params")
            if params:
                means = [tuple(p["mean"]) for p in params]
                stds = [tuple(p["std"]) for p in params]
            elif pre.get("means"):
                means, stds = pre["means"], pre["stds"]
            if pre.get("input_sizes"):
                sizes = tuple(int(s[-1]) for s in pre["input_sizes"])
        return cls(tuple(sizes), tuple(tuple(m) for m in means), tuple(tuple(s) for s in stds))

    def __call__(self, image: np.ndarray, center_crop: bool = False) -> torch.Tensor:
        """uint8 (H, W, 3) -> float32 (3 * n_towers, S, S)."""
        pil = Image.fromarray(image)
        if center_crop:
            pil = center_crop_resize(pil, LIBERO_CROP_AREA)
        parts = []
        for size, mean, std in zip(self.sizes, self.means, self.stds):
            resized = pil if pil.size == (size, size) else pil.resize((size, size), Image.Resampling.BICUBIC)
            x = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)  # (3, S, S)
            parts.append((x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1))
        return torch.cat(parts, dim=0)


def center_crop_resize(image: Image.Image, area: float) -> Image.Image:
    """Keep the central `area` fraction (same aspect) and resize back, as OpenVLA's LIBERO eval."""
    w, h = image.size
    side = math.sqrt(area)
    cw, ch = w * side, h * side
    left, top = (w - cw) / 2, (h - ch) / 2
    return image.resize((w, h), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))


class ActionDecoder:
    """Action-token ids -> continuous actions with one dataset's statistics."""

    def __init__(self, config: OpenVLAConfig, unnorm_key: str | None) -> None:
        self.vocab_size = config.base_vocab_size  # 32000 for Llama-2 (32064 padded)
        bins = np.linspace(-1.0, 1.0, config.n_action_bins)
        self.bin_centers = (bins[:-1] + bins[1:]) / 2.0  # (n_bins - 1,)
        self.unnorm_key = select_unnorm_key(config.norm_stats, unnorm_key)
        stats = config.norm_stats[self.unnorm_key].get("action")
        if not stats or "q01" not in stats or "q99" not in stats:
            raise ConfigError(f"norm_stats[{self.unnorm_key!r}] has no action q01/q99 statistics")
        self.q01 = np.asarray(stats["q01"], dtype=np.float64)
        self.q99 = np.asarray(stats["q99"], dtype=np.float64)
        self.mask = np.asarray(stats.get("mask", np.ones_like(self.q01, dtype=bool)), dtype=bool)
        self.action_dim = int(self.q01.shape[0])

    @property
    def first_action_id(self) -> int:
        """Lowest id that decodes to an action bin (31744 for Llama-2's 32000 tokens)."""
        return self.vocab_size - len(self.bin_centers) - 1

    def bin_center(self, token_id: int) -> float:
        return float(self.bin_centers[np.clip(self.vocab_size - token_id - 1, 0, len(self.bin_centers) - 1)])

    def normalized(self, token_ids: np.ndarray) -> np.ndarray:
        """(..., dim) ids -> values in [-1, 1]."""
        bins = np.clip(self.vocab_size - np.asarray(token_ids) - 1, 0, len(self.bin_centers) - 1)
        return self.bin_centers[bins]

    def unnormalize(self, normalized: np.ndarray) -> np.ndarray:
        scaled = 0.5 * (normalized + 1.0) * (self.q99 - self.q01) + self.q01
        return np.where(self.mask, scaled, normalized)

    def __call__(self, token_ids: np.ndarray) -> np.ndarray:
        return self.unnormalize(self.normalized(token_ids)).astype(np.float32)


def select_unnorm_key(norm_stats: Mapping[str, Any], unnorm_key: str | None) -> str:
    """The dataset whose statistics un-normalize actions; errors list the available keys."""
    if not norm_stats:
        raise ConfigError("checkpoint has no norm_stats (config.json or dataset_statistics.json): "
                          "cannot un-normalize actions")
    if unnorm_key is None:
        if len(norm_stats) != 1:
            raise ConfigError(
                f"checkpoint was trained on {len(norm_stats)} datasets; pass unnorm_key, one of: "
                f"{', '.join(sorted(norm_stats))}"
            )
        return next(iter(norm_stats))
    if unnorm_key not in norm_stats:
        raise UnknownChoiceError("unnorm_key", unnorm_key, norm_stats)
    return unnorm_key


#: How the 7th (gripper) value leaves `OpenVLAPolicy.infer`.
GRIPPER_CONVENTIONS: tuple[str, ...] = ("raw", "libero")


def libero_gripper(raw: np.ndarray) -> np.ndarray:
    """OpenVLA's LIBERO evaluation step: gripper in [0, 1] (1 = open, after the dataloader's flip)
    -> binarised LIBERO command (-1 = open, +1 = close): sign(2 g - 1), then inverted."""
    return -np.sign(2.0 * np.asarray(raw, dtype=np.float64) - 1.0)
