"""The one small interface through which model families plug into the steering core.

A `ModelAdapter` answers three questions about a loaded model and nothing else:
  * where the FFN layers are: per component ("backbone", "action_expert"), the `down_proj`
    Linear of every layer, in layer order (the hook site and the value vectors);
  * what the token matrix is: (vocab, d_model) — untied `lm_head.weight` or the tied input
    embedding — plus the optional final norm applied before projecting;
  * how to turn token ids into readable strings (OpenVLA's action-bin ids become `[action: x]`).
How to run one step belongs to the `Policy` (policy.py) that owns the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from ..errors import ModelLayoutError, UnknownChoiceError
from ..types import NeuronRef


@dataclass
class ModelAdapter:
    """Where a model keeps its FFNs and its token matrix.

    model_id: hub id or local path the weights came from (written into every output file).
    down_projs: component -> `down_proj` modules per layer (index = layer number).
    token_matrix: returns E, shape (vocab, d_model), on the model's device.
    decode_token: token id -> human-readable string.
    final_norm: applied to value vectors before projection when asked (the paper does not).
    random_weights: True for test fixtures; every user-facing output must say so.
    extra: family facts for tools and reports; `default_position` there is the position policy
        a steering config with no position of its own uses on this model (see `default_position`).
    """

    model_id: str
    down_projs: Mapping[str, Sequence[nn.Linear]]
    token_matrix: Callable[[], torch.Tensor]
    decode_token: Callable[[int], str]
    final_norm: nn.Module | None = None
    random_weights: bool = False
    token_component: str = "backbone"
    extra: dict = field(default_factory=dict)

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.down_projs)

    def layers(self, component: str) -> Sequence[nn.Linear]:
        """The `down_proj` modules of one component, validated."""
        if component not in self.down_projs:
            raise UnknownChoiceError("component", component, self.down_projs)
        return self.down_projs[component]

    def width(self, component: str, layer: int) -> int:
        """Number of FFN neurons in a layer (`down_proj.in_features`)."""
        layers = self.layers(component)
        if not 0 <= layer < len(layers):
            raise ModelLayoutError(f"{component} has layers 0..{len(layers) - 1}, not {layer}")
        return int(layers[layer].in_features)

    def check_neuron(self, ref: NeuronRef) -> None:
        """Raise a clear error if `ref` does not exist in this model."""
        width = self.width(ref.component, ref.layer)
        if ref.index >= width:
            raise ModelLayoutError(f"neuron {ref} out of range: layer has {width} neurons")

    def value_vectors(self, component: str, layer: int) -> torch.Tensor:
        """Value vectors of one layer as rows: (n_neurons, d_model) view of down_proj.weight.T."""
        weight = self.layers(component)[layer].weight  # (d_model, n_neurons)
        return weight.T

    @property
    def default_position(self) -> str:
        """The family's own steering position policy: `extra["default_position"]` when the family
        declares one (pi0fast: "prefill", the paper's setting), else "all" (every forward pass).
        Validated where it is used (steering.hooks.resolve_position)."""
        return str(self.extra.get("default_position", "all"))

    @property
    def device(self) -> torch.device:
        first = next(iter(self.down_projs.values()))[0]
        return first.weight.device


def find_down_projs(layers: Sequence[nn.Module], where: str) -> list[nn.Linear]:
    """`layer.mlp.down_proj` for each decoder layer, with an error naming the path if absent."""
    out: list[nn.Linear] = []
    for i, layer in enumerate(layers):
        mlp = getattr(layer, "mlp", None)
        down = getattr(mlp, "down_proj", None)
        if not isinstance(down, nn.Linear):
            raise ModelLayoutError(f"{where}[{i}].mlp.down_proj is not an nn.Linear (got {type(down).__name__})")
        out.append(down)
    if not out:
        raise ModelLayoutError(f"{where} has no decoder layers")
    return out
