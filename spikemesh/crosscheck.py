"""`simulate --verify`: run the integer reference beside the simulator on the same inputs and
stop at the first spike that differs. Lives here because it joins compiler/ and chipsim/."""

from __future__ import annotations

import numpy as np

from chipsim.chip import SimResult
from compiler.integer_model import IntegerModel
from compiler.reference import run_reference


class MismatchError(Exception):
    """chipsim and the integer reference disagree: a bug in one of them, never user error."""


class CrossCheck:
    def __init__(self, model: IntegerModel, norm: tuple) -> None:
        self.model, self.norm = model, norm
        self.images_checked = 0

    def __call__(self, images: np.ndarray, res: SimResult, rng_state: dict) -> None:
        rng = np.random.default_rng()
        rng.bit_generator.state = rng_state     # the draws the simulator's batch used
        ref = run_reference(self.model, images, rng=rng, record=True, norm=self.norm)
        for name, trains in res.spikes.items():
            expected = ref.spikes[name].reshape(*ref.spikes[name].shape[:2], -1).transpose(1, 0, 2)
            if not np.array_equal(trains, expected):
                b, t, n = (int(v) for v in np.argwhere(trains != expected)[0])
                raise MismatchError(
                    f"chipsim and the integer reference disagree: layer {name}, image "
                    f"{self.images_checked + b}, step {t}, neuron {n} (chipsim "
                    f"{int(trains[b, t, n])}, reference {int(expected[b, t, n])})")
        if not np.array_equal(res.logits, ref.logits):
            b = int(np.argwhere((res.logits != ref.logits).any(axis=1))[0][0])
            raise MismatchError(f"output accumulators differ on image {self.images_checked + b}")
        self.images_checked += len(images)
