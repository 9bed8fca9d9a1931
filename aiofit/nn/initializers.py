"""Weight initializers with Keras 3's names, defaults and fan rules.

Each initializer is called as ``init(shape, rng, dtype)`` and draws *only* from
the ``rng`` it is given, so a model seed reproduces every weight. Samples are
drawn in float64 and then cast, so the same seed gives the same weights (up to
rounding) in float32 and float64.

Fans follow Keras: a kernel ``(in, out)`` has ``fan_in = in`` and ``fan_out = out``;
a vector has both equal to its length; for higher ranks the leading axes are a
receptive field that multiplies both.

Example:
    >>> import numpy as np
    >>> w = get("glorot_uniform")((784, 512), np.random.default_rng(0), np.float32)
    >>> float(abs(w).max()) <= (6 / (784 + 512)) ** 0.5
    True
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ._config import Configured, from_identifier, lookup

__all__ = [
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Initializer",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "Zeros", "compute_fans", "get", "serialize",
]

Shape = tuple[int, ...]
# stddev of a standard normal truncated to [-2, 2]; Keras divides by it
_TRUNC_STD = 0.87962566103423978


def compute_fans(shape: Shape) -> tuple[int, int]:
    """Keras's ``(fan_in, fan_out)`` for a weight of ``shape``."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Standard normal draws, redrawn until all lie within two standard deviations."""
    z = rng.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return z


class Initializer(Configured):
    """Base class: ``init(shape, rng, dtype) -> np.ndarray``."""

    class_name: ClassVar[str] = ""

    def __call__(
        self, shape: Shape, rng: np.random.Generator, dtype: Any = np.float32
    ) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        return np.asarray(self.sample(shape, rng), dtype=dtype)

    def sample(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class Zeros(Initializer):
    """All zeros (Keras's default bias initializer)."""

    class_name = "Zeros"

    def sample(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(shape)


class Ones(Initializer):
    """All ones."""

    class_name = "Ones"

    def sample(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return np.ones(shape)


class Constant(Initializer):
    """Every entry equal to ``value``."""

    class_name = "Constant"

    def __init__(self, value: float = 0.0) -> None:
        self.value = float(value)

    def sample(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomNormal(Initializer):
    """Normal draws (not truncated) with Keras 3 defaults ``mean=0``, ``stddev=0.05``."""

    class_name = "RandomNormal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean, self.stddev = float(mean), float(stddev)

    def sample(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return self.mean + self.stddev * rng.standard_normal(shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomNormal):
    """Normal draws redrawn outside ``mean +- 2 stddev`` (Keras 3 ``stddev=0.05``)."""

    class_name = "TruncatedNormal"

    def sample(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return self.mean + self.stddev * _truncated_normal(rng, shape)


class RandomUniform(Initializer):
    """Uniform draws on ``[minval, maxval)``, Keras 3 defaults ``-0.05`` and ``0.05``."""

    class_name = "RandomUniform"

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
        self.minval, self.maxval = float(minval), float(maxval)

    def sample(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval}


class VarianceScaling(Initializer):
    """Keras's ``VarianceScaling``: variance ``scale / n`` with ``n`` chosen by ``mode``.

    ``distribution="truncated_normal"`` uses ``stddev = sqrt(scale / n) / 0.8796...``
    so the *truncated* draws have the target variance; ``"uniform"`` uses the
    limit ``sqrt(3 * scale / n)``; ``"untruncated_normal"`` plain normal draws.
    """

    class_name = "VarianceScaling"
    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(
        self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal"
    ) -> None:
        if not scale > 0:
            raise ValueError(f"`scale` must be positive. Received: scale={scale!r}")
        if mode not in self._MODES:
            raise ValueError(
                f"Invalid `mode`: expected one of {self._MODES}. Received: mode={mode!r}"
            )
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(
                f"Invalid `distribution`: expected one of {self._DISTRIBUTIONS}. "
                f"Received: distribution={distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def sample(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(variance) * rng.standard_normal(shape)
        return math.sqrt(variance) / _TRUNC_STD * _truncated_normal(rng, shape)

    def get_config(self) -> dict[str, Any]:
        if type(self) is not VarianceScaling:
            return {}
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class GlorotUniform(VarianceScaling):
    """Glorot (Xavier) uniform: limit ``sqrt(6 / (fan_in + fan_out))``; Dense's default kernel."""

    class_name = "GlorotUniform"

    def __init__(self) -> None:
        super().__init__(1.0, "fan_avg", "uniform")


class GlorotNormal(VarianceScaling):
    """Glorot normal: truncated, variance ``2 / (fan_in + fan_out)``."""

    class_name = "GlorotNormal"

    def __init__(self) -> None:
        super().__init__(1.0, "fan_avg", "truncated_normal")


class HeUniform(VarianceScaling):
    """He uniform: limit ``sqrt(6 / fan_in)``."""

    class_name = "HeUniform"

    def __init__(self) -> None:
        super().__init__(2.0, "fan_in", "uniform")


class HeNormal(VarianceScaling):
    """He normal: truncated, variance ``2 / fan_in``."""

    class_name = "HeNormal"

    def __init__(self) -> None:
        super().__init__(2.0, "fan_in", "truncated_normal")


class LecunUniform(VarianceScaling):
    """LeCun uniform: limit ``sqrt(3 / fan_in)``."""

    class_name = "LecunUniform"

    def __init__(self) -> None:
        super().__init__(1.0, "fan_in", "uniform")


class LecunNormal(VarianceScaling):
    """LeCun normal: truncated, variance ``1 / fan_in``."""

    class_name = "LecunNormal"

    def __init__(self) -> None:
        super().__init__(1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain``, from the QR of a normal matrix (Keras)."""

    class_name = "Orthogonal"

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def sample(self, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(
                f"The Orthogonal initializer needs a shape of rank >= 2. Received: shape={shape}"
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
        q *= np.sign(np.diag(r))  # makes the distribution uniform over orthogonal matrices
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


_CLASSES: tuple[type[Initializer], ...] = (
    Zeros, Ones, Constant, RandomNormal, TruncatedNormal, RandomUniform, VarianceScaling,
    GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal,
)
_SNAKE = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "truncated_normal": TruncatedNormal, "random_uniform": RandomUniform,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
}
_REGISTRY: dict[str, type[Initializer]] = {**_SNAKE, **{c.class_name: c for c in _CLASSES}}


def get(identifier: str | Initializer | dict[str, Any]) -> Initializer:
    """Return the initializer for a Keras name (``"he_normal"`` or ``"HeNormal"``),
    a serialized dict ``{"class_name", "config"}`` or an instance.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    return from_identifier(identifier, "initializer", Initializer,
                           lambda name: lookup("initializer", _REGISTRY, name, _SNAKE),
                           "a name, a config dict")


def serialize(initializer: Initializer) -> dict[str, Any]:
    """The JSON form used in layer configs: ``{"class_name": ..., "config": ...}``."""
    return {"class_name": initializer.class_name, "config": initializer.get_config()}
