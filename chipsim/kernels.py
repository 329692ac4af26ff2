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
which every core holding that target reads (flat._entries); a byte per target marks the
steps it received packets in, so silent targets cost one byte load. Cores whose inputs are
spikes add their synapses as VNNI dot products of four axons instead of rows where the CPU has
VNNI (_read_quads, chipsim/simd.py); the two ways are exact alike. Membranes are int64;
input accumulators int32 where flatten() proves no overflow, else int64. The result matches
compiler.reference bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from chipsim import simd
from spikemesh.chipimage import ROLE_HOME, ROLE_PARTIAL

# Axons whose rows share a pattern of synapse runs are added up to GROUP at a time: one pass
# loads and stores the accumulators once for GROUP rows. The add is store-bound otherwise
# (measured on Zen4, 256-column rows: 16 ns per row alone, 10 ns per row in fours; from rows
# not in cache 4x faster, as the four rows' loads overlap).
GROUP = 4


@njit(cache=True, nogil=True, fastmath=True, _nrt=False)
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


@njit(cache=True, nogil=True, _nrt=False)
def _add_group(acc, xbar, s0, rows, vas, m, pattern, run_ptr, run_lo, run_hi):
    """Add m pending rows that share ``pattern``, run by run. The helpers below allocate
    nothing, so they are compiled without reference counting: its atomic increments on every
    slice and call were 13% of the kernel time."""
    for k in range(run_ptr[pattern], run_ptr[pattern + 1]):
        lo = run_lo[k]
        _add_rows(acc, xbar, s0 + lo, lo, run_hi[k] - lo, rows, vas, m)


@njit(cache=True, nogil=True, _nrt=False)
def _read_axons(acc, s0, nn, a0, a1, r0, x0, axon_entry, active, count, value, axon_nnz,
                axon_gain, row_pattern, xbar, run_ptr, run_lo, run_hi, pend_row, pend_va,
                pend_m, pend_pattern):
    """One crossbar core, all T steps: the row of every axon that received packets at step t
    is added into acc[t] (consecutive rows sharing a pattern GROUP at a time, per step).
    Returns the core's (packets in, synaptic operations)."""
    n_steps = acc.shape[0]
    n_pk = 0
    n_sop = 0
    for t in range(n_steps):
        pend_m[t] = 0
    for a in range(a0, a1):
        e = axon_entry[a]
        steps = active[e]
        if steps == 0:
            continue
        pattern = row_pattern[r0 + a - a0]
        for t in range(n_steps):
            if not (steps >> (t & 7)) & 1:
                continue
            p = count[e, t]
            v = value[e, t]
            n_pk += p
            n_sop += axon_nnz[a] * p      # every packet drives the row on chip
            if v == 0:
                continue
            m = pend_m[t]
            if m == GROUP or (m > 0 and pend_pattern[t] != pattern):
                _add_group(acc[t], xbar, s0, pend_row[t], pend_va[t], m, pend_pattern[t],
                           run_ptr, run_lo, run_hi)
                m = 0
            pend_pattern[t] = pattern
            pend_row[t, m] = x0 + (a - a0) * nn
            pend_va[t, m] = v * axon_gain[a]   # cast to the accumulator type
            pend_m[t] = m + 1
    for t in range(n_steps):
        if pend_m[t] > 0:
            _add_group(acc[t], xbar, s0, pend_row[t], pend_va[t], pend_m[t], pend_pattern[t],
                       run_ptr, run_lo, run_hi)
    return n_pk, n_sop


@njit(cache=True, nogil=True, _nrt=False)
def _read_quads(acc, s0, nn, a0, a1, q0, axon_entry, active, count, value, axon_nnz, axon_gain,
                xquad, quad_step, quad_id, quad_value, n_active):
    """One quad core (flat._quad_cores), all T steps. Its axons are taken four at a time: at
    step t a quad whose axons received packets packs their four inputs (event x gain, each
    < 256) into the bytes of a uint32; then every active quad's four rows are added with one
    VNNI dot product per 16 columns. A quad costs the same with one active axon or four; at
    VGG5's activity this is still less work than adding rows one by one. Returns the core's
    (packets in, synaptic operations)."""
    n_steps = acc.shape[0]
    n_pk = 0
    n_sop = 0
    for t in range(n_steps):
        n_active[t] = 0
    for q in range((a1 - a0 + 3) // 4):
        steps = 0
        for k in range(min(4, a1 - a0 - 4 * q)):
            a = a0 + 4 * q + k
            e = axon_entry[a]
            received = active[e]
            if received == 0:
                continue
            steps |= received
            nnz, gain, byte = axon_nnz[a], axon_gain[a], np.uint32(8 * k)
            # no branch per step (which steps an axon received packets in is unpredictable):
            # a silent step's count and value are 0 and add nothing
            for t in range(n_steps):
                p = count[e, t]
                n_pk += p
                n_sop += nnz * p              # every packet drives the row on chip
                quad_step[t] |= np.uint32(value[e, t] * gain) << byte
        if steps == 0:
            continue
        for t in range(n_steps):              # list the quad where it is active, branch-free
            u = quad_step[t]
            quad_id[t, n_active[t]] = q
            quad_value[t, n_active[t]] = u
            n_active[t] += u != 0
            quad_step[t] = 0
    for t in range(n_steps):
        if n_active[t] > 0:
            _dot_quads(acc[t], s0, nn, q0, xquad, quad_id[t], quad_value[t], n_active[t])
    return n_pk, n_sop


@njit(cache=True, nogil=True, _nrt=False)
def _dot_quads(dst, s0, nn, q0, xquad, quad_id, quad_value, n):
    """dst[s0 + j] += sum over i < n of the dot product of quad quad_id[i]'s four weights to
    column j with the four bytes of quad_value[i]. Columns 128 at a time: eight independent
    chains of dot products hide the instruction's latency, and their sums stay in registers
    across the quads; then 16 at a time."""
    b = 0       # x + 64 k: the next 16 columns (16 columns x 4 axons = 64 bytes per vector)
    while b + 8 * simd.LANES <= nn:
        v0, v1, v2, v3 = simd.zeros(), simd.zeros(), simd.zeros(), simd.zeros()
        v4, v5, v6, v7 = simd.zeros(), simd.zeros(), simd.zeros(), simd.zeros()
        for i in range(n):
            x = q0 + (quad_id[i] * nn + b) * 4
            u = quad_value[i]
            v0 = simd.dot4(v0, u, xquad, x)
            v1 = simd.dot4(v1, u, xquad, x + 64)
            v2 = simd.dot4(v2, u, xquad, x + 128)
            v3 = simd.dot4(v3, u, xquad, x + 192)
            v4 = simd.dot4(v4, u, xquad, x + 256)
            v5 = simd.dot4(v5, u, xquad, x + 320)
            v6 = simd.dot4(v6, u, xquad, x + 384)
            v7 = simd.dot4(v7, u, xquad, x + 448)
        simd.add_into(dst, s0 + b, v0)
        simd.add_into(dst, s0 + b + 16, v1)
        simd.add_into(dst, s0 + b + 32, v2)
        simd.add_into(dst, s0 + b + 48, v3)
        simd.add_into(dst, s0 + b + 64, v4)
        simd.add_into(dst, s0 + b + 80, v5)
        simd.add_into(dst, s0 + b + 96, v6)
        simd.add_into(dst, s0 + b + 112, v7)
        b += 8 * simd.LANES
    while b < nn:
        v0 = simd.zeros()
        for i in range(n):
            v0 = simd.dot4(v0, quad_value[i], xquad, q0 + (quad_id[i] * nn + b) * 4)
        simd.add_into(dst, s0 + b, v0)
        b += simd.LANES


@njit(cache=True, nogil=True, _nrt=False)
def _read_home(acc, s0, nn, a0, axon_entry, count, value):
    """A home core: graded partial sums (or host currents) land on axon j = neuron j."""
    n_pk = 0
    for j in range(nn):
        e = axon_entry[a0 + j]
        for t in range(acc.shape[0]):
            acc[t, s0 + j] += value[e, t]
            n_pk += count[e, t]
    return n_pk


@njit(cache=True, nogil=True, _nrt=False)
def _send_partials(acc, s0, sl0, nn, slot_entry, slot_route, active, count, value, route_pk):
    """A partial-sum core sends each non-zero sum to its home; returns the packets sent."""
    n_out = 0
    for j in range(nn):
        e = slot_entry[sl0 + j]
        r = slot_route[sl0 + j]
        for t in range(acc.shape[0]):
            ps = acc[t, s0 + j]
            if ps != 0:
                n_out += 1
                if r >= 0:
                    route_pk[t, r] += 1
                value[e, t] += ps
                count[e, t] += 1
                active[e] |= 1 << (t & 7)
            acc[t, s0 + j] = 0
    return n_out


@njit(cache=True, nogil=True, _nrt=False)
def _tick(acc, s0, sl0, nn, shift, slot_bias, th, leak_shift, leak_mult, soft, mem_lo, mem_hi,
          slot_entry, slot_route, active, count, value, route_pk, record, rec_base, slot_neuron,
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
                    value[e, t] += 1
                    count[e, t] += 1
                    active[e] |= 1 << (t & 7)
    return n_spk, n_out


@njit(cache=True, nogil=True, _nrt=False)
def _tick_output(acc, s0, sl0, nn, shift, slot_bias, out_slot_class, out):
    """Output neurons only accumulate their input current."""
    for j in range(nn):
        for t in range(acc.shape[0]):
            out[out_slot_class[sl0 + j]] += (np.int64(acc[t, s0 + j]) << shift) + slot_bias[sl0 + j]
            acc[t, s0 + j] = 0


@njit(cache=True, nogil=True)
def run_image(inputs, core_role, nbase, abase, xbase, core_shift, layer_core_ptr, threshold,
              leak_shift, leak_mult, soft_reset, is_output, layer_nbase, slot_neuron, slot_bias,
              out_slot_class, axon_gain, axon_nnz, xbar, rbase, row_pattern, run_ptr, run_lo,
              run_hi, axon_entry, slot_entry, input_entry, region_ptr, in_route, slot_route,
              mem_lo, mem_hi, qbase, xquad, out, record, spikes_out, sops, pk_in, pk_out,
              route_pk, acc, count, value, active, quad_step, quad_id, quad_value, n_active):
    """Run all T steps of one image. ``inputs`` (T, n_in) int64 event values (0 = no event).
    ``record`` is (T, n_neurons_total) uint8 or (0, 0) to skip recording.

    Workspace (``new_workspace``), all zero on entry and left zero on return:
    - ``acc`` (T, widest layer's slots): input accumulators, int32 where the compiler-side
      bound proves no overflow (its multiplies vectorize), int64 otherwise;
    - ``count`` (entries, T) int32 and ``value`` (entries, T) of the accumulator type (the same
      bound covers every sum a target receives): packets and summed value per target and step;
    - ``active`` (entries,) uint8: bit t % 8 set when the target received packets at step t
      (a filter: with T > 8 a set bit can mean another step, whose count and value are 0);
    - ``quad_step`` (T,) uint32: one quad's four inputs per step, being packed;
      ``quad_id`` (T, most quads of a core) int64, ``quad_value`` uint32 of that shape and
      ``n_active`` (T,) int64: a quad core's active quads per step."""
    n_steps = inputs.shape[0]
    n_layers = layer_core_ptr.shape[0] - 1
    pend_row = np.zeros((n_steps, GROUP), dtype=np.int64)   # rows waiting to be added together
    pend_va = np.zeros((n_steps, GROUP), dtype=acc.dtype)
    pend_m = np.zeros(n_steps, dtype=np.int64)
    pend_pattern = np.zeros(n_steps, dtype=np.int64)
    do_record = record.shape[0] > 0
    for t in range(n_steps):
        for i in range(inputs.shape[1]):
            v = inputs[t, i]
            if v != 0:
                r = in_route[i]
                if r >= 0:
                    route_pk[t, r] += 1
                e = input_entry[i]
                value[e, t] += v
                count[e, t] += 1
                active[e] |= 1 << (t & 7)
    for l in range(n_layers):
        c0, c1 = layer_core_ptr[l], layer_core_ptr[l + 1]
        lbase = nbase[c0]                 # acc holds this layer's slots only
        for c in range(c0, c1):
            s0, nn = nbase[c] - lbase, nbase[c + 1] - nbase[c]
            if core_role[c] == ROLE_HOME:
                pk_in[c] += _read_home(acc, s0, nn, abase[c], axon_entry, count, value)
                continue
            if qbase[c] >= 0:
                n_pk, n_sop = _read_quads(acc, s0, nn, abase[c], abase[c + 1], qbase[c],
                                          axon_entry, active, count, value, axon_nnz, axon_gain,
                                          xquad, quad_step, quad_id, quad_value, n_active)
            else:
                n_pk, n_sop = _read_axons(acc, s0, nn, abase[c], abase[c + 1], rbase[c],
                                          xbase[c], axon_entry, active, count, value, axon_nnz,
                                          axon_gain, row_pattern, xbar, run_ptr, run_lo,
                                          run_hi, pend_row, pend_va, pend_m, pend_pattern)
            pk_in[c] += n_pk
            sops[c] += n_sop
            if core_role[c] == ROLE_PARTIAL:
                pk_out[c] += _send_partials(acc, s0, nbase[c], nn, slot_entry, slot_route,
                                            active, count, value, route_pk)
        # every core of the layer has read its packets
        e0, e1 = region_ptr[l], region_ptr[l + 1]
        count[e0:e1] = 0
        value[e0:e1] = 0
        active[e0:e1] = 0
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
                                 slot_entry, slot_route, active, count, value, route_pk, record,
                                 layer_nbase[l], slot_neuron, do_record)
            spikes_out[c] += n_spk
            pk_out[c] += n_out


@njit(cache=True)
def new_workspace(n_steps, nbase, abase, layer_core_ptr, n_entries, acc_proto):
    """Zeroed per-thread state for ``run_image`` (see there)."""
    widest = 0
    for l in range(layer_core_ptr.shape[0] - 1):
        widest = max(widest, nbase[layer_core_ptr[l + 1]] - nbase[layer_core_ptr[l]])
    most_quads = 0
    for c in range(abase.shape[0] - 1):
        most_quads = max(most_quads, (abase[c + 1] - abase[c] + 3) // 4)
    return (np.zeros((n_steps, widest), dtype=acc_proto.dtype),
            np.zeros((n_entries, n_steps), dtype=np.int32),
            np.zeros((n_entries, n_steps), dtype=acc_proto.dtype),
            np.zeros(n_entries, dtype=np.uint8),
            np.zeros(n_steps, dtype=np.uint32),
            np.zeros((n_steps, most_quads), dtype=np.int64),
            np.zeros((n_steps, most_quads), dtype=np.uint32),
            np.zeros(n_steps, dtype=np.int64))


@njit(cache=True, parallel=True)
def run_batch(inputs, core_role, nbase, abase, xbase, core_shift, layer_core_ptr, threshold,
              leak_shift, leak_mult, soft_reset, is_output, layer_nbase, slot_neuron, slot_bias,
              out_slot_class, axon_gain, axon_nnz, xbar, rbase, row_pattern, run_ptr, run_lo,
              run_hi, axon_entry, slot_entry, input_entry, region_ptr, in_route, slot_route,
              mem_lo, mem_hi, qbase, xquad, acc_proto, out, record, spikes_out, sops, pk_in,
              pk_out, route_pk, n_workers):
    """``run_image`` over a batch (B, T, n_in); every output array has a leading batch axis.
    ``n_workers`` (<= the batch) workers each allocate one workspace (a few MB) and reuse it
    for their images: allocating it per image cost more in page faults than the arithmetic."""
    b = inputs.shape[0]
    for w in prange(n_workers):
        acc, count, value, active, quad_step, quad_id, quad_value, n_active = new_workspace(
            inputs.shape[1], nbase, abase, layer_core_ptr, region_ptr[-1], acc_proto)
        for i in range(w, b, n_workers):
            run_image(inputs[i], core_role, nbase, abase, xbase, core_shift, layer_core_ptr,
                      threshold, leak_shift, leak_mult, soft_reset, is_output, layer_nbase,
                      slot_neuron, slot_bias, out_slot_class, axon_gain, axon_nnz, xbar, rbase,
                      row_pattern, run_ptr, run_lo, run_hi, axon_entry, slot_entry, input_entry,
                      region_ptr, in_route, slot_route, mem_lo, mem_hi, qbase, xquad, out[i],
                      record[i], spikes_out[i], sops[i], pk_in[i], pk_out[i], route_pk[i], acc,
                      count, value, active, quad_step, quad_id, quad_value, n_active)
