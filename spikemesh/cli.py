"""The `spikemesh` command: parse arguments, call a library function, print.

No logic lives only here. A ``UserError`` becomes one line on stderr and exit status 2.
Heavy imports (torch) happen inside the sub-commands so `spikemesh --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from artifacts import __version__
from artifacts.atomic import check_output, write_text_atomic
from artifacts.errors import UserError
from spikemesh.argtypes import batch, count, integer, number, numbers, seed, words


def _write_json(path: str | None, obj: Any) -> None:
    """``--json PATH`` writes the file atomically; ``--json -`` prints it on stdout (the
    human-readable lines then go to stderr, see ``_say``)."""
    if not path:
        return
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    write_text_atomic(path, text)
    _say(f"wrote {path}")


_JSON_TO_STDOUT = False


def _say(*args: Any) -> None:
    """The human-readable report: stdout, or stderr while stdout carries ``--json -``."""
    print(*args, file=sys.stderr if _JSON_TO_STDOUT else sys.stdout)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line, like every other error, and exit status 2. It
    records which option strings take a value, so a value may begin with a minus
    (``--theta -1,1,0.5``): see ``_join_minus_values``."""

    option_strings: set[str] = set()      # every option of every parser built
    takes_value: set[str] = set()         # those that take a value

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        action = super().add_argument(*args, **kwargs)
        _Parser.option_strings.update(action.option_strings)
        if action.nargs != 0:
            _Parser.takes_value.update(action.option_strings)
        return action

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _join_minus_values(argv: list[str]) -> list[str]:
    """``--opt -1,2`` -> ``--opt=-1,2`` when --opt takes a value and ``-1,2`` is no option:
    argparse would otherwise read a value that starts with a minus as an unknown option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        w = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if (w in _Parser.takes_value and nxt is not None and nxt.startswith("-") and nxt != "-"
                and nxt.split("=", 1)[0] not in _Parser.option_strings):
            out.append(f"{w}={nxt}")
            i += 2
            continue
        out.append(w)
        i += 1
    return out


def _check_outputs(inputs: tuple[str | None, ...], **outputs: str | None) -> None:
    """Every output path usable and none an input or another output, before any work."""
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if not path or path == "-":
            continue
        name = "--" + option.replace("_", "-")
        check_output(path, option=name, inputs=tuple(i for i in inputs if i))
        key = Path(path).resolve()
        if key in seen:
            raise UserError(f"{name} and {seen[key]} name the same file {path}; give each its own")
        seen[key] = name


# -- train -------------------------------------------------------------------------------
def _add_model_args(p: argparse.ArgumentParser) -> None:
    # defaults live in the dataclasses (ModelConfig, TrainConfig): one place
    from training.models import ModelConfig

    m = ModelConfig()
    p.add_argument("--arch", default=m.arch, choices=["vgg5", "vgg9"])
    p.add_argument("--encoding", default=m.encoding, choices=["direct", "rate", "phase", "latency"])
    p.add_argument("--timesteps", "-T", type=integer(1, 1024), default=m.timesteps,
                   help="time steps per inference")
    p.add_argument("--weight-bits", type=integer(1, 8), default=None,
                   help="k-bit quantization-aware training (1..8); omit for float training")
    p.add_argument("--theta", type=numbers(-1e6, 1e6), default=(m.theta_conv, m.theta_fc, m.leak),
                   metavar="TC,TF,LAMBDA",
                   help="structure parameters (theta_conv, theta_fc, lambda); default "
                        f"{m.theta_conv},{m.theta_fc},{m.leak}")
    p.add_argument("--reset", default=m.reset, choices=["soft", "hard"])
    p.add_argument("--trainable-neurons", action="store_true",
                   help="learn per-layer thresholds and leaks")
    p.add_argument("--surrogate-scale", type=number(0, 1e6, lo_open=True), default=m.surrogate_scale)
    p.add_argument("--dropout", type=number(0, 1, hi_open=True), default=m.dropout)


def _model_config(a: argparse.Namespace, num_classes: int = 10):
    from training.models import ModelConfig

    if len(a.theta) != 3:
        raise UserError("--theta takes three numbers: theta_conv,theta_fc,lambda (e.g. 0.4,1.0,0.5)")
    try:
        return ModelConfig(arch=a.arch, timesteps=a.timesteps, encoding=a.encoding,
                           theta_conv=a.theta[0], theta_fc=a.theta[1], leak=a.theta[2],
                           reset=a.reset, trainable_neurons=a.trainable_neurons,
                           surrogate_scale=a.surrogate_scale, weight_bits=a.weight_bits,
                           dropout=a.dropout, num_classes=num_classes)
    except ValueError as exc:
        raise UserError(f"invalid model option: {exc}") from None


def _cmd_train(a: argparse.Namespace) -> int:
    _check_outputs((), out=a.out, json=a.json)
    from training.noise import NoiseConfig
    from training.trainer import TrainConfig, train

    try:
        noise = NoiseConfig(kind=a.noise, eps=a.noise_eps / 255.0, periods=a.noise_periods,
                            reset_between_periods=a.noise_reset)
    except ValueError as exc:
        raise UserError(f"invalid noise option: {exc}") from None
    cfg = TrainConfig(model=_model_config(a), noise=noise, dataset=a.dataset,
                      data_dir=a.data_dir, download=a.download, train_size=a.train_size,
                      val_size=a.val_size,
                      eval_size=a.eval_size, eval_every=a.eval_every, epochs=a.epochs,
                      ann_epochs=a.ann_epochs,
                      ann_lr_schedule=a.ann_lr_schedule,
                      qat_epochs=a.qat_epochs, batch_size=a.batch_size, lr=a.lr,
                      weight_decay=a.weight_decay,
                      augment=not a.no_augment, seed=a.seed, device=a.device,
                      precision=a.precision, threads=a.threads, out=a.out, resume=a.resume)
    metrics = train(cfg, progress=not a.quiet)
    _say(f"saved {a.out}")
    _write_json(a.json, metrics)
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    _check_outputs((a.model,), out=a.out)
    from training.compact import export_compact

    try:
        info = export_compact(a.model, a.out)
    except ValueError as exc:
        raise UserError(f"cannot export {a.model}: {exc}") from None
    bits = f"every {info['bits']}-bit code kept, " if info["bits"] else ""
    _say(f"wrote {a.out}: {info['bytes'] / 1e6:.1f} MB (from {info['source_bytes'] / 1e6:.1f} MB), "
         f"{info['tensors']} weight tensors as int8 codes, {bits}largest change "
         f"{info['max_error_in_steps']:.2f} int8 steps")
    return 0


# -- attack ------------------------------------------------------------------------------
def _cmd_attack(a: argparse.Namespace) -> int:
    from spikemesh.evaluation.report import format_table
    from spikemesh.evaluation.run import AttackRequest, run_attack
    from spikemesh.evaluation.spec import AttackSpec

    _check_outputs((a.model, a.chip_image, a.source_model, a.inputs), json=a.json,
                   save_inputs=a.save_inputs)
    if a.inputs is not None and a.save_inputs is not None:
        raise UserError("--inputs re-evaluates saved inputs, --save-inputs writes new ones; "
                        "give one of them")
    spec = AttackSpec(name=a.attack, eps=a.eps or (2, 8, 16),
                      targeted=a.targeted, steps=a.steps, step_size=a.step_size / 255.0,
                      random_start=not a.no_random_start, eot=a.eot, queries=a.queries,
                      p_init=a.p_init, seed=a.seed)
    levels = a.levels or ("algo", "quant", "hw")
    req = AttackRequest(model=a.model, spec=spec, levels=levels, source=a.source,
                        source_model=a.source_model, chip_image=a.chip_image,
                        weight_bits=a.weight_bits, dataset=a.dataset, data_dir=a.data_dir,
                        split=a.split, n=a.n, batch_size=a.batch_size, device=a.device,
                        save_inputs=a.save_inputs, inputs=a.inputs)
    result = run_attack(req, log=(lambda _: None) if a.quiet else _say, progress=not a.quiet)
    _say(format_table(result))
    if a.save_inputs:
        _say(f"wrote the adversarial inputs to {a.save_inputs}")
    _write_json(a.json, result)
    return 0


# -- compile / inspect -------------------------------------------------------------------
def _cmd_compile(a: argparse.Namespace) -> int:
    from compiler.compile import compile_checkpoint, parse_chips
    from compiler.spec import load_spec

    out = a.out or str(Path(a.model).with_suffix(".chip"))
    _check_outputs((a.model, a.chip), out=out, json=a.json)
    spec = load_spec(a.chip)
    val = None
    if a.verify:   # the data first: a missing dataset must not leave a fresh image behind
        from compiler.checkpoint import read_checkpoint
        from training.data import load_dataset

        ds = read_checkpoint(a.model).dataset
        name = a.dataset or ds.get("name", "synthetic")
        val = load_dataset(name, a.data_dir, val_size=ds.get("val_size", 5000)).val.head(a.verify)
    summary = compile_checkpoint(a.model, spec, out, chips=parse_chips(a.chips),
                                 weight_bits=a.weight_bits, seed=a.seed,
                                 log=(lambda _: None) if a.quiet else _say)
    t = summary["seconds"]
    _say(f"compiled {a.model} -> {out} ({summary['bytes'] / 1e6:.1f} MB) in {t['total']:.1f}s: "
          f"{summary['cores']} cores on {summary['chips']} chip(s) "
          f"({summary['board'][0]}x{summary['board'][1]})")
    _say(f"placement cost {summary['placement_cost']:,.0f} vs row-major "
          f"{summary['row_major_cost']:,.0f} "
          f"({summary['placement_cost'] / max(summary['row_major_cost'], 1):.2f}x)")
    if val is not None:
        from artifacts.chipimage import read_chip_image
        from spikemesh.verify import verify

        res = verify(read_chip_image(out), a.model, val.images.numpy(), val.labels.numpy())
        summary["verify"] = res
        _say(f"verify on {res['n']} {name} validation images: integer reference agrees with the "
              f"quantized algorithm model on {res['agreement']:.1f}% (accuracy {res['reference_acc']:.1f}% "
              f"vs {res['quant_algo_acc']:.1f}%)")
    _write_json(a.json, summary)
    return 0


def _cmd_inspect(a: argparse.Namespace) -> int:
    from artifacts.chipimage import read_chip_image
    from compiler.inspect import format_summary, mesh_map, summarize

    _check_outputs((a.image,), json=a.json)
    meta, arrays = read_chip_image(a.image)
    summary = summarize(meta, arrays)
    if not a.quiet:
        _say(format_summary(summary, mesh_map(meta, arrays)))
    _write_json(a.json, summary)
    return 0


def _image_split(a: argparse.Namespace, meta: dict):
    """(dataset name, split) of the images to run on a chip image: by default the dataset and
    validation size it was compiled with; refused when the image shape is not the chip's."""
    from training.data import load_dataset

    prov = meta.get("provenance", {})
    name = a.dataset or prov.get("dataset") or "synthetic"
    data = load_dataset(name, a.data_dir, val_size=a.val_size or prov.get("val_size") or 5000)
    split = data.split(a.split).head(a.n)
    shape = tuple(meta["model"]["layers"][0]["in_shape"])
    if tuple(split.images.shape[1:]) != shape:
        raise UserError(f"{name} images are {tuple(split.images.shape[1:])}, the chip image "
                        f"expects {shape}; pick the dataset the model was trained on")
    return name, split


def _cmd_simulate(a: argparse.Namespace) -> int:
    from artifacts.chipimage import read_chip_image
    from chipsim.machine import machine_from_arrays
    from chipsim.simulate import simulate_dataset

    _check_outputs((a.image,), json=a.json)
    meta, arrays = read_chip_image(a.image)
    machine = machine_from_arrays(meta, arrays)
    a.dataset, split = _image_split(a, meta)
    check = None
    if a.verify:
        from compiler.image import load_integer_model
        from spikemesh.crosscheck import CrossCheck

        check = CrossCheck(load_integer_model(meta, arrays),
                           (meta["model"]["mean"], meta["model"]["std"]))
    result = simulate_dataset(machine, split.images.numpy(), split.labels.numpy(), arrays=arrays,
                              batch_size=a.batch_size, noc=not a.no_noc, seed=a.seed,
                              progress=not a.quiet, on_batch=check, threads=a.threads)
    if check is not None:
        result["reference_match"] = True
        result["reference_images_checked"] = check.images_checked
    result.pop("predictions")
    _say(f"{result['n']} {a.dataset} {a.split} images on {a.image}: accuracy {result['accuracy']:.2f}%")
    if "cycles_per_step" in result:
        _say(f"cycles per step: mean {result['cycles_per_step']:,.0f}, max "
              f"{result['max_cycles_per_step']:,} ({result['latency_cycles_per_inference']:,.0f} "
              "per inference)")
        from spikemesh.traffic.run import format_latency

        _say(format_latency(result["packet_latency_cycles"]))
    synaptic = result["energy_breakdown_uj_per_inference"]["synaptic"]
    if result["energy_uj_per_inference"] is None:
        _say(f"synaptic energy per inference: {synaptic:.2f} uJ (link energy needs the NoC "
             f"model: drop --no-noc); {result['sops_per_inference'] / 1e6:.1f}M SOPs per inference")
    else:
        _say(f"energy per inference: {result['energy_uj_per_inference']:.2f} uJ "
             f"(synaptic {synaptic:.2f}); {result['sops_per_inference'] / 1e6:.1f}M SOPs per inference")
    _say(f"speed: {result['images_per_second']:.2f} images/s, "
          f"{result['sops_per_second'] / 1e6:.0f}M SOP/s"
          f"{' (functional only, --no-noc)' if a.no_noc else ''}")
    if check is not None:
        _say(f"verify: spike trains of all {check.images_checked} images match the integer "
              "reference bit for bit")
    _write_json(a.json, result)
    return 0


def _output_folder(path: str, who: str) -> Path:
    """The --out folder, made (with its parents) and proved writable before any work."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {path} is a file; {who} writes a folder, pass a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {path}: cannot make that folder ({exc.strerror}); pass a "
                        "folder you can write") from None
    check_output(out / "summary.json", option="--out")
    return out


def _cmd_traffic(a: argparse.Namespace) -> int:
    from artifacts.chipimage import read_chip_image
    from chipsim.chip import Chip
    from chipsim.machine import machine_from_arrays
    from spikemesh.traffic.run import (
        adversarial_images,
        check_model_matches,
        format_summary,
        simulate_traffic,
        write_difference,
        write_run,
        write_summary,
    )

    if Path(a.out).is_file():
        raise UserError(f"--out {a.out} is a file; traffic writes a folder, pass a folder path")
    _check_outputs((a.image, a.adversarial), json=a.json)
    meta, arrays = read_chip_image(a.image)
    machine = machine_from_arrays(meta, arrays)
    name, split = _image_split(a, meta)
    images, labels = split.images.numpy(), split.labels.numpy()
    if a.adversarial is not None:
        check_model_matches(a.adversarial, a.image, meta)
    out = _output_folder(a.out, "traffic")      # every check passed: now the work
    adv_images = None
    if a.adversarial is not None:
        adv_images = adversarial_images(a.adversarial, meta, images, labels,
                                        attack=a.attack, eps=a.eps, seed=a.seed)
    log = (lambda _: None) if a.quiet else _say
    chip = Chip(machine)
    runs = [simulate_traffic(machine, chip, arrays, images, labels, "clean",
                             batch_size=a.batch_size, seed=a.seed, progress=not a.quiet,
                             threads=a.threads)]
    if adv_images is not None:
        runs.append(simulate_traffic(machine, chip, arrays, adv_images, labels, "adversarial",
                                     batch_size=a.batch_size, seed=a.seed,
                                     progress=not a.quiet, threads=a.threads))
    summary: dict = {"image": str(a.image), "dataset": name, "split": a.split}
    for run in runs:
        summary[run.kind] = write_run(out, run, machine, log)
        _say(format_summary(summary[run.kind]))
    if len(runs) == 2:
        summary["difference"] = write_difference(out, runs[0], runs[1], machine)
        summary["adversarial_inputs"] = {"model": a.adversarial, "attack": a.attack, "eps": a.eps}
        change = summary["difference"]["spikes_per_layer"]
        _say(f"{a.attack} eps {a.eps:g}/255 against clean, spikes per inference per layer: " +
             "; ".join(f"{k} {v['clean']:,.0f} -> {v['adversarial']:,.0f} (NSR {v['nsr']:+.3f})"
                       for k, v in change.items()))
        de = summary["difference"]["energy_uj_per_inference_change"]
        if de is not None:
            _say(f"energy per inference changes by {de:+.2f} uJ under attack; "
                 f"difference maps: {out}/difference_*.png")
    write_summary(out, summary)
    _say(f"wrote {out}/summary.json")
    _write_json(a.json, summary)
    return 0


# -- demo / bench ------------------------------------------------------------------------
def _cmd_demo(a: argparse.Namespace) -> int:
    from spikemesh.demo import DemoSizes, run_demo

    sizes = DemoSizes(n_attack=a.n, n_sim=a.n_sim,
                      **{k: v for k, v in (("epochs", a.epochs), ("ann_epochs", a.ann_epochs),
                                           ("train_size", a.train_size)) if v is not None})
    if a.download and not a.data_dir:
        raise UserError("--download fetches CIFAR-10 into --data-dir; pass --data-dir DIR too")
    run_demo(Path(a.out), sizes, data_dir=a.data_dir, download=a.download, progress=not a.quiet,
             reuse_model=a.reuse_model, prepare_out=lambda: _output_folder(a.out, "the demo"))
    return 0


def _cmd_bench(a: argparse.Namespace) -> int:
    from spikemesh.bench import run_bench

    _check_outputs((a.model,), json=a.json)
    report = run_bench(a.which, quick=a.quick, model=a.model)
    if not a.quiet:
        _say(report["markdown"])
    _write_json(a.json, report)
    return 0


# -- parser ------------------------------------------------------------------------------
def _train_args(p: argparse.ArgumentParser) -> None:
    from training.hybrid import LR_SCHEDULES
    from training.noise import NoiseConfig
    from training.precision import PRECISIONS
    from training.trainer import TrainConfig

    tc, nc = TrainConfig(), NoiseConfig()
    _add_model_args(p)
    p.add_argument("--dataset", default=tc.dataset, choices=["synthetic", "cifar10"])
    p.add_argument("--data-dir", default=None, help="folder with cifar-10-batches-py")
    p.add_argument("--download", action="store_true",
                   help="cifar10: download it into --data-dir (MD5 verified) if it is not there")
    p.add_argument("--train-size", type=count, default=None, help="use only the first N training images")
    p.add_argument("--val-size", type=count, default=tc.val_size,
                   help="validation images carved from the end of the training data")
    p.add_argument("--eval-size", type=count, default=tc.eval_size,
                   help="validation images scored after each epoch")
    p.add_argument("--eval-every", type=count, default=tc.eval_every, metavar="N",
                   help="score the validation images only after every N-th SNN epoch and the "
                        "last (saves ~30 s an epoch on 5,000 CIFAR-10 images on 2 cores)")
    p.add_argument("--noise", default="none", choices=["none", "uniform", "hire"])
    p.add_argument("--noise-eps", type=number(0, 255), default=round(nc.eps * 255, 6),
                   help="noise amplitude in grey levels (/255)")
    p.add_argument("--noise-periods", type=integer(1, 1024), default=nc.periods,
                   help="HIRE: periods T is split into")
    p.add_argument("--noise-reset", action="store_true",
                   help="HIRE: reset membranes between periods instead of carrying them")
    p.add_argument("--epochs", type=count, default=tc.epochs, help="SNN epochs")
    p.add_argument("--ann-epochs", type=integer(0), default=tc.ann_epochs,
                   help="ANN-to-SNN hybrid initialisation: train the ReLU ANN of the same "
                        "topology for N epochs first, convert it, then train the SNN")
    p.add_argument("--ann-lr-schedule", default=tc.ann_lr_schedule,
                   choices=LR_SCHEDULES,
                   help="the ANN phase's learning rate: constant, or decayed to zero on a cosine "
                        "over --ann-epochs (the SNN phase always decays on a cosine)")
    p.add_argument("--qat-epochs", type=integer(0), default=None,
                   help="with --weight-bits: train in float first and quantization-aware only "
                        "in the last N epochs (default: all epochs)")
    p.add_argument("--batch-size", type=batch, default=tc.batch_size)
    p.add_argument("--lr", type=number(0, 10, lo_open=True), default=tc.lr)
    p.add_argument("--weight-decay", type=number(0, 1), default=tc.weight_decay,
                   help="L2 weight decay (Adam's), in the ANN phase and the SNN phase alike")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=seed, default=tc.seed)
    p.add_argument("--device", default=tc.device, choices=["cpu", "cuda"])
    p.add_argument("--precision", default=tc.precision, choices=PRECISIONS,
                   help="convolutions and linear layers of the training steps in bfloat16 "
                        "(bf16; auto: where the machine has native bf16, e.g. AVX512_BF16, AMX, "
                        "Arm BF16, a GPU; ~1.5x per step there). Evaluation is always float32")
    p.add_argument("--threads", type=integer(1, 1024), default=None, help="torch CPU threads")
    p.add_argument("-o", "--out", default=tc.out, help="checkpoint to write (default model.pt)")
    p.add_argument("--resume", action="store_true", help="continue training --out where it stopped")
    p.add_argument("--json", default=None, metavar="PATH", help="write final metrics as JSON (- for stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="checkpoint .pt written by `spikemesh train`")
    p.add_argument("-o", "--out", required=True,
                   help="the shipped checkpoint to write (weights as int8 codes, no optimizer state)")


def _attack_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="checkpoint .pt")
    p.add_argument("--attack", default="fgsm", choices=["fgsm", "rfgsm", "pgd", "square"],
                   help="square: score-based black-box attack (queries the level's outputs)")
    p.add_argument("--eps", type=numbers(0, 255), default=None,
                   help="comma-separated eps in whole grey levels (/255); default 2,8,16")
    p.add_argument("--levels", type=words, default=None,
                   help="where inputs are evaluated, comma-separated: algo (float weights), "
                        "quant (k-bit weights), hw (the chip image on chipsim); default all three")
    p.add_argument("--source", default="self", choices=["self", "algo", "quant", "hw"],
                   help="who crafts the inputs: self (each level attacks itself; hw reads "
                        "quant's), or one level for all (hw: through the integer model with "
                        "straight-through gradients; with square: that level's scores)")
    p.add_argument("--source-model", default=None, metavar="PT",
                   help="craft with another trained model instead (black-box transfer)")
    p.add_argument("--chip-image", default=None, metavar="CHIP",
                   help="the model's chip image (default: compile it for pku-nc64c in memory)")
    p.add_argument("--targeted", action="store_true", help="targeted attack (eq. 4) toward random classes")
    p.add_argument("--steps", type=integer(1, 100_000), default=7, help="PGD steps")
    p.add_argument("--step-size", type=number(0, 255, lo_open=True), default=2.0,
                   help="PGD step in grey levels (/255); default 2")
    p.add_argument("--no-random-start", action="store_true")
    p.add_argument("--eot", type=integer(1, 10_000), default=None,
                   help="gradient samples for stochastic encoders (default 8 for rate, else 1)")
    p.add_argument("--queries", type=integer(1, 1_000_000), default=1000,
                   help="square: score queries per image (budget)")
    p.add_argument("--p-init", type=number(0, 1, lo_open=True), default=0.05,
                   help="square: initial fraction of the image a square covers")
    p.add_argument("--weight-bits", type=integer(1, 8), default=None,
                   help="bits for the quant level (default: the bits the model was trained with)")
    p.add_argument("--dataset", default=None, choices=["synthetic", "cifar10"],
                   help="default: the dataset the model was trained on")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--n", type=count, default=1000, help="number of images")
    p.add_argument("--batch-size", type=batch, default=100)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where the algorithm levels run")
    p.add_argument("--save-inputs", default=None, metavar="NPZ",
                   help="write the adversarial inputs, labels and provenance (.npz)")
    p.add_argument("--inputs", default=None, metavar="NPZ",
                   help="re-evaluate inputs saved with --save-inputs instead of attacking")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON (- for stdout)")
    p.add_argument("--quiet", action="store_true")


def _compile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="checkpoint .pt")
    p.add_argument("--chip", default="pku-nc64c", help="a preset name or a chip spec .yaml")
    p.add_argument("--chips", default="auto",
                   help="auto (smallest board that holds the network), N chips, or CXxCY")
    p.add_argument("--weight-bits", type=integer(1, 8), default=None,
                   help="quantize a float-trained model to K bits (default: its trained bits)")
    p.add_argument("-o", "--out", default=None, help="chip image path (default: MODEL.chip)")
    p.add_argument("--verify", type=integer(0), default=0, metavar="N",
                   help="run N validation images through the integer reference and the "
                        "quantized algorithm model and report their agreement")
    p.add_argument("--dataset", default=None, choices=["synthetic", "cifar10"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=seed, default=0, help="placement search seed")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="write the compile summary as JSON (- for stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")


def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="chip image written by `spikemesh compile`")
    p.add_argument("--json", default=None, metavar="PATH",
                     help="write the summary as JSON (- for stdout)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (with --json)")


def _image_data_args(p: argparse.ArgumentParser, *, n: int, image: bool = True) -> None:
    """A chip image and the images to run on it (simulate, traffic)."""
    if image:
        p.add_argument("image", help="chip image written by `spikemesh compile`")
    p.add_argument("--dataset", default=None, choices=["synthetic", "cifar10"],
                   help="default: the dataset the model was trained on")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--val-size", type=count, default=None,
                   help="validation images carved from the training data (default: as in training)")
    p.add_argument("--n", type=count, default=n, help="number of images")
    p.add_argument("--batch-size", type=batch, default=16)
    p.add_argument("--threads", type=integer(1, 1024), default=None,
                   help="NoC model worker threads (default: every CPU this process may use); "
                        "results do not depend on it")


def _simulate_args(p: argparse.ArgumentParser) -> None:
    _image_data_args(p, n=100)
    p.add_argument("--verify", action="store_true",
                    help="run the integer reference alongside; fail on the first spike mismatch")
    p.add_argument("--no-noc", action="store_true",
                    help="skip the cycle-level NoC model (arithmetic, spikes and SOPs only)")
    p.add_argument("--seed", type=seed, default=0, help="seed of stochastic input encoders")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON (- for stdout)")
    p.add_argument("--quiet", action="store_true")


def _traffic_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="chip image written by `spikemesh compile`")
    p.add_argument("-o", "--out", default="traffic_out", help="folder for the maps and CSVs")
    p.add_argument("--adversarial", default=None, metavar="PT",
                   help="also map inputs attacked on this model (the one the image was "
                        "compiled from), and the difference from clean")
    p.add_argument("--attack", default="fgsm", choices=["fgsm", "rfgsm", "pgd"])
    p.add_argument("--eps", type=number(1, 255), default=8.0,
                   help="attack size in whole grey levels (/255); default 8")
    _image_data_args(p, n=32, image=False)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--json", default=None, metavar="PATH", help="write the summary as JSON (- for stdout)")
    p.add_argument("--quiet", action="store_true")


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", default="demo_out", help="folder for the model and reports")
    p.add_argument("--data-dir", default=None,
                   help="run the chain on CIFAR-10 from this folder (cifar-10-batches-py) instead "
                        "of the embedded synthetic set")
    p.add_argument("--download", action="store_true",
                   help="with --data-dir: download CIFAR-10 there (MD5 verified) if it is not there")
    p.add_argument("--train-size", type=count, default=None,
                   help="training images (default 2,500; raise it with --data-dir)")
    p.add_argument("--ann-epochs", type=integer(0, 10_000), default=None,
                   help="ReLU ANN epochs before conversion (default 5)")
    p.add_argument("--epochs", type=count, default=None,
                   help="SNN epochs after conversion, the last with 4-bit QAT (default 1)")
    p.add_argument("--n", type=count, default=500, help="images in the attack evaluation")
    p.add_argument("--n-sim", type=count, default=100, help="images simulated on the chip")
    p.add_argument("--reuse-model", action="store_true",
                   help="skip training when OUT/model.pt exists (e.g. to re-run the chip steps)")
    p.add_argument("--quiet", action="store_true")


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("which", choices=["training", "compile", "noc", "chipsim", "attack"],
                   help="what to benchmark")
    p.add_argument("--model", default=None, help="chipsim, attack: a trained VGG5 checkpoint")
    p.add_argument("--quick", action="store_true", help="a smaller run (for smoke tests)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the report as JSON (- for stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")


# command -> (help, the function adding its arguments, the function running it). A command's
# arguments are built only when that command runs (or for --help), so `spikemesh compile`
# never imports training/ (whose dataclasses hold the train defaults) and starts instantly.
COMMANDS = {
    "train": ("train a VGG SNN and write a checkpoint (.pt)", _train_args, _cmd_train),
    "export": ("write a compact checkpoint to ship (int8 weight codes, k-bit codes kept)",
               _export_args, _cmd_export),
    "attack": ("adversarial evaluation at the algorithm, quantized and chip levels", _attack_args,
               _cmd_attack),
    "compile": ("compile a trained .pt into a chip image", _compile_args, _cmd_compile),
    "inspect": ("summarize a chip image: cores, memory, mesh map, hot links", _inspect_args, _cmd_inspect),
    "simulate": ("run a chip image on a dataset, cycle-level", _simulate_args, _cmd_simulate),
    "traffic": ("per-core spike traffic heat maps, clean and under attack", _traffic_args,
                _cmd_traffic),
    "demo": ("the whole chain on the embedded synthetic dataset", _demo_args, _cmd_demo),
    "bench": ("run a benchmark and print a BENCHMARKS.md section", _bench_args, _cmd_bench),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's arguments are built."""
    p = _Parser(
        prog="spikemesh",
        description="Train SNNs, attack them, and compile them onto a 2D-mesh neuromorphic chip.")
    p.add_argument("--version", action="version", version=f"spikemesh {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, add_args, run) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text)
        if only in (None, name):
            add_args(sp)
        sp.set_defaults(func=run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    global _JSON_TO_STDOUT
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in argv if not w.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else None)
    args = parser.parse_args(_join_minus_values(argv))
    # SIGTERM (what `timeout` and job schedulers send) ends a run like Ctrl-C: exit 130, and
    # atomic writers remove their temporaries on the way out
    signal.signal(signal.SIGTERM, _terminate)
    _JSON_TO_STDOUT = getattr(args, "json", None) == "-"
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"spikemesh {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if exc.__class__.__name__ == "MismatchError":   # a broken bit-exactness contract
            print(f"spikemesh {args.command}: MISMATCH: {exc}", file=sys.stderr)
            return 3
        raise
    except KeyboardInterrupt:
        print(f"spikemesh {args.command}: interrupted", file=sys.stderr)
        return 130


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
