"""The integer model: the exact arithmetic the chip performs. One home for every width, shift
and rounding; the chip simulator must reproduce it bit for bit.

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

from compiler.spec import ArithmeticSpec
from spikemesh.errors import UserError

POOL_DENOM = 4
PHASE_DENOM = 256


@dataclass(frozen=True)
class Leak:
    """lambda as the chip applies it: a right shift, or a fixed-point multiply then shift."""

    shift: int                  # right shift after the multiply
    multiplier: int = 1         # 1 for a pure shift; 0 means lambda = 0 (membrane cleared)

    @staticmethod
    def from_float(leak: float, frac_bits: int) -> Leak:
        if leak == 0:
            return Leak(0, 0)
        m = -math.log2(leak)
        if abs(m - round(m)) < 1e-12 and round(m) >= 0:
            return Leak(int(round(m)))
        return Leak(frac_bits, int(round(leak * (1 << frac_bits))))

    def apply(self, u: np.ndarray) -> np.ndarray:
        if self.multiplier == 1:
            return u >> self.shift
        return (u * self.multiplier) >> self.shift

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
        return 2 * self.codes.astype(np.int64) - ((1 << self.weight_bits) - 1)

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
        return -(1 << (self.membrane_bits - 1)), (1 << (self.membrane_bits - 1)) - 1


def _codes(w: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """Eq. 13 codes of a float weight (same half-up rounding as training.quant)."""
    alpha = max(float(np.abs(w).max()), 1e-12)
    n = (1 << bits) - 1
    x = np.clip(w.astype(np.float64) / alpha, -1.0, 1.0)
    return np.floor(n * (x + 1.0) / 2.0 + 0.5).astype(np.uint8), alpha


def _shift_for(theta_units: float, threshold_bits: int, what: str) -> int:
    """Largest f >= 0 with round(theta_units * 2^f) < 2^(threshold_bits - 1)."""
    if theta_units <= 0:
        raise UserError(f"rule threshold-positive: {what} has threshold {theta_units}; it must be > 0")
    top = 1 << (threshold_bits - 1)
    if round(theta_units) >= (1 << threshold_bits):
        raise UserError(f"rule threshold-bits: {what} needs threshold {round(theta_units)}, the "
                        f"{threshold_bits}-bit register holds {(1 << threshold_bits) - 1}; "
                        "raise arithmetic.threshold_bits or lower the layer's threshold")
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
    "pooled_input", "in_shape", "out_shape"}, in network order, the output layer last.
    """
    if weight_bits > arith.max_weight_bits:
        raise UserError(f"rule weight-bits: the model uses {weight_bits}-bit weights, the chip "
                        f"stores at most {arith.max_weight_bits}; retrain with --weight-bits "
                        f"{arith.max_weight_bits} or a chip spec with wider synapses")
    n = (1 << weight_bits) - 1
    out: list[IntLayer] = []
    for i, lf in enumerate(layers_float):
        codes, alpha = _codes(lf["weight"], weight_bits)
        first = i == 0
        denom = POOL_DENOM if lf["pooled_input"] else 1
        gain = bias = None
        if first and encoding == "phase":
            denom = PHASE_DENOM
        is_out = lf["kind"] == "out"
        # Output layer: no threshold; give it the same units as if theta were 1.
        theta = 1.0 if is_out else float(lf["theta"])
        units = n * denom / alpha                        # membrane units per float unit
        f = _shift_for(theta * units, arith.threshold_bits, lf["name"])
        scale = 1.0 / (units * (1 << f))
        theta_int = int(round(theta * units * (1 << f)))
        if first and encoding == "direct" and arith.input_path == "graded":
            # Events carry p in 0..255. Fold 1/(255 std_c) into a per-channel integer gain and
            # the mean into a per-neuron bias; their precision is bounded by the same shift f
            # that the threshold register allows (the conversion error of this input path).
            gain = np.rint([(1 << f) / (255.0 * s) for s in std]).astype(np.int64)
            if gain.min() < 16:
                raise UserError(f"rule input-gain: layer {lf['name']} gets a pixel gain of only "
                                f"{int(gain.min())} from a {arith.threshold_bits}-bit threshold; "
                                "raise arithmetic.threshold_bits or use input_path: host")
            mterm = np.array([m / s for m, s in zip(mean, std, strict=True)]) * (1 << f)
            bias = _direct_bias(2 * codes.astype(np.int64) - n, mterm, lf["out_shape"])
            f = 0  # the gain carries the shift for this layer
        if not is_out and theta_int >= (1 << arith.threshold_bits):
            raise UserError(f"rule threshold-bits: layer {lf['name']} needs threshold {theta_int}, "
                            f"more than {arith.threshold_bits} bits")
        out.append(IntLayer(
            name=lf["name"], kind=lf["kind"], codes=codes, weight_bits=weight_bits,
            weight_shift=f, in_denominator=denom, pooled_input=bool(lf["pooled_input"]),
            threshold=0 if is_out else theta_int,
            leak=Leak(0, 1) if is_out else Leak.from_float(float(lf["leak"]), arith.leak_frac_bits),
            reset=reset, scale=scale, in_shape=tuple(lf["in_shape"]),
            out_shape=tuple(lf["out_shape"]), channel_gain=gain, bias=bias))
    return IntegerModel(tuple(out), timesteps, encoding, arith.input_path, arith.membrane_bits,
                        num_classes, tuple(class_names))


def _direct_bias(w_units: np.ndarray, mterm: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """-sum over in-bounds taps of w * mean_c/std_c, per output neuron, rounded to an integer."""
    c_out, h, w = out_shape
    bias = np.zeros((c_out, h, w))
    wm = w_units * mterm.reshape(1, -1, 1, 1)            # (out, c, 3, 3)
    tap = wm.sum(axis=1)                                 # (out, 3, 3)
    for dy in range(3):
        for dx in range(3):
            valid = np.zeros((h, w))
            ys = slice(max(0, 1 - dy), min(h, h + 1 - dy))
            xs = slice(max(0, 1 - dx), min(w, w + 1 - dx))
            valid[ys, xs] = 1.0
            bias += tap[:, dy, dx][:, None, None] * valid[None]
    return np.rint(-bias).astype(np.int64)
