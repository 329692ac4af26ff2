"""The checkpoint's layer list: an explicit, versioned description of the network that training
writes into every .pt and the compiler reads without importing the training code.

    {"format": "spikemesh.layers", "version": 1,
     "timesteps": 4, "encoding": "direct", "num_classes": 10,
     "input": {"shape": [3, 32, 32], "mean": [...], "std": [...]},
     "layers": [{"name": "conv1", "kind": "conv", "in_shape": [3, 32, 32],
                 "out_shape": [64, 32, 32], "pooled_input": false,
                 "weight": "convs.0.weight",            # the state_dict tensor
                 "threshold": 0.4, "leak": 0.5, "reset": "soft",
                 "weight_bits": 4},                    # null: trained in float
                ..., {"name": "out", "kind": "out", ...}]}

Kinds: "conv" (3x3, padding 1, no bias), "fc" (no bias) and "out", the last layer, which
integrates its input without leak or spikes (threshold 1.0 and leak 1.0 by convention).
``pooled_input``: the layer's input is a 2x2 average pool of the previous layer's output; an
"fc" layer after a convolution sees it flattened (C*H*W). Inputs are pixels in [0, 1],
normalized per channel by (x - mean) / std inside the model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from artifacts.errors import UserError
from artifacts.limits import MAX_DIM, MAX_LAYER_NEURONS, MAX_TIMESTEPS, MAX_WEIGHT_BITS

LAYER_LIST_FORMAT = "spikemesh.layers"
LAYER_LIST_VERSION = 1
KINDS = ("conv", "fc", "out")
RESETS = ("soft", "hard")
ENCODINGS = ("direct", "rate", "phase", "latency")


@dataclass(frozen=True)
class LayerEntry:
    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    pooled_input: bool
    weight: str
    threshold: float
    leak: float
    reset: str
    weight_bits: int | None

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.kind == "conv":
            return (self.out_shape[0], self.in_shape[0], 3, 3)
        return (self.out_shape[0], self.in_shape[0])


@dataclass(frozen=True)
class LayerList:
    timesteps: int
    encoding: str
    num_classes: int
    input_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layers: tuple[LayerEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"format": LAYER_LIST_FORMAT, "version": LAYER_LIST_VERSION,
                "timesteps": self.timesteps, "encoding": self.encoding,
                "num_classes": self.num_classes,
                "input": {"shape": list(self.input_shape), "mean": list(self.mean),
                          "std": list(self.std)},
                "layers": [{**asdict(l), "in_shape": list(l.in_shape),
                            "out_shape": list(l.out_shape)} for l in self.layers]}


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise UserError(f"{where}: the layer list {what}; the checkpoint is damaged or was not "
                        "written by `spikemesh train`, re-train it")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _shape(v: Any, where: str, what: str) -> tuple[int, ...]:
    _need(isinstance(v, list | tuple) and len(v) in (1, 3)
          and all(_int(d) and 1 <= d <= MAX_DIM for d in v), where,
          f"has an invalid {what} {v!r} (1 or 3 positive integers)")
    _need(math.prod(v) <= MAX_LAYER_NEURONS, where, f"has a {what} {v!r} of more than "
          f"{MAX_LAYER_NEURONS:,} values")
    return tuple(int(d) for d in v)


def parse_layer_list(d: Any, where: str) -> LayerList:
    """Validate a layer list read from a checkpoint: types, ranges, and that each layer's
    shapes follow from the previous layer's. One sentence names the first problem."""
    _need(isinstance(d, dict), where, "is not a mapping")
    _need(d.get("format") == LAYER_LIST_FORMAT, where, f"has format {d.get('format')!r}, "
          f"not {LAYER_LIST_FORMAT!r}")
    if d.get("version") != LAYER_LIST_VERSION:
        raise UserError(f"{where}: layer list version {d.get('version')!r}, this spikemesh reads "
                        f"version {LAYER_LIST_VERSION}; upgrade spikemesh or re-train")
    t, enc, ncls = d.get("timesteps"), d.get("encoding"), d.get("num_classes")
    _need(_int(t) and 1 <= t <= MAX_TIMESTEPS, where, f"has timesteps {t!r} (1..{MAX_TIMESTEPS})")
    _need(enc in ENCODINGS, where, f"has encoding {enc!r} (one of {', '.join(ENCODINGS)})")
    _need(_int(ncls) and 1 <= ncls <= MAX_DIM, where, f"has num_classes {ncls!r}")
    inp = d.get("input")
    _need(isinstance(inp, dict), where, "has no input description")
    shape = _shape(inp.get("shape"), where, "input shape")
    _need(len(shape) == 3, where, "needs a (channels, height, width) input shape")
    mean, std = inp.get("mean"), inp.get("std")
    _need(isinstance(mean, list | tuple) and len(mean) == shape[0] and all(map(_finite, mean)),
          where, "needs one finite input mean per channel")
    _need(isinstance(std, list | tuple) and len(std) == shape[0]
          and all(_finite(s) and s > 0 for s in std), where,
          "needs one positive finite input std per channel")
    raw = d.get("layers")
    _need(isinstance(raw, list) and len(raw) >= 2, where, "needs at least two layers")
    layers: list[LayerEntry] = []
    prev_out = shape
    for i, l in enumerate(raw):
        _need(isinstance(l, dict), where, f"entry {i} is not a mapping")
        name = l.get("name")
        _need(isinstance(name, str) and name != "", where, f"entry {i} has no name")
        here = f"layer {name}"
        kind = l.get("kind")
        _need(kind in KINDS, where, f"{here} has kind {kind!r} (one of {', '.join(KINDS)})")
        _need((kind == "out") == (i == len(raw) - 1), where,
              "needs exactly one 'out' layer, the last")
        _need(kind != "conv" or i == 0 or layers[-1].kind == "conv", where,
              f"{here}: a convolution must follow the input or another convolution")
        ins, outs = _shape(l.get("in_shape"), where, f"{here} in_shape"), \
            _shape(l.get("out_shape"), where, f"{here} out_shape")
        pooled = l.get("pooled_input")
        _need(isinstance(pooled, bool), where, f"{here} needs a boolean pooled_input")
        src = prev_out
        if pooled:
            _need(len(src) == 3 and src[1] % 2 == 0 and src[2] % 2 == 0, where,
                  f"{here} pools an input of shape {src} that 2x2 pooling cannot halve")
            src = (src[0], src[1] // 2, src[2] // 2)
        if kind == "conv":
            _need(len(ins) == 3 and ins == src, where, f"{here} has in_shape {ins}, its input is {src}")
            _need(len(outs) == 3 and outs[1:] == ins[1:], where,
                  f"{here}: a padded 3x3 convolution keeps the size {ins[1:]}, not {outs[1:]}")
        else:
            flat = math.prod(src)
            _need(ins == (flat,), where, f"{here} has in_shape {ins}, its input flattens to {flat}")
            _need(len(outs) == 1, where, f"{here} needs a one-dimensional out_shape")
        if kind == "out":
            _need(outs == (ncls,), where, f"{here} has {outs} outputs for {ncls} classes")
        weight = l.get("weight")
        _need(isinstance(weight, str) and weight != "", where, f"{here} names no weight tensor")
        theta, lam = l.get("threshold"), l.get("leak")
        _need(_finite(theta), where, f"{here} has a non-finite or missing threshold {theta!r}")
        _need(_finite(lam), where, f"{here} has a non-finite or missing leak {lam!r}")
        reset = l.get("reset")
        _need(reset in RESETS, where, f"{here} has reset {reset!r} (soft or hard)")
        bits = l.get("weight_bits")
        _need(bits is None or (_int(bits) and 1 <= bits <= MAX_WEIGHT_BITS), where,
              f"{here} has weight_bits {bits!r} (1..{MAX_WEIGHT_BITS} or null)")
        layers.append(LayerEntry(name, kind, ins, outs, pooled, weight, float(theta), float(lam),
                                 reset, bits))
        prev_out = outs
    _need(len({l.name for l in layers}) == len(layers), where, "repeats a layer name")
    return LayerList(int(t), enc, int(ncls), shape, tuple(float(m) for m in mean),
                     tuple(float(s) for s in std), tuple(layers))
