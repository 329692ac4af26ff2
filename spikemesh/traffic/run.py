"""`spikemesh traffic`: where spikes flow on the chip, clean and under attack.

Simulates images on a chip image with the NoC model and writes, per input kind (clean, and
adversarial with --adversarial), per core per inference: heat maps (PNG) of spikes out,
synaptic operations, packets in and packets out; the link load drawn on the mesh; the same
numbers as CSV (the column names `simulate --json` uses); the core-pair packet rates as CSV and
as a Noxim traffic table. With --adversarial, difference maps (adversarial - clean) and the
per-layer change in spike activity: the hardware view of the paper's NSR.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artifacts.atomic import write_atomic, write_text_atomic
from artifacts.chipimage import ROLE_PARTIAL, ROLES
from artifacts.mesh import crosses_chip
from chipsim.chip import Chip
from chipsim.machine import Machine
from chipsim.report import report
from chipsim.simulate import run_dataset
from chipsim.traffic import layer_totals, noxim_table, pair_packets

COUNTERS = ("spikes_out", "sops", "packets_in", "packets_out")
TITLES = {"spikes_out": "spikes out", "sops": "synaptic operations",
          "packets_in": "packets in", "packets_out": "packets out"}


@dataclass
class TrafficRun:
    kind: str                       # "clean" or "adversarial"
    n: int
    result: dict[str, Any]          # chipsim.report's dict
    route_packets: np.ndarray       # per route, over the run
    per_core: dict[str, np.ndarray]  # counter -> per core, per inference


def simulate_traffic(machine: Machine, chip: Chip, arrays, images: np.ndarray,
                     labels: np.ndarray, kind: str, *, batch_size: int, seed: int,
                     progress: bool, threads: int | None = None) -> TrafficRun:
    totals, stats, seconds = run_dataset(machine, images, labels, arrays=arrays,
                                         batch_size=batch_size, seed=seed, progress=progress,
                                         chip=chip, threads=threads)
    result = report(machine, arrays, totals, stats, seconds)
    n = max(totals.n, 1)
    per_core = {name: getattr(totals, name).astype(np.float64) / n for name in COUNTERS}
    return TrafficRun(kind, totals.n, result, totals.route_packets, per_core)


def _letters(machine: Machine) -> dict[tuple[int, int], str]:
    out = {}
    for c in machine.cores:
        letter = chr(ord("A") + c.layer) if c.layer < 26 else "?"
        out[(c.x, c.y)] = letter.lower() if c.role == ROLE_PARTIAL else letter
    return out


def check_model_matches(model: str, image_path: str, meta: dict[str, Any]) -> None:
    """Refuse a model the chip image was not compiled from (spikemesh.evaluation.chipmodel)."""
    from spikemesh.evaluation.chipmodel import chip_for_model

    chip_for_model(model, image_path, int(meta["model"]["layers"][0]["weight_bits"]),
                   lambda _: None)


def adversarial_images(model: str, meta: dict[str, Any], images: np.ndarray,
                       labels: np.ndarray, *, attack: str = "fgsm", eps: float = 8,
                       seed: int = 0) -> np.ndarray:
    """Inputs crafted white-box on the model's quantized view (the chip has no gradient);
    check_model_matches first."""
    from spikemesh.evaluation.levels import TorchLevel
    from spikemesh.evaluation.spec import AttackSpec
    from training.checkpoint import load_checkpoint

    bits = int(meta["model"]["layers"][0]["weight_bits"])
    spec = AttackSpec(name=attack, eps=(eps,), seed=seed)
    level = TorchLevel("quant", load_checkpoint(model).model, bits)
    return np.concatenate([level.craft(images[i:i + 100], labels[i:i + 100], spec,
                                       int(spec.eps[0]), seed + i)
                           for i in range(0, len(labels), 100)])


def write_run(out: Path, run: TrafficRun, machine: Machine, log: Callable[[str], None]
              ) -> dict[str, Any]:
    """CSVs, Noxim table and heat maps of one run; returns its summary."""
    from spikemesh.traffic.maps import core_map, link_map

    meta = machine.meta
    grid = (meta["board"]["grid_x"], meta["board"]["grid_y"])
    chip_shape = (meta["spec"]["mesh"]["cores_x"], meta["spec"]["mesh"]["cores_y"])
    layer_names = [l.name for l in machine.layers]
    prefix = out / run.kind
    rows = [{"x": c.x, "y": c.y, "layer": layer_names[c.layer],
             "role": ROLES[c.role],
             **{k: run.per_core[k][c.index] for k in COUNTERS}} for c in machine.cores]
    _write_csv(Path(f"{prefix}_cores.csv"), rows)
    cycles = run.result.get("latency_cycles_per_inference", 0.0) or 0.0
    links = [{"from_x": l["from"][0], "from_y": l["from"][1], "to_x": l["to"][0],
              "to_y": l["to"][1], "flits": l["flits"] / max(run.n, 1),
              "flits_per_cycle": l["flits"] / max(run.n * cycles, 1e-12),
              "chip_to_chip": l["chip_to_chip"]} for l in run.result["links"]]
    _write_csv(Path(f"{prefix}_links.csv"), links,
               ["from_x", "from_y", "to_x", "to_y", "flits", "flits_per_cycle", "chip_to_chip"])
    src, dst, packets, host = pair_packets(machine, run.route_packets)
    pairs = [{"src_x": machine.cores[s].x, "src_y": machine.cores[s].y,
              "src_layer": layer_names[machine.cores[s].layer], "dst_x": machine.cores[d].x,
              "dst_y": machine.cores[d].y, "dst_layer": layer_names[machine.cores[d].layer],
              "packets": p / max(run.n, 1), "packets_per_cycle": p / max(run.n * cycles, 1e-12)}
             for s, d, p in zip(src, dst, packets, strict=True)]
    _write_csv(Path(f"{prefix}_core_pairs.csv"), pairs,
               ["src_x", "src_y", "src_layer", "dst_x", "dst_y", "dst_layer", "packets",
                "packets_per_cycle"])
    write_text_atomic(Path(f"{prefix}_noxim_traffic.txt"),
                      noxim_table(machine, (src, dst, packets), run.n * cycles))
    letters = _letters(machine)
    for k in COUNTERS:
        core_map(Path(f"{prefix}_{k}.png"),
                 {(c.x, c.y): run.per_core[k][c.index] for c in machine.cores}, letters, grid,
                 chip_shape, f"{run.kind}: {TITLES[k]} per core per inference "
                 f"(n={run.n})", f"{TITLES[k]} / inference")
    link_map(Path(f"{prefix}_links.png"),
             [(tuple(l["from"]), tuple(l["to"]), l["flits"] / max(run.n * cycles, 1e-12))
              for l in run.result["links"]], grid, chip_shape,
             f"{run.kind}: link load (flits per cycle)", "flits / cycle")
    log(f"wrote {prefix}_*.png, _cores.csv, _links.csv, _core_pairs.csv, _noxim_traffic.txt")
    return summarize(run, machine, host)


def summarize(run: TrafficRun, machine: Machine, host_packets: int = 0) -> dict[str, Any]:
    layer_names = [l.name for l in machine.layers]
    res = run.result
    per_layer = {k: {name: v / max(run.n, 1) for name, v in
                     layer_totals(machine, run.per_core[k] * max(run.n, 1)).items()}
                 for k in COUNTERS}
    hottest = sorted(machine.cores, key=lambda c: -run.per_core["packets_in"][c.index])[:5]
    links = sorted(res["links"], key=lambda l: -l["flits"])[:5]
    cx, cy = machine.meta["spec"]["mesh"]["cores_x"], machine.meta["spec"]["mesh"]["cores_y"]
    return {
        "kind": run.kind, "n": run.n, "accuracy": res["accuracy"],
        "cycles_per_step": res.get("cycles_per_step"),
        "max_cycles_per_step": res.get("max_cycles_per_step"),
        "packet_latency_cycles": res.get("packet_latency_cycles"),
        "energy_uj_per_inference": res.get("energy_uj_per_inference"),
        "energy_breakdown_uj_per_inference": res["energy_breakdown_uj_per_inference"],
        "per_layer": per_layer,
        "most_loaded_layer": max(per_layer["packets_out"], key=per_layer["packets_out"].get),
        "host_packets_per_inference": host_packets / max(run.n, 1),
        "hottest_cores": [{"x": c.x, "y": c.y, "layer": layer_names[c.layer],
                           "packets_in": run.per_core["packets_in"][c.index],
                           "sops": run.per_core["sops"][c.index]} for c in hottest],
        "hottest_links": [{"from": l["from"], "to": l["to"],
                           "flits_per_inference": l["flits"] / max(run.n, 1),
                           "chip_to_chip": crosses_chip(tuple(l["from"]), tuple(l["to"]), cx, cy)}
                          for l in links],
    }


def write_difference(out: Path, clean: TrafficRun, adv: TrafficRun, machine: Machine
                     ) -> dict[str, Any]:
    """Difference maps (adversarial - clean, per inference) and the per-layer change."""
    from spikemesh.traffic.maps import core_map

    meta = machine.meta
    grid = (meta["board"]["grid_x"], meta["board"]["grid_y"])
    chip_shape = (meta["spec"]["mesh"]["cores_x"], meta["spec"]["mesh"]["cores_y"])
    layer_names = [l.name for l in machine.layers]
    letters = _letters(machine)
    rows = []
    for c in machine.cores:
        rows.append({"x": c.x, "y": c.y, "layer": layer_names[c.layer],
                     **{k: adv.per_core[k][c.index] - clean.per_core[k][c.index]
                        for k in COUNTERS}})
    _write_csv(out / "difference_cores.csv", rows)
    for k in COUNTERS:
        core_map(out / f"difference_{k}.png",
                 {(c.x, c.y): adv.per_core[k][c.index] - clean.per_core[k][c.index]
                  for c in machine.cores}, letters, grid, chip_shape,
                 f"adversarial - clean: {TITLES[k]} per inference", "change / inference",
                 diverging=True)
    spikes_clean = layer_totals(machine, clean.per_core["spikes_out"])
    spikes_adv = layer_totals(machine, adv.per_core["spikes_out"])
    change = {name: {"clean": spikes_clean[name], "adversarial": spikes_adv[name],
                     "change": spikes_adv[name] - spikes_clean[name],
                     "nsr": ((spikes_clean[name] - spikes_adv[name]) / spikes_clean[name]
                             if spikes_clean[name] else 0.0)}
              for name in layer_names if machine.layers[layer_names.index(name)].kind != "out"}
    ec, ea = clean.result.get("energy_uj_per_inference"), adv.result.get("energy_uj_per_inference")
    return {"spikes_per_layer": change, "energy_uj_per_inference_change":
            (ea - ec) if ec is not None and ea is not None else None}


def format_summary(s: dict[str, Any]) -> str:
    e = s["energy_breakdown_uj_per_inference"]
    lines = [f"{s['kind']}: {s['n']} images, accuracy {s['accuracy']:.1f}%; cycles per step "
             f"mean {s['cycles_per_step']:,.0f}, peak {s['max_cycles_per_step']:,}; energy "
             f"{s['energy_uj_per_inference']:.1f} uJ per inference (synaptic "
             f"{e['synaptic']:.1f}, on-chip links {e.get('on_chip_hops', 0.0):.2f}, "
             f"chip-to-chip links {e.get('chip_to_chip_hops', 0.0):.2f})",
             f"  most loaded layer (packets out): {s['most_loaded_layer']}; "
             "per layer packets out / inference: " + ", ".join(
                 f"{k} {v:,.0f}" for k, v in s["per_layer"]["packets_out"].items()),
             "  hottest cores (packets in / inference): " + "; ".join(
                 f"({c['x']},{c['y']}) {c['layer']} {c['packets_in']:,.0f}"
                 for c in s["hottest_cores"]),
             "  hottest links (flits / inference): " + "; ".join(
                 f"({l['from'][0]},{l['from'][1]})->({l['to'][0]},{l['to'][1]}) "
                 f"{l['flits_per_inference']:,.0f}{' chip-to-chip' if l['chip_to_chip'] else ''}"
                 for l in s["hottest_links"]),
             "  " + format_latency(s["packet_latency_cycles"])]
    return "\n".join(lines)


def format_latency(lat: dict[str, Any]) -> str:
    """One line: mean, p99 and max packet latency, over the run and per time step."""
    if lat["mean"] is None:
        return "packet latency: no packets delivered"
    steps = ", ".join(f"t{s['t']} {s['mean']:,.0f}/{s['p99']:,}" for s in lat["per_step"]
                      if s["mean"] is not None)
    return (f"packet latency (cycles, injection to delivery): mean {lat['mean']:,.1f}, p99 "
            f"{lat['p99']:,}, max {lat['max']:,}; per step mean/p99: {steps}")


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str] | None = None) -> None:
    import io

    fields = fields or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(v) for k, v in r.items()})
    write_atomic(path, lambda f: f.write(buf.getvalue().encode("utf-8")))


def _cell(v: Any) -> Any:
    """Floats at full precision (repr of a Python float round-trips), numpy scalars as Python's."""
    if isinstance(v, float | np.floating):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
