"""Small datasets shipped with aiofit, so examples and tests run offline.

Example:
    >>> from aiofit import datasets
    >>> x, y = datasets.load_digits()
    >>> x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=0)
    >>> x_train.shape, x_test.shape
    ((1438, 64), (359, 64))
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

__all__ = ["load_digits", "split"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The UCI 8x8 handwritten digits (1797 samples, 10 classes).

    The set scikit-learn ships as ``load_digits``: Alpaydin & Kaynak, UCI Machine
    Learning Repository, CC BY 4.0 (see ``aiofit/data/digits_ATTRIBUTION.txt``).

    Returns:
        ``(x, y)``: ``x`` float32 of shape ``(1797, 64)``, the 8x8 images flattened
        row by row and scaled from 0..16 to ``[0, 1]``; ``y`` int64 of shape
        ``(1797,)``, the digit 0..9.
    """
    source = resources.files("aiofit").joinpath("data", "digits.npz")
    with source.open("rb") as f, np.load(f, allow_pickle=False) as data:
        images = data["images"]
        target = data["target"]
    x = images.astype(np.float32) / np.float32(16.0)
    return x, target.astype(np.int64)


def split(
    x: Any, y: Any, fraction: float = 0.2, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and hold out ``fraction`` of the samples, like scikit-learn's split.

    Args:
        x: inputs, indexed along the first axis.
        y: targets with the same number of samples as ``x``.
        fraction: the share of samples in the test part, strictly between 0 and 1.
        seed: seeds the shuffle (``None``: a fresh random one).

    Returns:
        ``(x_train, x_test, y_train, y_test)``; the test part has
        ``ceil(fraction * n)`` samples, as in scikit-learn.
    """
    xa, ya = np.asarray(x), np.asarray(y)
    n = len(xa)
    if len(ya) != n:
        raise ValueError(
            f"x and y must have the same number of samples. Received: {n} and {len(ya)}"
        )
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            f"fraction must be between 0 and 1 (exclusive). Received: fraction={fraction}"
        )
    n_test = int(np.ceil(fraction * n))
    if n_test >= n:
        raise ValueError(
            f"fraction {fraction} of {n} samples leaves no training samples. "
            f"Received: fraction={fraction}"
        )
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return xa[train], xa[test], ya[train], ya[test]
