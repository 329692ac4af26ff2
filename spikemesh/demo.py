"""`spikemesh demo`: the whole chain, offline on the embedded synthetic dataset (or on CIFAR-10
with --data-dir).

1. train a VGG5 (direct encoding, T=4): a ReLU ANN first, converted to the SNN (hybrid
   initialisation), then one 4-bit QAT epoch as an SNN;
2. compile it for the PKU-NC64C-style preset (--chips auto) and print the inspect summary;
3. the FGSM table at three levels (float, 4-bit, the chip image on chipsim; eps 2/8/16) with
   the chip's agreement with the 4-bit model under attack;
4. simulate validation images on the chip image, cycle-level, verified bit for bit against the
   integer reference;
5. traffic heat maps of the chip, clean and under FGSM eps 8, and their difference.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artifacts.atomic import write_text_atomic

# The training recipe of BENCHMARKS.md's time-to-accuracy table (96-98% 4-bit in 85-94 s there)
DEMO_ANN_EPOCHS = 5
DEMO_EPOCHS = 1
DEMO_QAT_EPOCHS = 1
DEMO_TRAIN_SIZE = 2500


@dataclass(frozen=True)
class DemoSizes:
    """How much each step does; the defaults are the demo's, tests run a reduced one."""
    train_size: int = DEMO_TRAIN_SIZE
    ann_epochs: int = DEMO_ANN_EPOCHS
    epochs: int = DEMO_EPOCHS
    eval_size: int = 500            # validation images scored after each training phase
    n_attack: int = 500
    n_sim: int = 100
    n_traffic: int = 16


def run_demo(out: Path, sizes: DemoSizes = DemoSizes(), *, data_dir: str | None = None,
             download: bool = False, progress: bool = True, reuse_model: bool = False,
             prepare_out: Callable[[], object] | None = None) -> dict:
    """``data_dir``: run on CIFAR-10 from there instead of the synthetic set (``download``:
    fetch it there first, checksum verified, when it is absent). ``reuse_model``:
    keep OUT/model.pt (and OUT/model.chip when it was compiled from it). ``prepare_out``: makes
    and checks the output folder once the data has loaded (default: mkdir)."""
    from training.checkpoint import load_checkpoint
    from training.data import load_dataset
    from training.evaluate import predict
    from training.models import ModelConfig
    from training.trainer import TrainConfig, train

    dataset = "cifar10" if data_dir else "synthetic"
    val_size = 5000 if data_dir else 2000
    # a bad folder fails here, before anything is written
    data = load_dataset(dataset, data_dir, val_size=val_size, download=download and bool(data_dir))
    if prepare_out is None:
        out.mkdir(parents=True, exist_ok=True)
    else:
        prepare_out()
    model_path = out / "model.pt"
    cfg = TrainConfig(model=ModelConfig(arch="vgg5", timesteps=4, encoding="direct", weight_bits=4),
                      dataset=dataset, data_dir=data_dir, train_size=sizes.train_size,
                      val_size=val_size, eval_size=sizes.eval_size, ann_epochs=sizes.ann_epochs,
                      epochs=sizes.epochs, qat_epochs=min(DEMO_QAT_EPOCHS, sizes.epochs),
                      batch_size=32, lr=3e-4, out=str(model_path))
    print(f"[1/5] training VGG5 (direct, T=4) on {sizes.train_size} {data.name} images: "
          f"{sizes.ann_epochs} ReLU ANN epochs, converted to the SNN, then {sizes.epochs} SNN "
          f"epoch(s) with 4-bit QAT -> {model_path}")
    t0 = time.perf_counter()
    if reuse_model and model_path.exists():
        metrics = load_checkpoint(model_path).metrics
        print(f"      reusing {model_path} (--reuse-model)")
    else:
        metrics = train(cfg, progress=progress)
    train_s = time.perf_counter() - t0
    float_acc, quant_acc = metrics.get("val_acc_float"), metrics.get("val_acc_quant")
    if float_acc is None or quant_acc is None:   # a reused run stopped before it validated
        print(f"      trained in {train_s:.0f}s: not validated at its last epoch")
    else:
        print(f"      trained in {train_s:.0f}s: validation {float_acc:.1f}% float, "
              f"{quant_acc:.1f}% 4-bit")

    from artifacts.chipimage import read_chip_image
    from chipsim.machine import machine_from_arrays
    from chipsim.simulate import simulate_dataset
    from compiler.compile import compile_checkpoint
    from compiler.image import load_integer_model
    from compiler.inspect import format_summary, mesh_map, summarize
    from compiler.spec import load_spec
    from spikemesh.crosscheck import CrossCheck
    from spikemesh.evaluation.report import format_table
    from spikemesh.evaluation.run import AttackRequest, run_attack
    from spikemesh.evaluation.spec import AttackSpec

    chip_path = out / "model.chip"
    meta = arrays = None
    if reuse_model and chip_path.exists():
        from artifacts.errors import UserError
        from spikemesh.evaluation.chipmodel import chip_for_model

        try:
            meta, arrays = chip_for_model(model_path, chip_path, 4, lambda _: None)
            compiled = {"reused": str(chip_path)}
            print(f"[2/5] reusing {chip_path}, compiled from {model_path} (--reuse-model)")
        except UserError:
            meta = arrays = None        # stale or from another model: compile afresh
    if meta is None:
        print(f"[2/5] compiling for pku-nc64c -> {chip_path}")
        compiled = compile_checkpoint(model_path, load_spec("pku-nc64c"), chip_path)
        meta, arrays = read_chip_image(chip_path)
    print(format_summary(summarize(meta, arrays), mesh_map(meta, arrays)))

    n_attack = sizes.n_attack
    print(f"[3/5] FGSM at eps 2/8/16 (/255) on {n_attack} validation images: float, 4-bit and "
          "the chip")
    result = run_attack(AttackRequest(str(model_path), AttackSpec(name="fgsm", eps=(2, 8, 16)),
                                      levels=("algo", "quant", "hw"), chip_image=str(chip_path),
                                      dataset=dataset, data_dir=data_dir, n=n_attack),
                        log=print, progress=progress)
    result["train_seconds"] = train_s
    result["train_metrics"] = metrics
    print(format_table(result))
    write_text_atomic(out / "attack.json", json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'attack.json'}")
    ckpt = load_checkpoint(model_path)
    n_sim = sizes.n_sim

    print(f"[4/5] simulating {n_sim} validation images on the chip, verified against the "
          "integer reference")
    check = CrossCheck(load_integer_model(meta, arrays), (meta["model"]["mean"], meta["model"]["std"]))
    val = data.val.head(n_sim)
    sim = simulate_dataset(machine_from_arrays(meta, arrays), val.images.numpy(),
                           val.labels.numpy(), arrays=arrays, progress=progress, on_batch=check)
    from training.evaluate import accuracy

    ckpt.model.set_quantization(4)
    algo_acc = accuracy(ckpt.model, val)
    chip_pred = np.array(sim.pop("predictions"))
    algo_pred = predict(ckpt.model, val).numpy()
    sim["reference_match"] = True
    sim["quant_algo_accuracy_same_images"] = algo_acc
    sim["agreement_with_quant_algo"] = float((chip_pred == algo_pred).mean() * 100)
    print(f"      on the same {sim['n']} images: chip {sim['accuracy']:.1f}%, 4-bit algorithm "
          f"model {algo_acc:.1f}% (top-1 agreement {sim['agreement_with_quant_algo']:.1f}%); "
          f"chip spikes match the integer reference bit for bit; "
          f"{sim['cycles_per_step']:,.0f} cycles per step, "
          f"{sim['energy_uj_per_inference']:.1f} uJ and {sim['sops_per_inference'] / 1e6:.0f}M "
          f"SOPs per inference")
    write_text_atomic(out / "simulate.json", json.dumps(sim, indent=2) + "\n")

    from spikemesh.traffic.run import (
        adversarial_images,
        format_summary,
        simulate_traffic,
        write_difference,
        write_run,
    )

    maps = out / "traffic"
    maps.mkdir(exist_ok=True)
    tv = data.val.head(sizes.n_traffic)
    t_images, t_labels = tv.images.numpy(), tv.labels.numpy()
    print(f"[5/5] traffic on the chip: {len(t_labels)} images clean and under FGSM eps 8 -> "
          f"{maps}/")
    machine = machine_from_arrays(meta, arrays)
    from chipsim.chip import Chip

    chip = Chip(machine)
    adv = adversarial_images(str(model_path), meta, t_images, t_labels, eps=8)
    runs = [simulate_traffic(machine, chip, arrays, x, t_labels, kind, batch_size=16, seed=0,
                             progress=progress)
            for kind, x in (("clean", t_images), ("adversarial", adv))]
    traffic = {run.kind: write_run(maps, run, machine, lambda _: None) for run in runs}
    traffic["difference"] = write_difference(maps, runs[0], runs[1], machine)
    for run in runs:
        print(format_summary(traffic[run.kind]))
    print("      spikes per inference per layer, clean -> FGSM 8: " + "; ".join(
        f"{k} {v['clean']:,.0f} -> {v['adversarial']:,.0f}"
        for k, v in traffic["difference"]["spikes_per_layer"].items()))
    print(f"      heat maps, CSVs and Noxim tables in {maps}/ (clean_*, adversarial_*, "
          "difference_*)")
    result["traffic"] = traffic
    result["compile"] = compiled
    result["simulate"] = {k: v for k, v in sim.items() if k not in ("cores", "links", "routers")}
    write_text_atomic(out / "summary.json", json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'simulate.json'} and {out / 'summary.json'}")
    return result
