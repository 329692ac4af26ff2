"""The dense torch run of the integer model (the speed baseline chipsim is measured against)
gives exactly the numpy reference's results."""

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings

from compiler.reference import run_reference
from spikemesh.bench.torch_baseline import _DenseLayer, run_reference_torch
from tests.helpers import MEAN, NETWORK_CASES, STD, integer_model, random_images, random_layers, tiny_spec


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**NETWORK_CASES)
def test_torch_reference_equals_numpy_reference(seed, encoding, reset, leak, bits, input_path):
    rng = np.random.default_rng(seed)
    model = integer_model(random_layers(rng, leak=leak, theta=(0.3, 0.6)), encoding=encoding,
                          bits=bits, reset=reset, spec=tiny_spec(input_path=input_path))
    images = random_images(rng, 6)
    ref = run_reference(model, images, rng=np.random.default_rng(seed), norm=(MEAN, STD))
    dense = run_reference_torch(model, images, rng=np.random.default_rng(seed), norm=(MEAN, STD))
    np.testing.assert_array_equal(dense.logits, ref.logits)
    for name, count in ref.spike_counts.items():
        np.testing.assert_array_equal(dense.spike_counts[name], count, err_msg=name)


def test_each_layer_takes_float32_only_where_its_sums_are_exact():
    rng = np.random.default_rng(0)
    model = integer_model(random_layers(rng), encoding="direct", bits=4,
                          spec=tiny_spec(input_path="graded"))
    dtypes = {l.name: _DenseLayer(model, i).dtype for i, l in enumerate(model.layers)}
    # graded pixels x gains reach 2^24 on conv1; spike layers sum at most fan-in x 15
    assert dtypes["conv1"] == torch.float64
    assert all(dtypes[n] == torch.float32 for n in ("conv2", "fc1", "out"))
