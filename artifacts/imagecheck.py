"""Validate a whole chip image before any native kernel touches it.

A checksum proves a file is the one written, not that its contents make sense: an image edited
and re-checksummed (or written by a buggy tool) could send the simulator's Numba kernels past
the end of an array, or run with exit 0 and wrong cycles, energy or accuracy. ``validate_image``
checks, in order, and names the first problem in one sentence:

1. the self-description: every field typed and within ``artifacts.limits``; layer shapes
   chained; thresholds within the threshold register, leaks, shifts, bits; the class count
   equal to the output layer's neurons; the board equal to the spec's mesh times its chips;
2. every array: present, integer, one-dimensional where it should be, of its length; pointer
   arrays starting at 0, monotone and ending at their array's length; every id in range; weight
   codes below 2^k;
3. the mapping: cores on distinct routers of the grid; each core's neurons and axons sorted,
   distinct and inside its layer; every neuron run by exactly one neuron or home core; home
   cores fed by partial cores; every synapse of every layer held by exactly one core;
4. the routes: each source's route reaches exactly the cores that read it, starts at the core
   that holds it, and counts its sources; the routing tables and link loads equal the XY
   multicast trees (``artifacts.mesh.xy_tables``).

It is numpy only and costs ~0.2 s for a VGG5 image. ``read_chip_image`` runs it on every image
it reads, and ``chipsim.machine_from_arrays`` on in-memory images.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from artifacts import limits
from artifacts.chipimage import (
    IMAGE_FORMAT,
    IMAGE_VERSION,
    ROLE_HOME,
    ROLE_NEURON,
    ROLE_PARTIAL,
    ROLES,
    merged_sources,
)
from artifacts.errors import UserError
from artifacts.intmath import PHASE_DENOM, POOL_DENOM
from artifacts.layers import ENCODINGS, KINDS, RESETS
from artifacts.mesh import xy_tables

INPUT_PATHS = ("graded", "host")
HOST = -1                                   # route.src of the host's input routes


class _Bad(Exception):
    """One problem found; becomes the UserError's sentence."""


def _need(cond: Any, what: str) -> None:
    if not cond:
        raise _Bad(what)


def validate_image(meta: Any, arrays: dict[str, np.ndarray], where: str = "chip image") -> None:
    """Raise UserError naming the first inconsistency of a chip image; return if it is whole."""
    try:
        model = _check_meta(meta)
        _check_arrays(meta, model, arrays)
    except _Bad as exc:
        raise UserError(f"{where} is inconsistent: {exc}; the image is damaged or was edited, "
                        "recompile it with `spikemesh compile`") from None


# -- 1. the self-description ----------------------------------------------------------------
def _int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _dict(d: Any, what: str) -> dict[str, Any]:
    _need(isinstance(d, dict), f"{what} is not a mapping")
    return d


def _shape(v: Any, what: str) -> tuple[int, ...]:
    _need(isinstance(v, list) and len(v) in (1, 3) and all(_int(d, 1, limits.MAX_DIM) for d in v)
          and math.prod(v) <= limits.MAX_LAYER_NEURONS, f"{what} {v!r} is not a valid shape")
    return tuple(v)


def _check_spec(spec: dict[str, Any]) -> None:
    for key, (lo, hi) in limits.SPEC_BOUNDS.items():
        group, name = key.split(".")
        v = _dict(spec.get(group), f"spec.{group}").get(name)
        ok = (_num(v) and lo <= v <= hi) if isinstance(lo, float) else _int(v, int(lo), int(hi))
        _need(ok, f"spec.{key} is {v!r}, outside {lo}..{hi}")
    a = spec["arithmetic"]
    _need(a["threshold_bits"] < a["membrane_bits"], "spec.arithmetic.threshold_bits is not below "
          "membrane_bits")
    _need(isinstance(spec.get("name"), str), "spec.name is not text")


def _check_meta(meta: Any) -> dict[str, Any]:
    meta = _dict(meta, "the self-description")
    _need(meta.get("format") == IMAGE_FORMAT and _int(meta.get("format_version"), IMAGE_VERSION,
                                                      IMAGE_VERSION),
          f"format {meta.get('format')!r} version {meta.get('format_version')!r} is not "
          f"{IMAGE_FORMAT!r} version {IMAGE_VERSION}")
    spec = _dict(meta.get("spec"), "spec")
    _check_spec(spec)
    board = _dict(meta.get("board"), "board")
    cx, cy = spec["mesh"]["cores_x"], spec["mesh"]["cores_y"]
    _need(all(_int(board.get(k), 1, limits.MAX_ROUTERS) for k in ("chips_x", "chips_y", "grid_x", "grid_y"))
          and board.get("chips_x") == spec["board"]["chips_x"]
          and board.get("chips_y") == spec["board"]["chips_y"]
          and board.get("grid_x") == cx * board["chips_x"]
          and board.get("grid_y") == cy * board["chips_y"],
          "board does not match the spec's mesh and chips")
    _need(board["grid_x"] * board["grid_y"] <= limits.MAX_ROUTERS,
          f"the board has more than {limits.MAX_ROUTERS:,} routers")
    _need(_num(meta.get("host_load")) and meta["host_load"] >= 0, "host_load is not a count")
    m = _dict(meta.get("model"), "model")
    arith = spec["arithmetic"]
    _need(_int(m.get("timesteps"), 1, limits.MAX_TIMESTEPS),
          f"timesteps {m.get('timesteps')!r} is outside 1..{limits.MAX_TIMESTEPS}")
    _need(m.get("encoding") in ENCODINGS, f"encoding {m.get('encoding')!r} is unknown")
    _need(m.get("input_path") in INPUT_PATHS and m["input_path"] == arith["input_path"],
          f"input_path {m.get('input_path')!r} is unknown or differs from the spec's")
    _need(m.get("membrane_bits") == arith["membrane_bits"],
          "model.membrane_bits differs from the spec's")
    raw = m.get("layers")
    _need(isinstance(raw, list) and 2 <= len(raw) <= 64, "model.layers is not a list of 2..64 layers")
    layers = []
    prev: tuple[int, ...] | None = None
    for i, l in enumerate(raw):
        l = _dict(l, f"layer {i}")
        here = f"layer {i}"
        _need(isinstance(l.get("name"), str), f"{here} has no name")
        kind = l.get("kind")
        _need(kind in KINDS and (kind == "out") == (i == len(raw) - 1),
              f"{here} has kind {kind!r} (conv or fc, and 'out' last)")
        ins, outs = _shape(l.get("in_shape"), f"{here} in_shape"), _shape(l.get("out_shape"),
                                                                         f"{here} out_shape")
        pooled = l.get("pooled_input")
        _need(isinstance(pooled, bool) and not (pooled and i == 0), f"{here} has a bad pooled_input")
        if prev is not None:
            src = prev
            if pooled:
                _need(len(src) == 3 and src[1] % 2 == 0 and src[2] % 2 == 0,
                      f"{here} pools an input of shape {src}")
                src = (src[0], src[1] // 2, src[2] // 2)
            _need(ins == src if kind == "conv" else ins == (math.prod(src),),
                  f"{here} in_shape {ins} does not follow from its input {src}")
        if kind == "conv":
            _need(len(ins) == 3 and len(outs) == 3 and ins[1:] == outs[1:],
                  f"{here} is a convolution of shape {ins} -> {outs}")
        else:
            _need(len(ins) == 1 and len(outs) == 1, f"{here} is not flat")
        k = l.get("weight_bits")
        _need(_int(k, 1, arith["max_weight_bits"]), f"{here} has weight_bits {k!r}")
        _need(_int(l.get("weight_shift"), 0, limits.MAX_WEIGHT_SHIFT), f"{here} has a bad weight_shift")
        denom = (PHASE_DENOM if i == 0 and m["encoding"] == "phase" else POOL_DENOM if pooled else 1)
        _need(_int(l.get("in_denominator"), denom, denom),
              f"{here} has in_denominator {l.get('in_denominator')!r}, not {denom}")
        top = (1 << arith["threshold_bits"]) - 1
        theta = l.get("threshold")
        if kind == "out":
            _need(theta == 0, f"{here} (the output layer) has threshold {theta!r}, not 0")
        else:
            _need(_int(theta, 1, top), f"{here} has threshold {theta!r}, outside 1..{top}")
        shift, mult = l.get("leak_shift"), l.get("leak_multiplier")
        _need(_int(shift, 0, 62) and _int(mult, 1, 1 << 16) and mult <= 1 << shift
              and (kind != "out" or (shift, mult) == (0, 1)),
              f"{here} has leak {mult}/2^{shift}, not in (0, 1] (1 for the output layer)")
        _need(l.get("reset") in RESETS, f"{here} has reset {l.get('reset')!r}")
        _need(_num(l.get("scale")) and l["scale"] > 0, f"{here} has a scale that is not positive")
        layers.append({"kind": kind, "in": ins, "out": outs, "pooled": pooled, "bits": k})
        prev = outs
    _need(_int(m.get("num_classes"), 1, limits.MAX_DIM) and (m["num_classes"],) == layers[-1]["out"],
          f"num_classes {m.get('num_classes')!r} is not the output layer's {layers[-1]['out'][0]} "
          "neurons")
    _need(len(layers[0]["in"]) == 3, "the input is not an image")
    for key in ("mean", "std"):
        v = m.get(key)
        _need(isinstance(v, list) and len(v) == layers[0]["in"][0] and all(map(_num, v)),
              f"model.{key} is not one finite number per input channel")
    _need(all(s > 0 for s in m["std"]), "model.std holds a value <= 0")
    names = m.get("class_names")
    _need(isinstance(names, list) and len(names) in (0, m["num_classes"])
          and all(isinstance(n, str) for n in names), "model.class_names is not one name per class")
    _need(len({l["name"] for l in raw}) == len(raw), "two layers share a name")
    _check_records(meta, raw)
    return {"layers": layers, "timesteps": m["timesteps"], "encoding": m["encoding"],
            "host_fed": m["encoding"] == "direct" and m["input_path"] == "host",
            "graded": m["encoding"] == "direct" and m["input_path"] == "graded",
            "grid": (board["grid_x"], board["grid_y"])}


def _check_records(meta: dict[str, Any], raw_layers: list[dict[str, Any]]) -> None:
    """What reports copy from the image: provenance, placement cost, per-layer plans."""
    prov = _dict(meta.get("provenance"), "provenance")
    for key in ("source", "source_sha256", "compiler"):
        _need(isinstance(prov.get(key), str), f"provenance.{key} is not text")
    _need(prov.get("dataset") is None or isinstance(prov["dataset"], str), "provenance.dataset is not text")
    _need(prov.get("val_size") is None or _int(prov["val_size"], 0, limits.MAX_DIM),
          "provenance.val_size is not a count")
    place = _dict(meta.get("placement"), "placement")
    _need(all(_num(place.get(k)) and place[k] >= 0 for k in ("cost", "row_major_cost")),
          "placement costs are not non-negative numbers")
    plans = meta.get("plans")
    _need(isinstance(plans, list) and len(plans) == len(raw_layers), "plans do not list every layer")
    for plan, l in zip(plans, raw_layers, strict=True):
        plan = _dict(plan, "a plan")
        tile = plan.get("tile")
        _need(plan.get("layer") == l["name"] and _int(plan.get("groups"), 1, limits.MAX_DIM)
              and _int(plan.get("cores"), 1, limits.MAX_ROUTERS) and isinstance(tile, list)
              and len(tile) == 3 and all(_int(t, 1, limits.MAX_DIM) for t in tile),
              f"the plan of layer {l['name']} is malformed")


# -- 2. the arrays ----------------------------------------------------------------------------
def _array(arrays: dict[str, np.ndarray], name: str, length: int | None = None,
           shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = arrays.get(name)
    _need(a is not None, f"array {name} is missing")
    _need(a.dtype.kind in "iu" and a.dtype != np.uint64, f"array {name} is {a.dtype}, not integer")
    if shape is not None:
        _need(a.shape == shape, f"array {name} has shape {a.shape}, not {shape}")
    else:
        _need(a.ndim == 1, f"array {name} is not one-dimensional")
        _need(length is None or len(a) == length, f"array {name} has {len(a)} entries, not {length}")
    return a.astype(np.int64)


def _in_range(a: np.ndarray, lo: int, hi: int, name: str) -> None:
    _need(a.size == 0 or (a.min() >= lo and a.max() <= hi),
          f"array {name} holds values outside {lo}..{hi}")


def _pointers(arrays: dict[str, np.ndarray], name: str, n: int, flat_len: int) -> np.ndarray:
    p = _array(arrays, name, n + 1)
    _need(p[0] == 0 and p[-1] == flat_len and (np.diff(p) >= 0).all(),
          f"pointer array {name} is not monotone from 0 to {flat_len}")
    return p


def _segments_sorted(flat: np.ndarray, ptr: np.ndarray, name: str) -> None:
    """Every segment strictly increasing (sorted and distinct)."""
    if len(flat) < 2:
        return
    rises = np.diff(flat) > 0
    starts = ptr[1:-1]
    rises[starts[(starts > 0) & (starts < len(flat))] - 1] = True    # segment boundaries
    _need(rises.all(), f"array {name} is not sorted and distinct within each core or route")


def _check_arrays(meta: dict[str, Any], model: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    layers = model["layers"]
    n_layers = len(layers)
    for i, l in enumerate(layers):
        wshape = ((l["out"][0], l["in"][0], 3, 3) if l["kind"] == "conv" else (l["out"][0], l["in"][0]))
        _in_range(_array(arrays, f"layer{i}.codes", shape=wshape), 0, (1 << l["bits"]) - 1,
                  f"layer{i}.codes")
        graded_first = i == 0 and model["graded"]
        for part, shape, bound in (("gain", (l["in"][0],), limits.MAX_ABS_GAIN),
                                   ("bias", l["out"], limits.MAX_ABS_BIAS)):
            name = f"layer{i}.{part}"
            _need((name in arrays) == graded_first, f"array {name} is "
                  f"{'missing' if graded_first else 'present but unused'}")
            if graded_first:
                _in_range(_array(arrays, name, shape=shape), -bound, bound, name)
    core_layer = _array(arrays, "core.layer")
    n_cores = len(core_layer)
    gx, gy = model["grid"]
    _need(1 <= n_cores <= gx * gy, f"{n_cores} cores do not fit the {gx}x{gy} grid")
    _in_range(core_layer, 0, n_layers - 1, "core.layer")
    _need((np.diff(core_layer) >= 0).all(), "cores are not stored in layer order")
    role = _array(arrays, "core.role", n_cores)
    _in_range(role, 0, len(ROLES) - 1, "core.role")
    _in_range(_array(arrays, "core.group", n_cores), 0, 1 << 20, "core.group")
    x, y = _array(arrays, "core.x", n_cores), _array(arrays, "core.y", n_cores)
    _in_range(x, 0, gx - 1, "core.x")
    _in_range(y, 0, gy - 1, "core.y")
    _need(len(np.unique(y * gx + x)) == n_cores, "two cores share one router")
    neurons = _array(arrays, "core.neurons")
    nptr = _pointers(arrays, "core.neuron_ptr", n_cores, len(neurons))
    axons = _array(arrays, "core.axons")
    aptr = _pointers(arrays, "core.axon_ptr", n_cores, len(axons))
    _segments_sorted(neurons, nptr, "core.neurons")
    _segments_sorted(axons, aptr, "core.axons")
    _need((np.diff(nptr) > 0).all(), "a core holds no neurons")
    n_out = np.array([math.prod(l["out"]) for l in layers])
    n_in = np.array([math.prod(l["in"]) for l in layers])
    per_n = np.repeat(core_layer, np.diff(nptr))
    per_a = np.repeat(core_layer, np.diff(aptr))
    _need(neurons.size == 0 or ((neurons >= 0) & (neurons < n_out[per_n])).all(),
          "a core holds a neuron outside its layer")
    # a home core's axons are its neurons (one graded input each); others read layer inputs
    home_a = np.repeat(role == ROLE_HOME, np.diff(aptr))
    _need(axons.size == 0 or ((axons >= 0) & (axons < np.where(home_a, n_out[per_a], n_in[per_a]))).all(),
          "a core has an axon outside its layer's input")
    spec_core = meta["spec"]["core"]
    _need(np.diff(nptr).max() <= spec_core["neurons"] and np.diff(aptr).max() <= spec_core["axons"],
          "a core holds more neurons or axons than the spec's core")
    sbits = _array(arrays, "core.synapse_bits", n_cores)
    bits = np.array([l["bits"] for l in layers])[core_layer]
    _need(np.array_equal(sbits, np.where(role == ROLE_HOME, 0, np.diff(aptr) * np.diff(nptr) * bits)),
          "core.synapse_bits is not axons x neurons x weight bits")
    _need(np.array_equal(np.bincount(core_layer, minlength=n_layers),
                         [p["cores"] for p in meta["plans"]]), "plans do not count each layer's cores")
    _need((sbits <= spec_core["synapse_bits"]).all(), "a core holds more synapse bits than the spec's core")
    cores = _Cores(core_layer, role, neurons, nptr, axons, aptr)
    holder = _check_neurons(cores, model, n_out)
    _check_synapses(cores, model, arrays)
    _check_routes(meta, model, arrays, cores, holder, n_out, n_in, x, y)


class _Cores:
    def __init__(self, layer, role, neurons, nptr, axons, aptr) -> None:
        self.layer, self.role = layer, role
        self.neurons, self.nptr, self.axons, self.aptr = neurons, nptr, axons, aptr

    def of(self, li: int, roles: tuple[int, ...]) -> np.ndarray:
        return np.nonzero((self.layer == li) & np.isin(self.role, roles))[0]

    def neurons_of(self, c: int) -> np.ndarray:
        return self.neurons[self.nptr[c]:self.nptr[c + 1]]

    def axons_of(self, c: int) -> np.ndarray:
        return self.axons[self.aptr[c]:self.aptr[c + 1]]


# -- 3. the mapping ---------------------------------------------------------------------------
def _check_neurons(cores: _Cores, model: dict[str, Any], n_out: np.ndarray) -> list[np.ndarray]:
    """Every neuron on exactly one neuron or home core; returns that core per neuron, by layer."""
    holder = []
    for li in range(len(n_out)):
        hold = np.full(int(n_out[li]), -1, dtype=np.int64)
        count = np.zeros(int(n_out[li]), dtype=np.int64)
        for c in cores.of(li, (ROLE_NEURON, ROLE_HOME)):
            nz = cores.neurons_of(c)
            hold[nz] = c
            count[nz] += 1
        _need((count == 1).all(), f"layer {li} has neurons run by no core or by two")
        homes, partials = cores.of(li, (ROLE_HOME,)), cores.of(li, (ROLE_PARTIAL,))
        if li == 0 and model["host_fed"]:
            _need(len(homes) == len(cores.of(0, (ROLE_NEURON, ROLE_HOME, ROLE_PARTIAL))),
                  "the host computes the first layer, but its cores are not all home cores")
        elif len(homes):
            _need(len(cores.of(li, (ROLE_NEURON,))) == 0 and len(partials) > 0,
                  f"layer {li} mixes neuron and home cores, or has home cores without partial cores")
            for c in partials:
                h = hold[cores.neurons_of(c)]
                _need((h >= 0).all() and (cores.role[h] == ROLE_HOME).all(),
                      f"partial core {c} feeds neurons that no home core runs")
        else:
            _need(len(partials) == 0, f"layer {li} has partial cores but no home core")
        for c in homes:
            _need(np.array_equal(cores.axons_of(c), cores.neurons_of(c)),
                  f"home core {c}'s axons are not its neurons")
        holder.append(hold)
    return holder


def _check_synapses(cores: _Cores, model: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Every synapse (input i -> neuron n of i's receptive field) held by exactly one core.

    Per neuron, the cores holding it (neuron or partial role) must together read each input of
    its receptive field once: the count of receptive-field inputs they read must equal its
    fan-in, and so must a sum of random 64-bit keys of those inputs (the same wrapping-sum
    signature the compiler groups routes with), which a duplicate plus a gap would change.
    """
    rng = np.random.default_rng(0x5EED)
    for li, l in enumerate(model["layers"]):
        if li == 0 and model["host_fed"]:
            continue                                        # the host computes this layer
        n = math.prod(l["out"])
        got_n = np.zeros(n, dtype=np.int64)
        got_k = np.zeros(n, dtype=np.uint64)
        n_in = math.prod(l["in"])
        keys = rng.integers(0, 2**63, size=n_in, dtype=np.uint64)
        if l["kind"] == "conv":
            c_in, h, w = l["in"]
            plane_k = keys.reshape(c_in, h, w).sum(axis=0, dtype=np.uint64)
            full_n = np.pad(np.full((h, w), c_in, dtype=np.int64), 1)
            full_k = np.pad(plane_k, 1)
            want_n, want_k = _taps(full_n, full_k, l["out"])
        else:
            want_n = np.full(n, n_in, dtype=np.int64)
            want_k = np.full(n, keys.sum(dtype=np.uint64), dtype=np.uint64)
        for c in cores.of(li, (ROLE_NEURON, ROLE_PARTIAL)):
            ax, nz = cores.axons_of(c), cores.neurons_of(c)
            if l["kind"] == "conv":
                c_in, h, w = l["in"]
                pix = ax % (h * w)
                cnt = np.pad(np.bincount(pix, minlength=h * w).reshape(h, w), 1)
                ksum = np.zeros(h * w, dtype=np.uint64)
                np.add.at(ksum, pix, keys[ax])
                tn, tk = _taps(cnt, np.pad(ksum.reshape(h, w), 1), l["out"], nz)
                got_n[nz] += tn
                got_k[nz] += tk
            else:
                got_n[nz] += len(ax)
                got_k[nz] += keys[ax].sum(dtype=np.uint64)
        _need(np.array_equal(got_n, want_n) and np.array_equal(got_k, want_k),
              f"layer {li}'s synapses are not each held by exactly one core")


def _taps(count: np.ndarray, key: np.ndarray, out: tuple[int, ...], nz: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron (o, y, x) of a padded 3x3 convolution: the sums over its 3x3 window of the
    zero-padded per-pixel ``count`` and ``key`` planes."""
    c_out, h, w = out
    nz = np.arange(c_out * h * w) if nz is None else nz
    pix = nz % (h * w)
    yy, xx = np.divmod(pix, w)
    tn = np.zeros(len(nz), dtype=np.int64)
    tk = np.zeros(len(nz), dtype=np.uint64)
    for dy in range(3):
        for dx in range(3):
            tn += count[yy + dy, xx + dx]
            tk += key[yy + dy, xx + dx]
    return tn, tk


# -- 4. the routes ----------------------------------------------------------------------------
def _check_routes(meta: dict[str, Any], model: dict[str, Any], arrays: dict[str, np.ndarray],
                  cores: _Cores, holder: list[np.ndarray], n_out: np.ndarray, n_in: np.ndarray,
                  x: np.ndarray, y: np.ndarray) -> None:
    n_cores = len(cores.layer)
    src = _array(arrays, "route.src")
    n_routes = len(src)
    _in_range(src, HOST, n_cores - 1, "route.src")
    dst = _array(arrays, "route.dst")
    dptr = _pointers(arrays, "route.dst_ptr", n_routes, len(dst))
    _in_range(dst, 0, n_cores - 1, "route.dst")
    _segments_sorted(dst, dptr, "route.dst")
    _need(n_routes == 0 or (np.diff(dptr) > 0).all(), "a route has no destination")
    n_sources = _array(arrays, "route.n_sources", n_routes)
    users = np.zeros(n_routes, dtype=np.int64)
    layers = model["layers"]
    # the (source, reading core) pairs each kind of source needs, against its route's
    for li in range(len(layers)):
        if li == 0:
            size = int(n_out[0] if model["host_fed"] else n_in[0])
            route = _array(arrays, "input.route", size)
            owner = np.full(size, HOST, dtype=np.int64)
        else:
            route = _array(arrays, f"layer{li - 1}.route", int(n_out[li - 1]))
            owner = holder[li - 1]
        _in_range(route, -1, n_routes - 1, "input.route" if li == 0 else f"layer{li - 1}.route")
        fed = cores.of(li, (ROLE_NEURON, ROLE_PARTIAL) if not (li == 0 and model["host_fed"])
                       else (ROLE_HOME,))
        pairs = []
        for c in fed:
            ax = cores.axons_of(c)
            s = merged_sources(layers[li - 1]["out"], ax) if layers[li]["pooled"] else ax[:, None]
            pairs.append(np.stack([s.ravel(), np.full(s.size, c)], 1))
        _match(pairs, route, owner, src, dst, dptr, users,
               "input.route" if li == 0 else f"layer{li - 1}.route")
    last = _array(arrays, f"layer{len(layers) - 1}.route", int(n_out[-1]))
    _need((last == -1).all(), "the output layer's neurons have routes")
    # partial sums: local neuron j of a partial core goes to the home core that runs it
    pflat = _array(arrays, "partial.route")
    pptr = _pointers(arrays, "partial.route_ptr", n_cores, len(pflat))
    _need(np.array_equal(np.diff(pptr), np.where(cores.role == ROLE_PARTIAL, np.diff(cores.nptr), 0)),
          "partial.route does not list one route per partial core neuron")
    _in_range(pflat, 0, n_routes - 1, "partial.route")
    # one source per partial.route entry: partial core c's local neuron j is entry pptr[c] + j
    partial = np.nonzero(cores.role == ROLE_PARTIAL)[0]
    entry_core = np.repeat(np.arange(n_cores), np.diff(pptr))
    homes = [holder[int(cores.layer[c])][cores.neurons_of(c)] for c in partial]
    _match([np.stack([np.arange(pptr[c], pptr[c + 1]), h], 1) for c, h in zip(partial, homes, strict=True)],
           pflat, entry_core, src, dst, dptr, users, "partial.route")
    _need(np.array_equal(users, n_sources), "route.n_sources does not count each route's sources")
    # the routing tables: exactly the XY multicast trees of these routes
    host = src == HOST
    sx = np.where(host, 0, x[np.maximum(src, 0)]) if n_routes else src
    sy = np.where(host, 0, y[np.maximum(src, 0)]) if n_routes else src
    gx, gy = model["grid"]
    want = xy_tables(sx, sy, dptr, x[dst], y[dst], n_sources, gx, gy)
    n_entries = len(want[0])
    got = (_array(arrays, "table.router", n_entries), _array(arrays, "table.route", n_entries),
           _array(arrays, "table.ports", n_entries))
    _need(all(np.array_equal(g, w) for g, w in zip(got, want[:3], strict=True)),
          "the routing tables are not the XY multicast trees of the routes")
    load = arrays.get("link.load")
    _need(load is not None and load.dtype == np.float64 and load.shape == want[3].shape
          and np.array_equal(load, want[3]), "link.load is not the routes' load on each link")
    _need(meta["host_load"] == float(n_sources[host].sum()), "host_load does not match the host routes")


def _match(pairs: list[np.ndarray], route: np.ndarray, owner: np.ndarray, src: np.ndarray,
           dst: np.ndarray, dptr: np.ndarray, users: np.ndarray, name: str) -> None:
    """The sources' routes reach exactly the cores that read them, and start at their owner.
    ``pairs``: (source, reading core) rows; each pair is a key source * K + core."""
    k = np.int64(limits.MAX_ROUTERS)                   # every core id is below it
    need = _sorted_unique(np.concatenate([p[:, 0] * k + p[:, 1] for p in pairs]) if pairs
                          else np.zeros(0, np.int64))
    used = route >= 0
    readers = np.zeros(len(route), dtype=bool)
    readers[need // k] = True
    _need(np.array_equal(used, readers), f"{name} gives a route to a source nobody reads, or none "
          "to one that is read")
    s = np.nonzero(used)[0]
    r = route[s]
    _need((src[r] == owner[s]).all(), f"{name} sends a source on a route that starts elsewhere")
    np.add.at(users, r, 1)
    count = dptr[r + 1] - dptr[r]
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    got = np.repeat(s, count) * k + dst[np.repeat(dptr[r], count) + offset]
    _need(len(got) == len(need) and np.array_equal(np.sort(got), need),
          f"{name} routes a source to cores other than those that read it")


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique by sort and mask (numpy 2's hash-based unique is several times slower here)."""
    a = np.sort(a)
    return a[np.concatenate([[True], a[1:] != a[:-1]])] if len(a) else a
