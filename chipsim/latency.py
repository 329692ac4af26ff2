"""Packet latency histograms of the NoC model, HdrHistogram-style.

A latency below LAT_EXACT cycles has a bucket of its own; above, every power of two is split
into LAT_SUB buckets, so a bucket's floor is within 0.1% of every latency in it. A wave lasts
at most 2^30 cycles (artifacts.mesh.MAX_WAVE_CYCLES), so LAT_BUCKETS cover every latency the
model can produce in 22,528 counters: the p99 of millions of packets without keeping them.
"""

from __future__ import annotations

import numpy as np

from chipsim.jit import njit

LAT_EXACT, LAT_SUB = 2048, 1024
_EXACT_BITS = 11                            # LAT_EXACT == 1 << _EXACT_BITS
LAT_BUCKETS = LAT_EXACT + 20 * LAT_SUB
# the accumulator kept beside a histogram: packets delivered, their summed latency, the largest
LAT_COUNT, LAT_SUM, LAT_MAX = 0, 1, 2


@njit(nogil=True, inline="always")
def latency_bucket(v):
    if v < LAT_EXACT:
        return v
    e = 0
    t = v >> _EXACT_BITS
    while t:
        t >>= 1
        e += 1
    return LAT_EXACT + (e - 1) * LAT_SUB + (v >> e) - LAT_SUB


def bucket_floor(bucket: np.ndarray) -> np.ndarray:
    """The smallest latency that falls in each bucket (the latency itself below LAT_EXACT)."""
    b = np.asarray(bucket, dtype=np.int64)
    e = np.maximum((b - LAT_EXACT) // LAT_SUB + 1, 0)
    return np.where(b < LAT_EXACT, b, (LAT_SUB + (b - LAT_EXACT) % LAT_SUB) << e)


def new_latency() -> tuple[np.ndarray, np.ndarray]:
    """An empty histogram and its accumulator (count, sum, max)."""
    return np.zeros(LAT_BUCKETS, dtype=np.int64), np.zeros(3, dtype=np.int64)


def merge(hist: np.ndarray, acc: np.ndarray, more_hist: np.ndarray, more_acc: np.ndarray) -> None:
    hist += more_hist
    acc[LAT_COUNT] += more_acc[LAT_COUNT]
    acc[LAT_SUM] += more_acc[LAT_SUM]
    acc[LAT_MAX] = max(acc[LAT_MAX], more_acc[LAT_MAX])


def summary(hist: np.ndarray, acc: np.ndarray) -> dict[str, float | int | None]:
    """Packets, mean, p99 and max latency in cycles. The p99 (nearest rank) is the floor of the
    bucket that holds it: exact below LAT_EXACT cycles, within 0.1% above. Mean and max are
    exact. None where no packet was delivered."""
    count = int(acc[LAT_COUNT])
    if count == 0:
        return {"packets": 0, "mean": None, "p99": None, "max": None}
    rank = int(np.ceil(0.99 * count))
    bucket = int(np.searchsorted(np.cumsum(hist), rank))
    return {"packets": count, "mean": float(acc[LAT_SUM]) / count,
            "p99": int(bucket_floor(np.array([bucket]))[0]), "max": int(acc[LAT_MAX])}
