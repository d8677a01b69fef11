"""OpenVLA decoding of non-finite logits is an error, never an action (issue 9, item 3)."""

from __future__ import annotations

import copy

import pytest
import torch

from vla_steer_tools.fixtures.tiny_checkpoints import tiny_observation


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_non_finite_logits_raise_instead_of_decoding(openvla_policy, poison):
    policy = copy.deepcopy(openvla_policy)
    with torch.no_grad():
        policy.model.language_model.lm_head.weight.fill_(poison)  # every logit NaN (or +-inf / NaN)
    with pytest.raises(FloatingPointError, match="non-finite logits at action token 0"):
        policy.infer(tiny_observation())
    assert openvla_policy.infer(tiny_observation()).actions.shape == (1, 7)  # the original still works
