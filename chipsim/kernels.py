"""Numba kernels: pure functions over flat arrays. One image per prange iteration, so every
piece of mutable state (membranes, accumulators, packet boxes, counters) has one owner.

Within a time step the chip works in waves, layer by layer: the host's input packets land on
layer-0 axons; each core of a layer reads the crossbar row of every axon that received packets
(event-driven: silent axons cost nothing) into its neurons' input accumulators; partial-sum
cores send their sums to the home cores; then the layer's tick applies, per neuron,
    u = sat(leak(u) + (acc << shift) + bias); spike if u > theta; reset,
and each spike's packet lands on the next layer's axons. Output neurons only accumulate.
A packet multicast to several cores is kept once, in the box of its logical target, which
every core holding that target reads (flat._entries). Membranes are int64; input
accumulators int32 where flatten() proves no overflow, else int64. The result matches
compiler.reference bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

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
    """Add m pending rows that share ``pattern``, run by run. This and _add_rows allocate
    nothing, so both are compiled without reference counting: its atomic increments on every
    slice and call were 13% of the kernel time."""
    for k in range(run_ptr[pattern], run_ptr[pattern + 1]):
        lo = run_lo[k]
        _add_rows(acc, xbar, s0 + lo, lo, run_hi[k] - lo, rows, vas, m)


@njit(cache=True, nogil=True)
def run_image(inputs, core_role, nbase, abase, xbase, core_shift, layer_core_ptr, threshold,
              leak_shift, leak_mult, soft_reset, is_output, layer_nbase, slot_neuron, slot_bias,
              out_slot_class, axon_gain, axon_nnz, xbar, rbase, row_pattern, run_ptr, run_lo,
              run_hi, axon_entry, slot_entry, input_entry, region_ptr, in_route, slot_route,
              mem_lo, mem_hi, acc_proto, out, record, spikes_out, sops, pk_in, pk_out, route_pk):
    """Run all T steps of one image. ``inputs`` (T, n_in) int64 event values (0 = no event).
    ``record`` is (T, n_neurons_total) uint8 or (0, 0) to skip recording. Input accumulators
    take ``acc_proto``'s dtype: int32 where the compiler-side bound proves no overflow (its
    multiplies vectorize), int64 otherwise."""
    n_steps = inputs.shape[0]
    n_slots = nbase[-1]
    n_layers = layer_core_ptr.shape[0] - 1
    u = np.zeros(n_slots, dtype=np.int64)
    acc = np.zeros(n_slots, dtype=acc_proto.dtype)
    pend_row = np.zeros(GROUP, dtype=np.int64)   # rows waiting to be added together
    pend_va = np.zeros(GROUP, dtype=acc_proto.dtype)
    # (summed value, packet count) of every packet target, side by side (see flat._entries)
    box = np.zeros((region_ptr[-1], 2), dtype=np.int64)
    do_record = record.shape[0] > 0
    for t in range(n_steps):
        for i in range(inputs.shape[1]):
            v = inputs[t, i]
            if v != 0:
                r = in_route[i]
                if r >= 0:
                    route_pk[t, r] += 1
                e = input_entry[i]
                box[e, 0] += v
                box[e, 1] += 1
        for l in range(n_layers):
            c0, c1 = layer_core_ptr[l], layer_core_ptr[l + 1]
            for c in range(c0, c1):
                s0, s1 = nbase[c], nbase[c + 1]
                nn = s1 - s0
                if core_role[c] == ROLE_HOME:
                    # graded partial sums (or host currents) land on axon j = neuron j
                    a0 = abase[c]
                    for j in range(nn):
                        e = axon_entry[a0 + j]
                        acc[s0 + j] += box[e, 0]
                        pk_in[c] += box[e, 1]
                    continue
                m = 0
                pattern = -1
                for a in range(abase[c], abase[c + 1]):
                    e = axon_entry[a]
                    p = box[e, 1]
                    if p == 0:
                        continue
                    v = box[e, 0]
                    pk_in[c] += p
                    sops[c] += axon_nnz[a] * p      # every packet drives the row on chip
                    if v == 0:
                        continue
                    r = rbase[c] + a - abase[c]
                    if m == GROUP or (m > 0 and row_pattern[r] != pattern):
                        _add_group(acc, xbar, s0, pend_row, pend_va, m, pattern,
                                   run_ptr, run_lo, run_hi)
                        m = 0
                    pattern = row_pattern[r]
                    pend_row[m] = xbase[c] + (a - abase[c]) * nn
                    pend_va[m] = v * axon_gain[a]   # cast to the accumulator type
                    m += 1
                if m > 0:
                    _add_group(acc, xbar, s0, pend_row, pend_va, m, pattern,
                               run_ptr, run_lo, run_hi)
                if core_role[c] == ROLE_PARTIAL:
                    for s in range(s0, s1):
                        ps = acc[s]
                        if ps != 0:
                            pk_out[c] += 1
                            r = slot_route[s]
                            if r >= 0:
                                route_pk[t, r] += 1
                            e = slot_entry[s]
                            box[e, 0] += ps
                            box[e, 1] += 1
                        acc[s] = 0
            # every core of the layer has read its packets
            box[region_ptr[l]:region_ptr[l + 1]] = 0
            # the layer's tick
            th = threshold[l]
            for c in range(c0, c1):
                if core_role[c] == ROLE_PARTIAL:
                    continue
                sh = core_shift[c]
                for s in range(nbase[c], nbase[c + 1]):
                    cur = (np.int64(acc[s]) << sh) + slot_bias[s]
                    acc[s] = 0
                    if is_output[l]:
                        out[out_slot_class[s]] += cur
                        continue
                    if leak_mult[l] == 1:
                        x = (u[s] >> leak_shift[l]) + cur
                    else:
                        x = ((u[s] * leak_mult[l]) >> leak_shift[l]) + cur
                    if x < mem_lo:
                        x = mem_lo
                    elif x > mem_hi:
                        x = mem_hi
                    if x > th:
                        if soft_reset[l]:
                            x -= th
                        else:
                            x = 0
                        spikes_out[c] += 1
                        if do_record:
                            record[t, layer_nbase[l] + slot_neuron[s]] = 1
                        r = slot_route[s]
                        if r >= 0:
                            pk_out[c] += 1
                            route_pk[t, r] += 1
                        e = slot_entry[s]
                        if e >= 0:
                            box[e, 0] += 1
                            box[e, 1] += 1
                    u[s] = x


@njit(cache=True, parallel=True)
def run_batch(inputs, core_role, nbase, abase, xbase, core_shift, layer_core_ptr, threshold,
              leak_shift, leak_mult, soft_reset, is_output, layer_nbase, slot_neuron, slot_bias,
              out_slot_class, axon_gain, axon_nnz, xbar, rbase, row_pattern, run_ptr, run_lo,
              run_hi, axon_entry, slot_entry, input_entry, region_ptr, in_route, slot_route,
              mem_lo, mem_hi, acc_proto, out, record, spikes_out, sops, pk_in, pk_out, route_pk):
    """``run_image`` over a batch (B, T, n_in); every output array has a leading batch axis."""
    for b in prange(inputs.shape[0]):
        run_image(inputs[b], core_role, nbase, abase, xbase, core_shift, layer_core_ptr, threshold,
                  leak_shift, leak_mult, soft_reset, is_output, layer_nbase, slot_neuron,
                  slot_bias, out_slot_class, axon_gain, axon_nnz, xbar, rbase, row_pattern,
                  run_ptr, run_lo, run_hi, axon_entry, slot_entry, input_entry, region_ptr,
                  in_route, slot_route, mem_lo, mem_hi, acc_proto, out[b], record[b],
                  spikes_out[b], sops[b], pk_in[b], pk_out[b], route_pk[b])
