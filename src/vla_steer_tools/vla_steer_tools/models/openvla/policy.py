"""OpenVLA as a `Policy`: load an official-format checkpoint, run `predict_action`, expose the
Llama MLPs and the untied `lm_head` to the steering core."""

from __future__ import annotations

import logging
import os
import time
from typing import Sequence

import torch

from ...errors import UnknownChoiceError
from ...policy import Policy
from ...types import ActionChunk, Observation
from ..base import ModelAdapter
from ..hf_causal_lm import decoder_adapter
from ..inputs import check_instruction, check_state, pick_images
from ..loading import (
    default_dtype,
    load_weights,
    read_safetensors,
    resolve_checkpoint_dir,
    resolve_device,
    resolve_dtype,
    safetensors_files,
    skip_init,
)
from .config import EMPTY_TOKEN_ID, OpenVLAConfig
from .modeling import OpenVLAForActionPrediction
from .processing import GRIPPER_CONVENTIONS, ActionDecoder, ImageTransform, build_prompt, libero_gripper

log = logging.getLogger(__name__)

#: Camera keys tried, in order, when the caller does not name one (LIBERO's main camera first).
PREFERRED_CAMERAS = ("agentview", "primary", "image", "front", "external")
_HUB_FILES = ("*.json", "*.safetensors", "tokenizer.model")


class OpenVLAPolicy(Policy):
    """One image + instruction -> one 7-D action (horizon 1), exactly as `predict_action`."""

    def __init__(
        self,
        model: OpenVLAForActionPrediction,
        tokenizer,
        transform: ImageTransform,
        decoder: ActionDecoder,
        model_id: str,
        center_crop: bool = False,
        image_keys: Sequence[str] | None = None,
        action_space: str | None = None,
        random_weights: bool = False,
        gripper: str = "raw",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.transform = transform
        self.decoder = decoder
        self.model_id = model_id
        self.center_crop = center_crop
        self.image_keys = tuple(image_keys) if image_keys else None
        if gripper not in GRIPPER_CONVENTIONS:
            raise UnknownChoiceError("gripper convention", gripper, GRIPPER_CONVENTIONS)
        self.gripper = gripper
        self.action_space = action_space or ("ee_delta_7d" if decoder.action_dim == 7 else f"openvla_{decoder.action_dim}d")
        self._adapter = self._build_adapter(random_weights)

    # --- Policy -------------------------------------------------------------------------------
    @property
    def adapter(self) -> ModelAdapter:
        return self._adapter

    def infer(self, observation: Observation) -> ActionChunk:
        input_ids, pixels = self.prepare(observation)
        start = time.perf_counter()
        token_ids = self.model.generate_greedy(input_ids, pixels, self.decoder.action_dim)  # (1, dim)
        if pixels.device.type == "cuda":
            torch.cuda.synchronize(pixels.device)
        elapsed = time.perf_counter() - start
        actions = self.decoder(token_ids[0].cpu().numpy())[None, :]  # (1, dim)
        if self.gripper == "libero":
            actions[:, -1] = libero_gripper(actions[:, -1])
        return ActionChunk(actions=actions, action_space=self.action_space, inference_s=elapsed, model_id=self.model_id)

    # --- steps, public for tests and the benchmark ----------------------------------------------
    def prepare(self, observation: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        """Observation -> input ids (1, T) ending in 29871, pixels (1, 3 * towers, S, S)."""
        instruction = check_instruction(observation.instruction)
        check_state(observation.state)  # OpenVLA ignores state, but NaN there still signals a fault
        [(_, image)] = pick_images(observation, self.image_keys, PREFERRED_CAMERAS)[:1]
        ids = self.tokenizer(build_prompt(instruction), return_tensors="pt").input_ids
        if ids[0, -1].item() != EMPTY_TOKEN_ID:
            ids = torch.cat([ids, torch.tensor([[EMPTY_TOKEN_ID]])], dim=1)
        device, dtype = self.adapter.device, next(self.model.projector.parameters()).dtype
        pixels = self.transform(image, self.center_crop)[None].to(device=device, dtype=dtype)
        return ids.to(device), pixels

    def decode_token(self, token_id: int) -> str:
        """Action-bin ids read `[action: x]` (x the bin centre); others are the tokenizer's piece."""
        if self.decoder.first_action_id <= token_id < self.decoder.vocab_size:
            return f"[action: {self.decoder.bin_center(token_id):+.4f}]"
        if token_id >= len(self.tokenizer):
            return f"[pad {token_id}]"
        # the SentencePiece piece with its word marker as a space: " fast" != "fast", as the text
        # models' decoder shows them (Llama's decode() would strip that leading space)
        return self.tokenizer.convert_ids_to_tokens(int(token_id)).replace("\u2581", " ")

    def _build_adapter(self, random_weights: bool) -> ModelAdapter:
        lm = self.model.language_model
        return decoder_adapter(
            model_id=self.model_id,
            layers={"backbone": list(lm.model.layers)},
            token_matrix=lm.lm_head,  # untied (vocab, d_model)
            decode_token=self.decode_token,
            final_norm=lm.model.norm,
            random_weights=random_weights,
            family="openvla",
            unnorm_key=self.decoder.unnorm_key,
            action_token_ids=(self.decoder.first_action_id, self.decoder.vocab_size - 1),
        )


def load_openvla(
    path: str | os.PathLike,
    device: str = "auto",
    dtype: str = "auto",
    unnorm_key: str | None = None,
    center_crop: bool = False,
    image_keys: Sequence[str] | None = None,
    action_space: str | None = None,
    gripper: str = "raw",
) -> OpenVLAPolicy:
    """Load an OpenVLA checkpoint (local dir or hub id, official layout) as a Policy.

    gripper: "raw" = exactly `predict_action`; "libero" = what OpenVLA's LIBERO evaluation sends
    to the simulator (binarised, -1 open / +1 close).
    """
    from transformers import AutoTokenizer

    from ...fixtures.tiny_checkpoints import is_fixture

    directory = resolve_checkpoint_dir(path, _HUB_FILES)
    config = OpenVLAConfig.from_dir(directory)
    decoder = ActionDecoder(config, unnorm_key)  # fail on stats before the slow weight load
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    state = read_safetensors(safetensors_files(directory), dt)
    with torch.device(dev), default_dtype(dt), skip_init():
        model = OpenVLAForActionPrediction(config)
    load_weights(model, state, str(directory))
    del state
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    random_weights = is_fixture(directory)
    if random_weights:
        log.warning("%s is a vla-steer test fixture: RANDOM WEIGHTS, actions are meaningless", directory)
    log.info("loaded OpenVLA %s on %s/%s (unnorm_key=%s)", directory, dev, dt, decoder.unnorm_key)
    return OpenVLAPolicy(
        model, tokenizer, ImageTransform.for_checkpoint(config, directory), decoder, str(path),
        center_crop=center_crop, image_keys=image_keys, action_space=action_space, random_weights=random_weights,
        gripper=gripper,
    )
