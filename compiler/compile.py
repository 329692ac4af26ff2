"""The compiler as a composition of passes, in the order they run:

    read (compiler.checkpoint) -> rules "network" -> quantize (integer_model) -> partition
    -> rules "cores" -> connect -> rules "routes" -> place -> route -> emit (image)

Each pass is a function of its own module, testable alone; every refusal comes from
compiler.rules."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artifacts import __version__
from artifacts.chipimage import write_chip_image
from artifacts.errors import UserError
from artifacts.limits import SPEC_BOUNDS
from compiler.checkpoint import float_layers, read_checkpoint, trained_bits
from compiler.connect import connect, core_edges
from compiler.image import build_image
from compiler.integer_model import IntegerModel, build_integer_model
from compiler.partition import chips_needed, partition
from compiler.place import Grid, place
from compiler.route import route_all
from compiler.rules import Design, Network, check
from compiler.spec import ChipSpec


def parse_chips(text: str) -> tuple[int, int] | None:
    """"auto" -> None; "N" -> a near-square board of N chips; "CXxCY" -> that board."""
    if text == "auto":
        return None
    try:
        if "x" in text:
            cx, cy = (int(v) for v in text.split("x"))
        else:
            n = int(text)
            if not 1 <= n <= MAX_CHIPS:
                raise UserError(f"--chips takes 1..{MAX_CHIPS} chips, got {text!r}")
            cx, cy = board_shape(n)
            if cx * cy != n:
                cx, cy = n, 1
    except ValueError:
        raise UserError(f"--chips takes auto, a number of chips or CXxCY (e.g. 3x3), got {text!r}") from None
    lo, hi = SPEC_BOUNDS["board.chips_x"]
    if not (lo <= cx <= hi and lo <= cy <= hi):
        raise UserError(f"--chips {text}: each side of the board takes {lo:.0f}..{hi:.0f} chips")
    return cx, cy


MAX_CHIPS = int(SPEC_BOUNDS["board.chips_x"][1] * SPEC_BOUNDS["board.chips_y"][1])


def board_shape(chips: int) -> tuple[int, int]:
    """The most square board with at least ``chips`` chips."""
    cx = math.ceil(math.sqrt(chips))
    return cx, math.ceil(chips / cx)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def compile_model(model: IntegerModel, spec: ChipSpec, *, chips: tuple[int, int] | None = None,
                  seed: int = 0, log: Callable[[str], None] = lambda _: None):
    """Run the mapping passes on an integer model. Returns (spec with board, cores, routes,
    placement, tables, timings)."""
    times: dict[str, float] = {}
    t = time.perf_counter()
    cores, plans = partition(model, spec)
    times["partition"] = time.perf_counter() - t
    need = chips_needed(len(cores), spec)
    if chips is None:
        cx, cy = board_shape(need)
        log(f"--chips auto: {len(cores)} cores need {need} chip(s) of {spec.cores_per_chip} "
            f"cores; using a {cx}x{cy} board")
    else:
        cx, cy = chips
    spec = spec.with_board(cx, cy)
    check("cores", Design(model, cores, spec))   # per-core and board limits before the costly passes
    t = time.perf_counter()
    routes = connect(model, cores, seed=seed)
    times["connect"] = time.perf_counter() - t
    check("routes", Design(model, cores, spec, n_routes=len(routes.src_core)))
    t = time.perf_counter()
    placement = place(len(cores), core_edges(routes, cores), spec, seed=seed)
    times["place"] = time.perf_counter() - t
    t = time.perf_counter()
    tables = route_all(routes, placement, Grid(spec))
    times["route"] = time.perf_counter() - t
    return spec, cores, plans, routes, placement, tables, times


def quantize_checkpoint(pt_path: str | Path, spec: ChipSpec, weight_bits: int | None = None
                        ) -> tuple[IntegerModel, dict[str, Any]]:
    """Read a trained .pt (compiler.checkpoint), run the network rules, quantize. Returns the
    integer model and the checkpoint's dataset record."""
    ckpt = read_checkpoint(pt_path)
    bits = weight_bits if weight_bits is not None else trained_bits(ckpt)
    if bits is None:
        raise UserError(f"{pt_path} was trained in float; pass --weight-bits K to quantize it for the chip")
    net = ckpt.network
    layers = float_layers(ckpt)
    check("network", Network(layers, net.encoding, bits, net.std, spec))
    names = ckpt.dataset.get("class_names", ())
    names = tuple(str(n) for n in names) if isinstance(names, list | tuple) else ()
    model = build_integer_model(layers, timesteps=net.timesteps, encoding=net.encoding,
                                weight_bits=bits, mean=net.mean, std=net.std,
                                reset=net.layers[0].reset, arith=spec.arithmetic,
                                num_classes=net.num_classes, class_names=names)
    return model, {"dataset": ckpt.dataset, "norm": (net.mean, net.std)}


def compile_image(pt_path: str | Path, spec: ChipSpec, *, chips: tuple[int, int] | None = None,
                  weight_bits: int | None = None, seed: int = 0,
                  log: Callable[[str], None] = print
                  ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Compile a trained .pt into a chip image in memory: (meta, arrays, summary)."""
    t0 = time.perf_counter()
    model, info = quantize_checkpoint(pt_path, spec, weight_bits)
    t_quant = time.perf_counter() - t0
    dataset = info["dataset"]
    spec, cores, plans, routes, placement, tables, times = compile_model(model, spec, chips=chips,
                                                                        seed=seed, log=log)
    times = {"quantize": t_quant, **times}
    provenance = {"source": Path(pt_path).name, "source_sha256": sha256_file(pt_path),
                  "compiler": f"spikemesh {__version__}", "seed": seed,
                  "dataset": dataset.get("name"), "val_size": dataset.get("val_size")}
    plan_meta = [{"layer": model.layers[p.layer].name, "groups": p.groups, "tile": list(p.tile),
                  "cores": p.cores} for p in plans]
    t = time.perf_counter()
    meta, arrays = build_image(model, spec, cores, routes, placement, tables, provenance=provenance,
                               norm=info["norm"], extra={"plans": plan_meta})
    times["emit"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0
    summary = {"cores": len(cores), "chips": spec.chips,
               "board": [spec.board.chips_x, spec.board.chips_y],
               "placement_cost": placement.cost, "row_major_cost": placement.row_major_cost,
               "seconds": times, "plans": plan_meta, "spec": dataclasses.asdict(spec)["name"]}
    return meta, arrays, summary


def compile_checkpoint(pt_path: str | Path, spec: ChipSpec, out: str | Path, *,
                       chips: tuple[int, int] | None = None, weight_bits: int | None = None,
                       seed: int = 0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Compile a trained .pt into a chip image at ``out``; return a summary."""
    t0 = time.perf_counter()
    meta, arrays, summary = compile_image(pt_path, spec, chips=chips, weight_bits=weight_bits,
                                          seed=seed, log=log)
    t = time.perf_counter()
    size = write_chip_image(out, meta, arrays)
    summary["seconds"]["emit"] += time.perf_counter() - t
    summary["seconds"]["total"] = time.perf_counter() - t0
    return {"out": str(out), "bytes": size, **summary}
