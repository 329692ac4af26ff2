"""Design rules: one small function per hardware limit, collected in one registry.

Each rule returns messages of the form "rule NAME: layer L needs X, the chip has Y", so a user
knows which limit was hit and by what. Rules run in three stages of ``compile``:

- ``network``: the trained float network against the spec, before quantization (every value
  the integer model cannot represent: thresholds, leaks, bit widths, the pixel gain, and the
  smallest core a layer can be split onto);
- ``cores``: the partitioned cores against the per-core and board limits;
- ``routes``: the multicast routes and the NoC's packed fields (route ids, link bandwidth, hop
  latency) they must fit.

``check(stage, subject)`` raises the first violation as a UserError. Nothing else in the
compiler refuses a design; the quantizer and partitioner assume the rules have passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from artifacts import intmath, mesh
from artifacts.errors import UserError
from compiler.integer_model import IntegerModel, input_denominator, threshold_shift
from compiler.partition import CoreProgram
from compiler.spec import ChipSpec

STAGES = ("network", "cores", "routes")
# The smallest per-channel pixel gain the graded input path accepts (below it the
# conversion error of the first layer grows past a few percent).
MIN_INPUT_GAIN = 16


@dataclass(frozen=True)
class Network:
    """What the network stage sees: float layers (compiler.integer_model's input format)."""

    layers: list[dict[str, Any]]
    encoding: str
    weight_bits: int
    std: tuple[float, ...]
    spec: ChipSpec


@dataclass(frozen=True)
class Design:
    """What the later stages see: the integer model, its cores, and (routes stage) routes."""

    model: IntegerModel
    cores: list[CoreProgram]
    spec: ChipSpec
    n_routes: int = 0


@dataclass(frozen=True)
class Rule:
    name: str
    stage: str
    check: Callable[[Any], list[str]]


RULES: dict[str, Rule] = {}


def rule(name: str, stage: str):
    if stage not in STAGES:
        raise ValueError(f"unknown rule stage {stage!r}")

    def register(fn: Callable[[Any], list[str]]):
        RULES[name] = Rule(name, stage, fn)
        return fn
    return register


# -- network: values the integer model must represent ------------------------------------
@rule("weight-bits", "network")
def weight_bits(n: Network) -> list[str]:
    top = n.spec.arithmetic.max_weight_bits
    if not 1 <= n.weight_bits <= top:
        return [f"rule weight-bits: the model uses {n.weight_bits}-bit weights, the chip stores "
                f"1 to {top}; retrain with --weight-bits {min(max(n.weight_bits, 1), top)} or "
                "use a chip spec with wider synapses"]
    return []


@rule("threshold-positive", "network")
def threshold_positive(n: Network) -> list[str]:
    return [f"rule threshold-positive: layer {l['name']} has threshold {l['theta']}; the chip "
            "fires on u > theta and needs theta > 0, retrain with a positive threshold"
            for l in n.layers if l["kind"] != "out" and not l["theta"] > 0]


@rule("leak-range", "network")
def leak_range(n: Network) -> list[str]:
    frac = n.spec.arithmetic.leak_frac_bits
    out = []
    for l in n.layers:
        lam = l["leak"]
        if l["kind"] == "out":
            continue
        if not 0 < lam <= 1:
            out.append(f"rule leak-range: layer {l['name']} has leak {lam}; the chip's leak "
                       "multiplies the membrane by 0 < lambda <= 1, retrain with a leak in (0, 1]")
        elif intmath.leak_code(lam, frac)[1] == 0:
            out.append(f"rule leak-range: layer {l['name']} has leak {lam}, below the smallest "
                       f"the {frac}-bit leak fraction holds ({2.0 ** -frac}); raise "
                       "arithmetic.leak_frac_bits or retrain with a larger leak")
    return out


@rule("threshold-bits", "network")
def threshold_bits(n: Network) -> list[str]:
    bits = n.spec.arithmetic.threshold_bits
    out: list[str] = []
    if not _bits_ok(n):
        return out
    for i, l in enumerate(n.layers):
        if l["kind"] == "out" or not l["theta"] > 0:
            continue
        units = _theta_units(n, i, l)
        if round(units) >= (1 << bits):
            out.append(f"rule threshold-bits: layer {l['name']} needs threshold {round(units)}, "
                       f"the {bits}-bit register holds {(1 << bits) - 1}; raise "
                       "arithmetic.threshold_bits or lower the layer's threshold")
    return out


@rule("input-gain", "network")
def input_gain(n: Network) -> list[str]:
    a = n.spec.arithmetic
    first = n.layers[0]
    if (n.encoding != "direct" or a.input_path != "graded" or not first["theta"] > 0
            or not _bits_ok(n)):
        return []
    units = _theta_units(n, 0, first)
    if round(units) >= (1 << a.threshold_bits):
        return []                               # threshold-bits already names this layer
    f = threshold_shift(units, a.threshold_bits)
    gain = min(round((1 << f) / (intmath.PIXEL_LEVELS * s)) for s in n.std)
    if gain < MIN_INPUT_GAIN:
        return [f"rule input-gain: layer {first['name']} gets a pixel gain of only {gain} from a "
                f"{a.threshold_bits}-bit threshold (at least {MIN_INPUT_GAIN} keeps the input's "
                "conversion error small); raise arithmetic.threshold_bits or use input_path: host"]
    return []


@rule("layer-fits-core", "network")
def layer_fits_core(n: Network) -> list[str]:
    """Whether the smallest piece of a layer fits one core: a convolution needs its 3x3 window
    of one input channel as axons, an fc neuron at least one axon, and one neuron's synapses of
    one such piece in synapse memory."""
    core, k = n.spec.core, n.weight_bits
    out = []
    for l in n.layers:
        if l["kind"] == "conv":
            _, h, w = l["in_shape"]
            window = min(3, h) * min(3, w)
            if window > core.axons or window * k > core.synapse_bits:
                out.append(f"rule layer-fits-core: layer {l['name']} needs at least {window} axons "
                           f"per input channel and {window * k} synapse bits per neuron, the core "
                           f"has {core.axons} axons and {core.synapse_bits} bits")
        else:
            n_in = math.prod(l["in_shape"])
            per_group = -(-n_in // -(-n_in // core.axons))
            if per_group * k > core.synapse_bits:
                out.append(f"rule layer-fits-core: layer {l['name']} needs {per_group * k} synapse "
                           f"bits for one neuron, the core has {core.synapse_bits}")
    return out


def _bits_ok(n: Network) -> bool:
    """Rules that depend on the weight codes are moot while weight-bits fails."""
    return 1 <= n.weight_bits <= n.spec.arithmetic.max_weight_bits


def _theta_units(n: Network, i: int, l: dict[str, Any]) -> float:
    """The layer's threshold in integer units before the weight shift (theta n D / alpha)."""
    alpha = max(float(np.abs(l["weight"]).max()), 1e-12)
    denom = input_denominator(i, n.encoding, l["pooled_input"])
    return l["theta"] * intmath.largest_weight_unit(n.weight_bits) * denom / alpha


# -- cores: per-core and board limits ------------------------------------------------------
def _per_core_limit(d: Design, name: str, size: Callable[[CoreProgram], int], limit: int,
                    what: str) -> list[str]:
    """The core that uses most of one per-core resource, if it exceeds the limit."""
    if not d.cores:
        return []
    core = max(d.cores, key=size)
    if size(core) <= limit:
        return []
    return [f"rule {name}: layer {d.model.layers[core.layer].name} needs {size(core)} {what} on "
            f"one core, the core has {limit}"]


@rule("core-neurons", "cores")
def core_neurons(d: Design) -> list[str]:
    return _per_core_limit(d, "core-neurons", lambda c: len(c.neurons), d.spec.core.neurons,
                           "neurons")


@rule("core-axons", "cores")
def core_axons(d: Design) -> list[str]:
    return _per_core_limit(d, "core-axons", lambda c: len(c.axons), d.spec.core.axons, "axons")


@rule("core-synapse-memory", "cores")
def core_synapse_memory(d: Design) -> list[str]:
    return _per_core_limit(d, "core-synapse-memory", lambda c: c.synapse_bits,
                           d.spec.core.synapse_bits, "synapse bits")


@rule("board-capacity", "cores")
def board_capacity(d: Design) -> list[str]:
    have = d.spec.chips * d.spec.cores_per_chip
    if len(d.cores) > have:
        need = -(-len(d.cores) // d.spec.cores_per_chip)
        return [f"rule board-capacity: the network needs {len(d.cores)} cores ({need} chips), "
                f"the board has {have} cores ({d.spec.chips} chips); use --chips auto or a "
                "bigger board"]
    return []


# -- routes: the NoC's packed fields --------------------------------------------------------
@rule("route-ids", "routes")
def route_ids(d: Design) -> list[str]:
    if d.n_routes > mesh.MAX_ROUTES:
        return [f"rule route-ids: the design needs {d.n_routes:,} multicast routes, a packet's "
                f"{mesh.ROUTE_ID_BITS}-bit route id names at most {mesh.MAX_ROUTES:,}; use a chip "
                "spec with more neurons per core"]
    return []


@rule("link-bandwidth", "routes")
def link_bandwidth(d: Design) -> list[str]:
    bw = d.spec.noc.link_flits_per_cycle
    if bw > mesh.MAX_LINK_FLITS_PER_CYCLE:
        return [f"rule link-bandwidth: noc.link_flits_per_cycle is {bw}, a router counts at most "
                f"{mesh.MAX_LINK_FLITS_PER_CYCLE} flits per output and cycle; lower it"]
    return []


@rule("hop-latency", "routes")
def hop_latency(d: Design) -> list[str]:
    noc = d.spec.noc
    found = [f"rule hop-latency: noc.{name} is {v:,} cycles, the NoC model holds link latencies "
             f"up to {mesh.MAX_HOP_CYCLES:,}; lower it"
             for name, v in (("hop_cycles", noc.hop_cycles), ("chip_hop_cycles", noc.chip_hop_cycles),
                             ("credit_cycles", noc.credit_cycles))
             if v > mesh.MAX_HOP_CYCLES]
    longest = max(noc.hop_cycles, noc.chip_hop_cycles)
    if not found and longest + noc.router_cycles > mesh.MAX_HOP_CYCLES:
        found.append(f"rule hop-latency: noc.router_cycles {noc.router_cycles:,} plus the longest "
                     f"link latency {longest:,} exceeds the {mesh.MAX_HOP_CYCLES:,} cycles the NoC "
                     "model holds per hop; lower it")
    return found


def violations(stage: str, subject: Any) -> list[str]:
    return [msg for r in RULES.values() if r.stage == stage for msg in r.check(subject)]


def check(stage: str, subject: Any) -> None:
    found = violations(stage, subject)
    if found:
        raise UserError(found[0])
