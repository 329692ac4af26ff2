"""Heat maps of per-core counters on the board's core grid, and link load drawn on the mesh
(matplotlib, headless). Chips are outlined; each used core carries its layer's letter."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")          # headless: no display needed, before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.textpath import TextPath  # noqa: E402
from matplotlib.transforms import Affine2D  # noqa: E402


def _frame(ax, grid_x: int, grid_y: int, cores_x: int, cores_y: int) -> None:
    for cx in range(0, grid_x + 1, cores_x):
        ax.axvline(cx - 0.5, color="black", lw=1.2)
    for cy in range(0, grid_y + 1, cores_y):
        ax.axhline(cy - 0.5, color="black", lw=1.2)
    ax.set_xlim(-0.5, grid_x - 0.5)
    ax.set_ylim(grid_y - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])


def core_map(path: Path, values: dict[tuple[int, int], float], letters: dict[tuple[int, int], str],
             grid: tuple[int, int], chip: tuple[int, int], title: str, unit: str,
             diverging: bool = False) -> None:
    """One PNG: ``values`` per (x, y) core, free routers blank; ``diverging`` centres the
    colour scale on zero (for differences)."""
    gx, gy = grid
    img = np.full((gy, gx), np.nan)
    for (x, y), v in values.items():
        img[y, x] = v
    fig, ax = plt.subplots(figsize=(1.6 + 0.32 * gx, 1.0 + 0.32 * gy), dpi=100)
    if diverging:
        lim = max(float(np.nanmax(np.abs(img))) if np.isfinite(img).any() else 1.0, 1e-12)
        im = ax.imshow(img, cmap="coolwarm", norm=TwoSlopeNorm(0.0, -lim, lim))
    else:
        im = ax.imshow(img, cmap="viridis")
    _letters(ax, letters, max(4.0, min(8.0, 180.0 / max(gx, gy))))
    _frame(ax, gx, gy, *chip)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=unit)
    _save(fig, path)


def _letters(ax, letters: dict[tuple[int, int], str], size: float) -> None:
    """Each core's letter at ``size`` points, one collection of glyph outlines per letter: a
    Text artist per core (576 on a 3x3 board) made drawing a map take ~0.8 s. Glyphs keep
    their font proportions (a partial-sum core's lower-case c stays smaller than a C),
    centred on the cell by the capital height."""
    by_letter: dict[str, list[tuple[int, int]]] = {}
    for xy, letter in letters.items():
        by_letter.setdefault(letter, []).append(xy)
    cap = TextPath((0, 0), "A", size=size).get_extents()
    points_to_pixels = Affine2D().scale(ax.figure.dpi / 72.0)
    for letter, cells in by_letter.items():
        glyph = TextPath((0, 0), letter, size=size)
        ext = glyph.get_extents()
        glyph = glyph.transformed(Affine2D().translate(-(ext.x0 + ext.x1) / 2, -cap.height / 2))
        ax.add_collection(PathCollection([glyph], offsets=np.asarray(cells, dtype=float),
                                         offset_transform=ax.transData,
                                         transform=points_to_pixels, facecolors="white",
                                         edgecolors="none"))


def _save(fig, path: Path) -> None:
    """Write the PNG with a fixed layout: tight_layout drew the whole figure a second time."""
    fig.subplots_adjust(left=0.02, right=0.88, bottom=0.02, top=0.94)
    fig.savefig(path)
    plt.close(fig)


def link_map(path: Path, links: list[tuple[tuple[int, int], tuple[int, int], float]],
             grid: tuple[int, int], chip: tuple[int, int], title: str, unit: str) -> None:
    """One PNG: each directed link as a segment between router centres, coloured by its load
    (the two directions of a link side by side)."""
    gx, gy = grid
    fig, ax = plt.subplots(figsize=(1.6 + 0.32 * gx, 1.0 + 0.32 * gy), dpi=100)
    segments, loads = [], []
    for (x0, y0), (x1, y1), load in links:
        off = 0.12 if (x1 > x0 or y1 > y0) else -0.12    # the two directions apart
        if x0 == x1:
            segments.append([(x0 + off, y0), (x1 + off, y1)])
        else:
            segments.append([(x0, y0 + off), (x1, y1 + off)])
        loads.append(load)
    ax.scatter(*np.meshgrid(np.arange(gx), np.arange(gy)), s=2, color="grey")
    if segments:
        lc = LineCollection(segments, cmap="inferno_r", linewidths=2.0)
        lc.set_array(np.asarray(loads, dtype=float))
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, fraction=0.046, pad=0.04, label=unit)
    _frame(ax, gx, gy, *chip)
    ax.set_title(title, fontsize=10)
    _save(fig, path)
