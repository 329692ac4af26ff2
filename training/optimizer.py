"""Adam as training uses it: the fused kernel wherever PyTorch has one.

PyTorch's default Adam on the CPU updates each tensor with a chain of separate elementwise
operations, several passes over every parameter and its two moments. VGG5 has 8.6M weights (fc1
alone 8.4M): one step took 25.5 ms on a quiet 2-core Xeon (session 19), ten times that when the
cores were shared. The fused kernel (``fused=True``, CPU and CUDA) makes one pass with the same
update rule: 2.9 ms. The CIFAR-10 recipe's ANN phase steps 1.15x faster for it (batch 128, bf16),
its SNN phase 1.03x, the fp32 SNN step at batch 32-64 up to 1.06x (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

_FUSED_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[torch.nn.Parameter], *, lr: float,
         weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam (L2 weight decay as torch.optim.Adam applies it), fused where the parameters'
    device and dtype allow, the plain implementation elsewhere."""
    params = list(params)
    fused = all(p.device.type in _FUSED_DEVICES and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def load_adam_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``opt.load_state_dict(state)``, keeping ``opt``'s own choice of implementation.

    A state dict carries its optimizer's ``fused``/``foreach`` flags, which load_state_dict
    would copy over, so a checkpoint written before Adam was fused (or on another device) would
    resume on the slow path. The flags also decide where the step counter lives (the fused
    kernel reads it from the parameters' device), so they are set before loading."""
    groups = state["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(opt.param_groups) \
            or not all(isinstance(g, dict) for g in groups):
        raise ValueError("optimizer state with other parameter groups")
    flags = [{k: mine.get(k) for k in ("fused", "foreach")} for mine in opt.param_groups]
    groups = [{**g, **f} for g, f in zip(groups, flags, strict=True)]
    opt.load_state_dict({**state, "param_groups": groups})
