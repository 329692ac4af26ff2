"""The outer check of a .pt checkpoint, shared by training (which writes it) and the compiler
(which reads it without importing training): the file exists and is a file, torch can read it
with ``weights_only`` (nothing is unpickled freely), and it says it is a spikemesh checkpoint.

A shipped (compact) checkpoint stores its large weight tensors as int8 codes with one float32
scale each, under ``int8_weights`` = {state_dict key: {"codes": int8 tensor, "scale": float32
scalar}}; every reader gets them back here as float32 ``codes * scale`` in the state_dict, each
entry checked before any arithmetic touches it (training.compact writes such files).

torch is passed in, so this leaf module never imports it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from artifacts.errors import UserError

FORMAT = "spikemesh.checkpoint"
INT8_WEIGHTS = "int8_weights"


def load_checkpoint_file(path: str | Path, torch: ModuleType) -> dict[str, Any]:
    """The checkpoint's payload dict, or a UserError naming what is wrong with the file."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"checkpoint {p} is a directory; pass the .pt file written by `spikemesh train`")
    if not p.is_file():
        raise UserError(f"checkpoint {p} does not exist; train one with `spikemesh train --out {p}`")
    try:
        with warnings.catch_warnings():      # torch warns before it fails on a foreign file
            warnings.simplefilter("ignore")
            payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise UserError(f"{p} is not a readable checkpoint ({exc.__class__.__name__}); it is "
                        "corrupt or was not written by spikemesh, re-run `spikemesh train`") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{p} is a PyTorch file but not a spikemesh checkpoint (no "
                        f"format={FORMAT!r}); pass a .pt written by `spikemesh train`")
    if INT8_WEIGHTS in payload:
        _expand_int8_weights(payload, p, torch)
    return payload


def int8_view(codes: Any, scale: Any, torch: ModuleType) -> Any:
    """The float32 weights an int8-coded tensor stands for (the one formula, for writer and
    readers alike, so a writer can check what every reader will see)."""
    return codes.to(torch.float32) * scale.to(torch.float32).reshape(())


def _expand_int8_weights(payload: dict[str, Any], p: Path, torch: ModuleType) -> None:
    damaged = f"; {p} is damaged, download or export it again"
    packed, state = payload.pop(INT8_WEIGHTS), payload.get("state_dict")
    if not isinstance(packed, dict) or not isinstance(state, dict):
        raise UserError(f"{p}: '{INT8_WEIGHTS}' or 'state_dict' is not a dict{damaged}")
    for key, entry in packed.items():
        if not isinstance(key, str) or not isinstance(entry, dict) or set(entry) != {"codes", "scale"}:
            raise UserError(f"{p}: int8 weight entry {key!r} is not {{codes, scale}}{damaged}")
        codes, scale = entry["codes"], entry["scale"]
        if not isinstance(codes, torch.Tensor) or codes.dtype != torch.int8:
            raise UserError(f"{p}: the codes of {key!r} are not an int8 tensor{damaged}")
        if (not isinstance(scale, torch.Tensor) or scale.dtype != torch.float32 or scale.numel() != 1
                or not bool(torch.isfinite(scale).all()) or float(scale) <= 0):
            raise UserError(f"{p}: the scale of {key!r} is not one positive finite float32{damaged}")
        if key in state:
            raise UserError(f"{p}: {key!r} is stored both as int8 codes and as a tensor{damaged}")
        state[key] = int8_view(codes, scale, torch)
