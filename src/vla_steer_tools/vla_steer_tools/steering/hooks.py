"""Steering hooks: edit FFN hidden activations at the input of `down_proj`.

Why a forward *pre*-hook: a neuron's activation f_i(x) = act(gate(x)) * up(x) is the input of
`down_proj`, not the output of any module. The paper's code hooks the output of `down_proj` and
recomputes the matmul with an edited input (two matmuls per layer); a pre-hook edits the input
once, before the only matmul, and gives the same result (tests check both).

Edits, for each neuron i of a direction with sign s_i (see `Direction`):
    override: f_i <- alpha * s_i          (the paper's method)
    add:      f_i <- f_i + alpha * s_i
    scale:    f_i <- f_i * alpha          (signs ignored: scaling keeps the sign)
Directions apply in order; neighbouring directions with the same mode are merged into one edit
per layer (override: the later value wins, add: values add, scale: factors multiply).

Position policy (per component, counted by the layer-0 hook of that component):
    all      every forward pass;
    prefill  only the first forward through the component after `begin_inference()` (for an LM
             the prompt pass; decode steps still see its effect through the KV cache — the
             paper's pi0-FAST setting);
    decode   every later forward of the same inference (the generated tokens).
    ""       (`FAMILY_DEFAULT`, the default) the model family's own policy,
             `ModelAdapter.default_position`: `prefill` for pi0fast (the paper's setting there),
             `all` for every family that declares none. It is resolved against the adapter when
             a plan is built, so one config means "the family's own" on every model it steers;
             the config keeps "" (what was asked) and `Steerer.position` says what runs.
If `begin_inference()` is never called, the first forward after the Steerer was built counts as
the prefill.

Cost: the hooks are registered once, on every `down_proj`. A layer without concept neurons (or
every layer, when steering and probing are off) costs one dict lookup. Index and value tensors
live on each layer's device; `apply()` builds a new plan and swaps it in with one reference
assignment, so it can be called from another thread between inferences without touching hooks.
`SteeredPolicy` (policy.py) does that swap under a lock right before an inference.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch
from torch import nn

from ..errors import DirectionError
from ..models.base import ModelAdapter
from .directions import Direction, check_alpha, check_mode, load_direction
from .probe import ConceptStat, LayerAccumulator, summarize

log = logging.getLogger(__name__)

#: Which forward passes of one inference are steered (see the module docstring).
POSITIONS: tuple[str, ...] = ("all", "prefill", "decode")
#: Position value meaning "the model family's own policy" (`ModelAdapter.default_position`).
FAMILY_DEFAULT = ""

LayerKey = tuple[str, int]  # (component, layer)


@dataclass(frozen=True)
class SteeringConfig:
    """What to steer. `enabled=False` keeps the directions for probing but edits nothing.

    position: one of `POSITIONS`, or `FAMILY_DEFAULT` ("", the default) for the family's own
    (`resolve_position`); a family like pi0fast is steered as its paper did unless told otherwise.
    probe: record the directions' pre-edit activations (telemetry); with `enabled=False` and
    `probe=False` the hooks do nothing at all.
    """

    directions: tuple[Direction, ...] = ()
    enabled: bool = False
    position: str = FAMILY_DEFAULT
    probe: bool = True

    def replace(self, **changes) -> "SteeringConfig":
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class _Edit:
    mode: str
    index: torch.Tensor  # (k,) int64 on the layer's device, unique
    values: torch.Tensor  # (k,) in the layer's dtype: alpha*sign (override/add) or alpha (scale)


@dataclass(frozen=True)
class _LayerPlan:
    edits: tuple[_Edit, ...]  # empty when steering is disabled
    probe_index: torch.Tensor | None  # (m,) int64, the layer's concept neurons, or None


@dataclass(frozen=True)
class _Plan:
    config: SteeringConfig
    position: str  # config.position resolved against the adapter: one of POSITIONS
    layers: dict[LayerKey, _LayerPlan] = field(default_factory=dict)
    columns: dict[LayerKey, list[tuple[int, int]]] = field(default_factory=dict)


def resolve_position(adapter: ModelAdapter, position: str = FAMILY_DEFAULT) -> str:
    """The position policy that runs: `position` itself, or for `FAMILY_DEFAULT` ("") the
    adapter's `default_position`. DirectionError for anything else, naming the valid values."""
    if position == FAMILY_DEFAULT:
        position = adapter.default_position
        if position not in POSITIONS:  # a family bug, not a user error: say whose
            raise DirectionError(f"model {adapter.model_id!r} declares default position policy {position!r}; "
                                 f"valid: {', '.join(POSITIONS)}")
    if position not in POSITIONS:
        raise DirectionError(f"unknown position policy {position!r}; valid: {', '.join(POSITIONS)} "
                             "or empty for the model family's own")
    return position


def _check_config(adapter: ModelAdapter, config: SteeringConfig) -> None:
    """Raise DirectionError naming the first thing in `config` that does not fit `adapter`."""
    resolve_position(adapter, config.position)
    names = [d.name for d in config.directions]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DirectionError(f"directions named more than once: {', '.join(dupes)}")
    for d in config.directions:
        d.check()
        _check_shapes(adapter, d)
        for ref in d.neurons:
            if ref.component not in adapter.down_projs:
                raise DirectionError(
                    f"direction {d.name!r}: unknown component {ref.component!r}; "
                    f"this model has: {', '.join(adapter.components)}"
                )
            n_layers = len(adapter.layers(ref.component))
            if ref.layer >= n_layers:
                raise DirectionError(
                    f"direction {d.name!r}: layer {ref.layer} out of range ({ref.component} has "
                    f"layers 0..{n_layers - 1}); direction built for another model?"
                )
            width = adapter.width(ref.component, ref.layer)
            if ref.index >= width:
                raise DirectionError(
                    f"direction {d.name!r}: neuron {ref} out of range ({ref.component} layer "
                    f"{ref.layer} has {width} neurons); direction built for another model?"
                )
        if d.model_id and adapter.model_id and d.model_id != adapter.model_id:
            log.debug("direction %r was found in %s, steering %s", d.name, d.model_id, adapter.model_id)


def _check_shapes(adapter: ModelAdapter, d: Direction) -> None:
    """A direction that records its model's shapes must match this model exactly."""
    for comp, n_layers, width in d.model_shapes:
        if comp not in adapter.down_projs:
            raise DirectionError(
                f"direction {d.name!r} was built for a model with component {comp!r}; "
                f"this model has: {', '.join(adapter.components)}"
            )
        layers = adapter.layers(comp)
        widths = {int(m.in_features) for m in layers}
        if len(layers) != n_layers or widths != {width}:
            have = f"{len(layers)} layers x {'/'.join(map(str, sorted(widths)))} neurons"
            raise DirectionError(
                f"direction {d.name!r} was built for a model with {comp} {n_layers} layers x "
                f"{width} neurons, this model has {have} (direction file for a different model)"
            )


def _merge_edits(config: SteeringConfig) -> dict[LayerKey, list[tuple[str, dict[int, float]]]]:
    """Per layer, the ordered edits: neighbouring same-mode directions merged per neuron."""
    merged: dict[LayerKey, list[tuple[str, dict[int, float]]]] = {}
    for d in config.directions:
        for i, ref in enumerate(d.neurons):
            key = (ref.component, ref.layer)
            value = d.alpha if d.mode == "scale" else d.alpha * d.sign_of(i)
            edits = merged.setdefault(key, [])
            if not edits or edits[-1][0] != d.mode:
                edits.append((d.mode, {}))
            mode, vals = edits[-1]
            if ref.index in vals and mode == "add":
                vals[ref.index] += value
            elif ref.index in vals and mode == "scale":
                vals[ref.index] *= value
            else:
                vals[ref.index] = value
    return merged


def _build_plan(adapter: ModelAdapter, config: SteeringConfig) -> _Plan:
    """Validate `config` and put its index/value tensors on each layer's device."""
    _check_config(adapter, config)
    plan = _Plan(config=config, position=resolve_position(adapter, config.position))
    if not config.directions or not (config.enabled or config.probe):
        return plan
    probe_cols: dict[LayerKey, dict[int, int]] = {}
    for di, d in enumerate(config.directions):
        for ref in d.neurons:
            key = (ref.component, ref.layer)
            cols = probe_cols.setdefault(key, {})
            col = cols.setdefault(ref.index, len(cols))
            plan.columns.setdefault(key, []).append((di, col))
    edits = _merge_edits(config) if config.enabled else {}
    for key in probe_cols:
        weight = adapter.layers(key[0])[key[1]].weight
        dev, dtype = weight.device, weight.dtype
        layer_edits = tuple(
            _Edit(
                mode=mode,
                index=torch.tensor(list(vals), dtype=torch.long, device=dev),
                values=torch.tensor(list(vals.values()), dtype=torch.float32, device=dev).to(dtype),
            )
            for mode, vals in edits.get(key, ())
        )
        probe_index = None
        if config.probe:
            probe_index = torch.tensor(list(probe_cols[key]), dtype=torch.long, device=dev)
        plan.layers[key] = _LayerPlan(edits=layer_edits, probe_index=probe_index)
    if not config.probe:
        plan.columns.clear()
    return plan


def _apply_edits(hidden: torch.Tensor, edits: Sequence[_Edit]) -> torch.Tensor:
    """Edit the last dim of hidden (..., n_neurons); in place unless autograd needs the input."""
    if hidden.requires_grad:
        hidden = hidden.clone()
    for e in edits:
        values = e.values if e.values.dtype == hidden.dtype else e.values.to(hidden.dtype)  # (k,)
        if e.mode == "override":
            hidden[..., e.index] = values
        elif e.mode == "add":
            hidden[..., e.index] += values
        else:  # scale
            hidden[..., e.index] *= values
    return hidden


class Steerer:
    """Owns one pre-hook per `down_proj` of an adapter; steers and probes per `config`.

    Use as a context manager or call `close()`; hooks are removed even if the body raises.
    """

    def __init__(self, adapter: ModelAdapter, config: SteeringConfig = SteeringConfig()) -> None:
        self.adapter = adapter
        self._plan = _build_plan(adapter, config)  # validate before any hook exists
        self._forwards: dict[str, int] = {c: 0 for c in adapter.components}
        self._accumulators: dict[LayerKey, LayerAccumulator] = {}
        self._steered = False
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        try:
            for comp in adapter.components:
                for layer, module in enumerate(adapter.layers(comp)):
                    self._handles.append(module.register_forward_pre_hook(self._make_hook(comp, layer)))
        except BaseException:
            self.close()
            raise

    # -- configuration -------------------------------------------------------------------------

    @property
    def config(self) -> SteeringConfig:
        """The config as given (its position may be `FAMILY_DEFAULT`; see `position`)."""
        return self._plan.config

    @property
    def position(self) -> str:
        """The position policy that runs now: the config's, with "" resolved for this model."""
        return self._plan.position

    def validate(self, config: SteeringConfig) -> None:
        """Raise DirectionError if `config` does not fit this model; changes nothing."""
        _check_config(self.adapter, config)

    def apply(self, config: SteeringConfig) -> None:
        """Validate and swap in a new config (one reference assignment; hooks stay registered).

        Safe to call from another thread; a forward running at that moment may see the new plan
        from its next layer on, so swap between inferences (SteeredPolicy does) when that matters.
        """
        plan = _build_plan(self.adapter, config)
        self._plan = plan

    # -- per inference -------------------------------------------------------------------------

    def begin_inference(self) -> None:
        """Start a new inference: the next forward per component is the prefill; reset stats."""
        self._forwards = {c: 0 for c in self.adapter.components}
        self._accumulators = {}
        self._steered = False

    def activations(self) -> dict[str, ConceptStat]:
        """Pre-edit mean/max per direction since `begin_inference()` (syncs with the device)."""
        plan = self._plan
        return summarize(plan.config.directions, plan.columns, self._accumulators, self._steered)

    @property
    def steered(self) -> bool:
        """Whether any edit was applied since `begin_inference()`."""
        return self._steered

    # -- hooks ---------------------------------------------------------------------------------

    def _make_hook(self, comp: str, layer: int):
        key = (comp, layer)
        counts_forwards = layer == 0

        def hook(module: nn.Module, args: tuple) -> tuple | None:
            if counts_forwards:
                self._forwards[comp] += 1
            plan = self._plan
            layer_plan = plan.layers.get(key)
            if layer_plan is None:
                return None
            hidden = args[0]  # (..., n_neurons): the neurons' activations
            if layer_plan.probe_index is not None:
                acc = self._accumulators.get(key)
                if acc is None:
                    acc = self._accumulators[key] = LayerAccumulator()
                acc.add(hidden.index_select(-1, layer_plan.probe_index))  # (..., m)
            if not layer_plan.edits or not self._position_active(plan.position, comp):
                return None
            self._steered = True
            return (_apply_edits(hidden, layer_plan.edits),) + tuple(args[1:])

        return hook

    def _position_active(self, position: str, comp: str) -> bool:
        if position == "all":
            return True
        first = self._forwards[comp] <= 1
        return first if position == "prefill" else not first

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Remove every hook (idempotent)."""
        while self._handles:
            self._handles.pop().remove()

    @property
    def closed(self) -> bool:
        return not self._handles

    def __enter__(self) -> "Steerer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def as_directions(directions: Direction | str | Path | Iterable[Direction | str | Path]) -> tuple[Direction, ...]:
    """Directions given as objects, YAML paths, or a mix of both."""
    if isinstance(directions, (Direction, str, Path)):
        directions = (directions,)
    return tuple(d if isinstance(d, Direction) else load_direction(d) for d in directions)


@contextmanager
def steering(
    adapter: ModelAdapter,
    directions: Direction | str | Path | Iterable[Direction | str | Path],
    alpha: float | None = None,
    mode: str | None = None,
    position: str = FAMILY_DEFAULT,
) -> Iterator[Steerer]:
    """Steer `directions` (objects or YAML paths) while the block runs; hooks removed on exit.

    alpha/mode, when given, replace every direction's own; position "" = the family's own. The block starts a new inference
    (see `Steerer.begin_inference`); call it again between generations when using prefill/decode.
    """
    if alpha is not None:
        check_alpha(alpha)  # the one range of every path (directions.ALPHA_LIMIT)
    if mode is not None:
        check_mode(mode)
    dirs = tuple(d.with_options(alpha, mode) for d in as_directions(directions))
    steerer = Steerer(adapter, SteeringConfig(directions=dirs, enabled=True, position=position))
    try:
        steerer.begin_inference()
        yield steerer
    finally:
        steerer.close()
