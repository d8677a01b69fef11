"""The trainable parts of the mini-VLA: image encoders, the action head transformer.

Inputs to the head, as one token sequence: the LM's final hidden states of the instruction
(projected), 16 tokens per camera from a small conv net (with a learned camera embedding), one
proprio-state token and `chunk` learned action queries; the queries' outputs become the chunk of
normalised actions. The frozen LM itself is not part of this module (policy.py owns it), so a
checkpoint is only these weights: a few MB.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import MiniVLAConfig


class ConvEncoder(nn.Module):
    """(B, 3, S, S) uint8-scaled images -> (B, 16, d) tokens (a 4x4 grid of features)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        chans = (3, 16, 32, 64, 128)
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(8, cout), nn.GELU()]
        self.net = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.proj = nn.Linear(chans[-1], d_model)
        self.pos = nn.Parameter(torch.zeros(16, d_model))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.pool(self.net(images))  # (B, C, 4, 4)
        tokens = feats.flatten(2).transpose(1, 2)  # (B, 16, C)
        return self.proj(tokens) + self.pos


class MiniVLAHead(nn.Module):
    """Everything that trains: encoders, projections, the head transformer, the action readout."""

    def __init__(self, cfg: MiniVLAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.text_dim), nn.Linear(cfg.text_dim, d))
        self.encoders = nn.ModuleDict({cam: ConvEncoder(d) for cam in cfg.cameras})
        self.camera_embed = nn.Parameter(torch.zeros(len(cfg.cameras), d))
        self.state_proj = nn.Sequential(nn.Linear(cfg.state_dim, d), nn.GELU(), nn.Linear(d, d))
        self.queries = nn.Parameter(torch.randn(cfg.chunk, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, cfg.ff, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.transformer = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(d)
        self.readout = nn.Linear(d, cfg.action_dim)

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor, images: dict[str, torch.Tensor],
                state: torch.Tensor) -> torch.Tensor:
        """text: (B, T, text_dim) LM hidden states; text_mask: (B, T) True = real token;
        images: camera -> (B, 3, S, S) float in [0, 1]; state: (B, state_dim) normalised.
        Returns (B, chunk, action_dim) normalised actions."""
        b = state.shape[0]
        parts = [self.text_proj(text)]
        masks = [text_mask]
        for i, cam in enumerate(self.cfg.cameras):
            parts.append(self.encoders[cam](images[cam]) + self.camera_embed[i])
            masks.append(torch.ones(b, 16, dtype=torch.bool, device=state.device))
        parts.append(self.state_proj(state).unsqueeze(1))
        parts.append(self.queries.unsqueeze(0).expand(b, -1, -1))
        masks.append(torch.ones(b, 1 + self.cfg.chunk, dtype=torch.bool, device=state.device))
        x = torch.cat(parts, dim=1)
        pad = ~torch.cat(masks, dim=1)
        y = self.transformer(x, src_key_padding_mask=pad)
        return self.readout(self.out_norm(y[:, -self.cfg.chunk:]))
