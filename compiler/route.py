"""route: dimension-order (XY) multicast routing on the global core grid.

A packet travels along x first, then y. A multicast route is the union of the XY paths from
its source to each destination: a tree, since every path from one source leaves along the same
row, so a packet forks exactly where the paths part. Each router on the tree gets a table
entry: route id -> output-port mask. Host packets enter at router (0, 0) from the west.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artifacts.mesh import EAST, LINKS_PER_ROUTER, LOCAL, NORTH, SOUTH, STEP, WEST
from compiler.connect import HOST, Routes
from compiler.place import Grid, Placement


@dataclass
class RoutingTables:
    table_router: np.ndarray    # int32: router index y * gx + x of each entry
    table_route: np.ndarray     # int32: route id
    table_ports: np.ndarray     # uint8: bit p set = forward on port p (LOCAL = deliver here)
    link_load: np.ndarray       # float64 (gx * gy * 4,): packets per step on each outgoing
                                # link if every source fires once; index router * 4 + port
    host_load: float            # packets per step on the host link into router (0, 0)


def xy_path_links(sx: int, sy: int, dx: int, dy: int) -> list[tuple[int, int, int]]:
    """The (x, y, port) hops of the XY path from (sx, sy) to (dx, dy)."""
    hops = []
    x, y = sx, sy
    while x != dx:
        p = EAST if dx > x else WEST
        hops.append((x, y, p))
        x += STEP[p][0]
    while y != dy:
        p = SOUTH if dy > y else NORTH
        hops.append((x, y, p))
        y += STEP[p][1]
    return hops


def route_all(routes: Routes, placement: Placement, grid: Grid) -> RoutingTables:
    gx = grid.gx
    load = np.zeros(grid.gx * grid.gy * LINKS_PER_ROUTER)
    entries: dict[tuple[int, int], int] = {}
    host_load = 0.0
    px, py = placement.x, placement.y
    for r in range(len(routes.src_core)):
        s = int(routes.src_core[r])
        sx, sy = (0, 0) if s == HOST else (int(px[s]), int(py[s]))
        if s == HOST:
            host_load += float(routes.n_sources[r])
        links: set[tuple[int, int, int]] = set()
        for d in routes.dst_core[routes.dst_ptr[r]:routes.dst_ptr[r + 1]].tolist():
            dx, dy = int(px[d]), int(py[d])
            links.update(xy_path_links(sx, sy, dx, dy))
            key = (dy * gx + dx, r)
            entries[key] = entries.get(key, 0) | (1 << LOCAL)
        for x, y, p in links:
            rid = y * gx + x
            load[rid * LINKS_PER_ROUTER + p] += routes.n_sources[r]
            entries[(rid, r)] = entries.get((rid, r), 0) | (1 << p)
    keys = sorted(entries)
    return RoutingTables(np.array([k[0] for k in keys], dtype=np.int32),
                         np.array([k[1] for k in keys], dtype=np.int32),
                         np.array([entries[k] for k in keys], dtype=np.uint8), load, host_load)
