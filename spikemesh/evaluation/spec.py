"""What an attack evaluation runs: the attack, its sizes (in grey levels), where the inputs are
evaluated (levels) and who crafts them (source), checked before any work starts."""

from __future__ import annotations

from dataclasses import dataclass

from artifacts.errors import UserError
from training.attacks import ATTACKS as GRADIENT_ATTACKS

ATTACKS = (*GRADIENT_ATTACKS, "square")
LEVELS = ("algo", "quant", "hw")
SOURCES = ("self", "algo", "quant", "hw")


@dataclass(frozen=True)
class AttackSpec:
    name: str = "fgsm"
    eps: tuple[int, ...] = (2, 8, 16)   # grey levels: eps/255 in pixels
    targeted: bool = False
    steps: int = 7                      # PGD
    step_size: float = 2 / 255          # PGD, in pixels (whole grey levels keep steps exact)
    random_start: bool = True
    eot: int | None = None              # None: 1 for deterministic encoders, 8 for stochastic
    queries: int = 1000                 # square: score queries per image
    p_init: float = 0.05                # square: initial fraction of pixels in the square
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise UserError(f"unknown attack {self.name!r}; choose one of {', '.join(ATTACKS)}")
        if not self.eps or any(not float(e).is_integer() or not 0 <= e <= 255 for e in self.eps):
            raise UserError("--eps takes whole grey levels between 0 and 255 (the chip reads "
                            "8-bit pixels), e.g. --eps 2,8,16")
        object.__setattr__(self, "eps", tuple(int(e) for e in self.eps))
        if len(set(self.eps)) != len(self.eps):
            raise UserError("--eps lists a value twice; give each eps once")
        if self.targeted and self.name in ("rfgsm", "square"):
            raise UserError(f"{self.name} has no targeted form here; use --attack fgsm or pgd "
                            "with --targeted")
        if self.name == "pgd" and self.step_size * 255 < 0.5:
            raise UserError("--step-size below half a grey level vanishes on the 8-bit grid; "
                            "use at least 1")
        if not 0 < self.p_init <= 1:
            raise UserError("--p-init is a fraction of the image in (0, 1]")

    @property
    def gradient(self) -> bool:
        return self.name != "square"


def check_levels(levels: tuple[str, ...], source: str, attack: str,
                 source_model: bool) -> tuple[str, ...]:
    """The levels, in the table's order, after checking them and the source."""
    if not levels:
        raise UserError(f"--levels names no level; choose from {', '.join(LEVELS)}")
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown:
        raise UserError(f"unknown level {unknown[0]!r}; choose from {', '.join(LEVELS)}")
    if len(set(levels)) != len(levels):
        raise UserError("--levels lists a level twice; give each once")
    if source not in SOURCES:
        raise UserError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)} "
                        "(or --source-model FILE)")
    if source_model and source != "self":
        raise UserError("--source-model crafts the inputs itself; drop --source")
    if source_model and attack == "square":
        raise UserError("square queries the attacked level itself; --source-model needs a "
                        "gradient attack (fgsm, rfgsm, pgd)")
    return tuple(lv for lv in LEVELS if lv in levels)
