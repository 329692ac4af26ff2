"""Leaky integrate-and-fire neurons with the triangular surrogate gradient of PAPERS.md eq. 2."""

from __future__ import annotations

import torch
from torch import nn


class SpikeFunction(torch.autograd.Function):
    """Heaviside step forward; backward d o / d u = scale * max(0, 1 - |u / theta - 1|)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, theta: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(u, theta)
        ctx.scale = scale
        return (u > theta).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        u, theta = ctx.saved_tensors
        sg = ctx.scale * torch.clamp(1.0 - torch.abs(u / theta - 1.0), min=0.0)
        grad_u = grad_out * sg
        grad_theta = None
        if ctx.needs_input_grad[1]:
            # s = H(u - theta): raising theta acts like lowering u by the same amount.
            grad_theta = (-grad_u).sum().reshape(theta.shape)
        return grad_u, grad_theta, None


def surrogate(u: torch.Tensor, theta: float | torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The surrogate derivative itself, for tests and plots."""
    return scale * torch.clamp(1.0 - torch.abs(u / theta - 1.0), min=0.0)


class LIF(nn.Module):
    """One layer's LIF dynamics, stepped explicitly by the model.

    u_t = lambda * u_{t-1} + I_t ; s_t = [u_t > theta] ; soft reset u_t -= theta * s_t
    (or hard reset u_t = 0 where s_t = 1). theta and lambda are per layer, optionally trainable.
    """

    def __init__(self, theta: float, leak: float, *, reset: str = "soft",
                 trainable: bool = False, surrogate_scale: float = 1.0) -> None:
        super().__init__()
        if reset not in ("soft", "hard"):
            raise ValueError(f"reset must be soft or hard, got {reset!r}")
        if theta <= 0:
            raise ValueError(f"threshold must be positive, got {theta}")
        if not 0.0 <= leak <= 1.0:
            raise ValueError(f"leak must lie in [0, 1], got {leak}")
        self.theta = nn.Parameter(torch.tensor(float(theta)), requires_grad=trainable)
        self.leak = nn.Parameter(torch.tensor(float(leak)), requires_grad=trainable)
        self.reset = reset
        self.surrogate_scale = surrogate_scale

    def step(self, u: torch.Tensor | None, current: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance one time step; ``u`` None means a freshly reset membrane (zeros)."""
        u = current if u is None else self.leak * u + current
        s = SpikeFunction.apply(u, self.theta, self.surrogate_scale)
        if self.reset == "soft":
            u = u - self.theta * s
        else:
            u = u * (1.0 - s)
        return u, s
