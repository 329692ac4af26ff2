"""The package graph points one way: artifacts <- training, compiler, chipsim <- spikemesh.

Checked twice: statically (every import statement in every module, including imports inside
functions) and at run time (what importing every module of a package really loads)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("artifacts", "training", "compiler", "chipsim", "spikemesh")
# the project packages each may import (besides itself), and third-party modules it must not
ALLOWED = {"artifacts": set(), "training": {"artifacts"}, "compiler": {"artifacts"},
           "chipsim": {"artifacts"}, "spikemesh": set(PACKAGES)}
FORBIDDEN_THIRD_PARTY = {"artifacts": {"torch", "numba", "yaml", "networkx", "tqdm"},
                         "chipsim": {"torch"}, "compiler": {"numba"}}


def imports_of(path: Path) -> set[str]:
    """Top-level names of every module a file imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_statement_points_down_the_graph(package):
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        names = imports_of(path)
        for other in (names & set(PACKAGES)) - {package} - ALLOWED[package]:
            bad.append(f"{path.relative_to(REPO)} imports {other}")
        for other in names & FORBIDDEN_THIRD_PARTY.get(package, set()):
            bad.append(f"{path.relative_to(REPO)} imports {other}")
    assert not bad, bad


def test_the_static_check_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from training.models import X\n    import torch.nn\n")
    assert imports_of(f) == {"training", "torch"}


LOADED = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    pkg = importlib.import_module(sys.argv[1])
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(m.name)
    print(json.dumps(sorted({n.split(".")[0] for n in sys.modules})))
""")


def loaded_by(package: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", LOADED, package], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("package,absent", [
    ("artifacts", {"torch", "numba", "training", "compiler", "chipsim", "spikemesh"}),
    ("chipsim", {"torch", "training", "compiler", "spikemesh"}),
    ("compiler", {"training", "chipsim", "spikemesh", "numba"}),
    # training may load numba (a core dependency): its fused CPU LIF kernels, training.lif_kernels
    ("training", {"compiler", "chipsim", "spikemesh"}),
])
def test_importing_every_module_of_a_package_loads_nothing_above_it(package, absent):
    assert not loaded_by(package) & absent


BLOCK_TRAINING = textwrap.dedent("""
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == "training" or name.startswith("training."):
                raise ImportError("training is blocked for this test")
    sys.meta_path.insert(0, Block())
    from spikemesh.cli import main
    code = main(sys.argv[1:])
    assert "training" not in sys.modules
    sys.exit(code)
""")


def test_compile_runs_with_the_training_package_unimportable(tmp_path):
    from training.checkpoint import save_checkpoint
    from training.models import ModelConfig, build_model

    pt = tmp_path / "m.pt"
    save_checkpoint(pt, build_model(ModelConfig(arch="vgg5", timesteps=2, weight_bits=4)),
                    dataset={"name": "synthetic", "val_size": 100})
    out = tmp_path / "m.chip"
    run = subprocess.run([sys.executable, "-c", BLOCK_TRAINING, "compile", str(pt), "--out",
                          str(out), "--quiet"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 0
