"""White-box adversarial attacks on the chip's 8-bit input grid, through BPTT and the surrogate.

FGSM (PAPERS.md eqs. 3-4), R+FGSM (Tramer et al. 2018) and PGD (Madry et al. 2018; random
start). Pixels are in [0, 1] and the model normalizes inside; eps is in pixel units and must be
a whole number of grey levels (8/255 means 8). The chip reads 8-bit pixels, so every iterate is
rounded to the grid k/255: no level ever sees an input the chip cannot receive, and since the
clean image and the ball's faces lie on the grid, rounding never leaves the eps ball.
Stochastic encoders get Expectation over Transformation: the input gradient is averaged over
``eot`` encoder samples. Every forward pass resets neuron state (``model.forward`` does), so
each PGD step starts from a fresh network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from artifacts import intmath
from training.encoders import uniform

ATTACKS = ("fgsm", "rfgsm", "pgd")


def to_grid(x: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] rounded to the 8-bit grid k/255 (half up, as the chip's host does)."""
    return (intmath.pixel_levels(x.clamp(0.0, 1.0)) / intmath.PIXEL_LEVELS).detach()


def grey_levels(eps: float) -> int:
    """eps in pixel units as a whole number of grey levels; refuses a fraction of a level."""
    k = round(eps * intmath.PIXEL_LEVELS)
    if abs(k - eps * intmath.PIXEL_LEVELS) > 1e-6:
        raise ValueError(f"eps {eps * intmath.PIXEL_LEVELS:g}/255 is not a whole number of grey "
                         "levels; the chip reads 8-bit pixels")
    return k


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eot: int = 1,
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


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
         target: torch.Tensor | None = None, eot: int = 1,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """Untargeted (eq. 3): x + eps sign(grad J(x, y)).
    Targeted (eq. 4, ``target`` given): x - eps sign(grad J(x, target))."""
    grey_levels(eps)
    if target is None:
        step = eps * input_gradient(model, x, y, eot=eot, generator=generator).sign()
    else:
        step = -eps * input_gradient(model, x, target, eot=eot, generator=generator).sign()
    return to_grid(x + step)


def rfgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
          alpha: float | None = None, eot: int = 1,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """R+FGSM: a random step of size alpha (default: half of eps, rounded down to whole grey
    levels), then FGSM with eps - alpha."""
    levels = grey_levels(eps)
    alpha = (levels // 2) / intmath.PIXEL_LEVELS if alpha is None else alpha
    noise = torch.randn(x.shape, generator=generator).to(x.device).sign()
    x1 = to_grid(x + alpha * noise)
    g = input_gradient(model, x1, y, eot=eot, generator=generator)
    return to_grid(x1 + (eps - alpha) * g.sign())


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 7,
        step_size: float = 0.01, random_start: bool = True, target: torch.Tensor | None = None,
        eot: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """PGD in the L-inf ball of radius eps around x, each iterate projected and rounded to the
    8-bit grid (a step below half a grey level can vanish in the rounding: use >= 1/255)."""
    grey_levels(eps)
    x_adv = x.clone()
    if random_start:
        x_adv = to_grid(x_adv + (uniform(x.shape, generator, x.device) * 2 - 1) * eps)
    for _ in range(steps):
        if target is None:
            step = step_size * input_gradient(model, x_adv, y, eot=eot, generator=generator).sign()
        else:
            step = -step_size * input_gradient(model, x_adv, target, eot=eot,
                                               generator=generator).sign()
        x_adv = to_grid(torch.min(torch.max(x_adv + step, x - eps), x + eps))
    return x_adv


def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, name: str, eps: float, *,
           targeted: bool = False, steps: int = 7, step_size: float = 0.01,
           random_start: bool = True, eot: int = 1,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Dispatch by attack name; the model (any module with ``num_classes`` whose forward takes
    pixels in [0, 1] and a ``generator``) should be in eval mode."""
    target = random_targets(y, model.num_classes, generator) if targeted else None
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
