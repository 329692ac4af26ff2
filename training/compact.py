"""Shipped checkpoints: a trained .pt rewritten with its weights as int8 codes (about 4x smaller).

VGG5's classifier alone holds 8.4M weights, 34 MB in float32, while a shipped model must stay
under 10 MB. Each weight tensor W is stored as q = round(W / s), s = max|W| / 127, an int8 code
in -127..127 with one float32 scale (artifacts.checkpointfile reads it back as q * s), so

- the algorithm level (float weights) runs on W at 8-bit resolution, within s / 2 of the trained
  float weights (1.5 s for a nudged one, below), and
- the k-bit view is exactly the trained one: every weight keeps the k-bit code QAT gave it. The
  largest |W| maps to exactly +-127, so max|q * s| = 127 s and the per-layer k-bit scale is the
  trained one to float rounding; a code that rounding to the int8 grid moved into a neighbouring
  k-bit bin (where W lay within s / 2 of a bin edge) is nudged back by one step, and the whole
  tensor is checked against the trained codes.

Optimizer state is dropped (a shipped model is for evaluation; fine-tuning restarts the optimizer).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from artifacts.atomic import write_atomic
from artifacts.checkpointfile import INT8_WEIGHTS, int8_view
from artifacts.errors import UserError
from training.checkpoint import FORMAT_VERSION, layer_list, load_checkpoint, read_payload
from training.quant import layer_scale, quantize_codes

INT8_MAX = 127
MAX_BITS = 6           # a k-bit bin is 254 / (2^k - 1) int8 steps wide: >= 4 up to 6 bits
NUDGE_ROUNDS = 4       # one step back always suffices at those widths; checked, never assumed


def kbit_codes(w: torch.Tensor, bits: int) -> torch.Tensor:
    """The k-bit codes QAT's forward pass gives ``w`` (training.quant.fake_quantize's)."""
    return quantize_codes(w / layer_scale(w), bits)


def encode_int8(w: torch.Tensor, bits: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 codes and float32 scale for ``w``; with ``bits``, its k-bit codes are kept exactly."""
    w = w.detach().to(torch.float32).cpu()
    scale = (layer_scale(w) / INT8_MAX).to(torch.float32)
    q = torch.round(w / scale).clamp_(-INT8_MAX, INT8_MAX)
    if bits is None:
        return q.to(torch.int8), scale
    target = kbit_codes(w, bits)
    for _ in range(NUDGE_ROUNDS):
        got = kbit_codes(int8_view(q, scale, torch), bits)
        wrong = got != target
        if not bool(wrong.any()):
            return q.to(torch.int8), scale
        q = torch.where(wrong, (q + torch.sign(target - got)).clamp(-INT8_MAX, INT8_MAX), q)
    raise ValueError(f"{int(wrong.sum())} weights could not keep their {bits}-bit code at int8 "
                     "resolution")


def export_compact(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Write ``src``'s model to ``dst`` with int8-coded weights; returns a summary (sizes, the
    largest weight change, and that every k-bit code survived)."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise UserError("export writes a new file; pass an output path other than the input")
    if dst.is_dir():
        raise UserError(f"output {dst} is a directory; pass a file path such as {dst / src.name}")
    if not dst.parent.is_dir():
        raise UserError(f"output folder {dst.parent} does not exist; create it first")
    payload = read_payload(src)
    ckpt = load_checkpoint(src)           # every check a loaded model gets
    bits = ckpt.config.weight_bits
    if bits is not None and bits > MAX_BITS:
        raise UserError(f"{src} has {bits}-bit weights; int8 export keeps k-bit codes exactly only up "
                        f"to {MAX_BITS} bits, so ship the float checkpoint as it is")
    state = {k: v.detach().cpu() for k, v in ckpt.model.state_dict().items()}
    packed: dict[str, dict[str, torch.Tensor]] = {}
    max_err = 0.0
    for layer in layer_list(ckpt.config, state).layers:   # format-1 files have no list stored
        key = layer.weight
        w = state.pop(key)
        codes, scale = encode_int8(w, bits)
        packed[key] = {"codes": codes, "scale": scale}
        max_err = max(max_err, float((int8_view(codes, scale, torch) - w).abs().max() / scale))
    training = {k: v for k, v in payload.get("training", {}).items()
                if k not in ("optimizer", "scheduler")}
    out = {**payload, "format_version": FORMAT_VERSION, "state_dict": state, INT8_WEIGHTS: packed,
           "layers": layer_list(ckpt.config, ckpt.model.state_dict()).to_dict(),
           "training": training, "exported_from": src.name}
    buf = io.BytesIO()
    torch.save(out, buf)
    write_atomic(dst, lambda f: f.write(buf.getvalue()))
    back = load_checkpoint(dst).model.state_dict()   # read back through the readers' path
    if bits is not None:
        trained_state = ckpt.model.state_dict()
        for key in packed:
            trained = kbit_codes(trained_state[key], bits)
            if not torch.equal(kbit_codes(back[key], bits), trained):
                dst.unlink()
                raise ValueError(f"{key}: the exported {bits}-bit codes differ from the trained ones")
    return {"bytes": dst.stat().st_size, "source_bytes": src.stat().st_size,
            "max_error_in_steps": max_err, "bits": bits, "tensors": len(packed)}
