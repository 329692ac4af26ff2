"""The integer LIF recurrence of one layer over T steps as a Numba kernel: the forward of the
`hw` attack source (its backward is training.lif_kernels.lif_backward, the same BPTT through
the surrogate that training uses, run on the integer membranes).

Integer arithmetic exactly as artifacts.intmath.lif_step: leak as (u * m) >> s (an arithmetic
shift floors negative membranes), add the current, saturate, spike where strictly above the
threshold, soft or hard reset. Written element-wise in torch this was five int64 passes and
as many dtype conversions per step, half of the source's gradient time on two cores.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

CHUNK = 4096      # neurons per parallel work item: their membranes stay in L1 over all T steps


@njit(parallel=True, cache=True, nogil=True)
def integer_lif_forward(cur, th, shift, mult, soft, lo, hi, pre, s):  # pragma: no cover
    """cur: (T, N) float64 holding integers. Writes the saturated pre-reset membranes (float32,
    for the surrogate) into ``pre`` and the spikes (0/1 float32) into ``s``."""
    steps, n = cur.shape
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo_i = c * CHUNK
        hi_i = min(n, lo_i + CHUNK)
        u = np.zeros(hi_i - lo_i, dtype=np.int64)
        for t in range(steps):
            # slices indexed from 0: no negative-index wrap, so the loop can vectorize
            cur_t = cur[t, lo_i:hi_i]
            pre_t = pre[t, lo_i:hi_i]
            s_t = s[t, lo_i:hi_i]
            for j in range(hi_i - lo_i):
                w = ((u[j] * mult) >> shift) + np.int64(cur_t[j])
                w = min(max(w, lo), hi)
                fired = w > th
                pre_t[j] = np.float32(w)
                s_t[j] = np.float32(1.0) if fired else np.float32(0.0)
                if fired:
                    u[j] = w - th if soft else 0
                else:
                    u[j] = w
