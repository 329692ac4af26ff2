"""The in-memory form every dataset is loaded into, and the one entry point that picks one."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from artifacts.errors import UserError

DATASETS = ("synthetic", "cifar10")


@dataclass(frozen=True)
class Split:
    """Images as uint8 (N, 3, 32, 32) and labels as int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 NCHW, got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must be one per image")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int | None) -> Split:
        """The first ``n`` samples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        return Split(self.images[:n], self.labels[:n])

    def to(self, device: torch.device | str) -> Split:
        """The same samples on ``device`` (a GPU run keeps its whole training set there: CIFAR-10
        is 150 MB as uint8, and the batches then never cross the bus)."""
        return Split(self.images.to(device), self.labels.to(device))

    @staticmethod
    def from_numpy(images: np.ndarray, labels: np.ndarray) -> Split:
        return Split(torch.from_numpy(np.ascontiguousarray(images)),
                     torch.from_numpy(np.asarray(labels, dtype=np.int64)))


@dataclass(frozen=True)
class DatasetBundle:
    """Train and validation splits (validation is carved from training data), optional test."""

    name: str
    train: Split
    val: Split
    test: Split | None
    class_names: tuple[str, ...]

    def split(self, which: str) -> Split:
        if which == "test":
            if self.test is None:
                raise UserError(f"dataset {self.name} has no test split here; use --split val")
            return self.test
        if which not in ("train", "val"):
            raise UserError(f"unknown split {which!r}; choose train, val or test")
        return getattr(self, which)


def load_dataset(name: str, data_dir: str | Path | None = None, *, val_size: int = 5000,
                 synthetic_train: int = 10000, synthetic_seed: int = 0,
                 download: bool = False) -> DatasetBundle:
    """Load ``synthetic`` or ``cifar10``.

    Parameters
    ----------
    name : "synthetic" or "cifar10".
    data_dir : for cifar10, a folder holding ``cifar-10-batches-py`` (or that folder itself, or
        ``cifar-10-python.tar.gz``). Ignored for synthetic.
    val_size : images taken from the end of the training data as the validation split.
    synthetic_train, synthetic_seed : size and seed of the generated training set.
    download : fetch CIFAR-10 (checksum verified) when it is not in ``data_dir``.
    """
    if name == "synthetic":
        from training.data.synthetic import CLASS_NAMES

        x, y = _synthetic_arrays(synthetic_train + val_size, synthetic_seed)
        # copies: the bundle's tensors are the caller's, the cached arrays stay pristine
        train = Split.from_numpy(x[:synthetic_train].copy(), y[:synthetic_train].copy())
        val = Split.from_numpy(x[synthetic_train:].copy(), y[synthetic_train:].copy())
        return DatasetBundle("synthetic", train, val, None, CLASS_NAMES)
    if name == "cifar10":
        from training.data.cifar10 import load_cifar10

        if data_dir is None:
            raise UserError("cifar10 needs --data-dir DIR pointing at cifar-10-batches-py "
                            "(or pass --download to fetch it)")
        return load_cifar10(data_dir, val_size=val_size, download=download)
    raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


@functools.lru_cache(maxsize=2)
def _synthetic_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The generated set, made once per process: it is deterministic, takes ~2 s for the
    default 12,000 images, and one command (the demo: train, attack, simulate) loads it several
    times. Read-only, so a caller that wrote into it would fail loudly instead of corrupting it."""
    from training.data.synthetic import make_synthetic

    x, y = make_synthetic(n, seed=seed)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y
