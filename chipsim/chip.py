"""The functional chip: a loaded chip image run on batches of images through the Numba
kernels (integer arithmetic, spikes and per-core counters; no timing)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from artifacts import intmath
from artifacts.chipimage import ROLE_PARTIAL
from artifacts.hostinput import encode_step, host_currents
from chipsim import jit, kernels
from chipsim.flat import Flat, flatten
from chipsim.machine import Machine


@dataclass
class SimResult:
    logits: np.ndarray                 # int64 (N, classes): output accumulators
    predictions: np.ndarray            # int64 (N,)
    spikes_out: np.ndarray             # int64 (C,): summed over images
    sops: np.ndarray                   # int64 (C,)
    packets_in: np.ndarray             # int64 (C,)
    packets_out: np.ndarray            # int64 (C,)
    route_packets: np.ndarray          # int64 (T, R): packets per route per step, summed
    spikes: dict[str, np.ndarray] | None = None   # per layer (N, T, neurons) uint8 if recorded
    n: int = 0
    per_image_sops: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    per_image_route_packets: np.ndarray | None = None  # int64 (N, T, R)


class Chip:
    """A chip image ready to run. Build once, call ``run`` on batches of images."""

    def __init__(self, machine: Machine, quads: bool | None = None) -> None:
        """``quads``: see flat.flatten (default: VNNI quads where the CPU has VNNI)."""
        self.machine = machine
        self.flat: Flat = flatten(machine, quads)
        self.mem_lo, self.mem_hi = intmath.membrane_limits(machine.membrane_bits)
        self.n_routes = len(machine.route_src)

    def input_events(self, images: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """(B, T, n_in) int64 host events for uint8 images (B, C, H, W)."""
        m = self.machine
        b, T = images.shape[0], m.timesteps
        if m.encoding == "direct" and m.input_path == "host":
            l0 = m.layers[0]
            cur = host_currents(images, l0.units, l0.weight_shift, m.meta["model"]["mean"],
                                m.meta["model"]["std"]).reshape(b, -1)
            return np.repeat(cur[:, None, :], T, axis=1)
        steps = [encode_step(images, m.encoding, t, T, rng).reshape(b, -1) for t in range(T)]
        return np.ascontiguousarray(np.stack(steps, axis=1))

    def run(self, images: np.ndarray, *, rng: np.random.Generator | None = None,
            record: bool = False) -> SimResult:
        f, m = self.flat, self.machine
        events = self.input_events(images, rng)
        if not f.host_currents and events.size and not 0 <= events.min() <= events.max() <= 255:
            # kernels.run_image keeps a step's events of one axon in a byte
            raise ValueError("host events must lie in 0..255")
        b, T = events.shape[0], events.shape[1]
        n_cores = len(f.core_role)
        out = np.zeros((b, m.num_classes), dtype=np.int64)
        n_rec = int(f.layer_nbase[-1])
        rec = np.zeros((b, T, n_rec) if record else (b, 0, 0), dtype=np.uint8)
        spikes_out = np.zeros((b, n_cores), dtype=np.int64)
        sops = np.zeros((b, n_cores), dtype=np.int64)
        pk_in = np.zeros((b, n_cores), dtype=np.int64)
        pk_out = np.zeros((b, n_cores), dtype=np.int64)
        route_pk = np.zeros((b, T, self.n_routes), dtype=np.int64)
        arrays = kernels.ChipArrays(
            **{name: getattr(f, name) for name in kernels.ChipArrays._fields
               if name not in ("mem_lo", "mem_hi")}, mem_lo=self.mem_lo, mem_hi=self.mem_hi)
        counters = kernels.Counters(out, rec, spikes_out, sops, pk_in, pk_out, route_pk)
        jit.announce_compile(kernels.run_batch)
        kernels.run_batch(events, arrays, counters, np.zeros(0, f.acc_dtype),
                          max(1, min(b, numba.get_num_threads())))
        spikes = None
        if record:
            spikes = {}
            for li, lay in enumerate(m.layers):
                if lay.kind != "out":
                    spikes[lay.name] = rec[:, :, f.layer_nbase[li]:f.layer_nbase[li + 1]]
        return SimResult(out, out.argmax(axis=1), spikes_out.sum(0), sops.sum(0), pk_in.sum(0),
                         pk_out.sum(0), route_pk.sum(0), spikes, b, sops.sum(1), route_pk)

    def wave_of_route(self) -> np.ndarray:
        """The wave each route's packets travel in: 0 host input, then per layer l its partial
        sums (1 + 2l) and its spikes (2 + 2l)."""
        src = self.machine.route_src.astype(np.int64)
        core = np.maximum(src, 0)
        layer = self.flat.core_layer[core]
        partial = self.flat.core_role[core] == ROLE_PARTIAL
        return np.where(src < 0, 0, 1 + 2 * layer + np.where(partial, 0, 1))
