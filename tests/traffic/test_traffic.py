"""`spikemesh traffic`: its totals are the simulator's counters, its core pairs account for every
packet a core receives, its PNGs are images and its Noxim table loads the way Noxim reads it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from chipsim.chip import Chip
from chipsim.machine import machine_from_arrays
from chipsim.simulate import simulate_dataset
from chipsim.traffic import pair_packets
from spikemesh.cli import main
from spikemesh.traffic.run import simulate_traffic, write_run
from tests.helpers import compile_in_memory, integer_model, random_images, random_layers, tiny_spec


@pytest.fixture(scope="module")
def tiny():
    """A small network on the tiny chip: split over several chips, every kind of core."""
    rng = np.random.default_rng(4)
    model = integer_model(random_layers(rng, theta=(0.2, 0.5)), spec=tiny_spec())
    meta, arrays = compile_in_memory(model, tiny_spec())
    images = random_images(np.random.default_rng(5), 12)
    return meta, arrays, images, np.zeros(12, dtype=np.int64)


def test_totals_are_the_simulators_counters_and_pairs_cover_every_delivery(tiny, tmp_path):
    meta, arrays, images, labels = tiny
    machine = machine_from_arrays(meta, arrays)
    run = simulate_traffic(machine, Chip(machine), arrays, images, labels, "clean",
                           batch_size=5, seed=0, progress=False)
    sim = simulate_dataset(machine, images, labels, arrays=arrays, batch_size=5,
                           progress=False)
    for c, core in zip(machine.cores, sim["cores"], strict=True):
        for k in ("spikes_out", "sops", "packets_in", "packets_out"):
            assert run.per_core[k][c.index] * len(labels) == pytest.approx(core[k], abs=1e-9)
    assert run.result["links"] == sim["links"]
    # every packet a core receives comes from a core pair or from the host
    src, dst, packets, host = pair_packets(machine, run.route_packets)
    received = np.bincount(dst, weights=packets, minlength=len(machine.cores))
    host_routes = machine.route_src < 0
    counts = np.diff(machine.route_dst_ptr)
    host_dst = machine.route_dst[np.repeat(host_routes, counts)]
    host_pk = np.repeat(run.route_packets[host_routes], counts[host_routes])
    received += np.bincount(host_dst, weights=host_pk, minlength=len(machine.cores))
    assert np.array_equal(received * 1.0, run.per_core["packets_in"] * len(labels))
    assert host == int(run.route_packets[host_routes].sum()) and packets.sum() > 0
    # every packet a core receives has its latency counted once, in the step it travelled in;
    # with 1-cycle hops none arrives sooner than it could travel
    lat = sim["packet_latency_cycles"]
    per_step = [s["packets"] for s in lat["per_step"]]
    assert sum(per_step) == lat["packets_per_inference"] * len(labels) == received.sum()
    assert len(per_step) == machine.timesteps and all(p > 0 for p in per_step)
    assert 0 < lat["mean"] <= lat["p99"] <= lat["max"] <= sim["max_cycles_per_step"]
    assert run.result["packet_latency_cycles"] == lat

    summary = write_run(tmp_path, run, machine, lambda _: None)
    assert summary["n"] == len(labels)
    for k in ("spikes_out", "sops", "packets_in", "packets_out", "links"):
        with Image.open(tmp_path / f"clean_{k}.png") as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 100
    with open(tmp_path / "clean_cores.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"x", "y", "layer", "spikes_out", "sops", "packets_in", "packets_out"} <= set(rows[0])
    assert sum(float(r["sops"]) for r in rows) * len(labels) == pytest.approx(
        sum(c["sops"] for c in sim["cores"]))
    # the Noxim table as Noxim's loader reads it: "src dst pir", % comments
    gx, gy = meta["board"]["grid_x"], meta["board"]["grid_y"]
    lines = [ln.split() for ln in (tmp_path / "clean_noxim_traffic.txt").read_text().splitlines()
             if ln and not ln.startswith("%")]
    assert len(lines) == len(packets)
    for s, d, pir in lines:
        assert 0 <= int(s) < gx * gy and 0 <= int(d) < gx * gy and int(s) != int(d)
        assert 0 < float(pir) <= 1


def test_traffic_command_clean_and_adversarial(trained_synthetic, trained_chip, tmp_path,
                                               capsys):
    pt, _ = trained_synthetic
    chip = trained_chip
    out = tmp_path / "maps"
    code = main(["traffic", str(chip), "--n", "6", "--out", str(out), "--adversarial", str(pt),
                 "--eps", "16", "--quiet", "--json", str(tmp_path / "t.json")])
    stdout = capsys.readouterr().out
    assert code == 0 and "hottest cores" in stdout and "NSR" in stdout
    summary = json.loads((tmp_path / "t.json").read_text())
    assert set(summary["difference"]["spikes_per_layer"]) == {"conv1", "conv2", "conv3", "fc1"}
    for name in ("clean_sops.png", "adversarial_sops.png", "difference_spikes_out.png",
                 "adversarial_noxim_traffic.txt", "difference_cores.csv"):
        assert (out / name).stat().st_size > 0
    # an image of another model is refused before any map is drawn
    other = tmp_path / "other.pt"
    import torch

    payload = torch.load(pt, weights_only=True)
    payload["state_dict"]["convs.0.weight"] *= -1
    torch.save(payload, other)
    code = main(["traffic", str(chip), "--n", "2", "--out", str(tmp_path / "x"),
                 "--adversarial", str(other), "--quiet"])
    assert code == 2 and "was not compiled from" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
