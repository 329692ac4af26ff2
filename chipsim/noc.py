"""Cycle-level model of the 2D-mesh network-on-chip.

Routers sit on the global core grid. Each has five input ports (east, west, south, north,
local) with FIFO buffers of ``buffer_depth`` single-flit packets, and five outputs (the four
links and local delivery). Every cycle each output forwards up to ``link_flits_per_cycle``
packets, chosen round-robin among the input heads that need it; a packet is sent only if the
downstream buffer has a free slot (credit backpressure: nothing is dropped) and arrives
``hop_cycles`` later (``chip_hop_cycles`` across a chip boundary). A multicast packet forks at
a router by being copied to every output its route-table entry names; it leaves its input
buffer once all copies are out. Host packets enter router (0, 0) through its west port.

A time step is simulated as waves in the order the arithmetic needs them: the host's input
packets, then for each layer its partial sums and then its spikes. A wave ends when its last
packet is delivered; the step's cycle count is the sum of its waves. Only the packet counts per
route come from the functional simulation, so timing can never change the arithmetic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EAST, WEST, SOUTH, NORTH, LOCAL = 0, 1, 2, 3, 4
HOST_ROUTER_PORT = WEST


@njit(cache=True, nogil=True)
def _neighbor(r, p, gx):
    if p == EAST:
        return r + 1
    if p == WEST:
        return r - 1
    if p == SOUTH:
        return r + gx
    return r - gx


@njit(cache=True, nogil=True)
def switch(gx, cx, cy, depth, bw, hop_lat, chip_lat, table, fifo_route, fifo_mask, fifo_ready,
           fifo_head, fifo_count, busy, out_used, rr, link_flits, peak, stalls, cycle):
    """One cycle of every router's switch; returns the packets delivered to cores this cycle.

    Each router serves its input heads in rotating priority; a head is copied to each output
    its mask names that still has bandwidth this cycle and a free downstream slot.
    """
    delivered = 0
    for r in range(busy.shape[0]):
        if busy[r] == 0:
            continue
        if busy[r] > peak[r]:
            peak[r] = busy[r]
        out_used[:] = 0
        start = rr[r]
        for k in range(5):
            p = (start + k) % 5
            if fifo_count[r, p] == 0:
                continue
            h = fifo_head[r, p]
            if fifo_ready[r, p, h] > cycle:
                continue
            mask = fifo_mask[r, p, h]
            for o in range(5):
                if not (mask >> o) & 1:
                    continue
                if out_used[o] >= bw:
                    stalls[r] += 1
                    continue
                if o == LOCAL:
                    delivered += 1
                else:
                    n = _neighbor(r, o, gx)
                    q = o ^ 1   # the input port facing back: east<->west, south<->north
                    if fifo_count[n, q] >= depth:
                        stalls[r] += 1
                        continue
                    x, y = r % gx, r // gx
                    nx, ny = n % gx, n // gx
                    lat = chip_lat if (x // cx != nx // cx or y // cy != ny // cy) else hop_lat
                    slot = (fifo_head[n, q] + fifo_count[n, q]) % depth
                    route = fifo_route[r, p, h]
                    fifo_route[n, q, slot] = route
                    fifo_mask[n, q, slot] = table[route, n]
                    fifo_ready[n, q, slot] = cycle + lat
                    fifo_count[n, q] += 1
                    busy[n] += 1
                    link_flits[r * 4 + o] += 1
                out_used[o] += 1
                mask &= ~np.uint8(1 << o)
            fifo_mask[r, p, h] = mask
            if mask == 0:
                fifo_head[r, p] = (h + 1) % depth
                fifo_count[r, p] -= 1
                busy[r] -= 1
        rr[r] = (start + 1) % 5
    return delivered


@njit(cache=True, nogil=True)
def run_uniform(gx, gy, depth, bw, table, rate, n_cycles, seed, link_flits, peak, stalls):
    """Uniform random unicast traffic on a single-chip gx x gy mesh: every cycle each node
    injects a single-flit packet to a uniformly random other node with probability ``rate``
    (into an unbounded source queue). ``table[route, router]`` with route = src * n + dst.
    Returns (packets injected, packets delivered, total latency of delivered packets)."""
    np.random.seed(seed)
    n = gx * gy
    fifo_route = np.zeros((n, 5, depth), np.int64)
    fifo_mask = np.zeros((n, 5, depth), np.uint8)
    fifo_ready = np.zeros((n, 5, depth), np.int64)
    fifo_head = np.zeros((n, 5), np.int64)
    fifo_count = np.zeros((n, 5), np.int64)
    busy = np.zeros(n, np.int64)
    out_used = np.zeros(5, np.int64)
    rr = np.zeros(n, np.int64)
    cap = n_cycles + 1
    queue = np.zeros((n, cap), np.int64)        # per source: route ids waiting to inject
    q_head = np.zeros(n, np.int64)
    q_tail = np.zeros(n, np.int64)
    injected = 0
    delivered = 0
    for cycle in range(n_cycles):
        for s in range(n):
            if np.random.random() < rate:
                d = np.random.randint(0, n - 1)
                d = d + 1 if d >= s else d
                queue[s, q_tail[s]] = s * n + d
                q_tail[s] += 1
                injected += 1
            if q_head[s] < q_tail[s] and fifo_count[s, LOCAL] < depth:
                route = queue[s, q_head[s]]
                q_head[s] += 1
                slot = (fifo_head[s, LOCAL] + fifo_count[s, LOCAL]) % depth
                fifo_route[s, LOCAL, slot] = route
                fifo_mask[s, LOCAL, slot] = table[route, s]
                fifo_ready[s, LOCAL, slot] = cycle
                fifo_count[s, LOCAL] += 1
                busy[s] += 1
        delivered += switch(gx, gx, gy, depth, bw, 1, 1, table, fifo_route, fifo_mask,
                            fifo_ready, fifo_head, fifo_count, busy, out_used, rr, link_flits,
                            peak, stalls, cycle)
    return injected, delivered


def unicast_table(gx: int, gy: int) -> np.ndarray:
    """XY route table for every (src, dst) pair of a gx x gy mesh: (n*n, n) port masks."""
    n = gx * gy
    table = np.zeros((n * n, n), dtype=np.uint8)
    for s in range(n):
        sx, sy = s % gx, s // gx
        for d in range(n):
            dx, dy = d % gx, d // gx
            x, y, route = sx, sy, s * n + d
            while x != dx:
                p = EAST if dx > x else WEST
                table[route, y * gx + x] |= 1 << p
                x += 1 if p == EAST else -1
            while y != dy:
                p = SOUTH if dy > y else NORTH
                table[route, y * gx + x] |= 1 << p
                y += 1 if p == SOUTH else -1
            table[route, d] |= 1 << LOCAL
    return table


@njit(cache=True, nogil=True)
def run_wave(gx, gy, cx, cy, depth, bw, hop_lat, chip_lat, table, routes, counts, src_router,
             from_host, n_dst, fifo_route, fifo_mask, fifo_ready, fifo_head, fifo_count,
             link_flits, peak, stalls, rr, max_cycles):
    """Inject ``counts[i]`` packets of each route ``routes[i]`` and run until all are delivered.
    Returns the cycles taken, or -1 if ``max_cycles`` passed (a deadlock would be a bug).

    Each cycle every router serves its input heads in rotating priority; a head is copied to
    each output its mask names that still has bandwidth this cycle and a free downstream slot.
    """
    n_routers = gx * gy
    expected = 0
    for i in range(routes.shape[0]):
        expected += counts[i] * n_dst[routes[i]]
    if expected == 0:
        return 0
    # sources (routers, and the host as source n_routers) with their routes to inject, in order
    src_of = np.where(from_host[routes], n_routers, src_router[routes])
    order = np.argsort(src_of, kind="mergesort")
    sorted_src = src_of[order]
    remaining = counts.copy()
    pending = np.unique(sorted_src)             # sources that still have packets to inject
    next_k = np.searchsorted(sorted_src, pending)
    end_k = np.searchsorted(sorted_src, pending, side="right")
    n_pending = pending.shape[0]
    busy = np.zeros(n_routers, dtype=np.int64)  # packets buffered at each router
    out_used = np.zeros(5, dtype=np.int64)
    delivered = 0
    cycle = 0
    while delivered < expected:
        if cycle >= max_cycles:
            return -1
        # 1) injection: one packet per cycle per source into its local (host: west) input
        j = 0
        while j < n_pending:
            s = pending[j]
            r = 0 if s == n_routers else s
            port = HOST_ROUTER_PORT if s == n_routers else LOCAL
            if fifo_count[r, port] < depth:
                i = order[next_k[j]]
                slot = (fifo_head[r, port] + fifo_count[r, port]) % depth
                fifo_route[r, port, slot] = routes[i]
                fifo_mask[r, port, slot] = table[routes[i], r]
                fifo_ready[r, port, slot] = cycle
                fifo_count[r, port] += 1
                busy[r] += 1
                remaining[i] -= 1
                if remaining[i] == 0:
                    next_k[j] += 1
                    if next_k[j] == end_k[j]:       # source exhausted: swap-remove
                        n_pending -= 1
                        pending[j] = pending[n_pending]
                        next_k[j] = next_k[n_pending]
                        end_k[j] = end_k[n_pending]
                        continue
            j += 1
        # 2) switch
        delivered += switch(gx, cx, cy, depth, bw, hop_lat, chip_lat, table, fifo_route,
                            fifo_mask, fifo_ready, fifo_head, fifo_count, busy, out_used, rr,
                            link_flits, peak, stalls, cycle)
        cycle += 1
    return cycle


class Noc:
    """The mesh of one chip image: route tables densified for the kernel, reusable state."""

    def __init__(self, meta: dict, arrays: dict, wave_of_route: np.ndarray) -> None:
        board, spec = meta["board"], meta["spec"]
        self.gx, self.gy = board["grid_x"], board["grid_y"]
        self.cx, self.cy = spec["mesh"]["cores_x"], spec["mesh"]["cores_y"]
        noc = spec["noc"]
        self.depth, self.bw = noc["buffer_depth"], noc["link_flits_per_cycle"]
        self.hop, self.chip_hop = noc["hop_cycles"], noc["chip_hop_cycles"]
        n_routes = len(arrays["route.src"])
        n_routers = self.gx * self.gy
        self.table = np.zeros((n_routes, n_routers), dtype=np.uint8)
        self.table[arrays["table.route"], arrays["table.router"]] = arrays["table.ports"]
        src = arrays["route.src"].astype(np.int64)
        self.from_host = src < 0
        cx_, cy_ = arrays["core.x"].astype(np.int64), arrays["core.y"].astype(np.int64)
        self.src_router = np.where(self.from_host, 0, cy_[np.maximum(src, 0)] * self.gx
                                   + cx_[np.maximum(src, 0)])
        self.n_dst = np.diff(arrays["route.dst_ptr"]).astype(np.int64)
        # routes of each wave, in wave order (computed once; run_step is called per image-step)
        self.wave_routes = [np.nonzero(wave_of_route == w)[0] for w in np.unique(wave_of_route)]
        self.n_routers = n_routers

    def new_stats(self) -> dict[str, np.ndarray]:
        return {"link_flits": np.zeros(self.n_routers * 4, dtype=np.int64),
                "peak": np.zeros(self.n_routers, dtype=np.int64),
                "stalls": np.zeros(self.n_routers, dtype=np.int64)}

    def run_step(self, route_counts: np.ndarray, stats: dict[str, np.ndarray]) -> int:
        """Cycles for one time step, given packets per route; accumulates into ``stats``."""
        total = 0
        n, d = self.n_routers, self.depth
        for in_wave in self.wave_routes:
            routes = in_wave[route_counts[in_wave] > 0]
            if len(routes) == 0:
                continue
            cyc = run_wave(self.gx, self.gy, self.cx, self.cy, d, self.bw, self.hop, self.chip_hop,
                           self.table, routes.astype(np.int64), route_counts[routes].astype(np.int64),
                           self.src_router, self.from_host, self.n_dst,
                           np.zeros((n, 5, d), np.int64), np.zeros((n, 5, d), np.uint8),
                           np.zeros((n, 5, d), np.int64), np.zeros((n, 5), np.int64),
                           np.zeros((n, 5), np.int64), stats["link_flits"], stats["peak"],
                           stats["stalls"], np.zeros(n, np.int64), 1 << 40)
            if cyc < 0:
                raise RuntimeError("NoC did not drain: a deadlock in the router model")
            total += cyc
        return total
