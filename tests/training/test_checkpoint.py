import pytest
import torch

from artifacts.errors import UserError
from training.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from training.models import ModelConfig, build_model


def _model():
    torch.manual_seed(0)
    return build_model(ModelConfig(arch="vgg5", timesteps=2, encoding="rate", weight_bits=3,
                                   theta_conv=0.6, leak=0.75)).eval()


def test_round_trip_rebuilds_the_same_model(tmp_path):
    model = _model()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, dataset={"name": "synthetic", "class_names": list("abcdefghij")},
                    metrics={"val_acc_float": 12.5})
    ckpt = load_checkpoint(path)
    assert ckpt.config == model.cfg
    assert ckpt.class_names == list("abcdefghij")
    assert ckpt.metrics["val_acc_float"] == 12.5
    x = torch.rand(2, 3, 32, 32)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(model(x, generator=g1), ckpt.model(x, generator=g2))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _model(), dataset={})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_foreign_pt_is_refused(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(UserError, match="not a spikemesh checkpoint"):
        load_checkpoint(path)


def test_unknown_format_version_is_refused(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "format_version": 99, "model_config": {}, "state_dict": {}}, path)
    with pytest.raises(UserError, match="format version 99"):
        load_checkpoint(path)


def test_wrong_weight_shapes_are_refused(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _model(), dataset={})
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["convs.0.weight"] = torch.zeros(5, 3, 3, 3)
    torch.save(payload, path)
    with pytest.raises(UserError, match="weights do not fit"):
        load_checkpoint(path)
