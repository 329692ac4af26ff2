"""`spikemesh demo`: the whole chain on the embedded synthetic dataset, offline.

Today: train a VGG5 (direct encoding, T=4; float, then a 4-bit QAT epoch), then run the
algorithm-level FGSM table (float vs 4-bit weights, eps 2/8/16). Compile and simulate join
the chain as those stages land.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from spikemesh.atomic import write_text_atomic

DEMO_EPOCHS = 4
DEMO_QAT_EPOCHS = 1
DEMO_TRAIN_SIZE = 5000


def run_demo(out: Path, *, epochs: int | None = None, n_attack: int = 500,
             progress: bool = True) -> dict:
    from training.checkpoint import load_checkpoint
    from training.data import load_dataset
    from training.models import ModelConfig
    from training.robustness import AttackSpec, evaluate_robustness, format_table
    from training.trainer import TrainConfig, train

    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.pt"
    cfg = TrainConfig(model=ModelConfig(arch="vgg5", timesteps=4, encoding="direct", weight_bits=4),
                      dataset="synthetic", train_size=DEMO_TRAIN_SIZE, val_size=2000,
                      eval_size=1000, epochs=epochs or DEMO_EPOCHS, qat_epochs=DEMO_QAT_EPOCHS,
                      batch_size=32, lr=3e-4,
                      out=str(model_path))
    print(f"[1/2] training VGG5 (direct, T=4) on {DEMO_TRAIN_SIZE} synthetic images for "
          f"{cfg.epochs} epochs, the last {DEMO_QAT_EPOCHS} with 4-bit QAT -> {model_path}")
    t0 = time.perf_counter()
    metrics = train(cfg, progress=progress)
    train_s = time.perf_counter() - t0
    print(f"      trained in {train_s:.0f}s: validation {metrics['val_acc_float']:.1f}% float, "
          f"{metrics['val_acc_quant']:.1f}% 4-bit")

    print(f"[2/2] FGSM at eps 2/8/16 (/255) on {n_attack} validation images, float vs 4-bit")
    ckpt = load_checkpoint(model_path)
    data = load_dataset("synthetic", val_size=2000)
    result = evaluate_robustness(ckpt.model, data.val.head(n_attack),
                                 AttackSpec(name="fgsm", eps=(2.0, 8.0, 16.0)),
                                 progress=progress)
    result["train_seconds"] = train_s
    result["train_metrics"] = metrics
    print(format_table(result))
    write_text_atomic(out / "attack.json", json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'attack.json'}")
    return result
