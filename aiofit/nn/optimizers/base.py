"""The optimizer base: Keras 3's step, applied to one flat parameter buffer.

The model packs every trainable weight into one 1-D array (and every gradient
into another); ``segments`` says where each weight lies, in Keras's variable
order. A step is then a handful of vectorised in-place numpy calls over the
whole model, in Keras's order:

1. clip the gradients: ``clipnorm`` per weight (segment), or
   ``global_clipnorm`` over all of them, or ``clipvalue`` elementwise;
2. weight decay ``w -= w * weight_decay * learning_rate`` (if set);
3. the optimizer's update rule (``_update``);
4. ``iterations += 1``.

Arithmetic stays in the parameters' dtype: scalars are Python floats, which
numpy never lets upcast a float32 array.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

__all__ = ["Optimizer"]

Segments = list[tuple[int, int]]
State = dict[str, "np.ndarray | int | float"]


class Optimizer:
    """Base class; subclasses set ``slot_names`` and implement ``_update``.

    Args:
        learning_rate: a non-negative finite float, settable between steps.
        weight_decay: if set, ``w -= w * weight_decay * learning_rate`` before
            each update (Keras 3's decoupled decay).
        clipnorm: clip each weight's gradient to this L2 norm.
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: clip all gradients together to this global L2 norm.
        name: defaults to Keras's name for the optimizer.

    At most one of ``clipnorm``, ``clipvalue`` and ``global_clipnorm`` may be set.
    """

    default_name: ClassVar[str] = "optimizer"

    def __init__(
        self,
        learning_rate: float,
        *,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
    ) -> None:
        self.learning_rate = learning_rate
        self.weight_decay = _optional_float("weight_decay", weight_decay, allow_zero=True)
        self.clipnorm = _optional_float("clipnorm", clipnorm)
        self.clipvalue = _optional_float("clipvalue", clipvalue)
        self.global_clipnorm = _optional_float("global_clipnorm", global_clipnorm)
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        self.name = name or self.default_name
        self.built = False
        self._iterations = 0
        self._size = 0
        self._segments: Segments = []
        self._slots: dict[str, np.ndarray] = {}
        self._scratch = np.empty(0)
        self._pending_state: State | None = None

    # ------------------------------------------------------------ properties

    @property
    def learning_rate(self) -> float:
        """The learning rate used by the next step (a plain float)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = check_learning_rate(value)

    @property
    def slot_names(self) -> tuple[str, ...]:
        """Names of the state arrays, each shaped like the parameter buffer."""
        return ()

    @property
    def iterations(self) -> int:
        """How many steps have been applied."""
        return self._iterations

    # ------------------------------------------------------------ build/apply

    def build(self, params: np.ndarray, segments: Segments) -> None:
        """Allocate the state for a flat buffer laid out as ``segments``.

        Args:
            params: the 1-D floating parameter buffer.
            segments: ``(start, stop)`` of each weight within ``params``, in order.
        """
        _check_buffer("params", params)
        self._segments = _check_segments(segments, params.size)
        self._size = params.size
        self._slots = {
            name: np.full_like(params, self._slot_initial_value(name))
            for name in self.slot_names
        }
        self._scratch = np.empty_like(params)
        self.built = True
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.set_state(state)

    def apply(self, params: np.ndarray, grads: np.ndarray) -> None:
        """One step: update ``params`` in place from ``grads`` (which may be clobbered).

        Builds on first use with the whole buffer as a single weight if
        :meth:`build` was not called.
        """
        if not self.built:
            self.build(params, [(0, params.size)])
        self._check_step_args(params, grads)
        self._clip(grads)
        lr = self._learning_rate
        if self.weight_decay:  # Keras: w -= w * weight_decay * lr, here in one pass
            params *= 1.0 - self.weight_decay * lr
        self._update(params, grads, lr)
        self._iterations += 1

    def _update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def _slot_initial_value(self, name: str) -> float:
        return 0.0

    def _clip(self, grads: np.ndarray) -> None:
        if self.clipnorm is not None:
            for start, stop in self._segments:
                _clip_by_norm(grads[start:stop], self.clipnorm)
        elif self.global_clipnorm is not None:
            _clip_by_norm(grads, self.global_clipnorm)
        elif self.clipvalue is not None:
            np.clip(grads, -self.clipvalue, self.clipvalue, out=grads)

    def _check_step_args(self, params: np.ndarray, grads: np.ndarray) -> None:
        _check_buffer("params", params)
        _check_buffer("grads", grads)
        if params.size != self._size or grads.shape != params.shape:
            raise ValueError(
                f"{self.name} was built for {self._size} parameters; received params of "
                f"shape {params.shape} and grads of shape {grads.shape}"
            )
        if grads.dtype != params.dtype or self._scratch.dtype != params.dtype:
            raise ValueError(
                f"params, grads and the optimizer state must share one dtype "
                f"({self._scratch.dtype}); received params {params.dtype}, grads {grads.dtype}"
            )

    # ------------------------------------------------------------ state/config

    def get_state(self) -> State:
        """Copies of the slots plus ``iterations`` and ``learning_rate``.

        Enough to resume bit-identically with :meth:`set_state`.
        """
        state: State = {name: arr.copy() for name, arr in self._slots.items()}
        state["iterations"] = self._iterations
        state["learning_rate"] = self._learning_rate
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output (held until :meth:`build` if not built)."""
        missing = {"iterations", *self.slot_names} - set(state)
        if missing:
            raise ValueError(
                f"{self.name} state is missing {sorted(missing)}; received keys {sorted(state)}"
            )
        if not self.built:
            self._pending_state = dict(state)
            return
        for name in self.slot_names:
            value = np.asarray(state[name])
            if value.shape != (self._size,):
                raise ValueError(
                    f"{self.name} state {name!r} must have shape ({self._size},); "
                    f"received shape {value.shape}"
                )
            self._slots[name][...] = value
        self._iterations = int(state["iterations"])
        if "learning_rate" in state:
            self.learning_rate = float(state["learning_rate"])

    def get_config(self) -> dict[str, Any]:
        """JSON-able constructor arguments."""
        return {
            "name": self.name,
            "learning_rate": self._learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """A fresh (unbuilt) optimizer from :meth:`get_config`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self._learning_rate}>"


# ---------------------------------------------------------------- helpers


def _clip_by_norm(g: np.ndarray, max_norm: float) -> None:
    # Keras: g * max_norm / max(norm, max_norm). A non-finite norm makes every
    # element NaN (Keras's global rule), so the step poisons visibly, not silently.
    norm = math.sqrt(float(np.dot(g, g)))
    if not math.isfinite(norm):
        g[...] = math.nan
    elif norm > max_norm:
        g *= max_norm / norm


def check_learning_rate(value: Any) -> float:
    """``value`` as a float, or ValueError unless it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(
            f"`learning_rate` must be a non-negative finite float. "
            f"Received: learning_rate={value!r}"
        )
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"`learning_rate` must be a non-negative finite float. Received: learning_rate={value}"
        )
    return float(value)


def _optional_float(what: str, value: Any, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    if ok and math.isfinite(value) and (value > 0 or (allow_zero and value == 0)):
        return float(value)
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(
        f"`{what}` must be None or a finite float {bound}. Received: {what}={value!r}"
    )


def check_fraction(what: str, value: Any, *, closed: bool = False) -> float:
    """A float in ``[0, 1)`` (``[0, 1]`` if ``closed``), or ValueError."""
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    if ok and (0 <= value < 1 or (closed and value == 1)):
        return float(value)
    interval = "[0, 1]" if closed else "[0, 1)"
    raise ValueError(f"`{what}` must be a float in {interval}. Received: {what}={value!r}")


def check_non_negative(what: str, value: Any) -> float:
    """A finite float >= 0, or ValueError."""
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    if ok and math.isfinite(value) and value >= 0:
        return float(value)
    raise ValueError(f"`{what}` must be a finite float >= 0. Received: {what}={value!r}")


def _check_buffer(what: str, arr: Any) -> None:
    if not isinstance(arr, np.ndarray) or arr.ndim != 1:
        shape = getattr(arr, "shape", None)
        raise ValueError(f"`{what}` must be a flat 1-D numpy array; received shape {shape}")
    if arr.dtype.kind != "f":
        raise ValueError(f"`{what}` must be floating point; received dtype {arr.dtype}")


def _check_segments(segments: Any, size: int) -> Segments:
    out: Segments = []
    prev = 0
    for seg in segments:
        start, stop = (int(i) for i in seg)
        if not prev <= start <= stop <= size:
            raise ValueError(
                f"segments must be ordered, non-overlapping (start, stop) pairs within "
                f"[0, {size}]; received {list(segments)}"
            )
        out.append((start, stop))
        prev = stop
    return out
