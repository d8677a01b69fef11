"""Policy inference latency per model family, unsteered vs steered (ratio measured in one run).

Default: the tiny RANDOM-WEIGHT test fixtures on this machine (seconds). Options:
  --full         random-weight models with the real shapes (OpenVLA-7B: DINOv2-L + SigLIP-so400m +
                 Llama-2-7B; Pi0: SigLIP + Gemma-2B + Gemma-300M expert, 50-step chunk), bf16 on
                 CUDA; compares against the public figures (RTX 4090: OpenVLA ~6 Hz, Pi0 ~73 ms/chunk).
  --shapes-only  build the real-shape models on the meta device and count parameters / FFN neurons
                 (no memory, no GPU): checks the shape tables against the published sizes.
Steering = one direction of 10 neurons spread over the backbone's layers, override alpha 10, at
every forward pass (the paper's OpenVLA setting). The three modes (no hooks, idle hooks, steered)
run round-robin so background load hits all alike.

    tools/env.sh python bench/bench_policy_latency.py [--family openvla pi0] [--iters 20] [--full|--shapes-only]
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
REFERENCE = {"openvla": "about 6 Hz (167 ms) per action", "pi0": "about 73 ms per 50-step chunk"}
#: Published parameter counts, for --shapes-only.
PUBLISHED_PARAMS = {"openvla": 7.54e9, "pi0": 3.5e9}

OPENVLA_7B = {
    "model_type": "openvla", "use_fused_vision_backbone": True, "image_sizes": [224, 224],
    "timm_model_ids": ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"],
    "text_config": {"model_type": "llama", "vocab_size": 32064, "pad_token_id": 32000},  # Llama-2-7B defaults
    "pad_to_multiple_of": 64, "pad_token_id": 32000, "n_action_bins": 256,
}
PI0_FULL = {"paligemma_variant": "gemma_2b", "action_expert_variant": "gemma_300m", "chunk_size": 50,
            "max_state_dim": 32, "max_action_dim": 32, "num_inference_steps": 10, "image_resolution": [224, 224]}


def spread_direction(adapter, n: int = 10, alpha: float = 10.0) -> Direction:
    """n neurons spread evenly over the backbone's layers (like the paper's all-layer pools)."""
    layers = adapter.layers("backbone")
    picks = [(int(i * len(layers) / n), (97 * i) % int(layers[0].in_features)) for i in range(n)]
    return Direction(name="bench", neurons=tuple(NeuronRef("backbone", l, j) for l, j in picks), alpha=alpha)


def _timed(policy, obs) -> float:
    start = time.perf_counter()
    policy.infer(obs)
    return time.perf_counter() - start


def measure(name: str, policy, iters: int, warmup: int) -> dict:
    """Median seconds per inference in three interleaved modes (round-robin, so background load
    hits all alike): no hooks; hooks registered but idle (how SteeredPolicy runs unsteered);
    steering on."""
    obs = tiny_observation(seed=0)
    direction = spread_direction(policy.adapter)
    on = SteeringConfig(directions=(direction,), enabled=True, probe=False)
    off = on.replace(enabled=False)
    for _ in range(warmup):
        _timed(policy, obs)
    times: dict[str, list[float]] = {"bare": [], "idle": [], "steered": []}
    for _ in range(iters):
        times["bare"].append(_timed(policy, obs))
        with Steerer(policy.adapter, off) as steerer:
            steerer.begin_inference()
            times["idle"].append(_timed(policy, obs))
            steerer.apply(on)
            steerer.begin_inference()
            times["steered"].append(_timed(policy, obs))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": name, "bare_ms": 1e3 * med["bare"], "idle_ms": 1e3 * med["idle"],
            "steered_ms": 1e3 * med["steered"], "ratio": med["steered"] / med["bare"], "hz": 1 / med["bare"],
            "horizon": policy.infer(obs).horizon, "n": iters}


def print_rows(rows: list[dict], device: str) -> None:
    print(f"\ndevice: {device}; median of n interleaved inferences; ratio = steered / no hooks")
    print(f"{'model':<34}{'n':>4}{'no hooks ms':>13}{'idle hooks ms':>15}{'steered ms':>12}{'ratio':>8}"
          f"{'Hz':>8}{'horizon':>9}")
    for r in rows:
        print(f"{r['model']:<34}{r['n']:>4}{r['bare_ms']:>13.2f}{r['idle_ms']:>15.2f}{r['steered_ms']:>12.2f}"
              f"{r['ratio']:>8.3f}{r['hz']:>8.2f}{r['horizon']:>9}")


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


def shapes_only() -> int:
    """Count parameters of the real-shape models built on the meta device."""
    from transformers import PI0ForConditionalGeneration

    from vla_steer_tools.models.openvla.config import OpenVLAConfig
    from vla_steer_tools.models.openvla.modeling import OpenVLAForActionPrediction
    from vla_steer_tools.models.pi0 import build_pi0_config

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    with torch.device("meta"):
        vla = OpenVLAForActionPrediction(OpenVLAConfig.from_dict(OPENVLA_7B))
        pi0 = PI0ForConditionalGeneration(build_pi0_config(PI0_FULL))
    lm = vla.language_model.model.layers
    rows = [
        ("openvla", count(vla), {"dinov2": count(vla.vision_backbone.featurizer),
                                 "siglip": count(vla.vision_backbone.fused_featurizer),
                                 "projector": count(vla.projector), "llama": count(vla.language_model)},
         {"backbone": (len(lm), lm[0].mlp.down_proj.in_features)}),
        ("pi0", count(pi0), {"siglip": count(pi0.model.vlm.vision_tower), "gemma_2b": count(pi0.model.vlm.language_model),
                             "expert": count(pi0.model.dit)},
         {"backbone": (len(pi0.model.vlm.language_model.layers), pi0.model.vlm.language_model.layers[0].mlp.down_proj.in_features),
          "action_expert": (len(pi0.model.dit.layers), pi0.model.dit.layers[0].mlp.down_proj.in_features)}),
    ]
    print("real-shape models on the meta device (no weights allocated)")
    for name, total, parts, ffn in rows:
        part_text = ", ".join(f"{k} {v / 1e9:.3f}B" for k, v in parts.items())
        ffn_text = ", ".join(f"{c}: {n} layers x {w} = {n * w:,} neurons" for c, (n, w) in ffn.items())
        print(f"  {name:<8} {total / 1e9:.3f}B params (published ~{PUBLISHED_PARAMS[name] / 1e9:.2f}B): {part_text}")
        print(f"  {'':<8} FFN {ffn_text}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", nargs="+", default=["openvla", "pi0"], choices=["openvla", "pi0"])
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
        return shapes_only()
    cache = Path(args.cache or tempfile.mkdtemp(prefix="vla_steer_bench_"))
    rows = []
    if args.full:
        if not torch.cuda.is_available():
            print("--full needs a CUDA GPU (bf16 7B model); use --shapes-only here", file=sys.stderr)
            return 2
        builders = {"openvla": _full_openvla, "pi0": _full_pi0}
        for family in args.family:
            fixture = ensure_tiny_checkpoint(family, cache)  # tokenizer + statistics only
            policy = builders[family]("cuda", fixture)
            print(f"{family}: RANDOM WEIGHTS with the real shapes ({sum(p.numel() for p in policy.model.parameters()) / 1e9:.2f}B params, bf16)")
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
