"""Properties of the direction rules over the whole class of inputs (Hypothesis), not examples:
every bad value is a DirectionError naming where it is, every good one round-trips exactly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vla_steer_tools.errors import DirectionError
from vla_steer_tools.steering.directions import (
    ALPHA_LIMIT, MAX_INDEX, MODES, Direction, DirectionLibrary, check_name, direction_file, direction_from_dict,
    export_flat_dict, export_sidecar, import_flat_dict, parse_yaml,
)
from vla_steer_tools.types import NeuronRef

# No deadline: CI machines are shared; a property must never fail on wall time.
PROPERTY = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])

WIDTH, LAYERS = 64, 4

#: Anything JSON or YAML can produce, plus the numeric edge cases.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from([39587.7, 1e30, 3.0, "12", "abc", float("inf"), -1, WIDTH * LAYERS]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                      max_leaves=6)


def _valid_flat(v: object) -> bool:
    return type(v) is int and 0 <= v < WIDTH * LAYERS


@PROPERTY
@given(st.lists(st.one_of(st.integers(0, WIDTH * LAYERS - 1), values), min_size=1, max_size=6))
@example([39587.7]).via("issue 9")
@example([True]).via("issue 9")
@example([None, "abc", 1e30, float("inf")]).via("issue 9")
def test_flat_import_accepts_exactly_the_valid_ids(ids):
    """A list of ids imports iff every id is a true, in-range, unique integer; otherwise the error
    names the cluster and the position of the first bad id."""
    data = {"ok": [0, 1], "cl": ids}
    good = all(_valid_flat(v) for v in ids) and len(set(ids)) == len(ids)
    if good:
        d = import_flat_dict(data, width=WIDTH, n_layers=LAYERS)[1]
        assert [r.layer * WIDTH + r.index for r in d.neurons] == ids
        return
    with pytest.raises(DirectionError) as err:
        import_flat_dict(data, width=WIDTH, n_layers=LAYERS)
    seen: dict[int, int] = {}
    for i, v in enumerate(ids):  # the first bad position, in file order
        if not _valid_flat(v):
            assert f"cluster 'cl', position {i}" in str(err.value)
            break
        if v in seen:
            assert f"cluster 'cl', positions {seen[v]} and {i}" in str(err.value)
            break
        seen[v] = i
    else:
        pytest.fail("no bad position, yet an error")


@PROPERTY
@given(values)
def test_flat_import_never_raises_anything_but_a_direction_error(data):
    try:
        dirs = import_flat_dict(data, width=WIDTH, n_layers=LAYERS)
    except DirectionError:
        return
    for d in dirs:
        d.check()


@PROPERTY
@given(st.text(max_size=40))
@example("../escaped").via("issue 9")
@example(".hidden").via("hidden files")
def test_a_name_that_passes_is_a_plain_file_inside_the_directory(name):
    try:
        check_name(name)
    except DirectionError as exc:
        assert "valid: 1-128 characters" in str(exc)
        return
    path = direction_file("/some/dir", name)
    assert path.parent == Path("/some/dir") and path.name == f"{name}.yaml"
    assert not path.name.startswith(".") and "/" not in name and "\\" not in name and ".." not in name


direction_fields = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["fast", "up_10"]), values)},
    optional={
        "alpha": st.one_of(st.floats(-2 * ALPHA_LIMIT, 2 * ALPHA_LIMIT), values),
        "mode": st.one_of(st.sampled_from(MODES), values),
        "neurons": st.one_of(
            st.lists(st.tuples(st.just("backbone"), st.integers(0, 3), st.integers(0, 9)).map(list), max_size=4),
            st.lists(values, max_size=3), values),
        "signs": values,
        "model_shapes": st.one_of(st.just({"backbone": [4, 10]}), values),
        "description": values,
    },
)


@PROPERTY
@given(direction_fields)
def test_direction_mapping_is_valid_or_a_direction_error(data):
    """Any mapping a YAML file can hold becomes a Direction that passes every rule, or a
    DirectionError: never a TypeError, a silent truncation or a bool read as a neuron."""
    try:
        d = direction_from_dict(data, where="f.yaml")
    except DirectionError as exc:
        assert str(exc).startswith("f.yaml")
        return
    d.check()
    assert abs(d.alpha) <= ALPHA_LIMIT and math.isfinite(d.alpha)
    assert len(set(d.neurons)) == len(d.neurons)
    assert all(type(r.layer) is int and type(r.index) is int and r.index <= MAX_INDEX for r in d.neurons)


@PROPERTY
@given(st.binary(max_size=60) | st.text(max_size=60).map(str.encode))
def test_library_survives_any_file_content(tmp_path_factory, content):
    folder = tmp_path_factory.mktemp("lib")
    (folder / "good.yaml").write_text("name: good\nneurons: [[backbone, 0, 1]]\n")
    (folder / "any.yaml").write_bytes(content)
    lib = DirectionLibrary([folder])
    assert "good" in lib.names()
    loaded = any(lib.path(n) == folder / "any.yaml" for n in lib.names())
    assert loaded != (folder / "any.yaml" in lib.broken)  # either loaded or reported, never lost


neuron_sets = st.lists(st.tuples(st.integers(0, LAYERS - 1), st.integers(0, WIDTH - 1)), min_size=1, max_size=8, unique=True)


@st.composite
def directions(draw):
    refs = draw(neuron_sets)
    signs = draw(st.one_of(st.just(()), st.lists(st.sampled_from([-1.0, 1.0]), min_size=len(refs), max_size=len(refs)).map(tuple)))
    return Direction(
        name=draw(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)),
        neurons=tuple(NeuronRef("backbone", l, i) for l, i in refs),
        alpha=draw(st.floats(-ALPHA_LIMIT, ALPHA_LIMIT, allow_nan=False)),
        mode=draw(st.sampled_from(MODES)), signs=signs, model_shapes=(("backbone", LAYERS, WIDTH),),
        description=draw(st.text(max_size=10)), provenance="test",
    )


@PROPERTY
@given(st.lists(directions(), min_size=1, max_size=3, unique_by=lambda d: d.name))
def test_export_then_import_gives_back_the_same_directions(dirs):
    """Through JSON, as the CLI writes it: the flat file plus its sidecar lose nothing."""
    flat = json.loads(json.dumps(export_flat_dict(dirs, WIDTH)))
    side = json.loads(json.dumps(export_sidecar(dirs, WIDTH)))
    assert import_flat_dict(flat, WIDTH, LAYERS, sidecar=side) == dirs


@PROPERTY
@given(st.text(max_size=80))
def test_yaml_parsing_fails_only_with_a_direction_error(text):
    try:
        parse_yaml(text, "t.yaml")
    except DirectionError as exc:
        assert str(exc).startswith("t.yaml: not valid YAML")
