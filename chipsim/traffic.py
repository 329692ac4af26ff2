"""Traffic views of a simulation run: per core-pair packet counts, per-layer totals, and the
workload as a Noxim traffic table.

A route is one source's multicast tree; a packet on it reaches every destination core. As core
pairs, each delivery counts once per destination (what a unicast NoC would carry). Packets the
host injects (the input layer's routes) have no source core: they are counted apart.
"""

from __future__ import annotations

import numpy as np

from chipsim.machine import Machine


def pair_packets(machine: Machine, route_packets: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(source core, destination core, packets) per core pair with traffic, and the packets
    the host injected. ``route_packets``: packets per route over the whole run."""
    src = machine.route_src.astype(np.int64)
    counts = np.diff(machine.route_dst_ptr.astype(np.int64))
    dst = machine.route_dst.astype(np.int64)
    per_dst = np.repeat(route_packets.astype(np.int64), counts)
    src_per_dst = np.repeat(src, counts)
    host = int(route_packets[src < 0].sum())
    keep = (src_per_dst >= 0) & (per_dst > 0)
    n_cores = len(machine.cores)
    key = src_per_dst[keep] * n_cores + dst[keep]
    uniq, inv = np.unique(key, return_inverse=True)
    packets = np.bincount(inv, weights=per_dst[keep]).astype(np.int64)
    return uniq // n_cores, uniq % n_cores, packets, host


def layer_totals(machine: Machine, per_core: np.ndarray) -> dict[str, int]:
    """A per-core counter summed per layer."""
    out: dict[str, int] = {}
    for li, cores in enumerate(machine.layer_cores):
        out[machine.layers[li].name] = int(per_core[cores].sum()) if cores else 0
    return out


def noxim_table(machine: Machine, pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
                cycles: float) -> str:
    """The workload in Noxim's table-based traffic format (`-traffic table FILE`): one line
    per communication, "src dst pir": Noxim node ids (y * width + x on the board's grid) and
    the packet injection rate in packets per cycle, each pair's packets over the run's cycles.
    Lines starting with % are comments."""
    src, dst, packets = pairs
    grid_x = int(machine.meta["board"]["grid_x"])
    grid_y = int(machine.meta["board"]["grid_y"])
    xs = np.array([c.x for c in machine.cores], dtype=np.int64)
    ys = np.array([c.y for c in machine.cores], dtype=np.int64)
    lines = [f"% spikemesh traffic: {len(packets)} core pairs on a {grid_x}x{grid_y} mesh "
             f"(run Noxim with -dimx {grid_x} -dimy {grid_y} -traffic table THIS_FILE)",
             "% src dst pir   (node id = y * dimx + x; pir = packets per cycle)"]
    for s, d, p in zip(src, dst, packets, strict=True):
        pir = min(1.0, float(p) / max(cycles, 1.0))
        lines.append(f"{ys[s] * grid_x + xs[s]} {ys[d] * grid_x + xs[d]} {pir:.6g}")
    return "\n".join(lines) + "\n"
