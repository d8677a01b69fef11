"""Train the mini-VLA head: seeded, resumable, CPU-friendly, with a validation loss and a curve.

Why it is fast enough on 2 cores: the frozen LM sees only instructions, and there are a few
hundred distinct wordings, so their hidden states are computed once (`TextCache`) and the
trainer runs just the conv encoders and the head. Resuming: `.../checkpoint.pt` holds the model,
optimiser, step and RNG states and is replaced atomically every `save_every` steps; re-running
the same command continues from it. New episodes that appeared in the datasets (a generator
still running) are picked up at each save.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..datasets.instructions import load_wordings
from ..errors import ConfigError
from ..models.minivla.config import MiniVLAConfig
from ..models.minivla.modeling import MiniVLAHead
from ..models.minivla.policy import Normalization, encode_texts
from .data import FrameSet, load_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """The recipe (configs/minivla.yaml holds the shipped one's values)."""

    datasets: tuple[str, ...]
    out: str
    steps: int = 6000
    batch: int = 64
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup: int = 200
    gripper_weight: float = 2.0
    val_fraction: float = 0.08
    val_every: int = 250
    save_every: int = 250
    seed: int = 0
    threads: int = 2
    shift_px: int = 4
    bf16: bool = False
    tasks: tuple[str, ...] = ()
    instructions: str | None = None
    model: dict = field(default_factory=dict)


class TextCache:
    """Hidden states of every wording, padded: (W, T, d) float32 + (W, T) mask."""

    def __init__(self, texts: Sequence[str], cfg: MiniVLAConfig) -> None:
        from ..models.hf_causal_lm import load_causal_lm_cached

        lm, tok, _ = load_causal_lm_cached(cfg.backbone, device="cpu")
        with torch.no_grad():
            hs = encode_texts(lm, tok, list(texts), cfg.max_text_tokens)
        del lm
        self.index = {t: i for i, t in enumerate(texts)}
        tmax = max(h.shape[0] for h in hs)
        self.hidden = torch.zeros(len(hs), tmax, hs[0].shape[1])
        self.mask = torch.zeros(len(hs), tmax, dtype=torch.bool)
        for i, h in enumerate(hs):
            self.hidden[i, : h.shape[0]] = h
            self.mask[i, : h.shape[0]] = True


def normalization_from(frames: FrameSet) -> Normalization:
    std = frames.state.std(0)
    astd = frames.action[:, :6].std(0)
    return Normalization(state_mean=frames.state.mean(0), state_std=np.maximum(std, 1e-3),
                         action_mean=frames.action[:, :6].mean(0), action_std=np.maximum(astd, 1e-3))


def _task_filter(tasks: Sequence[str]) -> list[tuple[str, int]]:
    out = []
    for t in tasks:
        suite, _, tid = t.rpartition(":")
        out.append((suite, int(tid)))
    return out


class Trainer:
    def __init__(self, tc: TrainConfig) -> None:
        self.tc = tc
        torch.set_num_threads(tc.threads)
        self.cfg = MiniVLAConfig(**tc.model)
        self.out = Path(tc.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.wordings = load_wordings(tc.instructions)
        self.rng = np.random.default_rng(tc.seed)
        torch.manual_seed(tc.seed)
        self.head = MiniVLAHead(self.cfg)
        self.opt = torch.optim.AdamW(self.head.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.step = 0
        self.history: list[dict] = []
        self.norm: Normalization | None = None
        self._load_data()
        self._resume()

    # -- data --------------------------------------------------------------------------------
    def _load_data(self) -> None:
        tf = _task_filter(self.tc.tasks)
        self._loaded_files = self._episode_count()
        self.train = load_frames(self.tc.datasets, self.cfg.cameras, self.wordings, "train", self.tc.val_fraction, tf)
        try:
            self.val = load_frames(self.tc.datasets, self.cfg.cameras, self.wordings, "val", self.tc.val_fraction, tf)
        except ConfigError:
            self.val = None
        texts = sorted({t for s in self.train.wording_sets + (self.val.wording_sets if self.val else []) for t in s})
        self.text = TextCache(texts, self.cfg)
        if self.norm is None:
            self.norm = normalization_from(self.train)
        log.info("train: %d frames of %d episodes; val: %s; %d wordings", len(self.train), len(self.train.episodes),
                 f"{len(self.val)} frames" if self.val else "none", len(texts))

    def _episode_count(self) -> int:
        from ..datasets.lerobot_v3 import episode_files

        return sum(len(episode_files(d)) for d in self.tc.datasets)

    def _refresh_if_grown(self) -> None:
        """Reload the frames when a generator still running has added 10+ episodes since the last
        load (the normalisation stats stay those of the first load, as the checkpoint records)."""
        if self._episode_count() >= self._loaded_files + 10:
            log.info("datasets grew to %d episode files: reloading", self._episode_count())
            self._load_data()

    def _batch(self, frames: FrameSet, idx: np.ndarray, augment: bool):
        cfg = self.cfg
        assert self.norm is not None
        targets, valid = frames.chunk_targets(idx, cfg.chunk)
        a = targets.copy()
        a[..., :6] = (a[..., :6] - self.norm.action_mean) / self.norm.action_std
        choice = [frames.wording_sets[w][self.rng.integers(len(frames.wording_sets[w]))] for w in frames.wording_ids[idx]]
        ti = torch.tensor([self.text.index[t] for t in choice])
        images = {}
        for cam in cfg.cameras:
            x = torch.from_numpy(frames.images[cam][idx]).permute(0, 3, 1, 2).float() / 255.0
            if augment and self.tc.shift_px:
                x = _random_shift(x, self.tc.shift_px, self.rng)
            images[cam] = x
        state = torch.from_numpy(self.norm.norm_state(frames.state[idx]).astype(np.float32))
        return (self.text.hidden[ti], self.text.mask[ti], images, state,
                torch.from_numpy(a.astype(np.float32)), torch.from_numpy(valid))

    def _loss(self, batch) -> tuple[torch.Tensor, dict]:
        text, mask, images, state, target, valid = batch
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.tc.bf16):
            pred = self.head(text, mask, images, state)
        err = (pred.float() - target).abs()  # (B, chunk, 7)
        w = torch.ones(7)
        w[6] = self.tc.gripper_weight
        per = (err * w).sum(-1) / w.sum()
        loss = (per * valid).sum() / valid.sum().clamp(min=1)
        with torch.no_grad():
            v = valid[..., None].float()
            l1_xyz = float((err[..., :3] * v).sum() / (v.sum() * 3).clamp(min=1))
            l1_grip = float((err[..., 6:] * v).sum() / v.sum().clamp(min=1))
        return loss, {"l1_xyz": l1_xyz, "l1_gripper": l1_grip}

    # -- loop --------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        if step < self.tc.warmup:
            return self.tc.lr * (step + 1) / self.tc.warmup
        p = (step - self.tc.warmup) / max(1, self.tc.steps - self.tc.warmup)
        return self.tc.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))

    def run(self) -> Path:
        from tqdm import tqdm

        bar = tqdm(total=self.tc.steps, initial=self.step, unit="step", desc="train mini-VLA")
        self.head.train()
        t0, run_loss = time.perf_counter(), []
        while self.step < self.tc.steps:
            for g in self.opt.param_groups:
                g["lr"] = self.lr_at(self.step)
            idx = self.rng.integers(0, len(self.train), size=self.tc.batch)
            loss, parts = self._loss(self._batch(self.train, idx, augment=True))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.head.parameters(), 1.0)
            self.opt.step()
            self.step += 1
            run_loss.append(float(loss))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(run_loss[-50:]):.4f}")
            if self.step % self.tc.val_every == 0 or self.step == self.tc.steps:
                rec = {"step": self.step, "train_loss": float(np.mean(run_loss[-self.tc.val_every:])),
                       "lr": self.lr_at(self.step), "s_per_step": (time.perf_counter() - t0) / len(run_loss), **parts,
                       "train_frames": len(self.train)}
                rec.update(self.validate())
                self.history.append(rec)
                log.info("step %d: %s", self.step, {k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()})
            if self.step % self.tc.save_every == 0 or self.step == self.tc.steps:
                self.save_checkpoint()
                self.export(self.out / "export")
                self.plot()
                self._refresh_if_grown()
        bar.close()
        return self.export(self.out / "export")

    @torch.no_grad()
    def validate(self) -> dict:
        if self.val is None:
            return {}
        self.head.eval()
        rng = np.random.default_rng(123)
        idx = rng.integers(0, len(self.val), size=min(512, len(self.val)))
        saved, self.rng = self.rng, np.random.default_rng(7)
        losses, parts = [], []
        for chunk in np.array_split(idx, max(1, len(idx) // 128)):
            loss, p = self._loss(self._batch(self.val, chunk, augment=False))
            losses.append(float(loss))
            parts.append(p)
        self.rng = saved
        self.head.train()
        return {"val_loss": float(np.mean(losses)), "val_l1_xyz": float(np.mean([p["l1_xyz"] for p in parts])),
                "val_l1_gripper": float(np.mean([p["l1_gripper"] for p in parts]))}

    # -- state ---------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        path = self.out / "checkpoint.pt"
        tmp = path.with_suffix(".tmp")
        torch.save({"head": self.head.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                    "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "history": self.history, "norm": json.loads(self.norm.to_json()), "train_config": asdict(self.tc)}, tmp)
        tmp.replace(path)
        (self.out / "history.json").write_text(json.dumps(self.history, indent=1))

    def _resume(self) -> None:
        path = self.out / "checkpoint.pt"
        if not path.is_file():
            return
        ck = torch.load(path, map_location="cpu", weights_only=False)
        self.head.load_state_dict(ck["head"])
        self.opt.load_state_dict(ck["opt"])
        self.step, self.history = int(ck["step"]), list(ck["history"])
        self.rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        self.norm = Normalization(**{k: np.asarray(v, dtype=np.float32) for k, v in ck["norm"].items()})
        print(f"resumed from {path} at step {self.step}")

    def export(self, directory: Path) -> Path:
        """The shippable checkpoint: config.json, model.safetensors, normalization.json."""
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        recipe = {k: v for k, v in asdict(self.tc).items() if k not in ("out",)}
        recipe.update(step=self.step, last=self.history[-1] if self.history else {})
        cfg = MiniVLAConfig(**{**asdict(self.cfg), "training": recipe})
        state = {k: v.detach().contiguous() for k, v in self.head.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))
        (directory / "config.json").write_text(cfg.to_json())
        assert self.norm is not None
        (directory / "normalization.json").write_text(self.norm.to_json())
        return directory

    def plot(self) -> None:
        if not self.history:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        steps = [h["step"] for h in self.history]
        ax.plot(steps, [h["train_loss"] for h in self.history], label="train loss")
        if "val_loss" in self.history[-1]:
            ax.plot(steps, [h.get("val_loss", np.nan) for h in self.history], label="validation loss (held-out episodes)")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("weighted L1 (normalised actions)")
        ax.set_title("mini-VLA training")
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.out / "loss.png", dpi=110)
        plt.close(fig)


def _random_shift(x: torch.Tensor, pad: int, rng: np.random.Generator) -> torch.Tensor:
    """DrQ-style augmentation: replicate-pad and crop back at a random offset per sample."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="replicate")
    out = torch.empty_like(x)
    offs = rng.integers(0, 2 * pad + 1, size=(b, 2))
    for i in range(b):
        out[i] = padded[i, :, offs[i, 0]:offs[i, 0] + h, offs[i, 1]:offs[i, 1] + w]
    return out
