"""compile --verify: the integer reference (read back from the chip image) against the
quantized algorithm model on validation images."""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.image import load_integer_model
from compiler.reference import run_reference


def verify(image: tuple[dict, dict], pt_path: str, images: np.ndarray, labels: np.ndarray,
           *, batch_size: int = 50, seed: int = 0) -> dict[str, Any]:
    import torch

    from training.checkpoint import load_checkpoint
    from training.data.bundle import Split
    from training.evaluate import predict

    meta, arrays = image
    model = load_integer_model(meta, arrays)
    norm = (meta["model"]["mean"], meta["model"]["std"])
    rng = np.random.default_rng(seed)
    ref = np.concatenate([run_reference(model, images[i:i + batch_size], rng=rng, norm=norm).predictions
                          for i in range(0, len(images), batch_size)])
    ckpt = load_checkpoint(pt_path)
    ckpt.model.set_quantization(model.layers[0].weight_bits)
    algo = predict(ckpt.model, Split(torch.from_numpy(images), torch.from_numpy(labels))).numpy()
    return {"n": int(len(labels)), "agreement": float((ref == algo).mean() * 100),
            "reference_acc": float((ref == labels).mean() * 100),
            "quant_algo_acc": float((algo == labels).mean() * 100)}
