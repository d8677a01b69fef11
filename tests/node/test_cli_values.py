"""`vla-steer param set` value conversion to the declared type, and argument errors (no ROS)."""

from __future__ import annotations

import pytest
from rcl_interfaces.msg import ParameterType as T

from vla_policy.cli_ros import to_value
from vla_steer_tools.cli.main import main
from vla_steer_tools.errors import ConfigError


def test_values_follow_the_declared_type():
    assert to_value(8, T.PARAMETER_DOUBLE).double_value == 8.0
    assert to_value(True, T.PARAMETER_BOOL).bool_value is True
    assert to_value(3.0, T.PARAMETER_INTEGER).integer_value == 3
    assert to_value(8, T.PARAMETER_STRING).string_value == "8"
    assert list(to_value([], T.PARAMETER_STRING_ARRAY).string_array_value) == []
    assert list(to_value([1, 2], T.PARAMETER_DOUBLE_ARRAY).double_array_value) == [1.0, 2.0]


@pytest.mark.parametrize("value, type_", [
    ("eight", T.PARAMETER_DOUBLE), (2.5, T.PARAMETER_INTEGER), ([1.0], T.PARAMETER_DOUBLE),
    ("fast", T.PARAMETER_STRING_ARRAY), (1.0, T.PARAMETER_NOT_SET)])
def test_values_that_do_not_fit_are_refused(value, type_):
    with pytest.raises(ConfigError):
        to_value(value, type_)


def test_guessed_types():
    assert to_value(1.5).type == T.PARAMETER_DOUBLE
    assert to_value(["a"]).type == T.PARAMETER_STRING_ARRAY
    assert to_value([]).type == T.PARAMETER_STRING_ARRAY


def test_steer_without_a_concept_is_a_usage_error(capsys):
    assert main(["steer"]) == 2
    assert "--concept" in capsys.readouterr().err
    assert main(["param", "get", "/vla_policy"]) == 2
    assert "NAME" in capsys.readouterr().err
