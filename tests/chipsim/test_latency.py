import numpy as np
import pytest

from chipsim.latency import LAT_BUCKETS, LAT_EXACT, bucket_floor, latency_bucket, new_latency, summary


@pytest.mark.parametrize("v", [0, 1, 2047, 2048, 2049, 4095, 4096, 123_457, (1 << 30) - 1])
def test_a_bucket_floor_is_within_a_thousandth_below_the_latency(v):
    b = latency_bucket(v)
    assert 0 <= b < LAT_BUCKETS
    floor = int(bucket_floor(np.array([b]))[0])
    assert floor <= v and (v - floor) <= v / 1024
    assert floor == v or v >= LAT_EXACT
    assert latency_bucket(floor) == b


def test_summary_takes_the_nearest_rank_p99_and_exact_mean_and_max():
    hist, acc = new_latency()
    values = np.concatenate([np.full(990, 5), np.full(9, 40), [70_000]])
    for v in values:
        hist[latency_bucket(int(v))] += 1
    acc[:] = [len(values), values.sum(), values.max()]
    s = summary(hist, acc)
    assert s["packets"] == 1000 and s["mean"] == pytest.approx(values.mean())
    assert s["p99"] == 5 and s["max"] == 70_000       # rank 990 of 1000 is still a 5
    assert summary(*new_latency())["p99"] is None
