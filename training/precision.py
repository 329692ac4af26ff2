"""Arithmetic precision of training's convolutions and matrix products.

``--precision bf16`` computes every convolution and linear layer of a *training* step in
bfloat16 (inputs and weights cast, products accumulated in float32 by oneDNN or cuBLAS, the
result cast back to float32); the LIF recurrences, the loss, the optimizer and the float shadow
weights stay float32, and evaluation (validation, attacks, the chip comparison) always runs in
float32. Spikes are 0/1 and exact in bfloat16; what rounds is the weights (8-bit mantissa, far
finer than a 4-bit code's steps) and the direct-encoded input pixels. On the CPU the multistep
engine keeps the convolutions' currents and spikes in bfloat16 and its LIF kernels read and
write them so (training.multistep.BF16_KERNEL_IO): the same values as casting around them, a
fifth less time.

It pays only where the hardware multiplies bfloat16 natively (x86 AVX512_BF16 or AMX, Arm
BF16, CUDA GPUs): measured on a Zen 4 core, the VGG5 convolutions' forward+backward run
1.6-1.9x faster in bf16. Without native support oneDNN has to convert every operand in software,
which is expected to be slower than float32 (not measured: this machine has it), so ``bf16`` is
refused there and ``auto`` chooses bf16 only where it is native.
"""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

from artifacts.errors import UserError

PRECISIONS = ("fp32", "bf16", "auto")


@cache
def native_bf16_cpu() -> bool:
    """Whether this CPU multiplies bfloat16 natively (read from the OS, never guessed)."""
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"],
                                 capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return False
        return out == "1"
    try:
        return bf16_in_cpuinfo(Path("/proc/cpuinfo").read_text(), platform.machine())
    except OSError:
        return False


def bf16_in_cpuinfo(cpuinfo: str, machine: str) -> bool:
    """Whether a Linux /proc/cpuinfo lists native bfloat16: x86 AVX512_BF16 or AMX-BF16,
    Arm FEAT_BF16 ("bf16" among the Features)."""
    x86 = machine.lower() in ("x86_64", "amd64", "i386", "i686")
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            return bool(flags & {"avx512_bf16", "amx_bf16"}) if x86 else "bf16" in flags
    return False


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The dtype of training's products for ``--precision name`` on ``device``."""
    if name not in PRECISIONS:
        raise UserError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name == "fp32":
        return torch.float32
    native = (torch.cuda.is_bf16_supported() if device.type == "cuda" else native_bf16_cpu())
    if name == "bf16" and not native:
        raise UserError("--precision bf16: this machine has no native bfloat16 arithmetic, so it "
                        "would run slower than float32; use --precision fp32 (or auto)")
    return torch.bfloat16 if native else torch.float32


def conv2d(x: torch.Tensor, w: torch.Tensor, dtype: torch.dtype,
           out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """3x3 'same' convolution computed in ``dtype``, returned in ``out_dtype`` (x's dtype by
    default)."""
    out_dtype = x.dtype if out_dtype is None else out_dtype
    if dtype == x.dtype == out_dtype == w.dtype:
        return F.conv2d(x, w, padding=1)
    return F.conv2d(x.to(dtype), w.to(dtype), padding=1).to(out_dtype)


def linear(x: torch.Tensor, w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x @ w.T computed in ``dtype``, returned in x's dtype."""
    if dtype == x.dtype == w.dtype:
        return F.linear(x, w)
    return F.linear(x.to(dtype), w.to(dtype)).to(x.dtype)
