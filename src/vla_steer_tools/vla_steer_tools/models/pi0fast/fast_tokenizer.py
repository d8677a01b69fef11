"""The FAST action tokenizer (Pertsch et al. 2025), read from its published files, decoded strictly.

Format (`physical-intelligence/fast`, `lerobot/fast-action-tokenizer`, or one trained locally):
`processor_config.json` (`scale`, `min_token`, `vocab_size`, optional `time_horizon`/`action_dim`)
and `tokenizer.json` (a byte-level BPE of the `tokenizers` library). The hub repo's Python
(`processing_action_tokenizer.py`, loaded with trust_remote_code) is never imported: only its
files are read, so nothing runs code from a checkpoint.

Encoding (the reference's): DCT-II (orthonormal) over time per action dimension, times `scale`,
rounded, shifted by `-min_token`, flattened row-major (time-major: all dims of frequency 0
first), each integer written as one character `chr(q)`, BPE-encoded.
Decoding (here): BPE-decode -> characters -> `ord(c) + min_token` -> reshape (horizon, dim)
-> divide by `scale` -> inverse DCT over time. The reference pads or truncates a sequence of
the wrong length and decodes a failure as zeros ("relaxed decoding"); here a sequence that does
not yield exactly horizon x dim coefficients raises `FastDecodeError` and never becomes an action.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import CheckpointError, VlaSteerError

CONFIG_FILE = "processor_config.json"
TOKENIZER_FILE = "tokenizer.json"
#: Files a FAST tokenizer needs (a hub download asks for these only, never the Python file).
FILES = (CONFIG_FILE, TOKENIZER_FILE)


class FastDecodeError(VlaSteerError):
    """Generated tokens do not form one whole action chunk (no end marker, wrong length, ids
    outside the FAST range): the inference has no action to command."""


@dataclass
class FastTokenizer:
    """A loaded FAST tokenizer: `tokenizer` is a `tokenizers.Tokenizer` (byte-level BPE)."""

    tokenizer: object
    scale: float
    min_token: int
    vocab_size: int
    source: str = ""

    @classmethod
    def from_dir(cls, directory: str | os.PathLike) -> "FastTokenizer":
        from tokenizers import Tokenizer

        directory = Path(directory)
        missing = [f for f in FILES if not (directory / f).is_file()]
        if missing:
            raise CheckpointError(f"FAST tokenizer dir {directory} lacks {missing} (expected {list(FILES)})")
        try:
            config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
            scale, min_token, vocab = float(config["scale"]), int(config["min_token"]), int(config["vocab_size"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{directory / CONFIG_FILE} is not a FAST processor config: {exc}") from exc
        if not scale > 0 or vocab < 1:
            raise CheckpointError(f"{directory / CONFIG_FILE}: scale must be > 0 and vocab_size >= 1 "
                                  f"(got scale={scale}, vocab_size={vocab})")
        try:
            tok = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise CheckpointError(f"cannot read {directory / TOKENIZER_FILE}: {exc}") from exc
        if tok.get_vocab_size() > vocab:
            raise CheckpointError(f"{directory}: tokenizer.json has {tok.get_vocab_size()} tokens, more than "
                                  f"processor_config.json's vocab_size {vocab}")
        return cls(tok, scale, min_token, vocab, str(directory))

    # -- the transform ---------------------------------------------------------------------

    def quantize(self, actions: np.ndarray) -> np.ndarray:
        """(horizon, dim) normalised actions -> (horizon, dim) integer DCT coefficients."""
        from scipy.fft import dct

        coeff = dct(np.asarray(actions, dtype=np.float64), axis=0, norm="ortho")  # (H, D)
        return np.around(coeff * self.scale).astype(np.int64)

    def encode(self, actions: np.ndarray) -> list[int]:
        """FAST token ids of one (horizon, dim) chunk (the training-time direction)."""
        shifted = np.maximum(self.quantize(actions).reshape(-1) - self.min_token, 0)  # (H*D,)
        return list(self.tokenizer.encode("".join(map(chr, shifted.tolist()))).ids)

    def coefficients(self, token_ids: Sequence[int], horizon: int, dim: int) -> np.ndarray:
        """FAST ids -> (horizon, dim) integer DCT coefficients; FastDecodeError unless whole."""
        ids = [int(i) for i in token_ids]
        bad = [i for i in ids if not 0 <= i < self.tokenizer.get_vocab_size()]
        if bad:
            raise FastDecodeError(f"FAST token ids {bad[:8]} are outside this tokenizer's "
                                  f"0..{self.tokenizer.get_vocab_size() - 1}")
        if not ids:
            raise FastDecodeError("no FAST action tokens were generated")
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        values = np.array([ord(c) for c in text], dtype=np.int64) + self.min_token  # (n,)
        if "\ufffd" in text:  # bytes that are not whole characters: a cut-off multi-byte token
            raise FastDecodeError(f"FAST tokens {ids[:8]}... do not decode to whole characters")
        if values.size != horizon * dim:
            raise FastDecodeError(f"FAST tokens decode to {values.size} DCT coefficients; a chunk of "
                                  f"{horizon} steps x {dim} dims needs {horizon * dim}")
        return values.reshape(horizon, dim)

    def decode(self, token_ids: Sequence[int], horizon: int, dim: int) -> np.ndarray:
        """FAST ids -> (horizon, dim) float64 normalised actions (inverse DCT over time)."""
        from scipy.fft import idct

        coeff = self.coefficients(token_ids, horizon, dim)
        return idct(coeff / self.scale, axis=0, norm="ortho")  # (H, D)
