"""The compiler as a composition of passes: quantize -> partition -> connect -> place -> route
-> check -> emit. Each pass is a function of its own module, testable alone."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compiler.connect import connect, core_edges
from compiler.from_checkpoint import integer_model_from_checkpoint
from compiler.image import build_image
from compiler.integer_model import IntegerModel
from compiler.partition import chips_needed, partition
from compiler.place import Grid, place
from compiler.route import route_all
from compiler.rules import Design, check
from compiler.spec import ChipSpec
from spikemesh import __version__
from spikemesh.chipimage import write_chip_image
from spikemesh.errors import UserError


def parse_chips(text: str) -> tuple[int, int] | None:
    """"auto" -> None; "N" -> a near-square board of N chips; "CXxCY" -> that board."""
    if text == "auto":
        return None
    try:
        if "x" in text:
            cx, cy = (int(v) for v in text.split("x"))
        else:
            cx, cy = board_shape(int(text))
            if cx * cy != int(text):
                cx, cy = int(text), 1
    except ValueError:
        raise UserError(f"--chips takes auto, a number of chips or CXxCY (e.g. 3x3), got {text!r}") from None
    if cx < 1 or cy < 1:
        raise UserError(f"--chips needs at least one chip, got {text!r}")
    return cx, cy


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
    check(Design(model, cores, spec))   # capacity and per-core limits before the costly passes
    t = time.perf_counter()
    routes = connect(model, cores, seed=seed)
    times["connect"] = time.perf_counter() - t
    t = time.perf_counter()
    placement = place(len(cores), core_edges(routes, cores), spec, seed=seed)
    times["place"] = time.perf_counter() - t
    t = time.perf_counter()
    tables = route_all(routes, placement, Grid(spec))
    times["route"] = time.perf_counter() - t
    return spec, cores, plans, routes, placement, tables, times


def compile_checkpoint(pt_path: str | Path, spec: ChipSpec, out: str | Path, *,
                       chips: tuple[int, int] | None = None, weight_bits: int | None = None,
                       seed: int = 0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Compile a trained .pt into a chip image at ``out``; return a summary."""
    from training.checkpoint import read_payload
    from training.models import ModelConfig

    t0 = time.perf_counter()
    model = integer_model_from_checkpoint(pt_path, spec, weight_bits)
    t_quant = time.perf_counter() - t0
    payload = read_payload(pt_path)
    cfg = ModelConfig.from_dict(payload["model_config"])
    dataset = payload.get("dataset", {})
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
                               norm=(cfg.mean, cfg.std), extra={"plans": plan_meta})
    size = write_chip_image(out, meta, arrays)
    times["emit"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0
    return {"out": str(out), "bytes": size, "cores": len(cores),
            "chips": spec.chips, "board": [spec.board.chips_x, spec.board.chips_y],
            "placement_cost": placement.cost, "row_major_cost": placement.row_major_cost,
            "seconds": times, "plans": plan_meta, "spec": dataclasses.asdict(spec)["name"]}
