"""VGG-style spiking networks built from a layer-list config.

Topology (PAPERS.md B, DIET-SNN family): 3x3 convolutions with padding 1, no bias, no batch
norm; 2x2 average pooling; a classifier of fully connected LIF layers; an output layer that
integrates its membrane without spiking, read out as the mean over T steps.

The VGG5 classifier is 8192-1024-10 (Kim 2022) rather than DIET-SNN's 8192-4096-4096-10:
on a chip with 1,024 fan-in slots and 1 Mbit of synapse memory per core, the wide classifier
needs ~50M synapses (~200 cores at 4 bits) for no accuracy gain on CIFAR-10 at this depth,
while 8192-1024-10 needs 8.4M (~33 cores). See README.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from artifacts.limits import MAX_TIMESTEPS
from training.encoders import ENCODINGS, encode
from training.neurons import LIF
from training.quant import MAX_BITS, check_bits, fake_quantize

if TYPE_CHECKING:
    from training.multistep import PeriodRows

POOL = "A"
ARCHS: dict[str, tuple[tuple[int | str, ...], tuple[int, ...]]] = {
    # features (conv channels, "A" = 2x2 average pool), classifier hidden sizes
    "vgg5": ((64, POOL, 128, 128, POOL), (1024,)),
    "vgg9": ((64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL), (1024,)),
}
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored verbatim in every checkpoint."""

    arch: str = "vgg5"
    timesteps: int = 4
    encoding: str = "direct"
    theta_conv: float = 0.4   # PAPERS.md A: best VGG5 structure (0.4, 1.0, 0.5)
    theta_fc: float = 1.0
    leak: float = 0.5
    reset: str = "soft"
    trainable_neurons: bool = False
    surrogate_scale: float = 1.0
    weight_bits: int | None = None   # None: float training; k: k-bit QAT
    dropout: float = 0.2
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32
    mean: tuple[float, ...] = CIFAR_MEAN
    std: tuple[float, ...] = CIFAR_STD

    def __post_init__(self) -> None:
        """Every field typed and in range: a config also arrives from a checkpoint file."""
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ValueError(what)

        def integer(v: Any, lo: int, hi: int) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

        def number(v: Any) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

        need(self.arch in ARCHS, f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        need(self.encoding in ENCODINGS,
             f"unknown encoding {self.encoding!r}; choose one of {', '.join(ENCODINGS)}")
        need(integer(self.timesteps, 1, MAX_TIMESTEPS),
             f"timesteps must be an integer in 1..{MAX_TIMESTEPS}, got {self.timesteps!r}")
        for name in ("theta_conv", "theta_fc", "surrogate_scale"):
            v = getattr(self, name)
            need(number(v) and v > 0, f"{name} must be a positive finite number, got {v!r}")
        need(number(self.leak) and 0 < self.leak <= 1, f"leak must lie in (0, 1], got {self.leak!r}")
        need(self.reset in ("soft", "hard"), f"reset must be soft or hard, got {self.reset!r}")
        need(isinstance(self.trainable_neurons, bool), "trainable_neurons must be true or false")
        need(self.weight_bits is None or integer(self.weight_bits, 1, MAX_BITS),
             f"weight bits must be 1..{MAX_BITS} or none, got {self.weight_bits!r}")
        need(number(self.dropout) and 0 <= self.dropout < 1,
             f"dropout must lie in [0, 1), got {self.dropout!r}")
        need(integer(self.num_classes, 2, 1 << 16), f"num_classes must be 2..65536, got {self.num_classes!r}")
        need(integer(self.in_channels, 1, 64), f"in_channels must be 1..64, got {self.in_channels!r}")
        need(integer(self.image_size, 1, 1024), f"image_size must be 1..1024, got {self.image_size!r}")
        need(len(self.mean) == self.in_channels and len(self.std) == self.in_channels,
             "mean and std need one value per input channel")
        need(all(map(number, self.mean)) and all(number(v) and v > 0 for v in self.std),
             "mean must be finite and std positive and finite")
        pools = sum(1 for f in ARCHS[self.arch][0] if f == POOL)
        need(self.image_size % (1 << pools) == 0,
             f"image size {self.image_size} is not divisible by 2^{pools}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(ModelConfig)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        d = dict(d)
        for key in ("mean", "std"):
            if key in d:
                if not isinstance(d[key], list | tuple):
                    raise ValueError(f"{key} must be a list of numbers")
                d[key] = tuple(d[key])
        return ModelConfig(**d)

    @property
    def features(self) -> tuple[int | str, ...]:
        return ARCHS[self.arch][0]

    @property
    def hidden(self) -> tuple[int, ...]:
        return ARCHS[self.arch][1]


class SpikingVGG(nn.Module):
    """A VGG SNN. ``forward(x)`` takes pixels in [0, 1] (normalization is inside the model),
    resets all neuron state, runs T steps and returns logits (B, classes)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        lif = dict(reset=cfg.reset, trainable=cfg.trainable_neurons,
                   surrogate_scale=cfg.surrogate_scale)
        self.convs = nn.ModuleList()
        self.conv_lifs = nn.ModuleList()
        c_in, size = cfg.in_channels, cfg.image_size
        for f in cfg.features:
            if f == POOL:
                size //= 2
                continue
            self.convs.append(nn.Conv2d(c_in, int(f), 3, padding=1, bias=False))
            self.conv_lifs.append(LIF(cfg.theta_conv, cfg.leak, **lif))
            c_in = int(f)
        n_in = c_in * size * size
        self.fcs = nn.ModuleList()
        self.fc_lifs = nn.ModuleList()
        for h in cfg.hidden:
            self.fcs.append(nn.Linear(n_in, h, bias=False))
            self.fc_lifs.append(LIF(cfg.theta_fc, cfg.leak, **lif))
            n_in = h
        self.out = nn.Linear(n_in, cfg.num_classes, bias=False)
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(cfg.std).view(1, -1, 1, 1))
        # Which weights the forward pass uses: None = float (Q1), k = k-bit (Q2).
        self.quant_bits: int | None = cfg.weight_bits
        # How run() computes: "multistep" (training.multistep, layer-major, the default) or
        # "reference" (step by step, below: the specification the fast path is tested against).
        self.engine = "multistep"
        # The multistep engine's convolutions and linear layers compute in this dtype in
        # training mode (bfloat16 with --precision bf16: training.precision); evaluation, and
        # the reference engine always, compute in float32.
        self.train_dtype = torch.float32
        self._init_weights()

    def product_dtype(self, x: torch.Tensor) -> torch.dtype:
        """The dtype the multistep engine's and the ANN's products compute in for input ``x``:
        ``train_dtype`` in training mode, x's own (float32) in evaluation."""
        return self.train_dtype if self.training else x.dtype

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="linear")

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    # -- views -------------------------------------------------------------------------
    def set_quantization(self, bits: int | None) -> None:
        """Forward with k-bit weights (Q2) or float weights (None, Q1)."""
        self.quant_bits = None if bits is None else check_bits(bits)

    def layer_names(self) -> list[str]:
        """Spiking layers in order: conv1.., fc1.. (the output layer does not spike)."""
        return ([f"conv{i + 1}" for i in range(len(self.convs))]
                + [f"fc{i + 1}" for i in range(len(self.fcs))])

    def effective_weights(self) -> list[torch.Tensor]:
        """Weights as the forward pass uses them (quantized when a bit width is set)."""
        ws = [m.weight for m in (*self.convs, *self.fcs, self.out)]
        if self.quant_bits is None:
            return ws
        return [fake_quantize(w, self.quant_bits) for w in ws]

    # -- simulation ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *, record: dict[str, list[float]] | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        logits, _ = self.run(x, record=record, generator=generator)
        return logits

    def run(self, x: torch.Tensor, *, steps: int | None = None, t0: int = 0,
            state: dict[str, torch.Tensor] | None = None,
            record: dict[str, list[float]] | None = None,
            generator: torch.Generator | None = None,
            currents: dict[str, torch.Tensor] | None = None,
            period_rows: PeriodRows | None = None
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run ``steps`` time steps (default T) starting at step ``t0``.

        ``state`` None resets every membrane (the normal case); passing the returned state
        continues a simulation, which HIRE noise training uses across its periods.
        ``record`` accumulates, per spiking layer, [total spikes, neurons x steps x batch].
        ``currents`` receives each spiking layer's input currents (multistep engine only).
        ``period_rows`` defers the linear layers' weight gradients to the last of HIRE's periods
        (training.multistep.PeriodRows; multistep engine only).
        """
        cfg = self.cfg
        steps = cfg.timesteps if steps is None else steps
        state = {} if state is None else dict(state)
        if self.engine == "multistep":
            from training.multistep import run_multistep

            return run_multistep(self, x, steps=steps, t0=t0, state=state, record=record,
                                 generator=generator, currents=currents,
                                 period_rows=period_rows)
        if currents is not None or period_rows is not None:
            raise ValueError("currents and period_rows are for the multistep engine only")
        weights = self.effective_weights()
        conv_w, fc_w, out_w = (weights[:len(self.convs)],
                               weights[len(self.convs):-1], weights[-1])
        masks = self._dropout_masks(x.shape[0], x.device, x.dtype)
        direct_current = None
        if cfg.encoding == "direct":
            # The analog input is the same every step, so conv1's current is computed once.
            direct_current = F.conv2d((x - self.mean) / self.std, conv_w[0], padding=1)
        acc = torch.zeros(x.shape[0], cfg.num_classes, dtype=x.dtype, device=x.device)
        for t in range(t0, t0 + steps):
            h = None
            ci = 0
            for f in cfg.features:
                if f == POOL:
                    h = F.avg_pool2d(h, 2)
                    continue
                if ci == 0:
                    cur = (direct_current if direct_current is not None else
                           F.conv2d(encode(x, cfg.encoding, t, cfg.timesteps, generator),
                                    conv_w[0], padding=1))
                else:
                    cur = F.conv2d(h, conv_w[ci], padding=1)
                name = f"conv{ci + 1}"
                state[name], h = self.conv_lifs[ci].step(state.get(name), cur)
                _record(record, name, h)
                ci += 1
            h = h.flatten(1)
            for j, (w, lif) in enumerate(zip(fc_w, self.fc_lifs, strict=True)):
                name = f"fc{j + 1}"
                state[name], h = lif.step(state.get(name), F.linear(h, w))
                _record(record, name, h)
                if masks is not None:
                    h = h * masks[j]
            acc = acc + F.linear(h, out_w)
        return acc / steps, state

    def _dropout_masks(self, batch: int, device, dtype) -> list[torch.Tensor] | None:
        # One mask per forward pass, shared by all time steps (a dropped neuron stays dropped).
        p = self.cfg.dropout
        if not self.training or p <= 0:
            return None
        return [torch.bernoulli(torch.full((batch, h), 1 - p, device=device, dtype=dtype)) / (1 - p)
                for h in self.cfg.hidden]


def _record(record: dict[str, list[float]] | None, name: str, spikes: torch.Tensor,
            pooled: bool = False) -> None:
    """Add a layer's spike count and neuron-steps to ``record``. ``pooled``: ``spikes`` are the
    layer's spikes 2x2-averaged (multiples of 1/4, so their sum times 4 is the count exactly)."""
    if record is None:
        return
    entry = record.setdefault(name, [0.0, 0.0])
    if pooled:
        entry[0] += float(spikes.detach().sum(dtype=torch.float64)) * 4
        entry[1] += float(spikes.numel()) * 4
    else:
        entry[0] += float(spikes.detach().sum(dtype=torch.float64))   # exact, bf16 spikes too
        entry[1] += float(spikes.numel())


def spike_activity(record: dict[str, list[float]]) -> dict[str, float]:
    """Mean spikes per neuron per time step, per layer, from a ``record`` dict."""
    return {name: (s / n if n else 0.0) for name, (s, n) in record.items()}


def build_model(cfg: ModelConfig) -> SpikingVGG:
    return SpikingVGG(cfg)
