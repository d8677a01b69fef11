"""What changed between two projections of one architecture (base VLM vs VLA, two fine-tunes, a
merged LoRA): which tokens gained or lost top-k presence, which neurons moved, and where.

Three readings:

* **Token-count z-scores.** For every token t, `count_X(t)` = the number of neurons (over the
  layers both projections cover) that have t among their top-k tokens. With `d(t) = count_B(t) -
  count_A(t)`, `z(t) = (d(t) - mean(d)) / std(d)` over the whole vocabulary, as in the paper's
  PaliGemma-vs-Pi0 reading (+49 / -68 there, mostly action tokens).
* **Top-k turnover** per neuron: the share of its top-k token ids in A that are not in its top-k
  in B (0 = same tokens, 1 = none shared). This needs only the two projection directories.
* **Value-vector cosine** per neuron: cos(w_A, w_B) of the columns of `down_proj` (LoRA merged).
  A projection stores top-k token ids and scores, not the vectors (a 7B model's would be 2.9 GB
  more per projection), so the cosine needs the two models' weights (`weights=` / `--model-a`,
  `--model-b`); without them the diff ranks neurons by turnover alone and says so.

"Same architecture" = same components with the same layer counts and widths, the same vocabulary
size and model width, and the same top-k; anything else is an error naming the difference.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..errors import ConfigError
from ..models.base import ModelAdapter
from .projection import Projection, value_vectors

log = logging.getLogger(__name__)

#: A neuron counts as "moved" when cos(w_A, w_B) is below this (identical weights give 1.0).
MOVED_COSINE = 0.999


@dataclass(frozen=True)
class TokenChange:
    token_id: int
    text: str
    count_a: int
    count_b: int
    z: float


@dataclass(frozen=True)
class NeuronChange:
    component: str
    layer: int
    index: int
    turnover: float  # share of A's top-k ids missing from B's top-k
    cosine: float | None  # cos(w_A, w_B); None without weights
    top_a: tuple[str, ...]
    top_b: tuple[str, ...]


@dataclass(frozen=True)
class LayerChange:
    component: str
    layer: int
    n_neurons: int
    mean_turnover: float
    changed_share: float  # neurons whose top-k set changed at all
    mean_cosine: float | None
    moved_share: float | None  # neurons with cosine < MOVED_COSINE


@dataclass
class ProjectionDiff:
    """The diff of B against A (B - A: "gained" means more top-k presence in B)."""

    model_a: str
    model_b: str
    id_a: str
    id_b: str
    top_k: int
    compared: list[tuple[str, int]]
    with_weights: bool
    layers: list[LayerChange]
    neurons: list[NeuronChange]  # most changed first (cosine ascending, else turnover descending)
    differing_token_texts: int
    count_a: torch.Tensor = field(repr=False)  # (vocab,) int64
    count_b: torch.Tensor = field(repr=False)
    z: torch.Tensor = field(repr=False)  # (vocab,) float32
    vocab: list[str] = field(repr=False)

    def top_tokens(self, n: int = 20, gained: bool = True) -> list[TokenChange]:
        """The n tokens with the highest (gained) or lowest (lost) z-score, ties by token id."""
        order = torch.argsort(-self.z if gained else self.z, stable=True)[:n].tolist()
        return [TokenChange(i, self.vocab[i], int(self.count_a[i]), int(self.count_b[i]), float(self.z[i])) for i in order]

    def moved(self, threshold: float = MOVED_COSINE) -> list[NeuronChange]:
        """Neurons whose value vector moved (cosine below threshold); needs weights."""
        if not self.with_weights:
            raise ConfigError("value-vector cosines need the two models' weights (--model-a/--model-b)")
        return [n for n in self.neurons if n.cosine is not None and n.cosine < threshold]

    def to_json(self, n_tokens: int = 50) -> dict:
        return {
            "model_a": self.model_a, "model_b": self.model_b, "projection_a": self.id_a, "projection_b": self.id_b,
            "top_k": self.top_k, "compared_layers": [list(x) for x in self.compared], "with_weights": self.with_weights,
            "differing_token_texts": self.differing_token_texts,
            "z_score": "z = (d - mean d) / std d over the vocabulary, d = count_B - count_A (top-k presence)",
            "gained": [asdict(t) for t in self.top_tokens(n_tokens, True)],
            "lost": [asdict(t) for t in self.top_tokens(n_tokens, False)],
            "layers": [asdict(r) for r in self.layers],
            "neurons": [asdict(n) for n in self.neurons],
        }


def check_same_architecture(a: Projection, b: Projection) -> list[tuple[str, int]]:
    """The (component, layer) pairs both projections cover; ConfigError naming any mismatch."""
    problems = []
    if a.manifest["components"] != b.manifest["components"]:
        def shapes(p: Projection) -> str:
            return ", ".join(f"{c}: {i['n_layers']} layers x {sorted(set(i['widths']))}" for c, i in p.manifest["components"].items())
        problems.append(f"FFN shapes differ (A {shapes(a)}; B {shapes(b)})")
    for key, what in (("vocab_size", "vocabulary size"), ("d_model", "model width")):
        if a.manifest[key] != b.manifest[key]:
            problems.append(f"{what} differs (A {a.manifest[key]}, B {b.manifest[key]})")
    ka, kb = a.manifest["options"]["top_k"], b.manifest["options"]["top_k"]
    if ka != kb:
        problems.append(f"top-k differs (A {ka}, B {kb}): re-project one with --top-k {max(ka, kb)}")
    if problems:
        raise ConfigError(f"cannot diff {a.model_id} ({a.path}) and {b.model_id} ({b.path}): not the same architecture: "
                          + "; ".join(problems))
    common = [tuple(x) for x in a.manifest["layers"] if list(x) in b.manifest["layers"]]
    if not common:
        raise ConfigError(f"{a.path} and {b.path} share no projected layer (A: {a.manifest['layers']}, B: {b.manifest['layers']})")
    if len(common) < max(len(a.manifest["layers"]), len(b.manifest["layers"])):
        log.warning("comparing the %d layers both projections cover", len(common))
    return [(str(c), int(layer)) for c, layer in common]


def value_vector_cosines(adapter_a: ModelAdapter, adapter_b: ModelAdapter,
                         pairs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], torch.Tensor]:
    """(component, layer) -> cos(w_A, w_B) (n_neurons,), float32, from the two models' weights."""
    out = {}
    for comp, layer in tqdm(pairs, desc="value-vector cosines", unit="layer", disable=len(pairs) < 4):
        va = value_vectors(adapter_a, comp, layer, final_norm=False).float()  # (n, d)
        vb = value_vectors(adapter_b, comp, layer, final_norm=False).float()  # (n, d)
        if va.shape != vb.shape:
            raise ConfigError(f"{comp} layer {layer}: value vectors {tuple(va.shape)} (A) vs {tuple(vb.shape)} (B)")
        with torch.no_grad():
            out[(comp, layer)] = torch.nn.functional.cosine_similarity(va, vb, dim=1, eps=1e-12).cpu()  # (n,)
    return out


def _turnover(ids_a: torch.Tensor, ids_b: torch.Tensor) -> torch.Tensor:
    """(n,) share of each row of ids_a (n, k) that is absent from the same row of ids_b (n, k)."""
    present = (ids_a.unsqueeze(2) == ids_b.unsqueeze(1)).any(2)  # (n, k)
    return 1.0 - present.float().mean(1)


def diff_projections(a: Projection, b: Projection, weights: tuple[ModelAdapter, ModelAdapter] | None = None,
                     n_neurons: int = 100) -> ProjectionDiff:
    """Diff B against A; `weights` = (adapter of A's model, adapter of B's) adds value-vector cosines."""
    pairs = check_same_architecture(a, b)
    vocab_size = int(a.manifest["vocab_size"])
    cosines = value_vector_cosines(*weights, pairs) if weights else {}
    count_a = torch.zeros(vocab_size, dtype=torch.int64)
    count_b = torch.zeros(vocab_size, dtype=torch.int64)
    layers: list[LayerChange] = []
    candidates: list[tuple[float, float, str, int, int]] = []
    for comp, layer in pairs:
        ids_a = a.get(comp, layer, "top_ids").long()  # (n, k)
        ids_b = b.get(comp, layer, "top_ids").long()
        count_a += torch.bincount(ids_a.flatten(), minlength=vocab_size)
        count_b += torch.bincount(ids_b.flatten(), minlength=vocab_size)
        turn = _turnover(ids_a, ids_b)  # (n,)
        cos = cosines.get((comp, layer))
        if cos is not None and cos.numel() != turn.numel():
            raise ConfigError(f"{comp} layer {layer}: the weights have {cos.numel()} neurons, the projections {turn.numel()}")
        layers.append(LayerChange(
            component=comp, layer=layer, n_neurons=int(turn.numel()), mean_turnover=float(turn.mean()),
            changed_share=float((turn > 0).float().mean()),
            mean_cosine=float(cos.mean()) if cos is not None else None,
            moved_share=float((cos < MOVED_COSINE).float().mean()) if cos is not None else None,
        ))
        # rank key: lowest cosine first, then highest turnover; keep only this layer's best n
        key = (cos if cos is not None else torch.ones_like(turn)) - 1e-3 * turn
        changed = (turn > 0) | ((cos < 1.0 - 1e-6) if cos is not None else torch.zeros_like(turn, dtype=torch.bool))
        for i in torch.argsort(key, stable=True)[:n_neurons].tolist():
            if changed[i]:  # unchanged neurons never fill the list
                candidates.append((float(key[i]), -float(turn[i]), comp, layer, i))
    candidates.sort()
    neurons = []
    for _, _, comp, layer, i in candidates[:n_neurons]:
        cos = cosines.get((comp, layer))
        neurons.append(NeuronChange(
            component=comp, layer=layer, index=i,
            turnover=float(_turnover(a.get(comp, layer, "top_ids")[i: i + 1].long(), b.get(comp, layer, "top_ids")[i: i + 1].long())),
            cosine=float(cos[i]) if cos is not None else None,
            top_a=tuple(a.vocab[t] for t in a.get(comp, layer, "top_ids")[i].tolist()),
            top_b=tuple(b.vocab[t] for t in b.get(comp, layer, "top_ids")[i].tolist()),
        ))
    d = (count_b - count_a).double()
    std = float(d.std()) if d.numel() > 1 else 0.0
    z = ((d - d.mean()) / std).float() if std > 0 else torch.zeros(vocab_size)
    differing = sum(x != y for x, y in zip(a.vocab, b.vocab))
    vocab = [vb if va == vb else f"{vb} (A: {va})" for va, vb in zip(a.vocab, b.vocab)]
    return ProjectionDiff(
        model_a=a.model_id, model_b=b.model_id, id_a=a.id, id_b=b.id, top_k=int(a.manifest["options"]["top_k"]),
        compared=pairs, with_weights=bool(weights), layers=layers, neurons=neurons, differing_token_texts=differing,
        count_a=count_a, count_b=count_b, z=z, vocab=vocab,
    )


def format_markdown(diff: ProjectionDiff, figures: Sequence[str] = (), n_tokens: int = 20, n_neurons: int = 30) -> str:
    lines = [f"# What changed: {diff.model_b} (B) vs {diff.model_a} (A)", "",
             f"Projections `{diff.id_a}` (A) and `{diff.id_b}` (B), top-k {diff.top_k}, {len(diff.compared)} layers compared.",
             "Token-count z-score: z = (d - mean d) / std d over the vocabulary, d = count_B - count_A, count = neurons "
             "having the token among their top-k.",
             ("Neurons ranked by value-vector cosine cos(w_A, w_B) (weights loaded), ties by top-k turnover."
              if diff.with_weights else
              "No weights given: neurons ranked by top-k turnover only (share of A's top-k tokens absent from B's); "
              "pass --model-a/--model-b for value-vector cosines."), ""]
    if diff.differing_token_texts:
        lines += [f"{diff.differing_token_texts} token ids print differently in A and B (e.g. action bins); shown as `B (A: ...)`.", ""]
    lines += [f"![{Path(f).stem}]({Path(f).name})" for f in figures] + ([""] if figures else [])
    for title, gained in (("Gained", True), ("Lost", False)):
        lines += [f"## {title} top-k presence", "", "| token | id | count A | count B | z |", "|---|---|---|---|---|"]
        lines += [f"| {t.text!r} | {t.token_id} | {t.count_a} | {t.count_b} | {t.z:+.2f} |" for t in diff.top_tokens(n_tokens, gained)]
        lines.append("")
    lines += ["## Per layer", "", "| component | layer | neurons | mean turnover | top-k changed | mean cosine | moved (cos < "
              f"{MOVED_COSINE}) |", "|---|---|---|---|---|---|---|"]
    for r in diff.layers:
        cos = f"{r.mean_cosine:.4f}" if r.mean_cosine is not None else "-"
        moved = f"{r.moved_share:.4f}" if r.moved_share is not None else "-"
        lines.append(f"| {r.component} | {r.layer} | {r.n_neurons} | {r.mean_turnover:.4f} | {r.changed_share:.4f} | {cos} | {moved} |")
    lines += ["", "## Most changed neurons", "", "| neuron | cosine | turnover | top tokens A | top tokens B |", "|---|---|---|---|---|"]
    for n in diff.neurons[:n_neurons]:
        cos = f"{n.cosine:.4f}" if n.cosine is not None else "-"
        lines.append(f"| {n.component}/L{n.layer}/N{n.index} | {cos} | {n.turnover:.2f} | {', '.join(map(repr, n.top_a[:5]))} | "
                     f"{', '.join(map(repr, n.top_b[:5]))} |")
    return "\n".join(lines) + "\n"


def neurons_csv(diff: ProjectionDiff) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["component", "layer", "index", "cosine", "turnover", "top_a", "top_b"])
    for n in diff.neurons:
        w.writerow([n.component, n.layer, n.index, "" if n.cosine is None else f"{n.cosine:.6f}", f"{n.turnover:.4f}",
                    " | ".join(n.top_a), " | ".join(n.top_b)])
    return buf.getvalue()


def write_diff(diff: ProjectionDiff, out_dir: str | Path) -> list[Path]:
    """OUT/diff.{md,json}, neurons.csv, tokens.csv and the PNG figures; returns the files written."""
    from ..analysis.interp_plots import plot_layer_change, plot_token_zscores

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [plot_token_zscores(diff, out / "token_zscores.png"), plot_layer_change(diff, out / "layer_change.png")]
    atomic_write_text(out / "diff.md", format_markdown(diff, [str(f) for f in figures]))
    atomic_write_text(out / "diff.json", json.dumps(diff.to_json(), indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(out / "neurons.csv", neurons_csv(diff))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["token_id", "text", "count_a", "count_b", "z"])
    for i in torch.argsort(-diff.z, stable=True).tolist():
        if diff.count_a[i] or diff.count_b[i]:
            w.writerow([i, diff.vocab[i], int(diff.count_a[i]), int(diff.count_b[i]), f"{float(diff.z[i]):.4f}"])
    atomic_write_text(out / "tokens.csv", buf.getvalue())
    return [out / "diff.md", out / "diff.json", out / "neurons.csv", out / "tokens.csv", *figures]
