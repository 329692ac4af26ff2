"""Random single-array edits of valid chip images, re-checksummed: each must be refused by the
image check, or be an edit of a value the image may legitimately hold (a weight code within
2^k - 1, the graded input's gain and bias, a partial core's group), which must then run.

In process the check alone is exercised (hundreds of edits, fast); a sample of both kinds also
goes through `spikemesh simulate` in a subprocess, so a crash or hang cannot hide."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from artifacts.chipimage import read_chip_image, write_chip_image
from artifacts.errors import UserError
from artifacts.imagecheck import validate_image
from tests.helpers import compile_in_memory, integer_model, random_layers, tiny_spec
from training.checkpoint import save_checkpoint
from training.models import ModelConfig, build_model

# arrays whose values are free within their bounds: an edit there is a different, valid image
FREE = ("codes", "gain", "bias", "core.group")


def _images():
    out = []
    for encoding, path in (("direct", "graded"), ("rate", "graded"), ("direct", "host")):
        spec = tiny_spec()
        spec = dataclasses.replace(spec, arithmetic=dataclasses.replace(spec.arithmetic, input_path=path))
        model = integer_model(random_layers(np.random.default_rng(1)), encoding=encoding, spec=spec)
        out.append(compile_in_memory(model, spec))
    return out


def _edit(rng: np.random.Generator, arrays: dict[str, np.ndarray]) -> tuple[str, dict] | None:
    name = sorted(arrays)[rng.integers(len(arrays))]
    a = arrays[name].copy()
    if a.size == 0:
        return None
    flat = a.reshape(-1)
    i = rng.integers(a.size)
    old = int(flat[i])
    info = np.iinfo(a.dtype) if a.dtype.kind in "iu" else None
    value = [old + 1, old - 1, -1, 0, a.size, int(flat.max()) + 1, 2**31 - 1,
             int(rng.integers(-5, 600))][rng.integers(8)]
    if info is not None and not info.min <= value <= info.max:
        return None
    flat[i] = value
    if np.array_equal(a, arrays[name]):
        return None
    return name, {**arrays, name: a}


def _verdict(meta: dict, arrays: dict) -> str:
    try:
        validate_image(meta, arrays)
    except UserError:
        return "refused"
    return "accepted"


def test_random_single_array_edits_are_refused_or_harmless():
    rng = np.random.default_rng(2026)
    images = _images()
    for meta, arrays in images:
        validate_image(meta, arrays)
    refused = accepted = 0
    for k in range(300):
        meta, arrays = images[k % len(images)]
        edit = _edit(rng, arrays)
        if edit is None:
            continue
        name, edited = edit
        if _verdict(meta, edited) == "refused":
            refused += 1
            continue
        accepted += 1
        assert name.endswith(FREE), f"an edit of {name} got through the image check"
    assert refused > 150 and accepted > 10


@pytest.fixture(scope="module")
def vgg5_image(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(1)
    pt = d / "m.pt"
    save_checkpoint(pt, build_model(ModelConfig(arch="vgg5", timesteps=2, weight_bits=4)),
                    dataset={"name": "synthetic", "val_size": 1000})
    from spikemesh.cli import main

    assert main(["compile", str(pt), "--out", str(d / "m.chip"), "--quiet"]) == 0
    return d / "m.chip"


@pytest.mark.slow   # a cold kernel cache costs a VGG5 compile in the child process
def test_edited_images_through_simulate_never_crash(vgg5_image, tmp_path):
    meta, arrays = read_chip_image(vgg5_image)
    rng = np.random.default_rng(7)
    cases = {"refused": [], "accepted": []}
    while min(len(v) for v in cases.values()) < 2:
        edit = _edit(rng, arrays)
        if edit is None:
            continue
        name, edited = edit
        kind = _verdict(meta, edited)
        if len(cases[kind]) < 2:
            cases[kind].append((name, edited))
    for kind, items in cases.items():
        for j, (name, edited) in enumerate(items):
            path = tmp_path / f"{kind}{j}.chip"
            write_chip_image(path, meta, edited)
            res = subprocess.run([sys.executable, "-m", "spikemesh.cli", "simulate", str(path),
                                  "--n", "2", "--batch-size", "2", "--no-noc", "--quiet"],
                                 capture_output=True, text=True, timeout=600)
            want = 2 if kind == "refused" else 0
            assert res.returncode == want, (name, res.returncode, res.stderr[-2000:])
            if kind == "refused":
                assert "inconsistent" in res.stderr and res.stderr.count("\n") == 1
