"""Simulate a dataset on a chip image: the functional chip (chipsim.chip) for the arithmetic,
the NoC model (chipsim.noc) for cycles, batch by batch, then the records (chipsim.report)."""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm import tqdm

from chipsim import latency
from chipsim.chip import Chip
from chipsim.machine import Machine
from chipsim.memory import check_memory
from chipsim.noc import Noc, add_stats
from chipsim.report import Totals, report


def simulate_dataset(machine: Machine, images: np.ndarray, labels: np.ndarray, *,
                     arrays: dict[str, np.ndarray], batch_size: int = 32, noc: bool = True,
                     seed: int = 0, progress: bool = True, threads: int | None = None,
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
                seed: int = 0, progress: bool = True, threads: int | None = None,
                on_batch=None, chip: Chip | None = None
                ) -> tuple[Totals, dict[str, np.ndarray] | None, float]:
    """simulate_dataset's run without the report: (totals, NoC statistics, seconds).

    ``threads``: the NoC model's worker threads (default: the CPUs this process may use). Each
    (image, time step) is an independent NoC run, so the results do not depend on it. The NoC
    statistics carry the packet latency per time step as well ("latency_hist_by_step",
    "latency_by_step": one row per step)."""
    threads = default_threads() if threads is None else threads
    check_memory(machine.meta, arrays, min(batch_size, max(len(labels), 1)), noc=noc,
                 record=on_batch is not None, threads=threads)
    chip = chip if chip is not None else Chip(machine)
    net = Noc(machine.meta, arrays, chip.wave_of_route()) if noc else None
    stats = None
    if net:
        stats = net.new_stats()
        T = machine.timesteps
        stats["latency_hist_by_step"] = np.zeros((T, latency.LAT_BUCKETS), np.int64)
        stats["latency_by_step"] = np.zeros((T, 3), np.int64)
    totals = Totals()
    rng = np.random.default_rng(seed)
    t_start = time.perf_counter()
    bar = tqdm(total=len(labels), unit="img", desc="simulate", disable=not progress,
               file=sys.stderr, dynamic_ncols=True, leave=False)
    pool = ThreadPoolExecutor(max_workers=threads) if net else None
    local = threading.local()       # each worker thread's NoC state, reused across steps

    def noc_step(counts: np.ndarray) -> tuple[int, dict[str, np.ndarray]]:
        if not hasattr(local, "state"):
            local.state = net.new_state()
        mine = net.new_stats()
        return net.run_step(counts, mine, state=local.state), mine

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
            for k, (cyc, mine) in enumerate(pool.map(noc_step, counts)):
                t = k % machine.timesteps
                totals.step_cycles.append(cyc)
                add_stats(stats, mine)
                latency.merge(stats["latency_hist_by_step"][t], stats["latency_by_step"][t],
                              mine["latency_hist"], mine["latency"])
        bar.update(res.n)
        elapsed = time.perf_counter() - t_start
        bar.set_postfix(acc=f"{100 * totals.correct / totals.n:.1f}%",
                        sop_s=f"{totals.sops.sum() / elapsed / 1e6:.0f}M")
    bar.close()
    if pool:
        pool.shutdown()
    return totals, stats, time.perf_counter() - t_start


def default_threads() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
