"""The CIFAR-10 loader on tiny datasets written in the real format, and on the real data."""

import pickle
import tarfile

import numpy as np
import pytest

from artifacts.errors import UserError
from training.data import load_dataset
from training.data.cifar10 import FOLDER, load_cifar10

N_PER_BATCH = 20


def write_cifar(root, *, test=True, corrupt=None):
    folder = root / FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        batch = {b"batch_label": b"x", b"labels": list(rng.integers(0, 10, N_PER_BATCH)),
                 b"data": rng.integers(0, 256, (N_PER_BATCH, 3072), dtype=np.uint8),
                 b"filenames": [b"f"] * N_PER_BATCH}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
    if test:
        batch = {b"labels": [3] * 7, b"data": np.zeros((7, 3072), np.uint8)}
        (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def test_reads_the_python_version_layout(tmp_path):
    write_cifar(tmp_path)
    data = load_cifar10(tmp_path, val_size=10)
    assert len(data.train) == 90 and len(data.val) == 10 and len(data.test) == 7
    assert data.train.images.shape == (90, 3, 32, 32)
    assert data.class_names == tuple(f"c{i}" for i in range(10))
    # pixel layout: the 3072 values are R plane, G plane, B plane
    raw = pickle.loads((tmp_path / FOLDER / "data_batch_1").read_bytes(), encoding="bytes")
    assert np.array_equal(data.train.images[0, 1].numpy().ravel(), raw[b"data"][0, 1024:2048])
    # validation is the last images of the training data
    raw5 = pickle.loads((tmp_path / FOLDER / "data_batch_5").read_bytes(), encoding="bytes")
    assert np.array_equal(data.val.images[-1].numpy().ravel(), raw5[b"data"][-1])


def test_reads_the_tarball(tmp_path):
    src = tmp_path / "src"
    folder = write_cifar(src, test=False)
    tgz = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(folder, arcname=FOLDER)
    data = load_cifar10(tgz, val_size=5)
    assert len(data.train) == 95 and data.test is None


def test_missing_batch_names_the_file(tmp_path):
    folder = write_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(UserError, match="data_batch_3 is missing"):
        load_cifar10(tmp_path)


def test_corrupt_batch_names_the_file(tmp_path):
    folder = write_cifar(tmp_path)
    (folder / "data_batch_2").write_bytes(b"garbage, not a pickle")
    with pytest.raises(UserError, match="data_batch_2 is corrupt"):
        load_cifar10(tmp_path)


def test_wrong_dtype_or_labels_are_refused(tmp_path):
    folder = write_cifar(tmp_path)
    bad = {b"labels": [0] * 4, b"data": np.zeros((4, 3072), np.float32)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(bad))
    with pytest.raises(UserError, match="uint8"):
        load_cifar10(tmp_path)
    bad = {b"labels": [11] * 4, b"data": np.zeros((4, 3072), np.uint8)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(bad))
    with pytest.raises(UserError, match="0..9"):
        load_cifar10(tmp_path)


def test_no_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no CIFAR-10 found"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(UserError, match="--data-dir"):
        load_dataset("cifar10", None)


def test_real_training_data_loads_and_the_loss_falls(shared_cifar_dir):
    import torch
    import torch.nn.functional as F

    from training.evaluate import to_float
    from training.models import ModelConfig, build_model

    data = load_cifar10(shared_cifar_dir)
    assert len(data.train) == 45000 and len(data.val) == 5000 and data.test is None
    assert data.class_names[0] == "airplane"
    counts = np.bincount(data.train.labels.numpy(), minlength=10)
    assert counts.min() > 4000  # all ten classes, roughly balanced
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="vgg5", timesteps=2, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    x = to_float(data.train.images[:64])
    y = data.train.labels[:64]
    losses = []
    for _ in range(12):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


class _RunsCode:
    """A pickle that calls a function when loaded: what a planted file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", ["data_batch_2", "test_batch", "batches.meta"])
def test_a_planted_pickle_is_refused_unrun(tmp_path, name):
    folder = write_cifar(tmp_path / "d")
    marker = tmp_path / "pwned"
    (folder / name).write_bytes(pickle.dumps(_RunsCode(marker), protocol=2))
    with pytest.raises(UserError, match="asks to run code"):
        load_cifar10(tmp_path / "d", val_size=10)
    assert not marker.exists()


@pytest.mark.parametrize("labels", [[1.0] * N_PER_BATCH, ["1"] * N_PER_BATCH, [True] * N_PER_BATCH,
                                    np.ones(N_PER_BATCH, np.float32)])
def test_labels_must_be_integers(tmp_path, labels):
    folder = write_cifar(tmp_path)
    batch = {b"labels": labels, b"data": np.zeros((N_PER_BATCH, 3072), np.uint8)}
    (folder / "data_batch_4").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(UserError, match="labels must be integers"):
        load_cifar10(tmp_path, val_size=10)


def test_a_damaged_tarball_fails_its_crc(tmp_path):
    """Flipped bytes inside the compressed stream: zlib may still inflate them into wrong
    pixels, but gzip's CRC-32 over the whole archive catches it."""
    folder = write_cifar(tmp_path / "src", test=False)
    tgz = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(folder, arcname=FOLDER)
    blob = bytearray(tgz.read_bytes())
    for i in range(len(blob) // 2, len(blob) // 2 + 64):
        blob[i] ^= 0x55
    tgz.write_bytes(bytes(blob))
    with pytest.raises(UserError, match="damaged"):
        load_cifar10(tgz, val_size=5)
