"""--resume continues a run exactly: the same weights, optimizer, schedule, data order,
augmentation and dropout as if it had never stopped; it refuses to change the options that
shape the run, and a longer --epochs re-plans the cosine instead of letting it rise again."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import training.hybrid as hybrid
import training.trainer as trainer
from artifacts.errors import UserError
from training.models import ModelConfig
from training.trainer import TrainConfig, train

QUIET = {"progress": False, "log": lambda *_: None}


def _shrink(mp: pytest.MonkeyPatch) -> None:
    """A small calibration batch for the conversion: fast, and not what these tests are about."""
    mp.setattr(hybrid, "CALIBRATION_IMAGES", 32)


@pytest.fixture(autouse=True)
def _small_and_fast(monkeypatch):
    _shrink(monkeypatch)


def _cfg(tmp_path, **kw) -> TrainConfig:
    # dropout on and augmentation on, so both random streams matter
    base = dict(model=ModelConfig(arch="vgg5", timesteps=2, weight_bits=4, dropout=0.2),
                train_size=64, val_size=50, eval_size=16, epochs=2, ann_epochs=1,
                batch_size=32, lr=1e-3, out=str(tmp_path / "run.pt"))
    return TrainConfig(**{**base, **kw})


def _state(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> str:
    cfg = _cfg(tmp_path_factory.mktemp("straight"))
    with pytest.MonkeyPatch.context() as mp:
        _shrink(mp)
        train(cfg, **QUIET)
    return cfg.out


@pytest.mark.parametrize("saves_before_stop", [1, 2])   # after the ANN phase; after SNN epoch 1
def test_an_interrupted_run_resumed_equals_the_uninterrupted_run(tmp_path, monkeypatch,
                                                                   uninterrupted,
                                                                   saves_before_stop):
    stopped = _cfg(tmp_path)
    real_save = trainer.save_checkpoint
    saves = []

    def save_then_stop(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(1)
        if len(saves) == saves_before_stop:
            raise _Stop
    monkeypatch.setattr(trainer, "save_checkpoint", save_then_stop)
    with pytest.raises(_Stop):
        train(stopped, **QUIET)
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    torch.manual_seed(12345)          # a resumed process starts from other random state
    train(dataclasses.replace(stopped, resume=True), **QUIET)

    a, b = _state(uninterrupted), _state(stopped.out)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ha = torch.load(uninterrupted, weights_only=True)["history"]
    hb = torch.load(stopped.out, weights_only=True)["history"]
    assert [h.get("train_loss") for h in ha] == [h.get("train_loss") for h in hb]


def test_resume_refuses_options_that_would_change_the_run(tmp_path):
    cfg = _cfg(tmp_path, epochs=1, ann_epochs=0)
    train(cfg, **QUIET)
    with pytest.raises(UserError, match=r"other --lr, --seed; resume with the options"):
        train(dataclasses.replace(cfg, lr=5e-4, seed=3, resume=True), **QUIET)
    with pytest.raises(UserError, match="different model configuration"):
        train(dataclasses.replace(cfg, model=ModelConfig(arch="vgg5", timesteps=3, weight_bits=4),
                                  resume=True), **QUIET)
    # where and how it runs may change, so a run can move between machines
    train(dataclasses.replace(cfg, epochs=2, eval_size=8, eval_every=2, threads=1, resume=True),
          **QUIET)


def test_more_epochs_stretch_the_cosine_instead_of_restarting_it(tmp_path):
    cfg = _cfg(tmp_path, epochs=1, ann_epochs=0)
    train(cfg, **QUIET)               # a finished 1-epoch run: its cosine is at zero
    seen = []
    real_step = torch.optim.Adam.step

    def record_lr(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)
    torch.optim.Adam.step = record_lr
    try:
        train(dataclasses.replace(cfg, epochs=3, resume=True), **QUIET)
    finally:
        torch.optim.Adam.step = real_step
    per_epoch = sorted(set(seen), reverse=True)
    want = [cfg.lr * (1 + math.cos(math.pi * e / 3)) / 2 for e in (1, 2)]
    assert per_epoch == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("damage", ["rng", "epoch", "optimizer", "moments", "step", "schedule",
                                    "arguments"])
def test_a_damaged_training_state_is_a_clear_error(tmp_path, damage):
    cfg = _cfg(tmp_path, epochs=1, ann_epochs=0)
    train(cfg, **QUIET)
    payload = torch.load(cfg.out, weights_only=True)
    if damage == "rng":
        payload["training"]["rng"]["data"] = torch.zeros(3, dtype=torch.uint8)
    elif damage == "epoch":
        payload["training"]["epoch"] = -4
    elif damage == "optimizer":
        payload["training"]["optimizer"] = {"state": {}, "param_groups": "nonsense"}
    elif damage == "moments":
        moments = payload["training"]["optimizer"]["state"][0]
        moments["exp_avg"] = moments["exp_avg"][:1]
    elif damage == "step":
        payload["training"]["optimizer"]["state"][0]["step"] = torch.tensor(-1.0)
    elif damage == "schedule":
        payload["training"]["scheduler"]["T_max"] = 0
    else:
        payload["training"]["noise"]["eps"] = torch.ones(3)
    torch.save(payload, cfg.out)
    with pytest.raises(UserError, match="--resume: .* holds a damaged training state"):
        train(dataclasses.replace(cfg, epochs=2, resume=True), **QUIET)
