"""Mesh geometry, port numbering and the NoC's packed bit fields, shared by the compiler
(which builds routing tables and checks them against these limits) and chipsim's NoC model.

Routers sit on the global core grid of a board (``grid_x`` x ``grid_y`` = chips x cores per
chip along each axis); router (x, y) has index ``y * grid_x + x``. Each has four link ports and
a local port; output link ``router * 4 + port`` leads to the neighbour in that direction. Host
packets enter router (0, 0) through its west port.
"""

from __future__ import annotations

import numpy as np

EAST, WEST, SOUTH, NORTH, LOCAL = 0, 1, 2, 3, 4
PORT_NAMES = ("east", "west", "south", "north", "local")
STEP = {EAST: (1, 0), WEST: (-1, 0), SOUTH: (0, 1), NORTH: (0, -1)}
HOST_ROUTER_PORT = WEST
LINKS_PER_ROUTER = 4

# A buffered packet in the NoC model is one int64: route id in bits 0..23, the output ports it
# still has to take in bits 24..28, and the cycle it may leave from bit 32. A router counts the
# packets each output sent this cycle in 8 bits per output.
ROUTE_ID_BITS = 24
PORT_MASK_SHIFT = ROUTE_ID_BITS
READY_SHIFT = 32
MAX_ROUTES = 1 << ROUTE_ID_BITS                 # route ids 0 .. MAX_ROUTES - 1
MAX_LINK_FLITS_PER_CYCLE = (1 << 8) - 1         # the per-output count field
MAX_WAVE_CYCLES = 1 << 30                       # cycles one wave may run (ready field headroom)
MAX_HOP_CYCLES = 1 << 16                        # a link latency, far below the ready field


def router_index(x: int, y: int, grid_x: int) -> int:
    return y * grid_x + x


def link_endpoints(link: int, grid_x: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(x, y) of the router a link leaves and of the one it reaches."""
    rid, p = divmod(link, LINKS_PER_ROUTER)
    y, x = divmod(rid, grid_x)
    return (x, y), (x + STEP[p][0], y + STEP[p][1])


def crosses_chip(a: tuple[int, int], b: tuple[int, int], cores_x: int, cores_y: int) -> bool:
    """Whether the link between routers ``a`` and ``b`` crosses a chip boundary."""
    return a[0] // cores_x != b[0] // cores_x or a[1] // cores_y != b[1] // cores_y


def xy_tables(src_x: np.ndarray, src_y: np.ndarray, dst_ptr: np.ndarray, dst_x: np.ndarray,
              dst_y: np.ndarray, weight: np.ndarray, grid_x: int, grid_y: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The routing tables of dimension-order (XY) multicast routes, vectorized.

    Route r leaves router (src_x[r], src_y[r]) for the destinations dst_*[dst_ptr[r]:dst_ptr[r+1]]
    along x first, then y; its tree is the union of those paths, so a router's entry is the OR
    of the ports the paths take there, plus LOCAL where a destination sits. ``weight[r]``
    packets per step travel each link of the tree once.

    Returns (router, route, ports, link_load): entries sorted by (router, route), ports a uint8
    bit mask, link_load float64 per link ``router * 4 + port``. This is the one definition of
    the routing: the compiler builds the image's tables with it and the image check compares
    them with it.
    """
    n_routes = len(dst_ptr) - 1
    count = np.diff(dst_ptr).astype(np.int64)
    route = np.repeat(np.arange(n_routes, dtype=np.int64), count)
    sx, sy = src_x.astype(np.int64)[route], src_y.astype(np.int64)[route]
    dx, dy = dst_x.astype(np.int64), dst_y.astype(np.int64)
    # each (route, destination) path: |dx - sx| hops along x at row sy, then |dy - sy| along y
    nx, ny = np.abs(dx - sx), np.abs(dy - sy)
    pair_x = np.repeat(np.arange(len(route)), nx)
    step_x = np.arange(len(pair_x)) - np.repeat(np.cumsum(nx) - nx, nx)
    east = dx[pair_x] > sx[pair_x]
    hx = sx[pair_x] + np.where(east, step_x, -step_x)
    hop_x = (sy[pair_x] * grid_x + hx, route[pair_x], np.where(east, EAST, WEST))
    pair_y = np.repeat(np.arange(len(route)), ny)
    step_y = np.arange(len(pair_y)) - np.repeat(np.cumsum(ny) - ny, ny)
    south = dy[pair_y] > sy[pair_y]
    hy = sy[pair_y] + np.where(south, step_y, -step_y)
    hop_y = (hy * grid_x + dx[pair_y], route[pair_y], np.where(south, SOUTH, NORTH))
    here = (dy * grid_x + dx, route, np.full(len(route), LOCAL))
    router = np.concatenate([hop_x[0], hop_y[0], here[0]])
    rid = np.concatenate([hop_x[1], hop_y[1], here[1]])
    port = np.concatenate([hop_x[2], hop_y[2], here[2]])
    n_routers = grid_x * grid_y
    # one (router, route, port) per tree edge, however many paths share it
    edge = np.unique((rid * n_routers + router) * 8 + port)
    port = edge % 8
    key = edge // 8                                     # route * n_routers + router
    links = port != LOCAL
    load = np.zeros(n_routers * LINKS_PER_ROUTER, dtype=np.float64)
    np.add.at(load, (key[links] % n_routers) * LINKS_PER_ROUTER + port[links],
              weight.astype(np.float64)[key[links] // n_routers])
    entry, first = np.unique(key, return_index=True)
    bits = np.bitwise_or.reduceat((1 << port).astype(np.int64), first) if len(key) else port
    order = np.lexsort((entry // n_routers, entry % n_routers))
    return ((entry % n_routers)[order].astype(np.int32), (entry // n_routers)[order].astype(np.int32),
            bits[order].astype(np.uint8), load)
