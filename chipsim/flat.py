"""A Machine flattened into the contiguous arrays the Numba kernels take.

Slots: every core's neurons get consecutive "slots" (core c owns slots nbase[c]..nbase[c+1]).
Axons likewise get global axon ids (abase). A source is an input index or a slot; its fan-out
lists the global axon ids its packet lands on (one per destination core). Crossbars are stored
as rows of unshifted integer weights (int8 when every weight fits, as k <= 7-bit weights do,
else int16: the row adds are memory-bound), one contiguous row per axon; the layer's weight
shift is applied once per neuron at the tick (a left shift is linear, so this is exact).
Identical crossbars are stored once: a convolution's interior tiles all hold the same matrix
(VGG5: 448 conv cores, 36 distinct crossbars), which shrinks the simulator's working set from
165 MB to 28 MB and keeps it in cache; the chip still has one crossbar per core.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from chipsim.machine import Machine
from spikemesh.chipimage import ROLE_HOME, ROLE_PARTIAL, merged_sources
from spikemesh.hostinput import MAX_INPUT_EVENT


@dataclass
class Flat:
    n_slots: int
    n_axons: int
    n_inputs: int
    # cores, in layer order (partial cores of a layer before its home cores)
    core_layer: np.ndarray
    core_role: np.ndarray
    nbase: np.ndarray           # int64 (C+1,)
    abase: np.ndarray           # int64 (C+1,)
    xbase: np.ndarray           # int64 (C,) offset of the core's crossbar in ``xbar``
    core_shift: np.ndarray      # int64 (C,) left shift applied to the core's accumulated input
    layer_core_ptr: np.ndarray  # int64 (L+1,) cores of layer l: layer_core_ptr[l]..[l+1]
    # per layer
    threshold: np.ndarray
    leak_shift: np.ndarray
    leak_mult: np.ndarray
    soft_reset: np.ndarray      # bool
    is_output: np.ndarray       # bool
    layer_nbase: np.ndarray     # int64 (L+1,) offsets of layers in the spike-record space
    # per slot
    slot_neuron: np.ndarray     # int64 neuron index within its layer
    slot_bias: np.ndarray       # int64
    out_slot_class: np.ndarray  # int64 class index of output slots, -1 elsewhere
    # per axon
    axon_gain: np.ndarray       # int64 input gain (graded first layer), 1 elsewhere
    axon_nnz: np.ndarray        # int64 synapses in the axon's row
    xbar: np.ndarray            # int8 or int16 crossbar rows, identical crossbars shared
    # fan-out CSRs: input index -> axons; slot -> axons
    in_ptr: np.ndarray
    in_axon: np.ndarray
    slot_ptr: np.ndarray
    slot_axon: np.ndarray
    # routes, for traffic accounting: input index / slot -> route id (-1 none)
    in_route: np.ndarray
    slot_route: np.ndarray
    acc_dtype: type             # np.int32 when no input accumulator can overflow it, else np.int64


def _csr(lists_src: np.ndarray, lists_dst: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(lists_src, kind="stable")
    src, dst = lists_src[order], lists_dst[order]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, src + 1, 1)
    return np.cumsum(ptr), dst.astype(np.int64)


def flatten(m: Machine) -> Flat:
    cores = m.cores
    n_layers = len(m.layers)
    order = [ci for li in range(n_layers) for ci in m.layer_cores[li]]
    if order != list(range(len(cores))):
        raise ValueError("chip image cores must be stored in layer order")
    nn = np.array([len(c.neurons) for c in cores], dtype=np.int64)
    na = np.array([len(c.axons) for c in cores], dtype=np.int64)
    nbase = np.concatenate([[0], np.cumsum(nn)])
    abase = np.concatenate([[0], np.cumsum(na)])
    xbase, xbar = _pack_crossbars(cores)
    axon_nnz = np.zeros(int(abase[-1]), dtype=np.int64)
    axon_gain = np.ones(int(abase[-1]), dtype=np.int64)
    slot_neuron = np.concatenate([c.neurons for c in cores]) if cores else np.zeros(0, np.int64)
    slot_bias = np.zeros(int(nbase[-1]), dtype=np.int64)
    out_slot_class = np.full(int(nbase[-1]), -1, dtype=np.int64)
    core_shift = np.zeros(len(cores), dtype=np.int64)
    host_fed = m.encoding == "direct" and m.input_path == "host"
    for c in cores:
        lay = m.layers[c.layer]
        if c.crossbar is not None:
            axon_nnz[abase[c.index]:abase[c.index + 1]] = c.nnz_per_axon
            if lay.gain is not None:  # graded first layer: the pixel gain of the axon's channel
                channel = c.axons // int(np.prod(lay.in_shape[1:]))
                axon_gain[abase[c.index]:abase[c.index + 1]] = lay.gain[channel]
        if c.role != ROLE_PARTIAL:
            s0, s1 = nbase[c.index], nbase[c.index + 1]
            if lay.bias is not None:
                slot_bias[s0:s1] = lay.bias[c.neurons]
            if lay.kind == "out":
                out_slot_class[s0:s1] = c.neurons
        # host-computed currents arrive already in membrane units
        core_shift[c.index] = 0 if (host_fed and c.layer == 0) else lay.weight_shift
    layer_core_ptr = np.zeros(n_layers + 1, dtype=np.int64)
    for li in range(n_layers):
        layer_core_ptr[li + 1] = layer_core_ptr[li] + len(m.layer_cores[li])
    # fan-out: where each source's packet lands
    src_l, dst_l = [], []
    in_src, in_dst = [], []
    slot_route = np.full(int(nbase[-1]), -1, dtype=np.int64)
    holder_slot = _holder_slots(m, nbase)
    for c in cores:
        a_ids = abase[c.index] + np.arange(len(c.axons))
        if c.role == ROLE_HOME and not (host_fed and c.layer == 0):
            continue  # fed by partial sums, handled below
        if c.layer == 0:
            in_src.append(c.axons)
            in_dst.append(a_ids)
            continue
        srcs = _axon_sources(m, c.layer, c.axons)          # (A, 1 or 4) neuron idx in layer-1
        slots = holder_slot[c.layer - 1][srcs]
        src_l.append(slots.ravel())
        dst_l.append(np.repeat(a_ids, srcs.shape[1]))
    for c in cores:
        if c.role != ROLE_PARTIAL:
            continue
        lay_hold = holder_slot[c.layer]
        home_slots = lay_hold[c.neurons]                    # the home core's slot of each neuron
        home_core = np.searchsorted(nbase, home_slots, side="right") - 1
        home_axon = abase[home_core] + (home_slots - nbase[home_core])
        src_l.append(nbase[c.index] + np.arange(len(c.neurons)))
        dst_l.append(home_axon)
        slot_route[nbase[c.index]:nbase[c.index + 1]] = c.partial_route
    n_in = int(np.prod(m.layers[0].out_shape if host_fed else m.layers[0].in_shape))
    in_ptr, in_axon = _csr(np.concatenate(in_src), np.concatenate(in_dst), n_in)
    if src_l:
        slot_ptr, slot_axon = _csr(np.concatenate(src_l).astype(np.int64),
                                   np.concatenate(dst_l).astype(np.int64), int(nbase[-1]))
    else:
        slot_ptr, slot_axon = np.zeros(int(nbase[-1]) + 1, np.int64), np.zeros(0, np.int64)
    for li, lay in enumerate(m.layers):
        hs = holder_slot[li]
        slot_route[hs] = lay.route
    layer_sizes = np.array([lay.n_neurons for lay in m.layers], dtype=np.int64)
    acc_bound = _accumulator_bound(m, cores, abase, axon_gain, host_fed)
    return Flat(
        n_slots=int(nbase[-1]), n_axons=int(abase[-1]), n_inputs=n_in,
        core_layer=np.array([c.layer for c in cores], dtype=np.int64),
        core_role=np.array([c.role for c in cores], dtype=np.int64),
        nbase=nbase.astype(np.int64), abase=abase.astype(np.int64), xbase=xbase.astype(np.int64),
        core_shift=core_shift, layer_core_ptr=layer_core_ptr,
        threshold=np.array([l.threshold for l in m.layers], dtype=np.int64),
        leak_shift=np.array([l.leak_shift for l in m.layers], dtype=np.int64),
        leak_mult=np.array([l.leak_multiplier for l in m.layers], dtype=np.int64),
        soft_reset=np.array([l.reset == "soft" for l in m.layers]),
        is_output=np.array([l.kind == "out" for l in m.layers]),
        layer_nbase=np.concatenate([[0], np.cumsum(layer_sizes)]).astype(np.int64),
        slot_neuron=slot_neuron.astype(np.int64), slot_bias=slot_bias,
        out_slot_class=out_slot_class, axon_gain=axon_gain, axon_nnz=axon_nnz, xbar=xbar,
        in_ptr=in_ptr, in_axon=in_axon, slot_ptr=slot_ptr, slot_axon=slot_axon,
        in_route=m.input_route.astype(np.int64), slot_route=slot_route,
        acc_dtype=np.int32 if acc_bound < np.iinfo(np.int32).max else np.int64)


def _pack_crossbars(cores) -> tuple[np.ndarray, np.ndarray]:
    """(offset of each core's crossbar, its rows), each distinct crossbar stored once; int8
    when every weight fits, else int16."""
    xbase = np.zeros(len(cores), dtype=np.int64)
    stored: dict[tuple, list[tuple[int, np.ndarray]]] = {}   # (shape, crc32) -> (offset, rows)
    parts: list[np.ndarray] = []
    end = 0
    for c in cores:
        if c.crossbar is None:
            continue
        if c.crossbar.size and (c.crossbar.min() < -32767 or c.crossbar.max() > 32767):
            raise ValueError("integer weights exceed int16")
        rows = np.ascontiguousarray(c.crossbar, dtype=np.int16)
        same = stored.setdefault((rows.shape, zlib.crc32(rows)), [])
        match = next((off for off, seen in same if np.array_equal(seen, rows)), None)
        if match is None:
            match = end
            same.append((end, rows))
            parts.append(rows.ravel())
            end += rows.size
        xbase[c.index] = match
    xbar = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    if xbar.size and np.abs(xbar).max() <= 127:
        xbar = xbar.astype(np.int8)
    return xbase, xbar


def _holder_slots(m: Machine, nbase: np.ndarray) -> list[np.ndarray]:
    """Per layer: the slot that runs each neuron (on its neuron or home core)."""
    out = [np.full(lay.n_neurons, -1, dtype=np.int64) for lay in m.layers]
    for c in m.cores:
        if c.role != ROLE_PARTIAL:
            out[c.layer][c.neurons] = nbase[c.index] + np.arange(len(c.neurons))
    return out


def _axon_sources(m: Machine, layer: int, axons: np.ndarray) -> np.ndarray:
    """Neuron indices (of layer - 1) that drive each axon: (A, 1), or (A, 4) when merged."""
    if not m.layers[layer].pooled_input:
        return axons.astype(np.int64)[:, None]
    return merged_sources(m.layers[layer - 1].out_shape, axons)


def _max_event(m: Machine, layer: int) -> int:
    """Largest value one axon of ``layer`` can receive in one step (before the axon gain)."""
    if layer == 0:
        return MAX_INPUT_EVENT[m.encoding]
    return 4 if m.layers[layer].pooled_input else 1


def _accumulator_bound(m: Machine, cores, abase, axon_gain, host_fed: bool) -> int:
    """An upper bound on any input accumulator: per crossbar core, the sum over axons of the
    row's largest |weight| x the axon's largest event x its gain; a home core adds the bounds of
    all partial cores of its layer (generous, and cheap)."""
    worst = 0
    partial_total: dict[int, int] = {}
    for c in cores:
        if c.crossbar is None:
            continue
        vmax = _max_event(m, c.layer) * axon_gain[abase[c.index]:abase[c.index + 1]]
        bound = int((np.abs(c.crossbar).max(axis=1) * vmax).sum())
        worst = max(worst, bound)
        if c.role == ROLE_PARTIAL:
            partial_total[c.layer] = partial_total.get(c.layer, 0) + bound
    worst = max([worst, *partial_total.values()])
    if host_fed:
        worst = max(worst, 1 << 62)   # host currents are unbounded here: keep int64
    return worst
