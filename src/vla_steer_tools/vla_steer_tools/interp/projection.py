"""Project every FFN value vector onto the token matrix and keep each neuron's top/bottom tokens.

For neuron i of a layer, `logits_i = E @ w_i` (E: (vocab, d_model), w_i: column i of
`down_proj.weight`). A whole layer's logits can be many GB (Gemma-2B: 16384 x 257152 fp32 =
17 GB), so neurons go through in chunks and only the top-k / bottom-k per neuron are kept:
memory is O(chunk x vocab), never O(neurons x vocab).

Top-k is exact but cheaper than `torch.topk` on the whole row: the row is cut into groups of
`GROUP` tokens, the k groups with the largest maxima must contain the k largest values, and
only those k x GROUP candidates go through `topk` (same for the minima).

Saved format (one directory, written atomically; resumable through per-layer shards):
    manifest.json              model id, shapes, options, library versions, projection id
    projection.safetensors     "{component}.{layer}.{top|bottom}_{ids|scores}": (n_neurons, k)
    vocab.json                 decoded text of every token id (for search without the model)
    token_matrix.safetensors   E in float16 (for semantic clustering), unless disabled
    top_tokens[_<component>].txt   the paper's `[flat_index] tok, tok, ...` lines
    shards/                    per-layer results while running (removed when complete)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..atomic import atomic_path, atomic_write_text
from ..errors import ConfigError, UnknownChoiceError
from ..models.base import ModelAdapter

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
GROUP = 64  # tokens per group in the two-stage top-k
GROUPED_MIN_VOCAB = 8192  # below this a plain torch.topk is as fast
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
MANIFEST = "manifest.json"
TENSORS = "projection.safetensors"


@dataclass(frozen=True)
class ProjectionOptions:
    """How to project. chunk_size 0 = pick from `chunk_mib` (the logits buffer budget)."""

    top_k: int = 10
    final_norm: bool = False
    token_matrix: str = "default"  # "default" or a name in adapter.extra["token_matrices"]
    dtype: str = "float32"
    device: str = "auto"
    chunk_size: int = 0
    chunk_mib: int = 256
    components: tuple[str, ...] = ()  # () = all
    layers: tuple[int, ...] = ()  # () = all
    save_token_matrix: bool = True

    def check(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")
        if self.dtype not in DTYPES:
            raise UnknownChoiceError("dtype", self.dtype, DTYPES)
        if self.chunk_size < 0 or self.chunk_mib < 1:
            raise ConfigError(f"bad chunk settings: chunk_size={self.chunk_size}, chunk_mib={self.chunk_mib}")

    def result_key(self) -> dict:
        """The options that change the numbers (a resumed run must match these)."""
        return {k: v for k, v in asdict(self).items() if k in ("top_k", "final_norm", "token_matrix", "dtype")}


# ----------------------------------------------------------------------------- the math


def topk_grouped(logits: torch.Tensor, k: int, largest: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-row top-k (values, ids) of logits (rows, vocab) via group maxima."""
    rows, vocab = logits.shape
    n_groups = vocab // GROUP
    if vocab < GROUPED_MIN_VOCAB or n_groups <= k or not logits.is_contiguous():
        return logits.topk(k, dim=1, largest=largest)
    main = n_groups * GROUP
    blocks = logits.as_strided((rows, n_groups, GROUP), (vocab, GROUP, 1))  # (rows, G, GROUP)
    extreme = blocks.amax(2) if largest else blocks.amin(2)  # (rows, G)
    best_groups = extreme.topk(k, dim=1, largest=largest).indices  # (rows, k)
    offsets = torch.arange(GROUP, device=logits.device)
    cand_ids = (best_groups.unsqueeze(2) * GROUP + offsets).reshape(rows, k * GROUP)  # (rows, k*GROUP)
    if main < vocab:  # the tail that does not fill a group is always a candidate
        tail = torch.arange(main, vocab, device=logits.device).expand(rows, -1)
        cand_ids = torch.cat([cand_ids, tail], dim=1)
    cand = logits.gather(1, cand_ids)  # (rows, n_cand)
    values, pos = cand.topk(k, dim=1, largest=largest)  # (rows, k)
    return values, cand_ids.gather(1, pos)


def project_vectors(vectors: torch.Tensor, tokens: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Top/bottom-k tokens of each row of vectors (c, d) against tokens (vocab, d)."""
    logits = vectors @ tokens.T  # (c, vocab)
    top_v, top_i = topk_grouped(logits, k, largest=True)
    bot_v, bot_i = topk_grouped(logits, k, largest=False)
    return {
        "top_ids": top_i.to(torch.int32).cpu(), "top_scores": top_v.float().cpu(),
        "bottom_ids": bot_i.to(torch.int32).cpu(), "bottom_scores": bot_v.float().cpu(),
    }


def value_vectors(adapter: ModelAdapter, component: str, layer: int, final_norm: bool) -> torch.Tensor:
    """Effective value vectors (n_neurons, d_model) of one layer, LoRA deltas merged."""
    module = adapter.layers(component)[layer]
    weight = module.weight.detach()  # (d_model, n)
    weight = weight + _lora_delta(module)
    vectors = weight.T  # (n, d_model)
    if final_norm:
        if adapter.final_norm is None:
            raise ConfigError(f"{adapter.model_id} has no final norm; project with final_norm off")
        with torch.no_grad():
            vectors = adapter.final_norm(vectors)
    return vectors


def _lora_delta(module: torch.nn.Module) -> torch.Tensor | float:
    """`scale * B @ A` summed over the active adapters of a peft LoRA layer (0 if none/merged)."""
    lora_a, lora_b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
    if not lora_a or getattr(module, "merged", False):
        return 0.0
    delta = 0.0
    for name in lora_a:
        scale = module.scaling[name]
        delta = delta + scale * (lora_b[name].weight @ lora_a[name].weight)  # (d_model, n)
    return delta.detach()


# ----------------------------------------------------------------------------- running


def _token_matrix(adapter: ModelAdapter, choice: str) -> torch.Tensor:
    if choice == "default":
        return adapter.token_matrix()
    choices = adapter.extra.get("token_matrices", {})
    if choice not in choices:
        raise UnknownChoiceError("token matrix", choice, ["default", *choices])
    return choices[choice]()


def _components(adapter: ModelAdapter, opts: ProjectionOptions, d_model: int) -> tuple[str, ...]:
    """Components whose value vectors live in the token matrix's space (d_model wide).

    Pi0's action expert (width 1024) cannot be projected onto PaliGemma's tokens (2048): by
    default such components are skipped with a note; asked for by name, they are an error."""
    def width(comp: str) -> int:
        return int(adapter.layers(comp)[0].out_features)

    if opts.components:
        bad = [c for c in opts.components if width(c) != d_model]
        if bad:
            alternatives = ", ".join(adapter.extra.get("token_matrices", {})) or "none"
            raise ConfigError(
                f"component(s) {bad} write {width(bad[0])}-wide value vectors but token matrix "
                f"{opts.token_matrix!r} is {d_model}-wide; pick a matching --token-matrix (this model offers: {alternatives})")
        return opts.components
    comps = tuple(c for c in adapter.components if width(c) == d_model)
    skipped = sorted(set(adapter.components) - set(comps))
    if skipped:
        log.info("skipping component(s) %s: their width differs from the %d-wide token matrix "
                 "(project them with --components/--token-matrix)", skipped, d_model)
    return comps


def _selected_layers(adapter: ModelAdapter, opts: ProjectionOptions, d_model: int) -> list[tuple[str, int]]:
    comps = _components(adapter, opts, d_model)
    out = []
    for comp in comps:
        n = len(adapter.layers(comp))
        layers = opts.layers or tuple(range(n))
        bad = [layer for layer in layers if not 0 <= layer < n]
        if bad:
            raise ConfigError(f"{comp} has layers 0..{n - 1}; asked for {bad}")
        out += [(comp, layer) for layer in layers]
    return out


def _versions() -> dict[str, str]:
    import safetensors
    import transformers

    from .. import __version__

    return {
        "vla_steer_tools": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
        "safetensors": safetensors.__version__, "python": platform.python_version(),
    }


def _shapes(adapter: ModelAdapter) -> dict[str, dict]:
    return {
        c: {"n_layers": len(adapter.layers(c)), "widths": [int(m.in_features) for m in adapter.layers(c)]}
        for c in adapter.components
    }


def projection_id(model_id: str, shapes: dict, result_key: dict, token_checksum: float) -> str:
    blob = json.dumps([model_id, shapes, result_key, round(token_checksum, 3)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def _atomic_json(obj, path: Path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def project(adapter: ModelAdapter, out_dir: str | os.PathLike, options: ProjectionOptions = ProjectionOptions()) -> Path:
    """Project the selected layers into `out_dir`; re-running resumes from finished layer shards."""
    from ..models.loading import resolve_device

    options.check()
    out = Path(out_dir)
    device = resolve_device(options.device)
    dtype = DTYPES[options.dtype]
    tokens = _token_matrix(adapter, options.token_matrix).to(device=device, dtype=dtype)  # (vocab, d)
    vocab, d_model = tokens.shape
    selected = _selected_layers(adapter, options, d_model)
    shapes = _shapes(adapter)
    pid = projection_id(adapter.model_id, shapes, options.result_key(), float(tokens[:64].float().sum()))
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if old.get("id") == pid and old.get("layers") == [list(x) for x in selected]:
            log.info("projection %s already complete in %s", pid, out)
            return out
        raise ConfigError(f"{out} already holds another projection ({old.get('id')}); choose a new --out")
    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    chunk = options.chunk_size or max(1, (options.chunk_mib << 20) // (vocab * tokens.element_size()))
    if adapter.random_weights:
        log.warning("projecting a model with RANDOM weights (%s): token lists are meaningless", adapter.model_id)
    total = sum(adapter.width(c, layer) for c, layer in selected)
    started = time.perf_counter()
    with tqdm(total=total, desc="projecting value vectors", unit="neuron") as bar:
        for comp, layer in selected:
            shard = shard_dir / f"{comp}.{layer:03d}.safetensors"
            if shard.is_file() and _shard_matches(shard, pid):
                bar.update(adapter.width(comp, layer))
                continue
            vectors = value_vectors(adapter, comp, layer, options.final_norm).to(device=device, dtype=dtype)  # (n, d)
            parts = []
            for rows in _chunks(vectors.shape[0], chunk):
                with torch.no_grad():
                    parts.append(project_vectors(vectors[rows], tokens, options.top_k))
                bar.update(rows.stop - rows.start)
            result = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
            _atomic_save_tensors(result, shard, metadata={"projection_id": pid})
    elapsed = time.perf_counter() - started
    _finalize(adapter, out, selected, tokens, options, pid, shapes, elapsed)
    return out


def _shard_matches(path: Path, pid: str) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            return (fh.metadata() or {}).get("projection_id") == pid
    except Exception:  # a torn or foreign file: recompute it
        return False


def _finalize(adapter, out, selected, tokens, options, pid, shapes, elapsed) -> None:
    """Merge shards, write vocab, token matrix, text exports and (last) the manifest."""
    tensors = {}
    for comp, layer in selected:
        for key, value in load_file(str(out / "shards" / f"{comp}.{layer:03d}.safetensors")).items():
            tensors[f"{comp}.{layer}.{key}"] = value
    _atomic_save_tensors(tensors, out / TENSORS, metadata={"projection_id": pid})
    vocab = [adapter.decode_token(i) for i in range(tokens.shape[0])]
    _atomic_json(vocab, out / "vocab.json")
    if options.save_token_matrix:
        _atomic_save_tensors({"token_matrix": tokens.to("cpu", torch.float16)}, out / "token_matrix.safetensors")
    for comp in dict.fromkeys(c for c, _ in selected):
        name = "top_tokens.txt" if comp == "backbone" else f"top_tokens_{comp}.txt"
        lines = export_lines(tensors, vocab, comp, [layer for c, layer in selected if c == comp], adapter)
        atomic_write_text(out / name, "".join(lines))
    manifest = {
        "format_version": FORMAT_VERSION,
        "id": pid,
        "model_id": adapter.model_id,
        "random_weights": adapter.random_weights,
        "components": shapes,
        "layers": [list(x) for x in selected],
        "vocab_size": int(tokens.shape[0]),
        "d_model": int(tokens.shape[1]),
        "options": asdict(options),
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "elapsed_s": round(elapsed, 2),
        "device": str(tokens.device),
    }
    _atomic_json(manifest, out / MANIFEST)
    shutil.rmtree(out / "shards", ignore_errors=True)
    log.info("projection %s written to %s (%.1f s)", pid, out, elapsed)


def display_token(text: str) -> str:
    """A token as shown in the text export: trimmed, or repr() when only whitespace/empty."""
    return text.strip() or repr(text)


def export_lines(tensors, vocab, comp, layers, adapter) -> list[str]:
    """The paper's format: `[layer * width + neuron] tok, tok, ...` (top tokens, best first)."""
    lines = []
    for layer in layers:
        ids = tensors[f"{comp}.{layer}.top_ids"].tolist()
        width = adapter.width(comp, layer)
        for neuron, row in enumerate(ids):
            lines.append(f"[{layer * width + neuron}] " + ", ".join(display_token(vocab[i]) for i in row) + "\n")
    return lines


# ----------------------------------------------------------------------------- reading


@dataclass
class Projection:
    """A finished projection directory, read back."""

    path: Path
    manifest: dict
    tensors: dict[str, torch.Tensor]
    vocab: list[str]
    _token_matrix: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Projection":
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise ConfigError(f"{str(path)!r} is not a finished projection (no {MANIFEST}); run `vla-steer project` first")
        manifest = json.loads((path / MANIFEST).read_text())
        tensors = load_file(str(path / TENSORS))
        vocab = json.loads((path / "vocab.json").read_text())
        return cls(path=path, manifest=manifest, tensors=tensors, vocab=vocab)

    @property
    def id(self) -> str:
        return self.manifest["id"]

    @property
    def model_id(self) -> str:
        return self.manifest["model_id"]

    def layers(self, component: str = "backbone") -> list[int]:
        return [layer for c, layer in self.manifest["layers"] if c == component]

    @property
    def components(self) -> list[str]:
        return list(dict.fromkeys(c for c, _ in self.manifest["layers"]))

    def width(self, component: str, layer: int) -> int:
        return int(self.manifest["components"][component]["widths"][layer])

    def get(self, component: str, layer: int, what: str) -> torch.Tensor:
        """what: top_ids | top_scores | bottom_ids | bottom_scores -> (n_neurons, k)."""
        key = f"{component}.{layer}.{what}"
        if key not in self.tensors:
            raise ConfigError(f"projection {self.id} has no {component} layer {layer}; it has {self.layers(component)}")
        return self.tensors[key]

    def token_matrix(self) -> torch.Tensor:
        """E (vocab, d_model) float32, as saved; error if the projection was run without it."""
        if self._token_matrix is None:
            f = self.path / "token_matrix.safetensors"
            if not f.is_file():
                raise ConfigError(f"{self.path} has no token_matrix.safetensors (projected with save_token_matrix off)")
            self._token_matrix = load_file(str(f))["token_matrix"].float()
        return self._token_matrix

    def model_shapes(self) -> tuple[tuple[str, int, int], ...]:
        """(component, n_layers, width) of the projected model, when every layer has one width."""
        out = []
        for comp, info in self.manifest["components"].items():
            widths = set(info["widths"])
            if len(widths) == 1:
                out.append((comp, int(info["n_layers"]), widths.pop()))
        return tuple(out)
