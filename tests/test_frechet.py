"""Fréchet distance against closed forms computed by hand."""

import numpy as np
import pytest

from visbpp.core.analysis.frechet import frechet_distance, frechet_distance_features, gaussian_stats


def test_diagonal_covariances_closed_form():
    # For diagonal covariances: |mu1-mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 1.0 + 0.0 + 4.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-9)


def test_identical_sets_give_zero_and_shift_gives_squared_norm():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4))
    assert frechet_distance_features(f, f) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance_features(f, f + np.array([1.0, 2.0, 0.0, 0.0])) == pytest.approx(5.0, abs=1e-6)


def test_stats_use_unbiased_covariance():
    f = np.array([[0.0], [2.0]])
    mu, s = gaussian_stats(f)
    assert mu[0] == 1.0 and s == pytest.approx(2.0)  # (1 + 1) / (2 - 1)
    with pytest.raises(ValueError, match="N>=2"):
        gaussian_stats(np.zeros((1, 3)))
