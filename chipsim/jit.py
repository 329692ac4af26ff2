"""How chipsim's kernels are compiled: Numba, cached on disk under a key that covers every
source the kernels are built from.

Numba keys its cache on the one file that defines a function (its modification time and size),
so an edit in a module the kernel calls (``simd.py``, or ``artifacts``) would leave stale machine
code that still loads. Here the cache folder's name carries a hash of every ``.py`` file in
``chipsim/`` and ``artifacts/`` plus the Numba and llvmlite versions: any edit picks a new, empty
folder. The folder is the first writable one of

    $SPIKEMESH_CACHE_DIR, chipsim/__pycache__, $XDG_CACHE_HOME/spikemesh (~/.cache/spikemesh),
    the system temporary folder

and, if none is writable, the kernels run uncached (compiled in every process) with one
message saying so. Every chipsim kernel is decorated with ``njit`` from here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import llvmlite
import numba

PACKAGE = Path(__file__).resolve().parent
SOURCE_DIRS = (PACKAGE, PACKAGE.parent / "artifacts")
PREFIX = "numba-"


def source_key(dirs: tuple[Path, ...] = SOURCE_DIRS) -> str:
    """A hash of every source the kernels are built from, and of the compiler versions."""
    h = hashlib.sha256(f"numba {numba.__version__} llvmlite {llvmlite.__version__}".encode())
    for d in dirs:
        for path in sorted(d.rglob("*.py")):
            h.update(str(path.relative_to(d.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def _candidates() -> list[Path]:
    out = []
    if os.environ.get("SPIKEMESH_CACHE_DIR"):
        out.append(Path(os.environ["SPIKEMESH_CACHE_DIR"]))
    out.append(PACKAGE / "__pycache__")
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    out.append(Path(xdg) / "spikemesh")
    out.append(Path(tempfile.gettempdir()) / f"spikemesh-{os.getuid() if hasattr(os, 'getuid') else 0}")
    return out


def choose_cache_dir(key: str) -> Path | None:
    """The cache folder for ``key`` in the first writable candidate, or None."""
    for base in _candidates():
        folder = base / f"{PREFIX}{key}"
        if _writable(folder):
            if base == PACKAGE / "__pycache__":
                _prune(base, keep=folder)
            return folder
    return None


def _prune(base: Path, keep: Path) -> None:
    """Remove the package's caches of other source versions (they can never be used again)."""
    for old in base.glob(f"{PREFIX}*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


KEY = source_key()
CACHE_DIR = choose_cache_dir(KEY)
if CACHE_DIR is None:
    print("chipsim: no writable cache folder (tried SPIKEMESH_CACHE_DIR, the package folder, "
          "the user cache and the temporary folder); chip kernels compile in every run",
          file=sys.stderr)


@contextmanager
def _numba_cache_dir():
    """Point Numba's cache at CACHE_DIR while a kernel is decorated: Numba picks the folder
    of a function's cache when the decorator runs, so other Numba users keep their setting."""
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(CACHE_DIR)
    try:
        yield
    finally:
        numba.config.CACHE_DIR = saved


def njit(*args: Any, **options: Any) -> Any:
    """``numba.njit`` with chipsim's cache (``cache=True`` unless no folder is writable)."""
    options["cache"] = CACHE_DIR is not None

    def decorate(fn: Callable) -> Any:
        with _numba_cache_dir():
            return numba.njit(**options)(fn)

    if args and callable(args[0]):
        return decorate(args[0])
    return decorate


_announced = False


def announce_compile(dispatcher: Any, what: str = "chip kernels") -> None:
    """Print one line before a kernel compiles from scratch (about a minute), once a process."""
    global _announced
    if _announced or dispatcher.overloads:
        return
    name = dispatcher.py_func.__qualname__
    if CACHE_DIR is not None and any(CACHE_DIR.rglob(f"*.{name}-*.nbi")):
        return
    _announced = True
    print(f"chipsim: compiling {what}, first run only (about a minute)", file=sys.stderr)
