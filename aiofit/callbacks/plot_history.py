"""PlotHistory: a PNG of the training curves, rewritten atomically after every epoch."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from .._atomic import atomic_write, check_writable_dir
from .base import Callback, Logs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PlotHistory", "render"]

_COLUMNS = 3
_PANEL_SIZE = (4.5, 3.4)  # inches per subplot


def _import_matplotlib() -> None:
    try:
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "PlotHistory needs the `matplotlib` package, which is in aiofit's `plot` extra: "
            'pip install "aiofit[plot]"'
        ) from exc


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def panel_names(history: Mapping[str, Sequence[float]]) -> list[str]:
    """The subplots :func:`render` draws by default: each name, with ``val_<name>`` beside it.

    A ``val_`` key whose training counterpart is present shares its subplot;
    one without (say, only ``val_loss`` was logged) gets its own.
    """
    names = []
    for key in history:
        base = key[len("val_") :] if key.startswith("val_") else key
        if base not in history:
            base = key
        if base not in names:
            names.append(base)
    return names


def render(
    history: Mapping[str, Sequence[float]],
    metrics: Sequence[str] | None = None,
    epochs: Sequence[int] | None = None,
) -> Figure:
    """Draw training curves: one subplot per metric, train and ``val_`` on the same axes.

    Builds a ``matplotlib.figure.Figure`` directly (no pyplot, no global state),
    so it is safe to call from a worker thread.

    Args:
        history: ``{name: [value per epoch]}``, such as ``History.history``.
            A NaN marks an epoch without that value (e.g. no validation that epoch).
        metrics: The subplots to draw, by training name (``"loss"`` draws
            ``loss`` and ``val_loss``); default: every name in ``history``.
        epochs: The x values, one per entry; default ``1, 2, ...`` (the
            numbering of the progress bar).

    Returns:
        The figure, with one axes per metric.

    Raises:
        ValueError: if the series are not all as long as ``epochs``.

    Example:
        >>> render(model.history.history).savefig("curves.png")
    """
    _import_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names = list(metrics) if metrics is not None else panel_names(history)
    length = max((len(v) for v in history.values()), default=0)
    xs = list(epochs) if epochs is not None else list(range(1, length + 1))
    for key, values in history.items():
        if len(values) != len(xs):
            raise ValueError(
                f"Every series must have one value per epoch ({len(xs)}). "
                f"Received: {len(values)} values for {key!r}"
            )
    cols = max(1, min(_COLUMNS, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig = Figure(figsize=(_PANEL_SIZE[0] * cols, _PANEL_SIZE[1] * rows), layout="constrained")
    for index, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, index + 1)
        _draw_panel(ax, name, history, xs)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _draw_panel(ax: Any, name: str, history: Mapping[str, Sequence[float]], xs: list[int]) -> None:
    drawn = False
    for key, label in ((name, "train"), (f"val_{name}", "validation")):
        if key == f"val_{name}" and name.startswith("val_"):
            continue  # a lone val_ series is drawn once, under its own name
        values = history.get(key)
        if values is None:
            continue
        ys = [math.nan if (v := _as_float(value)) is None else v for value in values]
        # Markers keep isolated points (validation every few epochs) visible.
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
        drawn = True
    ax.set_title(name)
    ax.set_xlabel("epoch")
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)


class PlotHistory(Callback):
    """Writes a PNG of the loss and metric curves at each epoch end and at train end.

    One subplot per metric, the training curve and its ``val_`` counterpart
    on the same axes, epochs (numbered from 1) on x. Each write is atomic (a
    crash leaves the previous picture, never a torn one), and the rendering
    runs in a worker thread so it does not block the event loop. Beyond Keras.

    Needs matplotlib: ``pip install "aiofit[plot]"``.

    Args:
        path: The PNG file to (re)write.
        metrics: The subplots, by training name (default: every numeric key
            in the logs, e.g. ``["loss", "accuracy"]``).
        dpi: Resolution of the PNG.

    Raises:
        ImportError: at construction, if matplotlib is not installed.

    Example:
        ``await model.fit(x, y, validation_data=(vx, vy), callbacks=[PlotHistory("curves.png")])``
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        metrics: Sequence[str] | None = None,
        dpi: int = 100,
    ) -> None:
        super().__init__()
        _import_matplotlib()
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"`path` must be a file path. Received: path={path!r}")
        if metrics is not None and (
            isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics)
        ):
            raise TypeError(
                f"`metrics` must be a list of metric names. Received: metrics={metrics!r}"
            )
        if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 1:
            raise ValueError(f"`dpi` must be a positive integer. Received: dpi={dpi!r}")
        self.path = os.fspath(path)
        self.metrics = list(metrics) if metrics is not None else None
        self.dpi = dpi
        self.epochs: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Starts a fresh record and checks, before training, that the PNG can be written.

        Raises:
            OSError: if the PNG's folder is missing or not writable.
        """
        self.epochs = []
        self.history = {}
        check_writable_dir(os.path.dirname(os.path.abspath(self.path)))

    async def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Records this epoch's numeric logs and rewrites the PNG."""
        self._record(epoch, logs or {})
        await self._write()

    async def on_train_end(self, logs: Logs | None = None) -> None:
        """Rewrites the PNG a last time (if any epoch was recorded)."""
        if self.epochs:
            await self._write()

    def _record(self, epoch: int, logs: Logs) -> None:
        values = {k: f for k, raw in logs.items() if (f := _as_float(raw)) is not None}
        for key in values.keys() - self.history.keys():
            self.history[key] = [math.nan] * len(self.epochs)  # new key, e.g. first validation
        for key, series in self.history.items():
            series.append(values.get(key, math.nan))
        self.epochs.append(epoch + 1)

    async def _write(self) -> None:
        snapshot = {k: list(v) for k, v in self.history.items()}
        await anyio.to_thread.run_sync(self._save, snapshot, list(self.epochs))

    def _save(self, history: dict[str, list[float]], epochs: list[int]) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        figure = render(history, self.metrics, epochs)
        FigureCanvasAgg(figure)  # attaches itself to the figure: no pyplot involved
        with atomic_write(self.path, "wb") as file:
            figure.savefig(file, format="png", dpi=self.dpi)
