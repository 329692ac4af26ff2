"""Datasets as uint8 image tensors: CIFAR-10 from disk and an embedded synthetic set."""

from training.data.bundle import DatasetBundle, Split, load_dataset

__all__ = ["DatasetBundle", "Split", "load_dataset"]
