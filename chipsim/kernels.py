"""Numba kernels: pure functions over flat arrays. Each thread owns one workspace and runs its
images one after another, so every piece of mutable state (accumulators, packet boxes,
counters) has one owner.

Within a time step the chip works in waves, layer by layer: the host's input packets land on
layer-0 axons; each core of a layer reads the crossbar row of every axon that received packets
(event-driven: silent axons cost nothing) into its neurons' input accumulators; partial-sum
cores send their sums to the home cores; then the layer's tick applies, per neuron,
    u = sat(leak(u) + (acc << shift) + bias); spike if u > theta; reset,
and each spike's packet lands on the next layer's axons. Output neurons only accumulate.

The simulator runs an image layer-major: layer l for all T steps, then layer l + 1. The
network is feed-forward, so layer l at step t depends only on layer l - 1 at step t and on its
own membranes at step t - 1, and any order that respects those two is exact. Layer-major lets
a core read each axon's metadata once for all steps and keeps each membrane in a register
across its T ticks (no membrane array at all); accumulators and packet boxes carry a step
axis. A packet multicast to several cores is kept once, in the box of its logical target,
which every core holding that target reads (flat._entries). An axon target's box is a byte
per step, the summed value of its events (a spike packet carries 1, a host event one value
< 256). Partial sums go straight into their home neurons' accumulators; host currents (the
host input path) have an int count and value per layer-0 input. Cores
whose inputs fit bytes add their synapses as VNNI dot products of four axons instead of rows
where the CPU has VNNI (_read_quads, chipsim/simd.py); the two ways are exact alike.
Membranes are int64; input accumulators int32 where flatten() proves no overflow, else
int64. The result matches compiler.reference bit for bit.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import prange

from artifacts.chipimage import ROLE_HOME, ROLE_PARTIAL
from chipsim import simd
from chipsim.jit import njit

# Axons whose rows share a pattern of synapse runs are added up to GROUP at a time: one pass
# loads and stores the accumulators once for GROUP rows. The add is store-bound otherwise
# (measured on Zen4, 256-column rows: 16 ns per row alone, 10 ns per row in fours; from rows
# not in cache 4x faster, as the four rows' loads overlap).
GROUP = 4

# The kernels take their arrays as named tuples (Numba types them field by field), so no call
# passes dozens of positional arrays that a swap could silently misplace.
# ChipArrays: the flattened chip (chipsim.flat.Flat's fields of the same names), read-only.
ChipArrays = namedtuple("ChipArrays", [
    "core_role", "nbase", "abase", "xbase", "core_shift", "layer_core_ptr", "threshold",
    "leak_shift", "leak_mult", "soft_reset", "is_output", "layer_nbase", "slot_neuron",
    "slot_bias", "out_slot_class", "axon_gain", "axon_nnz", "xbar", "rbase", "row_pattern",
    "run_ptr", "run_lo", "run_hi", "axon_entry", "slot_entry", "input_entry", "region_ptr",
    "in_route", "slot_route", "psum_ptr", "psum_seg", "host_currents", "mem_lo", "mem_hi",
    "qbase", "qaligned", "xquad"])
# Counters: what a run writes, per image (batch axis first in run_batch): output accumulators
# (classes,), spike record (T, neurons) or (0, 0), and per core / per route counters.
Counters = namedtuple("Counters", ["out", "record", "spikes_out", "sops", "pk_in", "pk_out",
                                   "route_pk"])
# Workspace: one thread's scratch state, zero between images (see run_image).
Workspace = namedtuple("Workspace", ["acc", "count", "value", "events", "quad_ids", "quad_in"])


@njit(nogil=True, fastmath=True, _nrt=False)
def _add_rows(acc, xbar, s0, lo, n, rows, vas, m):
    """acc[s0:s0+n] += sum over q < m of xbar[rows[q]+lo : rows[q]+lo+n] * vas[q]. Over 1-D
    slices Numba vectorizes each loop (AVX-512 vpmovsxbd/vpmulld/vpaddd on int32)."""
    dst = acc[s0:s0 + n]
    x0 = xbar[rows[0] + lo:rows[0] + lo + n]
    v0 = vas[0]
    if m == 1:
        for j in range(n):
            dst[j] += x0[j] * v0
        return
    x1 = xbar[rows[1] + lo:rows[1] + lo + n]
    v1 = vas[1]
    if m == 2:
        for j in range(n):
            dst[j] += x0[j] * v0 + x1[j] * v1
        return
    x2 = xbar[rows[2] + lo:rows[2] + lo + n]
    v2 = vas[2]
    if m == 3:
        for j in range(n):
            dst[j] += x0[j] * v0 + x1[j] * v1 + x2[j] * v2
        return
    x3 = xbar[rows[3] + lo:rows[3] + lo + n]
    v3 = vas[3]
    for j in range(n):
        dst[j] += x0[j] * v0 + x1[j] * v1 + x2[j] * v2 + x3[j] * v3


@njit(nogil=True, _nrt=False)
def _add_group(acc, xbar, s0, rows, vas, m, pattern, run_ptr, run_lo, run_hi):
    """Add m pending rows that share ``pattern``, run by run. The helpers below allocate
    nothing, so they are compiled without reference counting: its atomic increments on every
    slice and call were 13% of the kernel time."""
    for k in range(run_ptr[pattern], run_ptr[pattern + 1]):
        lo = run_lo[k]
        _add_rows(acc, xbar, s0 + lo, lo, run_hi[k] - lo, rows, vas, m)


@njit(nogil=True, _nrt=False)
def _read_axons(acc, s0, nn, a0, a1, r0, x0, axon_entry, ev32, e0, host_events, axon_nnz,
                axon_gain, row_pattern, xbar, run_ptr, run_lo, run_hi, pend_row, pend_va,
                pend_m, pend_pattern):
    """One crossbar core, all T steps: the row of every axon that received events at step t is
    added into acc[t], times the step's summed event value x the axon's gain (consecutive
    rows sharing a pattern GROUP at a time, per step). ``ev32``: the layer's entry-major
    region, four steps of an entry per uint32, so a silent axon costs one load per four
    steps. Returns the core's (packets in, synaptic operations)."""
    n_pk = 0
    n_sop = 0
    for t in range(acc.shape[0]):
        pend_m[t] = 0
    for a in range(a0, a1):
        e = axon_entry[a] - e0
        if _silent(ev32, e):
            continue
        pattern = row_pattern[r0 + a - a0]
        for t in range(acc.shape[0]):
            v = (np.int64(ev32[e, t >> 2]) >> (8 * (t & 3))) & 0xFF
            if v == 0:
                continue
            p = 1 if host_events else v   # a host event is one packet; a spike packet is 1
            n_pk += p
            n_sop += axon_nnz[a] * p      # every packet drives the row on chip
            m = pend_m[t]
            if m == GROUP or (m > 0 and pend_pattern[t] != pattern):
                _add_group(acc[t], xbar, s0, pend_row[t], pend_va[t], m, pend_pattern[t],
                           run_ptr, run_lo, run_hi)
                m = 0
            pend_pattern[t] = pattern
            pend_row[t, m] = x0 + (a - a0) * nn
            pend_va[t, m] = v * axon_gain[a]   # cast to the accumulator type
            pend_m[t] = m + 1
    for t in range(acc.shape[0]):
        if pend_m[t] > 0:
            _add_group(acc[t], xbar, s0, pend_row[t], pend_va[t], pend_m[t], pend_pattern[t],
                       run_ptr, run_lo, run_hi)
    return n_pk, n_sop


@njit(nogil=True, _nrt=False, inline="always")
def _silent(ev32, e):
    """Whether entry e of an entry-major region received no events in any step."""
    for h in range(ev32.shape[1]):
        if ev32[e, h] != 0:
            return False
    return True


@njit(nogil=True, _nrt=False)
def _read_quads(acc, s0, nn, a0, a1, q0, aligned, axon_entry, ev32, e0, host_events,
                axon_nnz, axon_gain, xquad, quad_ids, quad_in):
    """One quad core (flat._quad_cores), all T steps, four steps at a time. Each quad's inputs
    at step t are packed into a uint32, a byte per axon. In an ``aligned`` core, axons
    4q .. 4q + 3 read entries 4g .. 4g + 3 with gain 1 and the layer's region is step-major,
    so the packed inputs are simply ev32[t, g]; otherwise the region is entry-major and each
    axon's four steps (ev32[e, t / 4]) are transposed into the quad's (_gather_quad). The
    quads with an input in any of the four steps are listed, and _dot_quads adds their four
    rows for all four steps with VNNI dot products, loading the weights once. A quad costs the
    same with one active axon or four, and in one active step or four: at VGG5's activity
    most quads are silent in all steps or active in all. Returns the core's (packets in,
    synaptic operations)."""
    n_steps = acc.shape[0]
    n_pk = 0
    n_sop = 0
    for t0 in range(0, n_steps, 4):
        n = 0
        for q in range((a1 - a0 + 3) // 4):
            a = a0 + 4 * q
            if aligned:
                g = (axon_entry[a] - e0) >> 2
                u0, u1, u2, u3 = ev32[t0, g], ev32[t0 + 1, g], ev32[t0 + 2, g], ev32[t0 + 3, g]
                # packets of each axon (a byte each) over the four steps
                pk = (_packets(u0, host_events) + _packets(u1, host_events)
                      + _packets(u2, host_events) + _packets(u3, host_events))
                n_sop += ((pk & 0xFF) * axon_nnz[a] + ((pk >> 8) & 0xFF) * axon_nnz[a + 1]
                          + ((pk >> 16) & 0xFF) * axon_nnz[a + 2] + (pk >> 24) * axon_nnz[a + 3])
            else:
                n_here = min(4, a1 - a)
                u0, u1, u2, u3, pk = _gather_quad(ev32, t0 // 4, axon_entry, axon_gain, a,
                                                  n_here, e0, host_events)
                for k in range(n_here):
                    n_sop += ((pk >> (8 * k)) & 0xFF) * axon_nnz[a + k]
            n_pk += ((pk * 0x01010101) >> 24) & 0xFF    # the sum of the four bytes
            # list it branch-free: a silent quad is overwritten by the next
            quad_ids[n] = q
            quad_in[n, 0], quad_in[n, 1], quad_in[n, 2], quad_in[n, 3] = u0, u1, u2, u3
            n += pk != 0
        if n > 0:
            _dot_quads(acc, t0, s0, nn, q0, xquad, quad_ids, quad_in, n)
    return n_pk, n_sop


@njit(nogil=True, _nrt=False, inline="always")
def _packets(u, host_events):
    """Packets in each byte of u (int64): the byte itself for spikes (a spike packet carries
    1), 1 per non-zero byte for host events (one packet each)."""
    w = np.int64(u)
    if host_events:
        return ((((w & 0x7F7F7F7F) + 0x7F7F7F7F) | w) & 0x80808080) >> 7
    return w


@njit(nogil=True, _nrt=False)
def _gather_quad(ev32, h, axon_entry, axon_gain, a, n_axons, e0, host_events):
    """Steps 4h .. 4h + 3 of axons a .. a + n_axons - 1 (n_axons <= 4) from an entry-major
    region: the packed inputs of each step (byte k: axon a + k's event x gain, < 256; no byte
    carries into the next) and each axon's packets (byte k)."""
    w0 = w1 = w2 = w3 = pk = np.int64(0)
    for k in range(n_axons):
        w = np.int64(ev32[axon_entry[a + k] - e0, h])     # one axon's four steps
        pk |= (((_packets(w, host_events) * 0x01010101) >> 24) & 0xFF) << (8 * k)
        w *= axon_gain[a + k]
        if k == 0:
            w0 = w
        elif k == 1:
            w1 = w
        elif k == 2:
            w2 = w
        else:
            w3 = w
    # transpose 4 axons x 4 steps of bytes into 4 steps x 4 axons
    x01 = (w0 & 0x00FF00FF) | ((w1 & 0x00FF00FF) << 8)   # w0[0] w1[0] w0[2] w1[2]
    y01 = ((w0 >> 8) & 0x00FF00FF) | (w1 & 0xFF00FF00)    # w0[1] w1[1] w0[3] w1[3]
    x23 = (w2 & 0x00FF00FF) | ((w3 & 0x00FF00FF) << 8)
    y23 = ((w2 >> 8) & 0x00FF00FF) | (w3 & 0xFF00FF00)
    return ((x01 & 0xFFFF) | ((x23 & 0xFFFF) << 16), (y01 & 0xFFFF) | ((y23 & 0xFFFF) << 16),
            (x01 >> 16) | (x23 & 0xFFFF0000), (y01 >> 16) | (y23 & 0xFFFF0000), pk)


@njit(nogil=True, _nrt=False)
def _dot_quads(acc, t0, s0, nn, q0, xquad, quad_ids, quad_in, n):
    """acc[t0 + k, s0 + j] += sum over i < n of the dot product of quad quad_ids[i]'s four
    weights to column j with the four bytes of quad_in[i, k], for the four steps k. Columns
    64 at a time: each 16 columns of a quad's weights (one 64-byte vector) are loaded once
    for the four steps, and the 16 sums (4 steps x 4 vectors) stay in registers across the
    quads; then 16 columns at a time."""
    b = 0       # x + 64 k: the next 16 columns (16 columns x 4 axons = 64 bytes per vector)
    while b + 4 * simd.LANES <= nn:
        s00, s01, s02, s03 = simd.zeros(), simd.zeros(), simd.zeros(), simd.zeros()
        s10, s11, s12, s13 = simd.zeros(), simd.zeros(), simd.zeros(), simd.zeros()
        s20, s21, s22, s23 = simd.zeros(), simd.zeros(), simd.zeros(), simd.zeros()
        s30, s31, s32, s33 = simd.zeros(), simd.zeros(), simd.zeros(), simd.zeros()
        for i in range(n):
            x = q0 + (quad_ids[i] * nn + b) * 4
            w0, w1, w2, w3 = (simd.load_bytes(xquad, x), simd.load_bytes(xquad, x + 64),
                              simd.load_bytes(xquad, x + 128), simd.load_bytes(xquad, x + 192))
            s00, s01, s02, s03 = _dot64(s00, s01, s02, s03, quad_in[i, 0], w0, w1, w2, w3)
            s10, s11, s12, s13 = _dot64(s10, s11, s12, s13, quad_in[i, 1], w0, w1, w2, w3)
            s20, s21, s22, s23 = _dot64(s20, s21, s22, s23, quad_in[i, 2], w0, w1, w2, w3)
            s30, s31, s32, s33 = _dot64(s30, s31, s32, s33, quad_in[i, 3], w0, w1, w2, w3)
        _add4(acc, t0, s0 + b, s00, s01, s02, s03)
        _add4(acc, t0 + 1, s0 + b, s10, s11, s12, s13)
        _add4(acc, t0 + 2, s0 + b, s20, s21, s22, s23)
        _add4(acc, t0 + 3, s0 + b, s30, s31, s32, s33)
        b += 4 * simd.LANES
    while b < nn:
        s0k, s1k, s2k, s3k = simd.zeros(), simd.zeros(), simd.zeros(), simd.zeros()
        for i in range(n):
            w = simd.load_bytes(xquad, q0 + (quad_ids[i] * nn + b) * 4)
            s0k, s1k = simd.dot4(s0k, quad_in[i, 0], w), simd.dot4(s1k, quad_in[i, 1], w)
            s2k, s3k = simd.dot4(s2k, quad_in[i, 2], w), simd.dot4(s3k, quad_in[i, 3], w)
        _add1(acc, t0, s0 + b, s0k)
        _add1(acc, t0 + 1, s0 + b, s1k)
        _add1(acc, t0 + 2, s0 + b, s2k)
        _add1(acc, t0 + 3, s0 + b, s3k)
        b += simd.LANES


@njit(nogil=True, _nrt=False, inline="always")
def _dot64(v0, v1, v2, v3, u, w0, w1, w2, w3):
    """One step's sums over 64 columns: each 16-column vector v_k gets the dot products of
    the four input bytes u with the weights w_k."""
    return simd.dot4(v0, u, w0), simd.dot4(v1, u, w1), simd.dot4(v2, u, w2), simd.dot4(v3, u, w3)


@njit(nogil=True, _nrt=False, inline="always")
def _add4(acc, t, off, v0, v1, v2, v3):
    """acc[t, off : off + 64] += the four vectors, unless t is a padding step (T % 4 != 0)."""
    if t < acc.shape[0]:
        row = acc[t]
        simd.add_into(row, off, v0)
        simd.add_into(row, off + 16, v1)
        simd.add_into(row, off + 32, v2)
        simd.add_into(row, off + 48, v3)


@njit(nogil=True, _nrt=False, inline="always")
def _add1(acc, t, off, v):
    """acc[t, off : off + 16] += v, unless t is a padding step."""
    if t < acc.shape[0]:
        simd.add_into(acc[t], off, v)


@njit(nogil=True, _nrt=False)
def _read_home(acc, s0, nn, a0, axon_entry, count, value):
    """A host-fed home core: host currents land on axon j = neuron j."""
    n_pk = 0
    for j in range(nn):
        e = axon_entry[a0 + j]
        for t in range(acc.shape[0]):
            acc[t, s0 + j] += value[e, t]
            n_pk += count[e, t]
    return n_pk


@njit(nogil=True, _nrt=False)
def _send_partials(acc, s0, lbase, g0, g1, psum_seg, route_pk, pk_in):
    """A partial-sum core sends each non-zero sum to its home neuron: segment by segment
    (flat._partial_segments), the sums are added into the home slots' accumulators (the home
    cores of a layer run after its partial cores and have no crossbar) and the packets are
    counted, each non-zero sum one. Returns the packets sent."""
    n_out = 0
    for g in range(g0, g1):
        j0, j1 = psum_seg[g, 0], psum_seg[g, 1]        # the core's slots s0 + j0 .. s0 + j1
        h, hc, r = psum_seg[g, 2], psum_seg[g, 3], psum_seg[g, 4]   # home slots, core, route
        sent = 0
        for t in range(acc.shape[0]):
            src = acc[t, s0 + j0:s0 + j1]
            dst = acc[t, h - lbase:h - lbase + j1 - j0]
            nz = 0
            for k in range(j1 - j0):        # vectorizes
                ps = src[k]
                dst[k] += ps
                nz += ps != 0
                src[k] = 0
            if r >= 0:
                route_pk[t, r] += nz
            sent += nz
        pk_in[hc] += sent
        n_out += sent
    return n_out


@njit(nogil=True, _nrt=False)
def _tick(acc, s0, sl0, nn, shift, slot_bias, th, leak_shift, leak_mult, soft, mem_lo, mem_hi,
          slot_entry, slot_route, events, e0, es, ts, route_pk, record, rec_base, slot_neuron,
          do_record):
    """One core's neurons, all T steps; a neuron's membrane lives in a register. (Branch-free
    spike handling was measured slower: the branch predicts well enough.) Returns the core's
    (spikes, packets sent)."""
    n_spk = 0
    n_out = 0
    for j in range(nn):
        s = sl0 + j
        bias = slot_bias[s]
        e = slot_entry[s]
        r = slot_route[s]
        x = np.int64(0)
        for t in range(acc.shape[0]):
            cur = (np.int64(acc[t, s0 + j]) << shift) + bias
            acc[t, s0 + j] = 0
            if leak_mult == 1:
                x = (x >> leak_shift) + cur
            else:
                x = ((x * leak_mult) >> leak_shift) + cur
            x = min(max(x, mem_lo), mem_hi)
            if x > th:
                x = x - th if soft else 0
                n_spk += 1
                if do_record:
                    record[t, rec_base + slot_neuron[s]] = 1
                if r >= 0:
                    n_out += 1
                    route_pk[t, r] += 1
                if e >= 0:
                    events[(e - e0) * es + t * ts] += 1
    return n_spk, n_out


@njit(nogil=True, _nrt=False)
def _tick_output(acc, s0, sl0, nn, shift, slot_bias, out_slot_class, out):
    """Output neurons only accumulate their input current."""
    for j in range(nn):
        for t in range(acc.shape[0]):
            out[out_slot_class[sl0 + j]] += (np.int64(acc[t, s0 + j]) << shift) + slot_bias[sl0 + j]
            acc[t, s0 + j] = 0


@njit(nogil=True)
def run_image(inputs, chip, res, ws):
    """Run all T steps of one image. ``inputs`` (T, n_in) int64 event values (0 = no event),
    or with ``host_currents`` the currents the host computed for layer 0's home cores.
    ``chip`` is the chip's read-only arrays (ChipArrays), ``res`` this image's counters
    (Counters, one image's slice), ``ws`` the thread's workspace (Workspace). ``record`` is
    (T, n_neurons_total) uint8 or (0, 0) to skip recording.

    Workspace (``new_workspace``), all zero on entry and left zero on return:
    - ``acc`` (T, widest layer's slots): input accumulators, int32 where the compiler-side
      bound proves no overflow (its multiplies vectorize), int64 otherwise;
    - ``events`` (entries x T rounded up to a multiple of 4,) uint8: per axon target and step,
      the summed value of the events it received. It fits a byte: a host event is <= 255 (one
      per input and step) and a spike target gets at most 4 spikes (a merged pool). Each
      layer's region is stored apart (``_region``): step-major where the layer's crossbar
      cores are aligned quad cores, which read four consecutive targets' inputs as one uint32;
      else entry-major, where one uint32 is four steps of a target (a silent axon is one load;
      with every region step-major, rows-only runs took 18% longer);
    - ``count`` (layer 0's entries, T) int32 and ``value`` of the accumulator type: with
      ``host_currents``, the packets and current each layer-0 home neuron receives per step;
    - ``quad_ids`` (most quads of a core,) int64 and ``quad_in`` (that, 4) uint32: a quad
      core's quads with an input in four steps, and those inputs."""
    (core_role, nbase, abase, xbase, core_shift, layer_core_ptr, threshold, leak_shift, leak_mult,
     soft_reset, is_output, layer_nbase, slot_neuron, slot_bias, out_slot_class, axon_gain,
     axon_nnz, xbar, rbase, row_pattern, run_ptr, run_lo, run_hi, axon_entry, slot_entry,
     input_entry, region_ptr, in_route, slot_route, psum_ptr, psum_seg, host_currents, mem_lo,
     mem_hi, qbase, qaligned, xquad) = chip
    out, record, spikes_out, sops, pk_in, pk_out, route_pk = res
    acc, count, value, events, quad_ids, quad_in = ws
    n_steps = inputs.shape[0]
    n_layers = layer_core_ptr.shape[0] - 1
    pend_row = np.zeros((n_steps, GROUP), dtype=np.int64)   # rows waiting to be added together
    pend_va = np.zeros((n_steps, GROUP), dtype=acc.dtype)
    pend_m = np.zeros(n_steps, dtype=np.int64)
    pend_pattern = np.zeros(n_steps, dtype=np.int64)
    do_record = record.shape[0] > 0
    ev_next, es, ts = _region(events, region_ptr, layer_core_ptr, qaligned, 0)
    for t in range(n_steps):
        for i in range(inputs.shape[1]):
            v = inputs[t, i]
            if v != 0:
                r = in_route[i]
                if r >= 0:
                    route_pk[t, r] += 1
                e = input_entry[i]
                if host_currents:
                    value[e, t] += v
                    count[e, t] += 1
                else:
                    ev_next[(e - region_ptr[0]) * es + t * ts] += v
    for l in range(n_layers):
        c0, c1 = layer_core_ptr[l], layer_core_ptr[l + 1]
        lbase = nbase[c0]                 # acc holds this layer's slots only
        e0, e1 = region_ptr[l], region_ptr[l + 1]
        ev = ev_next                      # this layer's inputs, by (es, ts)
        row = max(es * ts, 1)             # step-major: a step's targets; else a target's steps
        ev32 = ev.reshape((ev.shape[0] // row, row)).view(np.uint32)
        for c in range(c0, c1):
            s0, nn = nbase[c] - lbase, nbase[c + 1] - nbase[c]
            if core_role[c] == ROLE_HOME:
                if host_currents and l == 0:   # else its partial sums are already in acc
                    pk_in[c] += _read_home(acc, s0, nn, abase[c], axon_entry, count, value)
                continue
            if qbase[c] >= 0:
                n_pk, n_sop = _read_quads(acc, s0, nn, abase[c], abase[c + 1], qbase[c],
                                          qaligned[c], axon_entry, ev32, e0, l == 0,
                                          axon_nnz, axon_gain, xquad, quad_ids, quad_in)
            else:
                n_pk, n_sop = _read_axons(acc, s0, nn, abase[c], abase[c + 1], rbase[c],
                                          xbase[c], axon_entry, ev32, e0, l == 0,
                                          axon_nnz, axon_gain, row_pattern, xbar, run_ptr,
                                          run_lo, run_hi, pend_row, pend_va, pend_m,
                                          pend_pattern)
            pk_in[c] += n_pk
            sops[c] += n_sop
            if core_role[c] == ROLE_PARTIAL:
                pk_out[c] += _send_partials(acc, s0, lbase, psum_ptr[c], psum_ptr[c + 1],
                                            psum_seg, route_pk, pk_in)
        # every core of the layer has read its packets
        if l == 0:
            count[:] = 0
            value[:] = 0
        ev[:] = 0
        if l + 1 < n_layers:
            ev_next, es, ts = _region(events, region_ptr, layer_core_ptr, qaligned, l + 1)
        # the layer's ticks, all steps
        for c in range(c0, c1):
            if core_role[c] == ROLE_PARTIAL:
                continue
            s0, nn = nbase[c] - lbase, nbase[c + 1] - nbase[c]
            if is_output[l]:
                _tick_output(acc, s0, nbase[c], nn, core_shift[c], slot_bias, out_slot_class, out)
                continue
            n_spk, n_out = _tick(acc, s0, nbase[c], nn, core_shift[c], slot_bias, threshold[l],
                                 leak_shift[l], leak_mult[l], soft_reset[l], mem_lo, mem_hi,
                                 slot_entry, slot_route, ev_next, e1, es, ts, route_pk,
                                 record, layer_nbase[l], slot_neuron, do_record)
            spikes_out[c] += n_spk
            pk_out[c] += n_out


@njit(nogil=True)
def _region(events, region_ptr, layer_core_ptr, qaligned, l):
    """Layer l's region of ``events`` (its entries x T rounded up to a multiple of 4 bytes)
    and its strides (per entry, per step): step-major when the layer's crossbar cores are
    aligned quad cores (flat makes that all or none of them), else entry-major."""
    e0, e1 = region_ptr[l], region_ptr[l + 1]
    n_rows = events.shape[0] // max(region_ptr[-1], 1)
    region = events[n_rows * e0:n_rows * e1]
    for c in range(layer_core_ptr[l], layer_core_ptr[l + 1]):
        if qaligned[c]:
            return region, 1, e1 - e0
    return region, n_rows, 1


@njit
def new_workspace(n_steps, nbase, abase, layer_core_ptr, region_ptr, acc_proto):
    """Zeroed per-thread state for ``run_image`` (see there)."""
    widest = 0
    for l in range(layer_core_ptr.shape[0] - 1):
        widest = max(widest, nbase[layer_core_ptr[l + 1]] - nbase[layer_core_ptr[l]])
    most_quads = 0
    for c in range(abase.shape[0] - 1):
        most_quads = max(most_quads, (abase[c + 1] - abase[c] + 3) // 4)
    return Workspace(np.zeros((n_steps, widest), dtype=acc_proto.dtype),
                     np.zeros((region_ptr[1], n_steps), dtype=np.int32),
                     np.zeros((region_ptr[1], n_steps), dtype=acc_proto.dtype),
                     np.zeros((n_steps + 3) // 4 * 4 * region_ptr[-1], dtype=np.uint8),
                     np.zeros(most_quads, dtype=np.int64),
                     np.zeros((most_quads, 4), dtype=np.uint32))


@njit(parallel=True)
def run_batch(inputs, chip, res, acc_proto, n_workers):
    """``run_image`` over a batch (B, T, n_in); every array of ``res`` (Counters) has a
    leading batch axis. ``n_workers`` (<= the batch) workers each allocate one workspace (a few
    MB) and reuse it for their images: allocating it per image cost more in page faults than
    the arithmetic."""
    b = inputs.shape[0]
    for w in prange(n_workers):
        ws = new_workspace(inputs.shape[1], chip.nbase, chip.abase, chip.layer_core_ptr,
                           chip.region_ptr, acc_proto)
        for i in range(w, b, n_workers):
            run_image(inputs[i], chip, Counters(res.out[i], res.record[i], res.spikes_out[i],
                                                res.sops[i], res.pk_in[i], res.pk_out[i],
                                                res.route_pk[i]), ws)
