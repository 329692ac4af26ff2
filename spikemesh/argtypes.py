"""Argument types with bounds: a bad value is refused where it is parsed, as a one-line usage
error (exit 2), before any work starts. NaN and infinities are never numbers here."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

MAX_COUNT = 10_000_000       # images, steps, epochs: far above any run on this hardware
MAX_BATCH = 65_536
MAX_SEED = 2**32 - 1


def integer(lo: int, hi: int = MAX_COUNT) -> Callable[[str], int]:
    """An int in lo..hi."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must lie in {lo:,}..{hi:,}, got {v:,}")
        return v
    parse.__name__ = "integer"
    return parse


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def number(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
           ) -> Callable[[str], float]:
    """A finite float in [lo, hi], either end open where asked."""
    def parse(text: str) -> float:
        v = _float(text)
        if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            raise argparse.ArgumentTypeError(
                f"must lie in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}, got {v:g}")
        return v
    parse.__name__ = "number"
    return parse


def numbers(lo: float, hi: float) -> Callable[[str], tuple[float, ...]]:
    """Comma-separated finite floats, each in [lo, hi]; at least one."""
    one = number(lo, hi)

    def parse(text: str) -> tuple[float, ...]:
        values = tuple(one(v) for v in text.split(",") if v.strip())
        if not values:
            raise argparse.ArgumentTypeError("expected at least one number")
        return values
    parse.__name__ = "numbers"
    return parse


def words(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


count = integer(1)                  # a number of things: at least one
batch = integer(1, MAX_BATCH)
seed = integer(0, MAX_SEED)
