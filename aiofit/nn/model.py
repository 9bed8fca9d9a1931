"""The ``Model`` base class: a chain of layers trained one batch at a time.

After build, every trainable weight lives in one flat 1-D buffer (and every
gradient in a twin buffer); layers hold reshaped views into them (packed by
:mod:`aiofit.nn._weights`, which also copies weights out and checks them back in).
Batches are checked and cast by :mod:`aiofit.nn._batch` before anything changes.
The optimizer then updates the whole model with a few vectorised calls per step,
and a step allocates nothing beyond what the layers cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import compile as compile_module
from ._batch import PreparedBatch, Shape, check_inputs, prepare_batch
from ._weights import assign_weights, copy_weights, pack
from .layers.base import Layer
from .trainer import Trainer

__all__ = ["Model"]


class Model(Trainer):
    """Base class: owns layers, weights, the compiled loss/optimizer/metrics.

    Subclasses (``Sequential``) decide how layers are added. The model is also an
    ``aiofit.Trainable``, so the async engine drives it through the batch API.

    Attributes:
        rng: the model's ``np.random.Generator`` (PCG64 seeded with ``seed``). It
            draws initial weights and dropout masks, and the engine's shuffling
            draws from it too, so one seed makes a whole run reproducible.
        stop_training: set to True (by a callback) to end ``fit`` after the batch.
    """

    def __init__(self, *, seed: int | None = None, dtype: Any = "float32",
                 name: str | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise TypeError(f"seed must be an int or None. Received: seed={seed!r}")
        dt = np.dtype(dtype)
        if not np.issubdtype(dt, np.floating):
            raise ValueError(f"dtype must be a floating dtype. Received: dtype={dtype!r}")
        self.name = name or type(self).__name__.lower()
        self.seed = None if seed is None else int(seed)
        self.dtype = dt
        self.rng = np.random.Generator(np.random.PCG64(self.seed))
        self.stop_training = False
        self.built = False
        self._layers: list[Layer] = []
        self._input_shape: Shape | None = None
        self._compiled: compile_module.Compiled | None = None
        self._optimizer_ready = False
        self._optimizer_owner: tuple[int, int] | None = None
        self._first_trainable = -1
        self._flat_params = np.zeros(0, dt)
        self._flat_grads = np.zeros(0, dt)
        self._segments: list[tuple[int, int]] = []

    # -- structure -----------------------------------------------------------------------

    @property
    def layers(self) -> list[Layer]:
        """The model's layers in order (a new list; ``Input`` is not a layer)."""
        return list(self._layers)

    @property
    def input_shape(self) -> Shape | None:
        """Shape of one input sample (without the batch axis), None before build."""
        return self._input_shape

    @property
    def output_shape(self) -> Shape | None:
        """Shape of one output sample, None before build."""
        if self._input_shape is None:
            return None
        return self._layers[-1].output_shape if self._layers else self._input_shape

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create all weights for inputs of ``input_shape`` (with the batch axis,
        e.g. ``(None, 20)``, as Keras takes it)."""
        shape = tuple(input_shape)
        if not shape or any(d is None for d in shape[1:]):
            raise ValueError(
                f"build() needs a batch input shape such as (None, 20). Received: {shape}"
            )
        features = tuple(int(d) for d in shape[1:])  # type: ignore[arg-type]
        if self._input_shape is None:
            self._build(features)
        elif features != self._input_shape:
            raise ValueError(
                f"Model {self.name!r} is already built for inputs of shape "
                f"{(None, *self._input_shape)}. Received: input_shape={shape}"
            )

    def _build(self, feature_shape: Shape) -> None:
        rng_state = self.rng.bit_generator.state
        try:
            shape = feature_shape
            for layer in self._layers:
                shape = tuple(layer.build(shape, self.rng, self.dtype))
        except BaseException:
            # A layer refused the shape: leave the model as unbuilt as it was.
            self.rng.bit_generator.state = rng_state
            raise
        self._input_shape = feature_shape
        self.built = True
        self._pack()

    def _pack(self) -> None:
        """Move every trainable weight into one flat buffer; layers keep views."""
        self._flat_params, self._flat_grads, self._segments = pack(self._layers, self.dtype)
        for layer in self._layers:
            layer.scratch_dy = True  # _backward hands each dY on once, then drops it
        self._first_trainable = next(
            (k for k, layer in enumerate(self._layers) if layer.params), -1)
        self._optimizer_ready = False
        self._prepare_optimizer()

    def _prepare_optimizer(self) -> None:
        if self.built and self._compiled is not None and not self._optimizer_ready:
            optimizer = self._compiled.optimizer
            # A recompile with the optimizer already built for this buffer keeps its
            # state, as in Keras; anything else starts it afresh.
            owner = (id(optimizer), id(self._flat_params))
            if self._optimizer_owner != owner or not getattr(optimizer, "built", False):
                optimizer.build(self._flat_params, self._segments)
                self._optimizer_owner = owner
            self._optimizer_ready = True

    # -- compile -------------------------------------------------------------------------

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None,
                metrics: Sequence[Any] | None = None,
                weighted_metrics: Sequence[Any] | None = None) -> None:
        """Configure the model for training (Keras's ``compile``).

        Args:
            optimizer: a name (``"adam"``) or an optimizer instance.
            loss: a name (``"sparse_categorical_crossentropy"``) or a loss instance.
            metrics: names or metric instances, computed *without* sample or
                class weights (as in Keras 3); each is logged under its name
                (``"acc"`` stays ``"acc"``, a repeat becomes ``"acc_1"``).
            weighted_metrics: metrics computed with the sample and class weights,
                logged after ``metrics``; a name already taken by a metric is
                logged as ``"weighted_<name>"``.
        """
        self._compiled = compile_module.resolve(optimizer, loss, metrics, weighted_metrics)
        self._optimizer_ready = False
        self._prepare_optimizer()

    @property
    def compiled(self) -> bool:
        """Whether ``compile()`` has been called."""
        return self._compiled is not None

    @property
    def optimizer(self) -> Any:
        """The compiled optimizer instance (None before compile)."""
        return None if self._compiled is None else self._compiled.optimizer

    @property
    def loss(self) -> Any:
        """The compiled loss instance (None before compile)."""
        return None if self._compiled is None else self._compiled.loss

    @property
    def metrics_names(self) -> list[str]:
        """The keys of the logs: ``["loss", *metrics, *weighted_metrics]`` by logs name."""
        names = [] if self._compiled is None else self._compiled.metric_names
        return ["loss", *names]

    def _require_loss(self, method: str) -> compile_module.Compiled:
        if self._compiled is None:
            raise RuntimeError(f"You must call compile() before using the model: {method}()")
        if self._compiled.loss is None:
            raise ValueError(
                f"No loss to compute: {method}() needs a `loss` argument in compile(). "
                "Received: loss=None"
            )
        return self._compiled

    # -- batch API -----------------------------------------------------------------------

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None,
                       class_weight: dict[int, float] | None = None, *,
                       _where: str | None = None) -> dict[str, float]:
        """One gradient step on one batch.

        Args:
            x: inputs of shape ``(n, *input_shape)``.
            y: targets: class indices for a sparse loss, else shaped like the output.
            sample_weight: optional non-negative weights of shape ``(n,)``.
            class_weight: optional ``{class index: weight}``, multiplied into each
                sample's weight by its target class.
            _where: how error messages name the batch (the engine passes e.g.
                ``"batch 12"``); private, not part of the ``Trainable`` protocol.

        Returns:
            ``{"loss": ..., <metric name>: ...}`` for this batch, computed on the
            forward pass before the update; ``loss`` includes regularisation.

        Raises:
            aiofit.DataError: the batch is malformed; nothing was changed.
            RuntimeError: the model was not compiled.
        """
        self._require_loss("train_on_batch")  # errors name the method the user called
        logs, grads = self.compute_gradients(
            x, y, sample_weight, class_weight, _where=_where or "train_on_batch")
        self.apply_gradients(grads)
        return logs

    def compute_gradients(self, x: Any, y: Any, sample_weight: Any = None,
                          class_weight: dict[int, float] | None = None, *,
                          _where: str | None = None) -> tuple[dict[str, float], np.ndarray]:
        """The first half of :meth:`train_on_batch`: forward and backward, no update.

        Data-parallel training computes each rank's gradients with this, averages
        them across ranks, then steps with :meth:`apply_gradients`.

        Takes the arguments of :meth:`train_on_batch` and raises its errors.

        Returns:
            ``(logs, grads)``: the batch's logs (as ``train_on_batch`` returns them)
            and every trainable weight's gradient of the mean batch loss in one flat
            1-D array, laid out as the weights are packed (layer by layer, Keras's
            order). ``grads`` is the model's own buffer: the next call overwrites it.
        """
        compiled = self._require_loss("compute_gradients")
        X, Y, SW = self._validate(x, y, sample_weight, class_weight, _where or "compute_gradients")
        y_pred = self._forward(X, True)
        # Under a softmax, a cross-entropy gives d loss / d logits directly (Keras's
        # TensorFlow backend does the same): a few passes instead of a dozen.
        last = self._layers[-1] if self._layers else None
        by_logits = last is not None and last.ends_in_softmax and \
            compiled.loss.value_and_logits_grad(Y, y_pred, SW)
        value, grad = by_logits or compiled.loss.value_and_grad(Y, y_pred, SW)
        logs = self._logs(compiled, value, Y, y_pred, SW)
        self._backward(grad, from_logits=bool(by_logits))
        return logs, self._flat_grads

    def apply_gradients(self, grads: np.ndarray) -> None:
        """One optimizer step from a flat gradient laid out as :meth:`compute_gradients`'s.

        Args:
            grads: a 1-D array of the model's dtype and parameter count; the
                optimizer may overwrite it (clipping works in place).

        Raises:
            RuntimeError: the model was not compiled.
            ValueError: ``grads`` has the wrong shape or dtype.
        """
        compiled = self._require_loss("apply_gradients")
        params = self._flat_params
        if not isinstance(grads, np.ndarray) or grads.shape != params.shape \
                or grads.dtype != params.dtype:
            raise ValueError(
                f"apply_gradients() takes a 1-D {params.dtype} array of {params.size} "
                "gradients, as compute_gradients() returns. Received: "
                f"{getattr(grads, 'dtype', type(grads).__name__)} of shape "
                f"{getattr(grads, 'shape', None)}"
            )
        if params.size:
            compiled.optimizer.apply(params, grads)

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None, *,
                      _where: str | None = None,  # noqa: PT019 (Keras's name, not a test)
                      ) -> dict[str, float]:
        """Loss and metrics of one batch in inference mode; nothing is updated.

        Takes ``x``, ``y``, ``sample_weight`` and ``_where`` as ``train_on_batch``
        does, and raises the same errors.
        """
        compiled = self._require_loss("test_on_batch")
        X, Y, SW = self._validate(x, y, sample_weight, None, _where or "test_on_batch")
        y_pred = self._forward(X, False)
        return self._logs(compiled, compiled.loss(Y, y_pred, SW), Y, y_pred, SW)

    def predict_on_batch(self, x: Any, *, _where: str | None = None) -> np.ndarray:
        """The model's outputs for one batch (inference mode), as a new array."""
        xa = check_inputs(self._layers, self._input_shape, x, _where or "predict_on_batch")
        if self._input_shape is None:
            self._build(xa.shape[1:])
        out = self._forward(np.asarray(xa, self.dtype), False)
        return np.array(out, copy=True)

    def _validate(self, x: Any, y: Any, sample_weight: Any,
                  class_weight: dict[int, float] | None, where: str) -> PreparedBatch:
        """Every check happens first (in ``prepare_batch``); then an unbuilt model builds."""
        kind = self._compiled.kind if self._compiled is not None else None
        X, Y, SW = prepare_batch(self._layers, self._input_shape, (x, y, sample_weight),
                                 class_weight, kind=kind, dtype=self.dtype, where=where)
        if not self.built:
            self._build(X.shape[1:])
        return X, Y, SW

    def _forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        for layer in self._layers:
            X = layer.forward(X, training)
        return X

    def _backward(self, grad: np.ndarray, *, from_logits: bool = False) -> None:
        """Fill the gradients from ``grad``: d loss / d output, or with ``from_logits``
        d loss / d the logits of the last layer's softmax (see ``Layer.ends_in_softmax``)."""
        layers, first = self._layers, self._first_trainable
        if first < 0:
            return
        dY: Any
        k, dY = len(layers) - 1, grad
        if from_logits:
            dY = layers[k].backward_from_z(grad, need_dx=k > first)
            k -= 1
        while k >= first:
            dY = layers[k].backward(dY, need_dx=k > first)
            k -= 1
        for layer in layers:
            layer.add_regularization_grads()

    def _logs(self, compiled: compile_module.Compiled, value: float, Y: np.ndarray,
              y_pred: np.ndarray, SW: np.ndarray | None) -> dict[str, float]:
        penalty = 0.0
        for layer in self._layers:
            penalty += layer.regularization_loss()
        logs = {"loss": float(value) + penalty}
        for name, metric in compiled.metrics:
            logs[name] = float(metric(Y, y_pred))
        for name, metric in compiled.weighted_metrics:
            logs[name] = float(metric(Y, y_pred, SW))
        return logs

    # -- weights -------------------------------------------------------------------------

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weights, layer by layer, in Keras's order."""
        return copy_weights(self._layers)

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Copy ``weights`` (same order and shapes as ``get_weights()``) into the model.

        Everything is checked before anything is copied, so a bad list changes nothing.
        """
        if not self.built:
            raise ValueError(
                f"set_weights() on model {self.name!r}, which is not built yet: call "
                "build(input_shape) or run a batch first. Received: "
                f"{len(weights)} weights"
            )
        assign_weights(self._layers, weights, self.name)

    def count_params(self) -> int:
        """Total number of weights (trainable and not)."""
        if not self.built:
            raise ValueError(
                f"You tried to call count_params() on model {self.name!r}, but it is not "
                "built yet: call build(input_shape) or run a batch first."
            )
        return sum(layer.count_params() for layer in self._layers)

    # -- summary, saving ------------------------------------------------------------------

    def summary(self, line_length: int | None = None,
                print_fn: Callable[[str], Any] | None = None) -> None:
        """Print a Keras-style table: layer, output shape, parameter count, totals.

        Args:
            line_length: total width of the table (it never gets narrower than
                its content).
            print_fn: called with each line (default ``print``), e.g. a logger's
                ``info``.
        """
        from .summary import summary_lines

        emit = print if print_fn is None else print_fn
        for line in summary_lines(self, line_length):
            emit(line)

    def save(self, path: Any) -> None:
        """Save architecture, weights, compile config, optimizer and rng state.

        One file at exactly ``path`` (no suffix added), written atomically; load it
        with ``aiofit.load_model(path)``.
        """
        from .saving import save_model

        save_model(self, path)

    def save_weights(self, path: Any) -> None:
        """Save ``get_weights()`` only: one no-pickle ``.npz`` at exactly ``path``, atomically."""
        from .saving import save_weights

        save_weights(self, path)

    def load_weights(self, path: Any) -> None:
        """Set the weights from a file of ``save_weights`` (or ``save``).

        Raises:
            ValueError: the file is damaged or foreign, or its weights' count or
                shapes differ from the model's (naming the path and the first
                mismatch); the model is then unchanged.
        """
        from .saving import load_weights

        load_weights(self, path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} layers={len(self._layers)}>"
