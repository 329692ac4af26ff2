"""Square Attack on a known score function: it stays in the eps ball and on the 8-bit grid,
keeps to its query budget, counts what it asks, and lowers accuracy."""

import numpy as np
import pytest

from spikemesh.evaluation.square import margins, square_attack, square_fraction


def linear_scores(seed=0, classes=4, shape=(3, 8, 8)):
    """A fixed linear classifier on pixels: scores = W x (a level with no gradient exposed)."""
    w = np.random.default_rng(seed).normal(size=(classes, int(np.prod(shape))))
    calls = []

    def scores(images):
        assert images.dtype == np.uint8
        calls.append(len(images))
        return images.reshape(len(images), -1).astype(np.float64) @ w.T
    return scores, calls


def test_margins_and_schedule():
    z = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 5.0]])
    assert margins(z, np.array([0, 1])).tolist() == [1.0, 0.0]
    assert square_fraction(0.08, 0, 1000) == 0.08
    assert square_fraction(0.08, 999, 1000) == 0.08 / 512
    assert square_fraction(0.08, 60, 1000) == 0.08 / 16     # 6% of the budget: past 5%


def white_box_foolable(images, labels, eps, seed=0, classes=4):
    """For a linear model the best L-inf attack is known: move every pixel by eps against
    sign(w_y - w_j) for some class j. The fraction of images any attack could fool."""
    w = np.random.default_rng(seed).normal(size=(classes, images[0].size))
    x = images.reshape(len(images), -1).astype(float)
    fooled = np.zeros(len(x), bool)
    for j in range(classes):
        xa = np.clip(x - eps * np.sign(w[labels] - w[j]), 0, 255)
        fooled |= ((xa @ w.T).argmax(1) != labels) & (labels != j)
    return fooled.mean()


@pytest.mark.parametrize("eps", [1, 4, 16])
def test_square_respects_eps_budget_and_lowers_accuracy(eps):
    scores, calls = linear_scores()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (60, 3, 8, 8), dtype=np.uint8)
    labels = scores(images).argmax(1)            # every image correct when clean
    calls.clear()
    res = square_attack(scores, images, labels, eps, queries=200, rng=np.random.default_rng(2))
    moved = np.abs(res.adversarial.astype(int) - images.astype(int))
    assert res.adversarial.dtype == np.uint8 and moved.max() <= eps
    assert res.attacked.all() and (res.queries >= 1).all() and (res.queries <= 200).all()
    assert res.images_scored == sum(calls) == len(images) + res.queries.sum()
    final = scores(res.adversarial).argmax(1)
    assert np.array_equal(final != labels, res.fooled)
    assert (res.queries[~res.fooled] == 200).all()     # the unbroken ones spent the budget
    # random sign noise of the same size fools almost nothing; the attack most of what can be
    noise = np.clip(images + eps * rng.choice(np.array([-1, 1]), images.shape), 0, 255)
    noise_fooled = (scores(noise.astype(np.uint8)).argmax(1) != labels).mean()
    best = white_box_foolable(images, labels, eps)
    if eps >= 4:
        assert res.fooled.mean() >= 0.6 * best and res.fooled.mean() > noise_fooled + 0.2


def test_already_wrong_images_are_not_attacked():
    scores, _ = linear_scores()
    images = np.random.default_rng(3).integers(0, 256, (10, 3, 8, 8), dtype=np.uint8)
    labels = (scores(images).argmax(1) + 1) % 4  # every image wrong when clean
    res = square_attack(scores, images, labels, 8, queries=20, rng=np.random.default_rng(0))
    assert not res.attacked.any() and not res.fooled.any() and (res.queries == 0).all()
    assert np.array_equal(res.adversarial, images)
