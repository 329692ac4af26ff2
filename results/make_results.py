#!/usr/bin/env python3
"""Rewrite RESULTS.md from the JSON files the listed commands wrote (results/data/).

    python3 results/make_results.py             # --check: only say whether RESULTS.md is current

No number is typed in here except the source paper's (PAPERS.md); a missing JSON shows as
"not run" rather than stopping the report.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "results" / "data"
GPU = DATA / "gpu"
MODELS = ("q4", "q4-hire")
NAMES = {"q4": "vgg5-cifar10-q4", "q4-hire": "vgg5-cifar10-q4-hire"}
PAPER_TABLE5 = {"algorithm": (5.42, 12.0, 23.27), "hardware": (7.02, 10.0, 24.52)}
PAPER_TABLE1 = {  # VGG5 (0.4, 1.0, 0.5): adv_loss at eps 2/8/16, Q1 float and Q2 4-bit
    "direct": ((7.41, 13.42, 34.52), (6.37, 11.65, 22.44)),
    "rate": ((3.21, 8.04, 13.81), (0.89, 3.24, 5.37)),
    "phase": ((2.32, 5.56, 16.33), (0.89, 3.24, 5.37)),
    "latency": ((1.82, 7.81, 25.88), (1.73, 7.74, 22.10)),
}


def load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def source_label(run: dict[str, Any], level: str) -> str:
    src = run["levels"][level].get("source", "")
    if src.startswith("model:"):
        return "transfer from " + src.split(":", 1)[1].split(" ")[0].replace(".pt", "")
    return {"hw": "hw (straight-through)" if run.get("attack") != "square" else "hw (square)"}.get(
        src, src)


def attack_rows(run: dict[str, Any] | None, name: str, attack: str) -> list[list[str]]:
    if run is None:
        return [[name, attack, "not run", "", "", "", "", ""]]
    rows = []
    for level, v in run["levels"].items():
        eps = v["eps"]
        cells = [f"{eps[e]['adv_acc']:.2f} / {eps[e]['adv_loss']:.2f}" if e in eps else ""
                 for e in ("2", "8", "16")]
        rows.append([name, attack, level, source_label(run, level), str(run["n"]),
                     pct(v["clean_acc"]), *cells])
    return rows


def agreement(run: dict[str, Any] | None) -> str:
    if run is None or not run.get("agreement"):
        return "not run"
    a = run["agreement"]
    parts = [f"clean {a['clean']['top1']:.1f}%"]
    parts += [f"eps {e}: {v['top1']:.1f}% ({v['flips']} flips)" for e, v in a["eps"].items()]
    return f"inputs from {a['inputs']}: " + ", ".join(parts)


@functools.cache
def history(name: str) -> dict[str, Any]:
    """The checkpoint's training history (ANN, conversion, every SNN epoch), read once."""
    import torch

    path = ROOT / "models" / f"{NAMES[name]}.pt"
    payload = torch.load(path, weights_only=True, map_location="cpu")
    return {"history": payload.get("history", []), "bytes": path.stat().st_size}


def targets_section() -> str:
    def last_quant(m: str) -> float:
        return history(m)["history"][-1]["val_acc_quant"]

    q4, hire = last_quant("q4"), last_quant("q4-hire")
    hw = load(DATA / "clean-hw-q4.json")
    f_q4, f_hire = load(GPU / "fgsm-q4.json"), load(GPU / "fgsm-q4-hire.json")
    rows = [["baseline 4-bit (quant) >= 87% on validation", f"{q4:.2f}%", "no" if q4 < 87 else "yes"]]
    if hw:
        gap = abs(hw["accuracy"] - q4)
        rows.append(["chip (hw) within 0.5 point of quant",
                     f"{hw['accuracy']:.2f}% vs {q4:.2f}% ({gap:.2f} apart)", "yes" if gap <= 0.5 else "no"])
    if f_q4 and f_hire:
        lq, lh = (r["levels"]["quant"]["eps"]["8"]["adv_loss"] for r in (f_q4, f_hire))
        rows.append(["HIRE: FGSM 8/255 quant adv_loss >= 5 points below the baseline's",
                     f"{lh:.2f} vs {lq:.2f} ({lq - lh:.2f} below)", "yes" if lq - lh >= 5 else "no"])
    rows.append(["HIRE: clean accuracy within 1.5 points of the baseline",
                 f"{hire:.2f}% vs {q4:.2f}% ({q4 - hire:.2f} below)", "yes" if q4 - hire <= 1.5 else "no"])
    return ("## The issue's targets, measured\n\nAll on the 5,000 validation images (quant: the float "
            "checkpoint's 4-bit view at the end of training; adv_loss: the GPU attack runs below).\n\n"
            + table(["target", "measured", "met"], rows) + "\n")


def models_section() -> str:
    runs = load(GPU / "run2" / "runs.json") or {"runs": {}, "machine": {}}
    rows = []
    for m in MODELS:
        r = runs["runs"].get(m, {})
        h = history(m)
        conv = next((e for e in h["history"] if e.get("phase") == "ann-to-snn"), {})
        last = h["history"][-1] if h["history"] else {}
        clean_hw = load(DATA / f"clean-hw-{m}.json")
        rows.append([f"`models/{NAMES[m]}.pt`", f"{h['bytes'] / 1e6:.1f} MB",
                     pct(conv.get("ann_val_acc")), pct(conv.get("converted_val_acc_quant")),
                     pct(last.get("val_acc_float")), pct(last.get("val_acc_quant")),
                     pct(clean_hw and clean_hw["accuracy"]),
                     f"{r.get('wall_seconds', 0):.0f} s"])
    mach = runs.get("machine", {})
    cmds = "\n".join(f"    {runs['runs'][m]['command']}" for m in MODELS if m in runs["runs"])
    return f"""## The models

Trained on the 45,000-image training split, scored on the 5,000-image validation split (the last
5,000 training images; no CIFAR-10 test image was used for training, tuning or reporting). The
ANN/converted/SNN columns are the checkpoint's own history (GPU, TF32); "chip" is the compiled
image on chipsim over all 5,000 validation images (`spikemesh simulate --no-noc`, CPU, integer).

{table(["model", "size", "ANN val", "converted (4-bit)", "SNN float (algo)", "SNN 4-bit (quant)",
        "chip (hw)", "train wall-clock"], rows)}

Both runs shared one {mach.get('gpu', 'GPU')} (torch {mach.get('torch', '?')}, {mach.get('cpus', '?')}
CPU cores), started together by `python3 results/train_gpu.py --only q4,q4-hire --ann-epochs 50
--epochs 18 ...`, which ran exactly these commands (results/data/gpu/run2/runs.json):

{cmds}

then `spikemesh export RUN.pt -o models/NAME.pt` (int8 weight codes, every 4-bit code kept: see
training/compact.py). The shipped files hold the float weights at 8-bit resolution, so their algo
level differs slightly from the float checkpoint's; the table's SNN columns are the float
checkpoint's, the attack tables below are the shipped files'.
"""


def attack_section() -> str:
    rows = []
    for m in MODELS:
        rows += attack_rows(load(DATA / f"fgsm-{m}.json"), m, "FGSM")
        rows += attack_rows(load(DATA / f"pgd-{m}.json"), m, "PGD-7")
        rows += attack_rows(load(DATA / f"fgsm-hwste-{m}.json"), m, "FGSM")
        other = "q4-hire" if m == "q4" else "q4"
        rows += attack_rows(load(DATA / f"transfer-from-{other}-{m}.json"), m, "FGSM")
        rows += attack_rows(load(DATA / f"square-hw-{m}.json"), m, "Square")
    gpu_rows = []
    for m in MODELS:
        gpu_rows += attack_rows(load(GPU / f"fgsm-{m}.json"), m, "FGSM")
        gpu_rows += attack_rows(load(GPU / f"pgd-{m}.json"), m, "PGD-7")
        source = "q4-to-hire" if m == "q4-hire" else "hire-to-q4"
        gpu_rows += attack_rows(load(GPU / f"transfer-{source}.json"), m, "FGSM")
    header = ["model", "attack", "level", "inputs crafted by", "n", "clean", "eps 2: acc / loss",
              "eps 8: acc / loss", "eps 16: acc / loss"]
    agree = "\n".join(f"- {m}, {kind}: {agreement(load(DATA / f'{kind}-{m}.json'))}"
                      for m in MODELS for kind in ("fgsm", "pgd", "fgsm-hwste"))
    square = []
    for m in MODELS:
        run = load(DATA / f"square-hw-{m}.json")
        for eps, v in ((run or {}).get("square", {}).get("hw", {})).items():
            square.append(f"- {m}: square on the chip at eps {eps}: {v['success_rate']:.1f}% of the "
                          f"{v['attacked']} correctly classified images fooled within {v['budget']} "
                          f"queries (median {v['median_queries']:.0f} queries)")
    square_text = "\n".join(square) or "- square on the chip: not run"
    return f"""## Attacks at three levels

Accuracy and adv_loss (clean minus adversarial accuracy) in %, eps in grey levels (/255), white-box
untargeted; the first validation images of the split, the same ones at every level of a row group.
Levels: algo = float weights (Q1), quant = 4-bit weights (Q2), both torch; hw = the compiled chip
image on chipsim (integer arithmetic). "inputs crafted by": each level attacks itself (hw reads
the quant level's inputs, the chip having no gradient), hw (straight-through) = gradients through
the integer model with straight-through spikes, square = score-based black box querying the
chip (500 queries per image), transfer = FGSM crafted on the other shipped model. PGD: 7 steps of
2/255 from a random start. Commands: results/run_cpu.sh (CPU, AMD EPYC Zen 4, 2 cores).

{table(header, rows)}

The same on all 5,000 validation images, on the float checkpoints (RUN.pt: the `-o` of the train
commands above), on the GPU (cuDNN convolutions in TF32, PyTorch's default there), written to
results/data/gpu/ by

    spikemesh attack RUN.pt --data-dir DIR --levels algo,quant --device cuda --n 5000 \\
        --batch-size 500 --attack fgsm --eps 2,8,16 --json fgsm-RUN.json
    spikemesh attack RUN.pt ... --attack pgd --eps 8 --json pgd-RUN.json
    spikemesh attack q4.pt ... --source-model q4-hire.pt --attack fgsm --eps 8 --json transfer-hire-to-q4.json

{table(header, gpu_rows)}

hw vs quant top-1 agreement on the same inputs:
{agree}

Black box on the chip:
{square_text}
"""


def activity_section() -> str:
    out = []
    for m in MODELS:
        run = load(DATA / f"fgsm-{m}.json")
        if run is None:
            continue
        rows = []
        for level, v in run["levels"].items():
            layers = list(v["spike_activity"])
            rows.append([level, "clean", *(f"{v['spike_activity'][k]:.4f}" for k in layers)])
            for e, act in v.get("spike_activity_adv", {}).items():
                rows.append([level, f"FGSM {e}", *(f"{act[k]:.4f}" for k in layers)])
            for e, nsr in v.get("nsr", {}).items():
                rows.append([level, f"NSR {e}", *(f"{nsr[k]:+.4f}" for k in layers)])
        out.append(f"### {m}\n\n" + table(["level", "inputs", *layers], rows))
    return ("## Spike activity and NSR\n\nMean spikes per neuron per time step, per layer, and "
            "NSR = (SA1 - SA2) / SA1 (eq. 14's inverse SNR; negative: the attack adds spikes), "
            "from the FGSM runs above.\n\n" + "\n\n".join(out) + "\n")


def chip_section() -> str:
    rows = []
    for m in MODELS:
        c = load(DATA / f"compile-{m}.json")
        s = load(DATA / f"noc-{m}.json")
        if c is None or s is None:
            rows.append([m, "not run", "", "", "", "", ""])
            continue
        lat = s.get("packet_latency_cycles", {})
        rows.append([m, str(c.get("cores", "?")), str(c.get("chips", "?")),
                     f"{s['cycles_per_step']:.0f} (max {s['max_cycles_per_step']})",
                     f"{lat.get('mean', 0):.1f} / {lat.get('p99', 0)} / {lat.get('max', 0)}",
                     f"{s['energy_uj_per_inference']:.1f}",
                     f"{s['sops_per_inference'] / 1e6:.1f}M"])
    paths = []
    for label, m in (("graded (the preset's, shipped)", "q4"), ("host", "q4-host")):
        c, h = load(DATA / f"compile-{m}.json"), load(DATA / f"clean-hw-{m}.json")
        v = (c or {}).get("verify") or {}
        paths.append([label, "not run" if h is None else pct(h["accuracy"]),
                      "not run" if not v else f"{v.get('agreement', 0):.1f}%"])
    rows_paths = table(["input path", "chip accuracy, 5,000 validation images",
                        "agreement with quant (compile --verify 1000)"], paths)
    return f"""## The chip

{rows_paths}

pku-nc64c preset (64 cores x 1,024 neurons per chip, boards of several chips), graded input path,
`spikemesh compile` then `spikemesh simulate --n 200` with the cycle-level NoC model:

{table(["model", "cores", "chips", "cycles per time step", "packet latency mean / p99 / max (cycles)",
        "energy per inference (uJ)", "SOPs per inference"], rows)}

{traffic_section()}"""


def traffic_section() -> str:
    t = load(DATA / "traffic-q4.json")
    if t is None:
        return "Traffic clean vs adversarial: not run.\n"
    c, a = t["clean"], t["adversarial"]

    def row(label: str, cv: float, av: float, fmt: str = "{:,.1f}") -> list[str]:
        change = f"{100 * (av - cv) / cv:+.1f}%" if cv else ""
        return [label, fmt.format(cv), fmt.format(av), change]

    rows = [row("accuracy (%)", c["accuracy"], a["accuracy"]),
            row("cycles per time step", c["cycles_per_step"], a["cycles_per_step"], "{:,.0f}"),
            row("packets per inference", c["packet_latency_cycles"]["packets_per_inference"],
                a["packet_latency_cycles"]["packets_per_inference"], "{:,.0f}"),
            row("packet latency mean (cycles)", c["packet_latency_cycles"]["mean"],
                a["packet_latency_cycles"]["mean"]),
            row("packet latency p99 (cycles)", c["packet_latency_cycles"]["p99"],
                a["packet_latency_cycles"]["p99"], "{:,.0f}"),
            row("energy per inference (uJ)", c["energy_uj_per_inference"], a["energy_uj_per_inference"])]
    for layer, v in t["difference"]["spikes_per_layer"].items():
        rows.append(row(f"{layer} spikes per inference", v["clean"], v["adversarial"], "{:,.0f}"))
    return f"""Traffic of the baseline's chip image, clean vs FGSM 8/255 crafted on its 4-bit model (the
first {c['n']} validation images, `spikemesh traffic CHIP --adversarial models/vgg5-cifar10-q4.pt
--n {c['n']}`); most loaded layer {c['most_loaded_layer']} (clean) and {a['most_loaded_layer']}
(adversarial):

{table(["", "clean", "FGSM 8/255", "change"], rows)}

Packets received per core, clean and adversarial, and their difference (the letter is the
layer a core serves; lower case: a partial-sum core):

![clean](docs/results-traffic-q4-clean.png)
![adversarial](docs/results-traffic-q4-adversarial.png)
![difference](docs/results-traffic-q4-difference.png)
"""


def paper_section() -> str:
    rows = []
    for m in ("q4",):
        run = load(DATA / f"fgsm-{m}.json")
        for lvl, paper in (("quant", "algorithm"), ("hw", "hardware")):
            ours = ("not run",) * 3 if run is None else tuple(
                pct(run["levels"][lvl]["eps"][e]["adv_loss"]) if lvl in run["levels"] else "n/a"
                for e in ("2", "8", "16"))
            rows.append([paper, *(f"{p:.2f}" for p in PAPER_TABLE5[paper]), *ours])
    t1 = []
    for enc, (q1, q2) in PAPER_TABLE1.items():
        gpu_run = load(GPU / f"fgsm-{'q4' if enc == 'direct' else enc + '-t8'}.json")
        run = gpu_run or load(DATA / f"fgsm-{enc}-t8.json")
        where = "" if run is None else f"{run['n']}, {'GPU' if gpu_run else 'CPU'}"
        for lvl, paper in (("algo", q1), ("quant", q2)):
            ours = ["not run"] * 3 if run is None else [
                pct(run["levels"][lvl]["eps"][e]["adv_loss"]) for e in ("2", "8", "16")]
            clean = "" if run is None else pct(run["levels"][lvl]["clean_acc"])
            t1.append([enc, "Q1 float" if lvl == "algo" else "Q2 4-bit",
                       " / ".join(f"{p:.2f}" for p in paper), " / ".join(ours), clean, where])
    return f"""## Against the paper

Table 5 (VGG5, direct, 4-bit; adv_loss in points at FGSM 2 / 8 / 16). The paper's "algorithm"
row is its 4-bit model in software, so it sits beside our quant level:

{table(["level", "paper 2", "paper 8", "paper 16", "ours 2", "ours 8", "ours 16"], rows)}

Table 1 (VGG5, (0.4, 1.0, 0.5)); ours: direct T=4 is the shipped baseline (its float
checkpoint), rate/phase/latency are T=8 models trained briefly (6-9 ANN and 6-7 SNN epochs, all
five runs sharing the GPU: results/data/gpu/run1/runs.json has their commands); "n" is how many
validation images, and where the attack ran (GPU: the float checkpoint; CPU: the exported file,
`results/run_cpu.sh`):

{table(["encoding", "weights", "paper adv_loss 2 / 8 / 16", "ours adv_loss 2 / 8 / 16", "ours clean",
        "n"], t1)}
"""


def trim(src: str, dst: str) -> None:
    """Keep a simulate --json report's figures, not its per-core and per-link lists."""
    report = json.loads(Path(src).read_text())
    kept = {k: v for k, v in report.items() if k not in ("cores", "links", "routers")}
    if isinstance(kept.get("packet_latency_cycles"), dict):
        kept["packet_latency_cycles"].pop("per_step", None)
    Path(dst).write_text(json.dumps(kept, indent=1) + "\n")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "trim":
        trim(sys.argv[2], sys.argv[3])
        return
    check = sys.argv[1:] == ["--check"]
    parts = [(ROOT / "results" / "RESULTS.head.md").read_text().rstrip() + "\n", targets_section(),
             models_section(),
             attack_section(), activity_section(), chip_section(), paper_section(),
             (ROOT / "results" / "RESULTS.tail.md").read_text().rstrip() + "\n"]
    text = "\n".join(parts)
    if check:
        if (ROOT / "RESULTS.md").read_text() != text:
            sys.exit("RESULTS.md is stale: run python3 results/make_results.py")
        return
    (ROOT / "RESULTS.md").write_text(text)
    print(f"wrote {ROOT / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
