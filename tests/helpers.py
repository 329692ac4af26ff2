"""Small random networks, compiled in memory, for compiler and chipsim tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from compiler.compile import compile_model
from compiler.image import build_image
from compiler.integer_model import IntegerModel, build_integer_model
from compiler.spec import spec_from_dict

# A deliberately small chip: 4x4 cores of 64 neurons, 40 axons, 8 kbit of synapses, so that
# small layers must be tiled, split by fan-in and spread over several chips.
TINY_CHIP = {"name": "tiny", "mesh": {"cores_x": 4, "cores_y": 4},
             "core": {"neurons": 64, "axons": 40, "synapse_bits": 8192},
             "arithmetic": {"threshold_bits": 20, "membrane_bits": 28}}
MEAN, STD = (0.5, 0.4, 0.45), (0.25, 0.2, 0.3)


def random_layers(rng: np.random.Generator, *, channels=(4, 6), size=8, hidden=12, classes=5,
                  theta=(0.4, 1.0), leak=0.5, in_channels=3) -> list[dict]:
    """conv(in->c1) pool conv(c1->c2) pool fc(hidden) out(classes), random weights."""
    c1, c2 = channels
    s2, s3 = size // 2, size // 4
    def w(*shape):
        return rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape)
    return [
        {"name": "conv1", "kind": "conv", "weight": w(c1, in_channels, 3, 3), "theta": theta[0],
         "leak": leak, "pooled_input": False, "in_shape": (in_channels, size, size),
         "out_shape": (c1, size, size)},
        {"name": "conv2", "kind": "conv", "weight": w(c2, c1, 3, 3), "theta": theta[0],
         "leak": leak, "pooled_input": True, "in_shape": (c1, s2, s2), "out_shape": (c2, s2, s2)},
        {"name": "fc1", "kind": "fc", "weight": w(hidden, c2 * s3 * s3), "theta": theta[1],
         "leak": leak, "pooled_input": True, "in_shape": (c2 * s3 * s3,), "out_shape": (hidden,)},
        {"name": "out", "kind": "out", "weight": w(classes, hidden), "theta": 1.0, "leak": 1.0,
         "pooled_input": False, "in_shape": (hidden,), "out_shape": (classes,)},
    ]


def norm_of(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """MEAN and STD cycled to ``channels`` input channels (an image needs one per channel)."""
    return (tuple(MEAN[i % 3] for i in range(channels)), tuple(STD[i % 3] for i in range(channels)))


def tiny_spec(**arith):
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY_CHIP.items()}
    d["arithmetic"].update(arith)
    return spec_from_dict(d)


def integer_model(layers, *, encoding="direct", bits=4, reset="soft", timesteps=4, spec=None):
    spec = spec or tiny_spec()
    mean, std = norm_of(layers[0]["in_shape"][0])
    return build_integer_model(layers, timesteps=timesteps, encoding=encoding, weight_bits=bits,
                               mean=mean, std=std, reset=reset, arith=spec.arithmetic,
                               num_classes=layers[-1]["out_shape"][0])


def compile_in_memory(model: IntegerModel, spec, chips=None):
    """(meta, arrays) of the chip image, without touching the disk."""
    spec, cores, plans, routes, placement, tables, _ = compile_model(model, spec, chips=chips)
    plan_meta = [{"layer": model.layers[p.layer].name, "groups": p.groups, "tile": list(p.tile),
                  "cores": p.cores} for p in plans]
    return build_image(model, spec, cores, routes, placement, tables,
                       provenance={"source": "random", "source_sha256": "", "compiler": "test"},
                       norm=norm_of(model.layers[0].in_shape[0]), extra={"plans": plan_meta})


def random_images(rng: np.random.Generator, n: int, size: int = 8, channels: int = 3) -> np.ndarray:
    return rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8)


# the random-network cases that exactness properties draw from (8-bit weights take the int16
# crossbar path in chipsim)
NETWORK_CASES = dict(seed=st.integers(0, 10_000),
                     encoding=st.sampled_from(["direct", "rate", "phase", "latency"]),
                     reset=st.sampled_from(["soft", "hard"]),
                     leak=st.sampled_from([1.0, 0.5, 0.75, 0.3]), bits=st.integers(1, 8),
                     input_path=st.sampled_from(["graded", "host"]))
