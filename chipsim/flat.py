"""A Machine flattened into the contiguous arrays the Numba kernels take.

Slots: every core's neurons get consecutive "slots" (core c owns slots nbase[c]..nbase[c+1]).
Axons likewise get global axon ids (abase). Within a core, neurons and axons are in the
kernels' order (position-major for convolutions, see _local_order), not the image's. Packets
land in entries, one per logical target (see _entries): a source adds to one entry, and every
core holding that target as an axon reads it. Crossbars are stored as rows of unshifted
integer weights (int8 when every weight fits, as k <= 7-bit weights do, else int16), one
contiguous row per axon; the layer's weight shift is applied once per neuron at the tick (a
left shift is linear, so this is exact). Identical crossbars are stored once: a
convolution's interior tiles all hold the same matrix (VGG5: 448 conv cores, 36 distinct
crossbars, 14 MB), which keeps the row adds in cache; the chip still has one crossbar per
core. Each row's synapses are described as runs of columns (a pattern shared by many rows),
so the kernels add only those.

Where the CPU has AVX-512 VNNI and a core's inputs allow it (see _quad_cores), the core's
crossbar is stored instead in quads: axons 4q .. 4q + 3 interleaved per column, the layout
one VNNI instruction multiplies by four axons' 8-bit inputs (kernels._read_quads).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from artifacts import intmath
from artifacts.chipimage import ROLE_HOME, ROLE_PARTIAL, merged_sources
from chipsim import simd
from chipsim.machine import Machine


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
    rbase: np.ndarray           # int64 (C,) id of the core's first crossbar row
    row_pattern: np.ndarray     # int64 per row id: where the row's synapses are, a pattern id
    run_ptr: np.ndarray         # int64 (patterns+1,) pattern p's runs: run_ptr[p]..[p+1]
    run_lo: np.ndarray          # int64 first column of each run
    run_hi: np.ndarray          # int64 one past its last column
    # where packets land (see _entries): one entry per logical destination, shared by every
    # core that holds a copy of it as an axon
    axon_input: np.ndarray      # int64 per axon: its index in its layer's input space
    axon_entry: np.ndarray      # int64 per axon: the entry it reads (-1: a home core's partial sums)
    slot_entry: np.ndarray      # int64 per slot: the entry its spike adds to (-1: none)
    input_entry: np.ndarray     # int64 per host input index: the entry it adds to
    region_ptr: np.ndarray      # int64 (L+1,) entries layer l reads: region_ptr[l]..[l+1]
    # partial sums: core c's segments psum_seg[psum_ptr[c]:psum_ptr[c + 1]], each a run of its
    # slots (j0, j1) going to consecutive home slots from h, of home core hc, by route r
    psum_ptr: np.ndarray        # int64 (C+1,)
    psum_seg: np.ndarray        # int64 (segments, 5): j0, j1, h, hc, r
    # routes, for traffic accounting: input index / slot -> route id (-1 none)
    in_route: np.ndarray
    slot_route: np.ndarray
    host_currents: bool         # the host sends layer 0's home cores currents, not events
    acc_dtype: type             # np.int32 when no input accumulator can overflow it, else np.int64
    # crossbars of quad cores (see _quad_cores), which have no rows in ``xbar``
    qbase: np.ndarray           # int64 (C,) offset of the core's quads in ``xquad``, -1: rows
    qaligned: np.ndarray        # bool (C,) a quad core whose quads read 4 consecutive entries
    xquad: np.ndarray           # int8: per core (ceil(axons / 4), neurons, 4), shared


def flatten(m: Machine, quads: bool | None = None) -> Flat:
    """``quads``: store eligible cores' crossbars in quads for the dot-product kernel (True
    also on a CPU without VNNI or AVX2, where the same arithmetic runs as portable vector code:
    tests); None: when the CPU has VNNI or AVX2 (simd.quad_kind)."""
    cores = m.cores
    n_layers = len(m.layers)
    order = [ci for li in range(n_layers) for ci in m.layer_cores[li]]
    if order != list(range(len(cores))):
        raise ValueError("chip image cores must be stored in layer order")
    permuted: dict[tuple, np.ndarray] = {}
    lc = [_local_order(m, c, permuted) for c in cores]   # neurons and axons in kernel order
    nn = np.array([len(c.neurons) for c in cores], dtype=np.int64)
    na = np.array([len(c.axons) for c in cores], dtype=np.int64)
    nbase = np.concatenate([[0], np.cumsum(nn)])
    abase = np.concatenate([[0], np.cumsum(na)])
    axon_nnz = np.zeros(int(abase[-1]), dtype=np.int64)
    axon_gain = np.ones(int(abase[-1]), dtype=np.int64)
    slot_neuron = np.concatenate([o.neurons for o in lc]) if cores else np.zeros(0, np.int64)
    slot_bias = np.zeros(int(nbase[-1]), dtype=np.int64)
    out_slot_class = np.full(int(nbase[-1]), -1, dtype=np.int64)
    core_shift = np.zeros(len(cores), dtype=np.int64)
    host_fed = m.encoding == "direct" and m.input_path == "host"
    for c, o in zip(cores, lc, strict=True):
        lay = m.layers[c.layer]
        if o.crossbar is not None:
            axon_nnz[abase[c.index]:abase[c.index + 1]] = c.nnz_per_axon[o.axon_perm]
            if lay.gain is not None:  # graded first layer: the pixel gain of the axon's channel
                channel = o.axons // int(np.prod(lay.in_shape[1:]))
                axon_gain[abase[c.index]:abase[c.index + 1]] = lay.gain[channel]
        if c.role != ROLE_PARTIAL:
            s0, s1 = nbase[c.index], nbase[c.index + 1]
            if lay.bias is not None:
                slot_bias[s0:s1] = lay.bias[o.neurons]
            if lay.kind == "out":
                out_slot_class[s0:s1] = o.neurons
        # host-computed currents arrive already in membrane units
        core_shift[c.index] = 0 if (host_fed and c.layer == 0) else lay.weight_shift
    layer_core_ptr = np.zeros(n_layers + 1, dtype=np.int64)
    for li in range(n_layers):
        layer_core_ptr[li + 1] = layer_core_ptr[li] + len(m.layer_cores[li])
    entries = _entries(m, lc, nbase, abase, host_fed)
    slot_route = np.full(int(nbase[-1]), -1, dtype=np.int64)
    for c, o in zip(cores, lc, strict=True):
        if c.role == ROLE_PARTIAL:
            slot_route[nbase[c.index]:nbase[c.index + 1]] = c.partial_route[o.neuron_perm]
    holder = _holder_slots(m, lc, nbase)
    for hs, lay in zip(holder, m.layers, strict=True):
        slot_route[hs] = lay.route
    psum_ptr, psum_seg = _partial_segments(m, lc, nbase, holder, slot_route)
    n_in = len(entries.input_entry)
    layer_sizes = np.array([lay.n_neurons for lay in m.layers], dtype=np.int64)
    acc_bound = _accumulator_bound(m, cores, lc, abase, axon_gain, host_fed)
    acc_dtype = np.int32 if acc_bound < np.iinfo(np.int32).max else np.int64
    kind = simd.quad_kind()
    use_quads = kind != "portable" if quads is None else quads
    quad = aligned = np.zeros(len(cores), dtype=bool)
    if use_quads and acc_dtype == np.int32:
        quad, aligned = _quad_cores(m, lc, abase, axon_gain, entries.axon_entry,
                                    pair_limit=kind == "avx2")
    packed = _pack_crossbars([None if q else o.crossbar for o, q in zip(lc, quad, strict=True)])
    qbase, xquad = _pack_quads([o.crossbar if q else None for o, q in zip(lc, quad, strict=True)])
    return Flat(
        n_slots=int(nbase[-1]), n_axons=int(abase[-1]), n_inputs=n_in,
        core_layer=np.array([c.layer for c in cores], dtype=np.int64),
        core_role=np.array([c.role for c in cores], dtype=np.int64),
        nbase=nbase.astype(np.int64), abase=abase.astype(np.int64), xbase=packed.xbase,
        core_shift=core_shift, layer_core_ptr=layer_core_ptr,
        threshold=np.array([l.threshold for l in m.layers], dtype=np.int64),
        leak_shift=np.array([l.leak_shift for l in m.layers], dtype=np.int64),
        leak_mult=np.array([l.leak_multiplier for l in m.layers], dtype=np.int64),
        soft_reset=np.array([l.reset == "soft" for l in m.layers]),
        is_output=np.array([l.kind == "out" for l in m.layers]),
        layer_nbase=np.concatenate([[0], np.cumsum(layer_sizes)]).astype(np.int64),
        slot_neuron=slot_neuron.astype(np.int64), slot_bias=slot_bias,
        out_slot_class=out_slot_class, axon_gain=axon_gain, axon_nnz=axon_nnz, xbar=packed.xbar,
        rbase=packed.rbase, row_pattern=packed.row_pattern, run_ptr=packed.run_ptr,
        run_lo=packed.run_lo, run_hi=packed.run_hi,
        axon_input=np.concatenate([o.axons for o in lc]).astype(np.int64),
        axon_entry=entries.axon_entry, slot_entry=entries.slot_entry,
        input_entry=entries.input_entry, region_ptr=entries.region_ptr,
        in_route=m.input_route.astype(np.int64), slot_route=slot_route, host_currents=host_fed,
        psum_ptr=psum_ptr, psum_seg=psum_seg, acc_dtype=acc_dtype, qbase=qbase,
        qaligned=aligned, xquad=xquad)


def _quad_cores(m: Machine, lc: list[_LocalOrder], abase: np.ndarray, axon_gain: np.ndarray,
                axon_entry: np.ndarray, pair_limit: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cores whose synaptic work can run as VNNI dot products of four axons: every weight fits
    int8, every input (event x gain) fits uint8, and the neurons fill whole 16-lane vectors
    (the int32 accumulators are checked by the caller). ``pair_limit`` (the AVX2 form, whose
    pair sums saturate at 16 bits): also 2 x largest input x largest |weight| <= 32767, so no
    pair sum can. Of those, the aligned ones: every
    four axons 4q .. 4q + 3 read four consecutive entries 4g .. 4g + 3 with gain 1, so one
    uint32 of a step's event bytes is a quad's input (kernels._read_quads), in layers whose
    crossbar cores all qualify; in VGG5 every crossbar core of conv2, conv3 and fc1. Two
    bool (C,) arrays."""
    fits: dict[int, bool] = {}     # by crossbar object: matching tiles share one
    quad = np.zeros(len(m.cores), dtype=bool)
    aligned = np.zeros(len(m.cores), dtype=bool)
    for c, o in zip(m.cores, lc, strict=True):
        if o.crossbar is None or len(o.neurons) % simd.LANES:
            continue
        xb = o.crossbar
        if id(xb) not in fits:
            fits[id(xb)] = xb.size == 0 or (int(xb.min()) >= -128 and int(xb.max()) <= 127)
        a0, a1 = abase[c.index], abase[c.index + 1]
        gain = axon_gain[a0:a1]
        largest_in = _max_event(m, c.layer) * int(gain.max()) if gain.size else 0
        quad[c.index] = (fits[id(xb)] and gain.size > 0 and int(gain.min()) >= 0
                         and largest_in <= 255)
        if quad[c.index] and pair_limit and xb.size:
            quad[c.index] = 2 * largest_in * int(np.abs(xb.astype(np.int64)).max()) <= 32767
        if quad[c.index] and (a1 - a0) % 4 == 0 and bool(np.all(gain == 1)):
            entry = axon_entry[a0:a1].reshape(-1, 4)
            aligned[c.index] = (bool(np.all(entry[:, 0] % 4 == 0))
                                and bool(np.all(entry - entry[:, :1] == np.arange(4))))
    # a layer's region is step-major for aligned quads, entry-major for every other reader
    # (kernels._region): so a layer's crossbar cores are aligned all or none
    for cores in m.layer_cores:
        readers = [ci for ci in cores if lc[ci].crossbar is not None]
        if not all(aligned[ci] for ci in readers):
            aligned[readers] = False
    return quad, aligned


def _pack_quads(xbars: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """(qbase, xquad): each crossbar (A, N) as an int8 (ceil(A / 4), N, 4) array, axon
    4q + k's weight to column j at [q, j, k] (missing axons of the last quad are zero). One
    copy per crossbar object, so cores with matching tiles share it."""
    qbase = np.full(len(xbars), -1, dtype=np.int64)
    parts: list[np.ndarray] = []
    by_object: dict[int, int] = {}
    end = 0
    for ci, rows in enumerate(xbars):
        if rows is None:
            continue
        if id(rows) not in by_object:
            a, n = rows.shape
            quads = np.zeros((-(-a // 4) * 4, n), dtype=np.int8)
            quads[:a] = rows
            parts.append(np.ascontiguousarray(quads.reshape(-1, 4, n).transpose(0, 2, 1)).ravel())
            by_object[id(rows)] = end
            end += parts[-1].size
        qbase[ci] = by_object[id(rows)]
    return qbase, (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8))


@dataclass
class _LocalOrder:
    """A core's neurons (slots) and axons (crossbar rows) in the order the kernels use."""
    neuron_perm: np.ndarray
    neurons: np.ndarray
    axon_perm: np.ndarray
    axons: np.ndarray
    crossbar: np.ndarray | None     # the core's, rows and columns permuted to match


def _position_major(indices: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    channel, position = np.divmod(indices, int(np.prod(shape[1:])))
    return np.lexsort((channel, position))


def _local_order(m: Machine, core, permuted: dict[tuple, np.ndarray]) -> _LocalOrder:
    """Any order of a core's neurons and axons is exact (the crossbar is permuted with them);
    this one makes the kernels' memory access cheap. The image stores a convolution's neurons
    and axons channel-major, so one input pixel's synapses are strided: every output channel
    at a few positions. Position-major, they are a few contiguous runs of whole channel blocks
    (the demo's conv1 rows: ~300 synapses in 1,024 columns), the kernel adds only those runs,
    and consecutive axons (the channels of one input position) share the same runs, so the
    kernel adds them together. A home core's axon j carries neuron j's input, so its axons
    follow its neurons; position-major too, the order partial cores send in."""
    lay = m.layers[core.layer]
    conv = lay.kind == "conv"
    nperm = (_position_major(core.neurons, lay.out_shape) if conv
             else np.arange(len(core.neurons)))
    if core.crossbar is None:
        return _LocalOrder(nperm, core.neurons[nperm], nperm, core.axons[nperm], None)
    aperm = _position_major(core.axons, lay.in_shape) if conv else np.arange(len(core.axons))
    if not conv:
        return _LocalOrder(nperm, core.neurons, aperm, core.axons, core.crossbar)
    # cores with matching tiles share one crossbar object (machine.py): permute it once
    key = (id(core.crossbar), aperm.tobytes(), nperm.tobytes())
    if key not in permuted:
        permuted[key] = core.crossbar[aperm][:, nperm]
    return _LocalOrder(nperm, core.neurons[nperm], aperm, core.axons[aperm], permuted[key])


@dataclass
class _Entries:
    axon_entry: np.ndarray
    slot_entry: np.ndarray
    input_entry: np.ndarray
    region_ptr: np.ndarray


def _rank(shape: tuple[int, ...]) -> np.ndarray:
    """Offset of each index of a (C, H, W) or flat space inside its region: position-major for
    (C, H, W), the order convolution cores read their axons in (see _local_order)."""
    n = int(np.prod(shape))
    if len(shape) != 3:
        return np.arange(n)
    rank = np.empty(n, dtype=np.int64)
    rank[_position_major(np.arange(n), shape)] = np.arange(n)
    return rank


def _entries(m: Machine, lc: list[_LocalOrder], nbase: np.ndarray, abase: np.ndarray,
             host_fed: bool) -> _Entries:
    """On the chip a spike is multicast to every core that holds its target as an axon (a
    convolution's halo is held by several cores). The simulator keeps each logical target
    once: an entry per input index of each layer (in the kernels, a byte per step: the summed
    value of its events). A source adds to one entry; every core holding that target reads
    the same entry (the packets its copy received) while the layer runs; the
    layer's region is cleared once it has run. Layer l's region: its inputs, padded to a
    multiple of 4 entries (kernels._read_quads reads four at once). Partial sums need no
    entry: they go straight to their home neurons (_partial_segments)."""
    n_layers = len(m.layers)
    in_shapes = [m.layers[0].out_shape if host_fed else m.layers[0].in_shape,
                 *(lay.in_shape for lay in m.layers[1:])]
    sizes = [-(-int(np.prod(sh)) // 4) * 4 for sh in in_shapes]   # 4-aligned: quads
    region_ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    ranks = [_rank(sh) for sh in in_shapes]
    axon_entry = np.full(int(abase[-1]), -1, dtype=np.int64)
    slot_entry = np.full(int(nbase[-1]), -1, dtype=np.int64)
    feeds = [np.full(lay.n_neurons, -1, dtype=np.int64) for lay in m.layers]  # -> next input
    for c, o in zip(m.cores, lc, strict=True):
        li = c.layer
        a0 = abase[c.index]
        if c.role == ROLE_HOME and not (host_fed and li == 0):
            continue                      # partial sums: see _partial_segments
        axon_entry[a0:a0 + len(o.axons)] = region_ptr[li] + ranks[li][o.axons]
        if li > 0:
            feeds[li - 1][_axon_sources(m, li, o.axons)] = o.axons[:, None]
    for c, o in zip(m.cores, lc, strict=True):
        li = c.layer
        if c.role != ROLE_PARTIAL and li + 1 < n_layers:
            target = feeds[li][o.neurons]
            entry = region_ptr[li + 1] + ranks[li + 1][np.maximum(target, 0)]
            slot_entry[nbase[c.index]:nbase[c.index + 1]] = np.where(target >= 0, entry, -1)
    return _Entries(axon_entry, slot_entry, region_ptr[0] + ranks[0], region_ptr)


@dataclass
class _Packed:
    xbase: np.ndarray
    xbar: np.ndarray
    rbase: np.ndarray
    row_pattern: np.ndarray
    run_ptr: np.ndarray
    run_lo: np.ndarray
    run_hi: np.ndarray


# Runs of synapses closer than this many columns are added as one run: the zeros between them
# cost less than another pass through the vector loop (16 int32 lanes per AVX-512 vector).
RUN_MERGE_GAP = 16


def _pack_crossbars(xbars: list[np.ndarray | None]) -> _Packed:
    """Each distinct crossbar stored once (int8 when every weight fits, else int16), and each
    distinct row pattern (where a row's synapses are, as runs of columns) once."""
    xbase = np.zeros(len(xbars), dtype=np.int64)
    rbase = np.zeros(len(xbars), dtype=np.int64)
    stored: dict[tuple, list[tuple[int, int, np.ndarray]]] = {}  # (shape, crc32) -> entries
    parts: list[np.ndarray] = []
    row_pattern: list[np.ndarray] = []
    patterns: dict[bytes, int] = {}            # runs, as bytes -> pattern id
    runs: list[np.ndarray] = []
    end = rows_end = 0
    by_object: dict[int, tuple[int, int]] = {}  # the same array object: the same rows
    for ci, rows in enumerate(xbars):
        if rows is None:
            continue
        if id(rows) in by_object:
            xbase[ci], rbase[ci] = by_object[id(rows)]
            continue
        source = rows
        rows = np.ascontiguousarray(rows)
        same = stored.setdefault((rows.shape, zlib.crc32(rows)), [])
        match = next(((off, r0) for off, r0, seen in same if np.array_equal(seen, rows)), None)
        if match is None:
            match = (end, rows_end)
            same.append((end, rows_end, rows))
            parts.append(rows.ravel())
            bits = np.packbits(rows != 0, axis=1)      # one row's synapse mask as bytes
            _, first, inverse = np.unique(bits.view(f"V{bits.shape[1]}").ravel(),
                                          return_index=True, return_inverse=True)
            ids = np.zeros(len(first), dtype=np.int64)
            for i, row in enumerate(first):
                r = _runs(rows[row] != 0)
                ids[i] = patterns.setdefault(r.tobytes(), len(runs))
                if ids[i] == len(runs):                 # a pattern not seen before
                    runs.append(r)
            row_pattern.append(ids[inverse.ravel()])
            end += rows.size
            rows_end += rows.shape[0]
        xbase[ci], rbase[ci] = by_object[id(source)] = match
    xbar = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8)
    if xbar.dtype != np.int8 and xbar.size and np.abs(xbar).max() <= 127:
        xbar = xbar.astype(np.int8)
    run_ptr = np.concatenate([[0], np.cumsum([len(r) for r in runs])]).astype(np.int64)
    flat_runs = np.concatenate(runs) if runs else np.zeros((0, 2), np.int64)
    return _Packed(xbase, xbar, rbase,
                   np.concatenate(row_pattern) if row_pattern else np.zeros(0, np.int64),
                   run_ptr, flat_runs[:, 0].copy(), flat_runs[:, 1].copy())


def _runs(nonzero: np.ndarray) -> np.ndarray:
    """(lo, hi) column ranges of a row's runs of synapses, runs less than RUN_MERGE_GAP apart
    merged; int64 (runs, 2)."""
    edge = np.diff(np.concatenate([[0], nonzero.astype(np.int8), [0]]))
    lo, hi = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    keep = np.ones(len(lo), dtype=bool)
    keep[1:] = lo[1:] - hi[:-1] >= RUN_MERGE_GAP
    last = np.ones(len(lo), dtype=bool)
    last[:-1] = keep[1:]
    return np.stack([lo[keep], hi[last]], axis=1).astype(np.int64)


def _partial_segments(m: Machine, lc: list[_LocalOrder], nbase: np.ndarray,
                      holder: list[np.ndarray], slot_route: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A partial core's sum for neuron n goes to n's slot on its home core. The kernel adds
    them as segments: maximal runs of the core's slots whose home slots are consecutive, on
    one home core, sent by one route, so each segment is one vectorized add per step (and
    partial sums need no packet box). (psum_ptr (C+1,), psum_seg (segments, 5))."""
    ptr = np.zeros(len(m.cores) + 1, dtype=np.int64)
    segs: list[np.ndarray] = []
    for c, o in zip(m.cores, lc, strict=True):
        ptr[c.index + 1] = ptr[c.index]
        if c.role != ROLE_PARTIAL or len(o.neurons) == 0:
            continue
        home = holder[c.layer][o.neurons]
        home_core = np.searchsorted(nbase, home, side="right") - 1
        route = slot_route[nbase[c.index]:nbase[c.index + 1]]
        cut = np.flatnonzero((np.diff(home) != 1) | (np.diff(home_core) != 0)
                             | (np.diff(route) != 0)) + 1
        j0 = np.concatenate([[0], cut])
        j1 = np.concatenate([cut, [len(home)]])
        segs.append(np.stack([j0, j1, home[j0], home_core[j0], route[j0]], axis=1))
        ptr[c.index + 1] += len(j0)
    seg = np.concatenate(segs).astype(np.int64) if segs else np.zeros((0, 5), np.int64)
    return ptr, seg


def _holder_slots(m: Machine, lc: list[_LocalOrder], nbase: np.ndarray) -> list[np.ndarray]:
    """Per layer: the slot that runs each neuron (on its neuron or home core)."""
    out = [np.full(lay.n_neurons, -1, dtype=np.int64) for lay in m.layers]
    for c, o in zip(m.cores, lc, strict=True):
        if c.role != ROLE_PARTIAL:
            out[c.layer][o.neurons] = nbase[c.index] + np.arange(len(o.neurons))
    return out


def _axon_sources(m: Machine, layer: int, axons: np.ndarray) -> np.ndarray:
    """Neuron indices (of layer - 1) that drive each axon: (A, 1), or (A, 4) when merged."""
    if not m.layers[layer].pooled_input:
        return axons.astype(np.int64)[:, None]
    return merged_sources(m.layers[layer - 1].out_shape, axons)


def _max_event(m: Machine, layer: int) -> int:
    """Largest value one axon of ``layer`` can receive in one step (before the axon gain)."""
    return intmath.max_axon_event(layer, m.encoding, m.layers[layer].pooled_input)


def _accumulator_bound(m: Machine, cores, lc: list[_LocalOrder], abase, axon_gain,
                       host_fed: bool) -> int:
    """An upper bound on any input accumulator: per crossbar core, the sum over axons of the
    row's largest |weight| x the axon's largest event x its gain; a home core adds the bounds of
    all partial cores of its layer (generous, and cheap)."""
    worst = 0
    partial_total: dict[int, int] = {}
    for c, o in zip(cores, lc, strict=True):
        if o.crossbar is None:
            continue
        vmax = _max_event(m, c.layer) * axon_gain[abase[c.index]:abase[c.index + 1]]
        bound = int((np.abs(o.crossbar.astype(np.int32)).max(axis=1) * vmax).sum())
        worst = max(worst, bound)
        if c.role == ROLE_PARTIAL:
            partial_total[c.layer] = partial_total.get(c.layer, 0) + bound
    worst = max([worst, *partial_total.values()])
    if host_fed:
        worst = max(worst, 1 << 62)   # host currents are unbounded here: keep int64
    return worst
