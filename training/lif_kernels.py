"""Fused CPU kernels for a LIF layer over T steps: one pass over memory forward, one backward.

Written element by element in torch, a LIF step is five or six elementwise passes forward and a
dozen backward (leak, add, compare, reset; the surrogate, the reset's two paths, the sums for
trainable theta and leak); on two CPU cores they were a third of a VGG5 training step. Here each
neuron's whole recurrence runs in registers, in float32 with the reference's order of operations
(``training.neurons``), so spikes are identical and gradients equal to float rounding.

Arrays are (T, N): step-major, each step's N values dense. Two shapes of VGG layer get more:
- Pooled: the layer is followed by 2x2 average pooling and its N neurons are (B, H, W, C)
  channels-last with H and W even; ``width`` = W and ``chans`` = C (0, 0 otherwise). The forward
  then writes the pooled spikes, (T, N / 4), and the backward reads their gradient: the layer's
  full-resolution spikes and their gradient, four passes over its largest tensors, never exist.
- Constant current (direct encoding's first layer: the same image at every step): the current
  comes in as one step, (1, N), and its gradient goes out summed over the T steps, (1, N).
Spikes are 0 or 1, so a pooled value is a multiple of 1/4 and exactly what pooling them gives.

Numba caches the machine code beside this file (the kernels call nothing outside it, so its own
file-keyed cache cannot go stale).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

CHUNK = 4096      # neurons per parallel work item: its membranes stay in L1 over all T steps

# Every inner loop runs over slices with ``for j in range(m)``: Numba wraps negative indices,
# and only an index that provably starts at 0 lets LLVM drop that check and vectorize. Indexed
# as ``x[lo + j]`` the same loops ran scalar: 1.5x slower forward, 2.3x backward (BENCHMARKS.md,
# session 20).


# bfloat16 arrays come in as uint16 (their bit patterns): under --precision bf16 the layers'
# currents, spikes and gradients stay bf16 between the products and these kernels, which read
# and write them directly (the membranes and every sum stay float32), instead of torch casting
# each of those tensors to float32 and back around every kernel: ~140M elements a step at batch
# 128, a fifth of the step. A bf16 value is the top half of a float32's bits, so reading is exact
# and writing rounds to nearest even, as torch's cast does: the results are bit for bit the same.


@intrinsic
def _f32_of_bf16(typingctx, bits):  # pragma: no cover - compiled
    """The float32 of a bfloat16's bits (exact: they are its upper half)."""
    if bits != types.uint16:
        return None

    def codegen(context, builder, sig, args):
        wide = builder.zext(args[0], ir.IntType(32))
        return builder.bitcast(builder.shl(wide, ir.Constant(ir.IntType(32), 16)), ir.FloatType())
    return types.float32(types.uint16), codegen


@intrinsic
def _bits_of_f32(typingctx, x):  # pragma: no cover - compiled
    """A float32's bits as uint32."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.uint32(types.float32), codegen


def _load(a, j):  # pragma: no cover - compiled: the overload below
    """a[j] as float32, for a float32 array or the uint16 bits of a bfloat16 one."""


def _store(a, j, x):  # pragma: no cover - compiled: the overload below
    """a[j] = float32 x, rounded to nearest even where ``a`` holds bfloat16 bits."""


@overload(_load)
def _load_impl(a, j):  # pragma: no cover - compiled
    if a.dtype == types.uint16:
        return lambda a, j: _f32_of_bf16(a[j])
    return lambda a, j: a[j]


@overload(_store)
def _store_impl(a, j, x):  # pragma: no cover - compiled
    if a.dtype == types.uint16:
        def store_bf16(a, j, x):
            b = _bits_of_f32(np.float32(x))
            rounded = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
            # NaN as torch's vectorized cast writes it
            nan = (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
            a[j] = np.uint16(0xFFFF) if nan else np.uint16(rounded)
        return store_bf16

    def store(a, j, x):
        a[j] = x
    return store


@njit(inline="always")
def _chunk_size(n, width, chans):  # pragma: no cover - compiled
    """A pooled layer's chunk is two pixel rows of one image: the pooled outputs are its own."""
    return 2 * width * chans if width else min(n, CHUNK)


@njit(inline="always")
def _start(chunk, init, has_init, lo, hi):  # pragma: no cover - compiled
    """``chunk`` set to ``init[lo:hi]``, or to zeros when there is none; returned."""
    if has_init:
        chunk[:] = init[lo:hi]
    else:
        chunk[:] = 0.0
    return chunk


@njit(parallel=True, cache=True, nogil=True)
def lif_forward(cur, u0, has_u0, th, lk, soft, width, chans, v, s, u):  # pragma: no cover
    """v_t = lk * u_{t-1} + I_t (u_{-1} = u0, or 0); s_t = v_t > th; soft or hard reset.
    ``cur`` is (T, N), or (1, N) for a constant current; ``s`` is (T, N), or (T, N / 4) when
    pooled (``width`` > 0; module docstring). ``u`` receives the final membranes. Step-major
    within a chunk of neurons, so the inner loop over neurons is branch-free and vectorizes."""
    steps, n = v.shape
    tc = 1 if cur.shape[0] > 1 else 0              # step stride of the current
    size = _chunk_size(n, width, chans)
    for c in prange((n + size - 1) // size):
        lo = c * size
        hi = min(n, lo + size)
        uu = _start(u[lo:hi], u0, has_u0, lo, hi)
        if width:
            fired = np.empty(hi - lo, np.float32)    # the chunk's spikes of one step
            for t in range(steps):
                _fire(cur[t * tc, lo:hi], th, lk, soft, v[t, lo:hi], uu, fired)
                _pool(fired, width, chans, s[t, lo // 4:hi // 4])
        else:
            for t in range(steps):
                _fire(cur[t * tc, lo:hi], th, lk, soft, v[t, lo:hi], uu, s[t, lo:hi])


@njit(inline="always")
def _fire(cur, th, lk, soft, v, u, s):  # pragma: no cover - compiled
    """One step of a chunk: v = lk * u + I, s = v > th, u reset. Inlined at each call with
    its own arrays: a loop that picked one of two arrays at run time would not vectorize."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for j in range(v.shape[0]):
        vt = lk * u[j] + _load(cur, j)
        st = one if vt > th else zero
        v[j] = vt
        _store(s, j, st)
        u[j] = vt - th * st if soft else vt * (one - st)


@njit(inline="always")
def _quad(rows, width, chans, p):  # pragma: no cover - compiled
    """Pooled pixel p's four inputs in two channels-last pixel rows (W pixels of C channels
    each): the channel vectors at top-left, top-right, bottom-left, bottom-right."""
    row = width * chans
    a = 2 * p * chans
    b = a + chans
    return (rows[a:b], rows[b:b + chans], rows[row + a:row + b], rows[row + b:row + b + chans])


@njit(inline="always")
def _pool(fired, width, chans, out):  # pragma: no cover - compiled
    """2x2 average of two pixel rows into W/2 pixels. Spikes are 0 or 1: the sums are exact in
    any order."""
    for p in range(width // 2):
        t0, t1, b0, b1 = _quad(fired, width, chans, p)
        o = out[p * chans:(p + 1) * chans]
        for k in range(chans):
            _store(o, k, np.float32(0.25) * ((t0[k] + t1[k]) + (b0[k] + b1[k])))


@njit(inline="always")
def _unpool(g, width, chans, g_in):  # pragma: no cover - compiled
    """Average pooling's gradient: a quarter of each pooled value to its four inputs."""
    for p in range(width // 2):
        t0, t1, b0, b1 = _quad(g_in, width, chans, p)
        gp = g[p * chans:(p + 1) * chans]
        for k in range(chans):
            q = np.float32(0.25) * _load(gp, k)
            t0[k] = q
            t1[k] = q
            b0[k] = q
            b1[k] = q


@njit(parallel=True, cache=True, nogil=True)
def lif_backward(v, g_s, u0, has_u0, g_final, has_final, th, lk, scale, soft, need_params,
                 width, chans, a, g_cur):  # pragma: no cover - compiled
    """Back-propagation through time of ``lif_forward``: writes dL/dI into ``g_cur`` and returns
    (dL/dtheta, dL/dleak), summed in float64, when ``need_params`` (the sums keep the loop from
    vectorizing, so they are skipped for fixed neurons). ``g_s`` is the spikes' gradient, pooled
    when ``width`` > 0; ``g_cur`` is (T, N), or (1, N) to receive it summed over the steps (a
    constant current). ``a`` is scratch of N floats: dL/du_t from the steps after t."""
    steps, n = v.shape
    summed = g_cur.shape[0] == 1 and steps > 1
    size = _chunk_size(n, width, chans)
    g_theta = 0.0
    g_leak = 0.0
    for c in prange((n + size - 1) // size):
        lo = c * size
        hi = min(n, lo + size)
        aa = _start(a[lo:hi], g_final, has_final, lo, hi)
        if summed:
            g_cur[0, lo:hi] = 0.0
        g_in = np.empty(hi - lo if width else 0, np.float32)    # a pooled chunk's dL/ds_t
        for t in range(steps - 1, -1, -1):
            if width:
                _unpool(g_s[t, lo // 4:hi // 4], width, chans, g_in)
            if need_params:     # one loop for every case: it does not vectorize anyway
                prev = v[t - 1 if t > 0 else 0, lo:hi]
                carried = u0[lo:hi] if has_u0 else prev
                g_out = g_cur[0 if summed else t, lo:hi]
                # two calls, not one with a choice of array: g_s may hold bf16 bits, g_in not
                if width:
                    dt, dl = _bptt_params(v[t, lo:hi], g_in, th, lk, scale, soft, aa, g_out,
                                          summed, prev, t > 0, carried, has_u0)
                else:
                    dt, dl = _bptt_params(v[t, lo:hi], g_s[t, lo:hi], th, lk, scale, soft, aa,
                                          g_out, summed, prev, t > 0, carried, has_u0)
                g_theta += dt
                g_leak += dl
            elif summed and width:
                _bptt(v[t, lo:hi], g_in, th, lk, scale, soft, aa, g_cur[0, lo:hi], True)
            elif summed:
                _bptt(v[t, lo:hi], g_s[t, lo:hi], th, lk, scale, soft, aa, g_cur[0, lo:hi], True)
            elif width:
                _bptt(v[t, lo:hi], g_in, th, lk, scale, soft, aa, g_cur[t, lo:hi], False)
            else:
                _bptt(v[t, lo:hi], g_s[t, lo:hi], th, lk, scale, soft, aa, g_cur[t, lo:hi], False)
    return g_theta, g_leak


@njit(inline="always")
def _grad(vt, ai, g, th, scale, soft):  # pragma: no cover - compiled
    """One neuron at one step, backwards: (dL/dv_t, dL/ds_t, ds_t/dv_t, s_t) from v_t,
    a = dL/du_t from the later steps and g = dL/ds_t from the layers above."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    st = one if vt > th else zero
    sg = one - abs(vt / th - one)
    sg = (sg if sg > zero else zero) * scale
    if soft:
        gs = g - th * ai                     # dL/ds_t, the reset's path included
        gv = ai + gs * sg
    else:
        gs = g - vt * ai
        gv = ai * (one - st) + gs * sg
    return gv, gs, sg, st


@njit(inline="always")
def _bptt(v, g_s, th, lk, scale, soft, a, g_cur, accumulate):  # pragma: no cover - compiled
    """One step of a chunk, backwards, for fixed neurons: dL/dI into ``g_cur`` (added to it
    when ``accumulate``). Inlined at each call with its own arrays and a constant
    ``accumulate``, so every variant is a branch-free loop."""
    for j in range(v.shape[0]):
        gv = _grad(v[j], a[j], _load(g_s, j), th, scale, soft)[0]
        if accumulate:
            g_cur[j] += gv
        else:
            _store(g_cur, j, gv)
        a[j] = lk * gv


@njit(nogil=True)
def _bptt_params(v, g_s, th, lk, scale, soft, a, g_cur, accumulate, prev, has_prev, u0,
                 has_u0):  # pragma: no cover - compiled
    """``_bptt`` for trainable neurons: also returns this step's (dL/dtheta, dL/dleak), the
    leak's through the previous step's membrane after reset (``prev``: v_{t-1}) or, at the
    first step, the carried membrane ``u0``."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    g_theta = 0.0
    g_leak = 0.0
    for j in range(v.shape[0]):
        aj = a[j]
        gv, gs, sg, st = _grad(v[j], aj, _load(g_s, j), th, scale, soft)
        if accumulate:
            g_cur[j] += gv
        else:
            _store(g_cur, j, gv)
        a[j] = lk * gv
        g_theta += -(aj * st + gs * sg) if soft else -(gs * sg)
        if has_prev:
            vp = prev[j]
            sp = one if vp > th else zero
            g_leak += gv * (vp - th * sp if soft else vp * (one - sp))
        elif has_u0:
            g_leak += gv * u0[j]
    return g_theta, g_leak
