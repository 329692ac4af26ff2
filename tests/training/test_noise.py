import pytest
import torch

from training.models import ModelConfig, build_model
from training.noise import NoiseConfig, period_lengths, train_step


def test_period_lengths_cover_all_steps():
    assert period_lengths(8, 2) == [4, 4]
    assert period_lengths(5, 2) == [3, 2]
    assert period_lengths(3, 5) == [1, 1, 1]


@pytest.mark.parametrize("kind", ["none", "uniform", "hire"])
def test_every_noise_kind_produces_parameter_gradients(kind):
    torch.manual_seed(0)
    model = build_model(ModelConfig(timesteps=4)).train()
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    loss, logits = train_step(model, x, y, NoiseConfig(kind, eps=8 / 255, periods=2))
    assert torch.isfinite(loss) and logits.shape == (4, 10)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.convs.parameters())


def test_hire_runs_exactly_t_forward_steps(monkeypatch):
    """HIRE costs no extra passes: the periods together run T steps, not N x T."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(timesteps=6)).train()
    calls = []
    real_run = model.run

    def counting_run(x, **kw):
        calls.append(kw.get("steps"))
        return real_run(x, **kw)

    monkeypatch.setattr(model, "run", counting_run)
    train_step(model, torch.rand(2, 3, 32, 32), torch.tensor([0, 1]),
               NoiseConfig("hire", periods=3))
    assert calls == [2, 2, 2]


def test_bad_noise_config_is_refused():
    with pytest.raises(ValueError, match="unknown noise"):
        NoiseConfig("gaussian")
