import dataclasses

import numpy as np
import pytest
import torch

from artifacts.chipimage import expand_crossbar, read_chip_image
from artifacts.errors import UserError
from artifacts.mesh import EAST, LOCAL, SOUTH, STEP, xy_tables
from compiler.compile import compile_checkpoint, parse_chips
from compiler.connect import HOST, connect, core_edges
from compiler.partition import holders, home_capacity, partition
from compiler.place import Grid, place
from compiler.route import route_all
from compiler.spec import load_spec
from tests.helpers import compile_in_memory, integer_model, random_layers, tiny_spec
from training.checkpoint import save_checkpoint
from training.models import ModelConfig, build_model


def test_partition_refuses_a_core_too_small_for_one_window():
    spec = tiny_spec()
    spec = dataclasses.replace(spec, core=dataclasses.replace(spec.core, axons=4))
    model = integer_model(random_layers(np.random.default_rng(0)), spec=spec)
    with pytest.raises(UserError, match="rule core-axons: layer conv1 needs at least 9 axons"):
        partition(model, spec)


def test_fan_in_split_partial_sums_equal_the_direct_computation():
    """The partial cores' crossbars, summed per home neuron, give exactly the full layer's
    integer current: checked directly on the crossbars, independent of the simulator."""
    rng = np.random.default_rng(3)
    spec = tiny_spec()
    layers = random_layers(rng, channels=(6, 12))
    model = integer_model(layers, spec=spec)
    cores, plans = partition(model, spec)
    li = 1  # conv2: split by fan-in
    assert plans[li].groups >= 2
    lay = model.layers[li]
    units = lay.units
    x = rng.integers(0, 5, size=int(np.prod(lay.in_shape)))        # merged spike counts
    from artifacts.intmath import conv3x3
    direct = conv3x3(x.reshape(1, *lay.in_shape), units).ravel()
    total = np.zeros_like(direct)
    for c in cores:
        if c.layer == li and c.role == "partial":
            xb = expand_crossbar("conv", lay.in_shape, lay.out_shape, units, c.neurons, c.axons)
            total[c.neurons] += x[c.axons] @ xb
    assert np.array_equal(total, direct)


@pytest.mark.parametrize("neurons", [32, 64])   # partial tiles within / beyond a home's 40 axons
def test_each_partial_core_feeds_one_home_core_and_plans_count_the_cores(neurons):
    spec = tiny_spec()
    spec = dataclasses.replace(spec, core=dataclasses.replace(spec.core, neurons=neurons))
    model = integer_model(random_layers(np.random.default_rng(3), channels=(6, 12)), spec=spec)
    cores, plans = partition(model, spec)
    for plan in plans:
        assert plan.cores == sum(1 for c in cores if c.layer == plan.layer)
    hold = holders(cores, model)[1]
    assert (hold >= 0).all()
    partials = [c for c in cores if c.layer == 1 and c.role == "partial"]
    cap = home_capacity(spec)
    assert partials and all(len(set(hold[c.neurons].tolist())) == -(-len(c.neurons) // cap)
                            for c in partials)
    homes = [c for c in cores if c.layer == 1 and c.role == "home"]
    assert all(len(c.neurons) <= home_capacity(spec) for c in homes)


def test_host_fed_conv_cores_hold_every_channel_of_a_window():
    spec = tiny_spec()
    layers = random_layers(np.random.default_rng(0))
    model = dataclasses.replace(integer_model(layers, spec=spec), input_path="host")
    cores, _ = partition(model, spec)
    c_out, h, w = model.layers[0].out_shape
    for c in (c for c in cores if c.layer == 0):
        ch, pix = np.divmod(c.neurons, h * w)
        assert c.role == "home" and len(c.neurons) == c_out * len(set(pix.tolist()))


def test_xy_paths_go_x_first():
    """One route from (0, 0) to (2, 1) on a 3x2 grid: east, east, then south, then deliver."""
    one = np.array([0])
    router, route, ports, load = xy_tables(one, one, np.array([0, 1]), np.array([2]), np.array([1]),
                                           np.array([5]), 3, 2)
    assert route.tolist() == [0, 0, 0, 0]
    assert list(zip(router.tolist(), ports.tolist(), strict=True)) == [
        (0, 1 << EAST), (1, 1 << EAST), (2, 1 << SOUTH), (5, 1 << LOCAL)]
    assert load.nonzero()[0].tolist() == [0 * 4 + EAST, 1 * 4 + EAST, 2 * 4 + SOUTH]
    assert set(load[load > 0].tolist()) == {5.0}


def tiny_routed(seed: int):
    """A random tiny network partitioned, connected and placed on a 2x2 board."""
    spec = tiny_spec()
    model = integer_model(random_layers(np.random.default_rng(seed)), spec=spec)
    cores, _ = partition(model, spec)
    spec = spec.with_board(2, 2)
    routes = connect(model, cores)
    return spec, cores, routes, core_edges(routes, cores)


def test_routing_tables_deliver_every_route_to_exactly_its_destinations():
    spec, cores, routes, edges = tiny_routed(4)
    placement = place(len(cores), edges, spec)
    grid = Grid(spec)
    tables = route_all(routes, placement, grid)
    table = {(int(r), int(q)): int(p) for r, q, p in
             zip(tables.table_router, tables.table_route, tables.table_ports, strict=True)}
    pos_core = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(placement.x, placement.y, strict=True))}
    for r in range(len(routes.src_core)):
        s = int(routes.src_core[r])
        start = (0, 0) if s == HOST else (int(placement.x[s]), int(placement.y[s]))
        reached, frontier = set(), [start]
        while frontier:   # follow the tables like a packet would
            x, y = frontier.pop()
            ports = table.get((y * grid.gx + x, r), 0)
            assert ports, f"route {r} dead-ends at router ({x},{y})"
            if ports & (1 << LOCAL):
                reached.add(pos_core[(x, y)])
            for p, (dx, dy) in STEP.items():
                if ports & (1 << p):
                    frontier.append((x + dx, y + dy))
        expected = set(routes.dst_core[routes.dst_ptr[r]:routes.dst_ptr[r + 1]].tolist())
        assert reached == expected


def test_placement_is_deterministic_and_beats_row_major():
    spec, cores, _, edges = tiny_routed(5)
    a, b = place(len(cores), edges, spec), place(len(cores), edges, spec)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert a.cost < a.row_major_cost
    slots = set(zip(a.x.tolist(), a.y.tolist(), strict=True))
    assert len(slots) == len(cores)  # one core per slot


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    out = {}
    for arch in ("vgg5", "vgg9"):
        torch.manual_seed(0)
        path = tmp_path_factory.mktemp(arch) / f"{arch}.pt"
        save_checkpoint(path, build_model(ModelConfig(arch=arch, weight_bits=4)), dataset={})
        out[arch] = path
    return out


@pytest.mark.parametrize("arch", ["vgg5", "vgg9"])
def test_vgg_compiles_to_a_readable_image(untrained, tmp_path, arch):
    out = tmp_path / f"{arch}.chip"
    summary = compile_checkpoint(untrained[arch], load_spec("pku-nc64c"), out, log=lambda _: None)
    meta, arrays = read_chip_image(out)
    assert summary["cores"] == len(arrays["core.layer"]) <= 64 * summary["chips"]
    assert summary["placement_cost"] < summary["row_major_cost"]
    assert meta["provenance"]["source_sha256"] and meta["model"]["layers"][0]["name"] == "conv1"
    assert any(p["groups"] > 1 for p in meta["plans"])   # fan-in splits were needed


def test_corrupted_or_truncated_image_is_refused(untrained, tmp_path):
    out = tmp_path / "m.chip"
    compile_checkpoint(untrained["vgg5"], load_spec("pku-nc64c"), out, log=lambda _: None)
    blob = bytearray(out.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    bad = tmp_path / "flipped.chip"
    bad.write_bytes(bytes(blob))
    with pytest.raises(UserError, match="fails its checksum"):
        read_chip_image(bad)
    bad.write_bytes(out.read_bytes()[:1000])
    with pytest.raises(UserError, match="fails its checksum"):
        read_chip_image(bad)
    bad.write_bytes(b"PK\x03\x04 a zip, not a chip image")
    with pytest.raises(UserError, match="bad magic"):
        read_chip_image(bad)


def test_fixed_board_too_small_is_refused(untrained, tmp_path):
    with pytest.raises(UserError, match="rule board-capacity"):
        compile_checkpoint(untrained["vgg5"], load_spec("pku-nc64c"), tmp_path / "x.chip",
                           chips=parse_chips("2"), log=lambda _: None)
    assert not (tmp_path / "x.chip").exists()


def test_parse_chips():
    assert parse_chips("auto") is None
    assert parse_chips("3x2") == (3, 2)
    assert parse_chips("9") == (3, 3)
    with pytest.raises(UserError, match="--chips"):
        parse_chips("many")


def test_in_memory_images_place_every_neuron_once_on_a_distinct_core_position():
    from artifacts.chipimage import ROLES

    rng = np.random.default_rng(6)
    spec = tiny_spec()
    model = integer_model(random_layers(rng), spec=spec)
    meta, arrays = compile_in_memory(model, spec)
    ptr, neurons = arrays["core.neuron_ptr"], arrays["core.neurons"]
    for li, layer in enumerate(meta["model"]["layers"]):
        held = [neurons[ptr[c]:ptr[c + 1]] for c in np.nonzero(arrays["core.layer"] == li)[0]
                if ROLES[arrays["core.role"][c]] != "partial"]
        # every neuron of the layer on exactly one core that computes it
        assert np.array_equal(np.sort(np.concatenate(held)), np.arange(np.prod(layer["out_shape"])))
    xy = np.stack([arrays["core.x"], arrays["core.y"]], 1)
    assert len(np.unique(xy, axis=0)) == len(xy)                     # one core per position
    assert (xy >= 0).all() and (xy[:, 0] < meta["board"]["grid_x"]).all()
    assert (xy[:, 1] < meta["board"]["grid_y"]).all()


def test_route_grouping_is_exact_even_when_signatures_collide():
    """Destination sets {0, 3} and {1, 2} get the same summed signature from these keys;
    the grouping must still give them different routes (and keep equal sets together)."""
    from compiler.connect import _group_routes

    keys = np.array([1, 2, 3, 4], dtype=np.uint64)          # 1 + 4 == 2 + 3
    src = np.array([0, 0, 1, 1, 2, 2])
    dst = np.array([0, 3, 1, 2, 3, 0])
    routes: list = []
    route_of = _group_routes(src, dst, np.zeros(3, dtype=np.int64), 3, routes, keys)
    assert route_of[0] == route_of[2] != route_of[1]
    assert sorted(r[1].tolist() for r in routes) == [[0, 3], [1, 2]]
    assert sorted(r[2] for r in routes) == [1, 2]
