"""Steering latency: steered / unsteered, disabled hooks / unsteered, ours vs the paper's hook.

    tools/env.sh python bench/bench_steering_overhead.py          # tiny + SmolLM2-135M-shaped, CPU
    tools/env.sh python bench/bench_steering_overhead.py --full   # + Llama-2-7B / Gemma-2B shapes (GPU)

Each model has RANDOM WEIGHTS (only shapes matter for latency). One inference = greedy
generation of 8 tokens (a prefill and 7 decode steps, like OpenVLA's 7 action tokens). Variants,
interleaved within each repetition so that machine load hits them alike:
  unsteered   no hooks at all;
  disabled    our Steerer registered on every down_proj, steering and probing off;
  steered     our Steerer: 10 neurons over 5 layers, override, telemetry on;
  edit-only   the same without telemetry (the like-for-like comparison with the paper's hook);
  paper       the paper's method: a forward hook on those layers' down_proj output that
              overwrites the input copy and recomputes the matmul.
Times are the minimum over repetitions (the least disturbed run). Target: steered / unsteered
<= 1.02 on models of >= 100M parameters.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from vla_steer_tools.models.hf_causal_lm import causal_lm_adapter
from vla_steer_tools.steering.directions import Direction
from vla_steer_tools.steering.hooks import Steerer, SteeringConfig
from vla_steer_tools.types import NeuronRef

SHAPES = {  # name: (family, layers, d_model, ffn, heads, kv_heads, vocab)
    "tiny-llama": ("llama", 4, 64, 128, 4, 2, 256),
    "smollm2-135m-shape": ("llama", 30, 576, 1536, 9, 3, 49152),
    "llama-2-7b-shape": ("llama", 32, 4096, 11008, 32, 32, 32000),
    "gemma-2b-shape": ("gemma", 18, 2048, 16384, 8, 1, 257152),
}
FULL_ONLY = ("llama-2-7b-shape", "gemma-2b-shape")


def build(name: str, device: torch.device, dtype: torch.dtype):
    from transformers import GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM

    family, layers, d, ffn, heads, kv, vocab = SHAPES[name]
    kw = dict(num_hidden_layers=layers, hidden_size=d, intermediate_size=ffn, num_attention_heads=heads,
              num_key_value_heads=kv, vocab_size=vocab, head_dim=d // heads if family == "llama" else 256)
    config = LlamaConfig(**kw) if family == "llama" else GemmaConfig(**kw)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = (LlamaForCausalLM if family == "llama" else GemmaForCausalLM)(config).eval()
    finally:
        torch.set_default_dtype(default)
    return model, causal_lm_adapter(model, model_id=f"random {name}", random_weights=True)


def concept(adapter) -> Direction:
    """10 neurons spread over 5 layers of the second half (where concept neurons live)."""
    n_layers = len(adapter.layers("backbone"))
    layers = sorted({int(n_layers * f) for f in (0.5, 0.6, 0.7, 0.8, 0.9)})
    width = adapter.width("backbone", 0)
    refs = [NeuronRef("backbone", layer, (37 * (i + 1) + 101 * j) % width) for i, layer in enumerate(layers) for j in range(2)]
    return Direction("bench", tuple(refs[:10]), alpha=10.0)


def paper_hooks(adapter, direction: Direction):
    """The paper's method: recompute down_proj on an edited copy of its input, in a forward hook."""
    by_layer: dict[int, list[int]] = {}
    for ref in direction.neurons:
        by_layer.setdefault(ref.layer, []).append(ref.index)
    handles = []
    for layer, idx in by_layer.items():
        def hook(module, args, out, idx=torch.tensor(idx, device=adapter.device)):
            h = args[0].clone()
            h[..., idx] = direction.alpha
            return F.linear(h, module.weight, module.bias)

        handles.append(adapter.layers("backbone")[layer].register_forward_hook(hook))
    return handles


def bench_model(name: str, device: torch.device, dtype: torch.dtype, reps: int, prompt_len: int, new_tokens: int) -> dict:
    model, adapter = build(name, device, dtype)
    params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, model.config.vocab_size, (1, prompt_len), generator=torch.Generator().manual_seed(0)).to(device)
    direction = concept(adapter)

    def infer() -> None:
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    steerer: Steerer | None = None
    handles: list = []

    def setup(variant: str) -> None:
        nonlocal steerer, handles
        if variant == "disabled":
            steerer = Steerer(adapter, SteeringConfig((direction,), enabled=False, probe=False))
        elif variant == "steered":
            steerer = Steerer(adapter, SteeringConfig((direction,), enabled=True, probe=True))
        elif variant == "edit-only":
            steerer = Steerer(adapter, SteeringConfig((direction,), enabled=True, probe=False))
        elif variant == "paper":
            handles = paper_hooks(adapter, direction)

    def teardown() -> None:
        nonlocal steerer, handles
        if steerer is not None:
            steerer.activations()  # the per-inference telemetry read is part of our cost
            steerer.close()
            steerer = None
        for h in handles:
            h.remove()
        handles = []

    variants = ("unsteered", "disabled", "steered", "edit-only", "paper")
    times: dict[str, list[float]] = {v: [] for v in variants}
    with torch.no_grad():
        for variant in variants:  # warm-up
            setup(variant)
            infer()
            teardown()
        for _ in range(reps):
            for variant in variants:
                setup(variant)
                if steerer is not None:
                    steerer.begin_inference()
                start = time.perf_counter()
                infer()
                if steerer is not None:
                    steerer.activations()
                times[variant].append(time.perf_counter() - start)
                teardown()
    best = {v: min(t) for v, t in times.items()}
    return {"name": name, "params_m": params / 1e6, **best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="also Llama-2-7B / Gemma-2B shapes (meant for a GPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=8)
    args = parser.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    names = [k for k in SHAPES if args.full or k not in FULL_ONLY]
    print(f"steering overhead on {device} ({torch.get_num_threads()} threads), {str(dtype).removeprefix('torch.')}, "
          f"RANDOM WEIGHTS; one inference = prompt {args.prompt_len} tokens + {args.new_tokens} generated; min of {args.reps}")
    print(f"{'model':20s} {'params':>8s} {'unsteered ms':>13s} {'disabled/un':>12s} {'steered/un':>11s} {'paper/un':>9s} {'edit-only/paper':>16s}")
    for name in names:
        r = bench_model(name, device, dtype, args.reps, args.prompt_len, args.new_tokens)
        un = r["unsteered"]
        print(f"{r['name']:20s} {r['params_m']:7.1f}M {un * 1e3:13.2f} {r['disabled'] / un:12.3f} {r['steered'] / un:11.3f} "
              f"{r['paper'] / un:9.3f} {r['edit-only'] / r['paper']:16.3f}")
    print("steered/un target <= 1.02 (models >= 100M parameters); edit-only/paper < 1: our pre-hook is cheaper")


if __name__ == "__main__":
    main()
