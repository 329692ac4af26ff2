"""Atomic file output: a reader sees the old file or the whole new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from artifacts.errors import UserError


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600; a new file obeys the umask
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_orphans(target: Path) -> None:
    """Delete temporaries of ``target`` left by a writer that was killed outright (SIGKILL,
    power loss): their name carries the writer's pid, and that process is gone."""
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        pid = tmp.name[len(target.name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Call ``writer`` on a binary file object and atomically publish the result at ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        writer(f)
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def check_output(path: str | os.PathLike[str], *, option: str,
                 inputs: tuple[str | os.PathLike[str], ...] = ()) -> None:
    """Refuse, before any work, an output path that cannot be written or would overwrite an
    input: a directory, a path under a regular file, a folder without write permission, a
    non-regular file, or the same file as an input (symlinks and hard links included)."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{option} {target} is a directory; pass a file path")
    if target.exists() and not target.is_file():
        raise UserError(f"{option} {target} is not a regular file; pass a file path")
    for src in inputs:
        if src is not None and Path(src).exists() and target.exists() and os.path.samefile(src, target):
            raise UserError(f"{option} {target} is the input {src}; write to another file")
    parent = target.parent
    while not parent.exists():           # atomic_path creates missing folders
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{option} {target} lies under {parent}, which is a file, not a folder")
    try:   # a real probe: access() says yes to root, and to filesystems such as /proc
        fd, probe = tempfile.mkstemp(prefix=".spikemesh-probe.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{option} {target}: cannot write in {parent} ({exc.strerror}); pick "
                        "another path") from None
