"""The k-bit weight quantizer of PAPERS.md eq. 13, and its use in quantization-aware training.

    q_k(x) = 2 * ( round((2^k - 1) * (x + 1) / 2) / (2^k - 1) - 1/2 ),   x in [-1, 1]

A layer's float weights W are mapped into [-1, 1] by their largest magnitude alpha = max|W|
(per layer), quantized, and scaled back: W_q = alpha * q_k(W / alpha). The 2^k levels are the
odd multiples of alpha / (2^k - 1), so the chip can store a k-bit code c in 0..2^k-1 and use
the integer weight 2c - (2^k - 1) with one per-layer scale alpha / (2^k - 1).

Rounding is half-up (floor(v + 0.5)) rather than torch's half-to-even, so that the compiler's
numpy integer model reproduces it exactly.

QAT quantizes every weight tensor on every forward pass. Written as torch operations that is a
dozen elementwise passes over memory; on VGG5's 8.4M-weight fc1 they took 100 ms per call on
two cores, as long as a whole ReLU-ANN training step at batch 128 (131 ms). On the CPU the
forward therefore runs as one fused Numba pass (plus one for max|W|) with torch's float32
operations in torch's order, so its output is the torch expression's bit for bit for finite
weights (tested; a NaN weight, where the expression turns the whole tensor NaN, stays local).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

MAX_BITS = 8
FUSED_ON_CPU = True   # `spikemesh bench training` turns it off to time the torch expression


def check_bits(k: int) -> int:
    if not 1 <= int(k) <= MAX_BITS:
        raise ValueError(f"weight bits must be 1..{MAX_BITS}, got {k}")
    return int(k)


def quantize_codes(x: torch.Tensor, k: int) -> torch.Tensor:
    """Level index c in 0..2^k-1 of each x in [-1, 1] (values outside are clipped)."""
    n = (1 << check_bits(k)) - 1
    return torch.floor(n * (x.clamp(-1.0, 1.0) + 1.0) / 2.0 + 0.5)


def q_k(x: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 13: the k-bit quantizer on [-1, 1]; 2^k symmetric levels, no exact zero."""
    n = (1 << check_bits(k)) - 1
    return 2.0 * (quantize_codes(x, k) / n - 0.5)


def layer_scale(w: torch.Tensor) -> torch.Tensor:
    """alpha = max|W|, the per-layer map into [-1, 1] (never zero, so all-zero layers survive)."""
    return w.detach().abs().max().clamp_min(1e-12)


def fake_quantize(w: torch.Tensor, k: int) -> torch.Tensor:
    """alpha * q_k(W / alpha) in the forward pass, identity (straight-through) in the backward.

    The float "shadow" weights stay the parameters the optimizer updates; this is the paper's
    pseudo-node / restore scheme expressed as a straight-through estimator.
    """
    if (FUSED_ON_CPU and w.device.type == "cpu" and w.dtype == torch.float32
            and w.is_contiguous() and w.numel()):
        return _FusedFakeQuantize.apply(w, check_bits(k))
    return _fake_quantize_torch(w, k)


def _fake_quantize_torch(w: torch.Tensor, k: int) -> torch.Tensor:
    """The specification (and the path on GPUs and for other dtypes)."""
    alpha = layer_scale(w)
    wq = alpha * q_k(w / alpha, k)
    return w + (wq - w).detach()


class _FusedFakeQuantize(torch.autograd.Function):
    """``_fake_quantize_torch``'s forward in two passes over memory; the gradient passes
    straight through, as the ``detach`` there makes it."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, k: int) -> torch.Tensor:  # noqa: ARG004 - autograd API
        flat = w.detach().reshape(-1).numpy()
        out = np.empty_like(flat)
        _fake_quantize_kernel(flat, np.float32(_max_abs(flat)), np.float32((1 << k) - 1), out)
        return torch.from_numpy(out).view(w.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ARG004
        return grad, None


CHUNK = 1 << 16   # weights per parallel work item


@njit(parallel=True, cache=True, nogil=True)
def _max_abs(w):  # pragma: no cover - compiled
    """max|w| over the finite and infinite weights (a NaN is passed over), clamped below at
    1e-12 as layer_scale does.

    Taken on the bit patterns: with the sign bit cleared, a float's bits order as its magnitude
    does, and an integer max vectorizes where a float max does not (LLVM must keep a float
    max's NaN semantics): 2.3 instead of 5.8 ms over fc1's 8.4M weights on two Xeon cores."""
    bits = w.view(np.uint32)
    inf = np.uint32(0x7F800000)
    magnitude = np.uint32(0x7FFFFFFF)
    n_chunks = (bits.size + CHUNK - 1) // CHUNK
    part = np.zeros(n_chunks, dtype=np.uint32)
    for c in prange(n_chunks):
        seg = bits[c * CHUNK:min(bits.size, (c + 1) * CHUNK)]
        m = np.uint32(0)
        for j in range(seg.size):
            b = seg[j] & magnitude
            b = b if b <= inf else np.uint32(0)          # NaN's patterns lie above inf's
            m = b if b > m else m
        part[c] = m
    out = np.zeros(1, dtype=np.uint32)
    for c in range(n_chunks):
        out[0] = part[c] if part[c] > out[0] else out[0]
    m = out.view(np.float32)[0]
    return m if m > np.float32(1e-12) else np.float32(1e-12)


@njit(parallel=True, cache=True, nogil=True)
def _fake_quantize_kernel(w, alpha, n, out):  # pragma: no cover - compiled
    """out = w + (alpha * q_k(w / alpha) - w), each operation in float32 as torch does it."""
    one = np.float32(1.0)
    two = np.float32(2.0)
    half = np.float32(0.5)
    for i in prange(w.size):
        x = w[i] / alpha
        x = -one if x < -one else (one if x > one else x)
        c = np.floor(n * (x + one) / two + half)
        wq = alpha * (two * (c / n - half))
        out[i] = w[i] + (wq - w[i])
