"""Mesh geometry, port numbering and the NoC's packed bit fields, shared by the compiler
(which builds routing tables and checks them against these limits) and chipsim's NoC model.

Routers sit on the global core grid of a board (``grid_x`` x ``grid_y`` = chips x cores per
chip along each axis); router (x, y) has index ``y * grid_x + x``. Each has four link ports and
a local port; output link ``router * 4 + port`` leads to the neighbour in that direction. Host
packets enter router (0, 0) through its west port.
"""

from __future__ import annotations

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
