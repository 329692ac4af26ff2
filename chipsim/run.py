"""Simulate a dataset on a chip image: functional kernels for the arithmetic, the NoC model for
cycles, then the records the issue asks for (per core, per link, per router, per inference)."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from chipsim.machine import Machine
from chipsim.noc import Noc
from chipsim.simulate import Chip, SimResult
from spikemesh.chipimage import ROLES


@dataclass
class Totals:
    n: int = 0
    correct: int = 0
    sops: np.ndarray | None = None
    spikes_out: np.ndarray | None = None
    packets_in: np.ndarray | None = None
    packets_out: np.ndarray | None = None
    step_cycles: list[int] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)

    def add(self, res: SimResult, labels: np.ndarray) -> None:
        self.n += res.n
        self.correct += int((res.predictions == labels).sum())
        for name in ("sops", "spikes_out", "packets_in", "packets_out"):
            v = getattr(res, name)
            setattr(self, name, v.copy() if getattr(self, name) is None else getattr(self, name) + v)
        self.predictions.append(res.predictions)


def simulate_dataset(machine: Machine, images: np.ndarray, labels: np.ndarray, *,
                     arrays: dict[str, np.ndarray], batch_size: int = 32, noc: bool = True,
                     seed: int = 0, progress: bool = True, threads: int = 2,
                     on_batch=None, chip: Chip | None = None) -> dict[str, Any]:
    """Run every image; ``on_batch(images, result, rng_state)`` lets a caller cross-check.
    ``chip``: the machine already flattened, to reuse across calls."""
    chip = chip if chip is not None else Chip(machine)
    net = Noc(machine.meta, arrays, chip.wave_of_route()) if noc else None
    stats = net.new_stats() if net else None
    totals = Totals()
    rng = np.random.default_rng(seed)
    t_start = time.perf_counter()
    bar = tqdm(total=len(labels), unit="img", desc="simulate", disable=not progress,
               file=sys.stderr, dynamic_ncols=True, leave=False)
    pool = ThreadPoolExecutor(max_workers=threads) if net else None
    for i in range(0, len(labels), batch_size):
        batch = images[i:i + batch_size]
        state = rng.bit_generator.state
        res = chip.run(batch, rng=rng, record=on_batch is not None)
        if on_batch is not None:
            on_batch(batch, res, state)
        totals.add(res, labels[i:i + batch_size])
        if net:
            # each (image, step) is an independent NoC run with its own statistics
            counts = [res.per_image_route_packets[b, t]
                      for b in range(res.n) for t in range(machine.timesteps)]
            for cyc, local in pool.map(lambda c: _noc_step(net, c), counts):
                totals.step_cycles.append(cyc)
                stats["link_flits"] += local["link_flits"]
                stats["stalls"] += local["stalls"]
                np.maximum(stats["peak"], local["peak"], out=stats["peak"])
        bar.update(res.n)
        elapsed = time.perf_counter() - t_start
        bar.set_postfix(acc=f"{100 * totals.correct / totals.n:.1f}%",
                        sop_s=f"{totals.sops.sum() / elapsed / 1e6:.0f}M")
    bar.close()
    if pool:
        pool.shutdown()
    elapsed = time.perf_counter() - t_start
    return report(machine, arrays, totals, stats, elapsed)


def _noc_step(net: Noc, route_counts: np.ndarray) -> tuple[int, dict[str, np.ndarray]]:
    local = net.new_stats()
    return net.run_step(route_counts, local), local


def report(machine: Machine, arrays: dict[str, np.ndarray], totals: Totals,
           stats: dict[str, np.ndarray] | None, seconds: float) -> dict[str, Any]:
    meta = machine.meta
    energy = meta["spec"]["energy"]
    cx, cy = meta["spec"]["mesh"]["cores_x"], meta["spec"]["mesh"]["cores_y"]
    gx = meta["board"]["grid_x"]
    n = max(totals.n, 1)
    sops = int(totals.sops.sum())
    out: dict[str, Any] = {
        "n": totals.n, "accuracy": 100.0 * totals.correct / n,
        "sops_per_inference": sops / n, "seconds": seconds,
        "images_per_second": totals.n / seconds, "sops_per_second": sops / seconds,
        "timesteps": machine.timesteps,
    }
    links = []
    hop_flits = chip_flits = 0
    if stats is not None:
        flits = stats["link_flits"]
        for link in np.nonzero(flits)[0]:
            rid, port = divmod(int(link), 4)
            y, x = divmod(rid, gx)
            nx, ny = x + (1, -1, 0, 0)[port], y + (0, 0, 1, -1)[port]
            crosses = x // cx != nx // cx or y // cy != ny // cy
            if crosses:
                chip_flits += int(flits[link])
            else:
                hop_flits += int(flits[link])
            links.append({"from": [x, y], "to": [nx, ny], "flits": int(flits[link]),
                          "chip_to_chip": bool(crosses)})
        cycles = np.array(totals.step_cycles, dtype=np.float64)
        out["cycles_per_step"] = float(cycles.mean()) if len(cycles) else 0.0
        out["max_cycles_per_step"] = int(cycles.max()) if len(cycles) else 0
        out["latency_cycles_per_inference"] = float(cycles.sum() / n)
        out["routers"] = [{"x": int(r % gx), "y": int(r // gx), "peak_buffer": int(stats["peak"][r]),
                           "stalls": int(stats["stalls"][r])}
                          for r in np.nonzero(stats["peak"])[0]]
    energy_pj = (sops * energy["pj_per_sop"] + hop_flits * energy["pj_per_hop"]
                 + chip_flits * energy["pj_per_chip_hop"])
    out["energy_uj_per_inference"] = energy_pj / n / 1e6
    out["energy_breakdown_uj_per_inference"] = {
        "synaptic": sops * energy["pj_per_sop"] / n / 1e6,
        "on_chip_hops": hop_flits * energy["pj_per_hop"] / n / 1e6,
        "chip_to_chip_hops": chip_flits * energy["pj_per_chip_hop"] / n / 1e6}
    layer_names = [l.name for l in machine.layers]
    out["cores"] = [{"x": c.x, "y": c.y, "layer": layer_names[c.layer], "role": ROLES[c.role],
                     "spikes_out": int(totals.spikes_out[c.index]), "sops": int(totals.sops[c.index]),
                     "packets_in": int(totals.packets_in[c.index]),
                     "packets_out": int(totals.packets_out[c.index])} for c in machine.cores]
    out["links"] = links
    out["predictions"] = np.concatenate(totals.predictions).tolist() if totals.predictions else []
    return out
