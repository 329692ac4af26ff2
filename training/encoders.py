"""Input encodings: pixels x in [0, 1] -> what the first layer sees at each time step.

direct  : the (normalized) analog image every step.
rate    : Bernoulli spikes with probability x each step (Poisson-like rate code).
phase   : bit-weighted phase code: step t carries bit (7 - t mod 8) of the 8-bit pixel,
          weighted 2^-(1 + t mod 8), so every 8 steps sum to round(255 x) / 256.
latency : one spike per pixel p = round(255 x) > 0, at step (255 - p) T // 255 (brighter fires
          earlier): the chip's integer rule (artifacts.intmath), so both levels agree for every T.

Sampling and rounding have no gradient, so the non-direct encoders pass the gradient straight
through (PAPERS.md eqs. 11-12): d(encoded_t)/dx = 1 at every step, i.e. the attack's input
gradient is the gradient at the first layer's input summed over time. Without this an attack
silently finds a zero gradient and the model looks robust.
"""

from __future__ import annotations

import torch

from artifacts import intmath

ENCODINGS = ("direct", "rate", "phase", "latency")
STOCHASTIC = frozenset({"rate"})


def uniform(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None,
            device: torch.device) -> torch.Tensor:
    """U[0, 1) draws from ``generator`` (drawn on the generator's device, a CPU generator by
    default, so a seed gives the same draws on every device), moved to ``device``."""
    src = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=src).to(device)


def _straight_through(encoded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return encoded + (x - x.detach())


def _levels(x: torch.Tensor) -> torch.Tensor:
    """The 8-bit pixel the chip receives for x in [0, 1] (int64)."""
    return intmath.pixel_levels(x.detach().clamp(0.0, 1.0)).to(torch.int64)


def encode(x: torch.Tensor, encoding: str, t: int, num_steps: int,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """The encoded input at step ``t`` of ``num_steps`` for pixels ``x`` in [0, 1].

    ``direct`` returns x unchanged; the model normalizes it. The others return spikes (or
    weighted spikes for phase) in pixel space with a straight-through gradient.
    """
    if encoding == "direct":
        return x
    if encoding == "rate":
        p = x.detach().clamp(0.0, 1.0)
        s = (uniform(p.shape, generator, p.device) < p).to(x.dtype)
        return _straight_through(s, x)
    if encoding == "phase":
        level = _levels(x)
        event = intmath.phase_event(level, t).to(x.dtype)       # 2^(7-k) or 0
        return _straight_through(event / intmath.PHASE_DENOM, x)
    if encoding == "latency":
        level = _levels(x)
        fires = (intmath.latency_fire_step(level, num_steps) == t) & (level > 0)
        return _straight_through(fires.to(x.dtype), x)
    raise ValueError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
