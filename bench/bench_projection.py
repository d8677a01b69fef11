"""Projection throughput as a ratio to a plain matmul of the same shapes, and peak memory.

    tools/env.sh python bench/bench_projection.py            # tiny + SmolLM2-135M shapes, CPU
    tools/env.sh python bench/bench_projection.py --full     # + Llama-2-7B and Gemma-2B layers (GPU)

For one layer's value vectors (n, d) and a token matrix (vocab, d), both random (RANDOM WEIGHTS:
only the shapes matter here), it times in one run, interleaved:
  plain   the same chunked matmuls `vectors[chunk] @ E.T`, nothing else;
  ours    `project_vectors` per chunk: the matmul + exact top-k and bottom-k per neuron.
ratio = plain time / ours time (1.0 = top-k is free; the target is >= 0.85).
Peak memory is the growth of the process high-water mark (CPU, /proc) or the CUDA allocator's
peak during the projection, next to what one whole layer's logits would take.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from vla_steer_tools.interp.projection import DTYPES, project_vectors

SHAPES = {  # name: (neurons per layer, d_model, vocab)
    "tiny": (512, 64, 1000),
    "smollm2-135m": (1536, 576, 49152),
    "llama-2-7b (openvla)": (11008, 4096, 32000),
    "gemma-2b (paligemma)": (16384, 2048, 257152),
}
FULL_ONLY = ("llama-2-7b (openvla)", "gemma-2b (paligemma)")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> int:
    """Reset the peak-memory counter; return the current baseline in bytes."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    return _hwm()


def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _peak(device: torch.device) -> int:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _hwm()


def bench_shape(name: str, shape: tuple[int, int, int], device: torch.device, dtype: torch.dtype, chunk_mib: int, reps: int, neurons: int | None) -> dict:
    full_n, d, vocab = shape
    n = min(full_n, neurons) if neurons else full_n
    gen = torch.Generator().manual_seed(0)
    vectors = torch.randn(n, d, generator=gen).to(device, dtype)  # (n, d)
    tokens = torch.randn(vocab, d, generator=gen).to(device, dtype)  # (vocab, d)
    chunk = max(1, (chunk_mib << 20) // (vocab * tokens.element_size()))
    chunks = [slice(s, min(n, s + chunk)) for s in range(0, n, chunk)]

    def plain() -> None:
        for c in chunks:
            vectors[c] @ tokens.T  # (c, vocab)
        _sync(device)

    def ours() -> None:
        for c in chunks:
            project_vectors(vectors[c], tokens, 10)
        _sync(device)

    with torch.no_grad():
        plain(), ours()  # warm-up
        times = {"plain": [], "ours": []}
        for _ in range(reps):
            for label, fn in (("plain", plain), ("ours", ours)):
                start = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - start)
        base = _reset_peak(device)
        ours()
        peak = _peak(device) - base
    t_plain, t_ours = min(times["plain"]), min(times["ours"])  # min: least disturbed by other load
    return {
        "name": name, "n": n, "d": d, "vocab": vocab, "chunk": chunk,
        "plain_s": t_plain, "ours_s": t_ours, "ratio": t_plain / t_ours,
        "neurons_per_s": n / t_ours, "tflops": 2 * n * d * vocab / t_ours / 1e12,
        "peak_mib": peak / 2**20, "layer_logits_mib": full_n * vocab * tokens.element_size() / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="also Llama-2-7B / Gemma-2B layer shapes (meant for a GPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", *DTYPES], help="auto: bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--chunk-mib", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--neurons", type=int, default=None, help="cap neurons per layer (quick CPU runs of --full shapes)")
    args = parser.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    dtype = DTYPES[args.dtype] if args.dtype != "auto" else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    names = [k for k in SHAPES if args.full or k not in FULL_ONLY]
    print(f"projection benchmark on {device} ({torch.get_num_threads()} threads), {str(dtype).removeprefix('torch.')}, "
          f"RANDOM WEIGHTS (shapes only), top-k 10 + bottom-k 10, chunk budget {args.chunk_mib} MiB")
    print(f"{'shape':22s} {'neurons':>7s} {'d':>5s} {'vocab':>7s} {'chunk':>6s} {'plain s':>8s} {'ours s':>8s} "
          f"{'ratio':>6s} {'neur/s':>8s} {'TFLOP/s':>8s} {'peak MiB':>9s} {'whole-layer logits MiB':>23s}")
    for name in names:
        r = bench_shape(name, SHAPES[name], device, dtype, args.chunk_mib, args.reps, args.neurons)
        print(f"{r['name']:22s} {r['n']:7d} {r['d']:5d} {r['vocab']:7d} {r['chunk']:6d} {r['plain_s']:8.3f} {r['ours_s']:8.3f} "
              f"{r['ratio']:6.3f} {r['neurons_per_s']:8.0f} {r['tflops']:8.3f} {r['peak_mib']:9.1f} {r['layer_logits_mib']:23.1f}")
    print("ratio = plain chunked matmul time / projection time (target >= 0.85)")


if __name__ == "__main__":
    main()
