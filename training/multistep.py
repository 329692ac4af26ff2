"""The layer-major ("multi-step") training engine: the same network as SpikingVGG's step-by-step
reference, computed layer by layer over all T steps at once.

Each convolution or linear layer runs once on the T x B inputs of all steps (one large GEMM
instead of T small ones), in channels-last memory for the convolutions; each LIF layer's
recurrence over T is one autograd node, ``LIFSequence``, whose backward is hand-written
back-propagation through time (through leak, threshold, reset and the surrogate spike), instead
of five autograd nodes per step. The arithmetic is the reference's, operation for operation, so
logits, spikes and every gradient agree with it to float rounding (tests/training/test_multistep.py
holds them to that on every encoding, both resets, trainable neurons, QAT, dropout and HIRE's
carried membranes). The one exception is asked for: with ``--precision bf16`` the convolutions
and linear layers of a training step compute in bfloat16 (training.precision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from training.encoders import encode
from training.lif_kernels import lif_backward, lif_forward
from training.precision import conv2d, linear

if TYPE_CHECKING:
    from training.models import SpikingVGG


class LIFSequence(torch.autograd.Function):
    """T steps of one LIF layer: currents (T, B, ...) -> spikes (T, B, ...), final membrane.

    Per step:  v_t = leak * u_{t-1} + I_t;  s_t = [v_t > theta];
               u_t = v_t - theta * s_t (soft)  or  v_t * (1 - s_t) (hard),
    with u_{-1} = ``u0`` (None: a reset membrane) and ds/dv = scale * max(0, 1 - |v/theta - 1|),
    ds/dtheta = -ds/dv: the reference LIF's surrogate (training.neurons.SpikeFunction).
    Only v is saved; s and u are recomputed from it in the backward pass. On the CPU in float32
    the fused kernels of training.lif_kernels run the recurrence; elsewhere (CUDA, float64)
    torch does, step by step, with the same arithmetic.
    """

    @staticmethod
    def forward(ctx, current: torch.Tensor, u0: torch.Tensor | None, theta: torch.Tensor,
                leak: torch.Tensor, scale: float, soft: bool):
        steps = current.shape[0]
        # spikes and v in the layout of one step's currents (channels-last for convolutions)
        step_stride = current[0].stride()
        n = current[0].numel()
        v = torch.empty_strided(current.shape, (n, *step_stride), dtype=current.dtype,
                                device=current.device)
        spikes = torch.empty_like(v)
        if _fused(current):
            th, lk = float(theta), float(leak)
            u = torch.empty_like(current[0])
            cur_np = _steps(current)
            u0_np = _flat(u0, u) if u0 is not None else np.zeros(1, np.float32)
            lif_forward(cur_np, u0_np, u0 is not None, np.float32(th), np.float32(lk), soft,
                        _steps(v), _steps(spikes), _flat(u, u))
        else:
            # theta and leak stay 0-dim tensors: reading them as Python floats would wait for
            # the GPU at every layer
            th, lk = theta.detach(), leak.detach()
            u = u0
            for t in range(steps):
                if u is None:
                    v[t].copy_(current[t])
                else:
                    torch.add(current[t], u * lk, out=v[t])
                torch.gt(v[t], th, out=spikes[t])
                u = v[t] - th * spikes[t] if soft else v[t] * (1.0 - spikes[t])
        ctx.save_for_backward(v, u0 if u0 is not None else torch.empty(0), theta, leak)
        ctx.scale, ctx.soft, ctx.has_u0 = scale, soft, u0 is not None
        return spikes, u

    @staticmethod
    def backward(ctx, g_spikes: torch.Tensor | None, g_final: torch.Tensor | None):
        v, u0, theta, leak = ctx.saved_tensors
        if g_spikes is None:
            g_spikes = torch.zeros_like(v)
        need_theta, need_leak = ctx.needs_input_grad[2], ctx.needs_input_grad[3]
        if _fused(v):
            g_cur = torch.empty_like(v)
            g_s = g_spikes if g_spikes.stride() == v.stride() else torch.empty_like(v).copy_(g_spikes)
            final = g_final is not None
            g_fin = _flat(g_final, v[0]) if final else np.zeros(1, np.float32)
            scratch = np.empty(v[0].numel(), np.float32)
            gt, gl = lif_backward(_steps(v), _steps(g_s), _flat(u0, v[0]) if ctx.has_u0 else g_fin,
                                  ctx.has_u0, g_fin, final, np.float32(float(theta)),
                                  np.float32(float(leak)), np.float32(ctx.scale), ctx.soft,
                                  need_theta or need_leak, scratch, _steps(g_cur))
            g_theta = torch.tensor(gt, dtype=v.dtype)
            g_leak = torch.tensor(gl, dtype=v.dtype)
        else:
            g_cur, g_theta, g_leak = _backward_torch(ctx, v, u0, theta, leak, g_spikes, g_final)
        return (g_cur, None, g_theta.reshape(theta.shape) if need_theta else None,
                g_leak.reshape(leak.shape) if need_leak else None, None, None)


def _backward_torch(ctx, v, u0, theta, leak, g_spikes, g_final):
    th, lk, scale, soft = theta.detach(), leak.detach(), ctx.scale, ctx.soft
    steps = v.shape[0]
    g_cur = torch.empty_like(v)
    a = g_final if g_final is not None else torch.zeros_like(v[0])   # dL/du_t from later
    g_theta = torch.zeros((), dtype=v.dtype, device=v.device)
    g_leak = torch.zeros((), dtype=v.dtype, device=v.device)
    for t in range(steps - 1, -1, -1):
        vt = v[t]
        st = (vt > th).to(vt.dtype)
        sg = (1.0 - (vt / th - 1.0).abs()).clamp_(min=0.0).mul_(scale)
        if soft:
            gs = g_spikes[t] - th * a                    # dL/ds_t, through the reset too
            gv = a + gs * sg
            g_theta -= (a * st).sum() + (gs * sg).sum()
        else:
            gs = g_spikes[t] - vt * a
            gv = a * (1.0 - st) + gs * sg
            g_theta -= (gs * sg).sum()
        g_cur[t] = gv
        if t > 0:
            vp = v[t - 1]
            sp = (vp > th).to(vp.dtype)
            up = vp - th * sp if soft else vp * (1.0 - sp)
            g_leak += (gv * up).sum()
            a = lk * gv
        elif ctx.has_u0:
            g_leak += (gv * u0).sum()
    return g_cur, g_theta, g_leak


def _fused(t: torch.Tensor) -> bool:
    """Whether the fused CPU kernels can take this (T, ...) tensor: float32 on the CPU, each
    step's values dense in memory (any dimension order), steps apart or the same (expanded)."""
    if t.device.type != "cpu" or t.dtype != torch.float32:
        return False
    step = t[0]
    dense = step.is_contiguous() or step.is_contiguous(memory_format=torch.channels_last)
    return dense and t.stride(0) in (0, step.numel()) and step.numel() > 0


def _steps(t: torch.Tensor) -> np.ndarray:
    """A (T, N) numpy view of a (T, ...) tensor whose steps are dense (see _fused)."""
    n = t[0].numel()
    return torch.as_strided(t.detach(), (t.shape[0], n), (t.stride(0), 1),
                            t.storage_offset()).numpy()


def _flat(t: torch.Tensor, like: torch.Tensor) -> np.ndarray:
    """An (N,) numpy view of one step, in the memory order of ``like``."""
    if t.stride() != like.stride():
        t = torch.empty_like(like).copy_(t)
    return torch.as_strided(t.detach(), (t.numel(),), (1,), t.storage_offset()).numpy()


def _lif(lif, current: torch.Tensor, u0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    return LIFSequence.apply(current, u0, lif.theta, lif.leak, lif.surrogate_scale,
                             lif.reset == "soft")


def run_multistep(model: SpikingVGG, x: torch.Tensor, *, steps: int, t0: int,
                  state: dict[str, torch.Tensor], record: dict[str, list[float]] | None,
                  generator: torch.Generator | None,
                  currents: dict[str, torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SpikingVGG.run, layer-major. Same arguments, same results (see the module docstring).
    ``currents``, if given, receives each spiking layer's input currents (T, B, ...), detached
    (the hybrid initialisation sets thresholds from them)."""
    from training.models import POOL, _record  # here: models imports this module lazily too

    cfg = model.cfg
    b = x.shape[0]
    weights = model.effective_weights()
    conv_w, fc_w, out_w = (weights[:len(model.convs)], weights[len(model.convs):-1], weights[-1])
    masks = model._dropout_masks(b, x.device, x.dtype)      # drawn first, as the reference does
    cl = torch.channels_last
    mm = model.product_dtype(x)     # bf16 while training with --precision bf16, else float32
    if cfg.encoding == "direct":
        # the analog input is the same every step: conv1's current is computed once
        cur0 = conv2d(((x - model.mean) / model.std).contiguous(memory_format=cl), conv_w[0], mm)
        cur = cur0.unsqueeze(0).expand(steps, *cur0.shape)
    else:
        enc = torch.stack([encode(x, cfg.encoding, t, cfg.timesteps, generator)
                           for t in range(t0, t0 + steps)])
        cur = conv2d(enc.flatten(0, 1).contiguous(memory_format=cl), conv_w[0], mm)
        cur = cur.unflatten(0, (steps, b))
    h = None
    ci = 0
    for f in cfg.features:
        if f == POOL:
            h = F.avg_pool2d(h.flatten(0, 1), 2).unflatten(0, (steps, b))
            continue
        if ci > 0:
            cur = conv2d(h.flatten(0, 1).contiguous(memory_format=cl), conv_w[ci], mm)
            cur = cur.unflatten(0, (steps, b))
        name = f"conv{ci + 1}"
        if currents is not None:
            currents[name] = cur.detach()
        h, state[name] = _lif(model.conv_lifs[ci], cur, state.get(name))
        _record(record, name, h)
        ci += 1
    h = h.flatten(2)
    for j, (w, lif) in enumerate(zip(fc_w, model.fc_lifs, strict=True)):
        name = f"fc{j + 1}"
        cur = linear(h, w, mm)
        if currents is not None:
            currents[name] = cur.detach()
        h, state[name] = _lif(lif, cur, state.get(name))
        _record(record, name, h)
        if masks is not None:
            h = h * masks[j]
    return linear(h, out_w, mm).sum(0) / steps, state
