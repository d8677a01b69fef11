"""A synthetic model for the projection/discovery tests: orthonormal token embeddings and value
vectors planted to promote (or, negated, demote) known words, so the right answers are known."""

from __future__ import annotations

import torch
from torch import nn

from vla_steer_tools.models.base import ModelAdapter

WORDS = ["Ġfast", "▁quickly", " Speed", "Ġslow", "▁Slowly", "Ġup", "▁raise", "Ġdown", "Ġlow", "Ġthe", "Ġtable", "ĠFast"]
VOCAB = WORDS + [f"tok{i}" for i in range(64 - len(WORDS))]
SPEED_WORDS = ("Ġfast", "▁quickly", " Speed", "ĠFast")
D_MODEL, WIDTH, N_LAYERS = 80, 24, 4  # d_model > vocab: room for a shared direction

#: (layer, neuron) -> (word weights, sign): the planted concept neurons.
PLANTED = {
    (1, 5): ({"Ġfast": 3.0, "▁quickly": 2.8, " Speed": 2.6, "ĠFast": 2.5}, 1.0),
    (3, 7): ({"Ġfast": 3.0, "ĠFast": 2.9, " Speed": 2.7}, -1.0),  # promotes speed through its bottom
    (2, 2): ({"Ġup": 3.0, "▁raise": 2.8}, 1.0),
    (0, 9): ({"Ġslow": 3.0, "▁Slowly": 2.9}, 1.0),
    (2, 11): ({"Ġup": 3.0, "Ġdown": 3.0}, 1.0),  # both up and down: not specific
}


def synthetic_adapter(seed: int = 0) -> ModelAdapter:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(D_MODEL, D_MODEL, generator=gen))
    tokens = q[: len(VOCAB)].clone()  # (vocab, d) orthonormal rows ...
    for word in SPEED_WORDS:  # ... except that speed words share a direction (as in real models)
        i = VOCAB.index(word)
        tokens[i] = 0.9 * q[-1] + 0.436 * q[i]
    layers = []
    for layer in range(N_LAYERS):
        lin = nn.Linear(WIDTH, D_MODEL, bias=False)
        with torch.no_grad():
            lin.weight.copy_(0.1 * torch.randn(D_MODEL, WIDTH, generator=gen))  # (d, n)
            for (pl, neuron), (weights, sign) in PLANTED.items():
                if pl == layer:
                    vec = sum(w * tokens[VOCAB.index(t)] for t, w in weights.items())
                    lin.weight[:, neuron] = sign * vec
        layers.append(lin)
    return ModelAdapter(
        model_id="synthetic-test-model",
        down_projs={"backbone": layers},
        token_matrix=lambda: tokens,
        decode_token=lambda i: VOCAB[i],
        random_weights=True,
    )
