"""Prismatic (OpenVLA) network on plain torch + transformers' LlamaForCausalLM.

Parameter names match the official safetensors exactly (`vision_backbone.featurizer.*` with timm's
ViT names and LayerScale as `scale_factor`, `vision_backbone.fused_featurizer.*`, `projector.fc*`,
`language_model.*`), so a checkpoint loads with a plain `load_state_dict`, no key mapping.
Behaviour follows the reference: each tower returns the patch tokens of its second-to-last block
(no final norm, prefix tokens dropped) and the projected patches are inserted right after <BOS>.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import OpenVLAConfig, ViTSpec

_LN_EPS = 1e-6  # timm ViT default


class LayerScale(nn.Module):
    """Per-channel scale; named `scale_factor` as in OpenVLA's patched timm LayerScale."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale_factor = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_factor


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact GELU: timm's default for both towers


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, head_dim)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        d = spec.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=_LN_EPS)
        self.attn = Attention(d, spec.num_heads)
        self.ls1 = LayerScale(d) if spec.layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(d, eps=_LN_EPS)
        self.mlp = Mlp(d, spec.mlp_hidden)
        self.ls2 = LayerScale(d) if spec.layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class AttentionPoolLatent(nn.Module):
    """SigLIP's attention-pool head. Present in the checkpoint; OpenVLA never runs it."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        d = spec.embed_dim
        self.latent = nn.Parameter(torch.zeros(1, 1, d))
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=_LN_EPS)
        self.mlp = Mlp(d, spec.mlp_hidden)


class PatchEmbed(nn.Module):
    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, spec.embed_dim, spec.patch_size, spec.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, 3, H, W) -> (B, N, D)


class TimmViT(nn.Module):
    """timm's VisionTransformer as Prismatic uses it, keyed like timm."""

    def __init__(self, spec: ViTSpec, image_size: int) -> None:
        super().__init__()
        self.spec = spec
        d = spec.embed_dim
        num_patches = (image_size // spec.patch_size) ** 2
        self.num_prefix_tokens = int(spec.class_token) + spec.reg_tokens
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if spec.class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, spec.reg_tokens, d)) if spec.reg_tokens else None
        pos_len = num_patches if spec.no_embed_class else num_patches + int(spec.class_token)
        self.pos_embed = nn.Parameter(torch.randn(1, pos_len, d) * 0.02)
        self.patch_embed = PatchEmbed(spec)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(d, eps=_LN_EPS)
        self.attn_pool = AttentionPoolLatent(spec) if spec.attn_pool else None

    def _prefix(self, batch: int) -> list[torch.Tensor]:
        out = []
        if self.cls_token is not None:
            out.append(self.cls_token.expand(batch, -1, -1))
        if self.reg_token is not None:
            out.append(self.reg_token.expand(batch, -1, -1))
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch tokens after the second-to-last block: (B, 3, H, W) -> (B, N, D)."""
        x = self.patch_embed(pixels)
        b = x.shape[0]
        if self.spec.no_embed_class:
            x = torch.cat([*self._prefix(b), x + self.pos_embed], dim=1)
        else:
            x = torch.cat([*self._prefix(b), x], dim=1) + self.pos_embed
        for block in self.blocks[: len(self.blocks) - 1]:  # blocks 0 .. depth-2 inclusive
            x = block(x)
        return x[:, self.num_prefix_tokens :]


class PrismaticVisionBackbone(nn.Module):
    def __init__(self, config: OpenVLAConfig) -> None:
        super().__init__()
        specs, sizes = config.vit_specs, config.image_sizes
        self.featurizer = TimmViT(specs[0], sizes[0])
        self.fused_featurizer = TimmViT(specs[1], sizes[1]) if config.use_fused_vision_backbone else None
        self.embed_dim = sum(s.embed_dim for s in specs)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3 or 6, H, W) -> (B, N, D_dino + D_siglip): towers concatenated per patch."""
        if self.fused_featurizer is None:
            return self.featurizer(pixel_values)
        img, img_fused = torch.split(pixel_values, [3, 3], dim=1)
        return torch.cat([self.featurizer(img), self.fused_featurizer(img_fused)], dim=2)


class PrismaticProjector(nn.Module):
    def __init__(self, fused: bool, vision_dim: int, llm_dim: int) -> None:
        super().__init__()
        if fused:
            self.fc1 = nn.Linear(vision_dim, 4 * vision_dim)
            self.fc2 = nn.Linear(4 * vision_dim, llm_dim)
            self.fc3 = nn.Linear(llm_dim, llm_dim)
        else:
            self.fc1 = nn.Linear(vision_dim, llm_dim)
            self.fc2 = nn.Linear(llm_dim, llm_dim)
            self.fc3 = None

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.fc2(F.gelu(self.fc1(patches)))
        return x if self.fc3 is None else self.fc3(F.gelu(x))


class OpenVLAForActionPrediction(nn.Module):
    """Vision towers -> projector -> Llama; `generate_greedy` is predict_action's token loop."""

    def __init__(self, config: OpenVLAConfig) -> None:
        super().__init__()
        from transformers import LlamaForCausalLM

        self.config = config
        self.vision_backbone = PrismaticVisionBackbone(config)
        llama_config = config.llama_config()
        self.projector = PrismaticProjector(
            config.use_fused_vision_backbone, self.vision_backbone.embed_dim, llama_config.hidden_size
        )
        self.language_model = LlamaForCausalLM(llama_config)

    def embed_prompt(self, input_ids: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """<BOS>, projected patches, rest of the prompt: (B, T) + (B, C, H, W) -> (B, 1+N+T-1, D)."""
        patches = self.projector(self.vision_backbone(pixel_values))  # (B, N, D)
        text = self.language_model.get_input_embeddings()(input_ids)  # (B, T, D)
        return torch.cat([text[:, :1], patches.to(text.dtype), text[:, 1:]], dim=1)

    @torch.inference_mode()
    def generate_greedy(self, input_ids: torch.Tensor, pixel_values: torch.Tensor, n_tokens: int) -> torch.Tensor:
        """Greedy decoding with a KV cache (what `generate(do_sample=False)` does): -> (B, n_tokens).

        FloatingPointError when a step's logits are not all finite (NaN weights, a steering edit that
        overflowed): decoding them would return a plausible-looking but meaningless action."""
        lm = self.language_model
        out = lm(inputs_embeds=self.embed_prompt(input_ids, pixel_values), use_cache=True)
        tokens = []
        for step in range(n_tokens):
            logits = out.logits[:, -1]  # (B, vocab)
            if not bool(torch.isfinite(logits).all()):  # argmax would pick a NaN: garbage, not an action
                raise FloatingPointError(f"non-finite logits at action token {step} "
                                         f"({int((~torch.isfinite(logits)).sum())} of {logits.numel()} values)")
            next_id = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            tokens.append(next_id)
            if step + 1 < n_tokens:
                out = lm(input_ids=next_id, cache=out.cache, use_cache=True)
        return torch.cat(tokens, dim=1)
