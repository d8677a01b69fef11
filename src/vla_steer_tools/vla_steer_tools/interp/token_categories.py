"""Which tokens of a projection's vocabulary are action tokens, and which fall in word categories.

Used by the layer report, the projection diff and the neuron browser, so that all three agree on
what "an action token" or "a speed word" is.

* Action tokens: the model families print them in a fixed form in `vocab.json` (OpenVLA's
  action bins as `[action: x]`, pi0-FAST's FAST codes as `[fast: N]`), so they are found from the
  saved vocabulary alone, with no model loaded. A checkpoint whose adapter does not mark them can
  declare an id range instead (`--action-range 31744-31999`).
* Categories: editable word lists (`config/token_categories.yaml`); a token is in a category when
  its text, normalised as in concept search (space marker and case removed), is one of the words.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
import yaml

from ..errors import ConfigError
from .concepts import normalize_token

#: The shipped word lists (repo `config/`); `--categories FILE` points elsewhere.
DEFAULT_CATEGORIES = Path(__file__).resolve().parents[4] / "config" / "token_categories.yaml"
CATEGORY_FORMAT = "vla-steer token categories"

#: How the families print action tokens in vocab.json (openvla/policy.py, pi0fast/policy.py).
ACTION_TOKEN_RE = re.compile(r"^\[(action|fast): [^\]]*\]$")

_INFLECTIONS = ("ing", "est", "ed", "er", "es", "ly", "s")
_WORD_RE = re.compile(r"^[a-z]{3,}$")


@dataclass(frozen=True)
class TokenCategories:
    """Named word lists (normalised words) and where they came from."""

    words: Mapping[str, frozenset[str]]
    source: str = ""

    @property
    def names(self) -> list[str]:
        return list(self.words)

    def masks(self, vocab: Sequence[str]) -> dict[str, torch.Tensor]:
        """category -> bool (vocab,): which token ids are words of that category."""
        norm = [normalize_token(t) for t in vocab]
        return {name: torch.tensor([t in words for t in norm], dtype=torch.bool) for name, words in self.words.items()}


def load_categories(path: str | os.PathLike | None = None) -> TokenCategories:
    """Read a category file (default: the shipped one); ConfigError naming the file and the field."""
    path = Path(path) if path else DEFAULT_CATEGORIES
    if not path.is_file():
        raise ConfigError(f"token category file {str(path)!r} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("categories"), dict) or not data["categories"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty 'categories: {{name: [word, ...]}}'")
    words: dict[str, frozenset[str]] = {}
    for name, items in data["categories"].items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
            raise ConfigError(f"{path}: category name {name!r} must be 1-40 characters of A-Z a-z 0-9 _ -")
        if not isinstance(items, list) or not items or not all(isinstance(w, str) and w.strip() for w in items):
            raise ConfigError(f"{path}: category {name!r} must be a non-empty list of words")
        words[name] = frozenset(normalize_token(w) for w in items)
    return TokenCategories(words=words, source=str(path))


def parse_action_range(text: str | None) -> tuple[int, int] | None:
    """'31744-31999' -> (31744, 31999) inclusive; None/'' -> None."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not m or int(m.group(1)) > int(m.group(2)):
        raise ConfigError(f"bad action-token range {text!r} (expected FIRST-LAST token ids, e.g. 31744-31999)")
    return int(m.group(1)), int(m.group(2))


def action_mask(vocab: Sequence[str], id_range: tuple[int, int] | None = None) -> torch.Tensor:
    """bool (vocab,): tokens printed as `[action: x]` / `[fast: N]`, or the declared id range."""
    if id_range is not None:
        lo, hi = id_range
        if hi >= len(vocab):
            raise ConfigError(f"action-token range {lo}-{hi} exceeds the vocabulary ({len(vocab)} tokens)")
        mask = torch.zeros(len(vocab), dtype=torch.bool)
        mask[lo: hi + 1] = True
        return mask
    return torch.tensor([bool(ACTION_TOKEN_RE.match(t)) for t in vocab], dtype=torch.bool)


def word_stem(text: str) -> str:
    """A crude shared-word key: normalised letters-only token, one inflection removed ('' if none).

    ' fast', 'Fast', 'faster', 'fastest' -> 'fast'. Tokens that are not a word of >= 3 letters
    (punctuation, digits, fragments like 'ab') have no stem, so they never form a pattern."""
    word = normalize_token(text)
    if not _WORD_RE.match(word):
        return ""
    for suffix in _INFLECTIONS:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def stem_ids(vocab: Sequence[str]) -> torch.Tensor:
    """int64 (vocab,): an id per distinct stem, -1 for tokens without one."""
    table: dict[str, int] = {}
    out = []
    for t in vocab:
        s = word_stem(t)
        out.append(table.setdefault(s, len(table)) if s else -1)
    return torch.tensor(out, dtype=torch.int64)
