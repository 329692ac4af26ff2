"""inspect: what a chip image uses and where, read from the image alone."""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from artifacts.chipimage import ROLES
from artifacts.mesh import PORT_NAMES, link_endpoints

LAYER_CHARS = string.ascii_uppercase


def real_synapses(lm: dict[str, Any]) -> int:
    """Connected synapses of a layer (conv: in-bounds 3x3 taps only)."""
    if lm["kind"] == "conv":
        c_in, h, w = lm["in_shape"]
        taps = (3 * h - 2 if h > 1 else 1) * (3 * w - 2 if w > 1 else 1)
        return lm["out_shape"][0] * c_in * taps
    return int(np.prod(lm["in_shape"])) * int(np.prod(lm["out_shape"]))


def summarize(meta: dict[str, Any], arrays: dict[str, np.ndarray], top_links: int = 5) -> dict[str, Any]:
    spec, board = meta["spec"], meta["board"]
    cores_per_chip = spec["mesh"]["cores_x"] * spec["mesh"]["cores_y"]
    n_cores = len(arrays["core.layer"])
    total_slots = board["grid_x"] * board["grid_y"]
    bits = arrays["core.synapse_bits"]
    cap = spec["core"]["synapse_bits"]
    layers = []
    for i, lm in enumerate(meta["model"]["layers"]):
        sel = arrays["core.layer"] == i
        roles = arrays["core.role"][sel]
        plan = meta["plans"][i]
        layers.append({"layer": lm["name"], "cores": int(sel.sum()),
                       "partial_cores": int((roles == ROLES.index("partial")).sum()),
                       "home_cores": int((roles == ROLES.index("home")).sum()),
                       "neurons": int(np.prod(lm["out_shape"])), "synapses": real_synapses(lm),
                       "fan_in_groups": plan["groups"], "tile": plan["tile"],
                       "threshold": lm["threshold"], "weight_bits": lm["weight_bits"]})
    load = arrays["link.load"]
    gx = board["grid_x"]
    cx, cy = spec["mesh"]["cores_x"], spec["mesh"]["cores_y"]
    hot = []
    for link in np.argsort(load)[::-1][:top_links]:
        if load[link] <= 0:
            break
        (x1, y1), (x2, y2) = link_endpoints(int(link), gx)
        hot.append({"from": [x1, y1], "to": [x2, y2], "port": PORT_NAMES[int(link) % 4],
                    "packets_per_step": float(load[link]),
                    "chip_to_chip": (x1 // cx != x2 // cx) or (y1 // cy != y2 // cy)})
    return {
        "source": meta["provenance"], "chip": spec["name"],
        "board": {"chips_x": board["chips_x"], "chips_y": board["chips_y"],
                  "chips": board["chips_x"] * board["chips_y"]},
        "cores_used": n_cores, "cores_total": total_slots, "cores_per_chip": cores_per_chip,
        "neurons": sum(l["neurons"] for l in layers),
        "synapses": sum(l["synapses"] for l in layers),
        "synapse_memory": {"max_bits": int(bits.max()), "mean_bits": float(bits.mean()),
                           "capacity_bits": cap, "max_fraction": float(bits.max() / cap),
                           "mean_fraction": float(bits.mean() / cap)},
        "fan_in_splits": {l["layer"]: l["fan_in_groups"] for l in layers if l["fan_in_groups"] > 1},
        "layers": layers,
        "placement": meta["placement"],
        "hottest_links": hot,
        "host_packets_per_step": meta["host_load"],
        "timesteps": meta["model"]["timesteps"], "encoding": meta["model"]["encoding"],
        "input_path": meta["model"]["input_path"],
    }


def mesh_map(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """ASCII map of the global core grid: a character per core naming its layer, '.' if free;
    partial-sum cores in lower case. Chips are separated by spaces and blank lines."""
    board = meta["board"]
    cx, cy = meta["spec"]["mesh"]["cores_x"], meta["spec"]["mesh"]["cores_y"]
    grid = [["." for _ in range(board["grid_x"])] for _ in range(board["grid_y"])]
    for layer, role, x, y in zip(arrays["core.layer"], arrays["core.role"], arrays["core.x"],
                                 arrays["core.y"], strict=True):
        ch = LAYER_CHARS[int(layer) % len(LAYER_CHARS)]
        grid[int(y)][int(x)] = ch.lower() if role == ROLES.index("partial") else ch
    lines = []
    for y, row in enumerate(grid):
        if y and y % cy == 0:
            lines.append("")
        lines.append(" ".join("".join(row[x:x + cx]) for x in range(0, len(row), cx)))
    names = meta["model"]["layers"]
    legend = ", ".join(f"{LAYER_CHARS[i % len(LAYER_CHARS)]}={l['name']}" for i, l in enumerate(names))
    return "\n".join(lines) + f"\nlegend: {legend} (lower case: partial-sum cores), .=free"


def format_summary(s: dict[str, Any], mesh: str) -> str:
    mem = s["synapse_memory"]
    out = [f"chip image of {s['source']['source']} for {s['chip']}: {s['board']['chips']} chip(s) "
           f"({s['board']['chips_x']}x{s['board']['chips_y']}), {s['cores_used']} of "
           f"{s['cores_total']} cores used",
           f"neurons {s['neurons']:,}, synapses {s['synapses']:,}, {s['encoding']} encoding, "
           f"T={s['timesteps']}, input path {s['input_path']}",
           f"synapse memory per core: max {mem['max_fraction']:.0%}, mean {mem['mean_fraction']:.0%} "
           f"of {mem['capacity_bits']:,} bits",
           f"placement cost {s['placement']['cost']:,.0f} vs row-major "
           f"{s['placement']['row_major_cost']:,.0f} "
           f"({s['placement']['cost'] / max(s['placement']['row_major_cost'], 1):.2f}x)",
           "", "layer    cores  partial  home  neurons    synapses     fan-in groups  threshold"]
    for l in s["layers"]:
        out.append(f"{l['layer']:<8} {l['cores']:>5}  {l['partial_cores']:>7}  {l['home_cores']:>4}  "
                   f"{l['neurons']:>7,}  {l['synapses']:>11,}  {l['fan_in_groups']:>13}  {l['threshold']:>9}")
    out += ["", "hottest links (packets per step if every source fires once):"]
    for h in s["hottest_links"]:
        out.append(f"  ({h['from'][0]},{h['from'][1]}) -> ({h['to'][0]},{h['to'][1]}) "
                   f"{h['packets_per_step']:,.0f}{'  chip-to-chip' if h['chip_to_chip'] else ''}")
    out += ["", mesh]
    return "\n".join(out)
