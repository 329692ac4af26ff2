"""The .pt checkpoint: a state_dict plus everything needed to rebuild and evaluate the model
without the training code's defaults. The compiler reads only this file.

Layout (a plain dict, loadable with ``torch.load(weights_only=True)``):
    format          "spikemesh.checkpoint"
    format_version  1
    model_config    ModelConfig.to_dict()  (architecture, T, encoding, thresholds, leaks,
                                           weight bits, normalization, ...)
    state_dict      model weights and neuron parameters
    dataset         {"name", "class_names", "val_size"}
    metrics         {"val_acc_float", "val_acc_quant", ...}
    history         per-epoch metrics
    training        training arguments, and (while training) optimizer state and epoch
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from spikemesh.atomic import write_atomic
from spikemesh.errors import UserError
from training.models import ModelConfig, SpikingVGG, build_model

FORMAT = "spikemesh.checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    model: SpikingVGG
    config: ModelConfig
    dataset: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.dataset.get("class_names", [str(i) for i in range(self.config.num_classes)]))


def save_checkpoint(path: str | Path, model: SpikingVGG, *, dataset: dict[str, Any],
                    metrics: dict[str, Any] | None = None,
                    history: list[dict[str, Any]] | None = None,
                    training: dict[str, Any] | None = None) -> None:
    """Write the checkpoint atomically (a crash leaves the previous file intact)."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "dataset": dataset,
        "metrics": metrics or {},
        "history": history or [],
        "training": training or {},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_atomic(path, lambda f: f.write(buf.getvalue()))


def read_payload(path: str | Path) -> dict[str, Any]:
    """Load and validate the raw checkpoint dict (no model is built)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"checkpoint {p} does not exist; train one with `spikemesh train --out {p}`")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise UserError(f"{p} is not a readable checkpoint ({exc.__class__.__name__}); it is "
                        "corrupt or was not written by spikemesh, re-run `spikemesh train`") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{p} is a PyTorch file but not a spikemesh checkpoint (no "
                        f"format={FORMAT!r}); pass a .pt written by `spikemesh train`")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(f"{p} has checkpoint format version {version}, this spikemesh reads "
                        f"version {FORMAT_VERSION}; re-train or upgrade spikemesh")
    for key in ("model_config", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise UserError(f"{p} has no valid {key!r}; the checkpoint is damaged, re-train it")
    return payload


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model from a checkpoint, in eval mode, on the CPU."""
    payload = read_payload(path)
    try:
        cfg = ModelConfig.from_dict(payload["model_config"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: invalid model config ({exc}); the checkpoint is damaged") from None
    model = build_model(cfg)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"{path}: weights do not fit a {cfg.arch} model ({first}); "
                        "the checkpoint is damaged") from None
    model.eval()
    return Checkpoint(model, cfg, payload.get("dataset", {}), payload.get("metrics", {}),
                      payload.get("history", []), payload.get("training", {}))
