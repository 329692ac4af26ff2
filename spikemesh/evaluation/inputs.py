"""Adversarial inputs on disk: `attack --save-inputs adv.npz` writes them, `--inputs adv.npz`
re-evaluates them.

An .npz of plain arrays, read with allow_pickle=False (a planted object array is refused, never
unpickled): ``labels`` int64 (N,), ``clean`` uint8 (N, C, H, W), one ``adv/<set>/<eps>`` uint8
per input set and eps, and ``provenance``, a JSON text: the attack and its options, the source
of each set and the level that read it, the model (name and SHA-256), the dataset and split,
the batch size and seed (so a re-evaluation draws the same encoder randomness). Every array is
checked against the provenance and the model before use, and every adversarial image against
its eps ball: a file claiming eps 2 whose images moved 3 grey levels is refused.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from artifacts.atomic import write_atomic
from artifacts.errors import UserError

FORMAT = "spikemesh-adversarial-inputs"
VERSION = 1
MAX_IMAGES = 1 << 20
MAX_UNPACKED = 4 << 30      # bytes: what the arrays may unpack to (a zip bomb is refused)


def save_inputs(path: str | Path, clean: np.ndarray, labels: np.ndarray,
                inputs: dict[str, dict[int, np.ndarray]], provenance: dict[str, Any]) -> None:
    arrays = {"labels": labels.astype(np.int64), "clean": clean.astype(np.uint8)}
    for key, per_eps in inputs.items():
        for e, x in per_eps.items():
            arrays[f"adv/{key}/{e}"] = x.astype(np.uint8)
    meta = {"format": FORMAT, "version": VERSION, **provenance}
    arrays["provenance"] = np.array(json.dumps(meta))
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays))


def load_inputs(path: str | Path, *, image_shape: tuple[int, ...], num_classes: int
                ) -> tuple[np.ndarray, np.ndarray, dict[str, dict[int, np.ndarray]], dict]:
    """(clean, labels, adversarial sets, provenance) from a file ``save_inputs`` wrote."""
    p = Path(path)
    bad = f"{p} is not a spikemesh adversarial-inputs file"
    try:
        with zipfile.ZipFile(p) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
        if unpacked > MAX_UNPACKED:
            raise UserError(f"{p} unpacks to {unpacked / 2**30:.1f} GiB, more than the "
                            f"{MAX_UNPACKED >> 30} GiB an inputs file may hold; refused")
        with np.load(p, allow_pickle=False) as z:
            names = list(z.files)
            if "provenance" not in names or "labels" not in names or "clean" not in names:
                raise UserError(f"{bad} (it lacks provenance, labels or clean); write one with "
                                "`spikemesh attack ... --save-inputs FILE`")
            prov = json.loads(str(z["provenance"][()]))
            labels, clean = z["labels"], z["clean"]
            adv = {n: z[n] for n in names if n.startswith("adv/")}
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"{p} does not exist; pass the file --save-inputs wrote") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise UserError(f"{bad}: it holds object arrays, which would need unpickling; "
                            "refused") from None
        raise UserError(f"{bad} ({exc}); write one with --save-inputs") from None
    except (OSError, zipfile.BadZipFile, KeyError, EOFError) as exc:
        raise UserError(f"{bad} or is damaged ({type(exc).__name__}); write it again with "
                        "--save-inputs") from None
    if not isinstance(prov, dict) or prov.get("format") != FORMAT:
        raise UserError(f"{bad} (its provenance names no {FORMAT} format)")
    if prov.get("version") != VERSION:
        raise UserError(f"{p} is inputs format version {prov.get('version')!r}; this spikemesh "
                        f"reads version {VERSION}")
    n = _check_images(clean, "clean", p, image_shape)
    if labels.dtype.kind not in "iu" or labels.shape != (n,):
        raise UserError(f"{p}: labels must be {n} integers, one per image")
    if n and not (0 <= labels.min() and labels.max() < num_classes):
        raise UserError(f"{p}: labels outside 0..{num_classes - 1}: the inputs belong to another "
                        "dataset")
    sets: dict[str, dict[int, np.ndarray]] = {}
    eps_list = _eps_list(prov, p)
    for name, x in adv.items():
        parts = name.split("/")
        if len(parts) != 3 or not parts[2].isdigit() or int(parts[2]) not in eps_list:
            raise UserError(f"{p}: unexpected array {name!r}; the file is damaged")
        e = int(parts[2])
        _check_images(x, name, p, image_shape, n)
        moved = int(np.abs(x.astype(np.int16) - clean.astype(np.int16)).max()) if n else 0
        if moved > e:
            raise UserError(f"{p}: {name} moves pixels by {moved} grey levels, outside its eps "
                            f"{e}; the file was altered")
        sets.setdefault(parts[1], {})[e] = x
    reads = prov.get("reads")
    if not isinstance(reads, dict) or not reads or not set(reads.values()) <= set(sets):
        raise UserError(f"{p}: its provenance does not say which level read which input set")
    for key, per_eps in sets.items():
        if sorted(per_eps) != sorted(eps_list):
            raise UserError(f"{p}: input set {key!r} lacks some of eps {eps_list}")
    return clean, labels.astype(np.int64), sets, prov


def _eps_list(prov: dict, p: Path) -> list[int]:
    eps = prov.get("eps")
    if (not isinstance(eps, list) or not eps
            or not all(isinstance(e, int) and not isinstance(e, bool) and 0 <= e <= 255
                       for e in eps)):
        raise UserError(f"{p}: its provenance has no valid eps list (whole grey levels)")
    return eps


def _check_images(x: np.ndarray, name: str, p: Path, shape: tuple[int, ...],
                  n: int | None = None) -> int:
    if x.dtype != np.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape):
        raise UserError(f"{p}: {name} must be uint8 images of shape (N, {', '.join(map(str, shape))})"
                        f", got {x.dtype} {tuple(x.shape)}; were they made for another model?")
    if n is not None and len(x) != n:
        raise UserError(f"{p}: {name} has {len(x)} images, the file's labels {n}")
    if len(x) > MAX_IMAGES:
        raise UserError(f"{p}: {len(x)} images is more than {MAX_IMAGES}")
    return len(x)
