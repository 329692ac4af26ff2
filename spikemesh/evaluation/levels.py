"""The levels an input is evaluated at, behind one interface over 8-bit images.

    algo   the torch model with float weights (Q1)
    quant  the torch model with k-bit weights (Q2)
    hw     the chip image on chipsim's functional kernels (bit-exact with the integer reference;
           the NoC model only adds timing, so accuracy does not need it)

Each level returns predictions, its output scores (for score-based attacks) and per-layer spike
counts; a level with a gradient also crafts white-box attacks. Every evaluation draws its
encoder randomness from a generator keyed by (seed, what is evaluated), so re-evaluating the
same inputs gives the same answer whatever ran before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from artifacts.intmath import PIXEL_LEVELS
from chipsim.chip import Chip
from compiler.integer_model import IntegerModel
from spikemesh.evaluation.integer_torch import IntegerTorchModel
from training.attacks import attack
from training.encoders import STOCHASTIC
from training.models import SpikingVGG


@dataclass
class SpikeTally:
    """Per spiking layer: total spikes and neuron-steps (neurons x T x images) seen."""

    spikes: dict[str, float] = field(default_factory=dict)
    slots: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, spikes: float, slots: float) -> None:
        self.spikes[name] = self.spikes.get(name, 0.0) + spikes
        self.slots[name] = self.slots.get(name, 0.0) + slots

    def activity(self) -> dict[str, float]:
        """Mean spikes per neuron per time step."""
        return {k: (v / self.slots[k] if self.slots[k] else 0.0) for k, v in self.spikes.items()}


def key_seed(*parts: int) -> int:
    """One 63-bit seed from integers (order matters), for torch and numpy alike."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


def pixels(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images -> float pixels in [0, 1] on the 8-bit grid."""
    return torch.from_numpy(images).to(device=device, dtype=torch.float32) / PIXEL_LEVELS


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Grid pixels in [0, 1] -> uint8 images (exact for pixels on the grid)."""
    return torch.round(x.detach().cpu() * PIXEL_LEVELS).clamp(0, 255).to(torch.uint8).numpy()


class TorchLevel:
    """``algo`` or ``quant``: a SpikingVGG at float or k-bit weights."""

    def __init__(self, name: str, model: SpikingVGG, bits: int | None) -> None:
        self.name, self.model, self.bits = name, model, bits
        self.device = next(model.parameters()).device
        self.stochastic = model.cfg.encoding in STOCHASTIC

    def _use(self) -> nn.Module:
        self.model.eval()
        self.model.set_quantization(self.bits)
        return self.model

    @torch.no_grad()
    def evaluate(self, images: np.ndarray, seed: int, tally: SpikeTally | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(predictions, scores) for uint8 images; spike counts go into ``tally``."""
        record: dict[str, list[float]] = {}
        gen = torch.Generator().manual_seed(seed)
        logits = self._use()(pixels(images, self.device), record=record, generator=gen)
        if tally is not None:
            for name, (s, n) in record.items():
                tally.add(name, s, n)
        scores = logits.double().cpu().numpy()
        return scores.argmax(axis=1), scores

    def craft(self, images: np.ndarray, labels: np.ndarray, spec, eps: int, seed: int
              ) -> np.ndarray:
        """White-box adversarial uint8 images at ``eps`` grey levels."""
        return craft_with(self._use(), images, labels, spec, eps, seed, self.device,
                          self.stochastic)


def craft_with(model: nn.Module, images: np.ndarray, labels: np.ndarray, spec, eps: int,
               seed: int, device: torch.device | str, stochastic: bool) -> np.ndarray:
    """Run ``spec``'s gradient attack on any differentiable model of pixels in [0, 1]."""
    eot = spec.eot if spec.eot is not None else (8 if stochastic else 1)
    gen = torch.Generator().manual_seed(seed)
    x = pixels(images, device)
    y = torch.from_numpy(labels).to(device)
    x_adv = attack(model, x, y, spec.name, eps / PIXEL_LEVELS, targeted=spec.targeted,
                   steps=spec.steps, step_size=spec.step_size, random_start=spec.random_start,
                   eot=eot, generator=gen)
    return to_uint8(x_adv)


class ChipLevel:
    """``hw``: the chip image run by chipsim's functional kernels (batches run in parallel)."""

    name = "hw"

    def __init__(self, chip: Chip) -> None:
        self.chip = chip
        self.bits = int(chip.machine.layers[0].weight_bits)
        m = chip.machine
        self.spiking = [(li, lay.name, lay.n_neurons) for li, lay in enumerate(m.layers)
                        if lay.kind != "out"]
        self.core_layer = np.array([c.layer for c in m.cores], dtype=np.int64)

    def evaluate(self, images: np.ndarray, seed: int, tally: SpikeTally | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        res = self.chip.run(images, rng=np.random.default_rng(seed))
        if tally is not None:
            # the simulator's own counters: spikes each core sent, summed per layer
            per_layer = np.bincount(self.core_layer, weights=res.spikes_out,
                                    minlength=len(self.chip.machine.layers))
            for li, name, neurons in self.spiking:
                tally.add(name, float(per_layer[li]),
                          float(neurons * self.chip.machine.timesteps * res.n))
        return res.predictions, res.logits.astype(np.float64)


class IntegerSource:
    """The `hw` source: white-box attacks through the chip's integer model itself, with
    straight-through gradients where rounding, saturation and the threshold block them."""

    name = "hw"

    def __init__(self, model: IntegerModel, mean, std) -> None:
        self.model = IntegerTorchModel(model, mean, std)
        self.stochastic = model.encoding in STOCHASTIC

    def craft(self, images: np.ndarray, labels: np.ndarray, spec, eps: int, seed: int
              ) -> np.ndarray:
        return craft_with(self.model, images, labels, spec, eps, seed, "cpu", self.stochastic)

    @property
    def exact_accumulators(self):
        """The model's output accumulators for uint8 images, to compare with the chip's; None
        for a stochastic encoder (torch and the chip draw different random numbers)."""
        if self.stochastic:
            return None

        def run(images: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return self.model.accumulators(pixels(images)).numpy()
        return run
