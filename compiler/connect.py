"""connect: which core each spike goes to, grouped into multicast routes.

A source is a neuron (spikes), a partial-sum neuron (graded partial sums to its home core), or an
input pixel sent by the host. Sources of one core that go to the same set of destination cores
share one route: a multicast packet with one route id, forked by the routers where paths part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artifacts.chipimage import merged_sources
from compiler.integer_model import IntegerModel
from compiler.partition import CoreProgram, holders

HOST = -1   # the host's input port, a pseudo-core


@dataclass
class Routes:
    src_core: np.ndarray        # int32 (R,): source core of each route (HOST for input)
    dst_ptr: np.ndarray         # int64 (R+1,): CSR into dst_core
    dst_core: np.ndarray        # int32: destination cores of each route, sorted
    n_sources: np.ndarray       # int64 (R,): sources that use the route
    # route of every source, by kind:
    input_route: np.ndarray     # int32 (n_input_events,): per input index (pixel or conv1 neuron)
    neuron_route: list[np.ndarray]   # per layer: int32 per neuron (-1: no receivers)
    partial_route: dict[int, np.ndarray]  # per partial core: int32 per local neuron


def _sources_of_axons(model: IntegerModel, layer: int, axons: np.ndarray) -> np.ndarray:
    """Pre-pool source indices feeding each axon: shape (len(axons), 1) or (len(axons), 4)."""
    if not model.layers[layer].pooled_input:
        return axons[:, None].astype(np.int64)
    return merged_sources(model.layers[layer - 1].out_shape, axons)


def _group_routes(src: np.ndarray, dst: np.ndarray, src_core: np.ndarray, n_src: int,
                  routes: list, seed_keys: np.ndarray) -> np.ndarray:
    """Assign each source (0..n_src-1) a route id, given (src, dst core) pairs and each source's
    core: sources of one core with exactly the same set of destination cores share a route.
    Appends new routes to ``routes``; returns int32 route id per source (-1 if none).

    Candidate groups come from a signature (the wrapping sum of random 64-bit keys of the
    destinations), which is fast but could in principle give two different sets one
    signature; every member's set is then compared with its group's first, element by element,
    and any disagreement falls back to grouping by the sets themselves. The grouping is exact.
    """
    route_of = np.full(n_src, -1, dtype=np.int32)
    if len(src) == 0:
        return route_of
    pairs = np.unique(np.stack([src, dst], 1), axis=0)
    s, d = pairs[:, 0], pairs[:, 1]
    sig = np.zeros(n_src, dtype=np.uint64)
    np.add.at(sig, s, seed_keys[d])
    srcs = np.unique(s)                                   # sources with destinations, sorted
    start = np.searchsorted(s, srcs)
    size = np.searchsorted(s, srcs, side="right") - start
    key = np.stack([src_core[srcs].astype(np.uint64), sig[srcs]], 1)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.ravel()
    if not _groups_are_exact(inv, start, size, d):
        inv = _exact_groups(srcs, start, size, d, src_core)
    n_groups = int(inv.max()) + 1
    first = np.full(n_groups, -1, dtype=np.int64)
    first[inv[::-1]] = np.arange(len(srcs))[::-1]         # one representative source per route
    counts = np.bincount(inv, minlength=n_groups)
    base = len(routes)
    for r in range(n_groups):
        k = first[r]
        routes.append((int(src_core[srcs[k]]), d[start[k]:start[k] + size[k]].astype(np.int32),
                       int(counts[r])))
    route_of[srcs] = base + inv
    return route_of


def _groups_are_exact(inv: np.ndarray, start: np.ndarray, size: np.ndarray, d: np.ndarray) -> bool:
    """Whether every source's destination list equals its group's first member's."""
    first = np.full(int(inv.max()) + 1, -1, dtype=np.int64)
    first[inv[::-1]] = np.arange(len(inv))[::-1]
    rep = first[inv]
    if not np.array_equal(size, size[rep]):
        return False
    owner = np.repeat(np.arange(len(inv)), size)          # per pair: its source (in srcs order)
    offset = np.arange(len(owner)) - np.repeat(start, size)
    return bool(np.array_equal(d[start[owner] + offset], d[start[rep[owner]] + offset]))


def _exact_groups(srcs: np.ndarray, start: np.ndarray, size: np.ndarray, d: np.ndarray,
                  src_core: np.ndarray) -> np.ndarray:
    """Group ids by (source core, destination set) itself: the slow, obviously exact way."""
    ids: dict[tuple[int, bytes], int] = {}
    inv = np.empty(len(srcs), dtype=np.int64)
    for k in range(len(srcs)):
        key = (int(src_core[srcs[k]]), d[start[k]:start[k] + size[k]].tobytes())
        inv[k] = ids.setdefault(key, len(ids))
    return inv


def connect(model: IntegerModel, cores: list[CoreProgram], seed: int = 0) -> Routes:
    hold = holders(cores, model)
    keys = np.random.default_rng(seed).integers(0, 2**63, size=len(cores), dtype=np.uint64)
    routes: list = []
    by_layer: dict[int, list[int]] = {}
    for ci, c in enumerate(cores):
        by_layer.setdefault(c.layer, []).append(ci)
    neuron_route = [np.full(int(np.prod(l.out_shape)), -1, dtype=np.int32) for l in model.layers]
    partial_route: dict[int, np.ndarray] = {}
    input_route = np.zeros(0, dtype=np.int32)
    host_fed = model.encoding == "direct" and model.input_path == "host"
    for li, layer in enumerate(model.layers):
        ids = by_layer[li]
        # 1) inputs of this layer's crossbar cores (and of host-fed home cores in layer 0)
        fed = [ci for ci in ids if cores[ci].role != "home" or (li == 0 and host_fed)]
        src_list, dst_list = [], []
        for ci in fed:
            c = cores[ci]
            srcs = c.axons[:, None] if li == 0 else _sources_of_axons(model, li, c.axons)
            src_list.append(srcs.ravel())
            dst_list.append(np.full(srcs.size, ci, dtype=np.int64))
        if src_list:
            src = np.concatenate(src_list).astype(np.int64)
            dst = np.concatenate(dst_list)
            if li == 0:
                n_in = int(np.prod(layer.out_shape if host_fed else layer.in_shape))
                input_route = _group_routes(src, dst, np.full(n_in, HOST, dtype=np.int64), n_in,
                                            routes, keys)
            else:
                prev_hold = hold[li - 1].astype(np.int64)
                neuron_route[li - 1] = _group_routes(src, dst, prev_hold, len(prev_hold), routes, keys)
        # 2) partial sums to home cores
        for ci in ids:
            c = cores[ci]
            if c.role != "partial":
                continue
            homes = hold[li][c.neurons].astype(np.int64)
            local = np.arange(len(c.neurons), dtype=np.int64)
            partial_route[ci] = _group_routes(local, homes, np.full(len(local), ci, dtype=np.int64),
                                              len(local), routes, keys)
    src_core = np.array([r[0] for r in routes], dtype=np.int32)
    sizes = np.array([len(r[1]) for r in routes], dtype=np.int64)
    dst_ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    dst_core = (np.concatenate([r[1] for r in routes]) if routes else np.zeros(0)).astype(np.int32)
    n_sources = np.array([r[2] for r in routes], dtype=np.int64)
    return Routes(src_core, dst_ptr, dst_core, n_sources, input_route, neuron_route, partial_route)


# ASSUMPTION for placement only: the fraction of steps a neuron spikes. Graded values (host
# input, partial sums) travel every step; spikes far less often (the demo's VGG5 fires on
# 6-33% of neuron-steps per layer). Without this weighting placement kept the sparse spike
# fan-out short and left the dense partial sums crossing the board.
SPIKE_RATE = 0.2


def core_edges(routes: Routes, cores: list[CoreProgram]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src core, dst core, expected packets per step), aggregated: a route carries one packet
    per source per step if it is graded (host input or partial sums), SPIKE_RATE if spikes."""
    counts = np.diff(routes.dst_ptr)
    graded = np.array([s == HOST or cores[s].role == "partial" for s in routes.src_core.tolist()],
                      dtype=bool)
    rate = np.where(graded, 1.0, SPIKE_RATE)
    src = np.repeat(routes.src_core, counts).astype(np.int64)
    w = np.repeat(routes.n_sources * rate, counts)
    dst = routes.dst_core.astype(np.int64)
    key = np.stack([src, dst], 1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    weight = np.bincount(inv.ravel(), weights=w, minlength=len(uniq))
    return uniq[:, 0], uniq[:, 1], weight
