import pytest

from artifacts.errors import UserError
from compiler.spec import load_spec, preset_names, spec_from_dict


def test_pku_preset_matches_the_public_figures():
    spec = load_spec("pku-nc64c")
    assert "pku-nc64c" in preset_names()
    assert spec.cores_per_chip == 64
    assert spec.cores_per_chip * spec.core.neurons == 65536          # 64K neurons
    assert spec.cores_per_chip * spec.core.synapse_bits == 64 * 2**20  # 64M synapse bits
    assert spec.energy.pj_per_sop == 2.64


@pytest.mark.parametrize("data,match", [
    ({"core": {"axon": 3}}, "core.axon: unknown field"),
    ({"core": {"axons": -3}}, "core.axons: must lie in 1..65,536, got -3"),
    ({"mesh": {"cores_x": 10**6}}, "mesh.cores_x: must lie in 1..256"),
    ({"board": {"chips_x": 3000}}, "board.chips_x: must lie in 1..64"),
    ({"noc": {"buffer_depth": 10**8}}, "noc.buffer_depth: must lie in"),
    ({"noc": {"hop_cycles": 4 * 10**9}}, "noc.hop_cycles: must lie in"),
    ({"noc": {"router_cycles": -1}}, "noc.router_cycles: must lie in 0.."),
    ({"noc": {"credit_cycles": 0}}, "noc.credit_cycles: must lie in 1.."),
    ({"mesh": {"cores_x": 256, "cores_y": 256}, "board": {"chips_x": 2}}, "more than the 65,536"),
    ({"energy": {"pj_per_hop": float("nan")}}, "energy.pj_per_hop: must be a finite number"),
    ({"energy": {"pj_per_hop": float("inf")}}, "energy.pj_per_hop: must be a finite number"),
    ({1: 2}, "field name 1 is not text"),
    ({"noc": {"buffer_depth": "deep"}}, "noc.buffer_depth: must be an integer"),
    ({"energy": {"pj_per_sop": -1}}, "energy.pj_per_sop: must be a finite number in 0..1e\\+09"),
    ({"arithmetic": {"input_path": "usb"}}, "arithmetic.input_path"),
    ({"arithmetic": {"max_weight_bits": 12}}, "max_weight_bits: must lie in 1..8"),
    ({"mesh": 5}, "mesh: must be a mapping"),
])
def test_bad_fields_are_named(data, match):
    with pytest.raises(UserError, match=match):
        spec_from_dict(data)


def test_user_yaml_file(tmp_path):
    p = tmp_path / "chip.yaml"
    p.write_text("name: tiny\nmesh: {cores_x: 2, cores_y: 2}\ncore: {neurons: 256, axons: 256}\n")
    spec = load_spec(p)
    assert spec.name == "tiny" and spec.cores_per_chip == 4 and spec.core.axons == 256
    p.write_text("mesh: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_spec(p)
    with pytest.raises(UserError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(UserError, match="unknown chip preset"):
        load_spec("truenorth")
    with pytest.raises(UserError, match="is a directory"):
        load_spec(tmp_path)
    p.write_bytes(b"name: \xff\xfe\x00binary")
    with pytest.raises(UserError, match="not a UTF-8 text file"):
        load_spec(p)
