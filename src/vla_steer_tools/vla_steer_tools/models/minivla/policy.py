"""The mini-VLA as a `Policy`: the frozen LM encodes the instruction, the head (modeling.py) acts.

The LM runs on the instruction at every inference (about 20-40 ms on 2 cores), so the steering
hooks on its `down_proj`s always act: nothing is cached across inferences that could hide a
steering change. The adapter is the LM's own (`causal_lm_adapter`), so direction files found on
`smollm2` (config/directions/smollm2) are the mini-VLA's directions too.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ...errors import CheckpointError, ConfigError, ObservationError
from ...policy import Policy
from ...types import ActionChunk, Observation
from ..base import ModelAdapter
from ..inputs import check_image, check_instruction, check_state
from ..loading import resolve_device
from .config import MiniVLAConfig
from .modeling import MiniVLAHead

log = logging.getLogger(__name__)

#: Checkpoints shipped inside this package, by hub-style id.
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED: dict[str, Path] = {"vla-steer/minivla-libero-object": SHIPPED_DIR / "minivla-libero-object"}
ACTION_SPACE = "ee_delta_7d"
GRIPPER_MODES = ("binary", "raw")


@dataclass(frozen=True)
class Normalization:
    """Mean/std of the state and of the 6 motion dims of the action (the gripper stays +-1)."""

    state_mean: np.ndarray
    state_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray

    def to_json(self) -> str:
        return json.dumps({k: np.asarray(getattr(self, k)).tolist() for k in self.__dataclass_fields__}, indent=2)

    @classmethod
    def from_file(cls, path: Path) -> "Normalization":
        try:
            raw = json.loads(Path(path).read_text())
            out = cls(**{k: np.asarray(raw[k], dtype=np.float32) for k in cls.__dataclass_fields__})
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"cannot read normalisation stats {path}: {exc}") from exc
        for k in cls.__dataclass_fields__:
            if not np.all(np.isfinite(getattr(out, k))):
                raise CheckpointError(f"{path}: {k} has non-finite values")
        return out

    def norm_state(self, s: np.ndarray) -> np.ndarray:
        return (s - self.state_mean) / self.state_std

    def unnorm_actions(self, a: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[..., :6] = a[..., :6] * self.action_std + self.action_mean
        return out


def encode_texts(lm: torch.nn.Module, tokenizer, texts: Sequence[str], max_tokens: int) -> list[torch.Tensor]:
    """Final-norm hidden states (T_i, d) of each text, float32, on the LM's device."""
    decoder = lm.get_decoder() if hasattr(lm, "get_decoder") else lm.model
    out = []
    for text in texts:
        ids = tokenizer(text, return_tensors="pt").input_ids[:, :max_tokens].to(lm.device)
        out.append(decoder(input_ids=ids).last_hidden_state[0].float())
    return out


class MiniVLAPolicy(Policy):
    """Observation (2 cameras, 8-D state, instruction) -> (chunk, 7) LIBERO delta actions."""

    action_space = ACTION_SPACE

    def __init__(self, cfg: MiniVLAConfig, head: MiniVLAHead, lm, tokenizer, adapter: ModelAdapter,
                 norm: Normalization, model_id: str, gripper: str = "binary") -> None:
        if gripper not in GRIPPER_MODES:
            raise ConfigError(f"gripper mode {gripper!r}: valid {', '.join(GRIPPER_MODES)}")
        self.cfg, self.head, self.lm, self.tokenizer = cfg, head.eval(), lm.eval(), tokenizer
        self._adapter, self.norm, self.model_id, self.gripper = adapter, norm, model_id, gripper
        self.device = next(head.parameters()).device

    @property
    def adapter(self) -> ModelAdapter:
        return self._adapter

    @torch.no_grad()
    def infer(self, observation: Observation) -> ActionChunk:
        t0 = time.perf_counter()
        text = check_instruction(observation.instruction)
        n_tokens = len(self.tokenizer(text).input_ids)
        if n_tokens > self.cfg.max_text_tokens:
            raise ObservationError(f"instruction has {n_tokens} tokens; this mini-VLA reads at most "
                                   f"{self.cfg.max_text_tokens} (it was trained on short task instructions)")
        state = check_state(observation.state, self.cfg.state_dim)
        images = {cam: self._image(observation, cam) for cam in self.cfg.cameras}
        hidden = encode_texts(self.lm, self.tokenizer, [text], self.cfg.max_text_tokens)[0].to(self.device)
        s = torch.from_numpy(self.norm.norm_state(state).astype(np.float32)).to(self.device)[None]
        mask = torch.ones(1, hidden.shape[0], dtype=torch.bool, device=self.device)
        out = self.head(hidden[None], mask, images, s)[0].float().cpu().numpy()  # (chunk, 7)
        if not np.all(np.isfinite(out)):
            raise ObservationError("mini-VLA produced non-finite actions (corrupt weights or input)")
        actions = self.norm.unnorm_actions(out)
        actions[:, :6] = np.clip(actions[:, :6], -1.0, 1.0)
        actions[:, 6] = np.where(actions[:, 6] >= 0, 1.0, -1.0) if self.gripper == "binary" else np.clip(actions[:, 6], -1, 1)
        return ActionChunk(actions=actions.astype(np.float32), action_space=ACTION_SPACE,
                           inference_s=time.perf_counter() - t0, model_id=self.model_id)

    def _image(self, obs: Observation, cam: str) -> torch.Tensor:
        if cam not in obs.images:
            raise ObservationError(f"missing camera image {cam!r}; observation has {sorted(obs.images)} "
                                   f"(the mini-VLA needs {list(self.cfg.cameras)})")
        img = check_image(cam, obs.images[cam])
        x = torch.from_numpy(np.ascontiguousarray(img)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        if img.shape[0] != self.cfg.image_size or img.shape[1] != self.cfg.image_size:
            x = torch.nn.functional.interpolate(x, size=(self.cfg.image_size,) * 2, mode="bilinear",
                                                antialias=True, align_corners=False)
        return x


def resolve_minivla_dir(path: str | Path) -> Path:
    """A shipped id, a local dir, or a hub id (fetched where there is network)."""
    if str(path) in SHIPPED:
        d = SHIPPED[str(path)]
        if not (d / "config.json").is_file():
            raise CheckpointError(f"shipped checkpoint {path} is missing from this install ({d})")
        return d
    from ..loading import resolve_checkpoint_dir

    return resolve_checkpoint_dir(path)


def load_minivla(path: str | Path, device: str = "auto", dtype: str = "auto", gripper: str = "binary",
                 backbone: str | None = None, **unknown: Any) -> MiniVLAPolicy:
    """Load a mini-VLA checkpoint dir (config.json, model.safetensors, normalization.json)."""
    if unknown:
        raise ConfigError(f"unknown mini-VLA option(s) {sorted(unknown)}; valid: gripper, backbone")
    from safetensors.torch import load_file

    from ..hf_causal_lm import load_causal_lm_cached

    d = resolve_minivla_dir(path)
    cfg = MiniVLAConfig.from_file(d / "config.json")
    dev = resolve_device(device)
    head = MiniVLAHead(cfg)
    weights = d / "model.safetensors"
    try:
        state = load_file(str(weights))
    except (OSError, Exception) as exc:  # safetensors raises its own SafetensorError
        raise CheckpointError(f"cannot read {weights}: {exc}") from exc
    try:
        missing, unexpected = head.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch: config.json and the weights disagree
        raise CheckpointError(f"{weights} does not match {d / 'config.json'}: {str(exc)[:600]}") from exc
    if missing or unexpected:
        raise CheckpointError(f"{weights}: missing keys {missing[:6]}, unexpected keys {unexpected[:6]}")
    head.to(dev)
    norm = Normalization.from_file(d / "normalization.json")
    lm, tokenizer, adapter = load_causal_lm_cached(backbone or cfg.backbone, device=str(dev))
    for p in lm.parameters():
        p.requires_grad_(False)
    return MiniVLAPolicy(cfg, head, lm, tokenizer, adapter, norm, model_id=f"minivla:{path}", gripper=gripper)
