"""White-box adversarial attacks in [0, 1] pixel space, through BPTT and the surrogate.

FGSM (PAPERS.md eqs. 3-4), R+FGSM (Tramer et al. 2018) and PGD (Madry et al. 2018; random
start). The model normalizes inside, so eps is in pixel units (8/255 means 8 grey levels).
Stochastic encoders get Expectation over Transformation: the input gradient is averaged over
``eot`` encoder samples. Every forward pass resets neuron state (``model.forward`` does), so
each PGD step starts from a fresh network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.encoders import uniform
from training.models import SpikingVGG

ATTACKS = ("fgsm", "rfgsm", "pgd")


def input_gradient(model: SpikingVGG, x: torch.Tensor, y: torch.Tensor, *, eot: int = 1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """d CE(model(x), y) / dx, averaged over ``eot`` samples of a stochastic encoder."""
    x = x.detach().requires_grad_(True)
    total = torch.zeros_like(x)
    for _ in range(max(1, eot)):
        loss = F.cross_entropy(model(x, generator=generator), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, x)
        total += g
    return total / max(1, eot)


def random_targets(y: torch.Tensor, num_classes: int, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """A random class different from the true one, per sample (eq. 4's y_random)."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % num_classes


def fgsm(model: SpikingVGG, x: torch.Tensor, y: torch.Tensor, eps: float, *,
         target: torch.Tensor | None = None, eot: int = 1,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """Untargeted (eq. 3): x + eps sign(grad J(x, y)).
    Targeted (eq. 4, ``target`` given): x - eps sign(grad J(x, target))."""
    if target is None:
        step = eps * input_gradient(model, x, y, eot=eot, generator=generator).sign()
    else:
        step = -eps * input_gradient(model, x, target, eot=eot, generator=generator).sign()
    return (x + step).clamp(0, 1).detach()


def rfgsm(model: SpikingVGG, x: torch.Tensor, y: torch.Tensor, eps: float, *,
          alpha: float | None = None, eot: int = 1,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """R+FGSM: a random step of size alpha (default eps/2), then FGSM with eps - alpha."""
    alpha = eps / 2 if alpha is None else alpha
    noise = torch.randn(x.shape, generator=generator).to(x.device).sign()
    x1 = (x + alpha * noise).clamp(0, 1)
    g = input_gradient(model, x1, y, eot=eot, generator=generator)
    return (x1 + (eps - alpha) * g.sign()).clamp(0, 1).detach()


def pgd(model: SpikingVGG, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 7,
        step_size: float = 0.01, random_start: bool = True, target: torch.Tensor | None = None,
        eot: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """PGD in the L-inf ball of radius eps around x."""
    x_adv = x.clone()
    if random_start:
        x_adv = (x_adv + (uniform(x.shape, generator, x.device) * 2 - 1) * eps).clamp(0, 1)
    for _ in range(steps):
        if target is None:
            step = step_size * input_gradient(model, x_adv, y, eot=eot, generator=generator).sign()
        else:
            step = -step_size * input_gradient(model, x_adv, target, eot=eot,
                                               generator=generator).sign()
        x_adv = torch.min(torch.max(x_adv + step, x - eps), x + eps).clamp(0, 1).detach()
    return x_adv


def attack(model: SpikingVGG, x: torch.Tensor, y: torch.Tensor, name: str, eps: float, *,
           targeted: bool = False, steps: int = 7, step_size: float = 0.01,
           random_start: bool = True, eot: int = 1,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Dispatch by attack name; the model should be in eval mode."""
    target = random_targets(y, model.cfg.num_classes, generator) if targeted else None
    if name == "fgsm":
        return fgsm(model, x, y, eps, target=target, eot=eot, generator=generator)
    if name == "rfgsm":
        if targeted:
            raise ValueError("rfgsm has no targeted form here; use fgsm or pgd with --targeted")
        return rfgsm(model, x, y, eps, eot=eot, generator=generator)
    if name == "pgd":
        return pgd(model, x, y, eps, steps=steps, step_size=step_size,
                   random_start=random_start, target=target, eot=eot, generator=generator)
    raise ValueError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")
