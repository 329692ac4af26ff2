"""`spikemesh attack`: load what the request names, check it all, then run the evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artifacts.errors import UserError
from spikemesh.evaluation.crosslevel import InputSet, Plan, evaluate, make_plan
from spikemesh.evaluation.spec import AttackSpec, check_levels


@dataclass(frozen=True)
class AttackRequest:
    model: str
    spec: AttackSpec
    levels: tuple[str, ...] = ("algo", "quant", "hw")
    source: str = "self"
    source_model: str | None = None
    chip_image: str | None = None
    weight_bits: int | None = None
    dataset: str | None = None
    data_dir: str | None = None
    split: str = "val"
    n: int = 1000
    batch_size: int = 100
    device: str = "cpu"
    save_inputs: str | None = None
    inputs: str | None = None


def run_attack(req: AttackRequest, *, log: Callable[[str], None] = print,
               progress: bool = True) -> dict[str, Any]:
    from training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(req.model)
    model = ckpt.model
    if req.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but this PyTorch has no CUDA device; "
                            "use --device cpu")
        model.to("cuda")
    cfg = model.cfg
    image_shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
    saved = None
    spec, source, batch_size = req.spec, req.source, req.batch_size
    if req.inputs is not None:
        from spikemesh.evaluation.inputs import load_inputs

        clean, labels, sets, prov = load_inputs(req.inputs, image_shape=image_shape,
                                                num_classes=cfg.num_classes)
        saved = (sets, prov)
        spec = _spec_from_provenance(prov, req.spec)
        batch_size = int(prov.get("batch_size", batch_size))
        name, split = prov.get("dataset", "?"), prov.get("split", "?")
    levels = check_levels(req.levels, source, spec.name, req.source_model is not None)
    bits = req.weight_bits if req.weight_bits is not None else cfg.weight_bits
    needs_bits = {"quant", "hw"} & ({*levels, source})
    if bits is None and needs_bits:
        raise UserError(f"level {sorted(needs_bits)[0]} needs a bit width: the model was trained "
                        "in float, so pass --weight-bits K")
    if saved is None:
        from training.data import load_dataset

        name = req.dataset or ckpt.dataset.get("name", "synthetic")
        split = req.split
        data = load_dataset(name, req.data_dir, val_size=ckpt.dataset.get("val_size", 5000))
        part = data.split(split).head(req.n)
        if tuple(part.images.shape[1:]) != image_shape:
            raise UserError(f"{name} images are {tuple(part.images.shape[1:])}, the model takes "
                            f"{image_shape}; pick the dataset the model was trained on")
        clean, labels = part.images.numpy(), part.labels.numpy()
    objs, chip_note, hw_source = _levels(req, model, bits, levels, source, spec, log)
    other = other_label = None
    if req.source_model is not None:
        other, other_label = _other_model(req.source_model, cfg, req.device)
    if saved is not None:
        plan = _saved_plan(saved[0], saved[1], levels, req.inputs)
    else:
        plan = make_plan(levels, source, spec, objs, hw_source, other, other_label or "")
    result, adv = evaluate(objs, plan, clean, labels, spec, levels=levels, batch_size=batch_size,
                           progress=progress, keep_inputs=req.save_inputs is not None)
    result.update(model=str(req.model), dataset=name, split=split,
                  encoding=cfg.encoding, timesteps=cfg.timesteps,
                  source=("model" if req.source_model else source), batch_size=batch_size,
                  seed=spec.seed)
    if chip_note:
        result["chip_image"] = chip_note
    if req.source_model:
        result["source_model"] = req.source_model
    if saved is not None:
        result["inputs"] = str(req.inputs)
        result["crafted"] = {k: saved[1].get(k) for k in ("model", "model_sha256", "source")}
    if req.save_inputs is not None:
        from spikemesh.evaluation.inputs import save_inputs

        save_inputs(req.save_inputs, clean, labels, adv, _provenance(req, spec, plan, result,
                                                                     batch_size))
    return result


def _levels(req: AttackRequest, model, bits: int | None, levels: tuple[str, ...], source: str,
            spec: AttackSpec, log) -> tuple[dict[str, Any], str | None, Any]:
    """Level objects for every level the plan reads or queries, the chip note, the hw source."""
    from spikemesh.evaluation.levels import TorchLevel

    objs: dict[str, Any] = {"algo": TorchLevel("algo", model, None)}
    if bits is not None:
        objs["quant"] = TorchLevel("quant", model, bits)
    wants_chip = "hw" in levels or source == "hw"
    if not wants_chip:
        return objs, None, None
    from chipsim.chip import Chip
    from chipsim.machine import machine_from_arrays
    from compiler.image import load_integer_model
    from spikemesh.evaluation.chipmodel import DEFAULT_CHIP, chip_for_model
    from spikemesh.evaluation.levels import ChipLevel, IntegerSource

    meta, arrays = chip_for_model(req.model, req.chip_image, bits, log)
    note = req.chip_image or f"compiled in memory for {DEFAULT_CHIP}"
    objs["hw"] = ChipLevel(Chip(machine_from_arrays(meta, arrays)))
    hw_source = None
    if source == "hw" and spec.gradient:
        hw_source = IntegerSource(load_integer_model(meta, arrays), meta["model"]["mean"],
                                  meta["model"]["std"])
    return objs, note, hw_source


def _other_model(path: str, cfg, device: str):
    """A separately trained model as a transfer source, at its own trained weights."""
    from spikemesh.evaluation.levels import TorchLevel
    from training.checkpoint import load_checkpoint

    other = load_checkpoint(path).model
    ocfg = other.cfg
    if (ocfg.in_channels, ocfg.image_size, ocfg.num_classes) != (cfg.in_channels, cfg.image_size,
                                                                 cfg.num_classes):
        raise UserError(f"--source-model {path} takes {ocfg.in_channels}x{ocfg.image_size}x"
                        f"{ocfg.image_size} images and {ocfg.num_classes} classes, unlike the "
                        "attacked model; pick a model of the same dataset")
    other.to(device)
    bits = ocfg.weight_bits
    label = f"model:{Path(path).name}" + (f" ({bits}-bit)" if bits else " (float)")
    return TorchLevel("source-model", other, bits), label


def _saved_plan(sets: dict[str, dict[int, np.ndarray]], prov: dict, levels: tuple[str, ...],
                path: str | None) -> Plan:
    """Every level reads the saved set it read when the inputs were made (one set: all)."""
    reads_saved: dict[str, str] = prov["reads"]
    labels = prov.get("labels", {})
    reads = {}
    for lv in levels:
        if lv in reads_saved:
            reads[lv] = reads_saved[lv]
        elif len(sets) == 1:
            reads[lv] = next(iter(sets))
        else:
            raise UserError(f"{path} holds inputs for levels {', '.join(reads_saved)}, not {lv}; "
                            "drop it from --levels")

    def lookup(key: str):
        return lambda images, labels_, eps, seed, rows: sets[key][eps][rows]
    return Plan(reads, {k: InputSet(str(labels.get(k, k)), lookup(k)) for k in set(reads.values())})


def _spec_from_provenance(prov: dict, given: AttackSpec) -> AttackSpec:
    try:
        return AttackSpec(name=str(prov["attack"]), eps=tuple(int(e) for e in prov["eps"]),
                          targeted=bool(prov.get("targeted", False)),
                          steps=int(prov.get("steps", given.steps)),
                          step_size=float(prov.get("step_size", given.step_size * 255)) / 255,
                          random_start=bool(prov.get("random_start", given.random_start)),
                          queries=int(prov.get("queries", given.queries)),
                          seed=int(prov.get("seed", given.seed)))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"the inputs file's provenance is damaged ({exc}); write it again "
                        "with --save-inputs") from None


def _provenance(req: AttackRequest, spec: AttackSpec, plan: Plan, result: dict,
                batch_size: int) -> dict[str, Any]:
    from compiler.compile import sha256_file

    prov = {"attack": spec.name, "eps": [int(e) for e in spec.eps], "targeted": spec.targeted,
            "seed": spec.seed, "batch_size": batch_size, "source": result["source"],
            "reads": dict(plan.reads), "labels": {k: s.label for k, s in plan.sets.items()},
            "model": Path(req.model).name, "model_sha256": sha256_file(req.model),
            "dataset": result["dataset"], "split": result["split"]}
    if spec.name == "pgd":
        prov.update(steps=spec.steps, step_size=spec.step_size * 255,
                    random_start=spec.random_start)
    if spec.name == "square":
        prov["queries"] = spec.queries
    if req.source_model:
        prov["source_model"] = Path(req.source_model).name
    return prov
