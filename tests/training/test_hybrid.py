"""ANN-to-SNN hybrid initialisation: the ANN shares the SNN's weights, thresholds are balanced
on the SNN's own currents, and the history records the ANN and converted accuracies."""

from __future__ import annotations

import pytest
import torch

from training.checkpoint import load_checkpoint
from training.hybrid import PERCENTILE, ann_forward, balance_thresholds
from training.models import ModelConfig, build_model
from training.trainer import TrainConfig, train


def test_the_ann_is_the_snn_topology_on_the_same_weights():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="vgg5", timesteps=2))
    model.eval()
    x = torch.rand(2, 3, 32, 32)
    before = ann_forward(model, x)
    with torch.no_grad():
        model.out.weight.mul_(2)               # the ANN reads the SNN's tensors, not copies
    assert torch.allclose(ann_forward(model, x), 2 * before, atol=1e-5)


def test_balanced_thresholds_sit_at_the_percentile_of_each_layers_currents():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="vgg5", timesteps=4))
    x = torch.rand(16, 3, 32, 32)
    chosen = balance_thresholds(model, x)
    assert list(chosen) == model.layer_names()
    currents: dict[str, torch.Tensor] = {}
    record: dict[str, list[float]] = {}
    with torch.no_grad():
        model.run(x, currents=currents, record=record)
    for name, lif in zip(model.layer_names(), [*model.conv_lifs, *model.fc_lifs], strict=True):
        assert float(lif.theta) == chosen[name]
        pos = currents[name][currents[name] > 0]
        above = float((pos > lif.theta).float().mean())
        assert abs(above - (1 - PERCENTILE)) < 0.02, (name, above)
        assert record[name][0] > 0, f"{name} is silent after balancing"


def test_ann_epochs_record_the_conversion_and_the_checkpoint_keeps_it(tmp_path):
    out = tmp_path / "h.pt"
    cfg = TrainConfig(model=ModelConfig(arch="vgg5", timesteps=2, weight_bits=4),
                      train_size=96, val_size=50, eval_size=32, epochs=1, ann_epochs=1,
                      batch_size=32, out=str(out))
    train(cfg, progress=False, log=lambda *_: None)
    ckpt = load_checkpoint(out)
    first, last = ckpt.history[0], ckpt.history[-1]
    assert first["phase"] == "ann-to-snn" and last["phase"] == "snn"
    for key in ("ann_val_acc", "converted_val_acc_float", "converted_val_acc_quant", "seconds"):
        assert isinstance(first[key], float), key
    # thresholds were set by the conversion, then trained on (fixed here: not trainable)
    assert float(ckpt.model.conv_lifs[1].theta) == first["thresholds"]["conv2"]
    # --resume after the ANN phase does not run it again
    cfg2 = TrainConfig(**{**cfg.__dict__, "epochs": 2, "resume": True})
    train(cfg2, progress=False, log=lambda *_: None)
    assert [h["phase"] for h in load_checkpoint(out).history] == ["ann-to-snn", "snn", "snn"]


def test_weight_decay_reaches_the_ann_phase():
    from training.data import load_dataset
    from training.hybrid import train_ann

    data = load_dataset("synthetic", synthetic_train=128, val_size=32)

    def trained(decay: float) -> float:
        torch.manual_seed(0)
        model = build_model(ModelConfig(arch="vgg5", timesteps=2))
        train_ann(model, data.train, epochs=1, batch_size=32, lr=1e-3, augment=False,
                  generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
                  weight_decay=decay, progress=False, log=lambda *_: None)
        return float(model.fcs[0].weight.detach().norm())

    assert trained(0.5) < 0.9 * trained(0.0)


def test_an_unknown_ann_schedule_is_refused():
    from training.data import load_dataset
    from training.hybrid import train_ann

    data = load_dataset("synthetic", synthetic_train=32, val_size=8)
    with pytest.raises(ValueError, match="unknown ANN learning-rate schedule 'linear'"):
        train_ann(build_model(ModelConfig(arch="vgg5", timesteps=2)), data.train, epochs=1,
                  batch_size=32, lr=1e-3, augment=False, generator=torch.Generator(),
                  device=torch.device("cpu"), lr_schedule="linear", progress=False)
