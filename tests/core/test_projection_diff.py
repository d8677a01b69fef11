"""`vla-steer diff`: SmolLM2-135M against a copy with a few value vectors deliberately replaced must
find exactly those neurons; different architectures are refused with the reason."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from core_synthetic import synthetic_adapter
from vla_steer_tools.cli import main as cli_main
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.interp.projection import Projection, ProjectionOptions, project
from vla_steer_tools.interp.projection_diff import diff_projections, write_diff
from vla_steer_tools.models.hf_causal_lm import causal_lm_adapter
from vla_steer_tools.types import NeuronRef

LAYER = 25
ALTERED = (7, 400, 1300)  # neurons of layer 25 whose value vectors are replaced


def _synthetic(tmp_path, name, k=5):
    return Projection.load(project(synthetic_adapter(), tmp_path / name, ProjectionOptions(top_k=k)))


def test_identical_projections_show_no_change(tmp_path):
    a, b = _synthetic(tmp_path, "a"), _synthetic(tmp_path, "b")
    d = diff_projections(a, b)
    assert d.neurons == [] and all(r.mean_turnover == 0 for r in d.layers)
    assert float(d.z.abs().max()) == 0.0 and not d.with_weights
    with pytest.raises(ConfigError, match="need the two models' weights"):
        d.moved()


def test_different_architectures_are_refused(tmp_path, tiny_llama):
    a = _synthetic(tmp_path, "a")
    with pytest.raises(ConfigError, match="top-k differs"):
        diff_projections(a, _synthetic(tmp_path, "k6", k=6))
    other = Projection.load(project(tiny_llama[1], tmp_path / "llama", ProjectionOptions(top_k=5)))
    with pytest.raises(ConfigError, match="not the same architecture: FFN shapes differ"):
        diff_projections(a, other)
    code = cli_main.main(["diff", str(a.path), str(other.path), "--out", str(tmp_path / "o")])
    assert code == 2


@pytest.fixture(scope="module")
def altered(smollm2, tmp_path_factory):
    """A copy of SmolLM2 whose layer-25 neurons ALTERED now write 4 x the ' slow' token embedding."""
    model, tokenizer, adapter = smollm2
    clone = copy.deepcopy(model)
    clone_adapter = causal_lm_adapter(clone, tokenizer, model_id="smollm2-altered")
    slow = tokenizer.encode(" slow", add_special_tokens=False)
    assert len(slow) == 1
    emb = clone_adapter.token_matrix()[slow[0]].detach()  # (d,)
    down = clone_adapter.layers("backbone")[LAYER]
    with torch.no_grad():
        for n in ALTERED:
            down.weight[:, n] = 4.0 * emb / emb.norm() * down.weight[:, n].norm()
    out = tmp_path_factory.mktemp("altered") / "projection"
    proj = Projection.load(project(clone_adapter, out, ProjectionOptions(top_k=10, layers=(LAYER,))))
    yield clone_adapter, proj
    del clone


@pytest.mark.slow
def test_diff_finds_exactly_the_altered_neurons(smollm2, smollm2_projection, altered, tmp_path):
    _, _, base_adapter = smollm2
    clone_adapter, proj_b = altered
    d = diff_projections(smollm2_projection, proj_b, weights=(base_adapter, clone_adapter))
    assert d.compared == [("backbone", LAYER)]  # the only layer both projections cover
    want = {NeuronRef("backbone", LAYER, n) for n in ALTERED}
    moved = {NeuronRef(n.component, n.layer, n.index) for n in d.moved()}
    assert moved == want, moved
    assert {NeuronRef(n.component, n.layer, n.index) for n in d.neurons[: len(ALTERED)]} == want
    assert all(n.cosine < 0.5 and n.turnover > 0.5 for n in d.neurons[: len(ALTERED)])
    row = d.layers[0]
    assert row.moved_share == pytest.approx(len(ALTERED) / 1536) and row.changed_share == pytest.approx(len(ALTERED) / 1536)
    assert d.differing_token_texts == 0  # one tokenizer: every token prints the same
    gained = [t.text for t in d.top_tokens(5, gained=True)]
    assert " slow" in gained, gained
    assert d.top_tokens(1)[0].z > 10  # 3 neurons' worth of new presence stands far out of 49k tokens

    # without weights the turnover alone finds the same neurons
    d2 = diff_projections(smollm2_projection, proj_b)
    assert {NeuronRef(n.component, n.layer, n.index) for n in d2.neurons} == want

    files = write_diff(d, tmp_path / "out")
    assert all(f.is_file() for f in files)
    md = (tmp_path / "out" / "diff.md").read_text()
    assert f"backbone/L{LAYER}/N{ALTERED[0]}" in md and "' slow'" in md
    code = cli_main.main(["diff", str(smollm2_projection.path), str(proj_b.path), "--out", str(tmp_path / "cli")])
    assert code == 0
    data = json.loads((tmp_path / "cli" / "diff.json").read_text())
    assert {(n["layer"], n["index"]) for n in data["neurons"]} == {(LAYER, n) for n in ALTERED}
