"""VGG5 with trained weights on real (synthetic-dataset) images: bit-exact, and the simulate
command's JSON holds the fields the issue names."""

import json

import numpy as np
import pytest

from artifacts.chipimage import expand_crossbar, read_chip_image
from chipsim import flat as flat_module
from chipsim.chip import Chip
from chipsim.machine import load_machine, machine_from_arrays
from compiler.image import load_integer_model
from spikemesh.cli import main
from spikemesh.crosscheck import CrossCheck, MismatchError
from training.data import load_dataset


@pytest.fixture(scope="module")
def vgg5_chip(trained_chip):
    return trained_chip


def test_vgg5_spikes_match_the_reference_bit_for_bit(vgg5_chip):
    meta, arrays = read_chip_image(vgg5_chip)
    images = load_dataset("synthetic", val_size=500).val.images.numpy()[:12]
    chip = Chip(machine_from_arrays(meta, arrays), quads=True)
    res = chip.run(images, record=True)
    check = CrossCheck(load_integer_model(meta, arrays), (meta["model"]["mean"], meta["model"]["std"]))
    check(images, res, np.random.default_rng().bit_generator.state)   # raises on any mismatch
    assert check.images_checked == 12
    assert all(res.spikes[name].sum() > 0 for name in res.spikes)
    rows = Chip(chip.machine, quads=False).run(images, record=True)   # the other synapse path
    for name in res.spikes:
        np.testing.assert_array_equal(rows.spikes[name], res.spikes[name])
    for counter in ("logits", "sops", "packets_in", "packets_out", "route_packets"):
        np.testing.assert_array_equal(getattr(rows, counter), getattr(res, counter))


def _kernel_order(flat, c):
    """Row and column indices into c.crossbar of the simulator's own axon and neuron order."""
    rows = np.searchsorted(c.axons, flat.axon_input[flat.abase[c.index]:flat.abase[c.index + 1]])
    cols = np.searchsorted(c.neurons, flat.slot_neuron[flat.nbase[c.index]:flat.nbase[c.index + 1]])
    return rows, cols


def test_identical_crossbars_are_stored_once_and_read_back_whole(vgg5_chip):
    machine = load_machine(vgg5_chip)
    flat = Chip(machine, quads=False).flat
    with_xbar = [c for c in machine.cores if c.crossbar is not None]
    for c in with_xbar:
        start = flat.xbase[c.index]
        rows, cols = _kernel_order(flat, c)
        np.testing.assert_array_equal(flat.xbar[start:start + c.crossbar.size].reshape(c.crossbar.shape),
                                      c.crossbar[rows][:, cols])
    assert flat.xbar.size < sum(c.crossbar.size for c in with_xbar) / 3   # conv tiles repeat
    assert flat.xbar.dtype == np.int8                                      # 4-bit weights


def test_spike_driven_cores_store_their_crossbars_in_quads(vgg5_chip):
    machine = load_machine(vgg5_chip)
    flat = Chip(machine, quads=True).flat
    quad = flat.qbase >= 0
    for c in machine.cores:
        if c.crossbar is None:
            assert not quad[c.index]
            continue
        # conv1's graded inputs (pixel x gain) do not fit a byte; the spike layers' do, and
        # each four axons read four consecutive entries (one uint32 of event bytes)
        assert quad[c.index] == (c.layer > 0 and machine.layers[c.layer].kind != "out")
        assert flat.qaligned[c.index] == quad[c.index]
        if not quad[c.index]:
            continue
        n_axons, n_cols = c.crossbar.shape
        n_quads = -(-n_axons // 4)
        stored = flat.xquad[flat.qbase[c.index]:flat.qbase[c.index] + n_quads * n_cols * 4]
        rows = stored.reshape(n_quads, n_cols, 4).transpose(0, 2, 1).reshape(-1, n_cols)
        r, k = _kernel_order(flat, c)
        np.testing.assert_array_equal(rows[:n_axons], c.crossbar[r][:, k])
        assert not rows[n_axons:].any()
    assert flat.xquad.dtype == np.int8
    assert flat.xquad.size < sum(c.crossbar.size for c in machine.cores if c.crossbar is not None)


def test_cores_with_matching_tiles_share_one_correct_crossbar(vgg5_chip):
    machine = load_machine(vgg5_chip)
    conv = [c for c in machine.cores if c.crossbar is not None and machine.layers[c.layer].kind == "conv"]
    for c in conv:
        lay = machine.layers[c.layer]
        direct = expand_crossbar("conv", lay.in_shape, lay.out_shape, lay.units, c.neurons, c.axons)
        np.testing.assert_array_equal(c.crossbar, direct)
        np.testing.assert_array_equal(c.nnz_per_axon, (direct != 0).sum(axis=1))
    assert len({id(c.crossbar) for c in conv}) < len(conv) / 4
    assert not conv[0].crossbar.flags.writeable


def test_row_runs_hold_every_synapse_and_skip_the_empty_columns(vgg5_chip):
    machine = load_machine(vgg5_chip)
    flat = Chip(machine, quads=False).flat
    gap = flat_module.RUN_MERGE_GAP
    covered, total = {}, {}
    for c in machine.cores:
        if c.crossbar is None:
            continue
        n_rows, n_cols = c.crossbar.shape
        rows = flat.xbar[flat.xbase[c.index]:flat.xbase[c.index] + c.crossbar.size].reshape(n_rows, n_cols)
        for i in range(n_rows):
            pattern = flat.row_pattern[flat.rbase[c.index] + i]
            inside = np.zeros(n_cols, dtype=bool)
            for k in range(flat.run_ptr[pattern], flat.run_ptr[pattern + 1]):
                inside[flat.run_lo[k]:flat.run_hi[k]] = True
            assert not rows[i][~inside].any()          # no synapse outside the row's runs
            n_runs = flat.run_ptr[pattern + 1] - flat.run_ptr[pattern]
            assert inside.sum() < np.count_nonzero(rows[i]) + gap * n_runs   # only short gaps
            covered[c.layer] = covered.get(c.layer, 0) + inside.sum()
        total[c.layer] = total.get(c.layer, 0) + c.crossbar.size
    # position-major order turns conv rows into a few dense runs: far fewer columns to add.
    # conv1's 4 x 4-position tiles: a pixel reaches at most 9 of 16 positions
    assert covered[0] < 0.5 * total[0]
    assert covered[1] < 0.8 * total[1]


def test_runs_merge_only_short_gaps():
    row = np.zeros(100, dtype=bool)
    row[[2, 3, 4, 10, 40, 41]] = True
    gap = flat_module.RUN_MERGE_GAP
    assert 10 - 5 < gap <= 40 - 11
    np.testing.assert_array_equal(flat_module._runs(row), [[2, 11], [40, 42]])
    assert flat_module._runs(np.zeros(5, dtype=bool)).shape == (0, 2)


def test_verify_catches_a_broken_chip(vgg5_chip):
    meta, arrays = read_chip_image(vgg5_chip)
    machine = load_machine(vgg5_chip)
    chip = Chip(machine)
    chip.flat.threshold[1] += 1000        # a wrong conv2 threshold inside the simulator
    images = load_dataset("synthetic", val_size=500).val.images.numpy()[:4]
    res = chip.run(images, record=True)
    check = CrossCheck(load_integer_model(meta, arrays), (meta["model"]["mean"], meta["model"]["std"]))
    with pytest.raises(MismatchError, match="layer conv2, image 0, step"):
        check(images, res, np.random.default_rng().bit_generator.state)


def test_simulate_command_json(vgg5_chip, tmp_path, capsys):
    out = tmp_path / "sim.json"
    code = main(["simulate", str(vgg5_chip), "--n", "4", "--verify", "--json", str(out), "--quiet"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "match the integer reference bit for bit" in stdout
    data = json.loads(out.read_text())
    for key in ("n", "accuracy", "sops_per_inference", "cycles_per_step",
                "energy_uj_per_inference", "cores", "links", "reference_match"):
        assert key in data
    assert data["n"] == 4 and data["reference_match"] is True and data["cycles_per_step"] > 0
    assert set(data["cores"][0]) >= {"x", "y", "layer", "spikes_out", "sops", "packets_in", "packets_out"}
    assert set(data["links"][0]) >= {"from", "to", "flits"}
    assert sum(c["sops"] for c in data["cores"]) == pytest.approx(4 * data["sops_per_inference"])


def test_simulate_refuses_a_corrupt_image(tmp_path, capsys):
    bad = tmp_path / "bad.chip"
    bad.write_bytes(b"SPIKEMESH-CHIP\x00\x01" + b"\x00" * 40)
    assert main(["simulate", str(bad), "--quiet"]) == 2
    assert "fails its checksum" in capsys.readouterr().err
