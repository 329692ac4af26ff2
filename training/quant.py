"""The k-bit weight quantizer of PAPERS.md eq. 13, and its use in quantization-aware training.

    q_k(x) = 2 * ( round((2^k - 1) * (x + 1) / 2) / (2^k - 1) - 1/2 ),   x in [-1, 1]

A layer's float weights W are mapped into [-1, 1] by their largest magnitude alpha = max|W|
(per layer), quantized, and scaled back: W_q = alpha * q_k(W / alpha). The 2^k levels are the
odd multiples of alpha / (2^k - 1), so the chip can store a k-bit code c in 0..2^k-1 and use
the integer weight 2c - (2^k - 1) with one per-layer scale alpha / (2^k - 1).

Rounding is half-up (floor(v + 0.5)) rather than torch's half-to-even, so that the compiler's
numpy integer model reproduces it exactly.
"""

from __future__ import annotations

import torch

MAX_BITS = 8


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
    alpha = layer_scale(w)
    wq = alpha * q_k(w / alpha, k)
    return w + (wq - w).detach()
