"""Read a trained .pt as the compiler sees it: the checkpoint's layer list and its weight
tensors, validated, as plain numpy. Imports torch (to read the file) but never the training code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artifacts.checkpointfile import load_checkpoint_file
from artifacts.errors import UserError
from artifacts.layers import LayerList, parse_layer_list

# Format 2 carries the layer list; format 1 (no layer list) is read by training, which can
# convert it.
FORMAT_VERSION = 2
CONVERT_HINT = "convert it with `python -m training.checkpoint upgrade OLD.pt NEW.pt`"


@dataclass(frozen=True)
class CompilerCheckpoint:
    path: Path
    network: LayerList
    weights: tuple[np.ndarray, ...]      # float64, one per layer, in the layer list's shapes
    dataset: dict[str, Any]


def load_payload(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only (nothing is unpickled freely), with one-sentence errors."""
    import torch

    return load_checkpoint_file(path, torch)


def read_checkpoint(path: str | Path) -> CompilerCheckpoint:
    """The network and its weights from a format-2 checkpoint, every value checked: shapes
    against the layer list, and every weight finite."""
    import torch

    p = Path(path)
    payload = load_payload(p)
    version = payload.get("format_version")
    if version == 1:
        raise UserError(f"{p} is a format-1 checkpoint without a layer list; {CONVERT_HINT}")
    if version != FORMAT_VERSION:
        raise UserError(f"{p} has checkpoint format version {version!r}, this spikemesh reads "
                        f"version {FORMAT_VERSION}; re-train or upgrade spikemesh")
    network = parse_layer_list(payload.get("layers"), str(p))
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise UserError(f"{p} has no valid 'state_dict'; the checkpoint is damaged, re-train it")
    weights = []
    for layer in network.layers:
        w = state.get(layer.weight)
        if not isinstance(w, torch.Tensor):
            raise UserError(f"{p}: layer {layer.name}'s weight tensor {layer.weight!r} is missing; "
                            "the checkpoint is damaged, re-train it")
        if tuple(w.shape) != layer.weight_shape:
            raise UserError(f"{p}: layer {layer.name}'s weight has shape {tuple(w.shape)}, the layer "
                            f"list needs {layer.weight_shape}; the checkpoint is damaged, re-train it")
        if not w.is_floating_point():
            raise UserError(f"{p}: layer {layer.name}'s weight is {w.dtype}, not a float tensor; "
                            "the checkpoint is damaged, re-train it")
        arr = w.detach().to(torch.float64).numpy()
        if not np.isfinite(arr).all():
            raise UserError(f"{p}: layer {layer.name} has non-finite weights (NaN or inf); the "
                            "training diverged, re-train with a lower --lr")
        weights.append(arr)
    dataset = payload.get("dataset") if isinstance(payload.get("dataset"), dict) else {}
    return CompilerCheckpoint(p, network, tuple(weights), dataset)


def float_layers(ckpt: CompilerCheckpoint) -> list[dict[str, Any]]:
    """The network in the integer model's input format (see compiler.integer_model)."""
    return [{"name": l.name, "kind": l.kind, "weight": w, "theta": l.threshold, "leak": l.leak,
             "pooled_input": l.pooled_input, "in_shape": l.in_shape, "out_shape": l.out_shape}
            for l, w in zip(ckpt.network.layers, ckpt.weights, strict=True)]


def trained_bits(ckpt: CompilerCheckpoint) -> int | None:
    """The weight bits the model was trained with (None: float), uniform across layers."""
    bits = {l.weight_bits for l in ckpt.network.layers}
    return bits.pop() if len(bits) == 1 else max(b for b in bits if b is not None)
