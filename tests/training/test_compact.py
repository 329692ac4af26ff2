"""Shipped checkpoints (training.compact): int8 weight codes that keep every k-bit code, read
back by every reader as float weights, and refused with one sentence when damaged."""

import pytest
import torch

from artifacts.errors import UserError
from compiler.checkpoint import read_checkpoint
from training.checkpoint import load_checkpoint, save_checkpoint
from training.compact import encode_int8, export_compact, kbit_codes
from training.models import ModelConfig, build_model


def _saved(tmp_path, bits=4, seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch="vgg5", timesteps=2, weight_bits=bits)).eval()
    path = tmp_path / "float.pt"
    save_checkpoint(path, model, dataset={"name": "synthetic"}, metrics={"val_acc_quant": 50.0},
                    training={"epoch": 3, "optimizer": {"state": {}}})
    return model, path


@pytest.mark.parametrize("bits", [1, 2, 4, 6])
def test_int8_codes_keep_every_kbit_code(bits):
    torch.manual_seed(bits)
    w = torch.randn(64, 128) * 0.05
    w[3, 5] = 0.0                       # exactly on the boundary between the two middle codes
    codes, scale = encode_int8(w, bits)
    assert codes.dtype == torch.int8 and int(codes.abs().max()) == 127
    back = codes.to(torch.float32) * scale
    assert torch.equal(kbit_codes(back, bits), kbit_codes(w, bits))
    assert float((back - w).abs().max()) <= 1.5 * float(scale)


def test_export_shrinks_and_every_reader_sees_the_same_model(tmp_path):
    model, src = _saved(tmp_path)
    dst = tmp_path / "ship.pt"
    info = export_compact(src, dst)
    assert info["bytes"] < src.stat().st_size / 3.5
    ckpt = load_checkpoint(dst)
    assert "optimizer" not in ckpt.training and ckpt.metrics["val_acc_quant"] == 50.0
    x = torch.rand(3, 3, 32, 32)
    model.set_quantization(4)
    ckpt.model.set_quantization(4)
    for a, b in zip(model.effective_weights(), ckpt.model.effective_weights(), strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=0)    # same codes, scale to float rounding
    assert torch.allclose(model(x), ckpt.model(x), rtol=1e-4, atol=1e-5)
    compiled = read_checkpoint(dst)                       # the compiler's reader
    ws = ckpt.model.state_dict()
    for layer, w in zip(compiled.network.layers, compiled.weights, strict=True):
        assert torch.equal(torch.from_numpy(w).float(), ws[layer.weight])


def test_export_refuses_its_own_input_and_8_bit_models(tmp_path):
    _, src = _saved(tmp_path)
    with pytest.raises(UserError, match="other than the input"):
        export_compact(src, src)
    _, src8 = _saved(tmp_path / "..", bits=8)
    with pytest.raises(UserError, match="8-bit weights"):
        export_compact(src8, tmp_path / "x.pt")


def _tampered(tmp_path, edit):
    _, src = _saved(tmp_path)
    dst = tmp_path / "ship.pt"
    export_compact(src, dst)
    payload = torch.load(dst, weights_only=True)
    edit(payload)
    torch.save(payload, dst)
    return dst


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["int8_weights"]["out.weight"].update(codes=torch.zeros(10, 1024)), "not an int8"),
    (lambda p: p["int8_weights"]["out.weight"].update(scale=torch.tensor(float("nan"))),
     "positive finite"),
    (lambda p: p["int8_weights"]["out.weight"].update(scale=torch.tensor(-1.0)), "positive finite"),
    (lambda p: p["int8_weights"]["out.weight"].pop("scale"), "not {codes, scale}"),
    (lambda p: p["state_dict"].update({"out.weight": torch.zeros(10, 1024)}), "both"),
    (lambda p: p.update(int8_weights=[1, 2]), "not a dict"),
    (lambda p: p["int8_weights"]["out.weight"].update(codes=torch.zeros(3, 3, dtype=torch.int8)),
     "do not fit"),
])
def test_damaged_int8_entries_are_refused(tmp_path, edit, message):
    dst = _tampered(tmp_path, edit)
    with pytest.raises(UserError, match=message):
        load_checkpoint(dst)


def test_a_format_1_checkpoint_exports_with_its_layer_list(tmp_path):
    _, src = _saved(tmp_path)
    payload = torch.load(src, weights_only=True)
    payload.pop("layers")
    payload["format_version"] = 1
    torch.save(payload, src)
    dst = tmp_path / "ship.pt"
    export_compact(src, dst)
    assert read_checkpoint(dst).network.layers[0].name == "conv1"   # the compiler reads it
