"""Model families by name: `load_policy(family, path, device, dtype, **options) -> Policy`.

Family modules are imported only when asked for (transformers' Pi0 or the OpenVLA modeling code
cost seconds to import), and an unknown family lists the valid ones. The default demo paths
(`.state/checkpoints/tiny-<family>`) are filled with the tiny random test fixture on first use.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UnknownChoiceError
from ..policy import Policy

log = logging.getLogger(__name__)

#: family -> "module:function" of its loader; each takes (path, device, dtype, **options).
FAMILIES: dict[str, str] = {
    "openvla": "vla_steer_tools.models.openvla.policy:load_openvla",
    "pi0": "vla_steer_tools.models.pi0:load_pi0",
    "pi0fast": "vla_steer_tools.models.pi0fast.policy:load_pi0fast",
    "minivla": "vla_steer_tools.models.minivla.policy:load_minivla",
}


def _loader(family: str):
    if family not in FAMILIES:
        raise UnknownChoiceError("model family", family, FAMILIES)
    module, func = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), func)


def _ensure_demo_fixture(family: str, path: str | os.PathLike) -> None:
    """Write the tiny fixture when `path` is the family's default demo dir and it is missing."""
    from ..fixtures.tiny_checkpoints import DEFAULT_DEMO_DIRS, ensure_fixture_at

    demo = DEFAULT_DEMO_DIRS.get(family)
    if demo is not None and Path(path).resolve() == demo.resolve() and not Path(path).is_dir():
        log.warning("default demo model %s not found: writing the tiny RANDOM-WEIGHT %s fixture", path, family)
        ensure_fixture_at(family, path)


def load_policy(family: str, path: str | os.PathLike, device: str = "auto", dtype: str = "auto", **options: Any) -> Policy:
    """Load a checkpoint of `family` from a local directory or hub id as a `Policy`.

    options are the family's own (OpenVLA: unnorm_key, center_crop, image_keys, action_space;
    Pi0: tokenizer, image_keys, num_steps, seed, action_space). Unknown options are an error.
    """
    load = _loader(family)
    if not str(path):
        raise ConfigError(f"empty checkpoint path for model family {family!r}")
    _ensure_demo_fixture(family, path)
    try:
        return load(path, device=device, dtype=dtype, **options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise ConfigError(f"option not supported by model family {family!r}: {exc}") from exc
        raise
