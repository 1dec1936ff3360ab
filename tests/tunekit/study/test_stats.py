import math

import pytest

from tunekit.study.stats import difference_ci, mean_ci


def test_mean_ci_matches_the_hand_computed_t_interval():
    mean, half_width = mean_ci([1, 2, 3, 4])
    # t_{0.975,3} = 3.182446, s = 1.290994, n = 4
    assert mean == 2.5
    assert half_width == pytest.approx(3.182446 * 1.290994 / 2, rel=1e-6)
    assert half_width == pytest.approx(2.054, abs=1e-3)
    assert mean_ci([1, 2, 3, 4], confidence=0.99)[1] > half_width


def test_mean_ci_one_value_has_unknown_width_and_none_is_an_error():
    mean, half_width = mean_ci([0.7])
    assert mean == 0.7 and math.isnan(half_width)
    with pytest.raises(ValueError):
        mean_ci([])
    with pytest.raises(ValueError):
        mean_ci([1, 2], confidence=1.5)


def test_difference_ci_pairs_equal_seeds_and_falls_back_to_welch():
    a, b = {0: 0.80, 1: 0.85, 2: 0.90}, {0: 0.70, 1: 0.74, 2: 0.81}
    mean, half_width, method = difference_ci(a, b)
    assert method == "paired t"
    assert (mean, half_width) == pytest.approx(mean_ci([0.10, 0.11, 0.09]))
    # the same numbers unpaired: the seed-to-seed spread is no longer cancelled
    mean, welch_half_width, method = difference_ci(a, {3: 0.70, 4: 0.74, 5: 0.81})
    assert method == "Welch t" and mean == pytest.approx(0.10) and welch_half_width > 4 * half_width
