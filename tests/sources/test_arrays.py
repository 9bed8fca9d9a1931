"""Arrays cut into batches: slicing, shuffling, weights, and checks paid once."""

from __future__ import annotations

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofit import DataError
from aiofit.sources.arrays import ArraySource


async def _pass(
    source: ArraySource,
) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
    p = await source.open_pass()
    out = []
    while (b := await p.next()) is not None:
        out.append(b)
    return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), batch_size=st.integers(1, 70), shuffle=st.booleans(),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_a_pass_covers_every_sample_once_in_ceil_n_over_b_batches(
    n: int, batch_size: int, shuffle: bool, seed: int
) -> None:
    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    y = np.arange(n) * 10
    source = ArraySource(x, y, batch_size=batch_size, shuffle=shuffle,
                         rng=np.random.default_rng(seed))  # fmt: skip
    batches = anyio.run(_pass, source)
    expected_batches = -(-n // batch_size)
    assert source.num_batches == len(batches) == expected_batches
    assert [len(b[0]) for b in batches[:-1]] == [batch_size] * (expected_batches - 1)
    seen = np.concatenate([b[0][:, 0] for b in batches])
    assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        assert seen.tolist() == list(range(n))
    for bx, by, _ in batches:  # targets travel with their inputs
        np.testing.assert_array_equal(by, bx[:, 0].astype(int) * 10)


@pytest.mark.anyio
async def test_each_pass_draws_the_next_permutation_from_rng() -> None:
    x = np.arange(12, dtype=np.float32).reshape(12, 1)
    source = ArraySource(x, np.zeros(12), batch_size=12, shuffle=True,
                         rng=np.random.default_rng(3))  # fmt: skip
    passes = [(await _pass(source))[0][0][:, 0].tolist() for _ in range(3)]
    expected = np.random.default_rng(3)
    assert passes == [expected.permutation(12).astype(float).tolist() for _ in range(3)]


@pytest.mark.anyio
async def test_sample_weight_and_class_weight_follow_the_shuffle() -> None:
    x = np.arange(6, dtype=np.float32).reshape(6, 1)
    y = np.array([0, 1, 2, 0, 1, 2])
    sw = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    source = ArraySource(x, y, sw, batch_size=4, shuffle=True, class_weight={2: 10.0},
                         rng=np.random.default_rng(0))  # fmt: skip
    for bx, by, bw in await _pass(source):
        idx = bx[:, 0].astype(int)
        expected = sw[idx] * np.where(y[idx] == 2, 10.0, 1.0)
        np.testing.assert_allclose(bw, expected)
        np.testing.assert_array_equal(by, y[idx])


def test_prediction_arrays_need_no_targets() -> None:
    source = ArraySource(np.ones((5, 2)), batch_size=2)
    assert source.y is None
    assert source.num_batches == 3


@pytest.mark.parametrize(
    ("x", "y", "sw", "problem"),
    [
        (np.ones((3, 1)), np.ones(2), None, "x and y have different lengths"),
        (np.array([[1.0], [np.nan]]), np.ones(2), None, r"x contains non-finite.*\(1, 0\)"),
        (np.ones((2, 1)), np.ones(2), np.array([1.0, -1.0]), "non-negative; received -1"),
        (np.array([["a"]]), np.ones(1), None, "numeric"),
    ],
)
def test_malformed_arrays_raise_data_error_before_any_batch(
    x: np.ndarray, y: np.ndarray, sw: np.ndarray | None, problem: str
) -> None:
    with pytest.raises(DataError, match=f"^the arrays passed as x/y/sample_weight: .*{problem}"):
        ArraySource(x, y, sw)
