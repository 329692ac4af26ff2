"""Fused CPU kernels for a LIF layer over T steps: one pass over memory forward, one backward.

Written element by element in torch, a LIF step is five or six elementwise passes forward and a
dozen backward (leak, add, compare, reset; the surrogate, the reset's two paths, the sums for
trainable theta and leak); on two CPU cores they were a third of a VGG5 training step. Here each
neuron's whole recurrence runs in registers, in float32 with the reference's order of operations
(``training.neurons``), so spikes are identical and gradients equal to float rounding.

Arrays are (T, N): step-major, each step's N values dense. Numba caches the machine code beside
this file (the kernels call nothing outside it, so its own file-keyed cache cannot go stale).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

CHUNK = 4096      # neurons per parallel work item: its membranes stay in L1 over all T steps


@njit(parallel=True, cache=True, nogil=True)
def lif_forward(cur, u0, has_u0, th, lk, soft, v, s, u):  # pragma: no cover - compiled
    """v_t = lk * u_{t-1} + I_t (u_{-1} = u0, or 0); s_t = v_t > th; soft or hard reset.
    ``u`` receives the final membranes. Step-major within a chunk of neurons, so the inner loop
    over neurons is branch-free and vectorizes."""
    steps, n = cur.shape
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        for i in range(lo, hi):
            u[i] = u0[i] if has_u0 else zero
        for t in range(steps):
            for i in range(lo, hi):
                vt = lk * u[i] + cur[t, i]
                st = one if vt > th else zero
                v[t, i] = vt
                s[t, i] = st
                u[i] = vt - th * st if soft else vt * (one - st)


@njit(parallel=True, cache=True, nogil=True)
def lif_backward(v, g_s, u0, has_u0, g_final, has_final, th, lk, scale, soft, need_params,
                 a, g_cur):  # pragma: no cover - compiled
    """Back-propagation through time of ``lif_forward``: writes dL/dI into ``g_cur`` and returns
    (dL/dtheta, dL/dleak), summed in float64, when ``need_params`` (the sums keep the loop from
    vectorizing, so they are skipped for fixed neurons). ``a`` is scratch of N floats: dL/du_t
    from the steps after t."""
    steps, n = v.shape
    one = np.float32(1.0)
    zero = np.float32(0.0)
    g_theta = 0.0
    g_leak = 0.0
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        for i in range(lo, hi):
            a[i] = g_final[i] if has_final else zero
        for t in range(steps - 1, -1, -1):
            for i in range(lo, hi):
                vt = v[t, i]
                ai = a[i]
                st = one if vt > th else zero
                sg = one - abs(vt / th - one)
                sg = (sg if sg > zero else zero) * scale
                if soft:
                    gs = g_s[t, i] - th * ai             # dL/ds_t, the reset's path included
                    gv = ai + gs * sg
                else:
                    gs = g_s[t, i] - vt * ai
                    gv = ai * (one - st) + gs * sg
                g_cur[t, i] = gv
                a[i] = lk * gv
                if need_params:
                    g_theta += -(ai * st + gs * sg) if soft else -(gs * sg)
                    if t > 0:
                        vp = v[t - 1, i]
                        sp = one if vp > th else zero
                        g_leak += gv * (vp - th * sp if soft else vp * (one - sp))
                    elif has_u0:
                        g_leak += gv * u0[i]
    return g_theta, g_leak
