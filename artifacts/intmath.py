"""The chip's integer arithmetic: one home for every width, shift, rounding and reset rule.

The compiler's integer model, its numpy reference, the dense torch reference, chipsim's kernel
set-up and training's 8-bit input grid all call these functions; none writes the arithmetic
out again. Most use only operators, so they work alike on Python and numpy integers, numpy
arrays and torch tensors. (chipsim's Numba tick runs the same LIF step per neuron in a
register; the exactness tests hold it to ``lif_step`` bit for bit.)

Units (see compiler.integer_model for how a float network is quantized into them):

- weight code c in 0 .. 2^k - 1 stands for the integer weight (2c - (2^k - 1)) << f: odd, never
  zero, symmetric around zero, so the chip needs no zero-point;
- a membrane is a signed ``membrane_bits`` register that saturates (never wraps);
- one time step of a spiking neuron:  u = sat(leak(u) + I);  s = u > theta;  reset.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Input denominators D of a layer (membrane units per float unit carry a factor D): a 2x2
# average pool becomes axon merging (the merged axon sees the count of its 4 sources, the 1/4
# moves into the threshold); phase-coded pixels send 2^(7-k) for weight 2^-(k+1).
POOL_DENOM = 4
PHASE_DENOM = 256
# The largest event value one input pixel sends in one step, per encoding (direct: the 8-bit
# pixel itself; phase: the top bit's weight 2^7).
PIXEL_LEVELS = 255
MAX_INPUT_EVENT = {"direct": PIXEL_LEVELS, "rate": 1, "phase": 128, "latency": 1}


def weight_units(codes, bits: int):
    """Unshifted integer weights 2c - (2^k - 1) of k-bit codes ``c`` (int64 for arrays)."""
    if isinstance(codes, np.ndarray):
        codes = codes.astype(np.int64)
    return 2 * codes - ((1 << bits) - 1)


def largest_weight_unit(bits: int) -> int:
    """|2c - (2^k - 1)| at most: 2^k - 1."""
    return (1 << bits) - 1


def membrane_limits(bits: int) -> tuple[int, int]:
    """The signed saturating membrane register of ``bits`` bits: (lowest, highest)."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def max_axon_event(layer_index: int, encoding: str, pooled_input: bool) -> int:
    """The largest value one axon of a layer receives in one step, before any pixel gain: a
    host event for the first layer, the spike count of its merged sources after a pool, else 1."""
    if layer_index == 0:
        return MAX_INPUT_EVENT[encoding]
    return POOL_DENOM if pooled_input else 1


def leak_code(lam: float, frac_bits: int) -> tuple[int, int]:
    """(shift, multiplier) of a leak factor 0 < lambda <= 1: a pure right shift when lambda is
    a power of two (multiplier 1), else round(lambda 2^F) with F = ``frac_bits`` fraction bits
    (multiplier 0 means lambda rounds to zero: the design rule leak-range refuses it)."""
    m = -math.log2(lam)
    if abs(m - round(m)) < 1e-12 and round(m) >= 0:
        return int(round(m)), 1
    return frac_bits, int(round(lam * (1 << frac_bits)))


def leak(u, shift: int, multiplier: int):
    """lambda * u as the chip applies it: an arithmetic right shift by ``shift`` (lambda =
    2^-shift), or a fixed-point multiply then shift (lambda = multiplier / 2^shift). A shift of
    a negative membrane floors, on purpose, in every implementation."""
    if multiplier == 1:
        return u >> shift
    return (u * multiplier) >> shift


def saturate(u, lo: int, hi: int):
    """Clamp to the membrane register (the chip saturates; it never wraps). Arrays or tensors."""
    return u.clip(lo, hi)


def lif_step(u, current, threshold: int, leak_shift: int, leak_multiplier: int, soft: bool,
             lo: int, hi: int):
    """One time step of integer LIF neurons on numpy arrays or torch tensors: returns
    (membrane after reset, spiked).

    leak, then add the input current and saturate, then spike where u > theta (strict), then
    subtract theta (soft reset) or clear (hard reset) where a spike fired. (The Numba tick in
    chipsim.kernels runs the same steps per neuron; the exactness tests hold it to this.)
    """
    v = saturate(leak(u, leak_shift, leak_multiplier) + current, lo, hi)
    s = v > threshold
    if soft:
        return v - threshold * s, s
    return v * ~s, s


def merge_pool(spikes: np.ndarray) -> np.ndarray:
    """2x2 average pooling as axon merging on (B, C, H, W): each merged axon sees the count of
    its four sources (int64)."""
    b, c, h, w = spikes.shape
    return spikes.reshape(b, c, h // 2, 2, w // 2, 2).sum(axis=(3, 5), dtype=np.int64)


def conv3x3(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact 3x3 convolution with zero padding 1: x (B, C, H, W), w (O, C, 3, 3) -> (B, O, H, W).

    Runs as a float64 BLAS product; exact (and returned as int64) while every partial sum stays
    below 2^53, as it does for integer inputs <= 255, weights < 2^27 and fan-in <= 4608. With
    float inputs (the host input path) it is the float convolution, unrounded.
    """
    xp = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))                       # (B, C, H, W, 3, 3)
    out = np.tensordot(win, np.asarray(w, dtype=np.float64), axes=([1, 4, 5], [1, 2, 3]))
    out = out.transpose(0, 3, 1, 2)                                          # (B, O, H, W)
    if np.issubdtype(np.asarray(x).dtype, np.integer) and np.issubdtype(np.asarray(w).dtype, np.integer):
        return np.rint(out).astype(np.int64)
    return out


def pixel_levels(x):
    """Pixels in [0, 1] -> the 8-bit grid 0..255 the chip receives (half up). Works on numpy
    arrays and torch tensors; the result keeps the input's type (floats holding integers)."""
    return (x * PIXEL_LEVELS + 0.5) // 1


def latency_fire_step(p, timesteps: int):
    """Latency code: the step at which an 8-bit pixel ``p`` > 0 fires, (255 - p) T // 255
    (brighter fires earlier; p = 0 never fires). Integer arithmetic on Python, numpy or torch
    integers, so training and the chip agree for every T. For p >= 1 the step is at most
    254 T // 255 <= T - 1, so no clamp is needed."""
    return ((PIXEL_LEVELS - p) * timesteps) // PIXEL_LEVELS


def phase_event(p, t: int):
    """Phase code: the event pixel ``p`` sends at step t, 2^(7-k) if bit 7-k is set, k = t mod 8."""
    k = t % 8
    return ((p >> (7 - k)) & 1) << (7 - k)
