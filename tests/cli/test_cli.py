"""The `spikemesh` command: help, clear one-line errors, and the train/attack round trip."""

import json
import subprocess
import sys

import pytest
import torch

from spikemesh.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_help_lists_the_commands():
    res = subprocess.run([sys.executable, "-m", "spikemesh.cli", "--help"],
                         capture_output=True, text=True, check=True)
    for cmd in ("train", "attack", "demo", "bench"):
        assert cmd in res.stdout


@pytest.mark.parametrize("make_bad,match", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_bytes(b"\x00not a checkpoint"), "not a readable checkpoint"),
    (lambda p: torch.save({"x": 1}, p), "not a spikemesh checkpoint"),
])
def test_bad_checkpoint_is_one_line_and_exit_2(tmp_path, capsys, make_bad, match):
    path = tmp_path / "m.pt"
    make_bad(path)
    code, out, err = run_cli(capsys, "attack", str(path), "--quiet")
    assert code == 2
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_dataset_dir_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--dataset", "cifar10", "--data-dir", str(tmp_path),
                           "--out", str(tmp_path / "m.pt"), "--quiet")
    assert code == 2 and "no CIFAR-10 found" in err
    assert not (tmp_path / "m.pt").exists()


def test_bf16_without_native_bf16_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    from training import precision

    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: False)
    code, _, err = run_cli(capsys, "train", "--precision", "bf16", "--out", str(tmp_path / "m.pt"),
                           "--quiet")
    assert code == 2 and "no native bfloat16" in err and err.count("\n") == 1
    assert not (tmp_path / "m.pt").exists()


def test_bad_theta_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--theta", "0.4,1.0", "--out", str(tmp_path / "m.pt"))
    assert code == 2 and "three numbers" in err


def test_train_resume_and_attack_json(tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    common = ["train", "--train-size", "64", "--val-size", "50", "--eval-size", "32", "-T", "1",
              "--weight-bits", "4", "--out", str(out), "--quiet"]
    code, stdout, _ = run_cli(capsys, *common, "--epochs", "1")
    assert code == 0 and out.exists() and "epoch 1/1" in stdout
    code, stdout, _ = run_cli(capsys, *common, "--epochs", "2", "--resume")
    assert code == 0 and "resuming" in stdout and "epoch 2/2" in stdout
    payload = torch.load(out, weights_only=True)
    assert payload["training"]["epoch"] == 2 and len(payload["history"]) == 2

    report = tmp_path / "attack.json"
    code, stdout, _ = run_cli(capsys, "attack", str(out), "--n", "20", "--eps", "2,8",
                              "--json", str(report), "--quiet")
    assert code == 0 and "algo" in stdout and "quant (4-bit)" in stdout and "hw (4-bit)" in stdout
    data = json.loads(report.read_text())
    assert data["attack"] == "fgsm" and data["n"] == 20
    assert data["chip_image"] == "compiled in memory for pku-nc64c"
    for level in ("algo", "quant", "hw"):
        lv = data["levels"][level]
        assert set(lv["eps"]) == {"2", "8"}
        assert {"adv_acc", "adv_loss"} <= set(lv["eps"]["2"])
        assert {"clean_acc", "spike_activity", "nsr"} <= set(lv)


def test_eval_every_validates_every_nth_epoch_and_the_last(tmp_path, capsys):
    out = tmp_path / "e.pt"
    code, stdout, _ = run_cli(capsys, "train", "--train-size", "32", "--val-size", "50",
                              "--eval-size", "16", "-T", "1", "--epochs", "3", "--eval-every", "2",
                              "--weight-bits", "4", "--out", str(out), "--quiet")
    assert code == 0 and "epoch 1/3: " in stdout and "not validated" in stdout
    history = torch.load(out, weights_only=True)["history"]
    assert [h["val_acc_quant"] is not None for h in history] == [False, True, True]
    assert [h["val_images"] for h in history] == [0, 16, 16]


def test_quant_level_of_a_float_model_needs_bits(tmp_path, capsys):
    out = tmp_path / "float.pt"
    assert run_cli(capsys, "train", "--train-size", "32", "--val-size", "50", "--eval-size", "16",
                   "-T", "1", "--epochs", "1", "--out", str(out), "--quiet")[0] == 0
    code, _, err = run_cli(capsys, "attack", str(out), "--n", "8", "--quiet")
    assert code == 2 and "--weight-bits" in err
    code, stdout, _ = run_cli(capsys, "attack", str(out), "--n", "8", "--weight-bits", "2",
                              "--eps", "8", "--levels", "algo,quant", "--quiet")
    assert code == 0 and "quant (2-bit)" in stdout


@pytest.mark.slow      # a benchmark's smoke test; the engines it times are tested in tests/training
def test_bench_training_quick(capsys):
    code, out, _ = run_cli(capsys, "bench", "training", "--quick")
    assert code == 0 and "hire / none epoch time" in out
    assert "| 4 | 32 |" in out and "GFLOP/s" in out and "### Training step" in out
    assert "| multistep bf16 |" in out or "not measured: this CPU has no native bfloat16" in out
    assert "SNN step: float vs 4-bit QAT" in out and "| fused vs torch |" in out


@pytest.mark.slow      # a benchmark's smoke test; what it times is tested in tests/evaluation
def test_bench_attack_quick(trained_synthetic, capsys):
    code, out, _ = run_cli(capsys, "bench", "attack", "--quick", "--model",
                           str(trained_synthetic[0]))
    assert code == 0 and "Adding hw:" in out and "hw source gradient / quant gradient" in out
    assert "chip queries/s" in out
