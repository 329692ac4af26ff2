"""Shared fixtures. The trained-model fixture is session-scoped: one short training run feeds
the end-to-end, attack and CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_CIFAR = SHARED / "datasets" / "prepare_cifar10.py"

# The stated bar for the short end-to-end run below (chance is 10%).
E2E_MIN_ACCURACY = 50.0


@pytest.fixture(scope="session")
def trained_synthetic(tmp_path_factory) -> tuple[Path, dict]:
    """A VGG5 (direct, T=4, 4-bit QAT) trained briefly on the synthetic dataset: the hybrid
    recipe (ReLU ANN epochs, conversion, one QAT SNN epoch; ~70 s, where 3 SNN epochs took
    ~100 s for a weaker model)."""
    from training.models import ModelConfig
    from training.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("model") / "vgg5.pt"
    cfg = TrainConfig(model=ModelConfig(arch="vgg5", timesteps=4, weight_bits=4),
                      dataset="synthetic", train_size=2400, val_size=500, eval_size=500,
                      ann_epochs=4, epochs=1, qat_epochs=1, batch_size=32, lr=3e-4,
                      out=str(out))
    metrics = train(cfg, progress=False, log=lambda *_: None)
    return out, metrics


@pytest.fixture(scope="session")
def trained_chip(trained_synthetic, tmp_path_factory) -> Path:
    """trained_synthetic compiled for pku-nc64c (graded input path), once for every test
    that only reads it."""
    from compiler.compile import compile_checkpoint
    from compiler.spec import load_spec

    pt, _ = trained_synthetic
    out = tmp_path_factory.mktemp("chip") / "vgg5.chip"
    compile_checkpoint(pt, load_spec("pku-nc64c"), out, log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def shared_cifar_dir(tmp_path_factory) -> Path:
    """The project's real CIFAR-10 training images, written in the standard layout."""
    if not SHARED_CIFAR.exists():
        pytest.skip(f"real CIFAR-10 not available: {SHARED_CIFAR} is absent (a user's clone "
                    "has no ../shared)")
    pytest.importorskip("PIL", reason="prepare_cifar10.py needs Pillow (pip install pillow)")
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("cifar")
    subprocess.run([sys.executable, str(SHARED_CIFAR), str(out)], check=True,
                   capture_output=True)
    return out
