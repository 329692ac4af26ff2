import numpy as np
import pytest

from artifacts.errors import UserError
from artifacts.intmath import conv3x3, merge_pool
from compiler.integer_model import Leak, build_integer_model
from compiler.reference import run_reference
from compiler.rules import Network, check
from compiler.spec import ArithmeticSpec, ChipSpec

ARITH = ArithmeticSpec(threshold_bits=20, membrane_bits=28)


def test_leak_is_a_shift_for_powers_of_two_and_fixed_point_otherwise():
    assert Leak.from_float(0.5, 8) == Leak(1)
    assert Leak.from_float(0.25, 8) == Leak(2)
    assert Leak.from_float(1.0, 8) == Leak(0)
    assert Leak.from_float(0.75, 8) == Leak(8, 192)
    u = np.array([7, -7, 100])
    assert Leak(1).apply(u).tolist() == [3, -4, 50]          # arithmetic shift floors
    assert Leak(8, 192).apply(u).tolist() == [5, -6, 75]


def one_neuron(encoding, theta=0.4, leak=0.5, T=4, reset="soft"):
    layers = [{"name": "fc1", "kind": "fc", "weight": np.array([[1.0]]), "theta": theta,
               "leak": leak, "pooled_input": False, "in_shape": (1,), "out_shape": (1,)},
              {"name": "out", "kind": "out", "weight": np.array([[1.0]]), "theta": 1.0,
               "leak": 1.0, "pooled_input": False, "in_shape": (1,), "out_shape": (1,)}]
    return build_integer_model(layers, timesteps=T, encoding=encoding, weight_bits=1, mean=(0.5,),
                               std=(0.25,), reset=reset, arith=ARITH, num_classes=1)


def test_hand_computed_phase_trace():
    # Phase events for p=255 over 4 steps: 128, 64, 32, 16 (denominator 256). Weight +1, alpha 1,
    # theta 0.4 -> 102.4 units; f = 12 puts round(102.4 * 4096) = 419430 in the top half of a
    # 20-bit register. Currents 128<<12 = 524288, 262144, 131072, 65536. Leak 1/2 = >> 1:
    #   u0 = 524288 > 419430 -> spike, u = 104858
    #   u1 = 52429 + 262144 = 314573;  u2 = 157286 + 131072 = 288358;  u3 = 144179 + 65536 = 209715
    model = one_neuron("phase")
    fc1 = model.layers[0]
    assert fc1.threshold == 419430 and fc1.weight_shift == 12 and fc1.in_denominator == 256
    res = run_reference(model, np.full((1, 1, 1, 1), 255, np.uint8), record=True)
    assert res.spikes["fc1"][:, 0, 0].tolist() == [1, 0, 0, 0]
    # the float model gives u = 0.1, 0.3, 0.275, 0.2: the integer membranes are these x 2^20
    assert res.spike_counts["fc1"].tolist() == [1]


def test_hard_reset_and_latency_trace():
    # latency, T=4: p=255 fires at step 0 only; theta 0.4 < 1 so the neuron fires once then,
    # with hard reset, stays at 0 while the input is silent.
    model = one_neuron("latency", reset="hard")
    res = run_reference(model, np.full((1, 1, 1, 1), 255, np.uint8), record=True)
    assert res.spikes["fc1"][:, 0, 0].tolist() == [1, 0, 0, 0]
    res = run_reference(model, np.full((1, 1, 1, 1), 128, np.uint8), record=True)
    assert res.spikes["fc1"][:, 0, 0].tolist() == [0, 1, 0, 0]  # fires at floor(127*4/255) = 1


def test_pooling_as_axon_merge_is_exact():
    rng = np.random.default_rng(0)
    spikes = (rng.random((3, 4, 8, 8)) < 0.3).astype(np.int64)
    merged = merge_pool(spikes)
    avg = spikes.reshape(3, 4, 4, 2, 4, 2).mean(axis=(3, 5))
    assert np.array_equal(merged, (4 * avg).astype(np.int64))
    # a conv after the pool: integer current on merged axons == 4 x float conv of the average
    w = rng.integers(-15, 16, (5, 4, 3, 3))
    assert np.array_equal(conv3x3(merged, w), np.rint(4 * conv3x3_float(avg, w)).astype(np.int64))


def conv3x3_float(x, w):
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    b, c, h, ww = x.shape
    out = np.zeros((b, w.shape[0], h, ww))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("bchw,oc->bohw", xp[:, :, dy:dy + h, dx:dx + ww], w[:, :, dy, dx])
    return out


def test_weight_bits_rule_names_the_numbers():
    layers = [{"name": "out", "kind": "out", "weight": np.ones((2, 3)), "theta": 1.0, "leak": 1.0,
               "pooled_input": False, "in_shape": (3,), "out_shape": (2,)}]
    spec = ChipSpec(arithmetic=ArithmeticSpec(max_weight_bits=4))
    match = "rule weight-bits: the model uses 8-bit weights, the chip stores 1 to 4"
    with pytest.raises(UserError, match=match):
        check("network", Network(layers, "rate", 8, (1.0,), spec))


@pytest.mark.parametrize("input_path,bar", [
    ("host", 0.99),    # integer arithmetic alone: measured 100% on 150 images
    ("graded", 0.90),  # plus the conversion error of folding normalization into 9-bit gains
])
def test_reference_agrees_with_the_quantized_algorithm_model(trained_synthetic, input_path, bar):
    import dataclasses

    from compiler.compile import quantize_checkpoint
    from compiler.spec import load_spec
    from training.checkpoint import load_checkpoint
    from training.data import load_dataset
    from training.evaluate import predict

    path, _ = trained_synthetic
    spec = load_spec("pku-nc64c")
    spec = dataclasses.replace(spec, arithmetic=dataclasses.replace(spec.arithmetic,
                                                                     input_path=input_path))
    model, _ = quantize_checkpoint(path, spec)
    val = load_dataset("synthetic", val_size=500).val.head(150)
    ckpt = load_checkpoint(path)
    ref = run_reference(model, val.images.numpy(), norm=(ckpt.config.mean, ckpt.config.std))
    ckpt.model.set_quantization(4)
    algo = predict(ckpt.model, val).numpy()
    agreement = (ref.predictions == algo).mean()
    assert agreement >= bar, agreement
