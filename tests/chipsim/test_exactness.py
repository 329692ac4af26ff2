"""The contract: for any chip image and input, every neuron's spike train equals the integer
reference model's, bit for bit."""

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from artifacts.chipimage import ROLE_PARTIAL, merged_sources
from chipsim.chip import Chip
from chipsim.flat import flatten
from chipsim.machine import machine_from_arrays
from compiler.reference import run_reference
from tests.helpers import (
    NETWORK_CASES,
    compile_in_memory,
    integer_model,
    random_images,
    random_layers,
    tiny_spec,
)


def assert_bit_exact(model, meta, arrays, images, seed=0):
    """Both ways the kernels add synapses (rows, and VNNI quads where a core allows them;
    without VNNI the quads run as portable vector code) against the reference."""
    machine = machine_from_arrays(meta, arrays)
    ref = run_reference(model, images, rng=np.random.default_rng(seed), record=True,
                        norm=(meta["model"]["mean"], meta["model"]["std"]))
    for quads in (False, True):
        sim = Chip(machine, quads=quads).run(images, rng=np.random.default_rng(seed), record=True)
        for name, trains in sim.spikes.items():
            expected = ref.spikes[name].reshape(*ref.spikes[name].shape[:2], -1).transpose(1, 0, 2)
            if not np.array_equal(trains, expected):
                b, t, n = np.argwhere(trains != expected)[0]
                pytest.fail(f"first mismatch (quads={quads}): layer {name}, image {b}, step {t}, "
                            f"neuron {n}")
        assert np.array_equal(sim.logits, ref.logits)
    return sim, ref


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**NETWORK_CASES)
def test_random_networks_are_bit_exact(seed, encoding, reset, leak, bits, input_path):
    rng = np.random.default_rng(seed)
    spec = tiny_spec(input_path=input_path)
    model = integer_model(random_layers(rng, leak=leak, theta=(0.3, 0.6)), encoding=encoding,
                          bits=bits, reset=reset, spec=spec)
    meta, arrays = compile_in_memory(model, spec)
    assert_bit_exact(model, meta, arrays, random_images(rng, 6), seed=seed)


def test_tiny_chip_forces_splits_merges_and_several_chips():
    rng = np.random.default_rng(1)
    spec = tiny_spec()
    # fan-in: conv2 6 x 9 = 54 and fc1 12 x 2 x 2 = 48, both above the tiny core's 40 axons
    model = integer_model(random_layers(rng, channels=(6, 12), theta=(0.3, 0.3)), spec=spec)
    meta, arrays = compile_in_memory(model, spec)
    groups = {p["layer"]: p["groups"] for p in meta["plans"]}
    assert groups["conv2"] >= 2 and groups["fc1"] >= 2
    assert (flatten(machine_from_arrays(meta, arrays), quads=True).qbase >= 0).sum() >= 4
    assert meta["board"]["chips_x"] * meta["board"]["chips_y"] > 1
    sim, _ = assert_bit_exact(model, meta, arrays, random_images(rng, 8))
    assert sim.spikes["conv2"].sum() > 0 and sim.spikes["fc1"].sum() > 0  # not a silent network
    machine = machine_from_arrays(meta, arrays)
    assert_packets_land_where_routes_go(machine, sim)
    assert_partial_sums_send_one_packet_each(machine, sim)


@pytest.mark.parametrize("channels, encoding",
                         [((8, 16), "rate"), ((8, 16), "phase"), ((16, 16), "phase")])
def test_both_ways_of_reading_quads_are_bit_exact(channels, encoding):
    """Aligned quad cores read four entries' event bytes as one uint32; the others gather their
    axons one by one (conv1's four channels per position, split channel groups). A host event
    is one packet whatever its value (phase: up to 128), a spike packet carries 1; T = 5
    leaves padding steps."""
    rng = np.random.default_rng(3)
    spec = tiny_spec()
    model = integer_model(random_layers(rng, channels=channels, theta=(0.3, 0.3), in_channels=4,
                                        hidden=32), encoding=encoding, timesteps=5, spec=spec)
    meta, arrays = compile_in_memory(model, spec)
    flat = flatten(machine_from_arrays(meta, arrays), quads=True)
    quad, aligned = flat.qbase >= 0, flat.qaligned
    assert aligned.any() and (quad & ~aligned).any()
    assert aligned[flat.core_layer == 0].any() == (channels[0] == 16)   # host events, aligned
    images = random_images(rng, 6, channels=4)
    sim, _ = assert_bit_exact(model, meta, arrays, images)
    assert all(s.sum() > 0 for s in sim.spikes.values())                    # nothing silent
    rows = Chip(machine_from_arrays(meta, arrays), quads=False).run(
        images, rng=np.random.default_rng(0), record=True)
    for counter in ("sops", "packets_in", "packets_out", "route_packets"):
        np.testing.assert_array_equal(getattr(sim, counter), getattr(rows, counter))


def test_counters_are_consistent():
    rng = np.random.default_rng(2)
    spec = tiny_spec()
    model = integer_model(random_layers(rng), spec=spec)
    meta, arrays = compile_in_memory(model, spec)
    chip = Chip(machine_from_arrays(meta, arrays), quads=True)
    images = random_images(rng, 4)
    sim = chip.run(images, record=True)
    rows = Chip(chip.machine, quads=False).run(images, record=True)
    for counter in ("spikes_out", "sops", "packets_in", "packets_out", "route_packets"):
        np.testing.assert_array_equal(getattr(sim, counter), getattr(rows, counter))
    # one packet per spike of a neuron that has receivers; every packet reaches >= 1 core
    spikes = sum(int(s.sum()) for s in sim.spikes.values())
    assert sim.spikes_out.sum() == spikes
    assert 0 < sim.packets_out.sum() <= sim.packets_in.sum()
    # route packets = packets from cores + host input events (pixels > 0 on the graded path)
    assert sim.route_packets.sum() == sim.packets_out.sum() + model.timesteps * np.count_nonzero(images)
    assert_packets_land_where_routes_go(chip.machine, sim)
    assert sim.sops.sum() > 0


def assert_partial_sums_send_one_packet_each(machine, sim):
    """A partial-sum core sends one packet per neuron and step whose partial sum (its crossbar
    times its axons' inputs, computed here in numpy) is not zero."""
    partial = [c for c in machine.cores if c.role == ROLE_PARTIAL]
    assert partial and all(c.layer > 0 for c in partial)
    for c in partial:
        prev = machine.layers[c.layer - 1]
        spikes = sim.spikes[prev.name].astype(np.int64)            # (N, T, neurons)
        if machine.layers[c.layer].pooled_input:
            inputs = spikes[:, :, merged_sources(prev.out_shape, c.axons)].sum(axis=-1)
        else:
            inputs = spikes[:, :, c.axons]
        sums = inputs @ c.crossbar.astype(np.int64)                 # (N, T, the core's neurons)
        assert sim.packets_out[c.index] == np.count_nonzero(sums)


def assert_packets_land_where_routes_go(machine, sim):
    """Each packet on a route lands once in every core the route reaches (partial sums too)."""
    expected_in = np.zeros(len(machine.cores), dtype=np.int64)
    for r, packets in enumerate(sim.route_packets.sum(axis=0)):
        expected_in[machine.destinations(r)] += packets
    np.testing.assert_array_equal(sim.packets_in, expected_in)


@pytest.mark.parametrize("encoding", ["phase", "rate"])
def test_more_steps_than_the_step_bits_are_bit_exact(encoding):
    # the kernels mark the steps a target received packets in with bit t % 8 of a byte; with
    # T = 11 steps t and t + 8 share a bit, and a step without packets must add nothing
    rng = np.random.default_rng(5)
    spec = tiny_spec()
    model = integer_model(random_layers(rng, theta=(0.3, 0.5)), encoding=encoding,
                          timesteps=11, spec=spec)
    meta, arrays = compile_in_memory(model, spec)
    sim, _ = assert_bit_exact(model, meta, arrays, random_images(rng, 4), seed=5)
    assert sum(int(s[:, 8:].sum()) for s in sim.spikes.values()) > 0   # the late steps fire


def test_results_do_not_depend_on_batching_or_threads():
    # each worker reuses one workspace for its images: nothing may leak from one to the next
    rng = np.random.default_rng(6)
    spec = tiny_spec()
    model = integer_model(random_layers(rng, theta=(0.3, 0.5)), spec=spec)
    meta, arrays = compile_in_memory(model, spec)
    chip = Chip(machine_from_arrays(meta, arrays), quads=True)
    images = random_images(rng, 7)
    whole = chip.run(images, record=True)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = chip.run(images, record=True)
    finally:
        numba.set_num_threads(threads)
    singles = [chip.run(images[i:i + 1], record=True) for i in range(len(images))]
    np.testing.assert_array_equal(serial.logits, whole.logits)
    np.testing.assert_array_equal(serial.per_image_route_packets, whole.per_image_route_packets)
    for name in whole.spikes:
        np.testing.assert_array_equal(serial.spikes[name], whole.spikes[name])
    np.testing.assert_array_equal(np.concatenate([s.logits for s in singles]), whole.logits)
    for name in whole.spikes:
        np.testing.assert_array_equal(np.concatenate([s.spikes[name] for s in singles]),
                                      whole.spikes[name])
    np.testing.assert_array_equal(sum(s.sops for s in singles), whole.sops)
