"""pi0-FAST's text side: the prompt with the discretised state, the FAST <-> PaliGemma id map,
and cutting the generated tokens down to the FAST codes.

Prompt (LeRobot `Pi0FastPrepareStateAndLanguageTokenizerProcessorStep`, openpi
`FASTTokenizer.tokenize`): the state, already normalised to [-1, 1], goes into 256 bins
(`digitize(x, linspace(-1, 1, 257)[:-1]) - 1`: values below -1 give -1, above 1 give 255), then
`"Task: {task}, State: {s0 s1 ...};\\n"` with `_` and newlines in the task replaced by spaces;
tokenized with <bos> first. The model then gets one more <bos> and generates
`"Action: " <FAST codes> "|"`. FAST id a is PaliGemma id `vocab_size - 1 - fast_skip_tokens - a`
(the top of the vocabulary, below the `fast_skip_tokens` last ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .fast_tokenizer import FastDecodeError

ACTION_PREFIX = "Action: "
END_OF_ACTION = "|"
STATE_BINS = 256


def discretize_state(normalized: np.ndarray) -> np.ndarray:
    """(D,) state in [-1, 1] -> (D,) int bins -1..255 (LeRobot/openpi's exact binning)."""
    bins = np.linspace(-1.0, 1.0, STATE_BINS + 1)[:-1]
    return np.digitize(np.asarray(normalized, dtype=np.float64), bins=bins) - 1


def build_prompt(task: str, normalized_state: np.ndarray, prompt_format: str = "lerobot") -> str:
    """LeRobot's prompt; `prompt_format="openpi"`: openpi's FASTTokenizer cleaning (lower-cased,
    `_` -> space, newlines kept), the same state bins and template."""
    if prompt_format == "openpi":
        cleaned = task.lower().strip().replace("_", " ")
    else:
        cleaned = task.strip().replace("_", " ").replace("\n", " ")
    state = " ".join(str(int(v)) for v in discretize_state(normalized_state))
    return f"Task: {cleaned}, State: {state};\n"


@dataclass(frozen=True)
class ActionVocabulary:
    """Where FAST's codes live in the PaliGemma vocabulary, and the marker token ids."""

    text_vocab_size: int
    fast_skip_tokens: int
    fast_vocab_size: int
    end_id: int
    prefix_ids: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer, fast_skip_tokens: int, fast_vocab_size: int) -> "ActionVocabulary":
        end = tokenizer.convert_tokens_to_ids(END_OF_ACTION)
        if end is None or end == tokenizer.unk_token_id:
            raise FastDecodeError(f"the text tokenizer has no {END_OF_ACTION!r} token (end-of-action marker)")
        prefix = tuple(tokenizer.encode(ACTION_PREFIX, add_special_tokens=False))
        vocab = cls(int(tokenizer.vocab_size), int(fast_skip_tokens), int(fast_vocab_size), int(end), prefix)
        if vocab.lowest_id() < 0:
            raise FastDecodeError(f"FAST vocabulary of {fast_vocab_size} + {fast_skip_tokens} skipped ids does "
                                  f"not fit a text vocabulary of {vocab.text_vocab_size}")
        return vocab

    def highest_id(self) -> int:
        return self.text_vocab_size - 1 - self.fast_skip_tokens

    def lowest_id(self) -> int:
        return self.highest_id() - (self.fast_vocab_size - 1)

    def to_fast(self, text_id: int) -> int | None:
        """FAST code of a PaliGemma id, None outside the FAST range."""
        if self.lowest_id() <= text_id <= self.highest_id():
            return self.highest_id() - int(text_id)
        return None

    def to_text(self, fast_id: int) -> int:
        return self.highest_id() - int(fast_id)

    def action_codes(self, generated: Sequence[int]) -> list[int]:
        """FAST codes of one generated sequence; FastDecodeError unless it ends with the marker
        and holds nothing but codes (and the "Action: " prefix, removed as LeRobot does)."""
        ids = [int(i) for i in generated]
        if self.end_id not in ids:
            raise FastDecodeError(f"no end-of-action marker {END_OF_ACTION!r} in {len(ids)} generated tokens "
                                  "(decoding stopped at max_decoding_steps)")
        ids = ids[: ids.index(self.end_id)]
        n = len(self.prefix_ids)
        cleaned: list[int] = []
        i = 0
        while i < len(ids):
            if n and tuple(ids[i: i + n]) == self.prefix_ids:
                i += n
                continue
            cleaned.append(ids[i])
            i += 1
        codes = [self.to_fast(t) for t in cleaned]
        bad = [t for t, c in zip(cleaned, codes) if c is None]
        if bad:
            raise FastDecodeError(f"generated tokens {bad[:8]} are neither FAST codes (ids {self.lowest_id()}.."
                                  f"{self.highest_id()}) nor the {ACTION_PREFIX!r} prefix")
        return [int(c) for c in codes]
