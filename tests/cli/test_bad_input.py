"""Bad input, as a careless or hostile user gives it: every case must end in exit status 2, one
line on stderr naming the problem, no traceback, and every input file byte for byte unchanged
(and no output written)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from artifacts.chipimage import HEADER, write_chip_image
from spikemesh.cli import main
from training.checkpoint import save_checkpoint
from training.data.cifar10 import FOLDER
from training.models import ModelConfig, build_model


# -- fixtures: a VGG5 checkpoint (random weights: validation does not care) and its image -----
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="vgg5", timesteps=2, weight_bits=4))
    pt = d / "m.pt"
    save_checkpoint(pt, model, dataset={"name": "synthetic", "val_size": 1000})
    chip = d / "m.chip"
    assert main(["compile", str(pt), "--out", str(chip), "--quiet"]) == 0
    return {"dir": d, "pt": pt, "chip": chip}


def digest(paths) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def refused(capsys, argv: list[str], match: str, inputs=()) -> str:
    """Run the CLI in process; assert a clean refusal and untouched inputs; return stderr."""
    before = digest(inputs)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert match in err, err
    assert digest(inputs) == before
    return err


# -- the chip image: re-checksummed edits ------------------------------------------------------
def raw_image(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a chip image without any check (as an attacker's tool would)."""
    with np.load(io.BytesIO(path.read_bytes()[HEADER:]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return json.loads(arrays.pop("__meta__").tobytes().decode()), arrays


def edit(a: dict[str, np.ndarray], name: str, fn) -> None:
    v = a[name].copy()
    a[name] = fn(v) if fn(v) is not None else v


def _set(index, value):
    def f(v):
        v.reshape(-1)[index] = value
    return f


IMAGE_EDITS = {
    "route id past the end": lambda m, a: edit(a, "route.dst", _set(0, 10_000)),
    "core off the grid": lambda m, a: edit(a, "core.x", _set(0, 999)),
    "short route array": lambda m, a: a.update({"route.src": a["route.src"][:-1]}),
    "class count disagrees": lambda m, a: m["model"].update(num_classes=7),
    "huge T": lambda m, a: m["model"].update(timesteps=10**6),
    "route one past the end": lambda m, a: edit(a, "input.route", _set(0, len(a["route.src"]))),
    "negative route id": lambda m, a: edit(a, "layer1.route", _set(0, -2)),
    "corrupt pointer": lambda m, a: edit(a, "core.neuron_ptr", _set(3, int(a["core.neuron_ptr"][3]) + 1)),
    "weight code above 2^k-1": lambda m, a: edit(a, "layer1.codes", _set(0, 16)),
    "negative threshold": lambda m, a: m["model"]["layers"][1].update(threshold=-5),
    "dead table entry": lambda m, a: edit(a, "table.ports", _set(0, 0)),
    "link load edited": lambda m, a: edit(a, "link.load", _set(0, 1e9)),
    "float axons": lambda m, a: a.update({"core.axons": a["core.axons"].astype(np.float64)}),
    "missing array": lambda m, a: a.pop("route.dst_ptr"),
    "swapped neurons": lambda m, a: edit(a, "core.neurons", lambda v: v[::-1].copy()),
    "energy NaN": lambda m, a: m["spec"]["energy"].update(pj_per_sop=float("nan")),
}


@pytest.fixture(scope="module")
def bad_images(files) -> dict[str, Path]:
    """One re-checksummed image per edit of IMAGE_EDITS, of a small network on the tiny chip
    (split over several chips, every kind of core; writing 16 VGG5 images took 28 s)."""
    from tests.helpers import compile_in_memory, integer_model, random_layers, tiny_spec

    base = files["dir"] / "small.chip"
    model = integer_model(random_layers(np.random.default_rng(4), theta=(0.2, 0.5)),
                          spec=tiny_spec())
    write_chip_image(base, *compile_in_memory(model, tiny_spec()))
    out = {}
    for k, case in enumerate(sorted(IMAGE_EDITS)):
        meta, arrays = raw_image(base)
        IMAGE_EDITS[case](meta, arrays)
        out[case] = files["dir"] / f"bad{k}.chip"
        write_chip_image(out[case], meta, arrays)
    return out


@pytest.mark.parametrize("case", sorted(IMAGE_EDITS))
def test_inspect_refuses_an_edited_and_rechecksummed_image(bad_images, capsys, case):
    refused(capsys, ["inspect", bad_images[case]], "inconsistent", [bad_images[case]])


# Runs every edited image through `simulate --verify --json` in one child interpreter: were
# the check to miss one, a kernel could crash the interpreter, and the child's report says
# which image it was on.
_SIMULATE_ALL = """
import contextlib, io, json, sys
from spikemesh.cli import main
for path, out in json.loads(sys.argv[1]):
    print(path, flush=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["simulate", path, "--n", "2", "--verify", "--quiet", "--json", out])
    print(json.dumps([code, err.getvalue()]), flush=True)
"""


def test_simulate_refuses_every_edited_image_without_crashing(bad_images, tmp_path):
    jobs = [(str(p), str(tmp_path / f"{p.stem}.json")) for p in bad_images.values()]
    before = digest(bad_images.values())
    res = subprocess.run([sys.executable, "-c", _SIMULATE_ALL, json.dumps(jobs)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"crashed on {res.stdout.splitlines()[-1:]}: {res.stderr[-2000:]}"
    lines = res.stdout.splitlines()
    for path, report in zip(lines[::2], lines[1::2], strict=True):
        code, err = json.loads(report)
        assert code == 2 and "inconsistent" in err and err.count("\n") == 1, (path, err)
    assert len(lines) == 2 * len(jobs)
    assert digest(bad_images.values()) == before and not list(tmp_path.glob("*.json"))


# -- checkpoints -------------------------------------------------------------------------------
def edited_checkpoint(src: Path, dst: Path, fn) -> Path:
    payload = torch.load(src, weights_only=True)
    fn(payload)
    torch.save(payload, dst)
    return dst


CHECKPOINT_EDITS = {
    "NaN weight": (lambda p: p["state_dict"]["convs.1.weight"].view(-1).__setitem__(0, float("nan")),
                   "NaN or inf"),
    "inf threshold": (lambda p: p["layers"]["layers"][1].update(threshold=float("inf")), "threshold"),
    "missing tensor": (lambda p: p["state_dict"].pop("fcs.0.weight"), "fcs.0.weight"),
    "wrong shape": (lambda p: p["state_dict"].update({"out.weight": torch.zeros(3, 3)}), "shape"),
    "unknown layer kind": (lambda p: p["layers"]["layers"][0].update(kind="lstm"), "kind"),
    "string T": (lambda p: p["layers"].update(timesteps="4"), "timesteps"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_EDITS))
def test_a_damaged_checkpoint_is_refused_by_compile(files, tmp_path, capsys, case):
    fn, match = CHECKPOINT_EDITS[case]
    bad = edited_checkpoint(files["pt"], tmp_path / "bad.pt", fn)
    refused(capsys, ["compile", bad, "--out", tmp_path / "x.chip"], match, [bad])
    assert not (tmp_path / "x.chip").exists()


@pytest.mark.parametrize("fn,match", [
    (lambda p: p["model_config"].update(arch="resnet"), "unknown arch"),
    (lambda p: p["model_config"].update(timesteps="4"), "timesteps"),
    (lambda p: p["model_config"].update(leak=float("nan")), "leak"),
    (lambda p: p["model_config"].update(bogus=1), "unknown model config"),
    (lambda p: p["state_dict"]["conv_lifs.0.theta"].fill_(float("nan")), "NaN or inf"),
    (lambda p: p["layers"]["layers"][0].update(threshold=0.123), "layer list disagrees"),
    (lambda p: p["state_dict"].update({"x": 5}), "not a named tensor"),
])
def test_a_damaged_checkpoint_is_refused_by_attack(files, tmp_path, capsys, fn, match):
    bad = edited_checkpoint(files["pt"], tmp_path / "bad.pt", fn)
    refused(capsys, ["attack", bad, "--n", "2", "--quiet"], match, [bad])


def test_a_foreign_file_gives_no_torch_warning(files, tmp_path, capsys):
    bad = tmp_path / "x.pt"
    bad.write_text("hello")
    refused(capsys, ["compile", bad], "not a readable checkpoint", [bad])
    refused(capsys, ["attack", bad], "not a readable checkpoint", [bad])


# -- outputs: checked before the work, never an input ------------------------------------------
@pytest.mark.parametrize("argv,match", [
    (["compile", "{pt}", "--out", "{pt}"], "is the input"),
    (["attack", "{pt}", "--json", "{pt}"], "is the input"),
    (["attack", "{pt}", "--save-inputs", "{pt}"], "is the input"),
    (["attack", "{pt}", "--chip-image", "{chip}", "--save-inputs", "{chip}"], "is the input"),
    (["simulate", "{chip}", "--json", "{chip}"], "is the input"),
    (["inspect", "{chip}", "--json", "{chip}"], "is the input"),
    (["compile", "{pt}", "--out", "{link}"], "is the input"),
    (["compile", "{pt}", "--out", "{dir}"], "is a directory"),
    (["compile", "{pt}", "--out", "{pt}/x.chip"], "which is a file"),
    (["compile", "{pt}", "--out", "{dir}/a.out", "--json", "{dir}/a.out"], "name the same file"),
    (["simulate", "{chip}", "--json", "{pt}/r.json"], "which is a file"),
    (["train", "--out", "{dir}", "--epochs", "1"], "is a directory"),
    (["traffic", "{chip}", "--out", "{pt}"], "traffic writes a folder"),
    (["traffic", "{chip}", "--out", "/proc/spikemesh/x"], "cannot make that folder"),
    (["demo", "--out", "{pt}"], "the demo writes a folder"),
    (["traffic", "{chip}", "--out", "{dir}/t", "--json", "{chip}"], "is the input"),
])
def test_unusable_outputs_are_refused_before_the_work(files, tmp_path, capsys, argv, match):
    link = tmp_path / "link.pt"
    link.symlink_to(files["pt"])
    names = {"pt": files["pt"], "chip": files["chip"], "dir": files["dir"], "link": link}
    argv = [a.format(**names) for a in argv] + ["--quiet"]
    refused(capsys, argv, match, [files["pt"], files["chip"]])


def test_an_unwritable_folder_is_refused_before_the_work(files, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK) and os.geteuid() == 0:
            target = Path("/proc/spikemesh.chip")      # root writes anywhere but here
        else:
            target = folder / "x.chip"
        refused(capsys, ["compile", files["pt"], "--out", target], "cannot write", [files["pt"]])
    finally:
        folder.chmod(0o700)


# -- options: range-checked where parsed --------------------------------------------------------
@pytest.mark.parametrize("argv,match", [
    (["train", "--epochs", "0"], "--epochs: must lie in 1.."),
    (["train", "--eval-every", "0"], "--eval-every: must lie in 1.."),
    (["train", "--batch-size", "-1"], "--batch-size"),
    (["train", "--lr", "-0.1"], "--lr"),
    (["train", "--lr", "nan"], "finite"),
    (["train", "--dropout", "1.5"], "--dropout"),
    (["train", "--theta", "nan,1,0.5"], "finite"),
    (["train", "--theta", "-1,1,0.5"], "theta_conv must be a positive"),
    (["train", "--theta", "0.4,1,0"], "leak must lie in (0, 1]"),
    (["train", "-T", "1000000"], "must lie in 1..1,024"),
    (["train", "--noise", "hire", "--noise-periods", "9", "-T", "4"], "periods"),
    (["train", "--weight-bits", "0"], "--weight-bits"),
    (["train", "--threads", "0"], "--threads"),
    (["attack", "{pt}", "--n", "-5"], "--n: must lie"),
    (["attack", "{pt}", "--eps", "nan"], "finite"),
    (["attack", "{pt}", "--eps", "-2"], "--eps"),
    (["attack", "{pt}", "--attack", "pgd", "--steps", "-3"], "--steps"),
    (["attack", "{pt}", "--eot", "0"], "--eot"),
    (["attack", "{pt}", "--weight-bits", "12"], "--weight-bits"),
    (["attack", "{pt}", "--levels", "algo,chip"], "chip"),
    (["attack", "{pt}", "--levels", "algo,algo"], "twice"),
    (["attack", "{pt}", "--eps", "2.5"], "whole grey levels"),
    (["attack", "{pt}", "--eps", "8,8"], "twice"),
    (["attack", "{pt}", "--attack", "pgd", "--step-size", "0.2"], "half a grey level"),
    (["attack", "{pt}", "--attack", "square", "--queries", "0"], "--queries"),
    (["attack", "{pt}", "--attack", "square", "--p-init", "0"], "--p-init"),
    (["attack", "{pt}", "--attack", "square", "--targeted"], "no targeted form"),
    (["attack", "{pt}", "--attack", "square", "--source-model", "{pt}"], "gradient attack"),
    (["attack", "{pt}", "--source", "chip"], "--source"),
    (["attack", "{pt}", "--source", "hw", "--source-model", "{pt}"], "drop --source"),
    (["attack", "{pt}", "--inputs", "{pt}.missing.npz"], "does not exist"),
    (["attack", "{pt}", "--inputs", "{pt}"], "not a spikemesh adversarial-inputs file"),
    (["attack", "{pt}", "--inputs", "{chip}", "--save-inputs", "{chip}.npz"], "give one of them"),
    (["compile", "{pt}", "--weight-bits", "9"], "--weight-bits"),
    (["compile", "{pt}", "--chips", "0"], "--chips"),
    (["compile", "{pt}", "--chips", "3000x3000"], "--chips"),
    (["simulate", "{chip}", "--batch-size", "0"], "--batch-size"),
    (["simulate", "{chip}", "--n", "0"], "--n"),
])
def test_out_of_range_options_are_one_line(files, tmp_path, capsys, argv, match):
    argv = [a.format(pt=files["pt"], chip=files["chip"]) for a in argv]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "m.pt")]
    try:
        refused(capsys, argv + ["--quiet"], match, [files["pt"], files["chip"]])
    except SystemExit as exc:          # argparse's own exit path, through _Parser.error
        assert exc.code == 2
        _, err = capsys.readouterr()
        assert match in err and err.count("\n") == 1
    assert not (tmp_path / "m.pt").exists()


# -- chip specs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text,match", [
    ("board: {chips_x: 3000, chips_y: 3000}\n", "board.chips_x: must lie in"),
    ("mesh: {cores_x: 1000000, cores_y: 1000000}\n", "mesh.cores_x: must lie in"),
    ("noc: {buffer_depth: 100000000}\n", "noc.buffer_depth"),
    ("noc: {hop_cycles: 4000000000}\n", "noc.hop_cycles"),
    ("energy: {pj_per_sop: .nan}\n", "finite"),
    ("energy: {pj_per_hop: .inf}\n", "finite"),
    ("1: 2\n", "not text"),
    (b"\xff\xfe binary \x00", "not a UTF-8"),
])
def test_a_bad_chip_spec_is_refused(files, tmp_path, capsys, text, match):
    spec = tmp_path / "chip.yaml"
    spec.write_bytes(text if isinstance(text, bytes) else text.encode())
    refused(capsys, ["compile", files["pt"], "--chip", spec, "--out", tmp_path / "x.chip"], match,
            [spec, files["pt"]])
    assert not (tmp_path / "x.chip").exists()


# -- datasets ---------------------------------------------------------------------------------
class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_does_not_run(files, tmp_path, capsys):
    folder = tmp_path / FOLDER
    folder.mkdir()
    marker = tmp_path / "pwned"
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(_RunsCode(marker)))
    refused(capsys, ["train", "--dataset", "cifar10", "--data-dir", tmp_path, "--out", tmp_path / "m.pt",
                     "--quiet"], "asks to run code", list(folder.iterdir()))
    refused(capsys, ["attack", files["pt"], "--dataset", "cifar10", "--data-dir", tmp_path, "--quiet"],
            "asks to run code", [files["pt"]])
    assert not marker.exists() and not (tmp_path / "m.pt").exists()


# -- signals, temporaries, modes -----------------------------------------------------------------
def test_sigterm_ends_training_like_ctrl_c(tmp_path):
    out = tmp_path / "m.pt"
    proc = subprocess.Popen([sys.executable, "-m", "spikemesh.cli", "train", "--train-size", "20000",
                             "--val-size", "100", "--epochs", "1", "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().endswith("interrupted") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []            # no checkpoint and no temporary


def test_outputs_follow_the_umask_and_orphans_are_removed(tmp_path):
    from artifacts.atomic import write_text_atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    orphan = tmp_path / f".r.json.{dead}.abc123.tmp"       # a writer killed with SIGKILL
    orphan.write_text("half")
    live = tmp_path / f".r.json.{os.getpid()}.xyz.tmp"      # a writer still running: kept
    live.write_text("busy")
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    assert not orphan.exists() and live.exists()
