"""The outer check of a .pt checkpoint, shared by training (which writes it) and the compiler
(which reads it without importing training): the file exists and is a file, torch can read it
with ``weights_only`` (nothing is unpickled freely), and it says it is a spikemesh checkpoint.

torch is passed in, so this leaf module never imports it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from artifacts.errors import UserError

FORMAT = "spikemesh.checkpoint"


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
    return payload
