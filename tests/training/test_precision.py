"""--precision: native-bf16 detection, the choice it makes, and what bf16 changes (training
products only; evaluation stays float32)."""

import pytest
import torch
import torch.nn.functional as F

from artifacts.errors import UserError
from training import precision
from training.models import ModelConfig, build_model

ZEN4 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n"
SAPPHIRE = "flags\t\t: avx2 avx512f amx_bf16 amx_tile\n"
NEOVERSE_V1 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
NEOVERSE_N1 = "processor\t: 0\nFeatures\t: fp asimd atomics\n"


def test_cpuinfo_flags_decide_native_bf16():
    assert precision.bf16_in_cpuinfo(ZEN4, "x86_64")
    assert precision.bf16_in_cpuinfo(SAPPHIRE, "x86_64")
    assert not precision.bf16_in_cpuinfo(SKYLAKE, "x86_64")   # AVX-512 alone emulates bf16
    assert precision.bf16_in_cpuinfo(NEOVERSE_V1, "aarch64")
    assert not precision.bf16_in_cpuinfo(NEOVERSE_N1, "aarch64")
    assert not precision.bf16_in_cpuinfo("", "x86_64")


@pytest.mark.parametrize("native", [True, False])
def test_resolve_precision(monkeypatch, native):
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: native)
    cpu = torch.device("cpu")
    assert precision.resolve_precision("fp32", cpu) == torch.float32
    assert precision.resolve_precision("auto", cpu) == (torch.bfloat16 if native else torch.float32)
    if native:
        assert precision.resolve_precision("bf16", cpu) == torch.bfloat16
    else:
        with pytest.raises(UserError, match="no native bfloat16.*--precision fp32"):
            precision.resolve_precision("bf16", cpu)
    with pytest.raises(UserError, match="unknown precision 'fp16'"):
        precision.resolve_precision("fp16", cpu)


def _model(bits=4, dropout=0.2):
    torch.manual_seed(0)
    return build_model(ModelConfig(arch="vgg5", timesteps=2, weight_bits=bits, theta_conv=0.3,
                                   theta_fc=0.3, dropout=dropout))


def _step(model, x, y, dtype):
    """One training forward+backward: logits, spike record, input currents, gradients."""
    model.train_dtype = dtype
    model.zero_grad(set_to_none=True)
    record, currents = {}, {}
    torch.manual_seed(5)                                      # the same dropout masks
    logits, _ = model.run(x, record=record, currents=currents)
    F.cross_entropy(logits, y).backward()
    return logits.detach(), record, currents, [p.grad.clone() for p in model.parameters()
                                               if p.grad is not None]


def test_bf16_training_step_follows_float32_and_evaluation_stays_float32():
    """bf16 rounds conv1's current by ~2^-8; deeper layers differ by the spikes those roundings
    flip (a spiking network is not continuous in its inputs), so the check is layer by layer:
    conv1 currents to bf16 rounding, spike counts to 2%, gradients pointing the same way."""
    torch.manual_seed(1)
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    model = _model()
    model.train()
    ref = _step(model, x, y, torch.float32)
    low = _step(model, x, y, torch.bfloat16)
    assert low[0].dtype == torch.float32
    assert not torch.equal(low[0], ref[0])                    # bf16 did compute something
    c_ref, c_low = ref[2]["conv1"], low[2]["conv1"]
    assert (c_low - c_ref).abs().max() < 1e-2 * c_ref.abs().max()
    for name, (spikes, _) in ref[1].items():
        assert abs(low[1][name][0] - spikes) <= 0.02 * spikes, name
    for g_ref, g_low in zip(ref[3], low[3], strict=True):
        assert g_low.dtype == torch.float32
        assert F.cosine_similarity(g_ref.flatten(), g_low.flatten(), dim=0) > 0.7
    model.eval()
    with torch.no_grad():
        model.train_dtype = torch.bfloat16
        evaluated = model(x)
        model.train_dtype = torch.float32
        assert torch.equal(evaluated, model(x))               # evaluation ignores train_dtype


def test_bf16_ann_phase_follows_float32():
    from training.hybrid import ann_forward

    torch.manual_seed(2)
    x = torch.rand(8, 3, 32, 32)
    model = _model(bits=None, dropout=0.0)
    model.train()
    ref = ann_forward(model, x)
    model.train_dtype = torch.bfloat16
    low = ann_forward(model, x)
    assert low.dtype == torch.float32 and not torch.equal(low, ref)
    assert (low - ref).abs().max() < 0.02 * ref.abs().max()  # ReLU is continuous


@pytest.mark.parametrize("encoding,reset,trainable,bits,dropout,hire", [
    ("direct", "soft", False, 4, 0.2, False),
    ("rate", "hard", True, None, 0.0, False),
    ("direct", "soft", True, 4, 0.0, True),
])
def test_bf16_kernel_io_is_bit_for_bit_the_casts_around_the_kernels(
        monkeypatch, encoding, reset, trainable, bits, dropout, hire):
    """Under bf16 the LIF kernels read the convolutions' bf16 currents and write bf16 spikes
    and gradients themselves (training.multistep.BF16_KERNEL_IO); the step must be exactly the
    one that casts every tensor to float32 and back around them: logits, spike counts, every
    gradient, HIRE's carried membranes and trainable neurons included."""
    from training import multistep
    from training.noise import NoiseConfig, train_step

    torch.manual_seed(3)
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="vgg5", timesteps=4, encoding=encoding, reset=reset,
                                    trainable_neurons=trainable, weight_bits=bits,
                                    dropout=dropout, theta_conv=0.3, theta_fc=0.3))
    model.train()
    model.train_dtype = torch.bfloat16
    noise = NoiseConfig("hire", eps=8 / 255, periods=2) if hire else NoiseConfig("none")
    results = []
    for kernel_io in (True, False):
        monkeypatch.setattr(multistep, "BF16_KERNEL_IO", kernel_io)
        model.zero_grad(set_to_none=True)
        torch.manual_seed(5)
        if hire:
            _, logits = train_step(model, x, y, noise, torch.Generator().manual_seed(6))
            record = None
        else:
            record = {}
            logits, _ = model.run(x, record=record, generator=torch.Generator().manual_seed(6))
            F.cross_entropy(logits, y).backward()
        results.append((logits.detach(), record,
                        {k: p.grad.clone() for k, p in model.named_parameters()
                         if p.grad is not None}))
    (l1, r1, g1), (l2, r2, g2) = results
    assert l1.dtype == torch.float32 and torch.equal(l1, l2)
    assert r1 == r2
    assert set(g1) == set(g2) and len(g1) >= 5
    for k in g1:
        assert g1[k].dtype == torch.float32 and torch.equal(g1[k], g2[k]), k
