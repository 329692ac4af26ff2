"""The chip image container: the one artifact between compiler/ and chipsim/.

    bytes 0..15   magic b"SPIKEMESH-CHIP\\0" + format byte
    bytes 16..47  SHA-256 of the payload
    bytes 48..    payload: an uncompressed-header .npz (numpy's zip) holding named integer arrays
                  and "__meta__", the UTF-8 JSON of the self-description

A truncated or altered file fails the checksum and is refused. numpy only: chipsim reads it
without torch, and nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from artifacts.atomic import write_atomic
from artifacts.errors import UserError

MAGIC = b"SPIKEMESH-CHIP\x00"
CONTAINER_VERSION = 1
HEADER = len(MAGIC) + 1 + 32

# The self-description inside the container (meta["format"], meta["format_version"]).
IMAGE_FORMAT = "spikemesh.chip"
IMAGE_VERSION = 2     # 2: the NoC spec gained router_cycles and credit_cycles
# Core roles as stored in "core.role": crossbar -> neurons; crossbar -> partial sums sent to a
# home core; graded partial sums (or host currents) -> neurons.
ROLES = ("neuron", "partial", "home")
ROLE_NEURON, ROLE_PARTIAL, ROLE_HOME = range(3)


def check_image_format(meta: dict[str, Any], where: str) -> None:
    """Refuse an image whose self-description is not one this spikemesh reads."""
    if meta.get("format") != IMAGE_FORMAT:
        raise UserError(f"{where} is not a spikemesh chip image (format {meta.get('format')!r})")
    if meta.get("format_version") != IMAGE_VERSION:
        raise UserError(f"{where} has chip image version {meta.get('format_version')}, this "
                        f"spikemesh reads version {IMAGE_VERSION}; recompile it")


def write_chip_image(path: str | Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> int:
    """Write atomically; return the file size in bytes."""
    if "__meta__" in arrays:
        raise ValueError("__meta__ is reserved")
    buf = io.BytesIO()
    meta_bytes = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    np.savez_compressed(buf, __meta__=meta_bytes, **arrays)
    payload = buf.getvalue()
    blob = MAGIC + bytes([CONTAINER_VERSION]) + hashlib.sha256(payload).digest() + payload
    write_atomic(path, lambda f: f.write(blob))
    return len(blob)


def read_chip_image(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read, checksum and validate a whole chip image (``artifacts.imagecheck``): what it
    returns is safe to hand to the simulator's native kernels."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"chip image {p} is a directory; pass the file written by `spikemesh compile`")
    if not p.is_file():
        raise UserError(f"chip image {p} does not exist; make one with "
                        f"`spikemesh compile MODEL.pt --out {p}`")
    blob = p.read_bytes()
    if len(blob) < HEADER or not blob.startswith(MAGIC):
        raise UserError(f"{p} is not a spikemesh chip image (bad magic); pass a file written by "
                        "`spikemesh compile`")
    if blob[len(MAGIC)] != CONTAINER_VERSION:
        raise UserError(f"{p} uses chip image container version {blob[len(MAGIC)]}, this spikemesh "
                        f"reads version {CONTAINER_VERSION}; recompile it")
    digest, payload = blob[len(MAGIC) + 1:HEADER], blob[HEADER:]
    if hashlib.sha256(payload).digest() != digest:
        raise UserError(f"{p} fails its checksum: the file is truncated or was altered; recompile it")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except Exception as exc:  # a valid checksum over a bad payload: a writer bug or an edit
        raise UserError(f"{p} has a valid checksum but an unreadable payload ({exc}); recompile it") from None
    check_image_format(meta, str(p))
    from artifacts.imagecheck import validate_image  # here: imagecheck imports this module

    validate_image(meta, arrays, str(p))
    return meta, arrays


def expand_crossbar(kind: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                    weights: np.ndarray, neurons: np.ndarray, axons: np.ndarray,
                    dtype: type = np.int64) -> np.ndarray:
    """A core's dense crossbar, ``dtype`` (len(axons), len(neurons)), C order; 0 where no
    synapse. ``dtype`` must hold every weight.

    This is the image format's definition of a core's synapses: the layer's integer weight
    tensor restricted to the core's axons (input indices after pool merge) and neurons (output
    indices). For a 3x3 convolution with padding 1, axon (c, iy, ix) reaches neuron (o, y, x)
    with weight W[o, c, iy - y + 1, ix - x + 1] when that tap lies in the kernel. Integer
    weights are odd, never 0, so 0 marks "no synapse".
    """
    if kind == "conv":
        _, h, w = in_shape
        c, rem = np.divmod(axons.astype(np.int64), h * w)
        iy, ix = np.divmod(rem, w)
        o, rem = np.divmod(neurons.astype(np.int64), h * w)
        y, x = np.divmod(rem, w)
        dy = iy[:, None] - y[None, :] + 1
        dx = ix[:, None] - x[None, :] + 1
        inside = (dy >= 0) & (dy < 3) & (dx >= 0) & (dx < 3)
        out = np.zeros((len(axons), len(neurons)), dtype=dtype)
        a_idx, n_idx = np.nonzero(inside)
        out[a_idx, n_idx] = weights[o[n_idx], c[a_idx], dy[a_idx, n_idx], dx[a_idx, n_idx]]
        return out
    w2 = weights.reshape(weights.shape[0], -1)
    return np.ascontiguousarray(w2[np.ix_(neurons.astype(np.int64), axons.astype(np.int64))].T,
                                dtype=dtype)


def merged_sources(prev_out_shape: tuple[int, ...], axons: np.ndarray) -> np.ndarray:
    """Pool merge in the image format: merged axon (c, y, x) of a layer with pooled input is
    driven by the 4 neurons (c, 2y+dy, 2x+dx) of the previous layer. Returns (A, 4) indices."""
    _, hp, wp = prev_out_shape
    h, w = hp // 2, wp // 2
    c, rem = np.divmod(axons.astype(np.int64), h * w)
    y, x = np.divmod(rem, w)
    return np.stack([(c * hp + 2 * y + dy) * wp + 2 * x + dx for dy in (0, 1) for dx in (0, 1)], 1)
