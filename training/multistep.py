"""The layer-major ("multi-step") training engine: the same network as SpikingVGG's step-by-step
reference, computed layer by layer over all T steps at once.

Each convolution or linear layer runs once on the T x B inputs of all steps (one large GEMM
instead of T small ones), in channels-last memory for the convolutions; each LIF layer's
recurrence over T is one autograd node, ``LIFSequence``, whose backward is hand-written
back-propagation through time (through leak, threshold, reset and the surrogate spike), instead
of five autograd nodes per step. A LIF layer followed by average pooling hands out its spikes
already pooled, and direct encoding's first layer takes its one current for all T steps, so the
largest tensors of a step (conv1's spikes and their gradient, T copies of its current's
gradient) are never written. The arithmetic is the reference's, operation for operation, so
logits, spikes and every gradient agree with it to float rounding (tests/training/test_multistep.py
holds them to that on every encoding, both resets, trainable neurons, QAT, dropout and HIRE's
carried membranes). The one exception is asked for: with ``--precision bf16`` the convolutions
and linear layers of a training step compute in bfloat16 (training.precision); on the CPU the
convolution layers' currents and spikes then stay bfloat16 between the products and the LIF
kernels, with the membranes in float32 (BF16_KERNEL_IO, below).
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

# Under --precision bf16 on the CPU, the convolutions' currents and spikes stay bfloat16 and the
# LIF kernels read and write them so (bit for bit what casting around them gives; tested). False
# casts them to float32 and back around every LIF layer, the way it was (tests compare the two).
BF16_KERNEL_IO = True


class LIFSequence(torch.autograd.Function):
    """T steps of one LIF layer: currents (T, B, ...) -> spikes (T, B, ...), final membrane.

    Per step:  v_t = leak * u_{t-1} + I_t;  s_t = [v_t > theta];
               u_t = v_t - theta * s_t (soft)  or  v_t * (1 - s_t) (hard),
    with u_{-1} = ``u0`` (None: a reset membrane) and ds/dv = scale * max(0, 1 - |v/theta - 1|),
    ds/dtheta = -ds/dv: the reference LIF's surrogate (training.neurons.SpikeFunction).
    ``steps`` > 0: ``current`` is one step's (B, ...), the same at every one of ``steps`` steps
    (direct encoding's first layer). ``pool``: the spikes come out 2x2 average-pooled, (T, B, C,
    H/2, W/2) (convolution layers of even height and width). ``u0`` gets no gradient: HIRE's
    periods carry it detached, and no other caller passes one. Only v is saved; s and u are
    recomputed from it in the backward pass. On the CPU in float32 the fused kernels of
    training.lif_kernels run the recurrence, pooling included; elsewhere (CUDA, float64) torch
    does, step by step, with the same arithmetic.
    """

    @staticmethod
    def forward(ctx, current: torch.Tensor, u0: torch.Tensor | None, theta: torch.Tensor,
                leak: torch.Tensor, scale: float, soft: bool, steps: int = 0, pool: bool = False):
        constant = steps > 0
        step = current if constant else current[0]
        steps = steps if constant else current.shape[0]
        # v (and unpooled spikes) in the layout of one step's currents: channels-last for
        # convolutions
        n = step.numel()
        # membranes in float32 also when the current and spikes are bfloat16 (see _lif)
        state = torch.float32 if current.dtype == torch.bfloat16 else current.dtype
        v = torch.empty_strided((steps, *step.shape), (n, *step.stride()), dtype=state,
                                device=current.device)
        per_step = current.unsqueeze(0) if constant else current     # (T or 1, B, ...)
        fused = _fused(per_step)
        # the kernel pools two whole rows of channels-last pixels at a time
        kernel_pool = (pool and fused and step.is_contiguous(memory_format=torch.channels_last)
                       and step.shape[2] % 2 == 0 and step.shape[3] % 2 == 0)
        if fused:
            spikes = (_pooled(v, current.dtype) if kernel_pool
                      else torch.empty_like(v, dtype=current.dtype))
            u = torch.empty_like(step, dtype=state)
            width, chans = (step.shape[3], step.shape[1]) if kernel_pool else (0, 0)
            lif_forward(_steps(per_step),
                        _flat(u0, u) if u0 is not None else np.zeros(1, np.float32),
                        u0 is not None, np.float32(float(theta)), np.float32(float(leak)), soft,
                        width, chans, _steps(v), _steps(spikes), _flat(u, u))
        else:
            # theta and leak stay 0-dim tensors: reading them as Python floats would wait for
            # the GPU at every layer
            th, lk = theta.detach(), leak.detach()
            spikes = torch.empty_like(v)
            u = u0
            for t in range(steps):
                cur_t = step if constant else current[t]
                if u is None:
                    v[t].copy_(cur_t)
                else:
                    torch.add(cur_t, u * lk, out=v[t])
                torch.gt(v[t], th, out=spikes[t])
                u = v[t] - th * spikes[t] if soft else v[t] * (1.0 - spikes[t])
        if pool and not kernel_pool:
            spikes = F.avg_pool2d(spikes.flatten(0, 1), 2).unflatten(0, (steps, step.shape[0]))
        ctx.save_for_backward(v, u0 if u0 is not None else torch.empty(0), theta, leak)
        ctx.scale, ctx.soft, ctx.has_u0 = scale, soft, u0 is not None
        ctx.constant, ctx.pool, ctx.kernel_pool = constant, pool, kernel_pool
        ctx.fused, ctx.io_dtype = fused, current.dtype
        # the final membrane is rarely used (HIRE's carried periods): without this autograd
        # would hand backward a tensor of zeros for it, filled and copied at every layer
        ctx.set_materialize_grads(False)
        return spikes, u

    @staticmethod
    def backward(ctx, g_spikes: torch.Tensor | None, g_final: torch.Tensor | None):
        v, u0, theta, leak = ctx.saved_tensors
        if g_spikes is None:
            g_spikes = (_pooled(v, ctx.io_dtype).zero_() if ctx.kernel_pool
                        else torch.zeros_like(v, dtype=ctx.io_dtype))
        elif ctx.pool and not ctx.kernel_pool:    # through the pooling done in forward
            g_spikes = torch.ops.aten.avg_pool2d_backward(
                g_spikes.to(v.dtype).flatten(0, 1), v.flatten(0, 1), [2, 2], [2, 2], [0, 0], False, True,
                None).unflatten(0, v.shape[:2])
        need_theta, need_leak = ctx.needs_input_grad[2], ctx.needs_input_grad[3]
        if ctx.fused:
            # a constant current's gradient is a sum over the steps: taken in float32
            g_cur = (torch.empty_like(v[:1]) if ctx.constant
                     else torch.empty_like(v, dtype=ctx.io_dtype))
            like = (_pooled(v, ctx.io_dtype) if ctx.kernel_pool
                    else torch.empty_like(v, dtype=ctx.io_dtype))
            g_s = (g_spikes if g_spikes.stride() == like.stride() and g_spikes.dtype == like.dtype
                   else like.copy_(g_spikes))
            width, chans = (v.shape[4], v.shape[2]) if ctx.kernel_pool else (0, 0)
            final = g_final is not None
            g_fin = _flat(g_final, v[0]) if final else np.zeros(1, np.float32)
            scratch = np.empty(v[0].numel(), np.float32)
            gt, gl = lif_backward(_steps(v), _steps(g_s), _flat(u0, v[0]) if ctx.has_u0 else g_fin,
                                  ctx.has_u0, g_fin, final, np.float32(float(theta)),
                                  np.float32(float(leak)), np.float32(ctx.scale), ctx.soft,
                                  need_theta or need_leak, width, chans, scratch, _steps(g_cur))
            g_theta = torch.tensor(gt, dtype=v.dtype)
            g_leak = torch.tensor(gl, dtype=v.dtype)
            if ctx.constant:
                g_cur = g_cur[0].to(ctx.io_dtype)
        else:
            g_cur, g_theta, g_leak = _backward_torch(ctx, v, u0, theta, leak, g_spikes, g_final)
            if ctx.constant:
                g_cur = g_cur.sum(0)
        return (g_cur, None, g_theta.reshape(theta.shape) if need_theta else None,
                g_leak.reshape(leak.shape) if need_leak else None, None, None, None, None)


class PeriodRows:
    """Makes a linear layer's weight gradient one product over the rows of several backward
    passes (HIRE's periods) instead of one per pass.

    A period's forward and backward cover only its share of the T steps, so per period the
    weight gradient of fc1 (8192 x 1024 in VGG5) is a product over B x T/p rows, written whole
    (32 MB) and then added to the earlier periods'. Here the earlier periods keep their rows
    (the layer's input and output gradient) and return no weight gradient; the last period
    (``last`` set before its forward) forms the gradient from all rows in one product, as a
    plain step does. The sum is the same; only its float rounding order differs.
    """

    def __init__(self) -> None:
        self.last = False
        self.rows: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def linear(self, layer: int, x: torch.Tensor, w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """x @ w.T in ``dtype`` (training.precision.linear), weight gradient deferred."""
        return _DeferredLinear.apply(x, w, dtype, self.rows.setdefault(layer, []), self.last)


class _DeferredLinear(torch.autograd.Function):
    """training.precision.linear whose weight gradient waits for the last period (PeriodRows)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, dtype: torch.dtype,
                rows: list[tuple[torch.Tensor, torch.Tensor]], last: bool) -> torch.Tensor:
        xd, wd = x.to(dtype), w.to(dtype)
        ctx.save_for_backward(xd, wd)
        ctx.rows, ctx.last, ctx.dtypes = rows, last, (x.dtype, w.dtype)
        return F.linear(xd, wd).to(x.dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        xd, wd = ctx.saved_tensors
        gd = g.to(wd.dtype)
        x_dtype, w_dtype = ctx.dtypes
        g_x = (gd @ wd).to(x_dtype) if ctx.needs_input_grad[0] else None
        g_w = None
        if ctx.needs_input_grad[1]:
            ctx.rows.append((xd.flatten(0, -2), gd.flatten(0, -2)))
            if ctx.last:
                x_all = torch.cat([r[0] for r in ctx.rows]) if len(ctx.rows) > 1 else ctx.rows[0][0]
                g_all = torch.cat([r[1] for r in ctx.rows]) if len(ctx.rows) > 1 else ctx.rows[0][1]
                ctx.rows.clear()
                g_w = (g_all.t() @ x_all).to(w_dtype)
        return g_x, g_w, None, None, None


def _pooled(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An empty (T, B, C, H/2, W/2) tensor, each step channels-last: 2x2-pooled ``v``."""
    steps, bsz, chans, height, width = v.shape
    n = v[0].numel() // 4
    return torch.empty_strided((steps, bsz, chans, height // 2, width // 2),
                               (n, n // bsz, 1, width // 2 * chans, chans),
                               dtype=dtype, device=v.device)


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
    """Whether the fused CPU kernels can take this (T, ...) tensor: float32 or bfloat16 on the
    CPU, each step's values dense in memory (any dimension order), steps apart or the same
    (expanded)."""
    if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.bfloat16):
        return False
    step = t[0]
    dense = step.is_contiguous() or step.is_contiguous(memory_format=torch.channels_last)
    return dense and t.stride(0) in (0, step.numel()) and step.numel() > 0


def _steps(t: torch.Tensor) -> np.ndarray:
    """A (T, N) numpy view of a (T, ...) tensor whose steps are dense (see _fused); bfloat16
    as its uint16 bit patterns (training.lif_kernels)."""
    n = t[0].numel()
    view = torch.as_strided(t.detach(), (t.shape[0], n), (t.stride(0), 1), t.storage_offset())
    if view.dtype == torch.bfloat16:
        return view.view(torch.int16).numpy().view(np.uint16)
    return view.numpy()


def _flat(t: torch.Tensor, like: torch.Tensor) -> np.ndarray:
    """An (N,) numpy view of one step, in the memory order of ``like``."""
    if t.stride() != like.stride():
        t = torch.empty_like(like).copy_(t)
    return torch.as_strided(t.detach(), (t.numel(),), (1,), t.storage_offset()).numpy()


def _lif(lif, current: torch.Tensor, u0: torch.Tensor | None, steps: int = 0,
         pool: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes (in the current's dtype) and final membrane of a LIF layer. A bfloat16 current
    the fused kernels cannot take is computed in float32, its spikes cast back."""
    per_step = current.unsqueeze(0) if steps else current
    if current.dtype == torch.bfloat16 and not _fused(per_step):
        spikes, u = _lif(lif, current.float(), u0, steps, pool)
        return spikes.to(torch.bfloat16), u
    return LIFSequence.apply(current, u0, lif.theta, lif.leak, lif.surrogate_scale,
                             lif.reset == "soft", steps, pool)


def _linear(rows: PeriodRows | None, layer: int, x: torch.Tensor, w: torch.Tensor,
            dtype: torch.dtype) -> torch.Tensor:
    return linear(x, w, dtype) if rows is None else rows.linear(layer, x, w, dtype)


def run_multistep(model: SpikingVGG, x: torch.Tensor, *, steps: int, t0: int,
                  state: dict[str, torch.Tensor], record: dict[str, list[float]] | None,
                  generator: torch.Generator | None,
                  currents: dict[str, torch.Tensor] | None = None,
                  period_rows: PeriodRows | None = None
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SpikingVGG.run, layer-major. Same arguments, same results (see the module docstring).
    ``currents``, if given, receives each spiking layer's input currents (T, B, ...), detached
    (the hybrid initialisation sets thresholds from them). ``period_rows``, if given, defers
    the linear layers' weight gradients to the last of several periods (PeriodRows)."""
    from training.models import POOL, _record  # here: models imports this module lazily too

    cfg = model.cfg
    b = x.shape[0]
    weights = model.effective_weights()
    conv_w, fc_w, out_w = (weights[:len(model.convs)], weights[len(model.convs):-1], weights[-1])
    masks = model._dropout_masks(b, x.device, x.dtype)      # drawn first, as the reference does
    cl = torch.channels_last
    mm = model.product_dtype(x)     # bf16 while training with --precision bf16, else float32
    # the convolutions' currents and spikes stay in the products' bf16 where the LIF kernels
    # read and write it (training.lif_kernels), instead of cast to float32 and back around them
    act = (torch.bfloat16 if mm == torch.bfloat16 and x.device.type == "cpu" and BF16_KERNEL_IO
           else x.dtype)
    constant = 0        # conv1's current is one step's, the same at each of this many steps
    if cfg.encoding == "direct":
        # the analog input is the same every step: conv1's current is computed once
        cur = conv2d(((x - model.mean) / model.std).contiguous(memory_format=cl), conv_w[0], mm,
                     act)
        constant = steps
    else:
        enc = torch.stack([encode(x, cfg.encoding, t, cfg.timesteps, generator)
                           for t in range(t0, t0 + steps)])
        cur = conv2d(enc.flatten(0, 1).contiguous(memory_format=cl), conv_w[0], mm, act)
        cur = cur.unflatten(0, (steps, b))
    h = None
    ci = 0
    features = cfg.features
    for k, f in enumerate(features):
        if f == POOL:           # done: the LIF layer before it handed out its spikes pooled
            continue
        if ci > 0:
            cur = conv2d(h.flatten(0, 1).contiguous(memory_format=cl), conv_w[ci], mm, act)
            cur = cur.unflatten(0, (steps, b))
        name = f"conv{ci + 1}"
        if currents is not None:
            currents[name] = (cur.expand(steps, *cur.shape) if constant else cur).detach().to(x.dtype)
        # a pooling layer next: the LIF layer hands out its spikes pooled (two passes fewer
        # each way over the layer's largest tensors)
        pooled = k + 1 < len(features) and features[k + 1] == POOL
        h, state[name] = _lif(model.conv_lifs[ci], cur, state.get(name), constant, pooled)
        _record(record, name, h, pooled=pooled)
        constant = 0
        ci += 1
    h = h.flatten(2)
    for j, (w, lif) in enumerate(zip(fc_w, model.fc_lifs, strict=True)):
        name = f"fc{j + 1}"
        # float32 from here on: the fully connected layers are small, and a bf16 spike times
        # dropout's mask would round the mask's gradient
        cur = _linear(period_rows, j, h, w, mm).to(x.dtype)
        if currents is not None:
            currents[name] = cur.detach()
        h, state[name] = _lif(lif, cur, state.get(name))
        _record(record, name, h)
        if masks is not None:
            h = h * masks[j]
    return _linear(period_rows, len(fc_w), h, out_w, mm).to(x.dtype).sum(0) / steps, state
