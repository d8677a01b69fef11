"""Find concept neurons in a finished projection and turn them into steering directions.

Two methods, both reading only the projection directory (no model needed):
  keyword   count, per neuron, how many of its top-k (and bottom-k) tokens are word forms of the
            concept ("fast" -> fast, faster, quick, quickly, speed, ...), after removing the
            SentencePiece `▁` / BPE `Ġ` space markers and case;
  semantic  the paper's clustering: a neuron's semantic embedding is the softmax-weighted mean of
            its top-5 token embeddings; the k neurons nearest (cosine) to the concept word's
            embedding form the cluster (k = 10 / 20 / 40 in the paper).
A neuron can promote a concept through its *bottom* tokens (the value vector projects onto the
words with a negative score, e.g. SmolLM2 layer 25 #1187 and "fast"): both sides are scored and
the winning side sets the neuron's sign in the direction, so steering drives it the right way.

Layer pools: early = first half of the layers, late = second half, full = all layers.
Random controls: the same number of neurons drawn, seeded, from the same layers (one per concept
neuron, from that neuron's layer, never a concept neuron), with the same signs.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass

import torch

from ..errors import ConfigError, UnknownChoiceError
from ..steering.directions import Direction
from ..types import NeuronRef
from .projection import Projection

log = logging.getLogger(__name__)

POOLS: tuple[str, ...] = ("full", "early", "late")
METHODS: tuple[str, ...] = ("keyword", "semantic")
SPACE_MARKERS = "\u2581\u0120 "  # SentencePiece ▁, byte-level BPE Ġ, a plain space

#: Word forms per control concept (matched against normalised tokens, whole token only).
CONCEPT_FORMS: dict[str, tuple[str, ...]] = {
    "fast": ("fast", "faster", "fastest", "quick", "quickly", "quicker", "quickest", "speed", "speeds",
             "speedy", "rapid", "rapidly", "swift", "swiftly", "hurry", "hurried"),
    "slow": ("slow", "slowly", "slower", "slowest", "slowing", "slowed", "gradual", "gradually",
             "sluggish", "leisurely"),
    "up": ("up", "upward", "upwards", "raise", "raised", "raising", "rise", "rising", "lift",
           "lifted", "lifting", "high", "higher", "highest", "above", "ascend", "top", "upper"),
    "down": ("down", "downward", "downwards", "lower", "lowered", "lowering", "low", "lowest",
             "below", "descend", "drop", "dropped", "fall", "falling", "beneath", "bottom"),
    "careful": ("careful", "carefully", "gentle", "gently", "cautious", "cautiously", "delicate",
                "delicately", "steady", "steadily"),
}
#: Concepts whose forms count against each other (a neuron listing both is not specific).
OPPOSITES: dict[str, str] = {"fast": "slow", "slow": "fast", "up": "down", "down": "up", "high": "low", "low": "high", "quick": "slow"}
CONCEPT_FORMS["high"] = CONCEPT_FORMS["up"]
CONCEPT_FORMS["low"] = CONCEPT_FORMS["down"]
CONCEPT_FORMS["quick"] = CONCEPT_FORMS["fast"]


def normalize_token(text: str) -> str:
    """'Ġfast' / '▁Fast' / ' FAST' -> 'fast' (space markers and case removed)."""
    return text.strip().lstrip(SPACE_MARKERS).strip().lower()


def word_forms(concept: str) -> tuple[str, ...]:
    """The concept's word forms: the table above, or simple inflections of an unknown word."""
    word = normalize_token(concept)
    if not word:
        raise ConfigError("empty concept word")
    if word in CONCEPT_FORMS:
        return CONCEPT_FORMS[word]
    return tuple(dict.fromkeys([word] + [word + s for s in ("s", "es", "ed", "ing", "er", "est", "ly")]))


def pool_layers(n_layers: int, pool: str) -> list[int]:
    """Layer numbers of a depth pool (early/late split at n_layers // 2)."""
    if pool not in POOLS:
        raise UnknownChoiceError("layer pool", pool, POOLS)
    half = n_layers // 2
    return {"full": list(range(n_layers)), "early": list(range(half)), "late": list(range(half, n_layers))}[pool]


@dataclass(frozen=True)
class NeuronHit:
    """One candidate concept neuron and why it was picked."""

    ref: NeuronRef
    score: float  # keyword: hits (+ tie-break); semantic: cosine similarity
    sign: float  # +1 the concept is in its top tokens, -1 in its bottom tokens
    tokens: tuple[str, ...]  # the side's tokens that decided it, best first


def _pooled_layers(proj: Projection, component: str, pool: str) -> list[int]:
    n_layers = int(proj.manifest["components"][component]["n_layers"])
    wanted = set(pool_layers(n_layers, pool))
    layers = [layer for layer in proj.layers(component) if layer in wanted]
    if not layers:
        raise ConfigError(f"projection {proj.id} has no {component} layers in pool {pool!r} (projected: {proj.layers(component)})")
    return layers


def _vocab_mask(proj: Projection, forms: tuple[str, ...]) -> torch.Tensor:
    forms_set = set(forms)
    return torch.tensor([normalize_token(t) in forms_set for t in proj.vocab], dtype=torch.bool)  # (vocab,)


def keyword_search(proj: Projection, concept: str, pool: str = "full", component: str = "backbone", min_hits: int = 1) -> list[NeuronHit]:
    """Neurons whose top-k or bottom-k tokens contain word forms of `concept`, best first.

    Ranked by the number of matching tokens minus the number of tokens of the opposite concept
    (fast/slow, up/down: a neuron promoting both is not specific), ties broken by the best
    matching |score|.
    """
    forms = word_forms(concept)
    mask = _vocab_mask(proj, forms)
    word = normalize_token(concept)
    opposite = _vocab_mask(proj, word_forms(OPPOSITES[word])) if word in OPPOSITES else torch.zeros_like(mask)
    opposite &= ~mask
    if not mask.any():
        raise ConfigError(f"no token of this vocabulary is a form of {concept!r} (forms: {', '.join(forms)})")
    hits: list[NeuronHit] = []
    for layer in _pooled_layers(proj, component, pool):
        for side, sign in (("top", 1.0), ("bottom", -1.0)):
            ids = proj.get(component, layer, f"{side}_ids").long()  # (n, k)
            scores = proj.get(component, layer, f"{side}_scores")  # (n, k)
            match = mask[ids]  # (n, k)
            counts = match.sum(1) - opposite[ids].sum(1)  # (n,)
            best = (scores.abs() * match).amax(1)  # (n,)
            for n in torch.nonzero(counts >= min_hits).flatten().tolist():
                score = float(counts[n]) + float(best[n]) / (1.0 + float(best[n]))  # tie-break < 1
                toks = tuple(proj.vocab[i] for i in ids[n].tolist())
                hits.append(NeuronHit(NeuronRef(component, layer, n), score, sign, toks))
    return _best_per_neuron(hits)


def _best_per_neuron(hits: list[NeuronHit]) -> list[NeuronHit]:
    """Keep each neuron's better side, sort best first (stable on ties: layer, index)."""
    best: dict[NeuronRef, NeuronHit] = {}
    for h in hits:
        if h.ref not in best or h.score > best[h.ref].score:
            best[h.ref] = h
    return sorted(best.values(), key=lambda h: (-h.score, h.ref))


def concept_token(proj: Projection, concept: str) -> int:
    """The id of the single token spelling `concept` (the space-prefixed form preferred).

    Raises ConfigError listing close single-token alternatives when the word is split.
    """
    word = concept.strip()
    exact = [i for i, t in enumerate(proj.vocab) if t.strip() == word and normalize_token(t) == word.lower()]
    spaced = [i for i in exact if proj.vocab[i][:1] in SPACE_MARKERS]
    if spaced or exact:
        return (spaced or exact)[0]
    lowered = [i for i, t in enumerate(proj.vocab) if normalize_token(t) == word.lower()]
    if lowered:
        return lowered[0]
    words = sorted({normalize_token(t) for t in proj.vocab if normalize_token(t).isalpha()})
    close = difflib.get_close_matches(word.lower(), words, n=5, cutoff=0.6)
    forms = [f for f in word_forms(word) if f in set(words)]
    suggestions = list(dict.fromkeys(forms + close))[:8]
    raise ConfigError(
        f"concept word {concept!r} is not a single token of this vocabulary"
        + (f"; single-token alternatives: {', '.join(suggestions)}" if suggestions else "")
    )


def semantic_cluster(proj: Projection, concept: str, size: int, pool: str = "full", component: str = "backbone", top: int = 5) -> list[NeuronHit]:
    """The `size` neurons whose semantic embedding is nearest (cosine) to the concept's token.

    Semantic embedding of a neuron side = sum_j softmax(scores)_j * E[token_j] over its top-`top`
    tokens (bottom side: softmax of the negated scores over the bottom tokens).
    """
    tokens = proj.token_matrix()  # (vocab, d)
    target = tokens[concept_token(proj, concept)]  # (d,)
    target = target / target.norm().clamp_min(1e-12)
    hits: list[NeuronHit] = []
    for layer in _pooled_layers(proj, component, pool):
        sims_by_side = []
        for side, sign in (("top", 1.0), ("bottom", -1.0)):
            ids = proj.get(component, layer, f"{side}_ids")[:, :top].long()  # (n, top)
            scores = proj.get(component, layer, f"{side}_scores")[:, :top]  # (n, top)
            weights = torch.softmax(scores * sign, dim=1)  # (n, top)
            emb = torch.einsum("nt,ntd->nd", weights, tokens[ids])  # (n, d)
            sims = emb @ target / emb.norm(dim=1).clamp_min(1e-12)  # (n,)
            sims_by_side.append((sims, sign, ids))
        (s_top, _, ids_top), (s_bot, _, ids_bot) = sims_by_side
        use_top = s_top >= s_bot  # (n,)
        sims = torch.where(use_top, s_top, s_bot)
        for n in sims.topk(min(size, sims.numel())).indices.tolist():
            ids = ids_top[n] if use_top[n] else ids_bot[n]
            toks = tuple(proj.vocab[i] for i in ids.tolist())
            hits.append(NeuronHit(NeuronRef(component, layer, n), float(sims[n]), 1.0 if use_top[n] else -1.0, toks))
    return sorted(hits, key=lambda h: (-h.score, h.ref))[:size]


def find_concept(
    proj: Projection, concept: str, size: int = 10, pool: str = "full", method: str = "keyword",
    component: str = "backbone", min_hits: int = 1,
) -> list[NeuronHit]:
    """The `size` best neurons for `concept` by `method`; ConfigError if none is found.

    min_hits (keyword only): matching tokens a neuron needs (net of the opposite concept's).
    """
    if method not in METHODS:
        raise UnknownChoiceError("discovery method", method, METHODS)
    if size < 1:
        raise ConfigError(f"cluster size must be >= 1, got {size}")
    if component not in proj.components:
        raise UnknownChoiceError("component", component, proj.components)
    hits = keyword_search(proj, concept, pool, component, min_hits) if method == "keyword" else semantic_cluster(proj, concept, size, pool, component)
    if not hits:
        raise ConfigError(f"no neuron in pool {pool!r} of projection {proj.id} matches {concept!r}")
    if len(hits) < size:
        log.warning("only %d neurons match %r (asked for %d)", len(hits), concept, size)
    return hits[:size]


def direction_from_hits(proj: Projection, name: str, hits: list[NeuronHit], how: str, alpha: float = 10.0, mode: str = "override") -> Direction:
    """A Direction carrying the hits' signs, the model's shapes and where it came from."""
    layers = sorted({h.ref.layer for h in hits})
    return Direction(
        name=name,
        neurons=tuple(h.ref for h in hits),
        signs=tuple(h.sign for h in hits),
        alpha=alpha,
        mode=mode,
        model_id=proj.model_id,
        model_shapes=proj.model_shapes(),
        provenance=f"{how}; projection {proj.id}",
        description=f"{len(hits)} neurons in layers {layers[0]}-{layers[-1]}"
        + (" (RANDOM-WEIGHT MODEL)" if proj.manifest.get("random_weights") else ""),
    )


def random_control(direction: Direction, widths: dict[tuple[str, int], int], seed: int = 0, name: str | None = None) -> Direction:
    """Same size, same layers (one random neuron per concept neuron, from its layer), same signs."""
    gen = torch.Generator().manual_seed(seed)
    taken = set(direction.neurons)
    picked: list[NeuronRef] = []
    for ref in direction.neurons:
        width = widths[(ref.component, ref.layer)]
        if width <= len([r for r in taken if (r.component, r.layer) == (ref.component, ref.layer)]):
            raise ConfigError(f"layer {ref.layer} has too few neurons for a disjoint random control")
        while True:
            cand = NeuronRef(ref.component, ref.layer, int(torch.randint(width, (1,), generator=gen)))
            if cand not in taken:
                break
        taken.add(cand)
        picked.append(cand)
    return Direction(
        name=name or f"{direction.name}_random{seed}",
        neurons=tuple(picked),
        signs=direction.signs,
        alpha=direction.alpha,
        mode=direction.mode,
        model_id=direction.model_id,
        model_shapes=direction.model_shapes,
        provenance=f"random control for {direction.name!r} (seed {seed}, same layers and signs)",
        description=f"matched random control of {direction.name}",
    )


def projection_widths(proj: Projection) -> dict[tuple[str, int], int]:
    return {
        (comp, layer): int(w)
        for comp, info in proj.manifest["components"].items()
        for layer, w in enumerate(info["widths"])
    }


def neuron_report(proj: Projection, ref: NeuronRef, k: int | None = None) -> str:
    """Human-readable top and bottom tokens (with scores) of one neuron."""
    lines = [f"{ref} (flat index {ref.layer * proj.width(ref.component, ref.layer) + ref.index}) in projection {proj.id} of {proj.model_id}"]
    if proj.manifest.get("random_weights"):
        lines[0] += "  [RANDOM WEIGHTS]"
    width = proj.width(ref.component, ref.layer)
    if ref.index >= width:
        raise ConfigError(f"neuron {ref.index} out of range: {ref.component} layer {ref.layer} has {width} neurons")
    for side in ("top", "bottom"):
        ids = proj.get(ref.component, ref.layer, f"{side}_ids")[ref.index][:k].tolist()
        scores = proj.get(ref.component, ref.layer, f"{side}_scores")[ref.index][:k].tolist()
        shown = ", ".join(f"{proj.vocab[i]!r} {s:+.2f}" for i, s in zip(ids, scores))
        lines.append(f"  {side:6s} {shown}")
    return "\n".join(lines)
