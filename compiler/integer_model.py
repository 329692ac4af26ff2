"""The integer model: a trained float network quantized into the exact arithmetic the chip
performs. The arithmetic itself (widths, shifts, rounding, leak, saturation, reset) has one
home, ``artifacts.intmath``, which the chip simulator and both references share.

Units. A layer with per-layer scale alpha and k-bit weights stores codes c in 0..2^k-1 and uses
integer weights w = (2c - (2^k - 1)) << f. One membrane unit is worth alpha / (n * D * 2^f) in
the float model (n = 2^k - 1), where D is the input denominator: 4 when the input arrives through
a 2x2 average pool (the four source neurons drive one merged axon, so the axon sees the spike
count, and the 1/4 moves into the threshold), 256 for phase-coded input (event value 2^(7-k)
for weight 2^-(k+1)), 1 for plain spikes. The shift f is chosen per layer so that the integer
threshold round(theta * n * D * 2^f / alpha) uses the upper half of the threshold register:
more fraction bits mean less conversion error.

Direct-encoded first layer ("graded" input path): events carry the 8-bit pixel p. Normalization
(p/255 - mean_c)/std_c is folded in: the weight becomes w * g_c with g_c = round(2^G / (255 std_c)),
and the mean term becomes an integer bias per neuron (zero padding contributes nothing, so the
bias differs at the borders). ("host" path: the host computes conv1 in float and sends integer
currents round(I * units).)

One time step, per spiking layer, in this order:
    u = leak(u)                      shift right by m when lambda = 2^-m, else (u * l) >> F
    u = sat(u + I + bias)            saturate to the signed membrane width
    s = u > theta                    strict comparison
    u = u - theta * s  (soft)  or  u = 0 where s (hard)
The output layer accumulates I without leak or spikes; the prediction is argmax (first on ties).
Shifts of negative numbers floor (arithmetic shift), on purpose and in both implementations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from artifacts import intmath
from artifacts.intmath import PHASE_DENOM, POOL_DENOM
from compiler.spec import ArithmeticSpec


@dataclass(frozen=True)
class Leak:
    """lambda as the chip applies it: a right shift, or a fixed-point multiply then shift."""

    shift: int                  # right shift after the multiply
    multiplier: int = 1         # 1 for a pure shift; 0 means lambda = 0 (membrane cleared)

    @staticmethod
    def from_float(leak: float, frac_bits: int) -> Leak:
        return Leak(*intmath.leak_code(leak, frac_bits))

    def apply(self, u: np.ndarray) -> np.ndarray:
        return intmath.leak(u, self.shift, self.multiplier)

    @property
    def value(self) -> float:
        return self.multiplier / (1 << self.shift)


@dataclass(frozen=True)
class IntLayer:
    """One layer of the integer model."""

    name: str                   # conv1.., fc1.., out
    kind: str                   # "conv" | "fc" | "out"
    codes: np.ndarray           # uint8 weight codes, shape as the float weight
    weight_bits: int
    weight_shift: int           # f: integer weight = (2c - n) << f
    in_denominator: int         # D: 1, POOL_DENOM or PHASE_DENOM
    pooled_input: bool          # input is a 2x2 average pool of the previous layer's spikes
    threshold: int              # 0 for the output layer
    leak: Leak
    reset: str
    scale: float                # float value of one membrane unit
    in_shape: tuple[int, ...]   # per-sample input shape after pooling/flatten
    out_shape: tuple[int, ...]
    channel_gain: np.ndarray | None = None   # graded first layer: g_c per input channel
    bias: np.ndarray | None = None           # graded first layer: integer bias per neuron

    @property
    def units(self) -> np.ndarray:
        """Unshifted integer weights 2c - (2^k - 1) (int64), before shift and pixel gain."""
        return intmath.weight_units(self.codes, self.weight_bits)

    @property
    def weights(self) -> np.ndarray:
        """Integer weights as the synapses apply them (int64)."""
        w = self.units << self.weight_shift
        if self.channel_gain is not None:
            w = w * self.channel_gain.reshape(1, -1, *([1] * (w.ndim - 2)))
        return w


@dataclass(frozen=True)
class IntegerModel:
    layers: tuple[IntLayer, ...]
    timesteps: int
    encoding: str
    input_path: str
    membrane_bits: int
    num_classes: int
    class_names: tuple[str, ...] = field(default=())

    @property
    def membrane_limits(self) -> tuple[int, int]:
        return intmath.membrane_limits(self.membrane_bits)

    def max_axon_event(self, index: int) -> int:
        """The largest value one input of layer ``index`` carries in one step (before gain)."""
        return intmath.max_axon_event(index, self.encoding, self.layers[index].pooled_input)


def _codes(w: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """Eq. 13 codes of a float weight (same half-up rounding as training.quant)."""
    alpha = max(float(np.abs(w).max()), 1e-12)
    n = intmath.largest_weight_unit(bits)
    x = np.clip(w.astype(np.float64) / alpha, -1.0, 1.0)
    return np.floor(n * (x + 1.0) / 2.0 + 0.5).astype(np.uint8), alpha


def input_denominator(index: int, encoding: str, pooled_input: bool) -> int:
    """D of layer ``index``: POOL_DENOM after a pool, PHASE_DENOM for phase-coded pixels, else 1."""
    if index == 0 and encoding == "phase":
        return PHASE_DENOM
    return POOL_DENOM if pooled_input else 1


def threshold_shift(theta_units: float, threshold_bits: int) -> int:
    """Largest f >= 0 with round(theta_units * 2^f) < 2^(threshold_bits - 1): the threshold
    uses the upper half of its register, so the weights get as many fraction bits as it allows."""
    top = 1 << (threshold_bits - 1)
    f = 0
    while round(theta_units * (1 << (f + 1))) < top:
        f += 1
    return f


def build_integer_model(layers_float: list[dict], *, timesteps: int, encoding: str,
                        weight_bits: int, mean: tuple[float, ...], std: tuple[float, ...],
                        reset: str, arith: ArithmeticSpec, num_classes: int,
                        class_names: tuple[str, ...] = ()) -> IntegerModel:
    """Quantize a float network description into the integer model.

    ``layers_float``: per layer {"name", "kind", "weight" (float ndarray), "theta", "leak",
    "pooled_input", "in_shape", "out_shape"} and optionally "reset" (else ``reset``), in network
    order, the output layer last. The network rules (compiler.rules, stage "network") must have
    passed: this function assumes representable thresholds, leaks and bit widths.
    """
    if not 1 <= weight_bits <= arith.max_weight_bits:
        raise ValueError(f"weight_bits {weight_bits} outside 1..{arith.max_weight_bits}: run the "
                         "network rules first")
    n = intmath.largest_weight_unit(weight_bits)
    out: list[IntLayer] = []
    for i, lf in enumerate(layers_float):
        codes, alpha = _codes(lf["weight"], weight_bits)
        first = i == 0
        denom = input_denominator(i, encoding, lf["pooled_input"])
        gain = bias = None
        is_out = lf["kind"] == "out"
        # Output layer: no threshold; give it the same units as if theta were 1.
        theta = 1.0 if is_out else float(lf["theta"])
        if not (theta > 0 and math.isfinite(theta)):
            raise ValueError(f"layer {lf['name']}: threshold {theta}: run the network rules first")
        units = n * denom / alpha                        # membrane units per float unit
        f = threshold_shift(theta * units, arith.threshold_bits)
        scale = 1.0 / (units * (1 << f))
        theta_int = int(round(theta * units * (1 << f)))
        if first and encoding == "direct" and arith.input_path == "graded":
            # Events carry p in 0..255. Fold 1/(255 std_c) into a per-channel integer gain and
            # the mean into a per-neuron bias; their precision is bounded by the same shift f
            # that the threshold register allows (the conversion error of this input path).
            gain = np.rint([(1 << f) / (intmath.PIXEL_LEVELS * s) for s in std]).astype(np.int64)
            mterm = np.array([m / s for m, s in zip(mean, std, strict=True)]) * (1 << f)
            bias = _direct_bias(intmath.weight_units(codes, weight_bits), mterm, lf["out_shape"])
            f = 0  # the gain carries the shift for this layer
        out.append(IntLayer(
            name=lf["name"], kind=lf["kind"], codes=codes, weight_bits=weight_bits,
            weight_shift=f, in_denominator=denom, pooled_input=bool(lf["pooled_input"]),
            threshold=0 if is_out else theta_int,
            leak=Leak(0, 1) if is_out else Leak.from_float(float(lf["leak"]), arith.leak_frac_bits),
            reset=lf.get("reset", reset), scale=scale, in_shape=tuple(lf["in_shape"]),
            out_shape=tuple(lf["out_shape"]), channel_gain=gain, bias=bias))
    return IntegerModel(tuple(out), timesteps, encoding, arith.input_path, arith.membrane_bits,
                        num_classes, tuple(class_names))


def _direct_bias(w_units: np.ndarray, mterm: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """-sum over in-bounds taps of w * mean_c/std_c, per output neuron, rounded to an integer:
    the 3x3 convolution (zero padding) of a constant image mean_c/std_c."""
    c_out, h, w = out_shape
    const = np.broadcast_to(mterm.reshape(1, -1, 1, 1), (1, len(mterm), h, w))
    return np.rint(-intmath.conv3x3(const, w_units.astype(np.float64))[0]).astype(np.int64)
