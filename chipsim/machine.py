"""A chip image loaded into the flat arrays the simulator works on.

Per core: its neurons (layer and index), its axons, and its crossbar expanded from the layer
kernel (``artifacts.chipimage.expand_crossbar``) as contiguous rows, one per axon. Per source
(input index, neuron, partial-sum neuron): its route, i.e. the cores its packet reaches, and in
each of those cores the axon it lands on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artifacts import intmath
from artifacts.chipimage import ROLE_HOME, ROLE_PARTIAL, expand_crossbar, read_chip_image
from artifacts.imagecheck import validate_image


@dataclass
class Layer:
    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    pooled_input: bool
    weight_bits: int
    weight_shift: int
    threshold: int
    leak_shift: int
    leak_multiplier: int
    reset: str
    units: np.ndarray              # int64 unshifted integer weights 2c - (2^k - 1)
    gain: np.ndarray | None        # int64 per input channel (graded first layer) or None
    bias: np.ndarray | None        # int64 per neuron (flat) or None
    route: np.ndarray              # int32 route per neuron (-1: none)

    @property
    def n_neurons(self) -> int:
        return int(np.prod(self.out_shape))


@dataclass
class Core:
    index: int
    layer: int
    role: int
    x: int
    y: int
    neurons: np.ndarray            # int64 layer neuron indices
    axons: np.ndarray              # int64 sorted input indices (home: == neurons)
    crossbar: np.ndarray | None    # (n_axons, n_neurons) unshifted weights, int8 or int16 (the
                                   # smallest that holds the layer's); None for home
    nnz_per_axon: np.ndarray | None  # synapses per crossbar row (SOPs when the axon fires)
    partial_route: np.ndarray | None


@dataclass
class Machine:
    meta: dict[str, Any]
    layers: list[Layer]
    cores: list[Core]
    route_dst_ptr: np.ndarray
    route_dst: np.ndarray
    route_src: np.ndarray
    input_route: np.ndarray
    timesteps: int
    encoding: str
    input_path: str
    membrane_bits: int
    num_classes: int
    layer_cores: list[list[int]] = field(default_factory=list)

    def destinations(self, route: int) -> np.ndarray:
        return self.route_dst[self.route_dst_ptr[route]:self.route_dst_ptr[route + 1]]


def _weight_dtype(units: np.ndarray) -> type:
    """int8 for weights of up to 7 bits, int16 up to 15 (the chip stores at most 8): a VGG5
    machine's crossbars take 83 MB as int8 instead of 662 MB as int64."""
    largest = int(np.abs(units).max()) if units.size else 0
    if largest > np.iinfo(np.int16).max:
        raise ValueError(f"integer weights up to {largest} do not fit int16")
    return np.int8 if largest <= np.iinfo(np.int8).max else np.int16


def _conv_tile_key(li: int, lay: Layer, neurons: np.ndarray, axons: np.ndarray) -> tuple:
    """A conv core's crossbar depends only on its neurons and axons relative to the tile's
    corner (the weight of axon (c, iy, ix) to neuron (o, y, x) is W[o, c, iy - y + 1,
    ix - x + 1]), so cores whose tiles match after translation share one expansion: VGG5's 448
    conv cores have 36 distinct crossbars, and expanding each once cuts loading ~10x."""
    _, h, w = lay.in_shape
    o, rem = np.divmod(neurons, h * w)
    y, x = np.divmod(rem, w)
    c, rem = np.divmod(axons, h * w)
    iy, ix = np.divmod(rem, w)
    y0, x0 = (int(y.min()), int(x.min())) if len(neurons) else (0, 0)
    return (li, np.stack([o, y - y0, x - x0]).tobytes(), np.stack([c, iy - y0, ix - x0]).tobytes())


def load_machine(path: str | Path) -> Machine:
    meta, arrays = read_chip_image(path)
    return machine_from_arrays(meta, arrays, where=str(path))


def machine_from_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray],
                        where: str = "chip image") -> Machine:
    validate_image(meta, arrays, where)     # nothing below, nor any kernel, trusts the image
    m = meta["model"]
    layers = []
    for i, lm in enumerate(m["layers"]):
        layers.append(Layer(
            name=lm["name"], kind=lm["kind"], in_shape=tuple(lm["in_shape"]),
            out_shape=tuple(lm["out_shape"]), pooled_input=lm["pooled_input"],
            weight_bits=lm["weight_bits"], weight_shift=lm["weight_shift"],
            threshold=lm["threshold"], leak_shift=lm["leak_shift"],
            leak_multiplier=lm["leak_multiplier"], reset=lm["reset"],
            units=intmath.weight_units(arrays[f"layer{i}.codes"], lm["weight_bits"]),
            gain=arrays.get(f"layer{i}.gain"),
            bias=None if f"layer{i}.bias" not in arrays else arrays[f"layer{i}.bias"].reshape(-1),
            route=arrays[f"layer{i}.route"]))
    nptr, nflat = arrays["core.neuron_ptr"], arrays["core.neurons"]
    aptr, aflat = arrays["core.axon_ptr"], arrays["core.axons"]
    pptr, pflat = arrays["partial.route_ptr"], arrays["partial.route"]
    cores = []
    layer_cores: list[list[int]] = [[] for _ in layers]
    dtypes = [_weight_dtype(lay.units) for lay in layers]
    expanded: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}   # conv tile -> (crossbar, nnz)
    for ci in range(len(arrays["core.layer"])):
        li, role = int(arrays["core.layer"][ci]), int(arrays["core.role"][ci])
        neurons = nflat[nptr[ci]:nptr[ci + 1]].astype(np.int64)
        axons = aflat[aptr[ci]:aptr[ci + 1]].astype(np.int64)
        lay = layers[li]
        xbar = nnz = None
        if role != ROLE_HOME:
            key = _conv_tile_key(li, lay, neurons, axons) if lay.kind == "conv" else None
            if key is None or key not in expanded:
                xbar = expand_crossbar(lay.kind if lay.kind == "conv" else "fc", lay.in_shape,
                                       lay.out_shape, lay.units, neurons, axons,
                                       dtype=dtypes[li])
                nnz = (xbar != 0).sum(axis=1).astype(np.int64)
                xbar.flags.writeable = nnz.flags.writeable = False
                if key is not None:
                    expanded[key] = (xbar, nnz)
            else:
                xbar, nnz = expanded[key]   # shared between cores, so read-only
        proute = pflat[pptr[ci]:pptr[ci + 1]] if role == ROLE_PARTIAL else None
        cores.append(Core(ci, li, role, int(arrays["core.x"][ci]), int(arrays["core.y"][ci]),
                          neurons, axons, xbar, nnz, proute))
        layer_cores[li].append(ci)
    return Machine(meta, layers, cores, arrays["route.dst_ptr"], arrays["route.dst"],
                   arrays["route.src"], arrays["input.route"], m["timesteps"], m["encoding"],
                   m["input_path"], m["membrane_bits"], m["num_classes"], layer_cores)
