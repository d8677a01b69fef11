"""Policy inference latency per model family, unsteered vs steered (ratio measured in one run).

Default: the tiny RANDOM-WEIGHT test fixtures on this machine (seconds). Options:
  --full         random-weight models with the real shapes (OpenVLA-7B: DINOv2-L + SigLIP-so400m +
                 Llama-2-7B; Pi0: SigLIP + Gemma-2B + Gemma-300M expert, 50-step chunk; pi0-FAST:
                 SigLIP-so400m + Gemma-2B, 18 layers x 16384 FFN neurons, width 2048, vocab 257,152,
                 one prefill + a fixed number of KV-cached decode steps), bf16 on CUDA; compares
                 against the public figures (RTX 4090: OpenVLA ~6 Hz, Pi0 ~73 ms/chunk).
  --shapes-only  build the real-shape models on the meta device and count parameters / FFN neurons
                 (no memory, no GPU): checks the shape tables against the published sizes.
Steering = one direction of 10 neurons spread over the backbone's layers, override alpha 10, at
the family's own position policy (every forward pass for OpenVLA/Pi0, the paper's OpenVLA
setting; the prompt pass only for pi0fast). The three modes (no hooks, idle hooks, steered)
run round-robin so background load hits all alike.

Why pi0fast --full times a fixed token budget: with random weights the model never emits FAST's
end marker, so `infer` would always run to `max_decoding_steps` and then refuse the decode. The
full shape therefore times `generate` (vision + prefill + `--pi0fast-tokens` decode steps, the
part that costs); a trained checkpoint stops at the end marker, after about as many tokens as its
chunk needs. Its text tokenizer is a filler Gemma-layout vocabulary of the real size (257,152,
written next to the fixture), so the FAST id range sits where PaliGemma's does.

    tools/env.sh python bench/bench_policy_latency.py [--family openvla pi0 pi0fast] [--iters 20] [--full|--shapes-only]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vla_steer_tools.fixtures.tiny_checkpoints import ensure_tiny_checkpoint, tiny_observation
from vla_steer_tools.models.registry import load_policy
from vla_steer_tools.steering.directions import Direction
from vla_steer_tools.steering.hooks import Steerer, SteeringConfig
from vla_steer_tools.types import NeuronRef

#: Public reference figures (RTX 4090, bf16) quoted by the issue.
REFERENCE = {"openvla": "about 6 Hz (167 ms) per action", "pi0": "about 73 ms per 50-step chunk",
             "pi0fast": "none quoted (the FAST paper reports pi0-FAST slower than pi0: one forward per token)"}
#: Published parameter counts, for --shapes-only (pi0fast: PaliGemma-3B = SigLIP-so400m + Gemma-2B).
PUBLISHED_PARAMS = {"openvla": 7.54e9, "pi0": 3.5e9, "pi0fast": 2.92e9}
FAMILY_CHOICES = ("openvla", "pi0", "pi0fast")

OPENVLA_7B = {
    "model_type": "openvla", "use_fused_vision_backbone": True, "image_sizes": [224, 224],
    "timm_model_ids": ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"],
    "text_config": {"model_type": "llama", "vocab_size": 32064, "pad_token_id": 32000},  # Llama-2-7B defaults
    "pad_to_multiple_of": 64, "pad_token_id": 32000, "n_action_bins": 256,
}
PI0_FULL = {"paligemma_variant": "gemma_2b", "action_expert_variant": "gemma_300m", "chunk_size": 50,
            "max_state_dim": 32, "max_action_dim": 32, "num_inference_steps": 10, "image_resolution": [224, 224]}
#: LeRobot pi0_fast with its published backbone (models/pi0fast/config.py VARIANTS["gemma_2b"]:
#: Gemma-2B 18 x 2048 wide, FFN 16384, vocab 257,152; SigLIP so400m 27 x 1152, patch 14).
PI0FAST_FULL = {"paligemma_variant": "gemma_2b", "chunk_size": 50, "n_action_steps": 50, "image_resolution": [224, 224]}
PI0FAST_VOCAB = 257152
#: Decode steps timed per pi0fast full-shape inference (see the module docstring).
PI0FAST_TOKENS = 64


def spread_direction(adapter, n: int = 10, alpha: float = 10.0) -> Direction:
    """n neurons spread evenly over the backbone's layers (like the paper's all-layer pools)."""
    layers = adapter.layers("backbone")
    picks = [(int(i * len(layers) / n), (97 * i) % int(layers[0].in_features)) for i in range(n)]
    return Direction(name="bench", neurons=tuple(NeuronRef("backbone", l, j) for l, j in picks), alpha=alpha)


def _timed(run, obs) -> float:
    start = time.perf_counter()
    run(obs)
    return time.perf_counter() - start


def measure(name: str, policy, iters: int, warmup: int, run=None, horizon: int | None = None) -> dict:
    """Median seconds per inference in three interleaved modes (round-robin, so background load
    hits all alike): no hooks; hooks registered but idle (how SteeredPolicy runs unsteered);
    steering on. `run(obs)` is what is timed (default `policy.infer`); `horizon` the chunk length
    it stands for (default: that of one `policy.infer`)."""
    run = run or policy.infer
    obs = tiny_observation(seed=0)
    direction = spread_direction(policy.adapter)
    on = SteeringConfig(directions=(direction,), enabled=True, probe=False)  # the family's own position
    off = on.replace(enabled=False)
    for _ in range(warmup):
        _timed(run, obs)
    times: dict[str, list[float]] = {"bare": [], "idle": [], "steered": []}
    for _ in range(iters):
        times["bare"].append(_timed(run, obs))
        with Steerer(policy.adapter, off) as steerer:
            steerer.begin_inference()
            times["idle"].append(_timed(run, obs))
            steerer.apply(on)
            steerer.begin_inference()
            times["steered"].append(_timed(run, obs))
            position = steerer.position
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": name, "bare_ms": 1e3 * med["bare"], "idle_ms": 1e3 * med["idle"],
            "steered_ms": 1e3 * med["steered"], "ratio": med["steered"] / med["bare"], "hz": 1 / med["bare"],
            "horizon": horizon if horizon is not None else policy.infer(obs).horizon, "n": iters,
            "position": position}


def print_rows(rows: list[dict], device: str) -> None:
    print(f"\ndevice: {device}; median of n interleaved inferences; ratio = steered / no hooks")
    print(f"{'model':<40}{'n':>4}{'no hooks ms':>13}{'idle hooks ms':>15}{'steered ms':>12}{'ratio':>8}"
          f"{'Hz':>8}{'horizon':>9}  steered at")
    for r in rows:
        print(f"{r['model']:<40}{r['n']:>4}{r['bare_ms']:>13.2f}{r['idle_ms']:>15.2f}{r['steered_ms']:>12.2f}"
              f"{r['ratio']:>8.3f}{r['hz']:>8.2f}{r['horizon']:>9}  {r['position']}")


# ----------------------------------------------------------------------------- real shapes


def _full_openvla(device: str, tokenizer_dir: Path):
    from transformers import AutoTokenizer

    from vla_steer_tools.models.loading import default_dtype
    from vla_steer_tools.models.openvla.config import OpenVLAConfig
    from vla_steer_tools.models.openvla.modeling import OpenVLAForActionPrediction
    from vla_steer_tools.models.openvla.policy import OpenVLAPolicy
    from vla_steer_tools.models.openvla.processing import ActionDecoder, ImageTransform

    stats = OpenVLAConfig.from_dir(tokenizer_dir).norm_stats
    config = OpenVLAConfig.from_dict({**OPENVLA_7B, "norm_stats": stats})
    with torch.device(device), default_dtype(torch.bfloat16):
        model = OpenVLAForActionPrediction(config).eval()
    return OpenVLAPolicy(model, AutoTokenizer.from_pretrained(str(tokenizer_dir)), ImageTransform.for_checkpoint(config, None),
                         ActionDecoder(config, None), "random-openvla-7b-shapes", random_weights=True)


def _full_pi0(device: str, fixture_dir: Path):
    import json

    from transformers import AutoTokenizer, PI0ForConditionalGeneration

    from vla_steer_tools.models.loading import default_dtype
    from vla_steer_tools.models.pi0 import Normalizer, Pi0Policy, build_pi0_config

    lerobot = {**json.loads((fixture_dir / "config.json").read_text()), **PI0_FULL}
    with torch.device(device), default_dtype(torch.bfloat16):
        model = PI0ForConditionalGeneration(build_pi0_config(lerobot)).eval()
    identity = Normalizer("IDENTITY", {})
    return Pi0Policy(model, AutoTokenizer.from_pretrained(str(fixture_dir / "tokenizer")), lerobot, identity, identity,
                     "random-pi0-shapes", random_weights=True)


def pi0fast_full_settings(fixture_dir: Path):
    """The fixture's LeRobot config with the published backbone, as checked Pi0FastSettings."""
    import json

    from vla_steer_tools.models.pi0fast.config import Pi0FastSettings

    return Pi0FastSettings.from_lerobot({**json.loads((fixture_dir / "config.json").read_text()), **PI0FAST_FULL})


def _full_pi0fast(device: str, fixture_dir: Path, tokens: int = PI0FAST_TOKENS):
    """Random-weight pi0-FAST of the real shape; its tokenizers and statistics from the fixture,
    the text tokenizer re-written with the real vocabulary size (filler pieces, PaliGemma layout)."""
    from transformers import AutoTokenizer, PaliGemmaForConditionalGeneration

    from vla_steer_tools.fixtures.tokenizers import write_gemma_tokenizer
    from vla_steer_tools.models.loading import default_dtype
    from vla_steer_tools.models.pi0fast.config import paligemma_config
    from vla_steer_tools.models.pi0fast.fast_tokenizer import FastTokenizer
    from vla_steer_tools.models.pi0fast.normalize import FeatureNormalizer
    from vla_steer_tools.models.pi0fast.policy import Pi0FastPolicy

    settings = pi0fast_full_settings(fixture_dir)
    text_dir = fixture_dir.parent / f"gemma-tokenizer-{PI0FAST_VOCAB}"
    if not (text_dir / "tokenizer.json").is_file():
        write_gemma_tokenizer(text_dir, size=PI0FAST_VOCAB)
    with torch.device(device), default_dtype(torch.bfloat16):
        model = PaliGemmaForConditionalGeneration(paligemma_config(settings)).eval()
    identity = FeatureNormalizer("IDENTITY", {})
    return Pi0FastPolicy(model, AutoTokenizer.from_pretrained(str(text_dir)),
                         FastTokenizer.from_dir(fixture_dir / "fast_tokenizer"), settings, identity, identity,
                         "random-pi0fast-shapes", max_decoding_steps=tokens, random_weights=True)


def shapes_only(families: tuple[str, ...] = FAMILY_CHOICES) -> int:
    """Count parameters of the real-shape models built on the meta device."""

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    rows = []
    if "openvla" in families:
        from vla_steer_tools.models.openvla.config import OpenVLAConfig
        from vla_steer_tools.models.openvla.modeling import OpenVLAForActionPrediction

        with torch.device("meta"):
            vla = OpenVLAForActionPrediction(OpenVLAConfig.from_dict(OPENVLA_7B))
        lm = vla.language_model.model.layers
        rows.append(("openvla", count(vla), {"dinov2": count(vla.vision_backbone.featurizer),
                                             "siglip": count(vla.vision_backbone.fused_featurizer),
                                             "projector": count(vla.projector), "llama": count(vla.language_model)},
                     {"backbone": (len(lm), lm[0].mlp.down_proj.in_features)}))
    if "pi0" in families:
        from transformers import PI0ForConditionalGeneration

        from vla_steer_tools.models.pi0 import build_pi0_config

        with torch.device("meta"):
            pi0 = PI0ForConditionalGeneration(build_pi0_config(PI0_FULL))
        rows.append(("pi0", count(pi0), {"siglip": count(pi0.model.vlm.vision_tower),
                                         "gemma_2b": count(pi0.model.vlm.language_model), "expert": count(pi0.model.dit)},
                     {"backbone": (len(pi0.model.vlm.language_model.layers),
                                   pi0.model.vlm.language_model.layers[0].mlp.down_proj.in_features),
                      "action_expert": (len(pi0.model.dit.layers), pi0.model.dit.layers[0].mlp.down_proj.in_features)}))
    if "pi0fast" in families:
        from transformers import PaliGemmaForConditionalGeneration

        from vla_steer_tools.fixtures.tiny_pi0fast import tiny_pi0fast_config
        from vla_steer_tools.models.pi0fast.config import Pi0FastSettings, paligemma_config

        settings = Pi0FastSettings.from_lerobot({**tiny_pi0fast_config(), **PI0FAST_FULL})
        with torch.device("meta"):
            pf = PaliGemmaForConditionalGeneration(paligemma_config(settings))
        text = pf.model.language_model
        rows.append(("pi0fast", count(pf), {"siglip": count(pf.model.vision_tower), "gemma_2b": count(text),
                                            "projector": count(pf.model.multi_modal_projector)},
                     {"backbone": (len(text.layers), text.layers[0].mlp.down_proj.in_features)}))
        print(f"  pi0fast: width {text.config.hidden_size}, vocab {text.embed_tokens.num_embeddings:,} (tied head), "
              f"SigLIP {pf.config.vision_config.num_hidden_layers} x {pf.config.vision_config.hidden_size}")
    print("real-shape models on the meta device (no weights allocated)")
    for name, total, parts, ffn in rows:
        part_text = ", ".join(f"{k} {v / 1e9:.3f}B" for k, v in parts.items())
        ffn_text = ", ".join(f"{c}: {n} layers x {w} = {n * w:,} neurons" for c, (n, w) in ffn.items())
        print(f"  {name:<8} {total / 1e9:.3f}B params (published ~{PUBLISHED_PARAMS[name] / 1e9:.2f}B): {part_text}")
        print(f"  {'':<8} FFN {ffn_text}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", nargs="+", default=["openvla", "pi0"], choices=FAMILY_CHOICES,
                        help="families to time (default openvla pi0; pi0fast's tiny fixture trains ~20 s first)")
    parser.add_argument("--pi0fast-tokens", type=int, default=PI0FAST_TOKENS,
                        help=f"decode steps per pi0fast --full inference (default {PI0FAST_TOKENS})")
    parser.add_argument("--iters", type=int, default=20, help="timed inferences per mode")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="real shapes, random weights, bf16 on CUDA")
    mode.add_argument("--shapes-only", action="store_true", help="count real-shape parameters on the meta device")
    parser.add_argument("--cache", default=None, help="where the tiny fixtures live (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.shapes_only:
        return shapes_only(tuple(args.family))
    cache = Path(args.cache or tempfile.mkdtemp(prefix="vla_steer_bench_"))
    rows = []
    if args.full:
        if not torch.cuda.is_available():
            print("--full needs a CUDA GPU (bf16 7B model); use --shapes-only here", file=sys.stderr)
            return 2
        builders = {"openvla": _full_openvla, "pi0": _full_pi0,
                    "pi0fast": lambda device, fixture: _full_pi0fast(device, fixture, args.pi0fast_tokens)}
        for family in args.family:
            fixture = ensure_tiny_checkpoint(family, cache)  # tokenizer + statistics only
            policy = builders[family]("cuda", fixture)
            print(f"{family}: RANDOM WEIGHTS with the real shapes ({sum(p.numel() for p in policy.model.parameters()) / 1e9:.2f}B params, bf16)")
            if family == "pi0fast":  # random weights never end a FAST chunk: time vision + prefill + N tokens
                rows.append(measure(f"pi0fast full-size ({args.pi0fast_tokens} tokens)", policy, args.iters,
                                    args.warmup, run=lambda obs, p=policy: p.generate(*p.prepare(obs)),
                                    horizon=policy.settings.chunk_size))
            else:
                rows.append(measure(f"{family} full-size (random, bf16)", policy, args.iters, args.warmup))
            print(f"  public reference: {REFERENCE[family]} on an RTX 4090")
            del policy
            torch.cuda.empty_cache()
        device = torch.cuda.get_device_name()
    else:
        print("tiny TEST FIXTURES with RANDOM WEIGHTS: latencies show runtime + hook overhead, not real models")
        for family in args.family:
            policy = load_policy(family, ensure_tiny_checkpoint(family, cache), device=args.device)
            rows.append(measure(f"{family} tiny fixture", policy, args.iters, args.warmup))
        device = str(policy.adapter.device) + (f" ({torch.get_num_threads()} threads)" if policy.adapter.device.type == "cpu" else "")
    print_rows(rows, device)
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())
