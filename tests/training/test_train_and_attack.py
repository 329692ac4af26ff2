"""End to end on the synthetic dataset: a short training run must beat a stated accuracy, and
FGSM at eps 16/255 must lower it (algorithm levels; the chip level: tests/evaluation)."""

import pytest
import torch

from spikemesh.evaluation.run import AttackRequest, run_attack
from spikemesh.evaluation.spec import AttackSpec
from tests.conftest import E2E_MIN_ACCURACY
from training.attacks import fgsm, pgd, random_targets, rfgsm
from training.checkpoint import load_checkpoint
from training.data import load_dataset
from training.evaluate import accuracy, to_float


def test_short_training_beats_the_stated_accuracy(trained_synthetic):
    _, metrics = trained_synthetic
    assert metrics["val_acc_float"] >= E2E_MIN_ACCURACY, metrics
    assert metrics["val_acc_quant"] >= E2E_MIN_ACCURACY - 10, metrics


def test_checkpoint_rebuilds_with_the_recorded_accuracy(trained_synthetic):
    path, metrics = trained_synthetic
    ckpt = load_checkpoint(path)
    val = load_dataset("synthetic", val_size=500).val
    ckpt.model.set_quantization(None)
    assert abs(accuracy(ckpt.model, val) - metrics["val_acc_float"]) < 1e-6


def test_fgsm_16_lowers_accuracy_and_reports_the_table(trained_synthetic):
    path, _ = trained_synthetic
    ckpt = load_checkpoint(path)
    val = load_dataset("synthetic", val_size=500).val.head(100)
    result = run_attack(AttackRequest(str(path), AttackSpec("fgsm", eps=(2, 16)),
                                      levels=("algo", "quant"), n=100),
                        log=lambda _: None, progress=False)
    x, y = val.images.float() / 255.0, val.labels
    for level, bits in (("algo", None), ("quant", 4)):
        lv = result["levels"][level]
        assert lv["eps"]["16"]["adv_acc"] < lv["clean_acc"] - 10, lv
        # recomputed here, independently of the table code: FGSM on direct encoding is
        # deterministic, so the same images give the same accuracies
        ckpt.model.set_quantization(bits)
        with torch.no_grad():
            clean = 100.0 * float((ckpt.model(x).argmax(1) == y).float().mean())
        x_adv = fgsm(ckpt.model, x, y, 16 / 255)
        with torch.no_grad():
            adv = 100.0 * float((ckpt.model(x_adv).argmax(1) == y).float().mean())
        assert lv["clean_acc"] == pytest.approx(clean) and lv["eps"]["16"]["adv_acc"] == pytest.approx(adv)
        assert lv["eps"]["16"]["adv_loss"] == pytest.approx(clean - adv)
        assert set(lv["spike_activity"]) == {"conv1", "conv2", "conv3", "fc1"}
        assert set(lv["nsr"]["16"]) == set(lv["spike_activity"])
    assert result["levels"]["quant"]["weight_bits"] == 4


def test_attacks_stay_in_the_eps_ball_and_pixel_range(trained_synthetic):
    path, _ = trained_synthetic
    model = load_checkpoint(path).model
    val = load_dataset("synthetic", val_size=500).val
    x, y = to_float(val.images[:16]), val.labels[:16]
    eps = 8 / 255
    g = torch.Generator().manual_seed(0)
    for x_adv in (fgsm(model, x, y, eps), rfgsm(model, x, y, eps, generator=g),
                  pgd(model, x, y, eps, steps=3, generator=g),
                  fgsm(model, x, y, eps, target=random_targets(y, 10, g))):
        assert (x_adv - x).abs().max() <= eps + 1e-6
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        assert (x_adv != x).any()
        # on the chip's 8-bit grid: every pixel a whole grey level
        assert (x_adv * 255 - torch.round(x_adv * 255)).abs().max() < 1e-4


def test_a_fraction_of_a_grey_level_is_refused(trained_synthetic):
    model = load_checkpoint(trained_synthetic[0]).model
    x, y = torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="whole number of grey levels"):
        fgsm(model, x, y, 2.5 / 255)


def test_random_targets_never_equal_the_label():
    y = torch.arange(10).repeat(50)
    t = random_targets(y, 10, torch.Generator().manual_seed(0))
    assert (t != y).all() and set(t.tolist()) == set(range(10))
