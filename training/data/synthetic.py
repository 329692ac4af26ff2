"""An embedded, procedurally generated 10-class 32x32 RGB dataset for offline runs.

Each image shows one shape whose *kind* is the class. Everything else varies at random so that a
classifier has to learn shape, not a shortcut: foreground and background colour (with a minimum
contrast), a background gradient, position (+-4 px), scale, a small rotation, clutter rectangles
that may overlap the shape, and pixel noise. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("disc", "square", "triangle", "plus", "ring",
               "h-stripes", "v-stripes", "x-cross", "diamond", "frame")
SIZE = 32


def _shape_mask(kind: int, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of shape ``kind`` in centred, rotated coordinates (u right, v down)."""
    au, av = np.abs(u), np.abs(v)
    bar = max(1.5, r * 0.28)
    if kind == 0:  # disc
        return u * u + v * v <= r * r
    if kind == 1:  # filled square
        return (au <= r * 0.85) & (av <= r * 0.85)
    if kind == 2:  # triangle pointing up
        return (v <= r * 0.8) & (v >= -r) & (au <= (v + r) * 0.6)
    if kind == 3:  # plus
        return ((au <= bar) & (av <= r)) | ((av <= bar) & (au <= r))
    if kind == 4:  # ring
        d = np.sqrt(u * u + v * v)
        return (d <= r) & (d >= r * 0.55)
    if kind == 5:  # square patch of horizontal stripes
        return (au <= r) & (av <= r) & ((np.floor((v + r) / 2.5) % 2) == 0)
    if kind == 6:  # square patch of vertical stripes
        return (au <= r) & (av <= r) & ((np.floor((u + r) / 2.5) % 2) == 0)
    if kind == 7:  # diagonal cross
        return ((np.abs(u - v) <= bar) | (np.abs(u + v) <= bar)) & (au <= r) & (av <= r)
    if kind == 8:  # diamond
        return au + av <= r * 1.1
    if kind == 9:  # hollow square frame
        outer = (au <= r * 0.9) & (av <= r * 0.9)
        inner = (au <= r * 0.9 - bar) & (av <= r * 0.9 - bar)
        return outer & ~inner
    raise ValueError(kind)


def _contrasting_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    while True:
        fg, bg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if np.abs(fg - bg).mean() > 0.35:
            return fg, bg


def make_synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` images, uint8 (n, 3, 32, 32), and balanced int64 labels (n,)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % len(CLASS_NAMES)
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    out = np.empty((n, 3, SIZE, SIZE), dtype=np.uint8)
    for i, kind in enumerate(labels):
        fg, bg = _contrasting_colours(rng)
        # background: flat colour plus a gentle linear gradient in a random direction
        g = rng.uniform(-0.1, 0.1, 2)
        ramp = (g[0] * (xx / SIZE - 0.5) + g[1] * (yy / SIZE - 0.5))[None]
        img = bg[:, None, None] + ramp
        # clutter: small rectangles in random colours, drawn before the shape
        for _ in range(rng.integers(0, 3)):
            w, h = rng.integers(2, 5, 2)
            x0, y0 = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
            img[:, y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1, 3)[:, None, None]
        cx, cy = SIZE / 2 + rng.uniform(-4, 4, 2)
        r = rng.uniform(8.0, 11.0)
        a = rng.uniform(-0.17, 0.17)  # +-10 degrees keeps square and diamond distinct
        c, s = np.cos(a), np.sin(a)
        du, dv = xx - cx, yy - cy
        mask = _shape_mask(int(kind), c * du + s * dv, -s * du + c * dv, r)
        img = np.where(mask[None], fg[:, None, None], img)
        img = img + rng.normal(0, rng.uniform(0.02, 0.06), img.shape)
        out[i] = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return out, labels
