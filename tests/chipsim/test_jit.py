"""The kernels' cache cannot go stale, and chipsim imports where nothing is writable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from chipsim import jit
from tests.conftest import REPO

# Runs a real kernel (the quad dot products, which call chipsim/simd.py) in a fresh process
# and prints its result and whether Numba loaded it from the cache.
PROBE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from chipsim import jit, kernels
    acc = np.zeros((4, 16), np.int32)
    xquad = np.arange(64, dtype=np.int8)
    quad_in = np.array([[0x01010101, 0x02020202, 0x00000001, 0xFF000000]], np.uint32)
    kernels._dot_quads(acc, 0, 0, 16, 0, xquad, np.zeros(1, np.int64), quad_in, 1)
    print(json.dumps({"acc": acc.tolist(), "hits": sum(kernels._dot_quads.stats.cache_hits.values()),
                      "dir": str(jit.CACHE_DIR)}))
""")


def _copy_tree(dst: Path) -> Path:
    for pkg in ("artifacts", "chipsim"):
        shutil.copytree(REPO / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _probe(root: Path, **env) -> dict:
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(root), **env})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def test_an_edit_in_a_called_module_invalidates_the_kernel_cache(tmp_path):
    root = _copy_tree(tmp_path / "tree")
    cache = {"SPIKEMESH_CACHE_DIR": str(tmp_path / "cache")}
    first = _probe(root, **cache)
    again = _probe(root, **cache)
    assert again["acc"] == first["acc"] and again["hits"] > 0     # the cache is really used
    # Edit simd.py only (kernels.py, the file Numba keys on, is untouched): every vector now
    # starts at 1 instead of 0, so each of the 64 sums grows by 1 if the kernel is rebuilt.
    simd = root / "chipsim" / "simd.py"
    text = simd.read_text()
    assert text.count("return ir.Constant(_VEC, None)") == 1
    simd.write_text(text.replace("return ir.Constant(_VEC, None)",
                                 "return ir.Constant(_VEC, [1] * LANES)"))
    edited = _probe(root, **cache)
    assert edited["dir"] != first["dir"] and edited["hits"] == 0
    assert (np.array(edited["acc"]) == np.array(first["acc"]) + 1).all()


def test_the_cache_key_covers_every_source_the_kernels_are_built_from(tmp_path):
    root = _copy_tree(tmp_path / "tree")
    dirs = (root / "chipsim", root / "artifacts")
    key = jit.source_key(dirs)
    for rel in ("chipsim/simd.py", "artifacts/intmath.py", "chipsim/kernels.py"):
        path = root / rel
        original = path.read_text()
        path.write_text(original + "\n# edited\n")
        assert jit.source_key(dirs) != key, rel
        path.write_text(original)
    assert jit.source_key(dirs) == key


def test_chipsim_imports_and_runs_where_package_and_home_are_not_writable(tmp_path):
    root = _copy_tree(tmp_path / "tree")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    (root / "chipsim" / "__pycache__").write_text("")   # a file where the folder would go
    out = _probe(root, HOME=str(blocker), XDG_CACHE_HOME=str(blocker / "cache"),
                 SPIKEMESH_CACHE_DIR=str(blocker / "cache"))
    assert out["dir"].startswith(str(Path(__import__("tempfile").gettempdir())))


def test_with_no_writable_folder_the_kernels_run_uncached(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(jit, "_candidates", lambda: [blocker / "x", blocker / "y"])
    assert jit.choose_cache_dir("k") is None
    monkeypatch.setattr(jit, "CACHE_DIR", None)

    @jit.njit
    def twice(x):
        return 2 * x

    assert twice(21) == 42 and twice._cache.__class__.__name__ == "NullCache"


def test_a_first_compile_is_announced_once(capsys, monkeypatch):
    class Fresh:
        overloads: dict = {}
        py_func = test_a_first_compile_is_announced_once

    monkeypatch.setattr(jit, "_announced", False)
    jit.announce_compile(Fresh())
    jit.announce_compile(Fresh())
    assert capsys.readouterr().err.count("compiling chip kernels, first run only") == 1


@pytest.mark.parametrize("features,expected", [
    ("+avx512f,+avx512bw,+avx512vnni", True), ("+avx2,+fma", False),
    ("+avx512f,+avx512vnni", False)])
def test_vnni_is_read_from_numbas_public_cpu_settings(monkeypatch, features, expected):
    import numba

    from chipsim import simd

    monkeypatch.setattr(numba.config, "CPU_FEATURES", features)
    assert simd.has_vnni() is expected
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "")
    monkeypatch.setattr(numba.config, "CPU_NAME", "haswell")
    assert simd.has_vnni() is False          # a named CPU without features: the portable path


@pytest.mark.parametrize("features,name,expected", [
    ("+avx512f,+avx512bw,+avx512vnni", "", "vnni"), ("+avx2,+fma", "", "avx2"),
    ("+sse4.2", "", "portable"), ("", "haswell", "avx2"), ("", "znver4", "avx2"),
    ("", "cortex-a72", "portable")])
def test_the_quad_form_follows_numbas_cpu_settings(monkeypatch, features, name, expected):
    import numba

    from chipsim import simd

    monkeypatch.setattr(numba.config, "CPU_FEATURES", features)
    monkeypatch.setattr(numba.config, "CPU_NAME", name or None)
    assert simd.quad_kind() == expected
