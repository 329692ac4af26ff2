import pytest
import torch

from training.neurons import LIF, SpikeFunction, surrogate


def test_surrogate_matches_eq2():
    theta = 0.4
    u = torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, -0.1])
    expected = torch.tensor([0.0, 0.5, 1.0, 0.5, 0.0, 0.0, 0.0])
    assert torch.allclose(surrogate(u, theta), expected)
    assert torch.allclose(surrogate(u, theta, scale=0.3), 0.3 * expected)


def test_spike_function_backward_is_the_surrogate():
    u = torch.tensor([0.2, 0.4, 0.5], requires_grad=True)
    s = SpikeFunction.apply(u, torch.tensor(0.4), 1.0)
    assert s.tolist() == [0.0, 0.0, 1.0]
    s.sum().backward()
    assert torch.allclose(u.grad, torch.tensor([0.5, 1.0, 0.75]))


def run(lif: LIF, currents: list[float]) -> tuple[list[float], list[float]]:
    u, spikes, us = None, [], []
    for c in currents:
        u, s = lif.step(u, torch.tensor([c]))
        spikes.append(float(s))
        us.append(round(float(u), 6))
    return spikes, us


def test_hand_checked_soft_reset_trace():
    # theta 1, lambda 0.5: u = 0.6, 0.9, 1.05 -> fire -> 0.05, 1.525 -> fire -> 0.525, 0.2625
    spikes, us = run(LIF(1.0, 0.5), [0.6, 0.6, 0.6, 1.5, 0.0])
    assert spikes == [0, 0, 1, 1, 0]
    assert us == [0.6, 0.9, 0.05, 0.525, 0.2625]


def test_hand_checked_hard_reset_trace():
    spikes, us = run(LIF(1.0, 0.5, reset="hard"), [0.6, 0.6, 0.6, 1.5, 0.0])
    assert spikes == [0, 0, 1, 1, 0]
    assert us == [0.6, 0.9, 0.0, 0.0, 0.0]


def test_threshold_is_strict():
    spikes, _ = run(LIF(1.0, 1.0), [1.0, 0.0, 0.001])
    assert spikes == [0, 0, 1]  # u == theta does not fire; the first step above it does


@pytest.mark.parametrize("bad", [dict(theta=0.0, leak=0.5), dict(theta=1.0, leak=1.5)])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        LIF(bad["theta"], bad["leak"])
