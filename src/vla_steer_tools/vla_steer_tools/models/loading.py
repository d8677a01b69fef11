"""Shared checkpoint plumbing for the policy families: device/dtype choice, hub-or-local paths,
safetensors reading (single file or sharded index) and strict key checking with readable errors.

Kept apart from the family files so OpenVLA and Pi0 load weights the same way and report a bad
checkpoint the same way (CheckpointError naming the missing / unexpected keys).
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, UnknownChoiceError

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
_SHOWN_KEYS = 12


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> cuda when available, else cpu; anything else is checked to exist."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available here")
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """"auto" -> bf16 on cuda, fp32 on cpu (bf16 matmuls on 2 CPU cores are slower, not faster)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise UnknownChoiceError("dtype", dtype, ["auto", *_DTYPES])
    return _DTYPES[dtype]


def resolve_checkpoint_dir(path: str | os.PathLike, allow_patterns: Iterable[str] | None = None) -> Path:
    """A local directory as is; otherwise a hub id fetched (or found in the cache when offline)."""
    local = Path(path).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise CheckpointError(f"checkpoint path {str(path)!r} is a file; pass the directory holding config.json")
    if str(path).count("/") != 1 or str(path).startswith((".", "/", "~")):
        raise CheckpointError(f"checkpoint {str(path)!r} is not a directory and not a hub id (owner/name)")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(path), allow_patterns=list(allow_patterns) if allow_patterns else None))
    except Exception as exc:  # offline, unknown repo, gated repo: one clear message
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        hint = " (HF_HUB_OFFLINE is set: only already-cached repos can be used)" if offline else ""
        raise CheckpointError(f"cannot fetch hub checkpoint {str(path)!r}{hint}: {exc}") from exc


def safetensors_files(directory: Path, stem: str = "model") -> list[Path]:
    """`model.safetensors`, or the shards listed in `model.safetensors.index.json`."""
    single = directory / f"{stem}.safetensors"
    index = directory / f"{stem}.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise CheckpointError(f"{index} is not a valid safetensors index: {exc}") from exc
        shards = sorted(set(weight_map.values()))
        missing = [s for s in shards if not (directory / s).is_file()]
        if missing:
            raise CheckpointError(f"{directory} lacks shards listed in its index: {missing}")
        return [directory / s for s in shards]
    raise CheckpointError(f"no {stem}.safetensors (or sharded index) in {directory}")


def read_safetensors(files: Iterable[Path], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """All tensors of the given files on CPU, floating ones cast to `dtype` when given."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            part = load_file(str(f))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {f}: {exc}") from exc
        for key, value in part.items():
            tensors[key] = value.to(dtype) if dtype is not None and value.is_floating_point() else value
    return tensors


def _show(keys: list[str]) -> str:
    head = ", ".join(keys[:_SHOWN_KEYS])
    return head + (f", ... ({len(keys) - _SHOWN_KEYS} more)" if len(keys) > _SHOWN_KEYS else "")


def check_keys(model: nn.Module, state: Mapping[str, torch.Tensor], where: str, optional: Iterable[str] = ()) -> None:
    """Raise CheckpointError naming missing / unexpected / mis-shaped keys; `optional` may be absent."""
    expected = model.state_dict()
    optional = set(optional)
    missing = sorted(k for k in expected if k not in state and k not in optional)
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {_show(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_show(unexpected)}")
    if wrong:
        problems.append(f"shape mismatch (checkpoint != model): {_show(wrong)}")
    if problems:
        raise CheckpointError(f"checkpoint {where} does not match its config; " + "; ".join(problems))


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], where: str, optional: Iterable[str] = ()) -> None:
    """Strict-checked load of `state` into `model` (copies into the existing parameters)."""
    check_keys(model, state, where, optional)
    model.load_state_dict(dict(state), strict=False)


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Build modules directly in `dtype` (a 7B model built in fp32 first would need twice the memory)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextmanager
def skip_init() -> Iterator[None]:
    """Skip random initialisation of modules whose every weight is loaded right after (minutes
    saved for a 7B model on CPU). Weights not loaded afterwards hold garbage: callers check keys."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        yield


def read_lerobot_config(directory: Path) -> dict:
    """A LeRobot checkpoint's `config.json`, with errors that name the file (Pi0 and pi0-FAST)."""
    path = Path(directory) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"no config.json in {directory}") from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
