"""Streaming value-vector projection: exact top/bottom-k, chunking, saved format, resume."""

from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn

from vla_steer_tools.errors import ConfigError
from vla_steer_tools.interp import projection as P
from vla_steer_tools.interp.projection import Projection, ProjectionOptions, project, topk_grouped, value_vectors


@pytest.mark.parametrize("vocab", [64 * 200, 64 * 200 + 37, 50])
@pytest.mark.parametrize("largest", [True, False])
def test_grouped_topk_is_exact(vocab, largest):
    logits = torch.randn(33, vocab, generator=torch.Generator().manual_seed(vocab))
    values, ids = topk_grouped(logits, 7, largest=largest)
    ref_values, ref_ids = logits.topk(7, dim=1, largest=largest)
    torch.testing.assert_close(values, ref_values, rtol=0, atol=0)
    assert torch.equal(ids, ref_ids)


def _brute_force(adapter, layer, k, final_norm=False):
    vectors = value_vectors(adapter, "backbone", layer, final_norm)  # (n, d)
    logits = vectors @ adapter.token_matrix().T  # (n, vocab): fine at test size
    return logits.topk(k, dim=1), logits.topk(k, dim=1, largest=False)


@pytest.mark.parametrize("final_norm", [False, True])
def test_projection_matches_brute_force(tiny_lm, tmp_path, final_norm):
    _, adapter = tiny_lm
    out = project(adapter, tmp_path / "p", ProjectionOptions(top_k=6, chunk_size=7, final_norm=final_norm))
    proj = Projection.load(out)
    for layer in range(3):
        (tv, ti), (bv, bi) = _brute_force(adapter, layer, 6, final_norm)
        assert torch.equal(proj.get("backbone", layer, "top_ids").long(), ti)
        assert torch.equal(proj.get("backbone", layer, "bottom_ids").long(), bi)
        torch.testing.assert_close(proj.get("backbone", layer, "top_scores"), tv, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(proj.get("backbone", layer, "bottom_scores"), bv, rtol=1e-5, atol=1e-5)
    m = proj.manifest
    assert m["model_id"] == adapter.model_id and m["random_weights"] is True
    assert m["components"]["backbone"] == {"n_layers": 3, "widths": [48, 48, 48]}
    assert m["options"]["final_norm"] is final_norm and "torch" in m["versions"]
    assert not (out / "shards").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_chunks_bound_memory(tiny_llama, tmp_path, monkeypatch):
    _, adapter = tiny_llama
    seen = []
    real = P.project_vectors
    monkeypatch.setattr(P, "project_vectors", lambda v, t, k: seen.append(tuple(v.shape)) or real(v, t, k))
    project(adapter, tmp_path / "p", ProjectionOptions(chunk_size=10))
    assert seen and max(rows for rows, _ in seen) <= 10
    assert sum(rows for rows, _ in seen) == 3 * 48
    seen.clear()
    vocab = adapter.token_matrix().shape[0]
    # chunk from a byte budget: 1 MiB of fp32 logits = 2730 rows of 96 tokens, capped by the layer
    project(adapter, tmp_path / "q", ProjectionOptions(chunk_mib=1))
    assert max(rows for rows, _ in seen) <= max(1, (1 << 20) // (vocab * 4))


def test_text_export_uses_paper_format_and_decoder(tmp_path):
    from core_synthetic import VOCAB, WIDTH, synthetic_adapter

    adapter = synthetic_adapter()
    adapter.decode_token = lambda i: f"[action: {i / 100:+.2f}]" if i >= 60 else VOCAB[i]
    out = project(adapter, tmp_path / "p", ProjectionOptions(top_k=4))
    lines = (out / "top_tokens.txt").read_text().splitlines()
    assert len(lines) == 4 * WIDTH
    assert all(re.fullmatch(r"\[\d+\] .+(, .+){3}", line) for line in lines)
    line = next(x for x in lines if x.startswith(f"[{1 * WIDTH + 5}] "))
    assert line == f"[{1 * WIDTH + 5}] Ġfast, ▁quickly, Speed, ĠFast"
    assert any("[action: +0.6" in x for x in lines)
    assert json.loads((out / "vocab.json").read_text())[63] == "[action: +0.63]"


def test_resume_recomputes_only_missing_layers(tiny_llama, tmp_path, monkeypatch):
    _, adapter = tiny_llama
    calls = []
    real = P.project_vectors

    def flaky(v, t, k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash in layer 2")
        return real(v, t, k)

    monkeypatch.setattr(P, "project_vectors", flaky)
    opts = ProjectionOptions(chunk_size=48)  # one chunk per layer
    with pytest.raises(KeyboardInterrupt):
        project(adapter, tmp_path / "p", opts)
    assert not (tmp_path / "p" / "manifest.json").exists()
    assert sorted(p.name for p in (tmp_path / "p" / "shards").iterdir()) == ["backbone.000.safetensors", "backbone.001.safetensors"]
    calls.clear()
    monkeypatch.setattr(P, "project_vectors", lambda v, t, k: calls.append(1) or real(v, t, k))
    project(adapter, tmp_path / "p", opts)
    assert len(calls) == 1
    fresh = project(adapter, tmp_path / "fresh", opts)
    assert len(calls) == 4
    a, b = Projection.load(tmp_path / "p"), Projection.load(fresh)
    assert a.tensors.keys() == b.tensors.keys() and all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    project(adapter, tmp_path / "p", opts)  # complete: nothing to do
    assert len(calls) == 4
    with pytest.raises(ConfigError, match="another projection"):
        project(adapter, tmp_path / "p", ProjectionOptions(top_k=3))


def test_bad_options(tiny_llama, tmp_path):
    _, adapter = tiny_llama
    with pytest.raises(ConfigError, match="layers 0..2"):
        project(adapter, tmp_path / "p", ProjectionOptions(layers=(5,)))
    with pytest.raises(ConfigError, match="unknown dtype"):
        project(adapter, tmp_path / "p", ProjectionOptions(dtype="int8"))
    with pytest.raises(ConfigError, match="unknown token matrix"):
        project(adapter, tmp_path / "p", ProjectionOptions(token_matrix="input"))
    with pytest.raises(ConfigError, match="not a finished projection"):
        Projection.load(tmp_path / "nothing")


def test_bf16_projection_close_to_fp32(tiny_llama, tmp_path):
    _, adapter = tiny_llama
    a = Projection.load(project(adapter, tmp_path / "a", ProjectionOptions(top_k=3)))
    b = Projection.load(project(adapter, tmp_path / "b", ProjectionOptions(top_k=3, dtype="bfloat16")))
    torch.testing.assert_close(b.get("backbone", 1, "top_scores"), a.get("backbone", 1, "top_scores"), rtol=0.05, atol=0.05)


def test_lora_delta_is_merged():
    class LoraLinear(nn.Linear):
        """Mimics peft's LoRA layer attributes (lora_A/lora_B/scaling/merged)."""

        def __init__(self):
            super().__init__(6, 4, bias=False)
            self.lora_A = nn.ModuleDict({"default": nn.Linear(6, 2, bias=False)})
            self.lora_B = nn.ModuleDict({"default": nn.Linear(2, 4, bias=False)})
            self.scaling = {"default": 0.5}
            self.merged = False

    from vla_steer_tools.models.base import ModelAdapter

    lin = LoraLinear()
    adapter = ModelAdapter("lora", {"backbone": [lin]}, lambda: torch.eye(4), str)
    expected = (lin.weight + 0.5 * lin.lora_B["default"].weight @ lin.lora_A["default"].weight).T
    torch.testing.assert_close(value_vectors(adapter, "backbone", 0, False), expected.detach())
    lin.merged = True
    torch.testing.assert_close(value_vectors(adapter, "backbone", 0, False), lin.weight.T.detach())
