"""The causal-LM adapter and loader: layout errors, missing checkpoints, adapter contents."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vla_steer_tools.errors import CheckpointError, ModelLayoutError
from vla_steer_tools.models.hf_causal_lm import causal_lm_adapter, decoder_adapter, load_causal_lm


def test_adapter_of_tiny_models(tiny_lm):
    model, adapter = tiny_lm
    assert adapter.components == ("backbone",) and len(adapter.layers("backbone")) == 3
    assert adapter.width("backbone", 2) == 48 and adapter.extra["d_model"] == [32]
    assert adapter.token_matrix().shape == (96, 32)
    assert adapter.token_matrix().data_ptr() == model.get_output_embeddings().weight.data_ptr()
    assert adapter.final_norm is model.get_decoder().norm


def test_unknown_layouts_are_named():
    with pytest.raises(ModelLayoutError, match="no decoder `.layers`"):
        causal_lm_adapter(nn.Linear(2, 2))
    layer = nn.Module()
    layer.mlp = nn.Module()
    layer.mlp.down_proj = nn.Conv1d(2, 2, 1)
    with pytest.raises(ModelLayoutError, match=r"backbone.layers\[0\].mlp.down_proj is not an nn.Linear"):
        decoder_adapter("m", {"backbone": [layer]}, lambda: torch.zeros(1, 2), str)
    with pytest.raises(ModelLayoutError, match="has no decoder layers"):
        decoder_adapter("m", {"backbone": []}, lambda: torch.zeros(1, 2), str)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_causal_lm(str(tmp_path / "nope"))
    with pytest.raises(CheckpointError, match="cannot load a causal LM"):
        load_causal_lm(str(tmp_path))
