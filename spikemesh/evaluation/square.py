"""Square Attack (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020), L-inf, on 8-bit images.

A score-based black-box attack: it needs only the attacked level's output scores, so it runs
against the chip simulator's output accumulators as readily as against a torch model. Each
iteration proposes, for every image not yet misclassified, one random square window whose
pixels move to x +- eps (one sign per channel), and keeps the proposal when it lowers the margin
loss z_y - max_{j != y} z_j. The proposals of all still-correct images go to the level as one
batch: one chip run per iteration, not one per image.

The square's side follows the paper's schedule: a fraction p of the image's pixels, halved at
fixed points of the query budget (rescaled from the paper's 10,000 queries to the budget given).
Everything stays on the 8-bit grid: eps is whole grey levels and the clean image is uint8.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# (fraction of a 10,000-query budget, divisor of p_init) from the paper's schedule
P_SCHEDULE = ((0.001, 2), (0.005, 4), (0.02, 8), (0.05, 16), (0.1, 32), (0.2, 64), (0.4, 128),
              (0.6, 256), (0.8, 512))

Scores = Callable[[np.ndarray], np.ndarray]      # uint8 (B, C, H, W) -> float (B, classes)


@dataclass
class SquareResult:
    adversarial: np.ndarray      # uint8, the best image found per input
    queries: np.ndarray          # int64 per input: queries spent (0 for the already wrong)
    attacked: np.ndarray         # bool per input: classified correctly when clean
    fooled: np.ndarray           # bool per input: misclassified at the end
    seconds: float               # wall-clock of the whole attack
    score_seconds: float         # of which inside the level's score function
    images_scored: int           # images sent to the level, clean scoring included


def margins(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """z_y - max_{j != y} z_j per row; <= 0 means another class ties or wins."""
    idx = np.arange(len(labels))
    true = scores[idx, labels]
    other = scores.copy()
    other[idx, labels] = -np.inf
    return true - other.max(axis=1)


def fooled_by(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The level's own decision: argmax (first on ties) differs from the label."""
    return scores.argmax(axis=1) != labels


def square_fraction(p_init: float, query: int, budget: int) -> float:
    """p at this query: p_init halved at the schedule's points of the budget."""
    frac = query / max(budget, 1)
    divisor = 1
    for point, div in P_SCHEDULE:
        if frac > point:
            divisor = div
    return p_init / divisor


def square_attack(scores: Scores, images: np.ndarray, labels: np.ndarray, eps: int, *,
                  queries: int, rng: np.random.Generator, p_init: float = 0.05) -> SquareResult:
    """Attack uint8 ``images`` within L-inf ``eps`` grey levels with at most ``queries`` score
    queries per image. The clean images are scored first (not counted as a query, as in the
    paper); those already misclassified are not attacked. The first query scores the initial
    vertical stripes."""
    if queries < 1:
        raise ValueError("the query budget must be at least 1")
    t0 = time.perf_counter()
    inside = [0.0]
    level_scores = scores

    def scores(batch: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        z = level_scores(batch)
        inside[0] += time.perf_counter() - t
        return z
    n, c, h, w = images.shape
    x0 = images.astype(np.int16)
    lo, hi = np.clip(x0 - eps, 0, 255), np.clip(x0 + eps, 0, 255)
    attacked = ~fooled_by(scores(images), labels)
    scored = n
    x = x0.copy()
    loss = np.full(n, -np.inf)
    done = ~attacked
    used = np.zeros(n, dtype=np.int64)
    idx = np.nonzero(attacked)[0]
    if len(idx) and eps > 0:
        # init: vertical stripes, one sign per image, channel and column (the paper's init)
        stripes = rng.choice(np.array([-1, 1], np.int16), size=(len(idx), c, 1, w))
        x[idx] = np.clip(x0[idx] + eps * stripes, lo[idx], hi[idx])
        z = scores(x[idx].astype(np.uint8))
        scored += len(idx)
        used[idx] = 1
        loss[idx] = margins(z, labels[idx])
        done[idx] = fooled_by(z, labels[idx])
    rows, cols = np.arange(h), np.arange(w)
    for q in range(1, queries):
        active = np.nonzero(~done)[0]
        if len(active) == 0 or eps == 0:
            break
        side = int(round(math.sqrt(square_fraction(p_init, q, queries) * h * w)))
        side = min(max(side, 1), h - 1 if h > 1 else 1)
        a = len(active)
        r = rng.integers(0, h - side + 1, size=a)
        s = rng.integers(0, w - side + 1, size=a)
        window = (((rows[None] >= r[:, None]) & (rows[None] < r[:, None] + side))[:, :, None]
                  & ((cols[None] >= s[:, None]) & (cols[None] < s[:, None] + side))[:, None, :])
        proposal = _propose(x0[active], x[active], lo[active], hi[active], window, eps, rng)
        z = scores(proposal.astype(np.uint8))
        scored += a
        used[active] += 1
        new_loss = margins(z, labels[active])
        better = new_loss < loss[active]
        keep = active[better]
        x[keep] = proposal[better]
        loss[keep] = new_loss[better]
        done[active] |= fooled_by(z, labels[active]) & better
    return SquareResult(x.astype(np.uint8), used, attacked, attacked & done,
                        time.perf_counter() - t0, inside[0], scored)


def _propose(x0, x, lo, hi, window, eps, rng, tries: int = 10) -> np.ndarray:
    """x with each image's window moved to x0 +- eps (a sign per channel). Where that would not
    change the image (the window already holds those values), new signs are drawn, up to
    ``tries`` times, as the paper does: a query on an unchanged image is wasted."""
    a, c = x.shape[:2]
    signs = rng.choice(np.array([-1, 1], np.int16), size=(a, c, 1, 1))
    proposal = np.where(window[:, None], np.clip(x0 + eps * signs, lo, hi), x)
    for _ in range(tries):
        same = (proposal == x).reshape(a, -1).all(axis=1)
        if not same.any():
            break
        k = np.nonzero(same)[0]
        signs = rng.choice(np.array([-1, 1], np.int16), size=(len(k), c, 1, 1))
        proposal[k] = np.where(window[k][:, None], np.clip(x0[k] + eps * signs, lo[k], hi[k]),
                               x[k])
    return proposal
