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
from numba import njit, prange

CHUNK = 4096      # neurons per parallel work item: its membranes stay in L1 over all T steps


@njit(inline="always")
def _chunk_size(n, width, chans):  # pragma: no cover - compiled
    """A pooled layer's chunk is two pixel rows of one image: the pooled outputs are its own."""
    return 2 * width * chans if width else min(n, CHUNK)


@njit(parallel=True, cache=True, nogil=True)
def lif_forward(cur, u0, has_u0, th, lk, soft, width, chans, v, s, u):  # pragma: no cover
    """v_t = lk * u_{t-1} + I_t (u_{-1} = u0, or 0); s_t = v_t > th; soft or hard reset.
    ``cur`` is (T, N), or (1, N) for a constant current; ``s`` is (T, N), or (T, N / 4) when
    pooled (``width`` > 0; module docstring). ``u`` receives the final membranes. Step-major
    within a chunk of neurons, so the inner loop over neurons is branch-free and vectorizes."""
    steps, n = v.shape
    tc = 1 if cur.shape[0] > 1 else 0              # step stride of the current
    zero = np.float32(0.0)
    size = _chunk_size(n, width, chans)
    row = width * chans
    for c in prange((n + size - 1) // size):
        lo = c * size
        hi = min(n, lo + size)
        for i in range(lo, hi):
            u[i] = u0[i] if has_u0 else zero
        if width:
            fired = np.empty(hi - lo, np.float32)    # the chunk's spikes of one step
            for t in range(steps):
                _fire(cur[t * tc], th, lk, soft, v[t], u, fired, lo, lo, hi)
                ob = c * (row // 2)
                for p in range(width // 2):
                    a = 2 * p * chans
                    for k in range(chans):
                        s[t, ob + p * chans + k] = np.float32(0.25) * (
                            (fired[a + k] + fired[a + chans + k])
                            + (fired[row + a + k] + fired[row + a + chans + k]))
        else:
            for t in range(steps):
                _fire(cur[t * tc], th, lk, soft, v[t], u, s[t], 0, lo, hi)


@njit(inline="always")
def _fire(cur, th, lk, soft, v, u, s, s_off, lo, hi):  # pragma: no cover - compiled
    """One step of neurons lo..hi: v = lk * u + I, s = v > th, u reset. Inlined at each call
    with its own arrays: a loop that picked one of two arrays at run time would not vectorize."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for i in range(lo, hi):
        vt = lk * u[i] + cur[i]
        st = one if vt > th else zero
        v[i] = vt
        s[i - s_off] = st
        u[i] = vt - th * st if soft else vt * (one - st)


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
    zero = np.float32(0.0)
    size = _chunk_size(n, width, chans)
    row = width * chans
    g_theta = 0.0
    g_leak = 0.0
    for c in prange((n + size - 1) // size):
        lo = c * size
        hi = min(n, lo + size)
        g_in = np.empty(hi - lo if width else 0, np.float32)    # a pooled chunk's dL/ds_t
        for i in range(lo, hi):
            a[i] = g_final[i] if has_final else zero
            if summed:
                g_cur[0, i] = zero
        for t in range(steps - 1, -1, -1):
            if width:
                ob = c * (row // 2)
                for p in range(width // 2):
                    b = 2 * p * chans
                    for k in range(chans):
                        g = np.float32(0.25) * g_s[t, ob + p * chans + k]
                        g_in[b + k] = g
                        g_in[b + chans + k] = g
                        g_in[row + b + k] = g
                        g_in[row + b + chans + k] = g
            if need_params:     # one loop for all cases: it does not vectorize anyway
                dt, dl = _bptt_params(v, t, g_in if width else g_s[t], lo if width else 0,
                                      u0, has_u0, th, lk, scale, soft, a, g_cur, summed, lo, hi)
                g_theta += dt
                g_leak += dl
            elif summed and width:
                _bptt(v[t], g_in, lo, th, lk, scale, soft, a, g_cur[0], True, lo, hi)
            elif summed:
                _bptt(v[t], g_s[t], 0, th, lk, scale, soft, a, g_cur[0], True, lo, hi)
            elif width:
                _bptt(v[t], g_in, lo, th, lk, scale, soft, a, g_cur[t], False, lo, hi)
            else:
                _bptt(v[t], g_s[t], 0, th, lk, scale, soft, a, g_cur[t], False, lo, hi)
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
def _bptt(v, g_s, g_off, th, lk, scale, soft, a, g_cur, accumulate, lo, hi):  # pragma: no cover
    """One step of neurons lo..hi, backwards, for fixed neurons: dL/dI into ``g_cur`` (added
    to it when ``accumulate``). Inlined at each call with its own arrays and a constant
    ``accumulate``, so every variant is a branch-free loop."""
    for i in range(lo, hi):
        gv = _grad(v[i], a[i], g_s[i - g_off], th, scale, soft)[0]
        if accumulate:
            g_cur[i] += gv
        else:
            g_cur[i] = gv
        a[i] = lk * gv


@njit(nogil=True)
def _bptt_params(v, t, g_s, g_off, u0, has_u0, th, lk, scale, soft, a, g_cur, summed, lo,
                 hi):  # pragma: no cover - compiled
    """``_bptt`` for trainable neurons: also returns this step's (dL/dtheta, dL/dleak)."""
    one = np.float32(1.0)
    g_theta = 0.0
    g_leak = 0.0
    for i in range(lo, hi):
        ai = a[i]
        gv, gs, sg, st = _grad(v[t, i], ai, g_s[i - g_off], th, scale, soft)
        if summed:
            g_cur[0, i] += gv
        else:
            g_cur[t, i] = gv
        a[i] = lk * gv
        g_theta += -(ai * st + gs * sg) if soft else -(gs * sg)
        if t > 0:
            vp = v[t - 1, i]
            sp = one if vp > th else np.float32(0.0)
            g_leak += gv * (vp - th * sp if soft else vp * (one - sp))
        elif has_u0:
            g_leak += gv * u0[i]
    return g_theta, g_leak
