"""CIFAR-10 in the standard "python version" layout (cifar-10-batches-py), from a folder or
from the distributed cifar-10-python.tar.gz, plus a checksum-verified download."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from artifacts.atomic import atomic_path
from artifacts.errors import UserError
from training.data.bundle import DatasetBundle, Split

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TARBALL = "cifar-10-python.tar.gz"
TARBALL_MD5 = "c58f30108f718f92721af3b95e74349a"  # published by the dataset's authors
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
DEFAULT_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds: dicts, lists, bytes, str, numbers and numpy
    arrays. A pickle can name any importable callable (``os.system``), so every global it asks
    for is refused unless it is one of numpy's array, dtype and scalar reconstructors."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("_codecs", "encode")}   # how Python 2 pickles of numpy arrays carry their bytes

    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict:
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused"):
            raise UserError(f"{where} is not a CIFAR-10 batch: it asks to run code ({exc}); "
                            "delete it and re-create the dataset from a trusted copy") from None
        raise UserError(f"{where} is corrupt or not a CIFAR-10 batch ({exc.__class__.__name__}); "
                        "re-download or re-create the dataset") from None
    except Exception as exc:  # any unpickling failure means the file is not a CIFAR batch
        raise UserError(f"{where} is corrupt or not a CIFAR-10 batch ({exc.__class__.__name__}); "
                        "re-download or re-create the dataset") from None
    if not isinstance(obj, dict):
        raise UserError(f"{where} is not a CIFAR-10 batch (expected a dict); re-create the dataset")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _parse_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(raw, where)
    if "data" not in batch or "labels" not in batch:
        raise UserError(f"{where} has no 'data'/'labels' entries; it is not a CIFAR-10 batch")
    data = batch["data"]
    if not isinstance(data, np.ndarray):
        raise UserError(f"{where}: data is a {type(data).__name__}, not a numpy array; the file is damaged")
    labels = batch["labels"]
    if not (isinstance(labels, list | np.ndarray)
            and all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)
                    for v in (labels.tolist() if isinstance(labels, np.ndarray) else labels))):
        raise UserError(f"{where}: labels must be integers; the file is damaged or not CIFAR-10")
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise UserError(f"{where}: data must be uint8 of shape (N, 3072), got "
                        f"{data.dtype} {data.shape}; the file is damaged")
    if labels.shape != (data.shape[0],):
        raise UserError(f"{where}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise UserError(f"{where}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _folder_reader(folder: Path) -> Callable[[str], bytes | None]:
    def read(name: str) -> bytes | None:
        p = folder / name
        return p.read_bytes() if p.is_file() else None
    return read


MAX_UNPACKED = 256 << 20   # the real archive unpacks to ~178 MB


def _gunzip(path: Path) -> bytes:
    """The whole archive decompressed, so gzip's CRC-32 and length are checked before a byte
    is used (tarfile's streaming read never checks them), and bounded against gzip bombs."""
    out = io.BytesIO()
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                out.write(chunk)
                if out.tell() > MAX_UNPACKED:
                    raise UserError(f"{path} unpacks to more than {MAX_UNPACKED >> 20} MiB; it is "
                                    "not the CIFAR-10 archive, re-download it")
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path} is damaged ({exc.__class__.__name__}: {exc}); re-download it") from None
    return out.getvalue()


def _tar_reader(path: Path) -> Callable[[str], bytes | None]:
    data = _gunzip(path)
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"{path} is not a readable .tar.gz ({exc}); re-download it") from None

    def read(name: str) -> bytes | None:
        m = members.get(name)
        if m is None:
            return None
        f = tar.extractfile(m)
        try:
            return f.read() if f else None
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise UserError(f"{path}: member {name} is truncated ({exc}); re-download it") from None
    return read


def _locate(root: Path) -> tuple[Callable[[str], bytes | None], str]:
    if root.is_file() and root.name.endswith((".tar.gz", ".tgz")):
        return _tar_reader(root), str(root)
    for folder in (root / FOLDER, root):
        if (folder / TRAIN_BATCHES[0]).exists() or (folder / META).exists():
            return _folder_reader(folder), str(folder)
    if (root / TARBALL).is_file():
        return _tar_reader(root / TARBALL), str(root / TARBALL)
    raise UserError(f"no CIFAR-10 found in {root}: expected {FOLDER}/data_batch_1..5 or {TARBALL} "
                    "(pass --download to fetch it, or point --data-dir at the right folder)")


def load_cifar10(data_dir: str | Path, *, val_size: int = 5000,
                 download: bool = False) -> DatasetBundle:
    """Load CIFAR-10; the last ``val_size`` training images become the validation split.

    ``test_batch`` is optional (the project's shared copy has none); when present it is the test
    split. Every batch is checked for dtype, shape and label range.
    """
    root = Path(data_dir)
    if download and not _has_cifar(root):
        download_cifar10(root)
    reader, where = _locate(root)
    xs, ys = [], []
    for name in TRAIN_BATCHES:
        raw = reader(name)
        if raw is None:
            raise UserError(f"{where}/{name} is missing; the CIFAR-10 training set needs "
                            "data_batch_1..5 (re-create or re-download it)")
        x, y = _parse_batch(raw, f"{where}/{name}")
        xs.append(x)
        ys.append(y)
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    if not 0 <= val_size < len(y_all):
        raise UserError(f"a validation split of {val_size} images needs between 0 and "
                        f"{len(y_all) - 1} (the training set has {len(y_all)})")
    cut = len(y_all) - val_size
    train = Split.from_numpy(x_all[:cut], y_all[:cut])
    val = Split.from_numpy(x_all[cut:], y_all[cut:])
    test = None
    raw = reader(TEST_BATCH)
    if raw is not None:
        test = Split.from_numpy(*_parse_batch(raw, f"{where}/{TEST_BATCH}"))
    classes = DEFAULT_CLASSES
    raw = reader(META)
    if raw is not None:
        meta = _unpickle(raw, f"{where}/{META}")
        names = meta.get("label_names")
        if not isinstance(names, list) or len(names) != 10:
            raise UserError(f"{where}/{META}: label_names must list 10 classes")
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return DatasetBundle("cifar10", train, val, test, classes)


def _has_cifar(root: Path) -> bool:
    return ((root / FOLDER / TRAIN_BATCHES[0]).exists() or (root / TRAIN_BATCHES[0]).exists()
            or (root / TARBALL).is_file())


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_cifar10(root: str | Path, url: str = URL, md5: str = TARBALL_MD5) -> Path:
    """Download the CIFAR-10 tarball into ``root`` and verify its MD5; return its path.

    The archive is read in place by :func:`load_cifar10`, so nothing is unpacked.
    """
    dest = Path(root) / TARBALL
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as f:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
            got = md5sum(tmp)
            if got != md5:
                raise UserError(f"downloaded {url} has MD5 {got}, expected {md5}; "
                                "the download is damaged, try again")
    except OSError as exc:
        raise UserError(f"could not download {url} ({exc}); download it by hand into {root}") from None
    return dest
