import pytest
import torch

from training.models import ModelConfig, build_model, spike_activity


@pytest.mark.parametrize("arch,layers", [("vgg5", ["conv1", "conv2", "conv3", "fc1"]),
                                         ("vgg9", [f"conv{i}" for i in range(1, 8)] + ["fc1"])])
def test_architectures_build_and_run(arch, layers):
    model = build_model(ModelConfig(arch=arch, timesteps=2)).eval()
    rec: dict = {}
    out = model(torch.rand(2, 3, 32, 32), record=rec)
    assert out.shape == (2, 10)
    assert model.layer_names() == layers == list(rec)
    assert all(0.0 <= v <= 1.0 for v in spike_activity(rec).values())


def test_no_batch_norm_and_no_bias():
    model = build_model(ModelConfig(arch="vgg9"))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert all(getattr(m, "bias", None) is None for m in model.modules()
               if isinstance(m, torch.nn.Conv2d | torch.nn.Linear))


def test_state_is_reset_between_forward_passes():
    torch.manual_seed(0)
    model = build_model(ModelConfig(timesteps=3)).eval()
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(model(x), model(x))


def test_running_in_two_halves_with_carried_state_equals_one_run():
    torch.manual_seed(0)
    model = build_model(ModelConfig(timesteps=4, encoding="phase")).eval()
    x = torch.rand(2, 3, 32, 32)
    full, _ = model.run(x)
    a, state = model.run(x, steps=2)
    b, _ = model.run(x, steps=2, t0=2, state=state)
    assert torch.allclose(full, (a + b) / 2, atol=1e-6)


def test_quantized_view_uses_k_bit_weights():
    torch.manual_seed(0)
    model = build_model(ModelConfig(timesteps=2, weight_bits=2))
    w = model.effective_weights()[1]
    alpha = model.convs[1].weight.abs().max()
    assert len(torch.unique(torch.round(w / alpha * 3))) == 4
    model.set_quantization(None)
    assert model.effective_weights()[1] is model.convs[1].weight


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="unknown arch"):
        ModelConfig(arch="vgg11")
    with pytest.raises(ValueError, match="weight bits"):
        ModelConfig(weight_bits=9)
