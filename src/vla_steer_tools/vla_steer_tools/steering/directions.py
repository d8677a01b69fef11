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

Every way in (YAML files, flat-index dicts, the node's service, Python) ends in
`Direction.check()`, so the rules are the same everywhere: a name that is safe as a file name
(`NAME_RULE`), alpha finite and within +-`ALPHA_LIMIT` (the node's `steering.alpha` range),
signs in [-1, 1], integer indices that fit the messages' uint32, no neuron listed twice (a
duplicate would compound: scale 3 twice is 9). Parsing is strict: `3.7`, `true` or `"3"` is not an
integer, and errors name the file, the field and the position.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from ..atomic import atomic_write_text
from ..errors import ConfigError, DirectionError, UnknownChoiceError
from ..types import COMPONENTS, NeuronRef

log = logging.getLogger(__name__)

#: How a direction edits its neurons' activations (see hooks.py for the exact formulas).
MODES: tuple[str, ...] = ("override", "add", "scale")

DIRECTION_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")

#: One alpha range for every path (files, flat imports, the node's service and parameters): the
#: node declares `steering.alpha` with exactly these bounds, and beyond them float16/bfloat16
#: activations (and the float32 telemetry) overflow.
ALPHA_LIMIT: float = 1000.0

#: Layers and neuron indices travel as uint32 in `SteeringConcept`.
MAX_INDEX: int = 2**32 - 1

#: Direction names become file names (`<name>.yaml`) and ROS strings: a letter, digit or `_`
#: first, then letters, digits and `_ . + -`, at most 128 characters, no `..`.
NAME_RULE = "1-128 characters of A-Z a-z 0-9 _ . + -, starting with a letter, digit or _, no '..'"
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")

#: Sidecar next to an exported flat-index file: what the flat format cannot hold.
SIDECAR_FORMAT = "vla-steer flat-index sidecar"
SIDECAR_VERSION = 1


def check_name(name: object, what: str = "direction name") -> str:
    """Return `name` if it is safe as a file name (see NAME_RULE), else DirectionError.

    Why a whitelist: names become `<out-dir>/<name>.yaml` on import; a blacklist of separators
    misses the next trick (`..`, hidden files, NUL, Windows separators, control characters).
    """
    if not isinstance(name, str):
        raise DirectionError(f"{what} {name!r} is not a string")
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise DirectionError(f"{what} {name!r} is not allowed; valid: {NAME_RULE}")
    return name


def direction_file(directory: str | os.PathLike, name: str) -> Path:
    """`directory/<name>.yaml` for a validated name (never a path outside `directory`)."""
    return Path(directory) / f"{check_name(name)}.yaml"


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool")


def _strict_int(value: object, what: str) -> int:
    """An integer that is really one: bools, floats (3.7 or 3.0) and strings are refused."""
    if _is_bool(value):
        raise DirectionError(f"{what}: {value!r} is not an integer")
    try:
        return operator.index(value)  # int, numpy integers
    except TypeError:
        raise DirectionError(f"{what}: {value!r} is not an integer") from None


def _strict_number(value: object, what: str) -> float:
    """A finite real number (int or float, not bool or string)."""
    if _is_bool(value) or isinstance(value, (str, bytes)):
        raise DirectionError(f"{what}: {value!r} is not a number")
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        raise DirectionError(f"{what}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise DirectionError(f"{what} must be finite, got {value!r}")
    return number


def check_alpha(alpha: object, what: str = "alpha") -> float:
    """alpha as a float within [-ALPHA_LIMIT, ALPHA_LIMIT]; DirectionError naming the value."""
    value = _strict_number(alpha, what)
    if abs(value) > ALPHA_LIMIT:
        raise DirectionError(f"{what} {alpha!r} out of range; valid: [{-ALPHA_LIMIT:g}, {ALPHA_LIMIT:g}]")
    return value


def check_mode(mode: object, where: str = "") -> str:
    """mode if it is one of MODES, else DirectionError listing them."""
    if not isinstance(mode, str) or mode not in MODES:
        raise DirectionError(f"{where + ': ' if where else ''}unknown mode {mode!r}; valid: {', '.join(MODES)}")
    return mode


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
        """A copy with alpha and/or mode replaced (None keeps the current value); checked."""
        where = f"direction {self.name!r}"
        return replace(
            self,
            alpha=self.alpha if alpha is None else check_alpha(alpha, f"{where}: alpha"),
            mode=self.mode if mode is None else check_mode(mode, where),
        )

    def check(self) -> None:
        """Model-independent validation: raise DirectionError naming the bad field."""
        check_name(self.name)
        where = f"direction {self.name!r}"
        if not self.neurons:
            raise DirectionError(f"{where} has no neurons")
        check_mode(self.mode, where)
        check_alpha(self.alpha, f"{where}: alpha")
        for text, label in ((self.provenance, "provenance"), (self.model_id, "model_id"), (self.description, "description")):
            if not isinstance(text, str):
                raise DirectionError(f"{where}: {label} {text!r} is not a string")
        self._check_neurons(where)
        self._check_signs(where)
        self._check_shapes(where)

    def _check_neurons(self, where: str) -> None:
        seen: dict[NeuronRef, int] = {}
        for i, ref in enumerate(self.neurons):
            if not isinstance(ref, NeuronRef) or ref.component not in COMPONENTS:
                raise DirectionError(f"{where}: neurons[{i}] {ref!r} is not a neuron of {', '.join(COMPONENTS)}")
            for label, value in (("layer", ref.layer), ("index", ref.index)):
                if not 0 <= _strict_int(value, f"{where}: neurons[{i}] {label}") <= MAX_INDEX:
                    raise DirectionError(f"{where}: neurons[{i}] {label} {value!r} out of range; valid: 0..{MAX_INDEX}")
            if ref in seen:
                raise DirectionError(
                    f"{where}: neuron {ref} listed twice (neurons[{seen[ref]}] and neurons[{i}]); "
                    "each neuron may appear once (a duplicate would apply its edit twice)"
                )
            seen[ref] = i

    def _check_signs(self, where: str) -> None:
        if self.signs and len(self.signs) != len(self.neurons):
            raise DirectionError(f"{where}: {len(self.signs)} signs for {len(self.neurons)} neurons")
        for i, s in enumerate(self.signs):
            value = _strict_number(s, f"{where}: sign {i}")
            if not -1.0 <= value <= 1.0:
                raise DirectionError(f"{where}: sign {i} is {s!r}; valid: -1..1 (usually +1 or -1)")

    def _check_shapes(self, where: str) -> None:
        shapes: dict[str, tuple[int, int]] = {}
        for entry in self.model_shapes:
            if len(entry) != 3 or entry[0] not in COMPONENTS:
                raise DirectionError(f"{where}: model_shapes entry {entry!r} is not (component, layers, width)")
            comp, n_layers, width = entry
            n = _strict_int(n_layers, f"{where}: model_shapes {comp} layers")
            w = _strict_int(width, f"{where}: model_shapes {comp} width")
            if not (1 <= n <= MAX_INDEX and 1 <= w <= MAX_INDEX):
                raise DirectionError(f"{where}: model_shapes {comp} {n_layers} x {width} must be positive")
            shapes[comp] = (n, w)
        for i, ref in enumerate(self.neurons):
            if ref.component in shapes:
                n, w = shapes[ref.component]
                if ref.layer >= n or ref.index >= w:
                    raise DirectionError(
                        f"{where}: neurons[{i}] {ref} is outside its recorded model shape "
                        f"{ref.component} {n} layers x {w}"
                    )


# ----------------------------------------------------------------------------- YAML files


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _mapping_no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in out
        except TypeError:  # unhashable key (a list as a key)
            raise yaml.constructor.ConstructorError(None, None, f"unhashable key {key!r}", key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)
# YAML 1.1 reads `1e300` and `1.0e30` (no exponent sign) as strings; read them as the numbers
# they look like (YAML 1.2), so that range checks see them instead of a confusing "not a number".
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str, where: str) -> Any:
    """YAML text -> data; DirectionError (with line) for invalid YAML or duplicate keys."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise DirectionError(f"{where}: not valid YAML: {exc}") from None
    except RecursionError:
        raise DirectionError(f"{where}: not valid YAML: nested too deeply") from None


def _read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise DirectionError(f"{what} {str(path)!r} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DirectionError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DirectionError(f"{path}: cannot read: {exc.strerror or exc}") from None


def direction_to_dict(direction: Direction) -> dict:
    """Plain dict for YAML/JSON (the inverse of `direction_from_dict`)."""
    neurons = []
    for i, ref in enumerate(direction.neurons):
        entry = {"component": ref.component, "layer": int(ref.layer), "index": int(ref.index)}
        if direction.signs:
            entry["sign"] = _plain_sign(direction.signs[i])
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
        out["model_shapes"] = {c: [int(n), int(w)] for c, n, w in direction.model_shapes}
    out["neurons"] = neurons
    return out


def _plain_sign(sign: float) -> int | float:
    """-1.0 -> -1 so files read `sign: -1`."""
    return int(sign) if float(sign).is_integer() else float(sign)


_NEURON_KEYS = {"component", "layer", "index", "sign"}
_DIRECTION_KEYS = {"name", "alpha", "mode", "model_id", "description", "provenance", "model_shapes", "neurons", "signs"}


def _neuron_from_entry(entry: object, where: str) -> tuple[NeuronRef, float | None]:
    """One `neurons` entry: a mapping, or a list [component, layer, index(, sign)]."""
    if isinstance(entry, Mapping):
        unknown = set(entry) - _NEURON_KEYS
        if unknown or "layer" not in entry or "index" not in entry:
            raise DirectionError(f"{where}: bad neuron entry {entry!r}: needs layer and index "
                                 f"(optional component, sign){f'; unknown keys {sorted(map(str, unknown))}' if unknown else ''}")
        comp, layer, index, sign = entry.get("component", "backbone"), entry["layer"], entry["index"], entry.get("sign")
    elif isinstance(entry, (list, tuple)) and len(entry) in (3, 4):
        comp, layer, index = entry[:3]
        sign = entry[3] if len(entry) == 4 else None
    else:
        raise DirectionError(f"{where}: neuron entry {entry!r} is neither a mapping nor [component, layer, index]")
    if not isinstance(comp, str) or comp not in COMPONENTS:
        raise DirectionError(f"{where}: unknown component {comp!r}; valid: {', '.join(COMPONENTS)}")
    layer_i, index_i = _strict_int(layer, f"{where}: layer"), _strict_int(index, f"{where}: index")
    if not (0 <= layer_i <= MAX_INDEX and 0 <= index_i <= MAX_INDEX):
        raise DirectionError(f"{where}: layer {layer!r} / index {index!r} out of range; valid: 0..{MAX_INDEX}")
    return NeuronRef(comp, layer_i, index_i), None if sign is None else _strict_number(sign, f"{where}: sign")


def _text_field(data: Mapping, key: str, where: str, default: str = "") -> str:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise DirectionError(f"{where}: {key} {value!r} is not a string")
    return value


def _shapes_from(data: object, where: str) -> tuple[tuple[str, int, int], ...]:
    if data is None:
        return ()
    if not isinstance(data, Mapping):
        raise DirectionError(f"{where}: model_shapes must map component -> [layers, width], got {data!r}")
    shapes = []
    for comp, value in data.items():
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise DirectionError(f"{where}: model_shapes {comp!r} must be [layers, width], got {value!r}")
        n = _strict_int(value[0], f"{where}: model_shapes {comp} layers")
        w = _strict_int(value[1], f"{where}: model_shapes {comp} width")
        shapes.append((comp, n, w))
    return tuple(shapes)


def direction_from_dict(data: Mapping, where: str = "direction") -> Direction:
    """Build and check a Direction from the YAML mapping; errors name `where` and the field."""
    if not isinstance(data, Mapping):
        raise DirectionError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - _DIRECTION_KEYS
    if unknown:
        raise DirectionError(f"{where}: unknown keys {sorted(map(str, unknown))}; valid: {', '.join(sorted(_DIRECTION_KEYS))}")
    if "name" not in data:
        raise DirectionError(f"{where}: no name")
    try:
        name = check_name(data["name"])
    except DirectionError as exc:
        raise DirectionError(f"{where}: {exc}") from None
    entries = data.get("neurons")
    if entries is not None and not isinstance(entries, (list, tuple)):
        raise DirectionError(f"{where}: neurons must be a list, got {entries!r}")
    parsed = [_neuron_from_entry(e, f"{where}: neurons[{i}]") for i, e in enumerate(entries or ())]
    signs: tuple[float, ...] = ()
    if any(s is not None for _, s in parsed):
        signs = tuple(1.0 if s is None else s for _, s in parsed)
    elif data.get("signs") is not None:
        if not isinstance(data["signs"], (list, tuple)):
            raise DirectionError(f"{where}: signs must be a list, got {data['signs']!r}")
        signs = tuple(_strict_number(s, f"{where}: signs[{i}]") for i, s in enumerate(data["signs"]))
    direction = Direction(
        name=name,
        neurons=tuple(r for r, _ in parsed),
        alpha=check_alpha(data.get("alpha", 10.0), f"{where}: alpha"),
        mode=check_mode(data.get("mode", "override"), where),
        signs=signs,
        provenance=_text_field(data, "provenance", where),
        model_id=_text_field(data, "model_id", where),
        description=_text_field(data, "description", where),
        model_shapes=_shapes_from(data.get("model_shapes"), where),
    )
    try:
        direction.check()
    except DirectionError as exc:
        raise DirectionError(f"{where}: {exc}") from None
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
    data = parse_yaml(_read_text(path, "direction file"), str(path))
    return direction_from_dict(data, where=str(path))


# ----------------------------------------------------------------------------- library


class DirectionLibrary:
    """The direction files directly inside some directories, by name.

    Not recursive: one directory holds one model's directions (config/directions/<model>/), so
    a library never mixes directions of different models. Later directories win on a name clash
    (logged). Files are read once, here. A file that cannot be read (corrupt YAML, `alpha: .nan`,
    not UTF-8, ...) is skipped with a warning and kept in `broken` with the reason: one bad file
    must not take the other directions (or the node that loads them) down.
    """

    def __init__(self, dirs: Iterable[str | os.PathLike]) -> None:
        self._paths: dict[str, Path] = {}
        self._directions: dict[str, Direction] = {}
        self.broken: dict[Path, str] = {}
        for d in dirs:
            d = Path(d)
            if not d.is_dir():
                raise ConfigError(f"direction directory {str(d)!r} does not exist")
            for p in sorted(d.iterdir()):
                if p.suffix in DIRECTION_SUFFIXES and not p.name.startswith(".") and p.is_file():
                    self._add(p)

    def _add(self, path: Path) -> None:
        try:
            direction = load_direction(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, never fatal
            reason = str(exc) if isinstance(exc, DirectionError) else f"{path}: {type(exc).__name__}: {exc}"
            log.warning("skipping direction file %s: %s", path, reason)
            self.broken[path] = reason
            return
        name = direction.name
        if name in self._paths:
            log.warning("direction %r in %s replaces the one in %s", name, path, self._paths[name])
        self._paths[name] = path
        self._directions[name] = direction

    def names(self) -> list[str]:
        return sorted(self._paths)

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def broken_reason(self, name: str) -> str | None:
        """Why the file that would hold direction `name` (`<name>.yaml`) was skipped, if it was."""
        reasons = [why for p, why in self.broken.items() if p.stem == name]
        return reasons[0] if reasons else None

    def path(self, name: str) -> Path:
        if name not in self._paths:
            broken = self.broken_reason(name)
            if broken:
                raise DirectionError(f"direction {name!r} is unavailable, its file is broken: {broken}")
            raise UnknownChoiceError("direction", name, self._paths)
        return self._paths[name]

    def get(self, name: str) -> Direction:
        self.path(name)  # the error for unknown/broken names
        return self._directions[name]

    def describe(self, name: str) -> str:
        """One paragraph for `list_concepts` / the CLI: size, layers, mode, alpha, provenance."""
        return describe_direction(self.get(name))


def describe_direction(d: Direction) -> str:
    """One line: size, layers, mode, alpha, description, provenance."""
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


@dataclass(frozen=True)
class FlatCluster:
    """One cluster of a flat-index dict: its flat ids in order, and per-id tokens when given."""

    name: str
    indices: tuple[int, ...]
    tokens: tuple[tuple[str, ...], ...] = ()


def _flat_id(value: object, name: str, where: str, width: int, n_layers: int | None, key: bool) -> int:
    """One flat id, range-checked: an int, or as a mapping key a decimal string (JSON keys are)."""
    if key and isinstance(value, str) and re.fullmatch(r"[0-9]{1,20}", value):
        value = int(value)
    try:
        value = _strict_int(value, where)
    except DirectionError:
        raise DirectionError(f"{where}: {value!r} is not an integer flat index") from None
    layer = value // width if value >= 0 else -1
    if value < 0 or layer > MAX_INDEX or (n_layers is not None and layer >= n_layers):
        bound = f"{n_layers} layers x {width}" if n_layers is not None else f"width {width}, layers 0..{MAX_INDEX}"
        raise DirectionError(f"{name}: flat index {value} out of range for {bound} ({where})")
    return value


def _tokens(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or any(isinstance(t, (list, tuple, Mapping)) for t in value):
        raise DirectionError(f"{where}: tokens must be a list of strings, got {value!r}")
    return tuple(str(t) for t in value)


def parse_flat_clusters(data: object, width: int, n_layers: int | None = None, source: str = "") -> list[FlatCluster]:
    """Validate a flat-index dict in either of the paper's forms.

    `{name: [flat, ...]}` or `{name: {flat: [token, ...], ...}}` (the research code's per-index
    top tokens). Each id must be a true integer (3.7, true, null, "abc", 1e30, .inf are errors
    naming the cluster and the position), in range, and listed once.
    """
    src = f" in {source}" if source else ""
    if not isinstance(data, Mapping):
        raise DirectionError(f"flat-index dict{src}: expected a mapping of cluster name -> flat indices, got {type(data).__name__}")
    if not data:
        raise DirectionError(f"no clusters in flat-index dict{src}")
    clusters = []
    for name, ids in data.items():
        try:
            name = check_name(name, "cluster name")
        except DirectionError as exc:
            raise DirectionError(f"{exc}{src}") from None
        if isinstance(ids, Mapping):
            items = [(k, _tokens(v, f"cluster {name!r}, index {k!r}{src}")) for k, v in ids.items()]
        elif isinstance(ids, (list, tuple)):
            items = [(v, None) for v in ids]
        else:
            raise DirectionError(f"cluster {name!r}{src}: expected a list of flat indices or a mapping "
                                 f"flat index -> tokens, got {ids!r}")
        if not items:
            raise DirectionError(f"cluster {name!r}{src} has no indices")
        flats: dict[int, int] = {}
        for pos, (value, _) in enumerate(items):
            flat = _flat_id(value, name, f"cluster {name!r}, position {pos}{src}", width, n_layers,
                            key=isinstance(ids, Mapping))
            if flat in flats:
                raise DirectionError(f"{name}: flat index {flat} listed twice (cluster {name!r}, positions "
                                     f"{flats[flat]} and {pos}{src}); each neuron may appear once")
            flats[flat] = pos
        tokens = tuple(t for _, t in items) if isinstance(ids, Mapping) else ()
        clusters.append(FlatCluster(name, tuple(flats), tokens))
    return clusters


def import_flat_dict(
    data: Mapping[str, Sequence[int]],
    width: int,
    n_layers: int | None = None,
    component: str = "backbone",
    alpha: float = 10.0,
    model_id: str = "",
    source: str = "",
    sidecar: Mapping | None = None,
) -> list[Direction]:
    """Directions from the paper's `{cluster name: [flat index, ...]}` dictionaries.

    `width` is the model's FFN width (11008 for OpenVLA's Llama-2-7B, 16384 for PaliGemma's
    Gemma-2B); `n_layers` bounds the layer when given. `sidecar` (see `export_sidecar`) restores
    what the flat format cannot hold (signs, alpha, mode, ...) per cluster. Raises DirectionError
    on any bad id, naming the cluster and the position.
    """
    if component not in COMPONENTS:
        raise UnknownChoiceError("component", component, COMPONENTS)
    width = _strict_int(width, "layer width")
    if width <= 0:
        raise DirectionError(f"layer width must be positive, got {width}")
    if n_layers is not None and _strict_int(n_layers, "number of layers") <= 0:
        raise DirectionError(f"number of layers must be positive, got {n_layers}")
    check_alpha(alpha)
    extra = _sidecar_entries(sidecar, width, component, source) if sidecar is not None else {}
    clusters = parse_flat_clusters(data, width, n_layers, source)
    unknown = sorted(set(extra) - {c.name for c in clusters})
    if unknown:
        raise DirectionError(f"sidecar of {source or 'the flat file'} describes clusters not in it: {', '.join(unknown)}")
    return [_cluster_direction(c, width, n_layers, component, alpha, model_id, source, extra.get(c.name, {}))
            for c in clusters]


def _cluster_direction(cluster: FlatCluster, width: int, n_layers: int | None, component: str, alpha: float,
                       model_id: str, source: str, extra: Mapping) -> Direction:
    """One cluster as a Direction, through the same strict checks as a YAML file."""
    provenance = f"imported from paper flat-index dict {source}".strip()
    if cluster.tokens:
        words = list(dict.fromkeys(t for toks in cluster.tokens for t in toks[:3]))[:12]
        provenance += f"; top tokens {', '.join(words)}"
    data: dict[str, Any] = {
        "name": cluster.name, "alpha": alpha, "mode": "override", "model_id": model_id,
        "provenance": provenance,
        "neurons": [{"component": component, "layer": f // width, "index": f % width} for f in cluster.indices],
    }
    if n_layers is not None:
        data["model_shapes"] = {component: [n_layers, width]}
        recorded = extra.get("model_shapes")
        if isinstance(recorded, Mapping) and recorded.get(component, [n_layers, width]) != [n_layers, width]:
            raise DirectionError(f"cluster {cluster.name!r}: --layers {n_layers} (width {width}) does not match the "
                                 f"sidecar's recorded shape {component} {recorded[component]}")
    data.update(extra)
    where = f"cluster {cluster.name!r}" + (f" of {source}" if source else "")
    return direction_from_dict(data, where=where)


def _check_unique_names(directions: Sequence[Direction]) -> None:
    names = [d.name for d in directions]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DirectionError(f"direction names given more than once: {', '.join(dupes)} (a flat-index "
                             "dict holds one cluster per name)")


def _check_export_width(d: Direction, width: int) -> str:
    """The one component of `d`, after checking `width` against its recorded model shapes."""
    comps = {r.component for r in d.neurons}
    if len(comps) > 1:
        raise DirectionError(f"{d.name}: flat indices cannot mix components {sorted(comps)}")
    comp = comps.pop()
    for c, n, w in d.model_shapes:
        if c == comp and w != width:
            raise DirectionError(f"{d.name}: width {width} does not match its recorded model shape "
                                 f"{c} {n} layers x {w}; valid: --width {w}")
    return comp


def export_flat_dict(directions: Iterable[Direction], width: int) -> dict[str, list[int]]:
    """The inverse of `import_flat_dict` (one component per direction, as the paper's files)."""
    dirs = list(directions)
    _check_unique_names(dirs)
    out: dict[str, list[int]] = {}
    for d in dirs:
        d.check()
        _check_export_width(d, width)
        out[d.name] = [flat_index(r, width) for r in d.neurons]
    return out


def export_sidecar(directions: Iterable[Direction], width: int) -> dict:
    """What the flat format cannot hold, per direction: component, alpha, mode, signs, shapes, text.

    `import_flat_dict(..., sidecar=...)` reads it back, so export -> import keeps a direction
    exactly (a re-imported direction that lost its -1 signs steers something else entirely).
    """
    entries = {}
    for d in directions:
        comp = _check_export_width(d, width)
        entry: dict[str, Any] = {"component": comp, "alpha": float(d.alpha), "mode": d.mode}
        if d.signs:
            entry["signs"] = [_plain_sign(s) for s in d.signs]
        for key in ("model_id", "description", "provenance"):
            if getattr(d, key):
                entry[key] = getattr(d, key)
        if d.model_shapes:
            entry["model_shapes"] = {c: [int(n), int(w)] for c, n, w in d.model_shapes}
        entries[d.name] = entry
    return {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "width": int(width), "directions": entries}


def lossy_fields(d: Direction, default_alpha: float = 10.0) -> list[str]:
    """What of `d` a bare flat-index file loses (empty when the flat file alone imports it back)."""
    lost = []
    if any(s != 1.0 for s in d.signs):
        lost.append(f"{sum(1 for s in d.signs if s != 1.0)} non-+1 signs")
    if d.alpha != default_alpha:
        lost.append(f"alpha {d.alpha:g}")
    if d.mode != "override":
        lost.append(f"mode {d.mode}")
    return lost


_SIDECAR_ENTRY_KEYS = {"component", "alpha", "mode", "signs", "model_id", "description", "provenance", "model_shapes"}


def _sidecar_entries(sidecar: object, width: int, component: str, source: str) -> dict[str, dict]:
    """Validate a sidecar against the import's width/component; per-cluster direction fields."""
    where = f"sidecar of {source}" if source else "sidecar"
    if not isinstance(sidecar, Mapping) or sidecar.get("format") != SIDECAR_FORMAT:
        raise DirectionError(f"{where}: not a {SIDECAR_FORMAT!r} file")
    if sidecar.get("version") != SIDECAR_VERSION:
        raise DirectionError(f"{where}: version {sidecar.get('version')!r} not supported; valid: {SIDECAR_VERSION}")
    if sidecar.get("width") != width:
        raise DirectionError(f"{where}: written for width {sidecar.get('width')!r}, importing with width {width}")
    entries = sidecar.get("directions")
    if not isinstance(entries, Mapping):
        raise DirectionError(f"{where}: 'directions' must be a mapping, got {entries!r}")
    out = {}
    for name, entry in entries.items():
        if not isinstance(entry, Mapping) or set(entry) - _SIDECAR_ENTRY_KEYS:
            raise DirectionError(f"{where}: entry {name!r} must be a mapping with keys from {sorted(_SIDECAR_ENTRY_KEYS)}")
        entry = dict(entry)
        comp = entry.pop("component", component)
        if comp != component:
            raise DirectionError(f"{where}: cluster {name!r} is for component {comp!r}, importing as "
                                 f"{component!r}; pass --component {comp}")
        out[str(name)] = entry
    return out


def sidecar_path(flat_path: str | os.PathLike) -> Path:
    """Where the sidecar of a flat-index file lives: `up.json` -> `up.meta.json`."""
    return Path(flat_path).with_suffix(".meta.json")


def read_json_or_yaml(path: str | os.PathLike, what: str) -> Any:
    """JSON (by suffix) or YAML data; DirectionError with the position for invalid text."""
    path = Path(path)
    text = _read_text(path, what)
    if path.suffix != ".json":
        return parse_yaml(text, str(path))

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        keys = [k for k, _ in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise DirectionError(f"{path}: duplicate keys {dupes}")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise DirectionError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise DirectionError(f"{path}: not valid JSON: nested too deeply") from None


def read_flat_dict(path: str | os.PathLike) -> Mapping:
    """A flat-index dict from JSON or YAML (validated by `import_flat_dict`/`parse_flat_clusters`)."""
    data = read_json_or_yaml(path, "flat-index file")
    if not isinstance(data, Mapping):
        raise DirectionError(f"{path}: expected a mapping of name -> list of flat indices, got {type(data).__name__}")
    return data
