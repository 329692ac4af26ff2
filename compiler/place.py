"""place: cores onto the board's global core grid, traffic-aware and deterministic.

Cost = sum over core pairs of packets-per-step x hop cost, where an on-chip hop costs 1 and a
chip-to-chip hop costs chip_hop_cycles / hop_cycles. The host's input port sits west of core
(0, 0). Greedy construction (each core takes the free slot nearest, by cost, to the cores
already placed that it talks to), then a local search of moves and swaps. Cores are placed in
order of their traffic with the cores placed so far, heaviest first: a home core then follows
its first partial core and pulls the others next to it (in layer order the partial cores had
all been placed, scattered, before their home).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.connect import HOST
from compiler.spec import ChipSpec


@dataclass
class Placement:
    x: np.ndarray               # int32 per core, global grid column
    y: np.ndarray               # int32 per core, global grid row
    cost: float                 # traffic x hops of this placement
    row_major_cost: float       # the same cost for naive row-major placement


class Grid:
    """Hop costs on a board of chips_x x chips_y chips of cores_x x cores_y cores."""

    def __init__(self, spec: ChipSpec) -> None:
        self.cx, self.cy = spec.mesh.cores_x, spec.mesh.cores_y
        self.gx, self.gy = self.cx * spec.board.chips_x, self.cy * spec.board.chips_y
        self.chip_extra = spec.noc.chip_hop_cycles / spec.noc.hop_cycles - 1.0
        ys, xs = np.divmod(np.arange(self.gx * self.gy), self.gx)
        self.slot_x, self.slot_y = xs.astype(np.int32), ys.astype(np.int32)

    def hops(self, x1, y1, x2, y2):
        """Hop cost between positions; x = -1 is the host port west of (0, 0)."""
        x1, y1, x2, y2 = (np.asarray(v) for v in (x1, y1, x2, y2))
        base = np.abs(x1 - x2) + np.abs(y1 - y2)
        chips = (np.abs(np.floor_divide(x1, self.cx) - np.floor_divide(x2, self.cx))
                 + np.abs(np.floor_divide(y1, self.cy) - np.floor_divide(y2, self.cy)))
        return base + self.chip_extra * chips


def _positions(px, py, nodes):
    """Positions of nodes, HOST mapped to (-1, 0)."""
    x = np.where(nodes == HOST, -1, px[np.maximum(nodes, 0)])
    y = np.where(nodes == HOST, 0, py[np.maximum(nodes, 0)])
    return x, y


def placement_cost(grid: Grid, px, py, src, dst, w) -> float:
    sx, sy = _positions(px, py, src)
    dx, dy = _positions(px, py, dst)
    return float((w * grid.hops(sx, sy, dx, dy)).sum())


def place(n_cores: int, edges: tuple[np.ndarray, np.ndarray, np.ndarray], spec: ChipSpec, *,
          seed: int = 0, search_moves: int | None = None) -> Placement:
    grid = Grid(spec)
    src, dst, w = edges
    n_slots = grid.gx * grid.gy
    if n_cores > n_slots:
        raise ValueError("more cores than slots")  # board-capacity is checked before placing
    # adjacency lists (both directions), host edges kept with HOST as the neighbour
    nbr: list[list[tuple[int, float]]] = [[] for _ in range(n_cores)]
    for s, d, ww in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
        if d >= 0:
            nbr[d].append((s, ww))
        if s >= 0:
            nbr[s].append((d, ww))
    px = np.full(n_cores, -2, dtype=np.int64)
    py = np.full(n_cores, -2, dtype=np.int64)
    free = np.ones(n_slots, dtype=bool)
    last = 0
    for c in _greedy_order(n_cores, nbr):
        placed = [(o, ww) for o, ww in nbr[c] if o == HOST or px[o] > -2]
        cand = np.nonzero(free)[0]
        if placed:
            o = np.array([p[0] for p in placed])
            ww = np.array([p[1] for p in placed])
            ox, oy = _positions(px, py, o)
            cost = (ww[None, :] * grid.hops(grid.slot_x[cand][:, None], grid.slot_y[cand][:, None],
                                            ox[None, :], oy[None, :])).sum(1)
        else:  # nothing to be near: stay near the previous core
            cost = grid.hops(grid.slot_x[cand], grid.slot_y[cand], grid.slot_x[last], grid.slot_y[last])
        slot = int(cand[np.argmin(cost)])
        free[slot] = False
        px[c], py[c] = grid.slot_x[slot], grid.slot_y[slot]
        last = slot
    _local_search(grid, px, py, nbr, free, np.random.default_rng(seed),
                  search_moves if search_moves is not None else 20 * n_cores)
    rx, ry = grid.slot_x[:n_cores].astype(np.int64), grid.slot_y[:n_cores].astype(np.int64)
    return Placement(px.astype(np.int32), py.astype(np.int32),
                     placement_cost(grid, px, py, src, dst, w),
                     placement_cost(grid, rx, ry, src, dst, w))


def _greedy_order(n_cores: int, nbr: list[list[tuple[int, float]]]) -> list[int]:
    """Cores by traffic with those already ordered, heaviest first (ties: lowest index; the
    host counts as ordered from the start)."""
    attach = np.zeros(n_cores)
    for c in range(n_cores):
        attach[c] = sum(w for o, w in nbr[c] if o == HOST)
    done = np.zeros(n_cores, dtype=bool)
    order = []
    for _ in range(n_cores):
        c = int(np.argmax(np.where(done, -1.0, attach)))
        done[c] = True
        order.append(c)
        for o, w in nbr[c]:
            if o != HOST:
                attach[o] += w
    return order


def _core_cost(grid: Grid, px, py, nbr, c: int, x: int, y: int, skip: int = -3) -> float:
    total = 0.0
    for o, ww in nbr[c]:
        if o == skip:
            continue
        ox, oy = (-1, 0) if o == HOST else (px[o], py[o])
        base = abs(x - ox) + abs(y - oy)
        chips = abs(x // grid.cx - ox // grid.cx) + abs(y // grid.cy - oy // grid.cy)
        total += ww * (base + grid.chip_extra * chips)
    return total


def _local_search(grid: Grid, px, py, nbr, free, rng, moves: int) -> None:
    """Try moving a random core to a random nearby slot (swapping with its occupant); keep the
    move if the traffic x hops cost falls. Deterministic for a given seed."""
    n = len(px)
    occupant = -np.ones(grid.gx * grid.gy, dtype=np.int64)
    occupant[py * grid.gx + px] = np.arange(n)
    for _ in range(moves):
        a = int(rng.integers(n))
        nx = int(np.clip(px[a] + rng.integers(-3, 4), 0, grid.gx - 1))
        ny = int(np.clip(py[a] + rng.integers(-3, 4), 0, grid.gy - 1))
        slot = ny * grid.gx + nx
        b = int(occupant[slot])
        if b == a:
            continue
        ax, ay = int(px[a]), int(py[a])
        before = _core_cost(grid, px, py, nbr, a, ax, ay)
        after = _core_cost(grid, px, py, nbr, a, nx, ny, skip=b)
        if b >= 0:
            before += _core_cost(grid, px, py, nbr, b, nx, ny, skip=a)
            after += _core_cost(grid, px, py, nbr, b, ax, ay, skip=a)
            # an a-b edge keeps its length under a swap, so it was skipped on both sides
        if after < before - 1e-9:
            occupant[ay * grid.gx + ax] = b
            occupant[slot] = a
            px[a], py[a] = nx, ny
            if b >= 0:
                px[b], py[b] = ax, ay
