"""Observation checks shared by every policy family: a bad input is an ObservationError naming
the bad value, never a silently wrong action."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import ObservationError
from ..types import Observation

#: Smallest image side accepted: below one 14-px ViT patch a resize only invents pixels.
MIN_IMAGE_SIDE = 14
MAX_IMAGE_SIDE = 8192


def check_image(key: str, image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB with sane sides; returns it unchanged."""
    if not isinstance(image, np.ndarray):
        raise ObservationError(f"image {key!r} is a {type(image).__name__}, expected a numpy uint8 array")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ObservationError(f"image {key!r} has shape {image.shape}; expected (H, W, 3) RGB")
    if image.dtype != np.uint8:
        raise ObservationError(f"image {key!r} has dtype {image.dtype}; expected uint8")
    h, w = image.shape[:2]
    if not (MIN_IMAGE_SIDE <= h <= MAX_IMAGE_SIDE and MIN_IMAGE_SIDE <= w <= MAX_IMAGE_SIDE):
        raise ObservationError(
            f"image {key!r} is {h}x{w}; each side must be {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE} px"
        )
    return image


def check_instruction(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ObservationError(f"instruction must be non-empty text, got {text!r}")
    return text.strip()


def check_state(state: np.ndarray, expected_dim: int | None = None) -> np.ndarray:
    """Finite float32 (D,); `expected_dim` when the model needs a fixed size."""
    arr = np.asarray(state, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise ObservationError(f"state has non-finite values at indices {bad}: {arr.tolist()}")
    if expected_dim is not None and arr.shape[0] != expected_dim:
        raise ObservationError(f"state has {arr.shape[0]} values; this checkpoint expects {expected_dim}")
    return arr


def pick_images(obs: Observation, wanted: Sequence[str] | None, preferred: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """The camera images to feed, checked: `wanted` exactly, else the first `preferred` present,
    else the only image there is."""
    images: Mapping[str, np.ndarray] = obs.images
    if not images:
        raise ObservationError("observation has no images")
    if wanted:
        absent = [k for k in wanted if k not in images]
        if absent:
            raise ObservationError(f"missing camera image(s) {absent}; observation has {sorted(images)}")
        return [(k, check_image(k, images[k])) for k in wanted]
    for key in preferred:
        if key in images:
            return [(key, check_image(key, images[key]))]
    if len(images) == 1:
        key = next(iter(images))
        return [(key, check_image(key, images[key]))]
    raise ObservationError(
        f"cannot tell which camera to use among {sorted(images)}; pass image_keys=[...] when loading"
    )
