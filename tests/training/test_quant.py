import numpy as np
import torch

from training.quant import fake_quantize, q_k, quantize_codes


def levels(k: int) -> list[float]:
    x = torch.linspace(-1, 1, 10001)
    return sorted(set(round(v, 6) for v in q_k(x, k).tolist()))


def test_level_set_k2_is_exact():
    assert levels(2) == [-1.0, round(-1 / 3, 6), round(1 / 3, 6), 1.0]


def test_level_set_k4_is_the_16_odd_fifteenths():
    assert levels(4) == [round(v / 15, 6) for v in range(-15, 16, 2)]


def test_k1_is_binary_and_no_level_is_zero():
    assert levels(1) == [-1.0, 1.0]
    for k in range(1, 9):
        assert 0.0 not in levels(k)
        assert len(levels(k)) == 2**k


def test_codes_round_half_up_and_clip():
    # (2^2 - 1) * (x + 1) / 2 = 1.5 exactly at x = 0: half-up gives code 2
    assert quantize_codes(torch.tensor([0.0, -5.0, 5.0]), 2).tolist() == [2.0, 0.0, 3.0]


def test_fake_quantize_scales_by_layer_max_and_passes_gradient_straight_through():
    w = torch.tensor([0.5, -0.25, 0.1, -0.5], requires_grad=True)
    wq = fake_quantize(w, 2)
    alpha = 0.5
    assert torch.allclose(wq, alpha * torch.tensor([1.0, -1 / 3, 1 / 3, -1.0]))
    wq.sum().backward()
    assert torch.equal(w.grad, torch.ones(4))


def test_the_fused_cpu_forward_equals_the_torch_expression_bit_for_bit():
    from training.quant import _fake_quantize_torch

    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(1024, 300, generator=g),            # several parallel chunks
               torch.randn(64, 3, 3, 3, generator=g) * 1e-3,
               torch.rand(7, generator=g) - 0.5,
               torch.zeros(5),                                  # alpha clamps to 1e-12
               torch.tensor([1.0, -1.0, 0.0, 1 / 3, -1 / 3, 0.2, 0.6])]  # ties of k = 2
    # weights exactly on the rounding boundaries of every bit width
    for k in range(1, 9):
        n = (1 << k) - 1
        tensors.append(torch.tensor([2 * (c + 0.5) / n - 1 for c in range(n)]))
    for w in tensors:
        for k in range(1, 9):
            fused, spec = fake_quantize(w, k), _fake_quantize_torch(w, k)
            assert torch.equal(fused, spec), (tuple(w.shape), k)


def test_the_fused_forward_keeps_shape_and_gradient_and_leaves_the_weights_alone():
    w = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    before = w.detach().clone()
    wq = fake_quantize(w, 4)
    assert wq.shape == w.shape and wq.dtype == torch.float32
    (wq * torch.arange(wq.numel()).view_as(wq)).sum().backward()
    assert torch.equal(w.grad, torch.arange(w.numel(), dtype=torch.float32).view_as(w))
    assert torch.equal(w.detach(), before)
    # the 16 levels, up to the rounding of w + (wq - w) that the straight-through form adds
    alpha = w.detach().abs().max()
    assert torch.allclose(wq.detach(), alpha * q_k(w.detach() / alpha, 4), rtol=0, atol=1e-6)


def test_the_fused_max_magnitude_equals_the_float_max_and_passes_over_nan():
    """training.quant._max_abs takes the max on bit patterns; it must be the float max of the
    magnitudes (negative zero, subnormals and infinities included), NaN passed over, clamped
    at 1e-12."""
    from training.quant import _max_abs

    g = torch.Generator().manual_seed(3)
    w = torch.randn(300_001, generator=g)                     # several chunks and a short one
    w[123_456] = -7.25                                         # the largest is a negative one
    cases = [w, torch.tensor([-0.0, 0.0]), torch.tensor([1e-40, -3e-40]),
             torch.tensor([3e-40, -2e-12, 1e-45]), torch.tensor([2.0, float("-inf"), 1.0]),
             torch.tensor([0.5, float("nan"), -0.75])]
    expected = [7.25, 1e-12, 1e-12, 2e-12, float("inf"), 0.75]
    for t, want in zip(cases, expected, strict=True):
        got = _max_abs(t.numpy())
        assert got == np.float32(want), (t[:4], got)
    w[7] = float("nan")                                         # NaN in a big chunk, too
    assert _max_abs(w.numpy()) == np.float32(7.25)
