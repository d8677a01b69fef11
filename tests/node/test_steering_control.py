"""SteeringControl: the SetSteering service and the `steering.*` parameters stay one consistent
state (issue 9, item 4), checked without DDS against a real SteeredPolicy over a tiny model."""

from __future__ import annotations

import pytest
import torch
from vla_steer_msgs.msg import SteeringConcept

from vla_policy.params import PolicyParams, from_mapping, specs
from vla_policy.steering_control import SteeringControl
from vla_steer_tools.errors import ConfigError, DirectionError, VlaSteerError
from vla_steer_tools.models.hf_causal_lm import causal_lm_adapter
from vla_steer_tools.policy import Policy, SteeredPolicy
from vla_steer_tools.steering.directions import ALPHA_LIMIT, Direction, save_direction
from vla_steer_tools.types import NeuronRef


class _Policy(Policy):
    """A tiny random Llama behind the Policy interface (3 layers x 48 neurons); never run here."""

    def __init__(self) -> None:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=48, num_hidden_layers=3,
                                             num_attention_heads=2, num_key_value_heads=1, head_dim=8))
        self._adapter = causal_lm_adapter(model.eval(), model_id="tiny", random_weights=True)

    @property
    def adapter(self):
        return self._adapter

    def infer(self, observation):  # pragma: no cover - these tests never run inferences
        raise NotImplementedError


@pytest.fixture(scope="module")
def policy_factory():
    base = _Policy()
    return lambda config=None: SteeredPolicy(base) if config is None else SteeredPolicy(base, config)


@pytest.fixture()
def control(tmp_path) -> SteeringControl:
    for name, start in (("fast", 0), ("slow", 20)):
        neurons = tuple(NeuronRef("backbone", 2, i) for i in range(start, start + 5))
        save_direction(Direction(name, neurons, alpha=50.0), tmp_path / f"{name}.yaml")
    (tmp_path / "corrupt.yaml").write_text("name: [oops\n")
    (tmp_path / "nan.yaml").write_text("name: nan\nalpha: .nan\nneurons: [[backbone, 0, 1]]\n")
    return SteeringControl([str(tmp_path)])


@pytest.fixture()
def params() -> PolicyParams:
    return from_mapping({"model.path": "tiny"})


def _concept(name: str, alpha: float = 0.0, mode: str = "", neurons: tuple = ()) -> SteeringConcept:
    return SteeringConcept(name=name, alpha=alpha, mode=mode, components=["backbone"] * len(neurons),
                           layers=[n[0] for n in neurons], neurons=[n[1] for n in neurons])


def _after(params: PolicyParams, change) -> PolicyParams:
    return from_mapping(change.params, base=params)


def test_service_writes_back_every_steering_parameter(control, params, policy_factory):
    """alpha and mode too (only enabled/concepts were), so a later `steering.enabled=true` keeps them."""
    change, since = control.set_steering(policy_factory(), [_concept("fast", 8.0, "add")], True, params)
    assert since == 0
    assert change.params == {"steering.enabled": True, "steering.concepts": ["fast"],
                             "steering.alpha": 8.0, "steering.mode": "add"}
    p = _after(params, change)
    assert control.from_params(p) == change.config
    again = control.from_params(from_mapping({"steering.enabled": True}, base=p))
    assert again.directions[0].alpha == 8.0 and again.directions[0].mode == "add"
    # alpha 0 / mode "" in the request = each concept's own: the parameters say so
    change, _ = control.set_steering(policy_factory(), [_concept("fast"), _concept("slow")], True, p)
    assert change.params["steering.alpha"] == 0.0 and change.params["steering.mode"] == ""
    assert control.from_params(_after(p, change)) == change.config
    # enabled alone keeps the concepts, and the parameters still rebuild the same config
    off, _ = control.set_steering(policy_factory(), [], False, _after(p, change))
    assert off.params == {"steering.enabled": False} and not off.config.enabled
    assert off.config.directions == change.config.directions


def test_explicit_neurons_keep_parameters_usable(control, params, policy_factory):
    """A concept outside the library used to make every later steering.* set fail ("unknown
    direction"), so steering could not be switched off through parameters."""
    custom = _concept("custom", 5.0, "scale", neurons=((1, 3), (1, 4)))
    change, _ = control.set_steering(policy_factory(), [custom], True, params)
    p = _after(params, change)
    assert p.steering_concepts == ["custom"] and control.from_params(p) == change.config
    for values in ({"steering.enabled": False}, {"steering.alpha": 7.0}, {"steering.mode": "add"},
                   {"steering.position": "prefill"}, {"steering.concepts": ["custom", "fast"]}):
        control.from_params(from_mapping(values, base=p))  # none of these raises any more
    names, descriptions, counts = control.listing()
    assert "custom" in names and "explicit neurons" in descriptions[names.index("custom")]


def test_requests_that_parameters_cannot_hold_are_refused_whole(control, params, policy_factory):
    policy = policy_factory()
    with pytest.raises(ConfigError, match="cannot be expressed.*fast: override alpha 8"):
        control.set_steering(policy, [_concept("fast", 8.0), _concept("slow")], True, params)
    with pytest.raises(ConfigError, match="library direction with other neurons"):
        control.set_steering(policy, [_concept("fast", 8.0, neurons=((0, 1),))], True, params)
    with pytest.raises(ConfigError, match="unique"):
        control.set_steering(policy, [_concept("fast"), _concept("fast")], True, params)
    assert policy.status().config.directions == () and control.session == {}


@pytest.mark.parametrize("alpha", [1e39, -1000.01, float("inf"), float("nan"), 1e300])
def test_one_alpha_range_for_the_service(control, params, policy_factory, alpha):
    policy = policy_factory()
    for concept in (_concept("fast", alpha), _concept("custom", alpha, neurons=((0, 1),))):
        with pytest.raises(VlaSteerError, match="alpha"):
            control.set_steering(policy, [concept], True, params)
    assert policy.status().config.directions == ()


def test_parameter_range_is_the_core_range():
    spec = next(f for f in specs() if f.metadata["ros_name"] == "steering.alpha")
    assert (spec.metadata["lo"], spec.metadata["hi"]) == (-ALPHA_LIMIT, ALPHA_LIMIT)


def test_refused_while_the_model_is_not_loaded(control, params):
    """It used to answer success=True, and the load then failed on the invalid direction."""
    bad = _concept("custom", 5.0, neurons=((99, 1),))
    with pytest.raises(ConfigError, match="refused: the model is loading"):
        control.set_steering(None, [bad], True, params, model_state="loading")
    assert control.session == {}


def test_validated_against_the_model_when_loaded(control, params, policy_factory):
    policy = policy_factory()
    with pytest.raises(DirectionError, match="layer 99 out of range"):
        control.set_steering(policy, [_concept("custom", 5.0, neurons=((99, 1),))], True, params)
    assert control.session == {} and policy.status().config.directions == ()


def test_broken_files_are_listed_with_the_reason(control):
    names, descriptions, counts = control.listing()
    assert names[:2] == ["fast", "slow"]
    broken = dict(zip(names, descriptions))
    assert "not valid YAML" in broken["corrupt.yaml"] and "alpha must be finite" in broken["nan.yaml"]
    assert broken["nan.yaml"].startswith("BROKEN") and counts[names.index("nan.yaml")] == 0
    with pytest.raises(DirectionError, match="its file is broken"):
        control.lookup("nan")


# ------------------------------------------------------------------ properties (Hypothesis)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_alphas = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 8.0, 1000.0, -1000.0, 1e39, 1e300])
_requests = st.lists(
    st.tuples(st.sampled_from(["fast", "slow", "custom", "other", "../x", "nan"]), _alphas,
              st.sampled_from(["", "add", "scale", "override", "clamp"]),
              st.lists(st.tuples(st.integers(0, 4), st.integers(0, 60)), max_size=3)),
    max_size=3)


@settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_requests, st.booleans())
def test_any_request_is_refused_or_held_exactly_by_the_parameters(control, params, policy_factory, request_items, enabled):
    """Whatever a client sends: an error (nothing changes), or a config within the one alpha range
    that the written-back parameters rebuild exactly, so service and parameters never disagree."""
    concepts = [_concept(n, a, m, tuple(ns)) for n, a, m, ns in request_items]
    policy = policy_factory()
    session_before = dict(control.session)
    try:
        change, _ = control.set_steering(policy, concepts, enabled, params)
    except VlaSteerError:
        assert control.session == session_before and policy.status().config.directions == ()
        return
    for d in change.config.directions:
        d.check()
        assert abs(d.alpha) <= ALPHA_LIMIT
    assert control.from_params(_after(params, change)) == change.config == policy.status().config
    control.session.clear()


def test_unset_position_parameter_means_the_family_default(control, params):
    """`steering.position` defaults to "" = the loaded family's own (pi0fast: prefill); setting it
    back to "" after an explicit value returns to that, and the SteeringState reports what runs."""
    from vla_policy.conversions import steering_state_msg
    from vla_steer_tools.steering.hooks import resolve_position

    prefill_family = _Policy()  # its own adapter: the module's shared one stays "all"
    prefill_family.adapter.extra["default_position"] = "prefill"
    assert params.steering_position == ""
    for value, family_default, other in (("", "prefill", "all"), ("all", "all", "all"), ("", "prefill", "all")):
        p = from_mapping({"steering.position": value, "steering.concepts": ["fast"], "steering.enabled": True},
                         base=params)
        config = control.from_params(p)
        assert config.position == value
        for policy, want in ((SteeredPolicy(prefill_family), family_default), (SteeredPolicy(_Policy()), other)):
            policy.update(config)
            running = resolve_position(policy.adapter, policy.status().config.position)
            msg = steering_state_msg(policy.status().config, model_id="tiny", random_weights=True,
                                     inference_count=0, position=running)
            assert running == want and msg.position_policy == want
