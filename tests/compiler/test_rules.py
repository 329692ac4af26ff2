"""Every design rule: fires alone, names its numbers, and fires through `compile`."""

import dataclasses

import numpy as np
import pytest
import torch

from artifacts import mesh
from artifacts.errors import UserError
from compiler.compile import compile_checkpoint
from compiler.partition import partition
from compiler.rules import RULES, Design, Network, check, violations
from compiler.spec import spec_from_dict
from tests.helpers import MEAN, STD, TINY_CHIP, integer_model, random_layers, tiny_spec

TESTED: set[str] = set()


def tiny_network(spec=None, *, encoding="direct", bits=4, **layer0):
    layers = random_layers(np.random.default_rng(0))
    layers[0] = {**layers[0], **layer0}
    return Network(layers, encoding, bits, STD, spec or tiny_spec().with_board(4, 4))


def tiny_design(**core):
    spec = tiny_spec()
    model = integer_model(random_layers(np.random.default_rng(0)), spec=spec)
    cores, _ = partition(model, spec)
    spec = spec.with_board(4, 4)
    if core:
        spec = dataclasses.replace(spec, core=dataclasses.replace(spec.core, **core))
    return Design(model, cores, spec)


def fires_alone(stage, subject, name):
    found = violations(stage, subject)
    assert found and all(m.startswith(f"rule {name}: ") for m in found), found
    TESTED.add(name)
    return found[0]


def with_noc(spec, **noc):
    return dataclasses.replace(spec, noc=dataclasses.replace(spec.noc, **noc))


def test_a_clean_design_violates_no_rule():
    assert violations("network", tiny_network()) == []
    d = tiny_design()
    assert violations("cores", d) == []
    assert violations("routes", dataclasses.replace(d, n_routes=1000)) == []


@pytest.mark.parametrize("rule,change", [
    ("core-neurons", dict(neurons=8)),
    ("core-axons", dict(axons=8)),
    ("core-synapse-memory", dict(synapse_bits=512)),
])
def test_each_core_rule_fires_alone_with_its_numbers(rule, change):
    msg = fires_alone("cores", tiny_design(**change), rule)
    assert msg.startswith(f"rule {rule}: layer ") and "the core has" in msg


def test_board_capacity():
    d = tiny_design()
    small = dataclasses.replace(d, spec=d.spec.with_board(1, 1))
    assert "the network needs" in fires_alone("cores", small, "board-capacity")


@pytest.mark.parametrize("theta", [0.0, -0.4, float("nan")])
def test_threshold_positive(theta):
    msg = fires_alone("network", tiny_network(theta=theta), "threshold-positive")
    assert "layer conv1" in msg


@pytest.mark.parametrize("leak,what", [(0.0, "0 < lambda <= 1"), (-0.5, "0 < lambda <= 1"),
                                       (1.5, "0 < lambda <= 1"), (1e-4, "smallest")])
def test_leak_range(leak, what):
    assert what in fires_alone("network", tiny_network(leak=leak), "leak-range")


def test_weight_bits_and_threshold_bits_and_input_gain():
    spec = tiny_spec().with_board(4, 4)
    narrow = dataclasses.replace(spec, arithmetic=dataclasses.replace(spec.arithmetic,
                                                                      max_weight_bits=2))
    assert "4-bit weights" in fires_alone("network", tiny_network(narrow), "weight-bits")
    assert "0-bit" in fires_alone("network", tiny_network(bits=0), "weight-bits")
    # a huge threshold cannot be stored in 20 bits
    msg = fires_alone("network", tiny_network(theta=1e6), "threshold-bits")
    assert "layer conv1" in msg and "20-bit register holds 1048575" in msg
    # a 12-bit threshold leaves too few bits for the graded path's pixel gain
    gain = spec_from_dict({**TINY_CHIP, "arithmetic": {"threshold_bits": 12, "membrane_bits": 28}})
    assert "pixel gain of only" in fires_alone("network", tiny_network(gain), "input-gain")


def test_layer_fits_core():
    spec = tiny_spec().with_board(4, 4)
    spec = dataclasses.replace(spec, core=dataclasses.replace(spec.core, axons=4))
    msg = fires_alone("network", tiny_network(spec), "layer-fits-core")
    assert "layer conv1 needs at least 9 axons" in msg


def test_noc_field_rules_refuse_values_that_overflow_their_bits():
    d = tiny_design()
    msg = fires_alone("routes", dataclasses.replace(d, n_routes=mesh.MAX_ROUTES + 1), "route-ids")
    assert f"{mesh.MAX_ROUTES + 1:,}" in msg and "24-bit" in msg
    assert violations("routes", dataclasses.replace(d, n_routes=mesh.MAX_ROUTES)) == []
    msg = fires_alone("routes", dataclasses.replace(d, spec=with_noc(d.spec, link_flits_per_cycle=256)),
                      "link-bandwidth")
    assert "256" in msg and "255" in msg
    msg = fires_alone("routes", dataclasses.replace(d, spec=with_noc(d.spec, chip_hop_cycles=10**9)),
                      "hop-latency")
    assert "1,000,000,000" in msg
    msg = fires_alone("routes", dataclasses.replace(
        d, spec=with_noc(d.spec, chip_hop_cycles=mesh.MAX_HOP_CYCLES, router_cycles=1)),
        "hop-latency")
    assert "router_cycles 1 plus" in msg


def test_every_registered_rule_is_tested_here():
    # runs last in this file: each test above records the rules it saw fire
    assert TESTED == set(RULES), sorted(set(RULES) - TESTED)


def test_rules_fire_through_compile_and_nothing_is_written(tmp_path, trained_synthetic):
    """A trained negative leak and a zero threshold are named rule errors from `compile`."""
    path, _ = trained_synthetic
    payload = torch.load(path, weights_only=True)
    for key, value, rule in (("conv_lifs.1.leak", -0.25, "leak-range"),
                             ("fc_lifs.0.theta", 0.0, "threshold-positive")):
        bad = dict(payload, state_dict=dict(payload["state_dict"]))
        bad["state_dict"][key] = torch.tensor(value)
        layers = [dict(l) for l in payload["layers"]["layers"]]
        name = {"conv_lifs.1": "conv2", "fc_lifs.0": "fc1"}[key.rsplit(".", 1)[0]]
        field = "leak" if key.endswith("leak") else "threshold"
        for l in layers:
            if l["name"] == name:
                l[field] = value
        bad["layers"] = {**payload["layers"], "layers": layers}
        src = tmp_path / f"{rule}.pt"
        torch.save(bad, src)
        out = tmp_path / f"{rule}.chip"
        with pytest.raises(UserError, match=f"rule {rule}: layer {name}"):
            compile_checkpoint(src, tiny_spec(), out, log=lambda _: None)
        assert not out.exists()


def test_check_raises_the_first_violation():
    with pytest.raises(UserError, match="rule threshold-positive"):
        check("network", tiny_network(theta=-1.0))
    assert MEAN  # the helpers' normalization is what tiny_network's gain rule uses
