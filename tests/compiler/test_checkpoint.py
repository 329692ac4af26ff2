"""The compiler reads a .pt through its explicit layer list, checks every value, and refuses
a damaged one in one sentence; format-1 checkpoints are converted, not guessed at."""

import math

import pytest
import torch

from artifacts.errors import UserError
from artifacts.layers import parse_layer_list
from compiler.checkpoint import read_checkpoint
from training.checkpoint import layer_list, load_checkpoint, save_checkpoint, upgrade
from training.models import ModelConfig, build_model


@pytest.fixture
def saved(tmp_path):
    model = build_model(ModelConfig(arch="vgg5", timesteps=3, encoding="phase", weight_bits=3,
                                    theta_conv=0.5, leak=0.75))
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, dataset={"name": "synthetic", "val_size": 100})
    return path, model


def test_the_layer_list_describes_the_network_and_its_weights(saved):
    path, model = saved
    ckpt = read_checkpoint(path)
    net = ckpt.network
    assert (net.timesteps, net.encoding, net.num_classes) == (3, "phase", 10)
    assert [l.name for l in net.layers] == ["conv1", "conv2", "conv3", "fc1", "out"]
    assert [l.pooled_input for l in net.layers] == [False, True, False, True, False]
    conv2, fc1 = net.layers[1], net.layers[3]
    assert conv2.in_shape == (64, 16, 16) and conv2.out_shape == (128, 16, 16)
    assert fc1.in_shape == (128 * 8 * 8,) and fc1.out_shape == (1024,)
    assert all(l.weight_bits == 3 and l.reset == "soft" for l in net.layers)
    assert conv2.threshold == 0.5 and conv2.leak == 0.75 and fc1.threshold == 1.0
    sd = model.state_dict()
    for l, w in zip(net.layers, ckpt.weights, strict=True):
        assert torch.equal(torch.from_numpy(w), sd[l.weight].double())


def _rewrite(path, edit):
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


@pytest.mark.parametrize("edit,match", [
    (lambda p: p["layers"]["layers"][1].update(kind="lstm"), "kind 'lstm'"),
    (lambda p: p["layers"]["layers"][1].update(in_shape=[64, 32, 32]), "its input is"),
    (lambda p: p["layers"]["layers"][2].update(threshold=math.nan), "non-finite"),
    (lambda p: p["layers"]["layers"][0].update(weight_bits=9), "weight_bits 9"),
    (lambda p: p["layers"].update(timesteps=10**6), "timesteps"),
    (lambda p: p["layers"].update(version=7), "layer list version 7"),
    (lambda p: p["state_dict"].pop("convs.1.weight"), "convs.1.weight' is missing"),
    (lambda p: p["state_dict"].update({"fcs.0.weight": torch.zeros(3, 3)}), r"has shape \(3, 3\)"),
    (lambda p: p["state_dict"]["out.weight"].fill_(math.inf), "non-finite weights"),
])
def test_a_damaged_checkpoint_is_one_clear_sentence(saved, edit, match):
    path, _ = saved
    _rewrite(path, edit)
    with pytest.raises(UserError, match=match) as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value)


def test_a_format_1_checkpoint_loads_in_training_and_is_converted_for_the_compiler(saved, tmp_path):
    path, model = saved

    def to_v1(p):
        p.pop("layers")
        p["format_version"] = 1
    _rewrite(path, to_v1)
    assert load_checkpoint(path).config.timesteps == 3        # training still reads it
    with pytest.raises(UserError, match="convert it with `python -m training.checkpoint upgrade"):
        read_checkpoint(path)
    new = tmp_path / "new.pt"
    upgrade(path, new)
    assert read_checkpoint(new).network == layer_list(model.cfg, model.state_dict())
    with pytest.raises(UserError, match="other than the input"):
        upgrade(path, path)


def test_training_never_saves_a_non_finite_model(tmp_path):
    model = build_model(ModelConfig(timesteps=1))
    with torch.no_grad():
        model.convs[0].weight[0, 0, 0, 0] = math.nan
    with pytest.raises(UserError, match="NaN or inf"):
        save_checkpoint(tmp_path / "bad.pt", model, dataset={})
    assert not (tmp_path / "bad.pt").exists()


def test_the_layer_list_round_trips_through_its_dict(saved):
    path, model = saved
    net = layer_list(model.cfg, model.state_dict())
    assert parse_layer_list(net.to_dict(), "here") == net
