"""The host side of the chip's input protocol: the integer events an image becomes at each step.

Shared by the integer reference (compiler), the simulator (chipsim) and, for the 8-bit grid
and the encodings' integer rules, training; numpy only. The arithmetic is ``artifacts.intmath``.

direct  : graded events carrying the 8-bit pixel p (the chip folds normalization into gains),
          or, on the "host" input path, conv1's input currents computed by the host.
rate    : 1 with probability p/255 (one uniform draw per pixel per step, batch-major order).
phase   : 2^(7-k) if bit (7-k) of p is set, k = t mod 8 (denominator 256 in the first layer).
latency : 1 at step (255 - p) T // 255 for p > 0.
"""

from __future__ import annotations

import numpy as np

from artifacts import intmath
from artifacts.intmath import MAX_INPUT_EVENT

__all__ = ["MAX_INPUT_EVENT", "encode_step", "host_currents"]


def encode_step(images: np.ndarray, encoding: str, t: int, timesteps: int,
                rng: np.random.Generator | None) -> np.ndarray:
    """Events at step ``t`` for uint8 images (B, C, H, W), as int64 of the same shape."""
    p = images.astype(np.int64)
    if encoding == "direct":
        return p
    if encoding == "rate":
        if rng is None:
            raise ValueError("rate encoding needs a random generator")
        return (rng.random(p.shape) * float(intmath.PIXEL_LEVELS) < p).astype(np.int64)
    if encoding == "phase":
        return intmath.phase_event(p, t)
    if encoding == "latency":
        return ((intmath.latency_fire_step(p, timesteps) == t) & (p > 0)).astype(np.int64)
    raise ValueError(f"unknown encoding {encoding!r}")


def host_currents(images: np.ndarray, units: np.ndarray, weight_shift: int, mean, std) -> np.ndarray:
    """Host input path: conv1 currents round(2^f * conv(normalized x, W_units)), (B, O, H, W)."""
    x = images.astype(np.float64) / intmath.PIXEL_LEVELS
    m = np.asarray(mean, dtype=np.float64).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float64).reshape(1, -1, 1, 1)
    cur = intmath.conv3x3((x - m) / s, units.astype(np.float64))
    return np.rint(cur * (1 << weight_shift)).astype(np.int64)
