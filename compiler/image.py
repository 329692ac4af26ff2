"""emit / load: the compiled design as a chip image (see artifacts.chipimage for the container).

Synapses are stored once per layer (the integer weight codes) plus, per core, the sorted lists
of its neurons and axons; a core's crossbar row for axon a is the layer kernel restricted to the
core's neurons, so readers expand it on load (``crossbar``). Storing every core's dense crossbar
would duplicate the shared convolution kernels into ~10^8 entries for VGG9.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from artifacts.chipimage import IMAGE_FORMAT, IMAGE_VERSION, ROLES
from compiler.connect import Routes
from compiler.integer_model import IntegerModel, IntLayer, Leak
from compiler.partition import CoreProgram
from compiler.place import Placement
from compiler.route import RoutingTables
from compiler.spec import ChipSpec


def _ptr(chunks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.array([len(c) for c in chunks], dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    flat = np.concatenate(chunks).astype(np.int32) if chunks else np.zeros(0, np.int32)
    return ptr, flat


def layer_meta(l: IntLayer) -> dict[str, Any]:
    return {"name": l.name, "kind": l.kind, "in_shape": list(l.in_shape),
            "out_shape": list(l.out_shape), "pooled_input": l.pooled_input,
            "weight_bits": l.weight_bits, "weight_shift": l.weight_shift,
            "in_denominator": l.in_denominator, "threshold": l.threshold,
            "leak_shift": l.leak.shift, "leak_multiplier": l.leak.multiplier,
            "reset": l.reset, "scale": l.scale}


def build_image(model: IntegerModel, spec: ChipSpec, cores: list[CoreProgram], routes: Routes,
                placement: Placement, tables: RoutingTables, *, provenance: dict[str, Any],
                norm: tuple[tuple[float, ...], tuple[float, ...]], extra: dict[str, Any]
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    for i, l in enumerate(model.layers):
        arrays[f"layer{i}.codes"] = l.codes
        if l.channel_gain is not None:
            arrays[f"layer{i}.gain"] = l.channel_gain.astype(np.int64)
        if l.bias is not None:
            arrays[f"layer{i}.bias"] = l.bias.astype(np.int64)
        arrays[f"layer{i}.route"] = routes.neuron_route[i]
    arrays["core.layer"] = np.array([c.layer for c in cores], dtype=np.int32)
    arrays["core.role"] = np.array([ROLES.index(c.role) for c in cores], dtype=np.int8)
    arrays["core.group"] = np.array([c.group for c in cores], dtype=np.int32)
    arrays["core.x"], arrays["core.y"] = placement.x, placement.y
    arrays["core.synapse_bits"] = np.array([c.synapse_bits for c in cores], dtype=np.int64)
    arrays["core.neuron_ptr"], arrays["core.neurons"] = _ptr([c.neurons for c in cores])
    arrays["core.axon_ptr"], arrays["core.axons"] = _ptr([c.axons for c in cores])
    arrays["route.src"] = routes.src_core
    arrays["route.dst_ptr"], arrays["route.dst"] = routes.dst_ptr, routes.dst_core
    arrays["route.n_sources"] = routes.n_sources
    arrays["input.route"] = routes.input_route
    empty = np.zeros(0, np.int32)
    arrays["partial.route_ptr"], arrays["partial.route"] = _ptr(
        [routes.partial_route.get(ci, empty) for ci in range(len(cores))])
    arrays["table.router"], arrays["table.route"] = tables.table_router, tables.table_route
    arrays["table.ports"] = tables.table_ports
    arrays["link.load"] = tables.link_load
    grid_x = spec.board.chips_x * spec.mesh.cores_x
    grid_y = spec.board.chips_y * spec.mesh.cores_y
    meta = {
        "format": IMAGE_FORMAT, "format_version": IMAGE_VERSION,
        "provenance": provenance,
        "spec": spec.to_dict(),
        "board": {"chips_x": spec.board.chips_x, "chips_y": spec.board.chips_y,
                  "grid_x": grid_x, "grid_y": grid_y},
        "model": {"timesteps": model.timesteps, "encoding": model.encoding,
                  "input_path": model.input_path, "membrane_bits": model.membrane_bits,
                  "num_classes": model.num_classes, "class_names": list(model.class_names),
                  "mean": list(norm[0]), "std": list(norm[1]),
                  "layers": [layer_meta(l) for l in model.layers]},
        "placement": {"cost": placement.cost, "row_major_cost": placement.row_major_cost},
        "host_load": tables.host_load,
        **extra,
    }
    return meta, arrays


def load_integer_model(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> IntegerModel:
    """Rebuild the integer model from an image alone (no torch, no .pt)."""
    m = meta["model"]
    layers = []
    for i, lm in enumerate(m["layers"]):
        layers.append(IntLayer(
            name=lm["name"], kind=lm["kind"], codes=arrays[f"layer{i}.codes"],
            weight_bits=lm["weight_bits"], weight_shift=lm["weight_shift"],
            in_denominator=lm["in_denominator"], pooled_input=lm["pooled_input"],
            threshold=lm["threshold"], leak=Leak(lm["leak_shift"], lm["leak_multiplier"]),
            reset=lm["reset"], scale=lm["scale"], in_shape=tuple(lm["in_shape"]),
            out_shape=tuple(lm["out_shape"]), channel_gain=arrays.get(f"layer{i}.gain"),
            bias=arrays.get(f"layer{i}.bias")))
    return IntegerModel(tuple(layers), m["timesteps"], m["encoding"], m["input_path"],
                        m["membrane_bits"], m["num_classes"], tuple(m["class_names"]))
