"""Simulate a dataset on a chip image: the functional chip (chipsim.chip) for the arithmetic,
the NoC model (chipsim.noc) for cycles, batch by batch, then the records (chipsim.report)."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm import tqdm

from chipsim.chip import Chip
from chipsim.machine import Machine
from chipsim.memory import check_memory
from chipsim.noc import Noc
from chipsim.report import Totals, report


def simulate_dataset(machine: Machine, images: np.ndarray, labels: np.ndarray, *,
                     arrays: dict[str, np.ndarray], batch_size: int = 32, noc: bool = True,
                     seed: int = 0, progress: bool = True, threads: int = 2,
                     on_batch=None, chip: Chip | None = None) -> dict[str, Any]:
    """Run every image; ``on_batch(images, result, rng_state)`` lets a caller cross-check.
    ``chip``: the machine already flattened, to reuse across calls."""
    totals, stats, elapsed = run_dataset(machine, images, labels, arrays=arrays,
                                         batch_size=batch_size, noc=noc, seed=seed,
                                         progress=progress, threads=threads, on_batch=on_batch,
                                         chip=chip)
    return report(machine, arrays, totals, stats, elapsed)


def run_dataset(machine: Machine, images: np.ndarray, labels: np.ndarray, *,
                arrays: dict[str, np.ndarray], batch_size: int = 32, noc: bool = True,
                seed: int = 0, progress: bool = True, threads: int = 2,
                on_batch=None, chip: Chip | None = None
                ) -> tuple[Totals, dict[str, np.ndarray] | None, float]:
    """simulate_dataset's run without the report: (totals, NoC statistics, seconds)."""
    check_memory(machine.meta, arrays, min(batch_size, max(len(labels), 1)), noc=noc,
                 record=on_batch is not None)
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
    return totals, stats, time.perf_counter() - t_start


def _noc_step(net: Noc, route_counts: np.ndarray) -> tuple[int, dict[str, np.ndarray]]:
    local = net.new_stats()
    return net.run_step(route_counts, local), local
