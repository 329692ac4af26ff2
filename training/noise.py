"""Noise training: none, uniform, and HIRE-SNN-style gradient-crafted input noise.

HIRE (PAPERS.md B): the T steps of one iteration are split into N periods. Period 1 sees the
clean image; period p > 1 sees x' = clip(x + eps * sign(g)), where g is the input gradient that
period p-1's backward pass produced anyway. Parameter gradients of all periods accumulate and
the optimizer steps once, so the total work is still T forward steps and T backward steps (the
linear layers' weight gradients are formed once, in the last period, from all periods' rows:
training.multistep.PeriodRows).
Membrane state carries over between periods (detached: BPTT is truncated at period edges) unless
``reset_between_periods`` is set; the paper publishes neither choice, so both are options.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.encoders import uniform
from training.models import SpikingVGG
from training.multistep import PeriodRows

NOISE_KINDS = ("none", "uniform", "hire")


@dataclass(frozen=True)
class NoiseConfig:
    kind: str = "none"
    eps: float = 8 / 255          # in [0, 1] pixel units
    periods: int = 2              # HIRE: number of periods T is split into
    reset_between_periods: bool = False

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise {self.kind!r}; choose one of {', '.join(NOISE_KINDS)}")
        if self.eps < 0:
            raise ValueError("noise eps must be >= 0")
        if self.periods < 1:
            raise ValueError("noise periods must be >= 1")


def train_step(model: SpikingVGG, x: torch.Tensor, y: torch.Tensor, noise: NoiseConfig,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward one batch (gradients accumulate into the parameters).

    Returns the loss and the logits (detached) used for the training accuracy.
    """
    if noise.kind == "hire" and noise.periods > 1:
        return _hire_step(model, x, y, noise, generator)
    if noise.kind == "uniform":
        u = uniform(x.shape, generator, x.device) * 2 - 1
        x = (x + noise.eps * u).clamp(0, 1)
    logits = model(x, generator=generator)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return loss.detach(), logits.detach()


def period_lengths(timesteps: int, periods: int) -> list[int]:
    """Split T steps into ``periods`` nearly equal periods (earlier ones get the remainder)."""
    periods = min(periods, timesteps)
    base, extra = divmod(timesteps, periods)
    return [base + (1 if i < extra else 0) for i in range(periods)]


def _hire_step(model: SpikingVGG, x: torch.Tensor, y: torch.Tensor, noise: NoiseConfig,
               generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = period_lengths(model.cfg.timesteps, noise.periods)
    x_in = x
    state = None
    t0 = 0
    total_loss = torch.zeros((), device=x.device)
    logits_sum = torch.zeros(x.shape[0], model.cfg.num_classes, device=x.device)
    # the linear layers' weight gradients: one product over all periods' rows, in the last
    rows = PeriodRows() if model.engine == "multistep" else None
    for i, steps in enumerate(lengths):
        last = i == len(lengths) - 1
        # the last period's input gradient would perturb nothing: not asked for, the first
        # convolution's backward skips it
        x_in = x_in.detach().requires_grad_(not last)
        if rows is not None:
            rows.last = last
        logits, state = model.run(x_in, steps=steps, t0=t0, state=state, generator=generator,
                                  period_rows=rows)
        loss = F.cross_entropy(logits, y) * (steps / model.cfg.timesteps)
        loss.backward()
        total_loss += loss.detach()
        logits_sum += logits.detach() * steps
        if last:
            break
        # the input gradient came for free with the backward pass above
        x_in = (x + noise.eps * x_in.grad.sign()).clamp(0, 1)
        state = None if noise.reset_between_periods else {k: v.detach() for k, v in state.items()}
        t0 += steps
    return total_loss, logits_sum / model.cfg.timesteps
