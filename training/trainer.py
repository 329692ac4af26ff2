"""The training loop: data, optimizer, progress, per-epoch checkpoints, resume."""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from artifacts.errors import UserError
from training.allocator import keep_freed_memory
from training.checkpoint import load_checkpoint, save_checkpoint
from training.data import load_dataset
from training.evaluate import float_and_quant_accuracy, training_batch
from training.models import ModelConfig, build_model
from training.noise import NoiseConfig, train_step
from training.optimizer import adam, load_adam_state
from training.precision import resolve_precision


@dataclass
class TrainConfig:
    """Arguments of one training run (also stored in the checkpoint)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    dataset: str = "synthetic"
    data_dir: str | None = None
    download: bool = False             # fetch CIFAR-10 (MD5 verified) when absent
    train_size: int | None = None      # use only the first N training images
    val_size: int = 5000
    eval_size: int | None = 2000       # validation images scored after each epoch
    eval_every: int = 1                # score every N-th SNN epoch (and always the last)
    epochs: int = 10
    ann_epochs: int = 0                # ANN-to-SNN hybrid initialisation: ReLU ANN epochs first
    ann_lr_schedule: str = "constant"  # the ANN phase's rate: constant or cosine (to zero)
    qat_epochs: int | None = None      # k-bit QAT only in the last N epochs (None: all)
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    augment: bool = True
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"            # products while training: fp32, bf16, auto (precision.py)
    threads: int | None = None
    out: str = "model.pt"
    resume: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but this PyTorch has no CUDA device; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r}; choose cpu or cuda")
    return torch.device(name)


def train(cfg: TrainConfig, *, progress: bool = True, log=print) -> dict[str, Any]:
    """Train a model per ``cfg``, checkpointing to ``cfg.out`` after every epoch.

    Returns the final metrics dict (also stored in the checkpoint).
    """
    if not isinstance(cfg.eval_every, int) or cfg.eval_every < 1:
        raise UserError(f"--eval-every {cfg.eval_every!r} must be a whole number of epochs >= 1")
    if cfg.noise.kind == "hire" and cfg.noise.periods > cfg.model.timesteps:
        raise UserError(f"--noise-periods {cfg.noise.periods} exceeds the {cfg.model.timesteps} "
                        "time steps it splits; use at most -T periods")
    _seed_everything(cfg.seed)
    if cfg.device == "cpu":
        keep_freed_memory()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    train_dtype = resolve_precision(cfg.precision, device)
    if train_dtype != torch.float32 or cfg.precision == "auto":
        log(f"training products in {str(train_dtype).removeprefix('torch.')} "
            f"(--precision {cfg.precision}); evaluation in float32")
    data = load_dataset(cfg.dataset, cfg.data_dir, val_size=cfg.val_size, download=cfg.download)
    train_split = data.train.head(cfg.train_size)
    val_split = data.val.head(cfg.eval_size)
    if device.type == "cuda":
        _use_tensor_cores()
        train_split = train_split.to(device)   # batches are gathered and augmented on the GPU
    model = build_model(cfg.model).to(device)
    model.train_dtype = train_dtype
    opt = adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
    # The data order and augmentation draw from this generator; dropout and training noise from
    # torch's global one. Both are checkpointed, so --resume continues the same random streams.
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, history = 0, []
    if cfg.resume and Path(cfg.out).exists():
        start_epoch, history = _resume(cfg, model, opt, sched, gen, log)
    dataset_info = {"name": data.name, "class_names": list(data.class_names),
                    "val_size": cfg.val_size}
    bits = cfg.model.weight_bits
    if cfg.ann_epochs and not any(h.get("phase") == "ann-to-snn" for h in history):
        from training.hybrid import hybrid_init

        entry = hybrid_init(model, train_split, val_split, epochs=cfg.ann_epochs,
                            batch_size=cfg.batch_size, lr=cfg.lr,
                            augment=cfg.augment, generator=gen, device=device, quant_bits=bits,
                            weight_decay=cfg.weight_decay, lr_schedule=cfg.ann_lr_schedule,
                            progress=progress, log=log)
        history.append(entry)
        # saved at once, so --resume after an interruption skips the ANN phase
        save_checkpoint(cfg.out, model, dataset=dataset_info, metrics={}, history=history,
                        training=_training_state(cfg, 0, opt, sched, gen))
    metrics: dict[str, Any] = history[-1] if history else {}
    qat_from = 0 if bits is None or cfg.qat_epochs is None else max(0, cfg.epochs - cfg.qat_epochs)
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        # float warm-up first, then quantization-aware fine-tuning on the float shadow weights
        model.set_quantization(bits if epoch >= qat_from else None)
        order = torch.randperm(len(train_split), generator=gen)
        n_batches = (len(order) + cfg.batch_size - 1) // cfg.batch_size
        bar = tqdm(range(n_batches), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not progress, file=sys.stderr, dynamic_ncols=True, leave=False)
        seen = correct = 0
        loss_sum = 0.0
        t_start = time.perf_counter()
        for b in bar:
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x, y = training_batch(train_split, idx, augment=cfg.augment, generator=gen,
                                  device=device)
            opt.zero_grad(set_to_none=True)
            loss, logits = train_step(model, x, y, cfg.noise, generator=None)
            opt.step()
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss) * len(y)
            elapsed = time.perf_counter() - t_start
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}",
                            img_s=f"{seen / max(elapsed, 1e-9):.0f}")
        bar.close()
        sched.step()
        epoch_time = time.perf_counter() - t_start
        # validating 5,000 CIFAR-10 images in float and k-bit takes ~30 s on 2 cores, a tenth
        # of an SNN epoch: --eval-every lets a long run spend it only where it is read
        validate = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
        val_float, val_quant = (float_and_quant_accuracy(model, val_split, bits) if validate
                                else (None, None))
        metrics = {"phase": "snn", "epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1),
                   "train_acc": 100 * correct / max(seen, 1), "val_acc_float": val_float,
                   "val_acc_quant": val_quant, "val_images": len(val_split) if validate else 0,
                   "epoch_seconds": epoch_time, "images_per_second": seen / epoch_time}
        history.append(metrics)
        if not validate:
            val_txt = "not validated (--eval-every)"
        else:
            quant_txt = f", quantized {val_quant:.1f}%" if val_quant is not None else ""
            val_txt = f"val float {val_float:.1f}%{quant_txt}"
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {metrics['train_loss']:.3f}, train "
            f"{metrics['train_acc']:.1f}%, {val_txt} "
            f"({epoch_time:.0f}s, {metrics['images_per_second']:.0f} img/s)")
        save_checkpoint(cfg.out, model, dataset=dataset_info, metrics=metrics, history=history,
                        training=_training_state(cfg, epoch + 1, opt, sched, gen))
    return metrics


def _use_tensor_cores() -> None:
    """TF32 for the GPU's convolutions and matrix products, several times the plain-fp32 rate.
    Training tolerates its 10-bit mantissa; the per-epoch validation inherits it (PyTorch already
    allows TF32 in cuDNN convolutions by default), so GPU accuracies can differ from the CPU's
    float32 ones in the last decisions. The chip level never runs on a GPU."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


def _cpu_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state_dict with every tensor on the CPU, so a run checkpointed on a GPU
    resumes on any machine (load_state_dict moves the state to the parameters' device)."""
    def cpu(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return v.detach().cpu()
        if isinstance(v, dict):
            return {k: cpu(x) for k, x in v.items()}
        return v
    return cpu(opt.state_dict())


def _training_state(cfg: TrainConfig, epoch: int, opt: torch.optim.Optimizer, sched,
                    gen: torch.Generator) -> dict[str, Any]:
    """What --resume needs besides the weights: the arguments, the epochs done, the optimizer and
    schedule, and both random streams."""
    return {**cfg.to_dict(), "epoch": epoch, "optimizer": _cpu_state(opt),
            "scheduler": sched.state_dict(),
            "rng": {"data": gen.get_state(), "torch": torch.get_rng_state()}}


# Options that shape the training trajectory: --resume refuses to change them mid-run, since
# the optimizer state, the data order and the history would silently belong to another run.
# (--epochs may grow: the schedule is re-planned. Device, precision, threads, the data folder
# and validation options may change, so a run can move between machines.)
_FIXED_ON_RESUME = {"noise": "the --noise options", "dataset": "--dataset",
                    "train_size": "--train-size", "val_size": "--val-size",
                    "ann_epochs": "--ann-epochs", "ann_lr_schedule": "--ann-lr-schedule",
                    "qat_epochs": "--qat-epochs", "batch_size": "--batch-size", "lr": "--lr",
                    "weight_decay": "--weight-decay", "augment": "--no-augment", "seed": "--seed"}


def _resume(cfg: TrainConfig, model, opt, sched, gen: torch.Generator,
            log) -> tuple[int, list[dict[str, Any]]]:
    """Load cfg.out's weights, optimizer, schedule and random streams into the fresh run;
    returns the epochs already done and the history. Everything is checked before it is used:
    a damaged or edited checkpoint is one clear error, never a traceback mid-run."""
    ckpt = load_checkpoint(cfg.out)   # validates the weights (names, shapes, finite values)
    if ckpt.config.to_dict() != cfg.model.to_dict():
        raise UserError(f"--resume: {cfg.out} was trained with a different model configuration; "
                        "use the same options or another --out")
    damaged = (f"--resume: {cfg.out} holds a damaged training state ({{}}); "
               "train anew with another --out")
    training, history = ckpt.training, ckpt.history
    if not isinstance(training, dict) or not isinstance(history, list) \
            or not all(isinstance(h, dict) for h in history):
        raise UserError(damaged.format("its arguments or history"))
    now = cfg.to_dict()
    try:
        changed = [flag for key, flag in _FIXED_ON_RESUME.items()
                   if key in training and not (type(training[key]) is type(now[key])
                                               and bool(training[key] == now[key]))]
    except (RuntimeError, TypeError, ValueError):     # tensors or other objects put in by hand
        raise UserError(damaged.format("its arguments")) from None
    if changed:
        raise UserError(f"--resume: {cfg.out} was trained with other {', '.join(changed)}; "
                        "resume with the options it was started with, or train anew with another --out")
    epoch = training.get("epoch", 0)
    if type(epoch) is not int or not 0 <= epoch <= 1_000_000:
        raise UserError(damaged.format(f"{epoch!r} epochs done"))
    model.load_state_dict(ckpt.model.state_dict())
    try:
        if "optimizer" in training:
            load_adam_state(opt, training["optimizer"])
        if "scheduler" in training:
            sched.load_state_dict(training["scheduler"])
        rng = training.get("rng")
        if isinstance(rng, dict):
            gen.set_state(rng["data"])
            torch.set_rng_state(rng["torch"])
        else:  # written before checkpoints carried random state: a per-epoch seed instead
            gen.manual_seed(cfg.seed + 1000 * epoch)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise UserError(damaged.format(f"optimizer or random state: {exc.__class__.__name__}")) from None
    rates = [g.get("lr") for g in opt.param_groups] + list(getattr(sched, "base_lrs", []))
    if type(sched.T_max) is not int or sched.T_max < 1 or type(sched.last_epoch) is not int \
            or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r)
                       and r >= 0 for r in rates):
        raise UserError(damaged.format("its learning-rate schedule"))
    # Adam's moments must match their weights and be finite, and its step count be a count, or
    # the first step fails or spreads NaN (a count of -1 divides by zero in the bias correction)
    for param, state in opt.state.items():
        for name, value in state.items():
            if not isinstance(value, torch.Tensor) or not bool(torch.isfinite(value).all()) \
                    or (name != "step" and value.shape != param.shape) \
                    or (name == "step" and (value.numel() != 1 or float(value) < 0)):
                raise UserError(damaged.format(f"optimizer state {name!r}"))
    saved_epochs = training.get("epochs", cfg.epochs)
    if saved_epochs != cfg.epochs and epoch < cfg.epochs:
        _replan_cosine(opt, sched, epoch, cfg.epochs)
        log(f"--epochs {cfg.epochs}: the learning rate now decays on a cosine over "
            f"{cfg.epochs} epochs (was {saved_epochs})")
    log(f"resuming {cfg.out} after epoch {epoch}")
    return epoch, list(history)


def _replan_cosine(opt: torch.optim.Optimizer, sched, epoch: int, epochs: int) -> None:
    """Stretch the cosine to ``epochs`` from ``epoch`` on: the rate jumps to where a run of that
    length would be now and decays to zero at its end (a saved schedule of the old length
    would, past its end, rise again: CosineAnnealingLR is periodic)."""
    sched.T_max = epochs
    for group, base in zip(opt.param_groups, sched.base_lrs, strict=True):
        group["lr"] = sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2
    sched._last_lr = [group["lr"] for group in opt.param_groups]
