import numpy as np
import torch

from training.data import load_dataset
from training.data.synthetic import make_synthetic


def test_deterministic_by_seed_and_balanced():
    a, ya = make_synthetic(50, seed=3)
    b, yb = make_synthetic(50, seed=3)
    c, _ = make_synthetic(50, seed=4)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert not np.array_equal(a, c)
    assert a.shape == (50, 3, 32, 32) and a.dtype == np.uint8
    assert np.bincount(ya, minlength=10).tolist() == [5] * 10


def test_images_vary_within_a_class():
    x, y = make_synthetic(200, seed=0)
    same = x[y == 0].astype(float)
    # colour and position vary: per-pixel spread within one class is large
    assert same.std(axis=0).mean() > 40


def test_bundle_splits():
    d = load_dataset("synthetic", val_size=30, synthetic_train=70)
    assert len(d.train) == 70 and len(d.val) == 30 and d.test is None
    assert len(d.class_names) == 10


def test_a_loaded_bundle_is_the_callers_to_change():
    # the set is generated once per process; writing into one bundle must not reach the next
    first = load_dataset("synthetic", val_size=30, synthetic_train=70)
    pristine = first.train.images.clone()
    first.train.images.zero_()
    first.val.labels.fill_(9)
    second = load_dataset("synthetic", val_size=30, synthetic_train=70)
    assert torch.equal(second.train.images, pristine)
    assert not torch.equal(second.val.labels, first.val.labels)
    x, y = make_synthetic(100, seed=0)
    assert np.array_equal(second.train.images.numpy(), x[:70])
    assert np.array_equal(second.val.labels.numpy(), y[70:])
