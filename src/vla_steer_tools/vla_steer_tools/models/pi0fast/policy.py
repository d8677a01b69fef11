"""pi0-FAST as a `Policy`: LeRobot's pi0_fast checkpoint layout on transformers' own
PaliGemmaForConditionalGeneration (no forked model code), greedy decoding with a KV cache until
the end-of-action marker, then FAST decoding and LeRobot's un-normalisation.

One inference = one prefill forward over [image tokens, <bos> prompt, <bos>] with a fully
bidirectional mask (the prefix of a prefix-LM; there is no padding here, so nothing is masked),
then one forward per generated token against the cache. The steering core's `prefill` position
policy therefore edits exactly the prompt pass, the paper's pi0-FAST setting; it is this
family's default (`DEFAULT_POSITION`, also in `adapter.extra["default_position"]`).
A checkpoint converted from openpi runs openpi's conventions instead (config.PROMPT_FORMATS):
no second <bos>, the task lower-cased, decode positions from prefill_len + 1, openpi's normaliser,
a missing camera fed as a black image rather than left out (openpi's pi0-FAST inputs do so).

LeRobot pads the prompt to `tokenizer_max_length` and masks the padding out of attention and of
the position ids; leaving the padding out gives the same positions and the same attended keys.
Missing cameras are left out the same way (LeRobot feeds a -1 image whose tokens are masked).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...errors import CheckpointError, ConfigError, ObservationError
from ...policy import Policy
from ...types import ActionChunk, Observation
from ..base import ModelAdapter
from ..hf_causal_lm import decoder_adapter
from ..inputs import check_image, check_instruction, check_state
from ..loading import (
    check_keys,
    default_dtype,
    read_safetensors,
    read_lerobot_config,
    resolve_checkpoint_dir,
    resolve_device,
    resolve_dtype,
    safetensors_files,
    skip_init,
)
from ..pi0 import read_statistics, resize_with_pad
from . import fast_tokenizer as fast
from .config import (
    ACTION_KEY, EMBED_KEY, HEAD_KEY, IMAGE_PREFIX, OPENPI_RECORD, PROMPT_FORMATS, STATE_KEY, Pi0FastSettings,
    from_lerobot_key, paligemma_config, to_lerobot_key,
)
from .normalize import FeatureNormalizer, feature_normalizer
from .prompt import ActionVocabulary, build_prompt

log = logging.getLogger(__name__)

DEFAULT_POSITION = "prefill"
_HUB_FILES = ("*.json", "*.safetensors")


class Pi0FastPolicy(Policy):
    """Images + instruction + state -> one whole FAST-decoded chunk (chunk_size x action_dim)."""

    default_position = DEFAULT_POSITION

    def __init__(self, model, tokenizer, fast_tok: fast.FastTokenizer, settings: Pi0FastSettings,
                 state_norm: FeatureNormalizer, action_norm: FeatureNormalizer, model_id: str,
                 image_keys: Sequence[str] | None = None, action_space: str | None = None,
                 max_decoding_steps: int | None = None, random_weights: bool = False) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.fast = fast_tok
        self.settings = settings
        self.state_norm, self.action_norm = state_norm, action_norm
        self.model_id = model_id
        self.features = list(settings.image_features)
        default_keys = [k[len(IMAGE_PREFIX):] for k in self.features]
        self.image_keys = list(image_keys) if image_keys else default_keys
        if len(self.image_keys) != len(self.features):
            raise ConfigError(f"image_keys {self.image_keys} must name one camera per checkpoint image feature "
                              f"{self.features}")
        self.max_decoding_steps = int(max_decoding_steps or settings.max_decoding_steps)
        if self.max_decoding_steps < 1:
            raise ConfigError(f"max_decoding_steps must be >= 1, got {self.max_decoding_steps}")
        self.action_space = action_space or ("ee_delta_7d" if settings.action_dim == 7 else f"pi0fast_{settings.action_dim}d")
        self.vocab = ActionVocabulary.from_tokenizer(tokenizer, settings.fast_skip_tokens, fast_tok.vocab_size)
        if self.vocab.text_vocab_size != model.config.text_config.vocab_size:
            raise CheckpointError(f"text tokenizer has {self.vocab.text_vocab_size} ids, the model's embedding "
                                  f"{model.config.text_config.vocab_size}: wrong tokenizer for this checkpoint")
        self._warned_missing: set[str] = set()
        lm = model.model.language_model
        self._adapter = decoder_adapter(
            model_id=model_id,
            layers={"backbone": list(lm.layers)},
            token_matrix=lm.embed_tokens,  # tied with lm_head: (vocab, d_model), unscaled table
            decode_token=self.decode_token,
            final_norm=lm.norm,
            random_weights=random_weights,
            family="pi0fast",
            chunk_size=settings.chunk_size,
            default_position=DEFAULT_POSITION,
            fast_token_ids=(self.vocab.lowest_id(), self.vocab.highest_id()),
        )

    @property
    def adapter(self) -> ModelAdapter:
        return self._adapter

    def decode_token(self, token_id: int) -> str:
        """FAST codes read `[fast: a]` (a = the FAST tokenizer's id); other ids their text."""
        code = self.vocab.to_fast(int(token_id))
        if code is not None:
            return f"[fast: {code}]"
        return self.tokenizer.decode([int(token_id)], clean_up_tokenization_spaces=False)

    # -- inference -------------------------------------------------------------------------

    def infer(self, observation: Observation) -> ActionChunk:
        pixels, input_ids = self.prepare(observation)
        start = time.perf_counter()
        generated = self.generate(pixels, input_ids)
        if input_ids.device.type == "cuda":
            torch.cuda.synchronize(input_ids.device)
        elapsed = time.perf_counter() - start
        try:
            codes = self.vocab.action_codes(generated)
            normalized = self.fast.decode(codes, self.settings.chunk_size, self.settings.action_dim)  # (H, D)
        except fast.FastDecodeError as exc:
            log.error("pi0fast decode failed, no action: %s (generated %d tokens: %s)", exc, len(generated),
                      generated[:24])
            raise
        actions = self.action_norm.unnormalize(normalized.astype(np.float32)).astype(np.float32)
        return ActionChunk(actions=actions, action_space=self.action_space, inference_s=elapsed, model_id=self.model_id)

    def prepare(self, observation: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        """Observation -> (pixels (n_cams, 3, S, S) in [-1, 1], prompt ids (1, T); LeRobot's end with <bos>)."""
        text = check_instruction(observation.instruction)
        state = check_state(observation.state, self.settings.state_dim)
        prompt = build_prompt(text, self.state_norm.normalize(state), self.settings.prompt_format)
        ids = list(self.tokenizer(prompt).input_ids[: self.settings.tokenizer_max_length])  # <bos> + prompt
        if self.settings.prompt_format == "lerobot":
            ids.append(self.tokenizer.bos_token_id)  # LeRobot's second <bos>; openpi has none
        device = self.adapter.device
        dtype = self.model.model.multi_modal_projector.linear.weight.dtype
        return self._images(observation).to(device=device, dtype=dtype), torch.tensor([ids], device=device)

    @torch.inference_mode()
    def generate(self, pixels: torch.Tensor, input_ids: torch.Tensor) -> list[int]:
        """Greedy tokens after the prompt, up to and including the end marker (or the step cap)."""
        from transformers import DynamicCache

        lm = self.model.model.language_model
        image = self.model.model.get_image_features(pixels).pooler_output  # (n_cams, P, d)
        text = lm.embed_tokens(input_ids)  # (1, T, d), scaled by sqrt(d) inside the module
        embeds = torch.cat([image.reshape(1, -1, image.shape[-1]).to(text.dtype), text], dim=1)  # (1, L, d)
        length = embeds.shape[1]
        cache = DynamicCache(config=self.model.config.text_config)
        out = lm(inputs_embeds=embeds, attention_mask=_full_mask(1, length, embeds),
                 position_ids=torch.arange(length, device=embeds.device)[None], cache=cache, use_cache=True)
        token = int(self.model.lm_head(out.last_hidden_state[:, -1]).argmax(-1))
        generated = [token]
        skip = 1 if self.settings.prompt_format == "openpi" else 0  # openpi: first decode position prefill_len + 1
        while token != self.vocab.end_id and len(generated) < self.max_decoding_steps:
            step = torch.tensor([[token]], device=embeds.device)
            pos = length + len(generated) - 1 + skip
            keys = length + len(generated)  # the cache after this step (positions may skip, the cache does not)
            out = lm(inputs_embeds=lm.embed_tokens(step), attention_mask=_full_mask(1, keys, embeds),
                     position_ids=torch.tensor([[pos]], device=embeds.device), cache=cache, use_cache=True)
            token = int(self.model.lm_head(out.last_hidden_state[:, -1]).argmax(-1))
            generated.append(token)
        return generated

    def _images(self, observation: Observation) -> torch.Tensor:
        present = [k for k in self.image_keys if k in observation.images]
        if not present:
            raise ObservationError(f"none of this checkpoint's cameras {self.image_keys} is in the observation "
                                   f"(it has {sorted(observation.images)})")
        openpi = self.settings.prompt_format == "openpi"
        for key in sorted(set(self.image_keys) - set(present) - self._warned_missing):
            if not key.startswith("empty_camera_"):
                how = "a black image (openpi feeds pi0-FAST its padding cameras black and unmasked)" if openpi \
                    else "out (masked out)"
                log.warning("camera %r missing from observations: pi0fast runs with it left %s", key, how)
            self._warned_missing.add(key)
        size = self.settings.image_size
        if openpi:  # every camera, in the checkpoint's order, a missing one all black (-1 after scaling)
            black = np.zeros((size, size, 3), dtype=np.uint8)
            images = [check_image(k, observation.images[k]) if k in observation.images else black
                      for k in self.image_keys]
        else:
            images = [check_image(k, observation.images[k]) for k in present]
        return torch.stack([resize_with_pad(image, size) for image in images])


def _full_mask(queries: int, keys: int, like: torch.Tensor) -> torch.Tensor:
    """Additive 4-D mask (1, 1, queries, keys) letting every query see every key: the prefix is
    bidirectional, and a decode step sees the whole cache (itself last). An explicit all-zero
    mask rather than None: None would make transformers build its causal mask for the prefix."""
    return torch.zeros(1, 1, queries, keys, dtype=like.dtype, device=like.device)


# ----------------------------------------------------------------------------- loading


def convert_lerobot_state(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """LeRobot tensors -> transformers names; one tied table (lm_head or embed_tokens, equal if both)."""
    weights: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        new = from_lerobot_key(key)
        if new is None:
            unknown.append(key)
        else:
            weights[new] = value
    if unknown:
        raise CheckpointError(f"checkpoint {where} does not match its config; unexpected keys: {sorted(unknown)[:12]}")
    head = weights.pop(HEAD_KEY, None)
    if head is not None:
        embed = weights.setdefault(EMBED_KEY, head)
        if embed.shape != head.shape or not torch.equal(embed, head):
            raise CheckpointError(f"checkpoint {where}: {to_lerobot_key(HEAD_KEY)} and {to_lerobot_key(EMBED_KEY)} "
                                  "differ; pi0-FAST ties its LM head to the input embedding")
    return weights


def _lerobot_names(message: str) -> str:
    pattern = r"(?:model\.(?:language_model|vision_tower|multi_modal_projector)\.[\w.]+|lm_head\.weight)"
    return re.sub(pattern, lambda m: to_lerobot_key(m.group(0)), message)


def _text_tokenizer(directory: Path, explicit: str | None, settings: Pi0FastSettings):
    from transformers import AutoTokenizer

    local = directory / "tokenizer"
    source = explicit or (str(local) if (local / "tokenizer.json").is_file() or (local / "tokenizer.model").is_file()
                          else settings.text_tokenizer_name)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load the PaliGemma tokenizer from {source!r} ({exc}); pass tokenizer=LOCAL_DIR "
                              "(a copy of google/paligemma-3b-pt-224's tokenizer files) when offline") from exc


def _fast_tokenizer(directory: Path, explicit: str | None, settings: Pi0FastSettings) -> fast.FastTokenizer:
    local = directory / "fast_tokenizer"
    source = explicit or (str(local) if (local / fast.CONFIG_FILE).is_file() else settings.action_tokenizer_name)
    found = Path(source).expanduser()
    if not found.is_dir():
        found = resolve_checkpoint_dir(source, fast.FILES)
    return fast.FastTokenizer.from_dir(found)


def prompt_format_of(directory: Path) -> str:
    """"openpi" for a checkpoint `vla-steer convert openpi-pi0fast` wrote (its OPENPI_RECORD says
    so), else "lerobot": the conventions the weights were trained with (config.PROMPT_FORMATS)."""
    record = directory / OPENPI_RECORD
    if not record.is_file():
        return "lerobot"
    try:
        fmt = json.loads(record.read_text(encoding="utf-8")).get("prompt_format", "openpi")
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{record} is not valid JSON: {exc}") from exc
    if fmt not in PROMPT_FORMATS:
        raise CheckpointError(f"{record}: prompt_format {fmt!r} is not one of {list(PROMPT_FORMATS)}")
    return fmt


def load_pi0fast(
    path: str | os.PathLike,
    device: str = "auto",
    dtype: str = "auto",
    tokenizer: str | None = None,
    action_tokenizer: str | None = None,
    image_keys: Sequence[str] | None = None,
    action_space: str | None = None,
    max_decoding_steps: int | None = None,
    unnorm_key: str | None = None,
) -> Pi0FastPolicy:
    """Load a LeRobot-format pi0_fast checkpoint (local dir or hub id) as a Policy."""
    from transformers import PaliGemmaForConditionalGeneration

    from ...fixtures.tiny_checkpoints import is_fixture

    if unnorm_key:
        raise ConfigError(f"unnorm_key={unnorm_key!r}: pi0-FAST checkpoints carry a single set of statistics")
    directory = resolve_checkpoint_dir(path, _HUB_FILES)
    lerobot = read_lerobot_config(directory)
    settings = dataclasses.replace(Pi0FastSettings.from_lerobot(lerobot), prompt_format=prompt_format_of(directory))
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    weights = convert_lerobot_state(read_safetensors(safetensors_files(directory), dt), str(directory))
    stats = read_statistics(directory, {})
    openpi = settings.prompt_format == "openpi"
    state_norm = feature_normalizer(settings.norm_modes["STATE"], STATE_KEY, stats, directory, openpi=openpi)
    action_norm = feature_normalizer(settings.norm_modes["ACTION"], ACTION_KEY, stats, directory, openpi=openpi)
    with torch.device(dev), default_dtype(dt), skip_init():
        model = PaliGemmaForConditionalGeneration(paligemma_config(settings))
    try:
        check_keys(model, weights, str(directory), optional=(HEAD_KEY,))
    except CheckpointError as exc:  # name the keys as the file writes them
        raise CheckpointError(_lerobot_names(str(exc))) from None
    model.load_state_dict(weights, strict=False)
    if model.lm_head.weight.data_ptr() != model.model.language_model.embed_tokens.weight.data_ptr():
        model.lm_head.weight = model.model.language_model.embed_tokens.weight  # keep the tie explicit
    model.eval()
    random_weights = is_fixture(directory)
    if random_weights:
        log.warning("%s is a vla-steer test fixture: RANDOM WEIGHTS, actions are meaningless", directory)
    text_tok = _text_tokenizer(directory, tokenizer, settings)
    fast_tok = _fast_tokenizer(directory, action_tokenizer, settings)
    log.info("loaded pi0fast %s on %s/%s (FAST tokenizer %s)", directory, dev, dt, fast_tok.source)
    return Pi0FastPolicy(model, text_tok, fast_tok, settings, state_norm, action_norm, str(path),
                         image_keys=image_keys, action_space=action_space,
                         max_decoding_steps=max_decoding_steps, random_weights=random_weights)
