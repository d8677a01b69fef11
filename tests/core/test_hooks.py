"""Steering hooks: exactness against hand-computed edits and the paper's recompute-the-matmul
semantics on tiny random Llama and Gemma models; position policy; live swaps; validation."""

from __future__ import annotations

import math
import threading

import pytest
import torch
import torch.nn.functional as F

from vla_steer_tools.errors import DirectionError
from vla_steer_tools.steering.directions import Direction
from vla_steer_tools.steering.hooks import FAMILY_DEFAULT, Steerer, SteeringConfig, resolve_position, steering
from vla_steer_tools.steering.probe import probing
from vla_steer_tools.types import NeuronRef


def _dir(name, refs, alpha=3.0, mode="override", signs=()):
    return Direction(name=name, neurons=tuple(NeuronRef("backbone", l, i) for l, i in refs), alpha=alpha, mode=mode, signs=signs)


def _logits(model, tokens):
    with torch.no_grad():
        return model(input_ids=tokens).logits


def _capture(adapter, layer):
    """Register hooks recording down_proj's input before any edit and as the module sees it."""
    seen = {}
    down = adapter.layers("backbone")[layer]
    h1 = down.register_forward_pre_hook(lambda m, a: seen.__setitem__("before", a[0].clone()))
    h2 = down.register_forward_hook(lambda m, a, out: seen.update(after=a[0].clone(), out=out.clone()))
    return seen, (h1, h2)


def _hand_edit(h, mode, idx, values):
    """The reference: an explicit per-neuron loop, nothing shared with the implementation."""
    ref = h.clone()
    for i, v in zip(idx, values):
        if mode == "override":
            ref[..., i] = v
        elif mode == "add":
            ref[..., i] = h[..., i] + v
        else:
            ref[..., i] = h[..., i] * v
    return ref


@pytest.mark.parametrize("mode", ["override", "add", "scale"])
def test_edit_matches_hand_reference(tiny_lm, tokens, mode):
    model, adapter = tiny_lm
    idx, signs, alpha = [3, 17, 40], (1.0, -1.0, 1.0), 2.5
    seen, handles = _capture(adapter, layer=1)
    try:
        with steering(adapter, _dir("d", [(1, i) for i in idx], alpha, mode, signs)) as s:
            _logits(model, tokens)
            assert s.steered
    finally:
        for h in handles:
            h.remove()
    values = [alpha * s for s in signs] if mode != "scale" else [alpha] * 3
    expected = _hand_edit(seen["before"], mode, idx, values)
    assert not torch.equal(seen["before"], expected)
    torch.testing.assert_close(seen["after"], expected, rtol=0, atol=0)
    weight = adapter.layers("backbone")[1].weight
    torch.testing.assert_close(seen["out"], F.linear(expected, weight), rtol=1e-6, atol=1e-6)


def test_prehook_equals_paper_recompute_semantics(tiny_lm, tokens):
    """The paper hooks down_proj's *output* and recomputes the matmul with an overwritten input."""
    model, adapter = tiny_lm
    chosen = {0: [1, 5], 2: [7, 30, 31]}
    alpha = 4.0

    def recompute_hook(layer):
        def hook(module, args, out):
            h = args[0].clone()
            h[..., chosen[layer]] = alpha
            return F.linear(h, module.weight, module.bias)

        return hook

    handles = [adapter.layers("backbone")[l].register_forward_hook(recompute_hook(l)) for l in chosen]
    try:
        paper = _logits(model, tokens)
    finally:
        for h in handles:
            h.remove()
    direction = _dir("d", [(l, i) for l, ids in chosen.items() for i in ids], alpha)
    with steering(adapter, direction):
        ours = _logits(model, tokens)
    plain = _logits(model, tokens)
    torch.testing.assert_close(ours, paper, rtol=1e-5, atol=1e-5)
    assert (ours - plain).abs().max() > 1e-3, "steering changed nothing"


def test_hooks_removed_on_exit_and_on_exception(tiny_llama, tokens):
    model, adapter = tiny_llama
    downs = adapter.layers("backbone")
    plain = _logits(model, tokens)
    with pytest.raises(RuntimeError, match="boom"):
        with steering(adapter, _dir("d", [(0, 1)])):
            assert all(len(m._forward_pre_hooks) == 1 for m in downs)
            raise RuntimeError("boom")
    assert all(len(m._forward_pre_hooks) == 0 for m in downs)
    torch.testing.assert_close(_logits(model, tokens), plain, rtol=0, atol=0)


def test_disabled_is_identity_and_probe_reads(tiny_llama, tokens):
    model, adapter = tiny_llama
    plain = _logits(model, tokens)
    d = _dir("d", [(2, 4), (2, 9), (0, 11)])
    seen2, handles = _capture(adapter, layer=2)
    seen0, handles0 = _capture(adapter, layer=0)
    try:
        with probing(adapter, [d]) as probe:
            out = _logits(model, tokens)
            stats = probe.activations()["d"]
    finally:
        for h in handles + handles0:
            h.remove()
    torch.testing.assert_close(out, plain, rtol=0, atol=0)
    vals = torch.cat([seen2["before"][..., [4, 9]].reshape(-1), seen0["before"][..., 11].reshape(-1)])
    assert stats.count == vals.numel() and not stats.steered
    assert math.isclose(stats.mean, vals.mean().item(), rel_tol=1e-5, abs_tol=1e-6)
    assert math.isclose(stats.max, vals.max().item(), rel_tol=1e-6)


def test_probe_reports_pre_edit_values(tiny_llama, tokens):
    model, adapter = tiny_llama
    seen, handles = _capture(adapter, layer=1)
    try:
        with steering(adapter, _dir("d", [(1, 2)], alpha=50.0)) as s:
            _logits(model, tokens)
            stat = s.activations()["d"]
    finally:
        for h in handles:
            h.remove()
    assert stat.steered and stat.max < 50.0
    assert math.isclose(stat.max, seen["before"][..., 2].max().item(), rel_tol=1e-6)


def test_position_policy_prefill_and_decode(tiny_llama, tokens):
    model, adapter = tiny_llama
    d = _dir("d", [(0, 3), (1, 8)], alpha=6.0)
    plain = _logits(model, tokens)
    with steering(adapter, d) as s:
        steered = _logits(model, tokens)
    for position, expect in (("prefill", (steered, plain, plain)), ("decode", (plain, steered, steered))):
        with steering(adapter, d, position=position) as s:
            for want in expect:
                torch.testing.assert_close(_logits(model, tokens), want, rtol=0, atol=0)
            s.begin_inference()  # a new inference starts with a prefill again
            torch.testing.assert_close(_logits(model, tokens), expect[0], rtol=0, atol=0)


def test_unset_position_is_the_family_default(tiny_llama, tokens):
    """An unset position ("") runs the adapter's default_position: "all" when the family declares
    none, "prefill" for a prefill family (as pi0fast); an explicit position still wins."""
    from dataclasses import replace

    model, adapter = tiny_llama
    prefill_family = replace(adapter, extra={**adapter.extra, "default_position": "prefill"})
    d = _dir("d", [(0, 3), (1, 8)], alpha=6.0)
    plain = _logits(model, tokens)
    with steering(adapter, d, position="all"):
        steered = _logits(model, tokens)
    assert not torch.equal(steered, plain)  # the direction does something on this model
    assert SteeringConfig().position == FAMILY_DEFAULT == ""
    assert adapter.default_position == "all" and resolve_position(adapter) == "all"
    assert resolve_position(prefill_family) == "prefill" and resolve_position(prefill_family, "all") == "all"
    cases = ((adapter, FAMILY_DEFAULT, (steered, steered)), (prefill_family, FAMILY_DEFAULT, (steered, plain)),
             (prefill_family, "all", (steered, steered)))
    for where, position, expect in cases:
        with Steerer(where, SteeringConfig((d,), enabled=True, position=position)) as s:
            assert s.config.position == position  # kept as asked; `position` says what runs
            assert s.position == resolve_position(where, position)
            s.begin_inference()
            for want in expect:
                torch.testing.assert_close(_logits(model, tokens), want, rtol=0, atol=0)
    with steering(prefill_family, d) as s:  # the context manager's default is the family's too
        assert s.position == "prefill"


def test_bad_positions_are_refused(tiny_llama):
    from dataclasses import replace

    _, adapter = tiny_llama
    with pytest.raises(DirectionError, match="unknown position policy 'middle'.*empty for the model family"):
        Steerer(adapter, SteeringConfig(position="middle"))
    broken = replace(adapter, extra={**adapter.extra, "default_position": "sometimes"})
    with pytest.raises(DirectionError, match="declares default position policy 'sometimes'"):
        resolve_position(broken)


def test_several_concepts_merge_in_order(tiny_llama, tokens):
    model, adapter = tiny_llama
    seen, handles = _capture(adapter, layer=1)
    a = _dir("a", [(1, 5), (1, 6)], alpha=2.0, mode="override")
    b = _dir("b", [(1, 5), (2, 1)], alpha=0.5, mode="add")
    c = _dir("c", [(1, 6)], alpha=3.0, mode="scale")
    try:
        with Steerer(adapter, SteeringConfig((a, b, c), enabled=True)) as s:
            s.begin_inference()
            _logits(model, tokens)
            stats = s.activations()
    finally:
        for h in handles:
            h.remove()
    assert set(stats) == {"a", "b", "c"}
    after = seen["after"]
    assert torch.all(after[..., 5] == 2.5) and torch.all(after[..., 6] == 6.0)


def test_swap_from_another_thread_without_reregistering(tiny_llama, tokens):
    model, adapter = tiny_llama
    downs = adapter.layers("backbone")
    d = _dir("d", [(1, 4)], alpha=1.0)
    seen, handles = _capture(adapter, layer=1)
    try:
        with Steerer(adapter, SteeringConfig((d,), enabled=True)) as s:
            hook_ids = [list(m._forward_pre_hooks) for m in downs]
            for alpha in (7.0, -3.0):
                t = threading.Thread(target=s.apply, args=(SteeringConfig((d.with_options(alpha=alpha),), enabled=True),))
                t.start()
                t.join(timeout=10)
                s.begin_inference()
                _logits(model, tokens)
                assert torch.all(seen["after"][..., 4] == alpha)
            s.apply(SteeringConfig((d,), enabled=False))
            _logits(model, tokens)
            torch.testing.assert_close(seen["after"], seen["before"], rtol=0, atol=0)
            assert [list(m._forward_pre_hooks) for m in downs][0][-1] == hook_ids[0][-1]
            index_tensor = s._plan.layers[("backbone", 1)].probe_index
            assert index_tensor.device == downs[1].weight.device
    finally:
        for h in handles:
            h.remove()


def test_bf16_model(tokens):
    from transformers import LlamaConfig, LlamaForCausalLM

    from vla_steer_tools.models.hf_causal_lm import causal_lm_adapter

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=8)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    adapter = causal_lm_adapter(model, model_id="tiny-bf16", random_weights=True)
    seen, handles = _capture(adapter, layer=0)
    try:
        with steering(adapter, _dir("d", [(0, 2)]), alpha=1.5):
            _logits(model, tokens)
    finally:
        for h in handles:
            h.remove()
    assert seen["after"].dtype == torch.bfloat16 and torch.all(seen["after"][..., 2] == 1.5)


@pytest.mark.parametrize(
    "direction, config_kw, message",
    [
        (_dir("d", [(0, 48)]), {}, "out of range"),
        (_dir("d", [(3, 0)]), {}, "layer 3 out of range"),
        (_dir("d", [(0, 1)], alpha=float("nan")), {}, "alpha must be finite"),
        (_dir("d", [(0, 1)], alpha=float("inf")), {}, "alpha must be finite"),
        (_dir("d", [(0, 1)], mode="clamp"), {}, "unknown mode 'clamp'"),
        (_dir("d", [(0, 1)]), {"position": "middle"}, "unknown position policy 'middle'"),
        (Direction("e", (NeuronRef("action_expert", 0, 1),)), {}, "unknown component 'action_expert'"),
        (Direction("s", (NeuronRef("backbone", 0, 1),), model_shapes=(("backbone", 32, 11008),)), {}, "different model"),
        (Direction("z", ()), {}, "no neurons"),
        (_dir("d", [(0, 1), (0, 2)], signs=(1.0,)), {}, "1 signs for 2 neurons"),
    ],
)
def test_bad_directions_are_refused_and_leave_no_hooks(tiny_llama, direction, config_kw, message):
    _, adapter = tiny_llama
    with pytest.raises(DirectionError, match=message):
        Steerer(adapter, SteeringConfig((direction,), enabled=True, **config_kw))
    with Steerer(adapter) as s:
        with pytest.raises(DirectionError, match=message):
            s.apply(SteeringConfig((direction,), enabled=True, **config_kw))
        assert s.config.directions == ()
    assert all(len(m._forward_pre_hooks) == 0 for m in adapter.layers("backbone"))


def test_steering_alpha_nan_and_duplicate_names(tiny_llama):
    _, adapter = tiny_llama
    with pytest.raises(DirectionError, match="alpha must be finite"):
        with steering(adapter, _dir("d", [(0, 1)]), alpha=float("nan")):
            pass
    with pytest.raises(DirectionError, match="more than once"):
        Steerer(adapter, SteeringConfig((_dir("d", [(0, 1)]), _dir("d", [(0, 2)])), enabled=True))
