"""The NoC model's latency-throughput curve on the setting BookSim2 is usually run on: an 8x8
mesh, uniform random single-flit packets, XY routing, 4-flit input buffers, offered loads
0.05-0.5 flits/node/cycle, latency from packet creation (source queueing included).

Two router configurations: spikemesh's default single-cycle router, and one set up like
BookSim2's single-virtual-channel input-queued router (its route computation and allocation
stages held at the head of the one VC, a two-cycle switch-and-link traversal, a two-cycle
credit loop). The BookSim2 figures beside them are the ones the issue gives, measured on this
machine type: 1 VC saturates near 0.17 with ~27 cycles zero-load latency at 6.2 average hops;
16 VCs near 0.43; 0.5 is the bound for uniform traffic on an 8x8 mesh.
"""

from __future__ import annotations

from typing import Any

from chipsim.latency import summary
from chipsim.noc import uniform_traffic

CONFIGS = {
    "spikemesh default (1-cycle router)": {"hop_cycles": 1, "router_cycles": 0, "credit_cycles": 1},
    "BookSim2-like 1 VC": {"hop_cycles": 2, "router_cycles": 2, "credit_cycles": 2},
}
BOOKSIM = {"1 VC saturation": 0.17, "1 VC zero-load latency": 27.0, "16 VC saturation": 0.43,
           "uniform bound": 0.5}
STABLE = 0.95       # a point is below saturation while it accepts >= 95% of what is offered


def curve(config: dict[str, int], rates: list[float], *, warmup: int, cycles: int,
          drain: int, seed: int = 1) -> list[dict[str, Any]]:
    rows = []
    for rate in rates:
        res = uniform_traffic(8, 8, rate=rate, cycles=cycles, warmup=warmup, drain=drain,
                              depth=4, seed=seed, **config)
        lat = summary(res["latency_hist"], res["latency"])
        stable = res["accepted"] >= STABLE * rate
        rows.append({"offered": rate, "accepted": res["accepted"], "stable": stable,
                     "delivered_of_window": lat["packets"] / max(res["window_created"], 1),
                     "mean_latency": lat["mean"], "p99_latency": lat["p99"]})
    return rows


def saturation(rows: list[dict[str, Any]]) -> float:
    """The highest accepted rate of the sweep: where accepted traffic stops following offered."""
    return max(r["accepted"] for r in rows)


def bench_noc_curve(quick: bool = False) -> dict[str, Any]:
    step = 0.05 if quick else 0.025
    rates = [round(0.05 + step * i, 3) for i in range(int(round(0.45 / step)) + 1)]
    warmup, cycles, drain = (500, 2000, 1000) if quick else (2000, 8000, 3000)
    out = {name: curve(cfg, rates, warmup=warmup, cycles=cycles, drain=drain)
           for name, cfg in CONFIGS.items()}
    zero_load = {name: rows[0]["mean_latency"] for name, rows in out.items()}
    sat = {name: saturation(rows) for name, rows in out.items()}
    md = ["### Latency-throughput curve against BookSim2 (8x8, uniform, XY, 4-flit buffers)", "",
          f"Warmup {warmup:,} cycles, {cycles:,} measured, {drain:,} more to deliver the measured "
          "packets; latency from creation to delivery (source queue included). A point is "
          f"saturated (sat) once it accepts under {STABLE:.0%} of the offered load; its latency "
          "then grows with the run's length and is not shown.", "",
          "| offered | " + " | ".join(f"{n}: accepted / mean / p99" for n in out) + " |",
          "|---|" + "---|" * len(out)]
    for i, rate in enumerate(rates):
        cells = []
        for rows in out.values():
            r = rows[i]
            lat = (f"{r['mean_latency']:.1f} / {r['p99_latency']}" if r["stable"] else "sat")
            cells.append(f"{r['accepted']:.3f} / {lat}")
        md.append(f"| {rate:.3f} | " + " | ".join(cells) + " |")
    md += ["", "| | saturation throughput | zero-load latency (at 0.05) |", "|---|---|---|"]
    md += [f"| {n} | {sat[n]:.3f} | {zero_load[n]:.1f} |" for n in out]
    md += [f"| BookSim2 1 VC (issue) | {BOOKSIM['1 VC saturation']:.2f} | "
           f"{BOOKSIM['1 VC zero-load latency']:.0f} |",
           f"| BookSim2 16 VC (issue) | {BOOKSIM['16 VC saturation']:.2f} | |",
           f"| ideal bound | {BOOKSIM['uniform bound']:.2f} | |"]
    return {"rates": rates, "curves": out, "saturation": sat, "zero_load_latency": zero_load,
            "booksim": BOOKSIM, "markdown": "\n".join(md)}
