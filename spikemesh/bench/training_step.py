"""`spikemesh bench training`: the VGG5 training step, engine against engine, in one process.

Images/s of one optimizer step (forward, backward, Adam) for the layer-major engine (the default),
the step-by-step reference, and the same VGG5 written the usual snnTorch way (per-step
``snn.Leaky`` layers; skipped with a reason when snnTorch is not installed), at T = 4 and 8 and
batch 32 and 64. Both of spikemesh's engines step with the trainer's Adam (training.optimizer:
fused), the snnTorch-style model with ``torch.optim.Adam`` as its users write it; the layer-major
engine also runs with that plain Adam, so the table separates the engine from the optimizer.
Rounds interleave the engines so drift in machine load hits all of them; the best round counts.
The machine's own fp32 matrix-multiply rate is measured too, and the step's FLOP rate reported
as a fraction of it: the physical bound on this machine. Where the CPU has
native bfloat16 (training.precision), the layer-major engine runs a second time with
``--precision bf16``, against the machine's bf16 matrix-multiply rate. Data loading and
augmentation are timed separately, as a fraction of the step.

A second table times the SNN step the CIFAR-10 recipe runs (VGG5 direct T=4, batch 128, bf16
where native) with float weights and with 4-bit QAT, whose weights are quantized on every
forward pass either by the fused CPU kernel (training.quant, the default) or by the torch
expression it replaces. (The hybrid phase's ReLU ANN trains on float weights: no QAT there.)
"""

from __future__ import annotations

import time
from typing import Any

ENGINES = ("multistep", "reference", "snntorch")
PLAIN_ADAM = "multistep-plain-adam"
BF16 = "multistep-bf16"


def matmul_gflops(n: int = 2048, repeats: int = 5, dtype=None) -> float:
    """Best GFLOP/s of an n x n matrix multiply (torch, all its threads; float32 by default)."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def forward_macs(cfg) -> int:
    """Multiply-accumulates of one image's forward pass (conv1 once under direct encoding,
    every other layer once per step)."""
    from training.models import POOL

    c_in, size, macs, first = cfg.in_channels, cfg.image_size, 0, True
    for f in cfg.features:
        if f == POOL:
            size //= 2
            continue
        per_step = int(f) * c_in * 9 * size * size
        macs += per_step * (1 if first and cfg.encoding == "direct" else cfg.timesteps)
        c_in, first = int(f), False
    n_in = c_in * size * size
    for h in (*cfg.hidden, cfg.num_classes):
        macs += n_in * h * cfg.timesteps
        n_in = h
    return macs


def _snntorch_vgg5(cfg):
    """VGG5 the way snnTorch tutorials write it: modules plus one snn.Leaky per layer, stepped
    in a Python loop, the conv1 current recomputed every step."""
    import snntorch as snn
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
            self.c2 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
            self.c3 = nn.Conv2d(128, 128, 3, padding=1, bias=False)
            self.f1, self.f2 = nn.Linear(8192, 1024, bias=False), nn.Linear(1024, 10, bias=False)
            self.l1, self.l2, self.l3 = (snn.Leaky(beta=cfg.leak, threshold=cfg.theta_conv)
                                         for _ in range(3))
            self.l4 = snn.Leaky(beta=cfg.leak, threshold=cfg.theta_fc)

        def forward(self, x):
            m1, m2, m3, m4 = (lif.init_leaky() for lif in (self.l1, self.l2, self.l3, self.l4))
            out = 0
            for _ in range(cfg.timesteps):
                s1, m1 = self.l1(self.c1(x), m1)
                s2, m2 = self.l2(self.c2(nn.functional.avg_pool2d(s1, 2)), m2)
                s3, m3 = self.l3(self.c3(s2), m3)
                s4, m4 = self.l4(self.f1(nn.functional.avg_pool2d(s3, 2).flatten(1)), m4)
                out = out + self.f2(s4)
            return out / cfg.timesteps

    torch.manual_seed(0)
    return Net()


def _rate(engine: str, timesteps: int, batch: int, steps: int) -> float:
    """Images/s of ``steps`` optimizer steps of ``engine`` after two warm-up steps."""
    import torch

    from training.models import ModelConfig, build_model

    cfg = ModelConfig(arch="vgg5", timesteps=timesteps)
    torch.manual_seed(0)
    if engine == "snntorch":
        model = _snntorch_vgg5(cfg)
    else:
        model = build_model(cfg)
        model.engine = engine.removesuffix("-bf16").removesuffix("-plain-adam")
        if engine == BF16:
            model.train_dtype = torch.bfloat16
    return _steps_rate(model, batch, steps, trainer_adam=engine not in ("snntorch", PLAIN_ADAM))


def _steps_rate(model, batch: int, steps: int, trainer_adam: bool = True) -> float:
    """Images/s of ``steps`` Adam steps of ``model`` on random images after two warm-up steps,
    with the trainer's Adam (fused) or torch's plain one."""
    import torch
    import torch.nn.functional as F

    from training.optimizer import adam

    model.train()
    opt = (adam(model.parameters(), lr=3e-4) if trainer_adam
           else torch.optim.Adam(model.parameters(), lr=3e-4))
    x, y = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    for i in range(2 + steps):
        if i == 2:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


QAT_VARIANTS = ("float", "4-bit torch", "4-bit fused")


def _qat_rate(variant: str, batch: int, steps: int, dtype) -> float:
    """Images/s of ``steps`` optimizer steps of the SNN, VGG5 direct T=4, in one of
    ``QAT_VARIANTS``."""
    import torch

    import training.quant
    from training.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="vgg5", timesteps=4,
                                    weight_bits=None if variant == "float" else 4))
    model.train_dtype = dtype
    training.quant.FUSED_ON_CPU = variant != "4-bit torch"
    try:
        return _steps_rate(model, batch, steps)
    finally:
        training.quant.FUSED_ON_CPU = True


def bench_qat_step(quick: bool = False) -> dict[str, Any]:
    """The CIFAR-10 recipe's SNN step, float vs 4-bit QAT (torch expression vs fused kernel)."""
    import torch

    from training.precision import native_bf16_cpu

    dtype = torch.bfloat16 if native_bf16_cpu() else torch.float32
    batch, rounds, steps = (32, 1, 1) if quick else (128, 3, 3)
    best = {v: 0.0 for v in QAT_VARIANTS}
    for _ in range(rounds):
        for v in QAT_VARIANTS:
            best[v] = max(best[v], _qat_rate(v, batch, steps, dtype))
    return {"batch": batch, "precision": str(dtype).removeprefix("torch."),
            "images_per_second": best}


def _augment_seconds(batch: int, repeats: int = 20) -> float:
    """Seconds to turn one batch of uint8 images into augmented float input."""
    import torch

    from training.data.augment import random_crop_flip
    from training.evaluate import to_float

    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for _ in range(repeats):
        random_crop_flip(to_float(images), generator=gen)
    return (time.perf_counter() - t) / repeats


def bench_training_step(quick: bool = False) -> dict[str, Any]:
    import torch

    from training.allocator import keep_freed_memory
    from training.models import ModelConfig
    from training.precision import native_bf16_cpu

    tuned = keep_freed_memory()           # as `spikemesh train` does; every engine alike
    try:
        import snntorch  # noqa: F401
        engines, skipped = ENGINES, None
    except ImportError:
        engines = ENGINES[:2]
        skipped = "snnTorch is not installed (pip install -e '.[bench]')"
    engines = (*engines, PLAIN_ADAM)
    bf16 = native_bf16_cpu()
    if bf16:
        engines = (*engines, BF16)
    settings = [(4, 32)] if quick else [(4, 32), (4, 64), (8, 32), (8, 64)]
    rounds, steps = (1, 1) if quick else (3, 3)
    n = 1024 if quick else 2048
    # The matmul rate is sampled in every round too, and its best taken, as the engines' are:
    # one sample up front read 217 GFLOP/s on a machine whose best in the same run was 435.
    peak = matmul_gflops(n)
    peak_bf16 = matmul_gflops(n, dtype=torch.bfloat16) if bf16 else None
    rows = []
    for timesteps, batch in settings:
        best = {e: 0.0 for e in engines}
        for _ in range(rounds):
            for e in engines:
                best[e] = max(best[e], _rate(e, timesteps, batch, steps))
            peak = max(peak, matmul_gflops(n))
            if bf16:
                peak_bf16 = max(peak_bf16, matmul_gflops(n, dtype=torch.bfloat16))
        flop = 3 * 2 * forward_macs(ModelConfig(arch="vgg5", timesteps=timesteps))
        rows.append({"timesteps": timesteps, "batch": batch, "images_per_second": best,
                     "multistep_over_reference": best["multistep"] / best["reference"],
                     "fused_adam_gain": best["multistep"] / best[PLAIN_ADAM],
                     "multistep_over_snntorch": (best["multistep"] / best["snntorch"]
                                                 if "snntorch" in best else None),
                     "gflops": best["multistep"] * flop / 1e9,
                     "augment_fraction": _augment_seconds(batch) * best["multistep"] / batch})
        if bf16:
            rows[-1].update({
                "bf16_over_reference": best[BF16] / best["reference"],
                "bf16_over_snntorch": (best[BF16] / best["snntorch"] if "snntorch" in best
                                       else None),
                "bf16_gflops": best[BF16] * flop / 1e9})
    for row in rows:            # against the best matmul rate of the whole run
        row["fraction_of_matmul"] = row["gflops"] / peak
        if bf16:
            row["bf16_fraction_of_bf16_matmul"] = row["bf16_gflops"] / peak_bf16
    return {"matmul_gflops": peak, "matmul_gflops_bf16": peak_bf16, "rows": rows,
            "snntorch_skipped": skipped, "malloc_tuned": tuned,
            "bf16_skipped": None if bf16 else "this CPU has no native bfloat16",
            "qat": bench_qat_step(quick)}


def markdown(res: dict[str, Any]) -> list[str]:
    lines = [
        "### Training step: layer-major engine vs reference vs snnTorch-style",
        "",
        "VGG5, direct encoding, float, Adam; images/s of the whole optimizer step, best of "
        "interleaved rounds. FLOP = 3 x 2 x forward multiply-accumulates (backward counted as "
        "twice the forward: an upper bound of the work). multistep and reference step with the "
        "trainer's fused Adam, snnTorch-style with torch.optim.Adam as its users write it; "
        "'plain Adam' is the multistep engine with torch.optim.Adam too.",
        "",
        f"fp32 matmul on this machine: {res['matmul_gflops']:.0f} GFLOP/s (the best sample; "
        "it is sampled in every round as the engines are). glibc malloc keeps "
        f"freed memory (training.allocator): {'yes' if res['malloc_tuned'] else 'no'}.",
        "",
        "| T | batch | multistep | plain Adam | reference | snnTorch-style | vs reference | "
        "vs snnTorch | GFLOP/s | of matmul | augmentation / step |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        ips = r["images_per_second"]
        snn_txt = f"{ips['snntorch']:.1f}" if "snntorch" in ips else "skipped"
        vs_snn = f"{r['multistep_over_snntorch']:.2f}x" if r["multistep_over_snntorch"] else "-"
        lines.append(f"| {r['timesteps']} | {r['batch']} | {ips['multistep']:.1f} | "
                     f"{ips[PLAIN_ADAM]:.1f} | {ips['reference']:.1f} | {snn_txt} | "
                     f"{r['multistep_over_reference']:.2f}x | "
                     f"{vs_snn} | {r['gflops']:.0f} | {100 * r['fraction_of_matmul']:.0f}% | "
                     f"{100 * r['augment_fraction']:.1f}% |")
    if res["snntorch_skipped"]:
        lines += ["", f"snnTorch-style column skipped: {res['snntorch_skipped']}."]
    if res["bf16_skipped"]:
        lines += ["", f"`--precision bf16` not measured: {res['bf16_skipped']}."]
    else:
        lines += ["", f"With `--precision bf16` (layer-major engine; bf16 matmul on this machine: "
                  f"{res['matmul_gflops_bf16']:.0f} GFLOP/s):", "",
                  "| T | batch | multistep bf16 | vs reference | vs snnTorch | GFLOP/s | "
                  "of bf16 matmul |", "|---|---|---|---|---|---|---|"]
        for r in res["rows"]:
            vs_snn = f"{r['bf16_over_snntorch']:.2f}x" if r["bf16_over_snntorch"] else "-"
            lines.append(f"| {r['timesteps']} | {r['batch']} | "
                         f"{r['images_per_second'][BF16]:.1f} | {r['bf16_over_reference']:.2f}x | "
                         f"{vs_snn} | {r['bf16_gflops']:.0f} | "
                         f"{100 * r['bf16_fraction_of_bf16_matmul']:.0f}% |")
    lines += ["", "Targets (issue 15): >= 1.3x the reference, >= 1.5x snnTorch-style, >= 75% of "
              "the matmul rate."]
    qat = res["qat"]
    ips = qat["images_per_second"]
    lines += ["", f"### The CIFAR-10 recipe's SNN step: float vs 4-bit QAT ({qat['precision']}, "
              f"batch {qat['batch']}, VGG5 direct T=4)", "",
              "Images/s of the whole optimizer step; 4-bit QAT quantizes every weight tensor on "
              "every forward pass, by the torch expression or by the fused CPU kernel "
              "(training.quant).", "",
              "| float weights | 4-bit, torch expression | 4-bit, fused kernel | fused vs torch |",
              "|---|---|---|---|",
              f"| {ips['float']:.1f} | {ips['4-bit torch']:.1f} | {ips['4-bit fused']:.1f} | "
              f"{ips['4-bit fused'] / ips['4-bit torch']:.2f}x |"]
    return lines
