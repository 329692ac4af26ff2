"""How much memory a simulation will take, estimated from the image before anything is
allocated, so an absurd image or batch is refused in one sentence instead of ending in an
out-of-memory kill (the estimate errs high: every crossbar counted as if unshared)."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from artifacts.chipimage import ROLE_HOME
from artifacts.errors import UserError
from chipsim.latency import LAT_BUCKETS


def wheel_slots(max_latency: int) -> int:
    """Slots of the NoC's wake-up wheel: the smallest power of two above one link's latency."""
    return 1 << max(1, int(max_latency).bit_length())


def noc_state_bytes(n_routers: int, depth: int, max_latency: int, credit_cycles: int = 1) -> int:
    """Bytes of one ``chipsim.noc.new_state`` (int64 fifo and birth cycles, ports, routers,
    wheel, queue, pops, credits, freed) plus one set of NoC statistics (its latency histogram
    dominates for small meshes)."""
    wheel = wheel_slots(max(max_latency, credit_cycles))
    credit_rows = wheel if credit_cycles > 1 else 1
    state = (2 * n_routers * 5 * depth + n_routers * 5 * 2 + n_routers * 20
             + wheel * (n_routers + 1) + n_routers * wheel + (2 + credit_rows) * (n_routers * 5 + 1))
    return 8 * (state + n_routers * 6 + LAT_BUCKETS + 3)


def estimate_bytes(meta: dict[str, Any], arrays: dict[str, np.ndarray], batch_size: int,
                   noc: bool, record: bool, threads: int = 1) -> dict[str, int]:
    """Bytes a run of ``batch_size`` images at a time will allocate, by part (``threads``: the
    NoC's worker threads, each with its own state)."""
    model = meta["model"]
    T = model["timesteps"]
    n_axons = np.diff(arrays["core.axon_ptr"])
    n_neurons = np.diff(arrays["core.neuron_ptr"])
    crossbar = arrays["core.role"] != ROLE_HOME
    width = np.array([2 if l["weight_bits"] == 8 else 1 for l in model["layers"]])
    parts = {
        # expanded crossbars (machine) plus their packed copy (flat), int8 or int16
        "crossbars": 2 * int((n_axons * n_neurons * width[arrays["core.layer"]])[crossbar].sum()),
        # per batch: host events (int64), per-neuron spike record, per-route packet counters
        "events": 8 * batch_size * T * math.prod(model["layers"][0]["in_shape"]),
        "spike_record": (batch_size * T * sum(math.prod(l["out_shape"]) for l in model["layers"])
                         if record else 0),
        "route_counters": 8 * batch_size * T * len(arrays["route.src"]),
    }
    if noc:
        spec, board = meta["spec"], meta["board"]
        routers = board["grid_x"] * board["grid_y"]
        noc_spec = spec["noc"]
        latency = max(noc_spec["hop_cycles"], noc_spec["chip_hop_cycles"]) + noc_spec["router_cycles"]
        parts["noc_tables"] = len(arrays["route.src"]) * routers        # dense uint8 table
        parts["noc_state"] = threads * noc_state_bytes(routers, noc_spec["buffer_depth"], latency,
                                                       noc_spec["credit_cycles"])
    return parts


def available_bytes() -> int:
    """Memory the system can give this process now (MemAvailable), or physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def check_memory(meta: dict[str, Any], arrays: dict[str, np.ndarray], batch_size: int, *,
                 noc: bool, record: bool, threads: int = 1) -> None:
    """Refuse a run whose estimate exceeds 80% of the memory available now."""
    parts = estimate_bytes(meta, arrays, batch_size, noc, record, threads)
    need, have = sum(parts.values()), available_bytes()
    if need > 0.8 * have:
        worst = max(parts, key=parts.get)
        raise UserError(f"simulating this chip image needs about {need / 2**30:.1f} GiB "
                        f"({worst}: {parts[worst] / 2**30:.1f} GiB), more than the "
                        f"{have / 2**30:.1f} GiB available; use a smaller --batch-size, "
                        "--no-noc, or a smaller chip spec")
