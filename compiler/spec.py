"""The chip spec: frozen dataclasses inside, YAML only at the edge, validated once on load.

Every chip number lives here or in a preset file; nothing chip-specific is a constant in code.
A spec error is one sentence naming the field, e.g. "chip spec core.axons: must be a positive
integer, got -3".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from artifacts.errors import UserError
from artifacts.limits import MAX_ROUTERS, SPEC_BOUNDS


@dataclass(frozen=True)
class MeshSpec:
    cores_x: int = 8            # cores per chip along x
    cores_y: int = 8            # cores per chip along y


@dataclass(frozen=True)
class BoardSpec:
    chips_x: int = 1            # chips per board along x ("--chips auto" may grow this)
    chips_y: int = 1


@dataclass(frozen=True)
class CoreSpec:
    neurons: int = 1024         # neurons per core
    axons: int = 1024           # fan-in slots per core (crossbar rows)
    synapse_bits: int = 1 << 20  # synapse memory per core in bits (a k-bit weight uses k bits)


@dataclass(frozen=True)
class ArithmeticSpec:
    max_weight_bits: int = 8    # widest weight code a synapse can store
    membrane_bits: int = 28     # signed membrane register width (saturating)
    threshold_bits: int = 20    # unsigned threshold register width
    leak_frac_bits: int = 8     # fixed-point fraction bits of a non-power-of-two leak
    input_path: str = "graded"  # direct-encoded first layer: "graded" events or "host" compute

    def __post_init__(self) -> None:
        if self.input_path not in ("graded", "host"):
            raise ValueError("input_path: must be 'graded' or 'host'")


@dataclass(frozen=True)
class NocSpec:
    buffer_depth: int = 4       # flits per router input port
    link_flits_per_cycle: int = 1
    hop_cycles: int = 1         # on-chip link latency (a 1-cycle router's hop)
    chip_hop_cycles: int = 8    # chip-to-chip link latency
    router_cycles: int = 0      # extra cycles a packet spends at the head of a router's input
                                # buffer before it may cross the switch (the pipeline's route
                                # computation and allocation stages); 0: a single-cycle router
    credit_cycles: int = 1      # cycles from a buffer slot freeing to its upstream router
                                # being able to use it (credit return delay)


@dataclass(frozen=True)
class EnergySpec:
    pj_per_sop: float = 2.64    # per synaptic operation (PKU-NC64C title figure)
    pj_per_hop: float = 1.0     # per flit per on-chip hop (assumption)
    pj_per_chip_hop: float = 20.0  # per flit per chip-to-chip hop (assumption)


@dataclass(frozen=True)
class ChipSpec:
    name: str = "custom"
    mesh: MeshSpec = field(default_factory=MeshSpec)
    board: BoardSpec = field(default_factory=BoardSpec)
    core: CoreSpec = field(default_factory=CoreSpec)
    arithmetic: ArithmeticSpec = field(default_factory=ArithmeticSpec)
    noc: NocSpec = field(default_factory=NocSpec)
    energy: EnergySpec = field(default_factory=EnergySpec)

    @property
    def cores_per_chip(self) -> int:
        return self.mesh.cores_x * self.mesh.cores_y

    @property
    def chips(self) -> int:
        return self.board.chips_x * self.board.chips_y

    def with_board(self, chips_x: int, chips_y: int) -> ChipSpec:
        return _check(dataclasses.replace(self, board=BoardSpec(chips_x, chips_y)), "--chips")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(f"chip spec {where or 'file'}: must be a mapping of fields, "
                        f"got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    odd = [k for k in data if not isinstance(k, str)]
    if odd:
        raise UserError(f"chip spec {where or 'file'}: field name {odd[0]!r} is not text; "
                        "write field names as plain words")
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"chip spec {where + '.' if where else ''}{unknown[0]}: unknown field; "
                        f"known fields are {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            kwargs[name] = _build(typ, value, path)
        elif typ is int:
            lo, hi = SPEC_BOUNDS[path]
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError(f"chip spec {path}: must be an integer, got {value!r}")
            if not lo <= value <= hi:
                raise UserError(f"chip spec {path}: must lie in {lo:,}..{hi:,}, got {value:,}")
            kwargs[name] = value
        elif typ is float:
            lo, hi = SPEC_BOUNDS[path]
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value) or not lo <= value <= hi):
                raise UserError(f"chip spec {path}: must be a finite number in {lo:g}..{hi:g}, "
                                f"got {value!r}")
            kwargs[name] = float(value)
        elif typ is str:
            if not isinstance(value, str):
                raise UserError(f"chip spec {path}: must be a string, got {value!r}")
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise UserError(f"chip spec {where + '.' if where else ''}{exc}") from None


def _check(spec: ChipSpec, where: str = "chip spec") -> ChipSpec:
    gx, gy = spec.mesh.cores_x * spec.board.chips_x, spec.mesh.cores_y * spec.board.chips_y
    if gx * gy > MAX_ROUTERS:
        raise UserError(f"{where}: a board of {spec.board.chips_x}x{spec.board.chips_y} chips of "
                        f"{spec.mesh.cores_x}x{spec.mesh.cores_y} cores has {gx * gy:,} cores, "
                        f"more than the {MAX_ROUTERS:,} a board may have; use fewer chips or cores")
    a = spec.arithmetic
    if a.max_weight_bits > 8:
        raise UserError("chip spec arithmetic.max_weight_bits: at most 8 is supported, "
                        f"got {a.max_weight_bits}")
    if not a.threshold_bits < a.membrane_bits <= 32:
        raise UserError("chip spec arithmetic.membrane_bits: must exceed threshold_bits and be "
                        f"<= 32, got {a.membrane_bits} (threshold_bits {a.threshold_bits})")
    return spec


def spec_from_dict(data: dict[str, Any]) -> ChipSpec:
    return _check(_build(ChipSpec, data, ""))


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("compiler.presets").iterdir()
                  if p.name.endswith(".yaml"))


def load_spec(name_or_path: str | Path) -> ChipSpec:
    """Load a preset by name (e.g. ``pku-nc64c``) or a user's YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if p.is_dir():
            raise UserError(f"chip spec {p} is a directory; pass a YAML file or one of the presets "
                            f"{', '.join(preset_names())}")
        if not p.is_file():
            raise UserError(f"chip spec {p} does not exist; pass a YAML file or one of the presets "
                            f"{', '.join(preset_names())}")
        try:
            text, where = p.read_text(encoding="utf-8"), str(p)
        except UnicodeDecodeError:
            raise UserError(f"chip spec {p} is not a UTF-8 text file; pass a YAML chip spec") from None
    else:
        if str(name_or_path) not in preset_names():
            raise UserError(f"unknown chip preset {name_or_path!r}; choose one of "
                            f"{', '.join(preset_names())} or pass a .yaml file")
        text = resources.files("compiler.presets").joinpath(f"{name_or_path}.yaml").read_text()
        where = f"preset {name_or_path}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"chip spec {where} is not valid YAML ({exc.__class__.__name__}); "
                        "fix the file") from None
    return spec_from_dict(data if data is not None else {})
