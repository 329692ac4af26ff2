"""The host side of the chip's input protocol: the integer events an image becomes at each step.

Shared by the integer reference (compiler) and the simulator (chipsim), so both feed the chip
the same events; numpy only.

direct  : graded events carrying the 8-bit pixel p (the chip folds normalization into gains),
          or, on the "host" input path, conv1's input currents computed by the host.
rate    : 1 with probability p/255 (one uniform draw per pixel per step, batch-major order).
phase   : 2^(7-k) if bit (7-k) of p is set, k = t mod 8 (denominator 256 in the first layer).
latency : 1 at step floor((255 - p) T / 255) for p > 0.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# the largest event value one input pixel can send in one step, per encoding
MAX_INPUT_EVENT = {"direct": 255, "rate": 1, "phase": 128, "latency": 1}


def encode_step(images: np.ndarray, encoding: str, t: int, timesteps: int,
                rng: np.random.Generator | None) -> np.ndarray:
    """Events at step ``t`` for uint8 images (B, C, H, W), as int64 of the same shape."""
    p = images.astype(np.int64)
    if encoding == "direct":
        return p
    if encoding == "rate":
        if rng is None:
            raise ValueError("rate encoding needs a random generator")
        return (rng.random(p.shape) * 255.0 < p).astype(np.int64)
    if encoding == "phase":
        k = t % 8
        return ((p >> (7 - k)) & 1) << (7 - k)
    if encoding == "latency":
        fire_at = np.minimum(timesteps - 1, ((255 - p) * timesteps) // 255)
        return ((fire_at == t) & (p > 0)).astype(np.int64)
    raise ValueError(f"unknown encoding {encoding!r}")


def host_currents(images: np.ndarray, units: np.ndarray, weight_shift: int, mean, std) -> np.ndarray:
    """Host input path: conv1 currents round(2^f * conv(normalized x, W_units)), (B, O, H, W)."""
    x = images.astype(np.float64) / 255.0
    m = np.asarray(mean, dtype=np.float64).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float64).reshape(1, -1, 1, 1)
    xp = np.pad((x - m) / s, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))
    cur = np.tensordot(win, units.astype(np.float64), axes=([1, 4, 5], [1, 2, 3]))
    return np.rint(cur.transpose(0, 3, 1, 2) * (1 << weight_shift)).astype(np.int64)
