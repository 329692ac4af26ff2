"""Checkpoint -> integer model: the compiler's first pass (load, validate, quantize)."""

from __future__ import annotations

from pathlib import Path

from compiler.integer_model import IntegerModel, build_integer_model
from compiler.spec import ChipSpec
from spikemesh.errors import UserError


def float_layers(payload: dict) -> list[dict]:
    """The network as plain numpy layer descriptions, read from a raw checkpoint dict."""
    from training.models import POOL, ModelConfig

    cfg = ModelConfig.from_dict(payload["model_config"])
    sd = payload["state_dict"]
    layers, c_in, size, pooled, ci = [], cfg.in_channels, cfg.image_size, False, 0
    for f in cfg.features:
        if f == POOL:
            size //= 2
            pooled = True
            continue
        layers.append({"name": f"conv{ci + 1}", "kind": "conv",
                       "weight": sd[f"convs.{ci}.weight"].double().numpy(),
                       "theta": float(sd[f"conv_lifs.{ci}.theta"]),
                       "leak": float(sd[f"conv_lifs.{ci}.leak"]), "pooled_input": pooled,
                       "in_shape": (c_in, size, size), "out_shape": (int(f), size, size)})
        c_in, pooled, ci = int(f), False, ci + 1
    n_in = c_in * size * size
    for j, h in enumerate(cfg.hidden):
        layers.append({"name": f"fc{j + 1}", "kind": "fc", "weight": sd[f"fcs.{j}.weight"].double().numpy(),
                       "theta": float(sd[f"fc_lifs.{j}.theta"]), "leak": float(sd[f"fc_lifs.{j}.leak"]),
                       "pooled_input": pooled, "in_shape": (n_in,), "out_shape": (h,)})
        n_in, pooled = h, False
    layers.append({"name": "out", "kind": "out", "weight": sd["out.weight"].double().numpy(),
                   "theta": 1.0, "leak": 1.0, "pooled_input": False, "in_shape": (n_in,),
                   "out_shape": (cfg.num_classes,)})
    return layers


def integer_model_from_checkpoint(path: str | Path, spec: ChipSpec,
                                  weight_bits: int | None = None) -> IntegerModel:
    """Quantize a trained checkpoint into the chip's integer model."""
    from training.checkpoint import read_payload
    from training.models import ModelConfig

    payload = read_payload(path)
    cfg = ModelConfig.from_dict(payload["model_config"])
    bits = weight_bits if weight_bits is not None else cfg.weight_bits
    if bits is None:
        raise UserError(f"{path} was trained in float; pass --weight-bits K to quantize it for the chip")
    names = tuple(payload.get("dataset", {}).get("class_names", ()))
    return build_integer_model(float_layers(payload), timesteps=cfg.timesteps,
                               encoding=cfg.encoding, weight_bits=bits, mean=cfg.mean,
                               std=cfg.std, reset=cfg.reset, arith=spec.arithmetic,
                               num_classes=cfg.num_classes, class_names=names)
