"""Direction YAML files, the library, and the paper's flat-index dictionaries."""

from __future__ import annotations

import pytest

from vla_steer_tools.errors import DirectionError, UnknownChoiceError
from vla_steer_tools.steering.directions import (
    Direction, DirectionLibrary, export_flat_dict, import_flat_dict, load_direction, save_direction,
)
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
