"""The records of a simulation run: per core, per link, per router and per inference
(accuracy, SOPs, cycles, energy), as one JSON-ready dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from artifacts.chipimage import ROLES
from artifacts.mesh import crosses_chip, link_endpoints
from chipsim import latency
from chipsim.chip import SimResult
from chipsim.machine import Machine


@dataclass
class Totals:
    n: int = 0
    correct: int = 0
    sops: np.ndarray | None = None
    spikes_out: np.ndarray | None = None
    packets_in: np.ndarray | None = None
    packets_out: np.ndarray | None = None
    route_packets: np.ndarray | None = None     # per route, summed over steps and images
    step_cycles: list[int] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)

    def add(self, res: SimResult, labels: np.ndarray) -> None:
        self.n += res.n
        self.correct += int((res.predictions == labels).sum())
        res_routes = res.route_packets.sum(axis=0)
        self.route_packets = (res_routes if self.route_packets is None
                              else self.route_packets + res_routes)
        for name in ("sops", "spikes_out", "packets_in", "packets_out"):
            v = getattr(res, name)
            setattr(self, name, v.copy() if getattr(self, name) is None else getattr(self, name) + v)
        self.predictions.append(res.predictions)


def report(machine: Machine, arrays: dict[str, np.ndarray], totals: Totals,
           stats: dict[str, np.ndarray] | None, seconds: float) -> dict[str, Any]:
    meta = machine.meta
    energy = meta["spec"]["energy"]
    cx, cy = meta["spec"]["mesh"]["cores_x"], meta["spec"]["mesh"]["cores_y"]
    gx = meta["board"]["grid_x"]
    n = max(totals.n, 1)
    sops = int(totals.sops.sum())
    out: dict[str, Any] = {
        "n": totals.n, "accuracy": 100.0 * totals.correct / n,
        "sops_per_inference": sops / n, "seconds": seconds,
        "images_per_second": totals.n / seconds, "sops_per_second": sops / seconds,
        "timesteps": machine.timesteps,
    }
    links = []
    hop_flits = chip_flits = 0
    if stats is not None:
        flits = stats["link_flits"]
        for link in np.nonzero(flits)[0]:
            (x, y), (nx, ny) = link_endpoints(int(link), gx)
            crosses = crosses_chip((x, y), (nx, ny), cx, cy)
            if crosses:
                chip_flits += int(flits[link])
            else:
                hop_flits += int(flits[link])
            links.append({"from": [x, y], "to": [nx, ny], "flits": int(flits[link]),
                          "chip_to_chip": bool(crosses)})
        cycles = np.array(totals.step_cycles, dtype=np.float64)
        out["cycles_per_step"] = float(cycles.mean()) if len(cycles) else 0.0
        out["max_cycles_per_step"] = int(cycles.max()) if len(cycles) else 0
        out["latency_cycles_per_inference"] = float(cycles.sum() / n)
        out["packet_latency_cycles"] = packet_latency(stats, n)
        out["routers"] = [{"x": int(r % gx), "y": int(r // gx), "peak_buffer": int(stats["peak"][r]),
                           "stalls": int(stats["stalls"][r])}
                          for r in np.nonzero(stats["peak"])[0]]
    synaptic = sops * energy["pj_per_sop"] / n / 1e6
    if stats is None:
        # without the NoC model there are no flits to charge: only the synaptic part is known
        out["energy_uj_per_inference"] = None
        out["energy_breakdown_uj_per_inference"] = {"synaptic": synaptic}
    else:
        hops = hop_flits * energy["pj_per_hop"] / n / 1e6
        chip_hops = chip_flits * energy["pj_per_chip_hop"] / n / 1e6
        out["energy_uj_per_inference"] = synaptic + hops + chip_hops
        out["energy_breakdown_uj_per_inference"] = {
            "synaptic": synaptic, "on_chip_hops": hops, "chip_to_chip_hops": chip_hops}
    layer_names = [l.name for l in machine.layers]
    out["cores"] = [{"x": c.x, "y": c.y, "layer": layer_names[c.layer], "role": ROLES[c.role],
                     "spikes_out": int(totals.spikes_out[c.index]), "sops": int(totals.sops[c.index]),
                     "packets_in": int(totals.packets_in[c.index]),
                     "packets_out": int(totals.packets_out[c.index])} for c in machine.cores]
    out["links"] = links
    out["predictions"] = np.concatenate(totals.predictions).tolist() if totals.predictions else []
    return out


def packet_latency(stats: dict[str, np.ndarray], n: int) -> dict[str, Any]:
    """Packet latency (cycles from injection into the source router to delivery at a core;
    a multicast packet counts once per destination core) over every packet of the run, and per
    time step over all images."""
    whole = latency.summary(stats["latency_hist"], stats["latency"])
    per_step = []
    if "latency_by_step" in stats:
        for t, (hist, acc) in enumerate(zip(stats["latency_hist_by_step"],
                                            stats["latency_by_step"], strict=True)):
            per_step.append({"t": t, **latency.summary(hist, acc)})
    return {"packets_per_inference": whole["packets"] / max(n, 1),
            **{k: whole[k] for k in ("mean", "p99", "max")}, "per_step": per_step}
