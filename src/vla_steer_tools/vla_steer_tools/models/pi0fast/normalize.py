"""LeRobot's per-feature normalisation, formula for formula (`NormalizerProcessorStep`).

pi0-FAST normalises the state before binning it into the prompt and un-normalises the decoded
chunk, both with QUANTILES by default: `2 (x - q01) / (q99 - q01) - 1`, where a zero range is
replaced by eps (not added to every range, as LeRobot's MEAN_STD does with std). Kept apart from
the Pi0 family's normaliser so this family follows LeRobot exactly, QUANTILE10 included.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ...errors import ConfigError

#: mode -> the statistics it needs (LeRobot's NormalizationMode values).
NEEDS: dict[str, tuple[str, ...]] = {
    "IDENTITY": (), "MEAN_STD": ("mean", "std"), "MIN_MAX": ("min", "max"),
    "QUANTILES": ("q01", "q99"), "QUANTILE10": ("q10", "q90"),
}
_RANGE = {"MIN_MAX": ("min", "max"), "QUANTILES": ("q01", "q99"), "QUANTILE10": ("q10", "q90")}
OPENPI_EPS = 1e-6


@dataclass(frozen=True)
class FeatureNormalizer:
    mode: str
    stats: Mapping[str, np.ndarray]
    eps: float = 1e-8
    #: openpi's formulas (transforms.Normalize / Unnormalize): 1e-6 added to every quantile range
    #: and to std, in both directions; LeRobot replaces only a zero range and un-scales by std alone.
    openpi: bool = False

    def _range(self) -> tuple[np.ndarray, np.ndarray]:
        lo_key, hi_key = _RANGE[self.mode]
        lo, hi = self.stats[lo_key], self.stats[hi_key]
        if self.openpi:
            return lo, (hi - lo + np.float32(OPENPI_EPS)).astype(np.float32)
        denom = hi - lo
        return lo, np.where(denom == 0, np.float32(self.eps), denom).astype(np.float32)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.mode == "MEAN_STD":
            return (x - self.stats["mean"]) / (self.stats["std"] + np.float32(OPENPI_EPS if self.openpi else self.eps))
        if self.mode in _RANGE:
            lo, denom = self._range()
            return np.float32(2.0) * (x - lo) / denom - np.float32(1.0)
        return x

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.mode == "MEAN_STD":
            return x * (self.stats["std"] + np.float32(OPENPI_EPS if self.openpi else 0.0)) + self.stats["mean"]
        if self.mode in _RANGE:
            lo, denom = self._range()
            return (x + np.float32(1.0)) * denom / np.float32(2.0) + lo
        return x


def feature_normalizer(mode: str, feature: str, stats: Mapping[str, np.ndarray], where: Path,
                       openpi: bool = False) -> FeatureNormalizer:
    """The normaliser of one feature, or ConfigError naming the statistics that are missing."""
    needed = {name: stats.get(f"{feature}.{name}") for name in NEEDS[mode]}
    missing = [f"{feature}.{n}" for n, v in needed.items() if v is None]
    if missing:
        raise ConfigError(f"checkpoint {where} lacks normalisation statistics {missing} ({feature} uses {mode}); "
                          "looked in the policy_preprocessor / policy_postprocessor state files")
    return FeatureNormalizer(mode, {k: np.asarray(v, dtype=np.float32) for k, v in needed.items()}, openpi=openpi)
