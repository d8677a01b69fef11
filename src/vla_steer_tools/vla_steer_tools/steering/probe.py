"""Activation telemetry: what the concept neurons did during one inference.

The steering hooks read each concept neuron's activation *before* editing it and accumulate
per-neuron sums and maxima on the model's device (no host sync inside the forward pass). Only
`summarize` (called once per inference, after the model ran) copies the few numbers to the host.
This is the data the ROS node publishes on `vla/concept_activations`.

`probing(adapter, directions)` is the read-only variant: the same hooks with steering disabled.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import torch

from ..models.base import ModelAdapter
from .directions import Direction

if TYPE_CHECKING:  # hooks.py imports this module
    from .hooks import Steerer


@dataclass(frozen=True)
class ConceptStat:
    """One direction's pre-edit activations over one inference.

    mean/max: over every token position of every forward and every neuron of the direction
    (raw activations, signs not applied); NaN when the neurons never ran (count 0).
    count: number of (position, neuron) values seen. steered: whether edits were applied.
    """

    name: str
    mean: float
    max: float
    count: int
    steered: bool


class LayerAccumulator:
    """Per-neuron running sum and max of one layer's probed columns, kept on the device."""

    __slots__ = ("sums", "maxs", "rows")

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None  # (k,) float32
        self.maxs: torch.Tensor | None = None  # (k,) float32
        self.rows = 0  # token positions seen (host int: known from shapes, no sync)

    def add(self, picked: torch.Tensor) -> None:
        """picked: (..., k) activations of this layer's probed neurons."""
        flat = picked.detach().reshape(-1, picked.shape[-1]).float()  # (rows, k)
        sums = flat.sum(0)  # (k,)
        maxs = flat.amax(0)  # (k,)
        if self.sums is None:
            self.sums, self.maxs = sums, maxs
        else:  # out of place: works whether or not the forward runs under inference_mode
            self.sums = self.sums + sums
            self.maxs = torch.maximum(self.maxs, maxs)
        self.rows += flat.shape[0]


def summarize(
    directions: Sequence[Direction],
    columns: dict[tuple[str, int], list[tuple[int, int]]],
    accumulators: dict[tuple[str, int], LayerAccumulator],
    steered: bool,
) -> dict[str, ConceptStat]:
    """Fold per-layer accumulators into one ConceptStat per direction.

    columns: (component, layer) -> [(direction number, column in that layer's probe), ...].
    """
    sums = [0.0] * len(directions)
    maxs = [-math.inf] * len(directions)
    counts = [0] * len(directions)
    for key, cols in columns.items():
        acc = accumulators.get(key)
        if acc is None or acc.sums is None:
            continue
        layer_sums = acc.sums.cpu().tolist()
        layer_maxs = acc.maxs.cpu().tolist()
        for d, col in cols:
            sums[d] += layer_sums[col]
            maxs[d] = max(maxs[d], layer_maxs[col])
            counts[d] += acc.rows
    out = {}
    for i, d in enumerate(directions):
        n = counts[i]
        out[d.name] = ConceptStat(
            name=d.name,
            mean=sums[i] / n if n else math.nan,
            max=maxs[i] if n else math.nan,
            count=n,
            steered=steered,
        )
    return out


@contextmanager
def probing(adapter: ModelAdapter, directions: Sequence[Direction]) -> Iterator["Steerer"]:
    """Read-only probe: record the directions' activations, edit nothing.

    Call `.begin_inference()` before each inference and `.activations()` after it.
    """
    from .hooks import Steerer, SteeringConfig

    steerer = Steerer(adapter, SteeringConfig(directions=tuple(directions), enabled=False, probe=True))
    try:
        steerer.begin_inference()
        yield steerer
    finally:
        steerer.close()
