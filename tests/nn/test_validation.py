"""split_batch / check_arrays: batches that are not arrays get a DataError naming them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aiofit import DataError
from aiofit.nn.validation import check_arrays, split_batch


@pytest.mark.parametrize(
    ("batch", "received"),
    [
        ({"x": np.zeros((2, 1)), "y": np.zeros(2)},
         r"received a dict with keys \['x', 'y'\] \(dicts of named inputs are not supported\)"),
        ("xy", "received a str 'xy'"),
        (b"xyz", "received a bytes b'xyz'"),
        ("z" * 100, "received a str '" + "z" * 40 + r"'\.\.\.$"),
        ([np.zeros(2)] * 4, "received a list of length 4"),
        (np.zeros((2, 2)), "received a ndarray"),
    ],
)
def test_split_batch_names_what_it_received(batch: Any, received: str) -> None:
    with pytest.raises(DataError, match=rf"^batch 7 of epoch 2: expected a tuple .*{received}"):
        split_batch(batch, "batch 7 of epoch 2")


def test_a_ragged_batch_is_a_data_error_not_numpys_value_error() -> None:
    with pytest.raises(DataError, match=r"^batch 3: x cannot be made into one numeric") as info:
        check_arrays([[1, 2], [3]], [0, 1], where="batch 3")
    assert "received a list of length 2" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)  # numpy's own message is kept


@pytest.mark.parametrize("role", ["x", "y", "sample_weight"])
@pytest.mark.parametrize(
    ("bad", "received"), [({"a": 1}, r"a dict with keys \['a'\]"), ("ab", "a str 'ab'")]
)
def test_dicts_and_strings_name_the_role(role: str, bad: Any, received: str) -> None:
    args = {"x": np.zeros((2, 1)), "y": np.zeros(2), "sample_weight": np.ones(2), role: bad}
    expected = rf"^here: {role} must be a numeric array; received {received}"
    with pytest.raises(DataError, match=expected):
        check_arrays(args["x"], args["y"], args["sample_weight"], where="here")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
@pytest.mark.parametrize("huge", [False, True])
@pytest.mark.parametrize("use_blas", [False, True])
def test_the_finiteness_check_is_exact(
    dtype: Any, bad: float | None, huge: bool, use_blas: bool
) -> None:
    # Huge finite values are no false alarm (with BLAS, their squares overflow the
    # dot product: the exact test then decides), a non-finite value among them is
    # found at its index, and so is one in an array that is not contiguous.
    x = np.full((4, 5), np.finfo(dtype).max / 2 if huge else 0.5, dtype=dtype)
    if bad is None:
        assert check_arrays(x, use_blas=use_blas)[0] is x
        assert check_arrays(np.asfortranarray(x), use_blas=use_blas)[0].shape == (4, 5)
        return
    x[2, 3] = bad
    with pytest.raises(DataError, match=r"x contains non-finite values; first at index \(2, 3\)"):
        check_arrays(x, use_blas=use_blas)
    with pytest.raises(DataError, match=r"first at index \(2, 3\)"):
        check_arrays(np.asfortranarray(x), use_blas=use_blas)  # not contiguous: exact test


def test_the_blas_check_finds_infinities_of_both_signs_together() -> None:
    x = np.zeros((3, 4), np.float32)
    x[0, 1], x[2, 2] = np.inf, -np.inf  # their squares do not cancel as their sum would
    with pytest.raises(DataError, match=r"first at index \(0, 1\)"):
        check_arrays(x, use_blas=True)
