import copy

import numpy as np

from chipsim.machine import machine_from_arrays
from chipsim.noc import LOCAL, mesh_links, new_state, new_stats, run_wave, stats_args, uniform_traffic
from chipsim.simulate import simulate_dataset
from tests.helpers import compile_in_memory, integer_model, random_images, random_layers, tiny_spec


def wave(table, routes, counts, src_router, n_dst, *, gx=4, gy=1, cx=4, cy=1, depth=4,
         chip_lat=1, hop=1, stages=0, credit=1, from_host=None, scan_all=False, full=False):
    """Cycles and (link flits, peaks, stalls) of one wave; ``full``: the whole stats dict."""
    n = gx * gy
    from_host = np.zeros(len(src_router), bool) if from_host is None else from_host
    nb, lat = mesh_links(gx, gy, cx, cy, hop, chip_lat)
    stats = new_stats(n)
    cyc = run_wave(1, stages, credit, nb, lat, table, np.asarray(routes, np.int64),
                   np.asarray(counts, np.int64), np.asarray(src_router, np.int64), from_host,
                   np.asarray(n_dst, np.int64),
                   *new_state(n, depth, max(hop, chip_lat) + stages, credit),
                   *stats_args(stats), 100_000, scan_all)
    return cyc, (stats if full else stats_args(stats)[:3])


def line_route(dsts, gx=4):
    """Port masks of a multicast route from router 0 east along a row to ``dsts``."""
    table = np.zeros((1, gx), np.uint8)
    for x in range(max(dsts)):
        table[0, x] |= 1 << 0          # east
    for d in dsts:
        table[0, d] |= 1 << LOCAL
    return table


def test_one_packet_takes_one_cycle_per_hop_plus_delivery():
    cyc, (flits, _, _) = wave(line_route([3]), [0], [1], [0], [1])
    assert cyc == 4 and flits.sum() == 3


def test_a_chip_boundary_adds_its_latency():
    # 4 routers in a row, chips of 2: the hop from x=1 to x=2 crosses chips (latency 8)
    cyc, _ = wave(line_route([3]), [0], [1], [0], [1], cx=2, chip_lat=8)
    assert cyc == 1 + 1 + 8 + 1


def test_multicast_forks_once_per_link_and_reaches_every_destination():
    cyc, (flits, _, _) = wave(line_route([1, 2, 3]), [0], [1], [0], [3])
    assert cyc == 4 and flits.sum() == 3   # one copy per link, not one per destination


def test_backpressure_drops_nothing_and_costs_cycles():
    cyc1, (_, peak1, stalls1) = wave(line_route([3]), [0], [50], [0], [1], depth=1)
    cyc64, (_, peak64, _) = wave(line_route([3]), [0], [50], [0], [1], depth=64)
    assert cyc1 >= 50 and cyc64 >= 50       # delivery is one packet per cycle at best
    assert peak1.max() <= 5 and stalls1.sum() > 0
    # a one-slot buffer waits a cycle for its credit after every packet: half the throughput
    # (measured 102 vs 53 cycles for 50 packets over 3 hops)
    assert cyc1 >= 2 * 50 > cyc64 and peak64.max() >= 2


def test_uniform_random_traffic_flows():
    res = uniform_traffic(4, 4, rate=0.05, cycles=5000)
    assert res["injected"] > 3000 and res["delivered"] >= res["injected"] - 50   # light load


def test_sleeping_routers_change_nothing_under_uniform_load():
    # visiting only the routers that can act must give exactly what visiting all of them gives,
    # at light load and past saturation (blocked routers sleep through many cycles there)
    for rate in (0.05, 0.6):
        lazy = uniform_traffic(6, 5, rate=rate, cycles=3000, depth=2, seed=3)
        full = uniform_traffic(6, 5, rate=rate, cycles=3000, depth=2, seed=3, scan_all=True)
        assert full["stalls"].sum() > 0 or rate < 0.1
        for key in ("injected", "delivered", "link_flits", "peak", "stalls"):
            assert np.array_equal(lazy[key], full[key]), (rate, key)


def test_sleeping_routers_change_nothing_on_a_multichip_multicast_wave():
    gx, gy = 6, 4
    rng = np.random.default_rng(5)
    n = gx * gy
    routes, counts, src, n_dst = [], [], [], []
    table = np.zeros((12, n), np.uint8)
    for r in range(12):                   # random multicast trees: XY from a source to 3 cores
        s, dsts = int(rng.integers(n)), rng.choice(n, 3, replace=False)
        for d in dsts:
            x, y = s % gx, s // gx
            while x != d % gx:
                table[r, y * gx + x] |= 1 << (0 if d % gx > x else 1)
                x += 1 if d % gx > x else -1
            while y != d // gx:
                table[r, y * gx + x] |= 1 << (2 if d // gx > y else 3)
                y += 1 if d // gx > y else -1
            table[r, d] |= 1 << LOCAL
        routes.append(r)
        counts.append(int(rng.integers(5, 40)))
        src.append(s)
        n_dst.append(3)
    kw = dict(gx=gx, gy=gy, cx=3, cy=2, depth=2, chip_lat=5)
    lazy = wave(table, routes, counts, src, n_dst, **kw)
    full = wave(table, routes, counts, src, n_dst, scan_all=True, **kw)
    assert lazy[0] == full[0] > 0
    for a, b in zip(lazy[1], full[1], strict=True):
        assert np.array_equal(a, b)


def test_buffer_depth_changes_cycles_never_spikes():
    rng = np.random.default_rng(7)
    spec = tiny_spec()
    model = integer_model(random_layers(rng, theta=(0.3, 0.5)), spec=spec)
    meta, arrays = compile_in_memory(model, spec)
    images = random_images(rng, 4)
    labels = np.zeros(4, np.int64)
    results = []
    for depth in (1, 64):
        m = copy.deepcopy(meta)
        m["spec"]["noc"]["buffer_depth"] = depth
        results.append(simulate_dataset(machine_from_arrays(m, arrays), images, labels,
                                        arrays=arrays, progress=False))
    shallow, deep = results
    assert shallow["predictions"] == deep["predictions"]
    assert [c["spikes_out"] for c in shallow["cores"]] == [c["spikes_out"] for c in deep["cores"]]
    assert shallow["cycles_per_step"] > deep["cycles_per_step"]
    assert sum(l["flits"] for l in shallow["links"]) == sum(l["flits"] for l in deep["links"])


def test_packet_latency_counts_hops_and_router_stages():
    # 3 hops east: a 1-cycle router delivers in cycle 3; with 2 extra cycles at the head of
    # every buffer on the way (4 routers) and 1-cycle links, in 4 * 2 + 3 * 1 = 11
    for stages, expect in ((0, 3), (2, 11)):
        cyc, stats = wave(line_route([3]), [0], [1], [0], [1], stages=stages, full=True)
        assert cyc == expect + 1
        assert list(stats["latency"]) == [1, expect, expect]      # count, sum, max
        assert stats["latency_hist"][expect] == 1


def test_router_stages_limit_each_input_to_one_packet_per_stages_plus_one_cycles():
    # the stages run at the head of a buffer, one packet at a time (BookSim2's single-VC
    # router): 40 packets through the same inputs take about 40 * (1 + stages) cycles
    for stages in (0, 2):
        cyc, _ = wave(line_route([3]), [0], [40], [0], [1], stages=stages, depth=8)
        assert 40 * (1 + stages) <= cyc <= 40 * (1 + stages) + 12, (stages, cyc)


def test_credit_delay_slows_a_shallow_buffer():
    # one-slot buffers: a slot freed in cycle c is refilled from c + credit, the packet ready
    # a cycle later, so one packet per credit + 1 cycles (credit 1: the half rate above)
    for credit in (1, 3):
        cyc, _ = wave(line_route([3]), [0], [50], [0], [1], depth=1, credit=credit)
        assert 50 * (credit + 1) <= cyc <= 50 * (credit + 1) + 10, (credit, cyc)


def test_sleeping_routers_change_nothing_with_a_pipelined_router_and_slow_credits():
    for rate in (0.05, 0.4):
        kw = dict(rate=rate, cycles=2000, depth=2, seed=4, hop_cycles=2, router_cycles=2,
                  credit_cycles=3)
        lazy, full = uniform_traffic(6, 5, **kw), uniform_traffic(6, 5, scan_all=True, **kw)
        for key in ("injected", "delivered", "link_flits", "peak", "stalls", "latency_hist",
                    "latency"):
            assert np.array_equal(lazy[key], full[key]), (rate, key)


def test_zero_load_latency_is_the_mean_hop_count():
    # a 1-cycle router at 1% load: latency from creation = hops (no queueing to speak of);
    # the mean distance between two different nodes of an 8x8 mesh is 2 * 21/8 * 64/63
    res = uniform_traffic(8, 8, rate=0.01, cycles=4000, warmup=500, drain=500, seed=2)
    count, total, _ = res["latency"]
    assert count == res["window_created"] > 2000
    assert abs(total / count - 2 * 21 / 8 * 64 / 63) < 0.15
    assert abs(res["accepted"] - 0.01) < 0.002


def test_the_latency_throughput_sweep_saturates_where_the_router_allows():
    # the default 1-cycle router saturates near 0.35 flits/node/cycle on an 8x8 mesh; the
    # BookSim2-like single-VC setting serves one packet per 3 cycles per input: far lower
    from spikemesh.bench.noc_curve import CONFIGS, curve, saturation

    rates = [0.05, 0.2, 0.45]
    default, booksim = (curve(cfg, rates, warmup=300, cycles=1500, drain=600)
                        for cfg in CONFIGS.values())
    assert 0.3 < saturation(default) < 0.4 and 0.1 < saturation(booksim) < 0.2
    assert default[0]["stable"] and not default[2]["stable"] and not booksim[1]["stable"]
    assert 5 < default[0]["mean_latency"] < 6.5 < 20 < booksim[0]["mean_latency"] < 30
