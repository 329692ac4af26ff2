"""The .pt checkpoint: a state_dict plus everything needed to rebuild and evaluate the model
without the training code's defaults. The compiler reads only this file, through the layer
list, and never imports this package.

Layout (a plain dict, loadable with ``torch.load(weights_only=True)``):
    format          "spikemesh.checkpoint"
    format_version  2 (1: the same without "layers"; read here, and converted by
                    ``python -m training.checkpoint upgrade OLD.pt NEW.pt``)
    model_config    ModelConfig.to_dict()  (architecture, T, encoding, thresholds, leaks,
                                           weight bits, normalization, ...)
    layers          artifacts.layers: the explicit layer list the compiler reads
    state_dict      model weights and neuron parameters
    dataset         {"name", "class_names", "val_size"}
    metrics         {"val_acc_float", "val_acc_quant", ...} of the last epoch (None where
                    `train --eval-every` skipped its validation; the final epoch never does)
    history         per-epoch metrics
    training        training arguments, and (while training) optimizer state and epoch
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from artifacts.atomic import write_atomic
from artifacts.checkpointfile import FORMAT, load_checkpoint_file
from artifacts.errors import UserError
from artifacts.layers import LayerEntry, LayerList
from training.models import POOL, ModelConfig, SpikingVGG, build_model

FORMAT_VERSION = 2
READS = (1, 2)


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


def layer_list(cfg: ModelConfig, state_dict: dict[str, torch.Tensor]) -> LayerList:
    """The explicit layer list of a model (artifacts.layers), thresholds and leaks read from
    its state_dict (they may have been trained)."""
    entries: list[LayerEntry] = []
    c_in, size, pooled, ci = cfg.in_channels, cfg.image_size, False, 0
    bits = cfg.weight_bits

    def value(key: str) -> float:
        return float(state_dict[key])

    for f in cfg.features:
        if f == POOL:
            size //= 2
            pooled = True
            continue
        entries.append(LayerEntry(f"conv{ci + 1}", "conv", (c_in, size, size), (int(f), size, size),
                                  pooled, f"convs.{ci}.weight", value(f"conv_lifs.{ci}.theta"),
                                  value(f"conv_lifs.{ci}.leak"), cfg.reset, bits))
        c_in, pooled, ci = int(f), False, ci + 1
    n_in = c_in * size * size
    for j, h in enumerate(cfg.hidden):
        entries.append(LayerEntry(f"fc{j + 1}", "fc", (n_in,), (h,), pooled, f"fcs.{j}.weight",
                                  value(f"fc_lifs.{j}.theta"), value(f"fc_lifs.{j}.leak"),
                                  cfg.reset, bits))
        n_in, pooled = h, False
    entries.append(LayerEntry("out", "out", (n_in,), (cfg.num_classes,), False, "out.weight",
                              1.0, 1.0, cfg.reset, bits))
    return LayerList(cfg.timesteps, cfg.encoding, cfg.num_classes,
                     (cfg.in_channels, cfg.image_size, cfg.image_size), tuple(cfg.mean),
                     tuple(cfg.std), tuple(entries))


def _check_finite(state_dict: dict[str, torch.Tensor], where: str) -> None:
    for k, v in state_dict.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise UserError(f"{where}: tensor {k} holds NaN or inf values; the training diverged, "
                            "re-train with a lower --lr")


def save_checkpoint(path: str | Path, model: SpikingVGG, *, dataset: dict[str, Any],
                    metrics: dict[str, Any] | None = None,
                    history: list[dict[str, Any]] | None = None,
                    training: dict[str, Any] | None = None) -> None:
    """Write the checkpoint atomically (a crash leaves the previous file intact). A model with
    non-finite weights or neuron parameters is refused, so no .pt ever holds one."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _check_finite(state, f"not saving {path}")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.cfg.to_dict(),
        "layers": layer_list(model.cfg, state).to_dict(),
        "state_dict": state,
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
    payload = load_checkpoint_file(p, torch)
    version = payload.get("format_version")
    if version not in READS:
        raise UserError(f"{p} has checkpoint format version {version}, this spikemesh reads "
                        f"versions {', '.join(map(str, READS))}; re-train or upgrade spikemesh")
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
    state = payload["state_dict"]
    bad = next((k for k, v in state.items()
                if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise UserError(f"{path}: state_dict entry {bad!r} is not a named tensor; the checkpoint is damaged")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"{path}: weights do not fit a {cfg.arch} model ({first}); "
                        "the checkpoint is damaged") from None
    _check_finite(state, str(path))
    if payload["format_version"] >= 2 and payload.get("layers") != layer_list(cfg, state).to_dict():
        raise UserError(f"{path}: the layer list disagrees with the model config and weights; "
                        "the checkpoint was edited or is damaged, re-train it")
    model.eval()
    return Checkpoint(model, cfg, payload.get("dataset", {}), payload.get("metrics", {}),
                      payload.get("history", []), payload.get("training", {}))


def upgrade(src: str | Path, dst: str | Path) -> None:
    """Rewrite a format-1 checkpoint as format 2 (adds the layer list the compiler reads)."""
    if Path(src).resolve() == Path(dst).resolve():
        raise UserError("upgrade writes a new file; pass an output path other than the input")
    payload = read_payload(src)
    ckpt = load_checkpoint(src)
    save_checkpoint(dst, ckpt.model, dataset=ckpt.dataset, metrics=ckpt.metrics,
                    history=ckpt.history, training=payload.get("training", {}))


def _main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "upgrade":
        print("usage: python -m training.checkpoint upgrade OLD.pt NEW.pt", file=sys.stderr)
        return 2
    try:
        upgrade(argv[1], argv[2])
    except UserError as exc:
        print(f"upgrade: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {argv[2]} (checkpoint format {FORMAT_VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
