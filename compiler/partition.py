"""partition: place every neuron of every layer on a core, within the core's limits.

Each core is a crossbar: ``axons`` input lines by ``neurons`` outputs. A core's synapse memory is
charged for the dense crossbar, axons x neurons x k bits, as the hardware would store it, even
though a convolution uses only the 3x3 window of each neuron's row.

Conv layers are tiled by output channel and spatial window; fully connected layers by output
neuron. Where one neuron's fan-in does not fit a core's axons, the fan-in is split exactly:
the inputs are divided into G groups, "partial" cores compute each group's integer partial
sum, and a "home" core receives the G graded partial sums on one axon per neuron, adds them
(integer addition is associative, so this is exact) and runs the neuron. Home cores add graded
input without a crossbar and are charged no synapse memory (an assumption of the chip model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from artifacts.errors import UserError
from compiler.integer_model import IntegerModel, IntLayer
from compiler.spec import ChipSpec


@dataclass
class CoreProgram:
    """What one core computes. Indices are flat indices into the layer's spaces."""

    layer: int                 # index into IntegerModel.layers
    role: str                  # "neuron": crossbar -> neurons; "partial": crossbar -> partial
                               # sums; "home": graded partial sums (or host currents) -> neurons
    group: int                 # fan-in group of a partial core (0 otherwise)
    neurons: np.ndarray        # int32, sorted: neuron indices in the layer's output space
    axons: np.ndarray          # int32, sorted: for neuron/partial cores, indices in the layer's
                               # input space (after pool merge); for home cores, == neurons
    synapse_bits: int          # dense crossbar cost charged to synapse memory


@dataclass(frozen=True)
class LayerPlan:
    layer: int
    groups: int                # G fan-in groups (1 = no split)
    tile: tuple[int, int, int]  # (channels or neurons, rows, cols) per core
    cores: int


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _conv_tiles(cg: int, c_out: int, h: int, w: int, spec: ChipSpec, k: int):
    """Best (cores, axons, tile) for a conv with ``cg`` input channels per group, or None."""
    best = None
    core = spec.core
    for th in range(1, h + 1):
        for tw in range(1, w + 1):
            axons = cg * min(th + 2, h) * min(tw + 2, w)
            if axons > core.axons:
                break
            pos = th * tw
            co = min(c_out, core.neurons // pos, core.synapse_bits // (axons * pos * k))
            if co < 1:
                continue
            cores = _ceil(c_out, co) * _ceil(h, th) * _ceil(w, tw)
            key = (cores, axons)
            if best is None or key < best[0]:
                best = (key, (co, th, tw))
    return best


def plan_layer(i: int, layer: IntLayer, spec: ChipSpec, *, host_input: bool) -> LayerPlan:
    """Choose the fan-in split and the tile that need the fewest cores."""
    k = layer.weight_bits
    core = spec.core
    if host_input:  # the host sends conv1's currents; the cores only hold neurons
        tile = _host_tile(layer, home_capacity(spec))
        sizes = (_conv_tile_sizes(layer.out_shape, tile) if layer.kind == "conv"
                 else _fc_tile_sizes(int(np.prod(layer.out_shape)), tile[0]))
        return LayerPlan(i, 1, tile, len(sizes))
    cap = home_capacity(spec)
    candidates = []
    if layer.kind == "conv":
        c_in, h, w = layer.in_shape
        c_out = layer.out_shape[0]
        g_min = max(1, _ceil(c_in * min(3, h) * min(3, w), core.axons))
        for g in range(g_min, min(c_in, g_min + 3) + 1):
            best = _conv_tiles(_ceil(c_in, g), c_out, h, w, spec, k)
            if best:
                homes = _home_count(_conv_tile_sizes(layer.out_shape, best[1]), cap) if g > 1 else 0
                candidates.append((g * best[0][0] + homes, g, best[1]))
        if not candidates:
            raise UserError(
                f"rule core-axons: layer {layer.name} needs at least {min(3, h) * min(3, w)} axons "
                f"per input channel and {min(3, h) * min(3, w) * k} synapse bits per neuron, "
                f"the core has {core.axons} axons and {core.synapse_bits} bits")
    else:
        n_in, n_out = int(np.prod(layer.in_shape)), int(np.prod(layer.out_shape))
        g_min = _ceil(n_in, core.axons)
        for g in range(g_min, g_min + 4):
            cg = _ceil(n_in, g)
            per = min(core.neurons, core.synapse_bits // (cg * k), n_out)
            if per >= 1:
                homes = _home_count(_fc_tile_sizes(n_out, per), cap) if g > 1 else 0
                candidates.append((g * _ceil(n_out, per) + homes, g, (per, 1, 1)))
        if not candidates:
            raise UserError(
                f"rule core-synapse-memory: layer {layer.name} needs {_ceil(n_in, g_min) * k} "
                f"synapse bits for one neuron, the core has {core.synapse_bits}")
    cores, g, tile = min(candidates)
    return LayerPlan(i, g, tile, cores)


def _host_tile(layer: IntLayer, cap: int) -> tuple[int, int, int]:
    """Tile of a host-fed layer's home cores: for a conv, all channels of the squarest spatial
    window that fits, so the next layer's cores each read from few of them."""
    if layer.kind != "conv":
        return (cap, 1, 1)
    c_out, h, w = layer.out_shape
    if c_out > cap:
        return (cap, 1, 1)
    best = (c_out, 1, 1)
    for th in range(1, h + 1):
        for tw in range(th, th + 2):    # square or one column wider
            if tw <= w and c_out * th * tw <= cap and th * tw > best[1] * best[2]:
                best = (c_out, th, tw)
    return best


def _grid(*axes: np.ndarray) -> np.ndarray:
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))


def _conv_tiles_neurons(out_shape: tuple[int, ...], tile: tuple[int, int, int]
                        ) -> list[tuple[int, int, np.ndarray]]:
    """(first row, first column, sorted flat neuron indices) of each tile, channel block major."""
    c_out, h, w = out_shape
    co, th, tw = tile
    tiles = []
    for o0 in range(0, c_out, co):
        for y0 in range(0, h, th):
            for x0 in range(0, w, tw):
                oo = np.arange(o0, min(o0 + co, c_out))
                ys, xs = np.arange(y0, min(y0 + th, h)), np.arange(x0, min(x0 + tw, w))
                nz = _grid(oo, ys, xs)
                tiles.append((y0, x0, ((nz[:, 0] * h + nz[:, 1]) * w + nz[:, 2]).astype(np.int32)))
    return tiles


def _conv_cores(i: int, layer: IntLayer, plan: LayerPlan, k: int) -> list[CoreProgram]:
    c_in, h, w = layer.in_shape
    th, tw = plan.tile[1], plan.tile[2]
    cg = _ceil(c_in, plan.groups)
    cores = []
    for g in range(plan.groups):
        chans = np.arange(g * cg, min((g + 1) * cg, c_in))
        for y0, x0, neurons in _conv_tiles_neurons(layer.out_shape, plan.tile):
            iy = np.arange(max(0, y0 - 1), min(h, y0 + th + 1))
            ix = np.arange(max(0, x0 - 1), min(w, x0 + tw + 1))
            az = _grid(chans, iy, ix)
            axons = ((az[:, 0] * h + az[:, 1]) * w + az[:, 2]).astype(np.int32)
            role = "partial" if plan.groups > 1 else "neuron"
            cores.append(CoreProgram(i, role, g, neurons, axons, len(axons) * len(neurons) * k))
    return cores


def _fc_cores(i: int, layer: IntLayer, plan: LayerPlan, k: int) -> list[CoreProgram]:
    n_in, n_out = int(np.prod(layer.in_shape)), int(np.prod(layer.out_shape))
    per = plan.tile[0]
    cg = _ceil(n_in, plan.groups)
    cores = []
    for g in range(plan.groups):
        axons = np.arange(g * cg, min((g + 1) * cg, n_in), dtype=np.int32)
        for neurons in _fc_tiles(n_out, per):
            role = "partial" if plan.groups > 1 else "neuron"
            cores.append(CoreProgram(i, role, g, neurons, axons, len(axons) * len(neurons) * k))
    return cores


def home_capacity(spec: ChipSpec) -> int:
    """Neurons per home core: each needs its own axon for the graded input it receives."""
    return min(spec.core.neurons, spec.core.axons)


def _conv_tile_sizes(out_shape: tuple[int, ...], tile: tuple[int, int, int]) -> np.ndarray:
    """Neurons in each tile of a conv layer, in the order _conv_cores makes them."""
    sizes = [np.minimum(t, n - np.arange(0, n, t)) for n, t in zip(out_shape, tile, strict=True)]
    return (sizes[0][:, None, None] * sizes[1][None, :, None] * sizes[2][None, None, :]).ravel()


def _fc_tiles(n_out: int, per: int) -> list[np.ndarray]:
    """Runs of ``per`` consecutive neurons of a fully connected layer."""
    return [np.arange(a, min(a + per, n_out), dtype=np.int32) for a in range(0, n_out, per)]


def _fc_tile_sizes(n_out: int, per: int) -> np.ndarray:
    return np.minimum(per, n_out - np.arange(0, n_out, per))


def _home_chunks(sizes: np.ndarray, cap: int) -> list[tuple[int, int]]:
    """Runs of consecutive tiles that share a home core (cut further if one tile exceeds it)."""
    per_home = max(1, cap // int(sizes.max()))
    return [(a, min(a + per_home, len(sizes))) for a in range(0, len(sizes), per_home)]


def _home_count(sizes: np.ndarray, cap: int) -> int:
    return sum(_ceil(int(sizes[a:b].sum()), cap) for a, b in _home_chunks(sizes, cap))


def _home_cores(i: int, tiles: list[np.ndarray], spec: ChipSpec) -> list[CoreProgram]:
    """Home cores for the neuron ``tiles`` of a layer (one partial core's neurons each)."""
    cap = home_capacity(spec)
    cores = []
    for a, b in _home_chunks(np.array([len(t) for t in tiles]), cap):
        neurons = np.sort(np.concatenate(tiles[a:b])).astype(np.int32)
        for n0 in range(0, len(neurons), cap):
            part = neurons[n0:n0 + cap]
            cores.append(CoreProgram(i, "home", 0, part, part.copy(), 0))
    return cores


def partition(model: IntegerModel, spec: ChipSpec) -> tuple[list[CoreProgram], list[LayerPlan]]:
    """Cores in layer order; within a split layer, partial cores come before home cores."""
    cores: list[CoreProgram] = []
    plans = []
    host_first = model.encoding == "direct" and model.input_path == "host"
    for i, layer in enumerate(model.layers):
        host = host_first and i == 0
        plan = plan_layer(i, layer, spec, host_input=host)
        plans.append(plan)
        if host:   # neurons fed by the host: home cores of whole tiles
            tiles = ([t[2] for t in _conv_tiles_neurons(layer.out_shape, plan.tile)]
                     if layer.kind == "conv" else _fc_tiles(int(np.prod(layer.out_shape)), plan.tile[0]))
            cores += _home_cores(i, tiles, spec)
            continue
        k = layer.weight_bits
        made = (_conv_cores if layer.kind == "conv" else _fc_cores)(i, layer, plan, k)
        cores += made
        if plan.groups > 1:
            cores += _home_cores(i, [c.neurons for c in made if c.group == 0], spec)
    return cores, plans


def holders(cores: list[CoreProgram], model: IntegerModel) -> list[np.ndarray]:
    """Per layer: for each neuron, the index of the core that runs it (neuron or home role)."""
    out = [np.full(int(np.prod(l.out_shape)), -1, dtype=np.int32) for l in model.layers]
    for ci, c in enumerate(cores):
        if c.role != "partial":
            out[c.layer][c.neurons] = ci
    return out


def chips_needed(n_cores: int, spec: ChipSpec) -> int:
    return math.ceil(n_cores / spec.cores_per_chip)
