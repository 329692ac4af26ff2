"""The integer reference model: a vectorized, batched numpy run of an integer model, every
operation taken from ``artifacts.intmath`` (the convolution, pool merge, leak, saturation,
spike and reset) and ``artifacts.hostinput`` (the events). It is the specification the chip
simulator is tested against, and it imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artifacts import intmath
from artifacts.hostinput import encode_step, host_currents
from compiler.integer_model import IntegerModel, IntLayer


@dataclass
class ReferenceResult:
    logits: np.ndarray                    # int64 (B, classes): the output accumulators
    predictions: np.ndarray               # int64 (B,)
    spike_counts: dict[str, np.ndarray]   # per layer: int64 (B,) spikes over all steps
    spikes: dict[str, np.ndarray] | None  # per layer: uint8 (T, B, *neurons) when recorded


def encode_events(images: np.ndarray, model: IntegerModel, t: int,
                  rng: np.random.Generator | None) -> np.ndarray:
    """Integer input events at step ``t`` for uint8 images (B, C, H, W)."""
    return encode_step(images, model.encoding, t, model.timesteps, rng)


def host_first_layer_current(images: np.ndarray, layer: IntLayer, mean, std) -> np.ndarray:
    """input_path 'host': the host computes conv1 in float and sends integer currents."""
    return host_currents(images, layer.units, layer.weight_shift, mean, std)


def _current(layer: IntLayer, x: np.ndarray) -> np.ndarray:
    if layer.kind == "conv":
        return intmath.conv3x3(x, layer.weights)
    return x.reshape(x.shape[0], -1).astype(np.float64) @ layer.weights.T.astype(np.float64)


def run_reference(model: IntegerModel, images: np.ndarray, *, rng: np.random.Generator | None = None,
                  record: bool = False, norm: tuple | None = None) -> ReferenceResult:
    """Run the integer model on uint8 images (B, C, H, W) for T steps.

    ``norm`` = (mean, std) is needed only for the host input path of a direct-encoded model.
    """
    b = images.shape[0]
    lo, hi = model.membrane_limits
    spiking = [l for l in model.layers if l.kind != "out"]
    u = {l.name: np.zeros((b, *l.out_shape), dtype=np.int64) for l in spiking}
    counts = {l.name: np.zeros(b, dtype=np.int64) for l in spiking}
    trains = {l.name: [] for l in spiking} if record else None
    acc = np.zeros((b, model.num_classes), dtype=np.int64)
    host_cur = None
    if model.encoding == "direct" and model.input_path == "host":
        host_cur = host_first_layer_current(images, model.layers[0], *norm)
    for t in range(model.timesteps):
        x = encode_events(images, model, t, rng)
        for i, layer in enumerate(model.layers):
            if layer.pooled_input:
                x = intmath.merge_pool(x)
            if i == 0 and host_cur is not None:
                cur = host_cur
            else:
                cur = np.rint(_current(layer, x)).astype(np.int64)
            if layer.kind == "out":
                acc += cur.reshape(b, -1)
                break
            if layer.bias is not None:
                cur = cur + layer.bias[None]
            cur = cur.reshape(u[layer.name].shape)
            v, s = intmath.lif_step(u[layer.name], cur, layer.threshold, layer.leak.shift,
                                    layer.leak.multiplier, layer.reset == "soft", lo, hi)
            u[layer.name] = v
            counts[layer.name] += s.reshape(b, -1).sum(axis=1)
            if trains is not None:
                trains[layer.name].append(s.astype(np.uint8))
            x = s.astype(np.int64)
    spikes = {k: np.stack(v) for k, v in trains.items()} if trains is not None else None
    return ReferenceResult(acc, acc.argmax(axis=1), counts, spikes)
