"""pi0-FAST runtime on the tiny LeRobot-format fixture: loading, the FAST/DCT decode against
hand-computed transforms, normalisation by hand, strict decode errors, prefill-only steering,
bad checkpoints."""

from __future__ import annotations

import json
import logging
import math
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vla_steer_tools.errors import CheckpointError
from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint, tiny_observation
from vla_steer_tools.fixtures.tiny_pi0fast import (
    INSTRUCTIONS, coefficient_string, steering_direction, write_fast_tokenizer,
)
from vla_steer_tools.models.pi0fast.config import from_lerobot_key, to_lerobot_key
from vla_steer_tools.models.pi0fast.fast_tokenizer import FastDecodeError, FastTokenizer
from vla_steer_tools.models.pi0fast.prompt import build_prompt, discretize_state
from vla_steer_tools.models.registry import load_policy
from vla_steer_tools.steering.directions import Direction
from vla_steer_tools.steering.hooks import Steerer, SteeringConfig
from vla_steer_tools.types import NeuronRef

TASKS = ("turn on the stove", "put the cream cheese in the basket", "move the mug to the left")


@pytest.fixture(scope="module")
def pf_dir(tmp_path_factory):
    return ensure_tiny_checkpoint("pi0fast", tmp_path_factory.mktemp("tiny_pi0fast"))


@pytest.fixture(scope="module")
def policy(pf_dir):
    return load_policy("pi0fast", pf_dir, device="cpu")


def obs(seed: int = 0, task: str = TASKS[0]):
    state = np.random.default_rng(seed).uniform(-0.1, 0.1, 8).astype(np.float32)
    return tiny_observation(seed=seed, instruction=task, state=state, size=64)


def hand_idct(coeff: np.ndarray) -> np.ndarray:
    """Orthonormal DCT-III over axis 0 written out: x[n] = sum_k a_k c[k] cos(pi (2n+1) k / 2N)."""
    n_steps = coeff.shape[0]
    out = np.zeros_like(coeff, dtype=np.float64)
    for n in range(n_steps):
        for k in range(n_steps):
            a = math.sqrt((1 if k == 0 else 2) / n_steps)
            out[n] += a * coeff[k] * math.cos(math.pi * (2 * n + 1) * k / (2 * n_steps))
    return out


def test_loads_with_tied_embedding_and_fast_token_names(policy, pf_dir):
    adapter = policy.adapter
    assert adapter.random_weights and adapter.components == ("backbone",)
    assert adapter.width("backbone", 1) == 128 and adapter.extra["default_position"] == "prefill"
    assert adapter.token_matrix().shape == (2048, 64)
    assert policy.model.lm_head.weight.data_ptr() == adapter.token_matrix().data_ptr()  # tied
    lo, hi = adapter.extra["fast_token_ids"]
    assert (lo, hi) == (2048 - 1 - 128 - 255, 2048 - 1 - 128)
    assert adapter.decode_token(hi) == "[fast: 0]" and adapter.decode_token(lo) == "[fast: 255]"
    assert not adapter.decode_token(100).startswith("[fast")
    stored = load_file(str(pf_dir / "model.safetensors"))
    state = policy.model.state_dict()
    for key, value in stored.items():
        assert torch.equal(state[from_lerobot_key(key)], value), key
        assert to_lerobot_key(from_lerobot_key(key)) == key


def test_deterministic_whole_chunk_that_depends_on_the_input(policy):
    first, second = policy.infer(obs(1)), policy.infer(obs(1))
    assert first.actions.shape == (2, 7) and first.actions.dtype == np.float32
    assert np.array_equal(first.actions, second.actions)
    other = policy.infer(obs(1, TASKS[1]))
    assert not np.allclose(other.actions, first.actions)


def test_dct_decode_matches_hand_computed_inverse(tmp_path):
    rng = np.random.default_rng(0)
    chunks = [rng.uniform(-1, 1, (4, 3)) for _ in range(40)]
    tok = FastTokenizer.from_dir(write_fast_tokenizer(tmp_path / "fast", [coefficient_string(c) for c in chunks[:30]],
                                                      vocab_size=300))
    assert tok.tokenizer.get_vocab_size() > 256  # merges: some ids stand for several coefficients
    multi = 0
    for chunk in chunks:
        ids = tok.encode(chunk)
        multi += len(ids) < chunk.size
        coeff = np.around(np.asarray(tok.quantize(chunk), dtype=np.float64))
        np.testing.assert_array_equal(tok.coefficients(ids, 4, 3), coeff)
        decoded = tok.decode(ids, 4, 3)
        np.testing.assert_allclose(decoded, hand_idct(coeff / tok.scale), atol=1e-12)
        # quantisation error: each coefficient off by <= 0.5/scale, the orthonormal inverse keeps norms
        assert np.linalg.norm(decoded - chunk, axis=0).max() <= 0.5 / tok.scale * math.sqrt(4) + 1e-9
    assert multi > 0


def test_strict_decode_errors(policy, tmp_path):
    vocab, fast = policy.vocab, policy.fast
    codes = fast.encode(np.zeros((2, 7)))
    ids = list(vocab.prefix_ids) + [vocab.to_text(c) for c in codes] + [vocab.end_id]
    assert vocab.action_codes(ids) == codes
    with pytest.raises(FastDecodeError, match="end-of-action"):
        vocab.action_codes(ids[:-1])
    with pytest.raises(FastDecodeError, match="neither FAST codes"):
        vocab.action_codes(ids[:-1] + [5, vocab.end_id])
    with pytest.raises(FastDecodeError, match="needs 14"):
        fast.decode(codes[:-1], 2, 7)


def test_incomplete_generation_is_a_logged_error(pf_dir, caplog):
    short = load_policy("pi0fast", pf_dir, device="cpu", max_decoding_steps=5)
    with caplog.at_level(logging.ERROR), pytest.raises(FastDecodeError):
        short.infer(obs(2))
    assert "no action" in caplog.text


def test_normalisation_and_prompt_by_hand(policy, pf_dir):
    stats = load_file(str(pf_dir / "policy_preprocessor_step_3_normalizer_processor.safetensors"))
    q01, q99 = stats["observation.state.q01"].numpy(), stats["observation.state.q99"].numpy()
    o = obs(3)
    norm = 2 * (o.state - q01) / (q99 - q01) - 1
    bins = [int(np.sum(v >= np.linspace(-1, 1, 257)[:-1])) - 1 for v in norm]
    assert discretize_state(norm).tolist() == bins
    assert build_prompt("turn_on\nthe stove ", norm) == f"Task: turn on the stove, State: {' '.join(map(str, bins))};\n"
    pixels, ids = policy.prepare(o)
    text = policy.tokenizer(build_prompt(o.instruction, norm)).input_ids
    assert ids[0].tolist() == list(text) + [policy.tokenizer.bos_token_id]
    codes = policy.vocab.action_codes(policy.generate(pixels, ids))
    raw = policy.fast.decode(codes, 2, 7)
    a01, a99 = stats["action.q01"].numpy(), stats["action.q99"].numpy()
    np.testing.assert_allclose(policy.infer(o).actions, (raw + 1) * (a99 - a01) / 2 + a01, rtol=1e-6, atol=1e-6)


def _direction(alpha: float = 10.0) -> Direction:
    neurons = tuple(NeuronRef("backbone", layer, i) for layer in (0, 1) for i in range(0, 128, 2))
    return Direction(name="push", neurons=neurons, alpha=alpha)


def test_prefill_steering_changes_whole_chunks_and_removal_restores_them(policy):
    """The fixture's trained-in direction, at the family's default position (prefill): for every
    instruction a whole, validly decoded chunk whose every row differs; the same config with
    steering disabled, and closing the hooks, give the unsteered chunks bit for bit."""
    baseline = {t: policy.infer(obs(4, t)).actions for t in INSTRUCTIONS}
    config = SteeringConfig(directions=(steering_direction(),), enabled=True)  # no position: prefill
    with Steerer(policy.adapter, config) as steerer:
        assert steerer.position == "prefill"
        for t in INSTRUCTIONS:
            steerer.begin_inference()
            steered = policy.infer(obs(4, t)).actions  # a FastDecodeError here fails the test
            assert steerer.steered
            assert steered.shape == baseline[t].shape and np.all(np.isfinite(steered))
            changed_rows = [not np.array_equal(steered[r], baseline[t][r]) for r in range(steered.shape[0])]
            assert all(changed_rows), (t, steered, baseline[t])
        steerer.apply(config.replace(enabled=False))  # hooks in place, edits off: nothing changes
        for t in INSTRUCTIONS:
            steerer.begin_inference()
            assert np.array_equal(policy.infer(obs(4, t)).actions, baseline[t]) and not steerer.steered
    for t in INSTRUCTIONS:
        assert np.array_equal(policy.infer(obs(4, t)).actions, baseline[t])


@pytest.mark.parametrize("position", [None, "", "prefill", "all"])
def test_prefill_only_leaves_decode_steps_unedited(policy, position):
    """No position given (None: SteeringConfig's default; "": the node's) = this family's prefill."""
    direction = _direction(alpha=7.5)
    index = torch.tensor([n.index for n in direction.neurons if n.layer == 1])
    seen: list[torch.Tensor] = []
    config = SteeringConfig(directions=(direction,), enabled=True)
    steerer = Steerer(policy.adapter, config if position is None else config.replace(position=position))
    assert steerer.position == ("all" if position == "all" else "prefill")
    probe = policy.adapter.layers("backbone")[1].register_forward_pre_hook(
        lambda m, args: seen.append(args[0][0, -1, index].clone()))  # runs after the steering hook
    try:
        steerer.begin_inference()
        pixels, ids = policy.prepare(obs(5))
        policy.generate(pixels, ids)
    finally:
        probe.remove()
        steerer.close()
    assert len(seen) > 2  # one prefill + decode steps
    assert torch.all(seen[0] == 7.5)
    decode_edited = [bool(torch.all(s == 7.5)) for s in seen[1:]]
    assert all(decode_edited) if position == "all" else not any(decode_edited)


def test_project_cli_prints_fast_tokens(policy, pf_dir, tmp_path, capsys):
    """`vla-steer project --family pi0fast` end to end on the fixture: FAST ids read `[fast: N]`
    in the vocabulary and the top-token lists, and the lists follow E @ value vector by hand."""
    from vla_steer_tools.cli.main import main

    out = tmp_path / "proj"
    assert main(["project", "--family", "pi0fast", "--model", str(pf_dir), "--out", str(out), "--device", "cpu",
                 "--top-k", "5", "--no-token-matrix-copy"]) == 0
    assert "RANDOM weights" in capsys.readouterr().out
    vocab = json.loads((out / "vocab.json").read_text())
    lo, hi = policy.adapter.extra["fast_token_ids"]
    assert vocab[lo:hi + 1] == [f"[fast: {hi - i}]" for i in range(lo, hi + 1)]
    assert not any(t.startswith("[fast") for t in vocab[:lo] + vocab[hi + 1:])
    lines = (out / "top_tokens.txt").read_text().splitlines()
    assert len(lines) == 2 * 128 and sum("[fast: " in line for line in lines) > 64
    logits = policy.adapter.token_matrix() @ policy.adapter.value_vectors("backbone", 1).T  # (vocab, 128)
    top = logits.argmax(0)  # each layer-1 neuron's top token
    fast_top = [i for i in range(128) if lo <= int(top[i]) <= hi]
    assert fast_top  # some neuron of this fixture writes a FAST code first
    for i in fast_top:
        assert lines[128 + i].startswith(f"[{128 + i}] [fast: {hi - int(top[i])}]"), lines[128 + i]


def _copy(pf_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(pf_dir, bad)
    return bad


def test_checkpoint_errors_name_the_bad_keys(pf_dir, tmp_path):
    bad = _copy(pf_dir, tmp_path)
    state = load_file(str(bad / "model.safetensors"))
    gone = "model.paligemma_with_expert.paligemma.model.language_model.layers.1.mlp.down_proj.weight"
    del state[gone]
    state["model.paligemma_with_expert.paligemma.model.extra_thing.weight"] = torch.zeros(2)
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError) as err:
        load_policy("pi0fast", bad, device="cpu")
    assert gone in str(err.value) and "extra_thing" in str(err.value)
    state = load_file(str(pf_dir / "model.safetensors"))
    state["model.paligemma_with_expert.paligemma.lm_head.weight"] = state[
        "model.paligemma_with_expert.paligemma.lm_head.weight"] + 1
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match="lm_head.weight and .*embed_tokens.weight differ"):
        load_policy("pi0fast", bad, device="cpu")
    save_file({k: v for k, v in state.items() if "lm_head" not in k}, str(bad / "model.safetensors"))
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "type": "pi0fast"}))
    with pytest.raises(Exception, match="pre-0.4 LeRobot 'pi0fast'"):
        load_policy("pi0fast", bad, device="cpu")
