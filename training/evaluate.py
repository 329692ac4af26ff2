"""Batches and clean evaluation helpers shared by training, attacks and the compiler's --verify."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from training.data.augment import random_crop_flip
from training.data.bundle import Split
from training.models import SpikingVGG


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float pixels in [0, 1]."""
    return images.to(torch.float32) / 255.0


def training_batch(split: Split, idx: torch.Tensor, *, augment: bool,
                   generator: torch.Generator, device: torch.device
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``idx`` of ``split`` as float pixels and their labels on ``device``, augmented
    where asked. Gathered and augmented where the split lives (the GPU, in a GPU run)."""
    idx = idx.to(split.images.device)
    x = to_float(split.images[idx])
    if augment:
        x = random_crop_flip(x, generator=generator)
    return x.to(device), split.labels[idx].to(device)


def batches(split: Split, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for i in range(0, len(split), batch_size):
        yield to_float(split.images[i:i + batch_size]), split.labels[i:i + batch_size]


@torch.no_grad()
def predict(model: SpikingVGG, split: Split, *, batch_size: int = 256,
            record: dict[str, list[float]] | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Predicted classes for every image of ``split`` (model in eval mode, state reset per batch),
    computed on the model's device and returned on the CPU."""
    model.eval()
    dev = model.mean.device
    preds = [model(x.to(dev), record=record, generator=generator).argmax(1).cpu()
             for x, _ in batches(split, batch_size)]
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def accuracy(model: SpikingVGG, split: Split, *, batch_size: int = 256,
             record: dict[str, list[float]] | None = None) -> float:
    """Top-1 accuracy in percent."""
    if len(split) == 0:
        return 0.0
    pred = predict(model, split, batch_size=batch_size, record=record)
    return 100.0 * float((pred == split.labels.cpu()).float().mean())


def float_and_quant_accuracy(model: SpikingVGG, split: Split, bits: int | None
                             ) -> tuple[float, float | None]:
    """Top-1 with float weights and, when ``bits`` is given, with k-bit weights (the model's own
    quantization setting is restored afterwards)."""
    keep = model.quant_bits
    model.set_quantization(None)
    acc_float = accuracy(model, split)
    acc_quant = None
    if bits is not None:
        model.set_quantization(bits)
        acc_quant = accuracy(model, split)
    model.set_quantization(keep)
    return acc_float, acc_quant
