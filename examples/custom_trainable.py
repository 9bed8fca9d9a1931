"""A hand-written model that aiofit can drive: softmax regression on the digits.

Any object with the members of ``aiofit.Trainable`` can be trained; it needs no
base class. This one is multinomial logistic regression written directly in
numpy: ``p = softmax(x @ W + b)``, cross-entropy loss, plain gradient descent.

Run: ``python examples/custom_trainable.py``
"""

from __future__ import annotations

from typing import Any

import numpy as np

import aiofit
from aiofit import datasets


class SoftmaxRegression:
    """Linear classifier ``softmax(x @ W + b)`` trained by gradient descent."""

    def __init__(self, n_features: int, n_classes: int, learning_rate: float = 0.5,
                 seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.W = rng.normal(0.0, 0.01, size=(n_features, n_classes))
        self.b = np.zeros(n_classes)
        self.learning_rate = learning_rate
        self.stop_training = False

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", "accuracy"]

    def predict_on_batch(self, x: Any) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ self.W + self.b
        z -= z.max(axis=1, keepdims=True)  # stable softmax
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _logs(self, p: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, float]:
        nll = -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))
        correct = p.argmax(axis=1) == y
        return {"loss": float(np.sum(w * nll) / len(y)),
                "accuracy": float(np.sum(w * correct) / np.sum(w))}

    def _prepare(self, x: Any, y: Any, sample_weight: Any) -> tuple[np.ndarray, ...]:
        xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y).astype(np.int64).ravel()
        if xa.ndim != 2 or xa.shape[1] != self.W.shape[0] or len(xa) != len(ya):
            raise aiofit.DataError(
                f"expected x of shape (n, {self.W.shape[0]}) and n labels. "
                f"Received: x with shape {xa.shape}, y with shape {np.shape(y)}")
        w = np.ones(len(ya)) if sample_weight is None else np.asarray(sample_weight, float)
        return xa, ya, w

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        xa, ya, w = self._prepare(x, y, sample_weight)
        p = self.predict_on_batch(xa)
        logs = self._logs(p, ya, w)  # this batch's values, before the update
        d_z = p.copy()
        d_z[np.arange(len(ya)), ya] -= 1.0  # d(cross-entropy)/d(logits)
        d_z *= (w / len(ya))[:, None]
        self.W -= self.learning_rate * (xa.T @ d_z)
        self.b -= self.learning_rate * d_z.sum(axis=0)
        return logs

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        xa, ya, w = self._prepare(x, y, sample_weight)
        return self._logs(self.predict_on_batch(xa), ya, w)

    def get_weights(self) -> list[np.ndarray]:
        return [self.W.copy(), self.b.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        W, b = (np.asarray(w, dtype=np.float64) for w in weights)
        if W.shape != self.W.shape or b.shape != self.b.shape:
            raise ValueError(f"expected shapes {self.W.shape} and {self.b.shape}. "
                             f"Received: {W.shape} and {b.shape}")
        self.W[...], self.b[...] = W, b


async def main(epochs: int = 20, batch_size: int = 32, seed: int = 0) -> float:
    """Train on 80% of the digits with ``aiofit.fit``; print and return the test accuracy."""
    x, y = datasets.load_digits()
    x_train, x_test, y_train, y_test = datasets.split(x, y, 0.2, seed=seed)
    model = SoftmaxRegression(x.shape[1], 10, seed=seed)
    assert isinstance(model, aiofit.Trainable)
    history = await aiofit.fit(model, x_train, y_train, batch_size=batch_size,
                               epochs=epochs, verbose=0)
    logs = await aiofit.evaluate(model, x_test, y_test, verbose=0)
    print(f"epochs: {len(history.epoch)}  test loss: {logs['loss']:.4f}  "
          f"test accuracy: {logs['accuracy']:.4f}")
    return logs["accuracy"]


if __name__ == "__main__":
    aiofit.run(main())
