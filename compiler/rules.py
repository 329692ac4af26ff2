"""Design rules: one small function per hardware limit, collected in a registry.

Each rule returns messages of the form "rule NAME: layer L ... needs X, the chip has Y", so a
user knows which limit was hit and by what. ``check`` raises the first as a UserError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from compiler.integer_model import IntegerModel
from compiler.partition import CoreProgram
from compiler.spec import ChipSpec
from spikemesh.errors import UserError


@dataclass
class Design:
    model: IntegerModel
    cores: list[CoreProgram]
    spec: ChipSpec


RULES: dict[str, Callable[[Design], list[str]]] = {}


def rule(name: str):
    def register(fn: Callable[[Design], list[str]]):
        RULES[name] = fn
        return fn
    return register


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


@rule("core-neurons")
def core_neurons(d: Design) -> list[str]:
    return _per_core_limit(d, "core-neurons", lambda c: len(c.neurons), d.spec.core.neurons,
                           "neurons")


@rule("core-axons")
def core_axons(d: Design) -> list[str]:
    return _per_core_limit(d, "core-axons", lambda c: len(c.axons), d.spec.core.axons, "axons")


@rule("core-synapse-memory")
def core_synapse_memory(d: Design) -> list[str]:
    return _per_core_limit(d, "core-synapse-memory", lambda c: c.synapse_bits,
                           d.spec.core.synapse_bits, "synapse bits")


@rule("weight-bits")
def weight_bits(d: Design) -> list[str]:
    return [f"rule weight-bits: layer {l.name} uses {l.weight_bits}-bit weights, the chip stores "
            f"at most {d.spec.arithmetic.max_weight_bits}"
            for l in d.model.layers if l.weight_bits > d.spec.arithmetic.max_weight_bits]


@rule("threshold-bits")
def threshold_bits(d: Design) -> list[str]:
    top = 1 << d.spec.arithmetic.threshold_bits
    return [f"rule threshold-bits: layer {l.name} needs threshold {l.threshold}, the "
            f"{d.spec.arithmetic.threshold_bits}-bit register holds {top - 1}"
            for l in d.model.layers if l.threshold >= top]


@rule("board-capacity")
def board_capacity(d: Design) -> list[str]:
    have = d.spec.chips * d.spec.cores_per_chip
    if len(d.cores) > have:
        need = -(-len(d.cores) // d.spec.cores_per_chip)
        return [f"rule board-capacity: the network needs {len(d.cores)} cores ({need} chips), "
                f"the board has {have} cores ({d.spec.chips} chips); use --chips auto or a "
                "bigger board"]
    return []


def violations(design: Design) -> list[str]:
    return [msg for check in RULES.values() for msg in check(design)]


def check(design: Design) -> None:
    found = violations(design)
    if found:
        raise UserError(found[0])
