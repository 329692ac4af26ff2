"""The integer model in torch with straight-through gradients: the `hw` attack source.

Forward is the chip's arithmetic exactly (the same as compiler.reference, in float64, which
holds every integer the model produces: conv3x3's 2^53 bound), so the logits equal the integer
reference's output accumulators bit for bit. Backward pushes the loss gradient through that
arithmetic (BPDA, Athalye et al. 2018): where an operation has no useful derivative the
gradient passes straight through an approximation of it:

    pixel rounding, input encodings   identity (as training.encoders)
    host-path current rounding        identity
    leak (floor of lambda u)          lambda
    saturation to the membrane width  identity
    spike u > theta                   the training surrogate, in membrane units
    pool merge, crossbar products     their exact (linear) derivatives

The loss is taken on the accumulators times the output layer's unit value / T: the float
model's logits to conversion error, so the softmax sees the same temperature as at `quant`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artifacts import intmath
from artifacts.hostinput import host_currents
from compiler.integer_model import IntegerModel, IntLayer
from spikemesh.evaluation.integer_lif import integer_lif_forward
from training.lif_kernels import lif_backward


class _IntegerLIF(torch.autograd.Function):
    """The integer LIF recurrence over all T steps as one autograd node.

    Forward: exact int64 arithmetic (spikemesh.evaluation.integer_lif), so the spikes are the
    chip's. Backward: BPTT through the straight-through derivatives (leak -> lambda, saturation
    -> 1, spike -> the training surrogate max(0, 1 - |w / theta - 1|) times the layer's unit
    value), in float32 with training's own kernel (training.lif_kernels.lif_backward).
    """

    @staticmethod
    def forward(ctx, cur: torch.Tensor, layer: IntLayer, lo: int, hi: int) -> torch.Tensor:
        steps = cur.shape[0]
        flat = cur.detach().cpu().reshape(steps, -1).contiguous().numpy()
        pre = np.empty(flat.shape, dtype=np.float32)
        spikes = np.empty(flat.shape, dtype=np.float32)
        integer_lif_forward(flat, layer.threshold, layer.leak.shift, layer.leak.multiplier,
                            layer.reset == "soft", lo, hi, pre, spikes)
        ctx.save_for_backward(torch.from_numpy(pre))
        ctx.layer, ctx.shape, ctx.device = layer, cur.shape, cur.device
        return torch.from_numpy(spikes).view(cur.shape).to(cur.device)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (pre,) = ctx.saved_tensors
        layer = ctx.layer
        g_s = grad_spikes.detach().cpu().to(torch.float32).reshape(pre.shape).contiguous()
        g_cur = np.empty(pre.shape, dtype=np.float32)
        none = np.zeros(1, dtype=np.float32)
        scratch = np.empty(pre.shape[1], dtype=np.float32)
        lif_backward(pre.numpy(), g_s.numpy(), none, False, none, False,
                     np.float32(layer.threshold), np.float32(layer.leak.value),
                     np.float32(layer.scale), layer.reset == "soft", False, 0, 0, scratch, g_cur)
        grad = torch.from_numpy(g_cur).view(ctx.shape).to(ctx.device, torch.float64)
        return grad, None, None, None


def _through(value: torch.Tensor, approx: torch.Tensor) -> torch.Tensor:
    """``value`` forward, ``approx``'s gradient backward."""
    return approx + (value - approx).detach()


class IntegerTorchModel(nn.Module):
    """A chip's integer model as a differentiable torch module: ``forward(x)`` takes pixels in
    [0, 1] (on the 8-bit grid) and returns float logits; ``accumulators(x)`` the exact integers."""

    def __init__(self, model: IntegerModel, mean, std) -> None:
        super().__init__()
        self.model = model
        self.num_classes = model.num_classes
        self.lo, self.hi = model.membrane_limits
        # Each product runs on the unshifted weights 2c - (2^k - 1), in float32 where that is
        # provably exact (every partial sum below 2^24), then takes its shift (and, on the
        # graded first layer, its per-channel pixel gain) in float64.
        self.units, self.shifts, self.gains = [], [], []
        for i, l in enumerate(model.layers):
            bound = np.abs(l.units).reshape(len(l.units), -1).sum(1).max() * model.max_axon_event(i)
            dtype = np.float32 if bound < (1 << 24) else np.float64
            self.units.append(torch.from_numpy(l.units.astype(dtype)))
            self.shifts.append(float(1 << l.weight_shift))
            self.gains.append(None if l.channel_gain is None else
                              torch.from_numpy(l.channel_gain.astype(np.float64)))
        first = model.layers[0]
        self.host = model.encoding == "direct" and model.input_path == "host"
        self.bias = (torch.from_numpy(first.bias.astype(np.float64))
                     if first.bias is not None else None)
        self.norm = (tuple(mean), tuple(std))
        self.mean = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
        # the logits' units: one accumulator unit is worth `scale` in the float model; mean over T
        self.logit_scale = model.layers[-1].scale / model.timesteps

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return (self.accumulators(x, generator=generator) * self.logit_scale).to(x.dtype)

    def accumulators(self, x: torch.Tensor, *, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """The output accumulators (float64 holding integers), layer-major over all T steps."""
        m = self.model
        T, b = m.timesteps, x.shape[0]
        x64 = x.to(torch.float64)
        h = x64                  # each spiking layer replaces it with its spikes
        for i, layer in enumerate(m.layers):
            if i == 0:
                if m.encoding == "direct":
                    # the same input every step: conv1's current once, then repeated over T
                    cur = self._host_current(x64) if self.host else self._product(0, self._pixels(x64))
                    cur = cur.unsqueeze(0).expand(T, *cur.shape).flatten(0, 1)
                else:
                    cur = self._product(0, self._spike_events(x64, generator))
            else:
                if layer.pooled_input:
                    h = F.avg_pool2d(h, 2) * intmath.POOL_DENOM   # the merged axon's count
                cur = self._product(i, h)
            if i == 0 and self.bias is not None:
                cur = cur + self.bias.view(1, *layer.out_shape)
            if layer.kind == "out":
                return cur.reshape(T, b, -1).sum(0)
            h = self._lif(layer, cur.reshape(T, b, *cur.shape[1:])).flatten(0, 1)
        raise ValueError("the integer model has no output layer")

    def _product(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Layer i's crossbar product on input events ``h``, exactly, as float64."""
        layer, units, gain = self.model.layers[i], self.units[i], self.gains[i]
        h = h.to(units.dtype)
        if layer.kind != "conv":
            return F.linear(h.flatten(1), units).to(torch.float64) * self.shifts[i]
        if gain is None:
            return F.conv2d(h, units, padding=1).to(torch.float64) * self.shifts[i]
        # graded pixels: one convolution per input channel (exact), then the channel's gain
        o, c = units.shape[:2]
        per_channel = F.conv2d(h, units.transpose(0, 1).reshape(c * o, 1, 3, 3), padding=1,
                               groups=c).to(torch.float64)
        per_channel = per_channel.view(h.shape[0], c, o, *per_channel.shape[2:])
        return (per_channel * gain.view(1, c, 1, 1, 1)).sum(1) * self.shifts[i]

    @staticmethod
    def _pixels(x: torch.Tensor) -> torch.Tensor:
        """The 8-bit pixel events p, straight through to x * 255."""
        return _through(intmath.pixel_levels(x.detach().clamp(0.0, 1.0)), x * intmath.PIXEL_LEVELS)

    def _host_current(self, x: torch.Tensor) -> torch.Tensor:
        """input path "host": conv1's currents exactly as the host computes them
        (artifacts.hostinput), straight through to the unrounded float convolution."""
        layer = self.model.layers[0]
        p = intmath.pixel_levels(x.detach().clamp(0.0, 1.0))
        exact = torch.from_numpy(host_currents(
            p.to(torch.uint8).cpu().numpy(), layer.units, layer.weight_shift, *self.norm))
        approx = F.conv2d((x - self.mean) / self.std, self.units[0].to(torch.float64),
                          padding=1) * self.shifts[0]
        return _through(exact.to(device=x.device, dtype=torch.float64), approx)

    def _spike_events(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """rate / phase / latency events for all T steps, (T*B, C, H, W), straight through
        (as training.encoders: d event / dx = 1 per step, in the layer's event units)."""
        m = self.model
        p = intmath.pixel_levels(x.detach().clamp(0.0, 1.0))
        steps = []
        for t in range(m.timesteps):
            if m.encoding == "rate":
                src = generator.device if generator is not None else x.device
                draw = torch.rand(p.shape, generator=generator, device=src,
                                  dtype=torch.float64).to(x.device)
                steps.append(_through((draw * intmath.PIXEL_LEVELS < p).to(torch.float64), x))
            elif m.encoding == "phase":
                event = intmath.phase_event(p.to(torch.int64), t).to(torch.float64)
                steps.append(_through(event, x * intmath.PHASE_DENOM))
            elif m.encoding == "latency":
                lv = p.to(torch.int64)
                fires = (intmath.latency_fire_step(lv, m.timesteps) == t) & (lv > 0)
                steps.append(_through(fires.to(torch.float64), x))
            else:
                raise ValueError(f"unknown encoding {m.encoding!r}")
        return torch.stack(steps).flatten(0, 1)

    def _lif(self, layer: IntLayer, cur: torch.Tensor) -> torch.Tensor:
        """The integer LIF recurrence over T steps of (T, B, ...) currents: spikes (T, B, ...)."""
        return _IntegerLIF.apply(cur, layer, int(self.lo), int(self.hi))
