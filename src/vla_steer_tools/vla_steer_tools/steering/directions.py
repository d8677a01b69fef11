"""Steering directions: named neuron sets, their YAML files, a library of them, and the paper's
flat-index dictionaries.

A direction is a set of FFN neurons `(component, layer, index)` plus how to edit them (mode,
alpha, per-neuron sign). It is plain data: validating it against a loaded model happens in
`hooks.Steerer.apply`, which is the only place that knows the model's shapes.

YAML layout (one direction per file; `neurons` entries are mappings, `sign` optional):

    name: fast
    alpha: 10.0
    mode: override
    model_id: HuggingFaceTB/SmolLM2-135M-Instruct
    model_shapes: {backbone: [30, 1536]}      # layers x neurons per layer it was built for
    provenance: "keyword 'fast' in projection 1a2b3c (top-k 10, pool full)"
    description: neurons whose value vectors promote speed words
    neurons:
      - {component: backbone, layer: 25, index: 1187, sign: -1}
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import yaml

from ..atomic import atomic_write_text
from ..errors import ConfigError, DirectionError, UnknownChoiceError
from ..types import COMPONENTS, NeuronRef

log = logging.getLogger(__name__)

#: How a direction edits its neurons' activations (see hooks.py for the exact formulas).
MODES: tuple[str, ...] = ("override", "add", "scale")

DIRECTION_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")


@dataclass(frozen=True)
class Direction:
    """A named set of neurons and how to steer them.

    alpha: the value written (override), added (add) or multiplied in (scale).
    signs: per-neuron +1/-1 (empty = all +1). override/add use `alpha * sign`, so a neuron whose
        value vector projects onto the concept with a negative score is driven negative; scale
        ignores signs (scaling already preserves the activation's sign).
    model_shapes: ((component, n_layers, width), ...) of the model the neurons were found in; when
        present, a model with other shapes is refused (a direction file for a different model).
    """

    name: str
    neurons: tuple[NeuronRef, ...]
    alpha: float = 10.0
    mode: str = "override"
    signs: tuple[float, ...] = ()
    provenance: str = ""
    model_id: str = ""
    description: str = ""
    model_shapes: tuple[tuple[str, int, int], ...] = field(default=())

    def sign_of(self, i: int) -> float:
        """Sign of the i-th neuron (+1 when no signs are given)."""
        return float(self.signs[i]) if self.signs else 1.0

    def with_options(self, alpha: float | None = None, mode: str | None = None) -> "Direction":
        """A copy with alpha and/or mode replaced (None keeps the current value)."""
        return replace(
            self,
            alpha=self.alpha if alpha is None else float(alpha),
            mode=self.mode if mode is None else mode,
        )

    def check(self) -> None:
        """Model-independent validation: raise DirectionError naming the bad field."""
        if not self.name:
            raise DirectionError("direction has an empty name")
        if not self.neurons:
            raise DirectionError(f"direction {self.name!r} has no neurons")
        if self.mode not in MODES:
            raise DirectionError(f"direction {self.name!r}: unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
        if not math.isfinite(self.alpha):
            raise DirectionError(f"direction {self.name!r}: alpha must be finite, got {self.alpha!r}")
        if self.signs and len(self.signs) != len(self.neurons):
            raise DirectionError(
                f"direction {self.name!r}: {len(self.signs)} signs for {len(self.neurons)} neurons"
            )
        bad = [s for s in self.signs if not math.isfinite(s)]
        if bad:
            raise DirectionError(f"direction {self.name!r}: non-finite sign {bad[0]!r}")


# ----------------------------------------------------------------------------- YAML files


def direction_to_dict(direction: Direction) -> dict:
    """Plain dict for YAML/JSON (the inverse of `direction_from_dict`)."""
    neurons = []
    for i, ref in enumerate(direction.neurons):
        entry = {"component": ref.component, "layer": ref.layer, "index": ref.index}
        if direction.signs:
            entry["sign"] = int(direction.signs[i]) if float(direction.signs[i]).is_integer() else direction.signs[i]
        neurons.append(entry)
    out = {
        "name": direction.name,
        "alpha": float(direction.alpha),
        "mode": direction.mode,
        "model_id": direction.model_id,
        "description": direction.description,
        "provenance": direction.provenance,
    }
    if direction.model_shapes:
        out["model_shapes"] = {c: [n, w] for c, n, w in direction.model_shapes}
    out["neurons"] = neurons
    return out


def _neuron_from_entry(entry: object, where: str) -> tuple[NeuronRef, float | None]:
    """One `neurons` entry: a mapping, or a list [component, layer, index(, sign)]."""
    try:
        if isinstance(entry, Mapping):
            comp = str(entry.get("component", "backbone"))
            ref = NeuronRef(comp, int(entry["layer"]), int(entry["index"]))
            sign = entry.get("sign")
        elif isinstance(entry, (list, tuple)) and len(entry) in (3, 4):
            ref = NeuronRef(str(entry[0]), int(entry[1]), int(entry[2]))
            sign = entry[3] if len(entry) == 4 else None
        else:
            raise DirectionError(f"{where}: neuron entry {entry!r} is neither a mapping nor [component, layer, index]")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DirectionError):
            raise
        raise DirectionError(f"{where}: bad neuron entry {entry!r}: {exc}") from exc
    return ref, None if sign is None else float(sign)


def direction_from_dict(data: Mapping, where: str = "direction") -> Direction:
    """Build and check a Direction from the YAML mapping; errors name `where` and the field."""
    if not isinstance(data, Mapping):
        raise DirectionError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - {"name", "alpha", "mode", "model_id", "description", "provenance", "model_shapes", "neurons", "signs"}
    if unknown:
        raise DirectionError(f"{where}: unknown keys {sorted(unknown)}")
    parsed = [_neuron_from_entry(e, where) for e in data.get("neurons") or ()]
    refs = tuple(r for r, _ in parsed)
    signs: tuple[float, ...] = ()
    if any(s is not None for _, s in parsed):
        signs = tuple(1.0 if s is None else s for _, s in parsed)
    elif data.get("signs"):
        signs = tuple(float(s) for s in data["signs"])
    shapes = tuple(
        (str(c), int(v[0]), int(v[1])) for c, v in (data.get("model_shapes") or {}).items()
    )
    try:
        alpha = float(data.get("alpha", 10.0))
    except (TypeError, ValueError) as exc:
        raise DirectionError(f"{where}: alpha {data.get('alpha')!r} is not a number") from exc
    direction = Direction(
        name=str(data.get("name", "")),
        neurons=refs,
        alpha=alpha,
        mode=str(data.get("mode", "override")),
        signs=signs,
        provenance=str(data.get("provenance", "")),
        model_id=str(data.get("model_id", "")),
        description=str(data.get("description", "")),
        model_shapes=shapes,
    )
    direction.check()
    return direction


def save_direction(direction: Direction, path: str | os.PathLike) -> Path:
    """Write one direction as YAML (atomically). Neuron entries are written one per line."""
    direction.check()
    data = direction_to_dict(direction)
    neurons = data.pop("neurons")
    head = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    lines = [yaml.safe_dump(n, default_flow_style=True, width=1000, sort_keys=False).strip() for n in neurons]
    text = head + "neurons:\n" + "".join(f"  - {line}\n" for line in lines)
    return atomic_write_text(path, text)


def load_direction(path: str | os.PathLike) -> Direction:
    """Read one direction YAML file; DirectionError names the file and the bad field."""
    path = Path(path)
    if not path.is_file():
        raise DirectionError(f"direction file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DirectionError(f"{path}: not valid YAML: {exc}") from exc
    return direction_from_dict(data, where=str(path))


# ----------------------------------------------------------------------------- library


class DirectionLibrary:
    """The direction files directly inside some directories, by name.

    Not recursive: one directory holds one model's directions (config/directions/<model>/), so
    a library never mixes directions of different models. Later directories win on a name clash
    (logged).
    """

    def __init__(self, dirs: Iterable[str | os.PathLike]) -> None:
        self._paths: dict[str, Path] = {}
        self._cache: dict[str, Direction] = {}
        for d in dirs:
            d = Path(d)
            if not d.is_dir():
                raise ConfigError(f"direction directory {str(d)!r} does not exist")
            for p in sorted(d.iterdir()):
                if p.suffix in DIRECTION_SUFFIXES and p.is_file():
                    name = load_direction(p).name
                    if name in self._paths:
                        log.warning("direction %r in %s replaces the one in %s", name, p, self._paths[name])
                    self._paths[name] = p

    def names(self) -> list[str]:
        return sorted(self._paths)

    def path(self, name: str) -> Path:
        if name not in self._paths:
            raise UnknownChoiceError("direction", name, self._paths)
        return self._paths[name]

    def get(self, name: str) -> Direction:
        if name not in self._cache:
            self._cache[name] = load_direction(self.path(name))
        return self._cache[name]

    def describe(self, name: str) -> str:
        """One paragraph for `list_concepts` / the CLI: size, layers, mode, alpha, provenance."""
        d = self.get(name)
        layers = sorted({(r.component, r.layer) for r in d.neurons})
        where = ", ".join(f"{c}/L{layer}" for c, layer in layers)
        text = f"{d.name}: {len(d.neurons)} neurons ({where}); mode {d.mode}, alpha {d.alpha:g}"
        if d.description:
            text += f"; {d.description}"
        if d.provenance:
            text += f"; found by {d.provenance}"
        return text


# ----------------------------------------------------------------------------- paper flat indices


def flat_index(ref: NeuronRef, width: int) -> int:
    """The paper's flat neuron id: `layer * width + index`."""
    if not 0 <= ref.index < width:
        raise DirectionError(f"neuron {ref} out of range for layer width {width}")
    return ref.layer * width + ref.index


def import_flat_dict(
    data: Mapping[str, Sequence[int]],
    width: int,
    n_layers: int | None = None,
    component: str = "backbone",
    alpha: float = 10.0,
    model_id: str = "",
    source: str = "",
) -> list[Direction]:
    """Directions from the paper's `{cluster name: [flat index, ...]}` dictionaries.

    `width` is the model's FFN width (11008 for OpenVLA's Llama-2-7B, 16384 for PaliGemma's
    Gemma-2B); `n_layers` bounds the layer when given. Raises DirectionError on any bad id.
    """
    if component not in COMPONENTS:
        raise UnknownChoiceError("component", component, COMPONENTS)
    if width <= 0:
        raise DirectionError(f"layer width must be positive, got {width}")
    out = []
    for name, ids in data.items():
        refs = []
        for flat in ids:
            flat = int(flat)
            layer, index = divmod(flat, width)
            if flat < 0 or (n_layers is not None and layer >= n_layers):
                raise DirectionError(f"{name}: flat index {flat} out of range for {n_layers} layers x {width}")
            refs.append(NeuronRef(component, layer, index))
        shapes = ((component, n_layers, width),) if n_layers is not None else ()
        d = Direction(
            name=str(name), neurons=tuple(refs), alpha=alpha, model_id=model_id,
            provenance=f"imported from paper flat-index dict {source}".strip(), model_shapes=shapes,
        )
        d.check()
        out.append(d)
    if not out:
        raise DirectionError(f"no clusters in flat-index dict {source}".strip())
    return out


def export_flat_dict(directions: Iterable[Direction], width: int) -> dict[str, list[int]]:
    """The inverse of `import_flat_dict` (one component only, as the paper's files)."""
    out: dict[str, list[int]] = {}
    for d in directions:
        comps = {r.component for r in d.neurons}
        if len(comps) > 1:
            raise DirectionError(f"{d.name}: flat indices cannot mix components {sorted(comps)}")
        out[d.name] = [flat_index(r, width) for r in d.neurons]
    return out


def read_flat_dict(path: str | os.PathLike) -> dict[str, list[int]]:
    """A flat-index dict from JSON or YAML (`{name: [int, ...]}`)."""
    path = Path(path)
    if not path.is_file():
        raise DirectionError(f"flat-index file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, Mapping) or not all(isinstance(v, (list, tuple)) for v in data.values()):
        raise DirectionError(f"{path}: expected a mapping of name -> list of flat indices")
    return {str(k): [int(i) for i in v] for k, v in data.items()}
