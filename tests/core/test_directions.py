"""Direction YAML files, the library, and the paper's flat-index dictionaries."""

from __future__ import annotations

import pytest

from vla_steer_tools.errors import DirectionError, UnknownChoiceError
from vla_steer_tools.steering.directions import (
    ALPHA_LIMIT, Direction, DirectionLibrary, check_name, direction_file, export_flat_dict, export_sidecar,
    import_flat_dict, load_direction, parse_yaml, save_direction,
)
from vla_steer_tools.steering.hooks import Steerer, SteeringConfig, steering
from vla_steer_tools.types import NeuronRef


def _fast():
    return Direction(
        name="fast", neurons=(NeuronRef("backbone", 25, 1187), NeuronRef("backbone", 3, 7)),
        alpha=8.0, mode="add", signs=(-1.0, 1.0), provenance="keyword 'fast'", model_id="m",
        description="speed", model_shapes=(("backbone", 30, 1536),),
    )


def test_yaml_round_trip(tmp_path):
    path = save_direction(_fast(), tmp_path / "fast.yaml")
    assert load_direction(path) == _fast()
    assert "{component: backbone, layer: 25, index: 1187, sign: -1}" in path.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp file left behind"


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nneurons: []\n", "no neurons"),
        ("name: x\nalpha: .nan\nneurons: [[backbone, 0, 1]]\n", "alpha must be finite"),
        ("name: x\nalpha: fast\nneurons: [[backbone, 0, 1]]\n", "not a number"),
        ("name: x\nmode: clamp\nneurons: [[backbone, 0, 1]]\n", "unknown mode"),
        ("name: x\nneurons: [{layer: 0}]\n", "bad neuron entry"),
        ("name: x\nneurons: [[head, 0, 1]]\n", "unknown component"),
        ("name: x\ncolour: red\nneurons: [[backbone, 0, 1]]\n", "unknown keys"),
        ("[1, 2", "not valid YAML"),
        # the whole class of bad values (issue 9): range, strict types, duplicates, names
        ("name: x\nalpha: 1.0e300\nneurons: [[backbone, 0, 1]]\n", r"out of range; valid: \[-1000, 1000\]"),
        ("name: x\nalpha: 1001\nneurons: [[backbone, 0, 1]]\n", "out of range"),
        ("name: x\nalpha: -.inf\nneurons: [[backbone, 0, 1]]\n", "alpha must be finite"),
        ("name: x\nalpha: true\nneurons: [[backbone, 0, 1]]\n", "not a number"),
        ("name: x\nalpha: '8'\nneurons: [[backbone, 0, 1]]\n", "not a number"),
        ("name: x\nneurons: [[backbone, 0, 3.7]]\n", r"neurons\[0\]: index: 3.7 is not an integer"),
        ("name: x\nneurons: [[backbone, true, 3]]\n", "layer: True is not an integer"),
        ("name: x\nneurons: [[backbone, 0, '3']]\n", "not an integer"),
        ("name: x\nneurons: [[backbone, 0, null]]\n", "not an integer"),
        ("name: x\nneurons: [[backbone, 0, 4294967296]]\n", "out of range"),
        ("name: x\nneurons: [[backbone, 0, 1], [backbone, 0, 1]]\n", r"listed twice \(neurons\[0\] and neurons\[1\]\)"),
        ("name: x\nneurons: [[backbone, 0, 1, 2]]\n", "valid: -1..1"),
        ("name: x\nneurons: [[backbone, 0, 1, .nan]]\n", "sign must be finite"),
        ("name: x\nmodel_shapes: {backbone: [2, 8]}\nneurons: [[backbone, 2, 1]]\n", "outside its recorded model shape"),
        ("name: ../escaped\nneurons: [[backbone, 0, 1]]\n", "not allowed; valid"),
        ("name: .hidden\nneurons: [[backbone, 0, 1]]\n", "not allowed"),
        ("name: 12\nneurons: [[backbone, 0, 1]]\n", "not a string"),
        ("neurons: [[backbone, 0, 1]]\n", "no name"),
        ("name: x\nalpha: 1\nalpha: 2\nneurons: [[backbone, 0, 1]]\n", "duplicate key 'alpha'"),
        ("name: x\nneurons: 5\n", "neurons must be a list"),
        ("name: x\ndescription: [a]\nneurons: [[backbone, 0, 1]]\n", "description .* is not a string"),
    ],
)
def test_bad_yaml_names_the_problem(tmp_path, text, message):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(DirectionError, match=message):
        load_direction(p)


def test_library(tmp_path):
    save_direction(_fast(), tmp_path / "a" / "fast.yaml")
    save_direction(Direction("up", (NeuronRef("backbone", 1, 2),)), tmp_path / "b" / "up.yml")
    lib = DirectionLibrary([tmp_path / "a", tmp_path / "b"])
    assert lib.names() == ["fast", "up"]
    assert lib.get("fast") == _fast()
    assert "2 neurons (backbone/L3, backbone/L25)" in lib.describe("fast")
    with pytest.raises(UnknownChoiceError, match="did you mean 'fast'"):
        lib.get("fats")
    # not recursive: a sub-directory (another model's directions) stays out
    save_direction(Direction("down", (NeuronRef("backbone", 1, 3),)), tmp_path / "a" / "other_model" / "down.yaml")
    assert DirectionLibrary([tmp_path / "a"]).names() == ["fast"]
    # a later directory wins a name clash
    save_direction(Direction("fast", (NeuronRef("backbone", 0, 0),)), tmp_path / "c" / "fast.yaml")
    assert DirectionLibrary([tmp_path / "a", tmp_path / "c"]).get("fast").neurons == (NeuronRef("backbone", 0, 0),)


def test_flat_index_round_trip():
    paper = {"up_10": [18 * 11008 + 5, 27 * 11008 + 11007], "low": [0, 15 * 11008]}
    dirs = import_flat_dict(paper, width=11008, n_layers=32, source="up.json")
    assert dirs[0].neurons == (NeuronRef("backbone", 18, 5), NeuronRef("backbone", 27, 11007))
    assert dirs[0].model_shapes == (("backbone", 32, 11008),)
    assert export_flat_dict(dirs, width=11008) == paper
    with pytest.raises(DirectionError, match="out of range"):
        import_flat_dict({"x": [32 * 11008]}, width=11008, n_layers=32)
    with pytest.raises(DirectionError, match="out of range for layer width"):
        export_flat_dict([Direction("y", (NeuronRef("backbone", 0, 20000),))], width=11008)


def test_unreadable_bytes_are_a_direction_error(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"name: x\xff\xfe\n")
    with pytest.raises(DirectionError, match="not UTF-8"):
        load_direction(p)


def test_library_skips_broken_files_and_reports_them(tmp_path, caplog):
    """One unreadable file (corrupt, alpha .nan, binary, a bad name) is skipped with a warning and
    reported with its reason; the good files still load (it used to raise for the whole library)."""
    save_direction(_fast(), tmp_path / "fast.yaml")
    (tmp_path / "corrupt.yaml").write_text("name: [unclosed\n")
    (tmp_path / "nan.yaml").write_text("name: nan\nalpha: .nan\nneurons: [[backbone, 0, 1]]\n")
    (tmp_path / "binary.yml").write_bytes(b"\x00\xff\x81")
    (tmp_path / "escape.yaml").write_text("name: ../up\nneurons: [[backbone, 0, 1]]\n")
    (tmp_path / ".fast.yaml.tmp.yaml").write_text("half-written")  # hidden: an atomic write's temp file
    lib = DirectionLibrary([tmp_path])
    assert lib.names() == ["fast"] and lib.get("fast") == _fast()
    reasons = {p.name: why for p, why in lib.broken.items()}
    assert sorted(reasons) == ["binary.yml", "corrupt.yaml", "escape.yaml", "nan.yaml"]
    assert "not valid YAML" in reasons["corrupt.yaml"] and "alpha must be finite" in reasons["nan.yaml"]
    assert "not UTF-8" in reasons["binary.yml"] and "not allowed" in reasons["escape.yaml"]
    assert "skipping direction file" in caplog.text and "nan.yaml" in caplog.text
    with pytest.raises(DirectionError, match="its file is broken: .*alpha must be finite"):
        lib.get("nan")


def test_one_alpha_range_on_every_path(tiny_llama):
    """[-1000, 1000] (the node parameter's range) holds for files, options, the Steerer and imports."""
    _, adapter = tiny_llama
    d = Direction("d", (NeuronRef("backbone", 0, 1),))
    assert ALPHA_LIMIT == 1000.0
    d.with_options(alpha=1000.0).check()
    for bad in (1e39, -1000.5, float("inf"), float("nan"), 1e300):
        with pytest.raises(DirectionError, match="alpha"):
            d.with_options(alpha=bad)
        with pytest.raises(DirectionError, match="alpha"):
            Steerer(adapter, SteeringConfig((Direction("d", d.neurons, alpha=bad),), enabled=True))
        with pytest.raises(DirectionError, match="alpha"):
            with steering(adapter, d, alpha=bad):
                pass
        with pytest.raises(DirectionError, match="alpha"):
            import_flat_dict({"x": [1]}, width=48, alpha=bad)


@pytest.mark.parametrize("name", ["../escaped", "a/b", "a\\b", ".hidden", "..", "", "a\x00b", "-rf", "x" * 129, "a..b", "a b"])
def test_names_that_cannot_be_file_names(tmp_path, name):
    with pytest.raises(DirectionError, match="valid: 1-128 characters"):
        check_name(name)
    with pytest.raises(DirectionError):
        direction_file(tmp_path, name)
    with pytest.raises(DirectionError):
        save_direction(Direction(name, (NeuronRef("backbone", 0, 1),)), tmp_path / "d.yaml")


W = 100


@pytest.mark.parametrize(
    "value, message",
    [
        (39587.7, "39587.7 is not an integer flat index"),
        (3.0, "3.0 is not an integer flat index"),
        (True, "True is not an integer flat index"),
        (None, "None is not an integer flat index"),
        ("abc", "'abc' is not an integer flat index"),
        ("12", "'12' is not an integer flat index"),
        (1e30, "is not an integer flat index"),
        (float("inf"), "inf is not an integer flat index"),
        (float("nan"), "nan is not an integer flat index"),
        ([1], r"\[1\] is not an integer flat index"),
        (-1, "flat index -1 out of range"),
        (10**30, "out of range"),
        (4 * W, "flat index 400 out of range for 4 layers x 100"),
    ],
)
def test_flat_import_bad_values_name_cluster_and_position(value, message):
    with pytest.raises(DirectionError, match=message) as err:
        import_flat_dict({"ok": [1, 2], "up": [5, 7, value]}, width=W, n_layers=4)
    assert "cluster 'up', position 2" in str(err.value)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"up": [5, 7, 5]}, "flat index 5 listed twice"),
        ({"up": []}, "has no indices"),
        ({"up": 5}, "expected a list of flat indices or a mapping"),
        ({"../escaped": [1]}, "cluster name '../escaped' is not allowed"),
        ({"": [1]}, "not allowed"),
        ({7: [1]}, "cluster name 7 is not a string"),
        ({}, "no clusters"),
        ([1, 2], "expected a mapping"),
        ({"up": {"5": "up"}}, "tokens must be a list"),
        ({"up": {"5.5": ["up"]}}, "'5.5' is not an integer flat index"),
    ],
)
def test_flat_import_bad_structure(data, message):
    with pytest.raises(DirectionError, match=message):
        import_flat_dict(data, width=W, n_layers=4)


def test_flat_import_research_code_dict_forms():
    """`name: [flat]` and `name: {flat: [tokens]}` (JSON string keys or YAML int keys)."""
    as_list = import_flat_dict({"up": [105, 3]}, width=W, n_layers=4)[0]
    as_json = import_flat_dict({"up": {"105": ["up", "upward"], "3": ["high"]}}, width=W, n_layers=4)[0]
    as_yaml = import_flat_dict(parse_yaml("up: {105: [up, upward], 3: [high]}", "t"), width=W, n_layers=4)[0]
    assert as_list.neurons == as_json.neurons == as_yaml.neurons == (NeuronRef("backbone", 1, 5), NeuronRef("backbone", 0, 3))
    assert "top tokens up, upward, high" in as_json.provenance


def test_export_errors_and_sidecar_round_trip():
    fast = _fast()
    with pytest.raises(DirectionError, match="names given more than once: fast"):
        export_flat_dict([fast, fast], width=1536)
    with pytest.raises(DirectionError, match="width 11008 does not match its recorded model shape backbone 30 layers x 1536"):
        export_flat_dict([fast], width=11008)
    flat, side = export_flat_dict([fast], 1536), export_sidecar([fast], 1536)
    assert import_flat_dict(flat, 1536, 30, sidecar=side) == [fast.__class__(**{**fast.__dict__, "provenance": fast.provenance})]
    with pytest.raises(DirectionError, match="written for width 1536"):
        import_flat_dict(flat, 2048, sidecar=side)
    with pytest.raises(DirectionError, match="does not match the sidecar's recorded shape"):
        import_flat_dict(flat, 1536, 31, sidecar=side)
    with pytest.raises(DirectionError, match="clusters not in it: ghost"):
        import_flat_dict(flat, 1536, sidecar={**side, "directions": {**side["directions"], "ghost": {}}})


def test_duplicate_neurons_never_compound(tiny_llama):
    """A neuron listed twice used to get its edit twice (scale 3 -> x9); now every path refuses it."""
    _, adapter = tiny_llama
    twice = Direction("d", (NeuronRef("backbone", 0, 1), NeuronRef("backbone", 0, 1)), alpha=3.0, mode="scale")
    with pytest.raises(DirectionError, match="listed twice"):
        Steerer(adapter, SteeringConfig((twice,), enabled=True))
    with pytest.raises(DirectionError, match="listed twice"):
        import_flat_dict({"d": [1, 1]}, width=48)
