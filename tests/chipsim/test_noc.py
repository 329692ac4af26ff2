import copy

import numpy as np

from chipsim.machine import machine_from_arrays
from chipsim.noc import LOCAL, run_uniform, run_wave, unicast_table
from chipsim.run import simulate_dataset
from tests.helpers import compile_in_memory, integer_model, random_images, random_layers, tiny_spec


def wave(table, routes, counts, src_router, n_dst, *, gx=4, gy=1, cx=4, cy=1, depth=4,
         chip_lat=1, from_host=None):
    n = gx * gy
    from_host = np.zeros(len(src_router), bool) if from_host is None else from_host
    stats = (np.zeros(n * 4, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64))
    cyc = run_wave(gx, gy, cx, cy, depth, 1, 1, chip_lat, table, np.asarray(routes, np.int64),
                   np.asarray(counts, np.int64), np.asarray(src_router, np.int64), from_host,
                   np.asarray(n_dst, np.int64), np.zeros((n, 5, depth), np.int64),
                   np.zeros((n, 5, depth), np.uint8), np.zeros((n, 5, depth), np.int64),
                   np.zeros((n, 5), np.int64), np.zeros((n, 5), np.int64), *stats,
                   np.zeros(n, np.int64), 100_000)
    return cyc, stats


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


def test_uniform_random_traffic_flows():
    table = unicast_table(4, 4)
    stats = (np.zeros(64, np.int64), np.zeros(16, np.int64), np.zeros(16, np.int64))
    injected, delivered = run_uniform(4, 4, 4, 1, table, 0.05, 5000, 0, *stats)
    assert injected > 3000 and delivered >= injected - 50   # light load: almost nothing queued


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
