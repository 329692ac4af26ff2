"""route: dimension-order (XY) multicast routing on the global core grid.

A packet travels along x first, then y. A multicast route is the union of the XY paths from
its source to each destination: a tree, since every path from one source leaves along the same
row, so a packet forks exactly where the paths part. Each router on the tree gets a table
entry: route id -> output-port mask. Host packets enter at router (0, 0) from the west.
The tables themselves come from ``artifacts.mesh.xy_tables``, the one definition that the
image check also uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artifacts.mesh import xy_tables
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


def route_all(routes: Routes, placement: Placement, grid: Grid) -> RoutingTables:
    src = routes.src_core.astype(np.int64)
    host = src == HOST
    inside = np.maximum(src, 0)
    sx = np.where(host, 0, placement.x[inside] if len(src) else 0)
    sy = np.where(host, 0, placement.y[inside] if len(src) else 0)
    dst = routes.dst_core.astype(np.int64)
    router, route, ports, load = xy_tables(sx, sy, routes.dst_ptr, placement.x[dst],
                                           placement.y[dst], routes.n_sources, grid.gx, grid.gy)
    return RoutingTables(router, route, ports, load, float(routes.n_sources[host].sum()))
