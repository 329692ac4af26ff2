"""The `hw` attack source: the integer model in torch is the chip's arithmetic exactly, and its
straight-through gradient is finite, non-zero and the BPTT of the stated surrogate."""

import numpy as np
import pytest
import torch

from compiler.reference import run_reference
from spikemesh.evaluation.integer_torch import IntegerTorchModel, _IntegerLIF
from tests.helpers import integer_model, norm_of, random_images, random_layers, tiny_spec


def _model(seed, encoding, input_path="graded", reset="soft", leak=0.5, bits=4,
           theta=(0.4, 1.0), timesteps=4):
    rng = np.random.default_rng(seed)
    layers = random_layers(rng, leak=leak, theta=theta)
    return integer_model(layers, encoding=encoding, bits=bits, reset=reset, timesteps=timesteps,
                         spec=tiny_spec(input_path=input_path))


@pytest.mark.parametrize("encoding,input_path,reset,leak,bits", [
    ("direct", "graded", "soft", 0.5, 4), ("direct", "host", "hard", 0.75, 8),
    ("phase", "graded", "soft", 0.3, 2), ("latency", "graded", "hard", 1.0, 4),
    ("direct", "graded", "hard", 0.3, 1)])
def test_accumulators_equal_the_integer_reference_bit_for_bit(encoding, input_path, reset, leak,
                                                              bits):
    model = _model(3, encoding, input_path, reset, leak, bits)
    images = random_images(np.random.default_rng(1), 12)
    ref = run_reference(model, images, norm=norm_of(3))
    tm = IntegerTorchModel(model, *norm_of(3))
    acc = tm.accumulators(torch.from_numpy(images).float() / 255)
    assert np.array_equal(acc.detach().numpy().astype(np.int64), ref.logits)


@pytest.mark.parametrize("encoding,input_path", [("direct", "graded"), ("direct", "host"),
                                                 ("rate", "graded"), ("phase", "graded"),
                                                 ("latency", "graded")])
def test_straight_through_input_gradient_is_finite_and_non_zero(encoding, input_path):
    # low thresholds and 8 steps: every layer spikes, so a zero gradient would be a bug
    model = _model(5, encoding, input_path, theta=(0.05, 0.1), timesteps=8)
    images = random_images(np.random.default_rng(2), 8)
    ref = run_reference(model, images, rng=np.random.default_rng(0), norm=norm_of(3))
    assert all(c.sum() > 0 for c in ref.spike_counts.values())
    tm = IntegerTorchModel(model, *norm_of(3))
    x = torch.from_numpy(images).float() / 255
    x.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(tm(x, generator=torch.Generator().manual_seed(0)),
                                             torch.arange(8) % model.num_classes)
    (g,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, theta, unit):
        ctx.save_for_backward(w)
        ctx.theta, ctx.unit = theta, unit
        return (w > theta).double()

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return g * torch.clamp(1 - torch.abs(w / ctx.theta - 1), min=0) * ctx.unit, None, None


def _autograd_lif(cur, layer, lo, hi):
    """The same straight-through rules written with torch autograd, step by step."""
    lam, theta = layer.leak.value, float(layer.threshold)
    u = torch.zeros_like(cur[0])
    out = []
    for t in range(cur.shape[0]):
        exact = torch.floor(u.detach() * layer.leak.multiplier / (1 << layer.leak.shift))
        v = (u * lam) + (exact - u * lam).detach() + cur[t]
        w = v + (v.detach().clamp(lo, hi) - v).detach()
        s = _Spike.apply(w, theta, layer.scale)
        u = w - theta * s if layer.reset == "soft" else w * (1 - s)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("reset,leak", [("soft", 0.5), ("hard", 0.75), ("soft", 1.0)])
def test_fused_integer_lif_matches_its_autograd_definition(reset, leak):
    model = _model(7, "direct", reset=reset, leak=leak)
    layer = model.layers[1]
    lo, hi = model.membrane_limits
    rng = np.random.default_rng(0)
    cur = torch.from_numpy(rng.integers(-layer.threshold, 2 * layer.threshold,
                                        (6, 3, 50)).astype(np.float64))
    grad_out = torch.from_numpy(rng.normal(size=(6, 3, 50)))
    a = cur.clone().requires_grad_(True)
    s_fused = _IntegerLIF.apply(a, layer, lo, hi)
    (g_fused,) = torch.autograd.grad((s_fused.double() * grad_out).sum(), a)
    b = cur.clone().requires_grad_(True)
    s_ref = _autograd_lif(b, layer, lo, hi)
    (g_ref,) = torch.autograd.grad((s_ref * grad_out).sum(), b)
    assert torch.equal(s_fused.double(), s_ref)
    assert s_ref.sum() > 0 and g_ref.abs().sum() > 0
    torch.testing.assert_close(g_fused, g_ref, rtol=1e-4, atol=1e-6)
