"""Neuron browser index at OpenVLA scale: 32 layers x 11008 neurons (352,256), vocab 32,000, top-10.

Random token ids (a stand-in projection built in memory: no model, no disk), so only the timings
mean anything: building the index (inverted postings + layer report), a token search, a later
page, a neuron page, the heat map. The browser's tests check the answers; this, the speed.

    tools/env.sh python bench/bench_browser_index.py
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from vla_steer_tools.browser.index import NeuronIndex
from vla_steer_tools.interp.projection import Projection

LAYERS, WIDTH, K, VOCAB = 32, 11008, 10, 32000


def stand_in() -> Projection:
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in range(LAYERS):
        for side in ("top", "bottom"):
            tensors[f"backbone.{layer}.{side}_ids"] = torch.randint(0, VOCAB, (WIDTH, K), generator=gen, dtype=torch.int32)
            scores = torch.rand(WIDTH, K, generator=gen).sort(1, descending=True).values
            tensors[f"backbone.{layer}.{side}_scores"] = scores if side == "top" else -scores
    vocab = [f"tok{i}" for i in range(VOCAB - 256)] + [f"[action: {i}]" for i in range(256)]
    manifest = {"id": "bench", "model_id": "bench-352k (random ids)", "random_weights": True,
                "components": {"backbone": {"n_layers": LAYERS, "widths": [WIDTH] * LAYERS}},
                "layers": [["backbone", layer] for layer in range(LAYERS)], "vocab_size": VOCAB, "d_model": 4096,
                "options": {"top_k": K}}
    return Projection(Path("(in memory)"), manifest, tensors, vocab)


def main() -> None:
    proj = stand_in()
    t = time.perf_counter()
    idx = NeuronIndex(proj)
    print(f"index of {idx.n_neurons} neurons: {time.perf_counter() - t:.2f} s")
    for what, call in (("search 'tok123' page 1", lambda: idx.search("tok123", "top", 0, 50)),
                       ("search 'tok123' page 4", lambda: idx.search("tok123", "top", 3, 50)),
                       ("neuron page", lambda: idx.neuron("backbone", 31, 11007)),
                       ("heat map", idx.heatmap)):
        t = time.perf_counter()
        call()
        print(f"{what}: {(time.perf_counter() - t) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
