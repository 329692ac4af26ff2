"""`spikemesh bench`: benchmarks as code. Each measures a ratio against a baseline run in the
same process, prints machine info, and returns a markdown section for BENCHMARKS.md."""

from __future__ import annotations

import time
from typing import Any

from spikemesh.machine import machine_info, machine_line


def bench_training(quick: bool = False) -> dict[str, Any]:
    """Epoch time of HIRE noise training against plain training (issue claim: within 10%).

    Same model, data, batches and seed; the runs alternate (none, hire, none, hire, ...) so
    drift in machine load hits both equally, and the ratio of medians is reported.
    """
    import torch

    from training.data import load_dataset
    from training.data.augment import random_crop_flip
    from training.evaluate import to_float
    from training.models import ModelConfig, build_model
    from training.noise import NoiseConfig, train_step

    n_images, repeats, timesteps = (256, 2, 4) if quick else (1024, 3, 4)
    data = load_dataset("synthetic", val_size=100, synthetic_train=n_images)
    kinds = {"none": NoiseConfig("none"), "hire": NoiseConfig("hire", eps=8 / 255, periods=2)}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(repeats):
        for kind, noise in kinds.items():
            torch.manual_seed(0)
            model = build_model(ModelConfig(arch="vgg5", timesteps=timesteps))
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=3e-4)
            gen = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            for b in range(0, n_images, 32):
                x = random_crop_flip(to_float(data.train.images[b:b + 32]), generator=gen)
                opt.zero_grad(set_to_none=True)
                train_step(model, x, data.train.labels[b:b + 32], noise)
                opt.step()
            times[kind].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    ratio = med["hire"] / med["none"]
    md = "\n".join([
        "## Training: HIRE noise vs plain epoch time",
        "",
        f"Machine: {machine_line()}",
        "",
        f"VGG5, direct, T={timesteps}, batch 32, {n_images} synthetic images per epoch, "
        f"median of {repeats} alternating runs.",
        "",
        "| noise | epoch s | images/s |",
        "|---|---|---|",
        *[f"| {k} | {med[k]:.2f} | {n_images / med[k]:.0f} |" for k in kinds],
        "",
        f"hire / none epoch time: **{ratio:.3f}** (claim: within 1.10)",
    ])
    return {"benchmark": "training", "machine": machine_info(), "images": n_images,
            "timesteps": timesteps, "seconds": times, "median_seconds": med,
            "hire_over_none": ratio, "markdown": md}


BENCHES = {"training": bench_training}


def run_bench(which: str, quick: bool = False) -> dict[str, Any]:
    return BENCHES[which](quick=quick)
