"""Attack evaluation at the algorithm level: float weights (Q1, "algo") and quantized weights
(Q2, "quant"), side by side, with spike activity and the spike noise-to-signal ratio.

adv_loss = clean_acc - adv_acc (percentage points; larger = less robust).
Spike activity = mean spikes per neuron per time step, per layer, on clean inputs.
NSR (PAPERS.md eq. 14) = 1 / SNR = (SA1 - SA2) / SA1, with SA1 / SA2 the layer's spike count on
clean / adversarial inputs; negative when the attack adds spikes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from artifacts.errors import UserError
from training.attacks import ATTACKS, attack
from training.data.bundle import Split
from training.encoders import STOCHASTIC
from training.evaluate import batches
from training.models import SpikingVGG, spike_activity

LEVELS = ("algo", "quant")


@dataclass(frozen=True)
class AttackSpec:
    name: str = "fgsm"
    eps: tuple[float, ...] = (2.0, 8.0, 16.0)   # in grey levels, i.e. eps/255 in pixels
    targeted: bool = False
    steps: int = 7
    step_size: float = 0.01
    random_start: bool = True
    eot: int | None = None        # None: 1 for deterministic encoders, 8 for stochastic ones
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise UserError(f"unknown attack {self.name!r}; choose one of {', '.join(ATTACKS)}")
        if not self.eps or any(e < 0 or e > 255 for e in self.eps):
            raise UserError("--eps takes grey levels between 0 and 255, e.g. --eps 2,8,16")
        if self.targeted and self.name == "rfgsm":
            raise UserError("rfgsm has no targeted form; use --attack fgsm or pgd with --targeted")


def eps_key(e: float) -> str:
    return f"{e:g}"


def _layer_counts(record: dict[str, list[float]]) -> dict[str, float]:
    return {k: v[0] for k, v in record.items()}


def evaluate_level(model: SpikingVGG, split: Split, spec: AttackSpec, *, bits: int | None,
                   batch_size: int = 100, progress: bool = True, desc: str = "") -> dict[str, Any]:
    """Clean and adversarial accuracy of one model view (bits None = float weights)."""
    model.eval()
    model.set_quantization(bits)
    eot = spec.eot if spec.eot is not None else (8 if model.cfg.encoding in STOCHASTIC else 1)
    gen = torch.Generator().manual_seed(spec.seed)
    clean_rec: dict[str, list[float]] = {}
    adv_recs: dict[str, dict[str, list[float]]] = {eps_key(e): {} for e in spec.eps}
    correct_clean = 0
    correct_adv = {eps_key(e): 0 for e in spec.eps}
    total = 0
    n_batches = (len(split) + batch_size - 1) // batch_size
    bar = tqdm(batches(split, batch_size), total=n_batches, desc=desc or "attack", unit="batch",
               disable=not progress, file=sys.stderr, leave=False, dynamic_ncols=True)
    device = next(model.parameters()).device
    for x, y in bar:
        x, y = x.to(device), y.to(device)
        with torch.no_grad():
            correct_clean += int((model(x, record=clean_rec, generator=gen).argmax(1) == y).sum())
        for e in spec.eps:
            x_adv = attack(model, x, y, spec.name, e / 255.0, targeted=spec.targeted,
                           steps=spec.steps, step_size=spec.step_size,
                           random_start=spec.random_start, eot=eot, generator=gen)
            with torch.no_grad():
                pred = model(x_adv, record=adv_recs[eps_key(e)], generator=gen).argmax(1)
            correct_adv[eps_key(e)] += int((pred == y).sum())
        total += len(y)
    bar.close()
    clean_acc = 100.0 * correct_clean / max(total, 1)
    sa1 = _layer_counts(clean_rec)
    out: dict[str, Any] = {"weight_bits": bits, "eot": eot, "clean_acc": clean_acc, "eps": {},
                           "spike_activity": spike_activity(clean_rec), "nsr": {}}
    for e in spec.eps:
        k = eps_key(e)
        adv_acc = 100.0 * correct_adv[k] / max(total, 1)
        out["eps"][k] = {"adv_acc": adv_acc, "adv_loss": clean_acc - adv_acc}
        sa2 = _layer_counts(adv_recs[k])
        out["nsr"][k] = {layer: ((sa1[layer] - sa2[layer]) / sa1[layer] if sa1[layer] else 0.0)
                         for layer in sa1}
    return out


def evaluate_robustness(model: SpikingVGG, split: Split, spec: AttackSpec, *,
                        levels: tuple[str, ...] = LEVELS, quant_bits: int | None = None,
                        batch_size: int = 100, progress: bool = True) -> dict[str, Any]:
    """The attack table for each level; ``quant_bits`` defaults to the model's trained bits."""
    bits = quant_bits if quant_bits is not None else model.cfg.weight_bits
    result: dict[str, Any] = {"attack": spec.name, "targeted": spec.targeted, "n": len(split),
                              "encoding": model.cfg.encoding, "timesteps": model.cfg.timesteps,
                              "levels": {}}
    if spec.name == "pgd":
        result.update(steps=spec.steps, step_size=spec.step_size, random_start=spec.random_start)
    level_bits: dict[str, int | None] = {}
    for level in levels:            # every level checked before any is evaluated
        if level == "algo":
            level_bits[level] = None
        elif level == "quant":
            if bits is None:
                raise UserError("level quant needs a bit width: the model was trained in float, "
                                "so pass --weight-bits K")
            level_bits[level] = bits
        else:
            raise UserError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
    if not level_bits:
        raise UserError(f"--levels names no level; choose from {', '.join(LEVELS)}")
    for level, lbits in level_bits.items():
        result["levels"][level] = evaluate_level(model, split, spec, bits=lbits,
                                                 batch_size=batch_size, progress=progress,
                                                 desc=f"{level} {spec.name}")
    model.set_quantization(model.cfg.weight_bits)
    return result


def format_table(result: dict[str, Any]) -> str:
    """A readable table: one row per level, clean accuracy, then adv_acc / adv_loss per eps."""
    levels = result["levels"]
    eps_keys = list(next(iter(levels.values()))["eps"]) if levels else []
    head = ["level", "clean %"] + [f"eps {k}/255 acc / loss" for k in eps_keys]
    rows = []
    for name, lv in levels.items():
        label = name if lv["weight_bits"] is None else f"{name} ({lv['weight_bits']}-bit)"
        rows.append([label, f"{lv['clean_acc']:.2f}"] +
                    [f"{lv['eps'][k]['adv_acc']:.2f} / {lv['eps'][k]['adv_loss']:.2f}" for k in eps_keys])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    title = (f"{result['attack']}{' (targeted)' if result['targeted'] else ''}, n={result['n']}, "
             f"{result['encoding']} encoding, T={result['timesteps']}")
    lines = [title, fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*r) for r in rows]
    layer_names = list(next(iter(levels.values()))["spike_activity"]) if levels else []
    if layer_names:
        lines.append("spike activity (spikes/neuron/step): " + "; ".join(
            f"{name}: " + " ".join(f"{l}={lv['spike_activity'][l]:.3f}" for l in layer_names)
            for name, lv in levels.items()))
    return "\n".join(lines)
