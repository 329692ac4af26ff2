"""The chip image a hardware-level evaluation runs: read and matched to the model, or compiled
from it in memory with the default chip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from artifacts.errors import UserError
from compiler.image import load_integer_model
from compiler.integer_model import IntegerModel

DEFAULT_CHIP = "pku-nc64c"


def chip_for_model(model_path: str | Path, chip_image: str | Path | None, bits: int,
                   log: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of the chip image for ``model_path`` at ``bits``-bit weights.

    Without ``chip_image`` the model is compiled with the default chip and said so. A given
    image must be this model compiled: its integer model must equal the one quantizing the
    checkpoint with the image's own chip spec gives (every weight code, threshold, shift, leak,
    gain and bias), so a stale or foreign image is refused instead of silently compared.
    """
    from compiler.compile import compile_image, quantize_checkpoint
    from compiler.spec import load_spec, spec_from_dict

    if chip_image is None:
        log(f"no --chip-image: compiling {model_path} for the default chip ({DEFAULT_CHIP}) "
            "in memory")
        meta, arrays, _ = compile_image(model_path, load_spec(DEFAULT_CHIP), weight_bits=bits,
                                        log=lambda _: None)
        return meta, arrays
    from artifacts.chipimage import read_chip_image

    meta, arrays = read_chip_image(chip_image)     # validated whole (artifacts.imagecheck)
    image_model = load_integer_model(meta, arrays)
    image_bits = image_model.layers[0].weight_bits
    if image_bits != bits:
        raise UserError(f"{chip_image} holds {image_bits}-bit weights but the quant level uses "
                        f"{bits}; compile the model with --weight-bits {bits} or attack with "
                        f"--weight-bits {image_bits}")
    expected, _ = quantize_checkpoint(model_path, spec_from_dict(meta["spec"]), bits)
    differs = first_difference(image_model, expected)
    if differs:
        raise UserError(f"{chip_image} was not compiled from {model_path} ({differs}); compile "
                        f"it with `spikemesh compile {model_path}` or pass the matching model")
    return meta, arrays


def first_difference(a: IntegerModel, b: IntegerModel) -> str | None:
    """Where two integer models differ, in words, or None when they are the same."""
    for field in ("timesteps", "encoding", "input_path", "membrane_bits", "num_classes"):
        if getattr(a, field) != getattr(b, field):
            return f"{field} {getattr(a, field)!r} vs {getattr(b, field)!r}"
    if [l.name for l in a.layers] != [l.name for l in b.layers]:
        return "the layers differ"
    for la, lb in zip(a.layers, b.layers, strict=True):
        for field in ("kind", "in_shape", "out_shape", "pooled_input", "weight_bits",
                      "weight_shift", "threshold", "leak", "reset"):
            if getattr(la, field) != getattr(lb, field):
                return f"layer {la.name}'s {field} differs"
        for field in ("codes", "channel_gain", "bias"):
            va, vb = getattr(la, field), getattr(lb, field)
            if (va is None) != (vb is None) or (va is not None and not np.array_equal(va, vb)):
                return f"layer {la.name}'s {field.replace('_', ' ')} differ"
    return None
