"""`spikemesh demo` end to end in a reduced size: every step runs (training with the hybrid
initialisation, compile, the three-level attack, verified simulation, traffic maps) and
writes what the full demo writes."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from spikemesh.cli import main
from spikemesh.demo import DemoSizes, run_demo

SIZES = DemoSizes(train_size=96, ann_epochs=1, epochs=1, eval_size=64, n_attack=16, n_sim=4,
                  n_traffic=4)


def test_the_demo_runs_every_step_in_a_reduced_size(tmp_path, capsys):
    out = tmp_path / "demo"
    result = run_demo(out, SIZES, progress=False)
    printed = capsys.readouterr().out
    for step in range(1, 6):
        assert f"[{step}/5]" in printed
    assert set(result["levels"]) == {"algo", "quant", "hw"}
    assert result["n"] == 16 and result["simulate"]["reference_match"] is True
    for kind in ("clean", "adversarial"):
        lat = result["traffic"][kind]["packet_latency_cycles"]
        assert lat["mean"] > 0 and lat["p99"] <= lat["max"]
    for name in ("model.pt", "model.chip", "attack.json", "simulate.json", "summary.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text())["traffic"]["difference"]
    with Image.open(out / "traffic" / "difference_packets_in.png") as im:
        im.verify()


@pytest.mark.slow
def test_reuse_model_keeps_the_model_and_its_chip_image(tmp_path, capsys):
    out = tmp_path / "demo"
    run_demo(out, SIZES, progress=False)
    before = (out / "model.chip").stat().st_mtime_ns
    capsys.readouterr()
    run_demo(out, SIZES, progress=False, reuse_model=True)
    printed = capsys.readouterr().out
    assert "reusing" in printed and "compiling for" not in printed
    assert (out / "model.chip").stat().st_mtime_ns == before


def test_demo_refuses_a_missing_cifar_folder_before_making_its_output(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["demo", "--data-dir", str(tmp_path / "absent"), "--out", str(out)]) == 2
    assert "cifar" in capsys.readouterr().err.lower()
    assert not out.exists()
    assert main(["demo", "--download", "--out", str(out)]) == 2     # where would it go?
    assert "pass --data-dir" in capsys.readouterr().err
    assert not out.exists()
