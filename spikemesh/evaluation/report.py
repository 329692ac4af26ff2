"""The attack evaluation as text: the Table 5-shaped table, then spike activity, NSR, hw-vs-quant
agreement and the square attack's query counts."""

from __future__ import annotations

from typing import Any


def _grid(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*head), fmt.format(*["-" * w for w in widths]),
            *(fmt.format(*r) for r in rows)]


def format_table(result: dict[str, Any]) -> str:
    levels = result["levels"]
    eps_keys = list(next(iter(levels.values()))["eps"]) if levels else []
    title = (f"{result['attack']}{' (targeted)' if result['targeted'] else ''}, n={result['n']}, "
             f"{result.get('encoding', '?')} encoding, T={result.get('timesteps', '?')}; "
             "eps in grey levels (/255), accuracy and adv_loss in %")
    head = ["level", "inputs from", "clean"] + [f"eps {k}: acc / loss" for k in eps_keys]
    rows = []
    for name, lv in levels.items():
        bits = "float" if lv["weight_bits"] is None else f"{lv['weight_bits']}-bit"
        rows.append([f"{name} ({bits})", lv["source"], f"{lv['clean_acc']:.2f}"]
                    + [f"{lv['eps'][k]['adv_acc']:.2f} / {lv['eps'][k]['adv_loss']:.2f}"
                       for k in eps_keys])
    lines = [title, *_grid(head, rows)]
    layer_names = list(next(iter(levels.values()))["spike_activity"]) if levels else []
    if layer_names:
        lines.append("")
        head = ["spike activity", "inputs", *layer_names]
        rows = []
        for name, lv in levels.items():
            rows.append([name, "clean", *(f"{lv['spike_activity'][l]:.4f}" for l in layer_names)])
            for k in eps_keys:
                act = lv["spike_activity_adv"][k]
                rows.append([name, f"eps {k}", *(f"{act.get(l, 0.0):.4f}" for l in layer_names)])
        lines += _grid(head, rows)
        lines.append("")
        head = ["NSR (eq. 14)", "eps", *layer_names]
        rows = [[name, k, *(f"{lv['nsr'][k].get(l, 0.0):+.4f}" for l in layer_names)]
                for name, lv in levels.items() for k in eps_keys]
        lines += _grid(head, rows)
    if "agreement" in result:
        ag = result["agreement"]
        parts = [f"clean {ag['clean']['top1']:.1f}% ({ag['clean']['flips']} flips)"]
        parts += [f"eps {k} {a['top1']:.1f}% ({a['flips']} flips: {a['hw_only_correct']} right "
                  f"only on hw, {a['quant_only_correct']} only on quant)"
                  for k, a in ag["eps"].items()]
        lines += ["", f"hw vs quant top-1 agreement on the inputs hw read ({ag['inputs']}): "
                  + "; ".join(parts)]
    if "hw_source_exact" in result:
        ex = result["hw_source_exact"]
        lines.append(f"hw-ste: on {ex['identical']} of {ex['images']} crafted inputs the chip's "
                     "output accumulators equal the integer model the gradient went through")
    for per_eps in result.get("square", {}).values():
        for k, s in per_eps.items():
            q = ("no image fooled" if s["mean_queries"] is None else
                 f"mean {s['mean_queries']:.1f} / median {s['median_queries']:.0f} queries")
            lines.append(f"square on {s['queried_level']}, eps {k}: {s['success_rate']:.1f}% of the "
                         f"{s['attacked']} clean-correct images "
                         f"fooled within {s['budget']} queries ({q}); "
                         f"{s['queries_per_second']:,.0f} queries/s")
    return "\n".join(lines)
