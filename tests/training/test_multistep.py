"""The layer-major engine (training.multistep) against the step-by-step reference: logits, spike
counts, the input gradient and every parameter gradient agree to float rounding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.models import ModelConfig, build_model
from training.noise import NoiseConfig, train_step

TOL = 1e-4   # relative; fp32 sums over T and over the batch are taken in another order


def _both(cfg: ModelConfig, step):
    """Run ``step(model, x, y, generator)`` with each engine from the same seeds; return, per
    engine, (outputs, input gradient, parameter gradients)."""
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    x = torch.rand(3, 3, 32, 32)
    y = torch.randint(0, 10, (3,))
    out = {}
    for engine in ("reference", "multistep"):
        model.engine = engine
        model.zero_grad()
        torch.manual_seed(1)
        xx = x.clone().requires_grad_(True)
        res = step(model, xx, y, torch.Generator().manual_seed(2))
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        out[engine] = (res, None if xx.grad is None else xx.grad.clone(), grads)
    return out["reference"], out["multistep"]


def _close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    scale = a.abs().max().item() + 1e-12
    assert (a - b).abs().max().item() <= TOL * scale, what


def _plain(model, x, y, generator):
    record: dict[str, list[float]] = {}
    logits = model(x, record=record, generator=generator)
    F.cross_entropy(logits, y).backward()
    return logits.detach(), record


@pytest.mark.parametrize("encoding", ["direct", "rate", "phase", "latency"])
@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("trainable,bits,dropout", [(False, 4, 0.0), (True, None, 0.2)])
def test_multistep_equals_the_reference(encoding, reset, trainable, bits, dropout):
    cfg = ModelConfig(arch="vgg5", timesteps=3, encoding=encoding, reset=reset, theta_conv=0.3,
                      trainable_neurons=trainable, weight_bits=bits, dropout=dropout)
    (ref, ref_xg, ref_g), (fast, fast_xg, fast_g) = _both(cfg, _plain)
    _close(ref[0], fast[0], "logits")
    assert ref[1] == fast[1]                                    # spike counts, exactly
    assert all(s > 0 for s, _ in ref[1].values())               # every layer spikes
    _close(ref_xg, fast_xg, "input gradient")
    assert set(ref_g) == set(fast_g)
    assert {"conv_lifs.0.theta", "fc_lifs.0.leak"} <= set(ref_g) or not trainable
    for k in ref_g:
        _close(ref_g[k], fast_g[k], k)


@pytest.mark.parametrize("reset_between", [False, True])
@pytest.mark.parametrize("encoding,timesteps,periods,dropout", [("rate", 4, 2, 0.0),
                                                                ("direct", 5, 3, 0.2)])
def test_hire_periods_carry_membranes_alike(reset_between, encoding, timesteps, periods, dropout):
    """HIRE runs T in periods, the membranes carried (detached) from one to the next; the fast
    engine forms the linear layers' weight gradients once, from all periods' rows (PeriodRows),
    the reference adds one per period."""
    cfg = ModelConfig(arch="vgg5", timesteps=timesteps, encoding=encoding, theta_conv=0.3,
                      weight_bits=4, dropout=dropout)
    noise = NoiseConfig(kind="hire", eps=8 / 255, periods=periods,
                        reset_between_periods=reset_between)

    def step(model, x, y, generator):
        loss, logits = train_step(model, x.detach(), y, noise, generator)
        return logits.detach()

    (ref, _, ref_g), (fast, _, fast_g) = _both(cfg, step)
    _close(ref, fast, "logits")
    for k in ref_g:
        _close(ref_g[k], fast_g[k], k)


def test_a_carried_membrane_gets_its_leak_gradient():
    """A non-zero initial membrane u0 enters step 0 through the leak: d/dleak includes u0."""
    from training.multistep import LIFSequence

    torch.manual_seed(3)
    cur = torch.randn(5, 2, 7, dtype=torch.float64)
    u0 = torch.randn(2, 7, dtype=torch.float64)
    theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    leak = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    spikes, u = LIFSequence.apply(cur, u0, theta, leak, 1.0, True)
    w = torch.randn_like(spikes)
    (spikes * w).sum().backward()
    got = leak.grad.clone()
    # the same through plain autograd, step by step
    from training.neurons import LIF

    lif = LIF(0.7, 0.6, trainable=True).double()
    state, total = u0, 0.0
    for t in range(5):
        state, s = lif.step(state, cur[t])
        total = total + (s * w[t]).sum()
    total.backward()
    assert torch.allclose(got, lif.leak.grad) and torch.allclose(theta.grad, lif.theta.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])   # fused kernel, torch path
@pytest.mark.parametrize("soft", [True, False])
@pytest.mark.parametrize("constant,carried", [(True, False), (False, True)])
def test_pooled_and_constant_forms_equal_lif_then_pooling(dtype, soft, constant, carried):
    """LIFSequence's two shortcuts (spikes handed out 2x2-pooled; one step's current given for
    all steps) against the plain layer followed by average pooling: outputs, the current's,
    theta's, leak's and the carried membrane's gradients."""
    from training.multistep import LIFSequence

    torch.manual_seed(4)
    steps, shape = 3, (2, 5, 4, 6)                       # B, C, H, W: even H and W
    cl = torch.channels_last
    cur = (torch.randn(shape if constant else (steps, *shape), dtype=dtype) + 0.3)
    if not constant:
        cur = cur.flatten(0, 1).contiguous(memory_format=cl).unflatten(0, (steps, shape[0]))
    else:
        cur = cur.contiguous(memory_format=cl)
    u0 = torch.randn(shape, dtype=dtype).contiguous(memory_format=cl) if carried else None
    results = []
    for shortcut in (False, True):
        c = cur.clone().requires_grad_(True)
        u = None if u0 is None else u0.clone().requires_grad_(True)
        theta = torch.tensor(0.7, dtype=dtype, requires_grad=True)
        leak = torch.tensor(0.6, dtype=dtype, requires_grad=True)
        if shortcut:
            spikes, final = LIFSequence.apply(c, u, theta, leak, 1.0, soft,
                                              steps if constant else 0, True)
        else:
            full = c.expand(steps, *shape) if constant else c
            spikes, final = LIFSequence.apply(full, u, theta, leak, 1.0, soft)
            spikes = F.avg_pool2d(spikes.flatten(0, 1), 2).unflatten(0, (steps, shape[0]))
        torch.manual_seed(5)
        w = torch.randn(spikes.shape, dtype=dtype)
        ((spikes * w).sum() + (final * final).sum()).backward()
        results.append((spikes.detach(), final.detach(), c.grad, theta.grad, leak.grad,
                        None if u is None else u.grad))
    (ref, fast) = results
    assert torch.equal(ref[0], fast[0]) and torch.equal(ref[1], fast[1])
    assert ref[0].sum() > 0                                 # some neurons spiked
    for name, a, b in zip(("current", "theta", "leak", "u0"), ref[2:], fast[2:], strict=True):
        if a is not None:
            _close(a, b, name)


@pytest.mark.parametrize("soft", [True, False])
def test_fused_kernels_equal_the_torch_path_across_chunks(soft):
    """The float32 kernels (chunks of 4,096 neurons, the last one partial) against the same
    layer on the torch path in float64: spikes exactly, every gradient to float32 rounding (a
    carried membrane gets none: HIRE carries it detached)."""
    from training.lif_kernels import CHUNK
    from training.multistep import LIFSequence

    torch.manual_seed(6)
    cur = torch.randn(4, 2 * CHUNK + 123) + 0.4
    u0 = torch.randn(cur.shape[1])
    w = torch.randn(cur.shape)
    results = []
    for dtype in (torch.float32, torch.float64):
        c = cur.to(dtype, copy=True).requires_grad_(True)
        u = u0.to(dtype, copy=True)
        theta = torch.tensor(0.7, dtype=dtype, requires_grad=True)
        leak = torch.tensor(0.6, dtype=dtype, requires_grad=True)
        spikes, final = LIFSequence.apply(c, u, theta, leak, 1.0, soft)
        ((spikes * w.to(dtype)).sum() + (final * final).sum()).backward()
        results.append([t.detach().double() for t in (spikes, final, c.grad, theta.grad,
                                                      leak.grad)])
    (fast, ref) = results
    assert torch.equal(fast[0], ref[0]) and fast[0].sum() > 0
    for name, a, b in zip(("final", "current", "theta", "leak"), ref[1:], fast[1:], strict=True):
        _close(a, b, name)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_period_rows_form_the_weight_gradient_of_all_periods(dtype, tol):
    """PeriodRows: earlier periods give the weight no gradient, the last gives the sum over all
    periods' rows; input gradients are the plain layer's. ``dtype`` is the product's precision
    (bf16 rounds each period's gradient in the plain layer, the sum once here)."""
    from training.multistep import PeriodRows
    from training.precision import linear

    torch.manual_seed(4)
    w = torch.randn(6, 9)
    xs = [(torch.rand(t, 2, 9) < 0.4).float().requires_grad_(True) for t in (3, 2, 1)]
    gs = [torch.randn(t, 2, 6) for t in (3, 2, 1)]
    w_plain = w.clone().requires_grad_(True)
    for x, g in zip(xs, gs, strict=True):
        linear(x, w_plain, dtype).backward(g)
    x_plain = [x.grad.clone() for x in xs]

    w_rows = w.clone().requires_grad_(True)
    rows = PeriodRows()
    for i, (x, g) in enumerate(zip(xs, gs, strict=True)):
        x.grad = None
        rows.last = i == len(xs) - 1
        rows.linear(0, x, w_rows, dtype).backward(g)
        assert (w_rows.grad is None) != rows.last             # only the last period adds one
        _close(x_plain[i], x.grad, "input gradient")
    assert w_rows.grad.dtype == torch.float32
    scale = w_plain.grad.abs().max().item()
    assert (w_rows.grad - w_plain.grad).abs().max().item() <= tol * scale
    assert not rows.rows[0]                                  # the rows are let go
