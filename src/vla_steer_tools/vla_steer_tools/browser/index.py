"""The neuron browser's in-memory index over a projection: token search, neuron pages, heat map,
concept clusters, direction files. Pure Python + torch; the HTTP server and the static export
only turn these answers into JSON.

Why an inverted index: a token search ("which neurons promote ' fast'?") must not scan 350k
neurons x k tokens per keystroke. On load, each side's (top / bottom) token ids of every neuron
are flattened and sorted by token id once (CSR layout: `offsets[t]:offsets[t+1]` = the postings
of token t); a query then costs O(its postings). Results are paginated.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ..errors import ConfigError, UnknownChoiceError
from ..interp.concepts import CONCEPT_FORMS, METHODS, POOLS, find_concept, normalize_token
from ..interp.layer_report import ACTION, LayerReport, LayerReportOptions, layer_report
from ..interp.projection import Projection
from ..interp.token_categories import TokenCategories, load_categories
from ..steering.directions import MODES, Direction, check_alpha, check_name, save_direction
from ..types import NeuronRef

log = logging.getLogger(__name__)

SIDES: tuple[str, ...] = ("top", "bottom")
MAX_PAGE = 200
#: Concepts offered as clusters on the start page (each also searchable by name).
DEFAULT_CLUSTERS: tuple[str, ...] = ("fast", "slow", "up", "down", "careful")


@dataclass(frozen=True)
class Telemetry:
    """A run's concept activations (per concept, as `ConceptActivations` carries them): time (J,),
    concept names, mean activation (J, C); plus which neurons each concept steered."""

    t_s: Sequence[float]
    names: Sequence[str]
    mean: Sequence[Sequence[float]]  # (J, C)
    members: dict[str, frozenset[NeuronRef]]
    source: str = ""

    @classmethod
    def from_bag(cls, bag: str | Path, direction_dirs: Sequence[str | Path]) -> "Telemetry":
        """Read `/vla/concept_activations` from a bag; concept membership from the direction files."""
        from ..analysis.trace import load_trace  # needs rosbags: only when telemetry is asked for
        from ..steering.directions import DirectionLibrary

        trace = load_trace(bag)
        if trace.act_mean.size == 0:
            raise ConfigError(f"{bag} has no /vla/concept_activations messages")
        lib = DirectionLibrary(direction_dirs)
        members = {n: frozenset(lib.get(n).neurons) for n in trace.act_names if n in lib}
        missing = [n for n in trace.act_names if n not in lib]
        if missing:
            log.warning("telemetry concepts %s have no direction file in %s: their neurons are unknown", missing, direction_dirs)
        return cls(trace.act_t.tolist(), list(trace.act_names), trace.act_mean.tolist(), members, str(bag))

    def for_neuron(self, ref: NeuronRef) -> list[dict]:
        """The activation series of each concept that contains `ref`."""
        out = []
        for c, name in enumerate(self.names):
            if ref in self.members.get(name, ()):
                out.append({"concept": name, "t_s": list(self.t_s), "mean": [row[c] for row in self.mean]})
        return out


class NeuronIndex:
    """Everything the browser shows, computed once on load from one projection directory.

    Its layer report judges both sides (`sides="both"`), unlike the `report layers` default: a
    neuron page should show "speed" for SmolLM2's 25/1187, whose speed words are its bottom
    tokens; the page's sign says which side carries the pattern."""

    def __init__(self, proj: Projection, categories: TokenCategories | None = None,
                 telemetry: Telemetry | None = None, report_options: LayerReportOptions = LayerReportOptions(sides="both")) -> None:
        self.proj = proj
        self.telemetry = telemetry
        self.categories = categories or load_categories()
        self.report: LayerReport = layer_report(proj, self.categories, report_options)
        self.pairs = [(c, layer) for c in proj.components for layer in proj.layers(c)]
        self.k = int(proj.manifest["options"]["top_k"])
        rows = [(c, layer, i) for c, layer in self.pairs for i in range(proj.get(c, layer, "top_ids").shape[0])]
        self.n_neurons = len(rows)
        self._comp = [c for c, _, _ in rows]  # small strings are interned: cheap
        self._layer = torch.tensor([layer for _, layer, _ in rows], dtype=torch.int32)
        self._neuron = torch.tensor([i for _, _, i in rows], dtype=torch.int32)
        self._row_of = {}
        start = 0
        for c, layer in self.pairs:
            self._row_of[(c, layer)] = start
            start += proj.get(c, layer, "top_ids").shape[0]
        self.ids = {s: torch.cat([proj.get(c, layer, f"{s}_ids") for c, layer in self.pairs]).long() for s in SIDES}  # (R, k)
        self.scores = {s: torch.cat([proj.get(c, layer, f"{s}_scores") for c, layer in self.pairs]).float() for s in SIDES}
        self._postings = {s: self._build_postings(self.ids[s]) for s in SIDES}
        self._norm_to_ids: dict[str, list[int]] = {}
        for i, text in enumerate(proj.vocab):
            self._norm_to_ids.setdefault(normalize_token(text), []).append(i)
        self._cluster_cache: dict[tuple, list[dict]] = {}

    # ------------------------------------------------------------------ building

    def _build_postings(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(order, offsets): flat positions sorted by token id, and CSR offsets (vocab + 1,)."""
        flat = ids.flatten()  # (R*k,)
        order = torch.argsort(flat, stable=True)  # positions grouped by token, rows ascending
        counts = torch.bincount(flat, minlength=len(self.proj.vocab))
        offsets = torch.zeros(len(self.proj.vocab) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(counts, 0)
        return order, offsets

    # ------------------------------------------------------------------ answers

    def meta(self) -> dict:
        m = self.proj.manifest
        return {
            "model_id": self.proj.model_id, "projection_id": self.proj.id, "random_weights": bool(m.get("random_weights")),
            "top_k": self.k, "n_neurons": self.n_neurons, "vocab_size": len(self.proj.vocab),
            "layers": [[c, layer] for c, layer in self.pairs], "components": self.proj.components,
            "model_shapes": {c: [n, w] for c, n, w in self.proj.model_shapes()},
            "categories": [ACTION, *self.report.category_names], "criteria": self.report.criteria,
            "clusters": list(DEFAULT_CLUSTERS), "telemetry": self.telemetry.source if self.telemetry else None,
            "modes": list(MODES), "methods": list(METHODS), "pools": list(POOLS),
        }

    def ref(self, component: str, layer: int, index: int) -> NeuronRef:
        """A checked NeuronRef of this projection (ConfigError otherwise)."""
        if (component, layer) not in self._row_of:
            raise ConfigError(f"no projected {component} layer {layer}; projected: {self.pairs[0]}..{self.pairs[-1]}")
        width = self.proj.get(component, layer, "top_ids").shape[0]
        if not 0 <= index < width:
            raise ConfigError(f"neuron {index} out of range: {component} layer {layer} has {width} neurons")
        return NeuronRef(component, layer, index)

    def matching_tokens(self, query: str) -> list[int]:
        """Token ids whose normalised text equals the normalised query (' Fast', 'Ġfast' -> 'fast')."""
        q = normalize_token(query)
        if not q:
            raise ConfigError("empty search")
        return self._norm_to_ids.get(q, [])

    def search(self, query: str, side: str = "top", page: int = 0, size: int = 50) -> dict:
        """Neurons with a token matching `query` on `side`, strongest first, one page of them.

        top: the neuron promotes the token (score descending); bottom: it promotes it through a
        negative activation (most negative score first), so a direction stores sign -1."""
        if side not in SIDES:
            raise UnknownChoiceError("side", side, SIDES)
        if page < 0 or not 1 <= size <= MAX_PAGE:
            raise ConfigError(f"bad page {page} / size {size} (size 1-{MAX_PAGE})")
        tokens = self.matching_tokens(query)
        hits = self.postings(tokens, side)
        total = len(hits)
        results = []
        for r, rank, score, matches in hits[page * size: (page + 1) * size]:
            results.append({
                **self._row_ref(r), "rank": rank, "score": score, "matches": matches,
                "token": self.proj.vocab[int(self.ids[side][r, rank])], "sign": 1 if side == "top" else -1,
                "tokens": [self.proj.vocab[i] for i in self.ids[side][r, :6].tolist()],
            })
        return {"query": query, "side": side, "tokens": [self.proj.vocab[t] for t in tokens], "total": total,
                "page": page, "size": size, "pages": max(1, math.ceil(total / size)), "results": results}

    def postings(self, tokens: Sequence[int], side: str) -> list[tuple[int, int, float, int]]:
        """(row, rank, score, matches) per neuron holding any of `tokens` on `side`, strongest first.

        One entry per neuron (its best-scoring match; `matches` = how many of the tokens it has),
        ordered by score descending (top) or ascending (bottom), ties by row."""
        order, offsets = self._postings[side]
        parts = [order[offsets[t]: offsets[t + 1]] for t in tokens]
        pos = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)  # flat positions (P,)
        if not pos.numel():
            return []
        rows, ranks = pos // self.k, pos % self.k
        scores = self.scores[side].flatten()[pos]
        ranked = torch.argsort(-scores if side == "top" else scores, stable=True).tolist()
        counts = torch.bincount(rows).tolist()
        seen: set[int] = set()
        out = []
        for j in ranked:
            r = int(rows[j])
            if r not in seen:
                seen.add(r)
                out.append((r, int(ranks[j]), float(scores[j]), counts[r]))
        return out

    def _row_ref(self, row: int) -> dict:
        return {"component": self._comp[row], "layer": int(self._layer[row]), "index": int(self._neuron[row])}

    def neuron(self, component: str, layer: int, index: int) -> dict:
        """A neuron page: top/bottom tokens with scores, layer, flat index, sign, categories, telemetry."""
        ref = self.ref(component, layer, index)
        row = self._row_of[(component, layer)] + index
        sides = {}
        for s in SIDES:
            sides[s] = [{"id": int(i), "text": self.proj.vocab[int(i)], "score": float(v)}
                        for i, v in zip(self.ids[s][row].tolist(), self.scores[s][row].tolist())]
        flags = self.report.flags[(component, layer)]
        hits = {name: int(flags[name][index]) for name in [ACTION, *self.report.category_names]}
        sign = self._suggested_sign(row)
        return {
            "component": component, "layer": layer, "index": index, "flat_index": layer * self.proj.width(component, layer) + index,
            "width": self.proj.width(component, layer), "n_layers": int(self.proj.manifest["components"][component]["n_layers"]),
            "top": sides["top"], "bottom": sides["bottom"], "sign": sign,
            "sign_reason": "its pattern is in the bottom tokens: a negative activation promotes them" if sign < 0
            else "its top tokens carry its pattern (or neither side does)",
            "categories": [n for n, v in hits.items() if v], "meaningful": bool(flags["meaningful"][index]),
            "telemetry": self.telemetry.for_neuron(ref) if self.telemetry else [],
        }

    def _suggested_sign(self, row: int) -> int:
        """+1 unless the bottom tokens hold more category / shared-word matches than the top ones."""
        masks = self._masks()
        def strength(side: str) -> int:
            ids = self.ids[side][row]
            return sum(int(m[ids].sum()) for m in masks.values())
        return -1 if strength("bottom") > strength("top") else 1

    def _masks(self) -> dict[str, torch.Tensor]:
        if not hasattr(self, "_mask_cache"):
            from ..interp.token_categories import action_mask

            self._mask_cache = {ACTION: action_mask(self.proj.vocab), **self.categories.masks(self.proj.vocab)}
        return self._mask_cache

    def heatmap(self) -> dict:
        """rows = action / categories / meaningful, columns = projected (component, layer)."""
        names = [ACTION, *self.report.category_names, "meaningful"]
        values = [[r.action, *(r.categories[c] for c in self.report.category_names), r.meaningful] for r in self.report.rows]
        return {"rows": names, "columns": [[r.component, r.layer] for r in self.report.rows],
                "values": [[values[j][i] for j in range(len(values))] for i in range(len(names))], "criteria": self.report.criteria}

    def layer_neurons(self, component: str, layer: int, criterion: str, page: int = 0, size: int = 50) -> dict:
        """The neurons of one layer meeting a heat-map criterion (a click on a heat-map cell)."""
        flags = self.report.flags.get((component, layer))
        if flags is None:
            raise ConfigError(f"no projected {component} layer {layer}")
        if criterion not in flags:
            raise UnknownChoiceError("criterion", criterion, [k for k in flags if ":" not in k])
        hits = torch.nonzero(flags[criterion]).flatten()
        start = self._row_of[(component, layer)]
        results = [{**self._row_ref(start + i), "sign": self._suggested_sign(start + i),
                    "tokens": [self.proj.vocab[t] for t in self.ids["top"][start + i, :6].tolist()]}
                   for i in hits[page * size: (page + 1) * size].tolist()]
        return {"component": component, "layer": layer, "criterion": criterion, "total": int(hits.numel()),
                "page": page, "size": size, "pages": max(1, math.ceil(hits.numel() / size)), "results": results}

    def cluster(self, concept: str, size: int = 20, method: str = "keyword", pool: str = "full") -> dict:
        """A concept cluster (concepts.find_concept) with each member's sign and top tokens."""
        if not 1 <= size <= MAX_PAGE:
            raise ConfigError(f"cluster size must be 1-{MAX_PAGE}, got {size}")
        key = (concept, size, method, pool)
        if key not in self._cluster_cache:
            comp = self.proj.components[0]
            hits = find_concept(self.proj, concept, size, pool, method, comp)
            self._cluster_cache[key] = [
                {"component": h.ref.component, "layer": h.ref.layer, "index": h.ref.index, "sign": int(h.sign),
                 "score": h.score, "tokens": list(h.tokens[:6])} for h in hits]
        return {"concept": concept, "method": method, "pool": pool, "size": size, "results": self._cluster_cache[key],
                "known_forms": list(CONCEPT_FORMS.get(normalize_token(concept), ()))}

    def direction(self, name: str, neurons: Sequence[tuple[str, int, int, float]], alpha: float = 10.0,
                  mode: str = "override") -> Direction:
        """A checked Direction for the selected (component, layer, index, sign) neurons."""
        check_name(name)
        if not neurons:
            raise ConfigError("select at least one neuron")
        refs = tuple(self.ref(c, int(layer), int(i)) for c, layer, i, _ in neurons)
        layers = sorted({r.layer for r in refs})
        d = Direction(
            name=name, neurons=refs, signs=tuple(float(s) for *_, s in neurons), alpha=check_alpha(alpha), mode=mode,
            model_id=self.proj.model_id, model_shapes=self.proj.model_shapes(),
            provenance=f"picked in the neuron browser; projection {self.proj.id}",
            description=f"{len(refs)} neurons in layers {layers[0]}-{layers[-1]}"
            + (" (RANDOM-WEIGHT MODEL)" if self.proj.manifest.get("random_weights") else ""),
        )
        d.check()
        return d

    def direction_yaml(self, *args, **kwargs) -> str:
        """The direction file's text, written by `save_direction` itself (so it loads back)."""
        d = self.direction(*args, **kwargs)
        with tempfile.TemporaryDirectory() as tmp:
            return save_direction(d, Path(tmp) / f"{d.name}.yaml").read_text(encoding="utf-8")


def parse_selection(text: str) -> list[tuple[str, int, int, float]]:
    """'backbone:25:1187:-1,backbone:3:4:1' -> [(component, layer, index, sign), ...]."""
    out = []
    for part in (p for p in text.split(",") if p.strip()):
        bits = part.strip().split(":")
        if len(bits) not in (3, 4):
            raise ConfigError(f"bad neuron {part!r} (expected component:layer:index[:sign])")
        try:
            out.append((bits[0], int(bits[1]), int(bits[2]), float(bits[3]) if len(bits) == 4 else 1.0))
        except ValueError as exc:
            raise ConfigError(f"bad neuron {part!r}: {exc}") from exc
    return out
