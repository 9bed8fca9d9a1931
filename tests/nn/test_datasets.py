"""The shipped digits set and the split helper."""

from __future__ import annotations

import numpy as np
import pytest

from aiofit import datasets


def test_digits_shapes_dtypes_and_range() -> None:
    x, y = datasets.load_digits()
    assert x.shape == (1797, 64)
    assert x.dtype == np.float32
    assert y.shape == (1797,)
    assert y.dtype == np.int64
    assert x.min() == 0.0
    assert x.max() == 1.0
    # pixels are counts 0..16 scaled by 1/16: every value is a multiple of 1/16
    np.testing.assert_array_equal(x * 16, np.rint(x * 16))


def test_digits_match_the_uci_file() -> None:
    """Class counts and the first image as published (scikit-learn's digits.csv)."""
    x, y = datasets.load_digits()
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    first_rows = [[0, 0, 5, 13, 9, 1, 0, 0], [0, 0, 13, 15, 10, 15, 5, 0]]
    np.testing.assert_array_equal(x[0, :16] * 16, np.array(first_rows).ravel())
    assert y[:5].tolist() == [0, 1, 2, 3, 4]


def test_attribution_ships_with_the_data() -> None:
    from importlib import resources

    text = resources.files("aiofit").joinpath("data", "digits_ATTRIBUTION.txt").read_text()
    assert "Alpaydin" in text
    assert "Kaynak" in text
    assert "CC BY 4.0" in text


def test_split_sizes_disjoint_and_deterministic() -> None:
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    x_tr, x_te, y_tr, y_te = datasets.split(x, y, 0.25, seed=3)
    assert len(y_te) == 3  # ceil(0.25 * 10), as scikit-learn rounds the test part up
    assert len(y_tr) == 7
    assert sorted([*y_tr, *y_te]) == list(range(10))
    np.testing.assert_array_equal(x_tr[:, 0], 2 * y_tr)  # rows stay paired with labels
    again = datasets.split(x, y, 0.25, seed=3)
    np.testing.assert_array_equal(again[3], y_te)
    other = datasets.split(x, y, 0.25, seed=4)
    assert not np.array_equal(np.concatenate([other[2], other[3]]), np.concatenate([y_tr, y_te]))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_bad_fractions(fraction: float) -> None:
    with pytest.raises(ValueError, match=f"Received: fraction={fraction}"):
        datasets.split(np.zeros((10, 1)), np.zeros(10), fraction)


def test_split_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="Received: 10 and 9"):
        datasets.split(np.zeros((10, 1)), np.zeros(9), 0.2)
