#!/usr/bin/env python3
"""Train issue 18's CIFAR-10 models side by side on one GPU within a fixed wall-clock budget.

    python3 results/train_gpu.py --data-dir DIR --runs RUNS --ship SHIP --budget SECONDS

Every model is an ordinary `spikemesh train` run (the exact command lines are written to
RUNS/runs.json). The epoch counts are not guessed: all runs first train for a few seconds at
once (each on 8,192 images, two ANN and two SNN epochs, timed on the second of each: the first
carries CUDA start-up and cuDNN's autotuning, and timed alone it underestimated the ANN's rate
sixfold on an H200), which measures what each gets of the shared GPU; the ANN and SNN epochs are
then set so each run fills the budget (ANN_SHARE of it in the ReLU ANN, the rest in the SNN). A
run still going at the budget's end is stopped; its last per-epoch checkpoint stays. Each
finished checkpoint is exported with `spikemesh export` to SHIP (int8 weight codes, a few MB
each). Nothing here is specific to one GPU model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

TRAIN_IMAGES = 45_000
VAL_IMAGES = 5_000
PROBE_IMAGES = 8_192
ANN_SHARE = 0.35           # of each run's budget spent in the ReLU ANN before conversion
MAX_ANN_EPOCHS, MAX_EPOCHS = 80, 60
COMMON = ["--dataset", "cifar10", "--weight-bits", "4", "--device", "cuda", "--batch-size", "128",
          "--lr", "5e-4", "--threads", "2", "--quiet"]
RUNS = {   # name -> its own options; the shipped names are vgg5-cifar10-<name>.pt
    "q4": ["-T", "4", "--encoding", "direct"],
    "q4-hire": ["-T", "4", "--encoding", "direct", "--noise", "hire", "--noise-eps", "8",
                "--noise-periods", "2"],
    "rate-t8": ["-T", "8", "--encoding", "rate"],
    "phase-t8": ["-T", "8", "--encoding", "phase"],
    "latency-t8": ["-T", "8", "--encoding", "latency"],
}
ANN_RATE = re.compile(r"ANN epoch \d+/\d+: .*?\((\d+)s, (\d+) img/s\)")
SNN_RATE = re.compile(r"^epoch \d+/\d+: .*?\((\d+)s, (\d+) img/s\)", re.M)


def spikemesh(*args: str) -> list[str]:
    return [sys.executable, "-m", "spikemesh.cli", *args]


def launch(cmd: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def wait_all(procs: dict[str, subprocess.Popen], deadline: float,
             ended: dict[str, float] | None = None) -> dict[str, int | None]:
    """Wait until every process ends or the deadline passes; stop the rest with SIGINT (the
    trainer's checkpoints are written atomically, so the last finished epoch survives).
    ``ended`` receives the time each process was seen to end."""
    ended = {} if ended is None else ended
    while time.time() < deadline and any(p.poll() is None for p in procs.values()):
        time.sleep(1)
        ended.update({n: time.time() for n, p in procs.items() if p.poll() is not None and n not in ended})
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs.values():
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    return {n: p.returncode for n, p in procs.items()}


def probe(data_dir: str, runs: Path, deadline: float, images: int) -> dict[str, tuple[float, float]]:
    """(ANN images/s, SNN images/s) of every run while all run at once."""
    procs = {}
    for name, opts in RUNS.items():
        cmd = spikemesh("train", *COMMON, *opts, "--data-dir", data_dir, "--train-size",
                        str(images), "--eval-size", "512", "--ann-epochs", "2", "--epochs", "2",
                        "-o", str(runs / f"probe-{name}.pt"))
        procs[name] = launch(cmd, runs / f"probe-{name}.log")
    codes = wait_all(procs, deadline)
    rates = {}
    for name in RUNS:
        text = (runs / f"probe-{name}.log").read_text()
        ann, snn = ANN_RATE.findall(text), SNN_RATE.findall(text)
        if codes[name] != 0 or not ann or not snn:
            sys.exit(f"probe {name} failed (exit {codes[name]}):\n{text[-3000:]}")
        rates[name] = (float(ann[-1][1]), float(snn[-1][1]))
        (runs / f"probe-{name}.pt").unlink(missing_ok=True)
    return rates


def plan(rates: tuple[float, float], budget: float, images: int = TRAIN_IMAGES) -> tuple[int, int]:
    """ANN and SNN epochs that fill ``budget`` seconds at the probed rates (an SNN epoch also
    scores the validation split twice, float and 4-bit, at about three training steps' speed)."""
    ann_rate, snn_rate = rates
    ann = int(ANN_SHARE * budget * ann_rate / images)
    snn_epoch = images / snn_rate + 2 * VAL_IMAGES / (3 * snn_rate)
    snn = int((1 - ANN_SHARE) * budget / snn_epoch)
    return max(1, min(MAX_ANN_EPOCHS, ann)), max(1, min(MAX_EPOCHS, snn))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--runs", required=True, help="folder for checkpoints and logs")
    ap.add_argument("--ship", required=True, help="folder for the exported models")
    ap.add_argument("--budget", type=float, required=True, help="seconds for everything")
    ap.add_argument("--only", default=None, help="comma-separated run names (default: all)")
    ap.add_argument("--device", default="cuda", help="cpu only to try this script out")
    ap.add_argument("--probe-images", type=int, default=PROBE_IMAGES)
    ap.add_argument("--ann-epochs", type=int, default=None,
                    help="with --epochs: these epoch counts for every run, no probe")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--train-size", type=int, default=None, help="fewer images, to try it out")
    ap.add_argument("--train-args", default="",
                    help='more `spikemesh train` options for every run, e.g. "--weight-decay 5e-4"')
    a = ap.parse_args()
    COMMON[COMMON.index("--device") + 1] = a.device
    COMMON.extend(shlex.split(a.train_args))
    start = time.time()
    end = start + a.budget
    if a.only:
        for name in set(RUNS) - set(a.only.split(",")):
            del RUNS[name]
    runs, ship = Path(a.runs), Path(a.ship)
    runs.mkdir(parents=True, exist_ok=True)
    ship.mkdir(parents=True, exist_ok=True)
    export_reserve = 15 + 5 * len(RUNS)
    if a.ann_epochs is not None and a.epochs is not None:
        rates = {}                                       # epochs given: no probe
    else:
        rates = probe(a.data_dir, runs, end - export_reserve, a.probe_images)
    probe_s = time.time() - start
    train_budget = end - time.time() - export_reserve - 30   # 30: start-up and the last epoch's save
    record = {"machine": machine(), "probe_seconds": probe_s, "train_budget_seconds": train_budget,
              "runs": {}}
    procs = {}
    for name, opts in RUNS.items():
        ann, snn = ((a.ann_epochs, a.epochs) if a.epochs is not None and a.ann_epochs is not None
                    else plan(rates[name], train_budget, a.train_size or TRAIN_IMAGES))
        out = runs / f"{name}.pt"
        cmd = spikemesh("train", *COMMON, *opts, "--data-dir", a.data_dir, "--eval-size",
                        str(VAL_IMAGES), "--ann-epochs", str(ann), "--epochs", str(snn),
                        "--json", str(runs / f"{name}.json"), "-o", str(out),
                        *(["--train-size", str(a.train_size)] if a.train_size else []))
        probed = rates.get(name)
        record["runs"][name] = {"command": shlex.join(["spikemesh", *cmd[3:]]),
                                "probe_images_per_s": probed and {"ann": probed[0], "snn": probed[1]},
                                "ann_epochs": ann, "epochs": snn}
        how = f"probed {probed[0]:.0f} / {probed[1]:.0f} img/s" if probed else "as given"
        print(f"{name}: {ann} ANN + {snn} SNN epochs ({how})", flush=True)
        procs[name] = launch(cmd, runs / f"{name}.log")
    t0, ended = time.time(), {}
    codes = wait_all(procs, end - export_reserve, ended)
    for name in RUNS:
        r = record["runs"][name]
        r["exit"], r["wall_seconds"] = codes[name], ended.get(name, time.time()) - t0
        out = runs / f"{name}.pt"
        if out.exists():
            shipped = ship / f"vgg5-cifar10-{name}.pt"
            done = subprocess.run(spikemesh("export", str(out), "-o", str(shipped)),
                                  capture_output=True, text=True)
            r["export"] = (done.stdout + done.stderr).strip()
        print(f"{name}: exit {codes[name]}; {r.get('export', 'no checkpoint')}", flush=True)
        print((runs / f"{name}.log").read_text()[-1500:], flush=True)
    (runs / "runs.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"total {time.time() - start:.0f}s", flush=True)
    return 0


def machine() -> dict[str, str]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"gpu": gpu, "torch": torch.__version__, "cpus": str(os.cpu_count()),
            "python": sys.version.split()[0]}


if __name__ == "__main__":
    sys.exit(main())
