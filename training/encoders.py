"""Input encodings: pixels x in [0, 1] -> what the first layer sees at each time step.

direct  : the (normalized) analog image every step.
rate    : Bernoulli spikes with probability x each step (Poisson-like rate code).
phase   : bit-weighted phase code: step t carries bit (7 - t mod 8) of the 8-bit pixel,
          weighted 2^-(1 + t mod 8), so every 8 steps sum to round(255 x) / 256.
latency : one spike per pixel at step floor((1 - x) T) (brighter fires earlier); x = 0 never fires.

Sampling and rounding have no gradient, so the non-direct encoders pass the gradient straight
through (PAPERS.md eqs. 11-12): d(encoded_t)/dx = 1 at every step, i.e. the attack's input
gradient is the gradient at the first layer's input summed over time. Without this an attack
silently finds a zero gradient and the model looks robust.
"""

from __future__ import annotations

import torch

ENCODINGS = ("direct", "rate", "phase", "latency")
STOCHASTIC = frozenset({"rate"})


def _straight_through(encoded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return encoded + (x - x.detach())


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
        s = (torch.rand(p.shape, generator=generator, device=p.device) < p).to(x.dtype)
        return _straight_through(s, x)
    if encoding == "phase":
        level = torch.floor(x.detach().clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.int32)
        k = t % 8
        bit = ((level >> (7 - k)) & 1).to(x.dtype)
        return _straight_through(bit * (2.0 ** -(k + 1)), x)
    if encoding == "latency":
        xd = x.detach().clamp(0.0, 1.0)
        fire_at = torch.clamp(torch.floor((1.0 - xd) * num_steps), max=num_steps - 1)
        s = ((fire_at == t) & (xd > 0)).to(x.dtype)
        return _straight_through(s, x)
    raise ValueError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
