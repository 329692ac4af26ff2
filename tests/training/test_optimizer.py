"""training.optimizer: the fused Adam follows torch's plain Adam, and a plain Adam's saved state
resumes on the fused path."""

import copy

import pytest
import torch

from training.optimizer import adam, load_adam_state


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=g)) for shape in ((64, 3, 3, 3), (10, 256))]


def _steps(opt: torch.optim.Optimizer, params, n: int, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()


def test_fused_on_cpu_and_equal_to_plain_adam():
    fused, plain = _params(), _params()
    opt_f = adam(fused, lr=1e-2, weight_decay=5e-4)
    opt_p = torch.optim.Adam(plain, lr=1e-2, weight_decay=5e-4)
    assert opt_f.param_groups[0]["fused"] is True
    _steps(opt_f, fused, 20)
    _steps(opt_p, plain, 20)
    for a, b, start in zip(fused, plain, _params(), strict=True):
        assert not torch.equal(a, start)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_plain_state_resumes_fused_and_continues_the_same_run():
    """A checkpoint written before Adam was fused holds fused=None in its groups, which
    load_state_dict would copy over; the loaded optimizer must stay fused and continue the run."""
    plain = _params()
    opt_p = torch.optim.Adam(plain, lr=1e-2)
    _steps(opt_p, plain, 5)
    saved = copy.deepcopy(opt_p.state_dict())   # as from a file: no tensors shared with opt_p
    assert saved["param_groups"][0]["fused"] is None

    resumed = [torch.nn.Parameter(p.detach().clone()) for p in plain]
    opt_r = adam(resumed, lr=1e-2)
    load_adam_state(opt_r, saved)
    assert opt_r.param_groups[0]["fused"] is True
    _steps(opt_r, resumed, 5, seed=2)
    _steps(opt_p, plain, 5, seed=2)
    for a, b in zip(resumed, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_state_with_other_groups_is_refused():
    opt = adam(_params(), lr=1e-3)
    state = opt.state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        load_adam_state(opt, {**state, "param_groups": state["param_groups"] * 2})
    with pytest.raises(ValueError, match="parameter groups"):
        load_adam_state(opt, {**state, "param_groups": "x"})
