"""The integer reference model run dense in torch: every neuron of every layer updated every
step, as a GPU-style or framework simulator would. It is the baseline chipsim's event-driven
speed is measured against (issue 4), and it must give identical results to
``compiler.reference`` and to the chip. It lives with the benchmarks, not in the compiler: no
compiler pass uses it. The LIF step is ``artifacts.intmath.lif_step`` on tensors.

Products run in floating point where that is exact, which is what makes dense torch fast: a
layer's sums are computed with its small unshifted weights (2c - n, times the pixel gain on a
graded first layer) and shifted to membrane units afterwards in int64. Every partial sum is an
integer no larger than max event x max |gain| x max_o sum |w_o|; float32 holds such sums exactly
below 2^24, float64 below 2^53, so each layer takes float32 when its bound allows and float64
otherwise (whatever order the convolution adds in).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from artifacts import intmath
from compiler.integer_model import IntegerModel
from compiler.reference import ReferenceResult, encode_events, host_first_layer_current

_FLOAT32_EXACT = 1 << 24
_FLOAT64_EXACT = 1 << 53


class _DenseLayer:
    """One layer's weights as torch tensors in the narrowest exact float type."""

    def __init__(self, model: IntegerModel, index: int) -> None:
        layer = model.layers[index]
        self.layer = layer
        units = layer.units
        gain = 1 if layer.channel_gain is None else int(np.abs(layer.channel_gain).max())
        per_output = np.abs(units).reshape(units.shape[0], -1).sum(axis=1).max()
        bound = int(per_output) * gain * model.max_axon_event(index)
        if bound >= _FLOAT64_EXACT:
            raise ValueError(f"layer {layer.name}: sums up to {bound} are not exact in float64")
        self.dtype = torch.float32 if bound < _FLOAT32_EXACT else torch.float64
        self.weight = torch.from_numpy(units).to(self.dtype)
        self.gain = (None if layer.channel_gain is None else
                     torch.from_numpy(layer.channel_gain.astype(np.int64)).reshape(1, -1, 1, 1))
        self.bias = None if layer.bias is None else torch.from_numpy(layer.bias)[None]

    def current(self, x: torch.Tensor) -> torch.Tensor:
        """int64 input current in membrane units for int64 events ``x``."""
        if self.gain is not None:
            x = x * self.gain
        xf = x.to(self.dtype)
        if self.layer.kind == "conv":
            s = F.conv2d(xf, self.weight, padding=1)
        else:
            s = xf.reshape(xf.shape[0], -1) @ self.weight.T
        return torch.round(s).to(torch.int64) << self.layer.weight_shift


def run_reference_torch(model: IntegerModel, images: np.ndarray, *,
                        rng: np.random.Generator | None = None,
                        norm: tuple | None = None) -> ReferenceResult:
    """Run the integer model densely in torch on uint8 images (B, C, H, W) for T steps.

    Same events, same arithmetic and same results as ``compiler.reference.run_reference``.
    """
    b = images.shape[0]
    lo, hi = model.membrane_limits
    layers = [_DenseLayer(model, i) for i in range(len(model.layers))]
    u = {l.name: torch.zeros((b, *l.out_shape), dtype=torch.int64)
         for l in model.layers if l.kind != "out"}
    counts = {name: torch.zeros(b, dtype=torch.int64) for name in u}
    acc = torch.zeros((b, model.num_classes), dtype=torch.int64)
    host_cur = None
    if model.encoding == "direct" and model.input_path == "host":
        host_cur = torch.from_numpy(host_first_layer_current(images, model.layers[0], *norm))
    with torch.inference_mode():
        for t in range(model.timesteps):
            x = torch.from_numpy(encode_events(images, model, t, rng))
            for i, dense in enumerate(layers):
                layer = dense.layer
                if layer.pooled_input:     # the merged axon sees the spike count of its 4 sources
                    n, c, h, w = x.shape
                    x = x.reshape(n, c, h // 2, 2, w // 2, 2).sum(dim=(3, 5))   # intmath.merge_pool
                cur = host_cur if (i == 0 and host_cur is not None) else dense.current(x)
                if layer.kind == "out":
                    acc += cur.reshape(b, -1)
                    break
                if dense.bias is not None:
                    cur = cur + dense.bias
                v, s = intmath.lif_step(u[layer.name], cur.reshape(u[layer.name].shape),
                                        layer.threshold, layer.leak.shift, layer.leak.multiplier,
                                        layer.reset == "soft", lo, hi)
                u[layer.name] = v
                counts[layer.name] += s.reshape(b, -1).sum(dim=1)
                x = s.to(torch.int64)
    logits = acc.numpy()
    return ReferenceResult(logits, logits.argmax(axis=1),
                           {k: v.numpy() for k, v in counts.items()}, None)
