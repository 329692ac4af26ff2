"""Attack evaluation across the algorithm, quantized and hardware levels, end to end on the
session's trained synthetic VGG5 and its chip image."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from artifacts.chipimage import read_chip_image
from artifacts.errors import UserError
from chipsim.chip import Chip
from chipsim.machine import machine_from_arrays
from compiler.compile import compile_checkpoint
from compiler.image import load_integer_model
from compiler.reference import run_reference
from compiler.spec import load_spec
from spikemesh.cli import main
from spikemesh.evaluation.run import AttackRequest, run_attack
from spikemesh.evaluation.spec import AttackSpec
from tests.conftest import REPO
from training.attacks import fgsm
from training.checkpoint import load_checkpoint
from training.data import load_dataset

N = 32
# top-1 agreement of hw with quant on clean inputs. Host input path: the integer model is the
# quantized model up to threshold and current rounding, so they agree on (nearly) every image.
# Graded path: the pixel normalization is folded into integer gains and biases, a conversion
# error that flips near-tie decisions: 0.5% of images on the demo's model, 7.5% (3 of 40) on this
# briefly trained one, whose decisions are closer to ties. Stated tolerance: 10%.
HOST_AGREEMENT, GRADED_AGREEMENT = 99.0, 90.0


def compile_to(pt, out, input_path="graded"):
    spec = load_spec("pku-nc64c")
    spec = dataclasses.replace(spec, arithmetic=dataclasses.replace(spec.arithmetic,
                                                                    input_path=input_path))
    compile_checkpoint(pt, spec, out, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def setup(trained_synthetic, trained_chip):
    pt, _ = trained_synthetic
    chip = trained_chip
    val = load_dataset("synthetic", val_size=500).val.head(N)
    return str(pt), str(chip), val


def request(setup, **kw) -> AttackRequest:
    pt, chip, _ = setup
    kw.setdefault("spec", AttackSpec("fgsm", eps=(2, 16)))
    kw.setdefault("chip_image", chip)
    return AttackRequest(model=pt, n=N, batch_size=20, **kw)


def test_three_levels_side_by_side_with_hw_reading_quants_inputs(setup):
    pt, chip, val = setup
    res = run_attack(request(setup), log=lambda _: None, progress=False)
    lv = res["levels"]
    assert list(lv) == ["algo", "quant", "hw"]
    assert [lv[k]["source"] for k in lv] == ["algo", "quant", "quant"]
    assert lv["hw"]["weight_bits"] == 4 and lv["algo"]["weight_bits"] is None
    for k in lv:
        assert lv[k]["eps"]["16"]["adv_acc"] < lv[k]["clean_acc"] - 10, lv[k]
    assert res["agreement"]["clean"]["top1"] >= GRADED_AGREEMENT
    # recomputed independently: FGSM on quant (deterministic for direct encoding), rounded to
    # 8 bits, then the integer reference; the hw row must be exactly that
    model = load_checkpoint(pt).model
    model.set_quantization(4)
    x, y = val.images.float() / 255, val.labels
    x_adv = fgsm(model, x, y, 16 / 255)
    meta, arrays = read_chip_image(chip)
    im, norm = load_integer_model(meta, arrays), (meta["model"]["mean"], meta["model"]["std"])
    adv8 = torch.round(x_adv * 255).to(torch.uint8).numpy()
    ref_adv = run_reference(im, adv8, norm=norm).predictions
    assert lv["hw"]["eps"]["16"]["adv_acc"] == pytest.approx(100 * (ref_adv == y.numpy()).mean())
    # the hw spike activity comes from the simulator's counters and equals the reference's
    ref = run_reference(im, val.images.numpy(), norm=norm)
    for layer in im.layers[:-1]:
        expected = ref.spike_counts[layer.name].sum() / (np.prod(layer.out_shape) * 4 * N)
        assert lv["hw"]["spike_activity"][layer.name] == pytest.approx(expected, rel=1e-12)


def test_host_input_path_agrees_with_quant(setup, tmp_path):
    pt, _, _ = setup
    host = compile_to(pt, tmp_path / "host.chip", input_path="host")
    res = run_attack(request(setup, levels=("quant", "hw"), chip_image=str(host),
                             spec=AttackSpec("fgsm", eps=(8,))), log=lambda _: None,
                     progress=False)
    assert res["agreement"]["clean"]["top1"] >= HOST_AGREEMENT
    assert res["agreement"]["eps"]["8"]["top1"] >= HOST_AGREEMENT - 2.5


def test_hw_source_inputs_run_bit_exactly_and_saved_inputs_reproduce_the_run(setup, tmp_path):
    pt, chip, val = setup
    saved = tmp_path / "adv.npz"
    res = run_attack(request(setup, source="hw", save_inputs=str(saved)), log=lambda _: None,
                     progress=False)
    assert {v["source"] for v in res["levels"].values()} == {"hw-ste"}
    assert res["hw_source_exact"] == {"images": 2 * N, "identical": 2 * N}
    with np.load(saved, allow_pickle=False) as z:
        adv = z["adv/hw/16"]
        assert np.array_equal(z["clean"], val.images.numpy())
    assert np.abs(adv.astype(int) - val.images.numpy().astype(int)).max() <= 16
    meta, arrays = read_chip_image(chip)
    sim = Chip(machine_from_arrays(meta, arrays)).run(adv, record=True)
    ref = run_reference(load_integer_model(meta, arrays), adv, record=True,
                        norm=(meta["model"]["mean"], meta["model"]["std"]))
    assert np.array_equal(sim.logits, ref.logits)
    for name, trains in sim.spikes.items():
        assert np.array_equal(trains, ref.spikes[name].reshape(*ref.spikes[name].shape[:2], -1)
                              .transpose(1, 0, 2))
    # the attack through the chip's own arithmetic hurts the chip
    assert res["levels"]["hw"]["eps"]["16"]["adv_loss"] > 10
    again = run_attack(request(setup, inputs=str(saved)), log=lambda _: None, progress=False)
    assert again["levels"] == res["levels"] and again["agreement"] == res["agreement"]


def test_square_attacks_the_chip_as_a_black_box(setup, tmp_path):
    saved = tmp_path / "sq.npz"
    res = run_attack(request(setup, levels=("hw",), save_inputs=str(saved),
                             spec=AttackSpec("square", eps=(16,), queries=25)),
                     log=lambda _: None, progress=False)
    hw = res["levels"]["hw"]
    assert hw["source"] == "hw" and hw["eps"]["16"]["adv_acc"] < hw["clean_acc"]
    sq = res["square"]["hw"]["16"]
    assert sq["queried_level"] == "hw" and sq["budget"] == 25 and sq["success_rate"] > 0
    assert 1 <= sq["mean_queries"] <= 25 and sq["queries_per_second"] > 0
    with np.load(saved, allow_pickle=False) as z:
        moved = np.abs(z["adv/hw/16"].astype(int) - z["clean"].astype(int)).max()
    assert moved <= 16


def test_transfer_from_another_model(setup):
    pt, _, _ = setup
    res = run_attack(request(setup, levels=("quant", "hw"), source_model=pt,
                             spec=AttackSpec("fgsm", eps=(8,))), log=lambda _: None,
                     progress=False)
    assert res["levels"]["hw"]["source"].startswith("model:") and res["source"] == "model"


def _schema_from_readme() -> dict:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- attack-json-schema -->\s*```json\n(.*?)```", text, re.S)
    assert block, "the README documents the attack --json schema in a marked json block"
    return json.loads(block.group(1))


def _conforms(value, schema, where="$"):
    """A small structural check: dicts name their keys ("*" = any key), leaves name types."""
    if isinstance(schema, dict):
        assert isinstance(value, dict), where
        if "*" in schema:
            for k, v in value.items():
                _conforms(v, schema["*"], f"{where}.{k}")
            return
        missing = set(schema) - set(value) - {k for k in schema if k.endswith("?")}
        assert not missing, f"{where} lacks {missing}"
        for k, sub in schema.items():
            key = k.rstrip("?")
            if key in value:
                _conforms(value[key], sub, f"{where}.{key}")
        return
    types = {"number": (int, float), "integer": int, "string": str, "boolean": bool,
             "null": type(None)}
    allowed = tuple(t for name in schema.split("|") for t in np.atleast_1d(types[name]))
    assert isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed
                                               ), f"{where}: {value!r} is not {schema}"


def test_json_matches_the_schema_the_readme_documents(setup, tmp_path, capsys):
    pt, chip, _ = setup
    out = tmp_path / "a.json"
    code = main(["attack", pt, "--chip-image", chip, "--n", "20", "--eps", "8", "--json",
                 str(out), "--quiet"])
    assert code == 0
    _conforms(json.loads(out.read_text()), _schema_from_readme())


def test_a_chip_image_of_another_model_or_a_corrupt_one_is_refused(setup, tmp_path, capsys):
    pt, chip, _ = setup
    payload = torch.load(pt, weights_only=True)
    payload["state_dict"]["convs.0.weight"][0, 0, 0, 0] += 1.0
    other = tmp_path / "other.pt"
    torch.save(payload, other)
    other_chip = compile_to(other, tmp_path / "other.chip")
    with pytest.raises(UserError, match="was not compiled from"):
        run_attack(request(setup, chip_image=str(other_chip)), log=lambda _: None,
                   progress=False)
    bad = tmp_path / "bad.chip"
    data = bytearray(open(chip, "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    code = main(["attack", pt, "--chip-image", str(bad), "--n", "4", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture(scope="module")
def saved_quant_inputs(setup, tmp_path_factory):
    saved = tmp_path_factory.mktemp("inputs") / "adv.npz"
    run_attack(request(setup, levels=("quant",), spec=AttackSpec("fgsm", eps=(8,)),
                       save_inputs=str(saved)), log=lambda _: None, progress=False)
    return saved


@pytest.mark.parametrize("tamper,match", [
    (lambda z: {**z, "adv/quant/8": np.clip(z["adv/quant/8"].astype(int) + 9, 0, 255)
                .astype(np.uint8)}, "outside its eps"),
    (lambda z: {**z, "labels": np.array([object()] * len(z["labels"]))}, "unpickling"),
    (lambda z: {k: v for k, v in z.items() if k != "provenance"}, "lacks provenance"),
])
def test_a_tampered_inputs_file_is_refused(setup, saved_quant_inputs, tmp_path, tamper, match):
    with np.load(saved_quant_inputs, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **tamper(arrays))
    with pytest.raises(UserError, match=match):
        run_attack(request(setup, levels=("quant",), inputs=str(bad)), log=lambda _: None,
                   progress=False)
