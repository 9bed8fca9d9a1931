"""Parity with PyTorch: Keras 3's update rules checked against an independent implementation.

Not a speed benchmark. The same small float64 network (5-7-3, tanh, softmax +
sparse cross-entropy; PyTorch: logits + CrossEntropyLoss) starts from the same
weights in aiofit and in PyTorch and takes 6 steps on the same batch;
the row reports the largest weight difference. Each optimizer is configured
where the two libraries define the same step: epsilon 0 for Adam, AdamW and
RMSprop (Keras adds it outside the root after bias correction, PyTorch inside),
epsilon 1e-300 for Adagrad (Keras adds it under the root, PyTorch outside). A
BatchNormalization model checks its forward and backward passes and moving mean;
its moving variance differs by design (Keras 3 averages the biased batch
variance, PyTorch the unbiased one), and the row shows by how much.

Run: ``python -m bench.torch_parity`` (a few seconds), or ``python -m bench``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench._report import format_table, make_row, pick

STEPS = 6
TOLERANCE = 1e-12  # float64: rounding differences only

# (case, aiofit optimizer, PyTorch optimizer over the given parameters)
OPTIMIZERS: list[tuple[str, Callable[[], Any], Callable[[Any], Any]]] = [
    ("SGD(0.1, momentum=0.9)",
     lambda: _opt().SGD(0.1, momentum=0.9),
     lambda p: _torch().optim.SGD(p, lr=0.1, momentum=0.9)),
    ("SGD(0.1, momentum=0.9, nesterov=True)",
     lambda: _opt().SGD(0.1, momentum=0.9, nesterov=True),
     lambda p: _torch().optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam(0.01, epsilon=0)",
     lambda: _opt().Adam(0.01, epsilon=0.0),
     lambda p: _torch().optim.Adam(p, lr=0.01, eps=0.0)),
    ("Adam(0.01, epsilon=0, amsgrad=True)",
     lambda: _opt().Adam(0.01, epsilon=0.0, amsgrad=True),
     lambda p: _torch().optim.Adam(p, lr=0.01, eps=0.0, amsgrad=True)),
    ("AdamW(0.01, weight_decay=0.1, epsilon=0)",
     lambda: _opt().AdamW(0.01, weight_decay=0.1, epsilon=0.0),
     lambda p: _torch().optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=0.0)),
    ("RMSprop(0.01, rho=0.99, epsilon=0)",
     lambda: _opt().RMSprop(0.01, rho=0.99, epsilon=0.0),
     lambda p: _torch().optim.RMSprop(p, lr=0.01, alpha=0.99, eps=0.0)),
    ("Adagrad(0.1, epsilon=1e-300)",
     lambda: _opt().Adagrad(0.1, epsilon=1e-300),
     lambda p: _torch().optim.Adagrad(p, lr=0.1, eps=1e-300, initial_accumulator_value=0.1)),
]  # fmt: skip


def _opt() -> Any:
    from aiofit import optimizers

    return optimizers


def _torch() -> Any:
    import torch

    return torch


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.normal(size=(16, 5)) * 3 + 1, rng.integers(0, 3, 16)


def _aiofit_model(optimizer: Any, batch_norm: bool) -> Any:
    import aiofit
    from aiofit import layers

    hidden = [layers.Dense(7), layers.BatchNormalization(), layers.Activation("gelu")] \
        if batch_norm else [layers.Dense(7, activation="tanh")]  # fmt: skip
    model = aiofit.Sequential(
        [layers.Input(shape=(5,)), *hidden, layers.Dense(3, activation="softmax")],
        seed=3, dtype="float64",
    )  # fmt: skip
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.build((None, 5))
    return model


def _torch_model(weights: list[np.ndarray], batch_norm: bool) -> Any:
    """The same network in PyTorch, holding ``weights`` (aiofit's order and layout)."""
    torch = _torch()
    nn = torch.nn
    if batch_norm:  # PyTorch's momentum is 1 - Keras's
        norm = nn.BatchNorm1d(7, eps=1e-3, momentum=0.01, dtype=torch.float64)
        net = nn.Sequential(nn.Linear(5, 7, dtype=torch.float64), norm, nn.GELU(),
                            nn.Linear(7, 3, dtype=torch.float64))  # fmt: skip
        tensors = [net[0].weight, net[0].bias, norm.weight, norm.bias, norm.running_mean,
                   norm.running_var, net[3].weight, net[3].bias]  # fmt: skip
    else:
        net = nn.Sequential(nn.Linear(5, 7, dtype=torch.float64), nn.Tanh(),
                            nn.Linear(7, 3, dtype=torch.float64))  # fmt: skip
        tensors = [net[0].weight, net[0].bias, net[2].weight, net[2].bias]
    with torch.no_grad():
        for tensor, w in zip(tensors, weights, strict=True):
            tensor.copy_(torch.from_numpy(w.T.copy() if w.ndim == 2 else w))
    return net, tensors


def _compare(make_opt: Callable[[], Any], make_torch_opt: Callable[[Any], Any],
             batch_norm: bool = False) -> tuple[list[float], float]:  # fmt: skip
    """Per-weight max |difference| after :data:`STEPS` steps, and the last loss's."""
    torch = _torch()
    x, y = _batch()
    model = _aiofit_model(make_opt(), batch_norm)
    net, tensors = _torch_model(model.get_weights(), batch_norm)
    optimizer, loss_fn = make_torch_opt(net.parameters()), torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(STEPS):
        ours = model.train_on_batch(x, y)["loss"]
        optimizer.zero_grad()
        theirs = loss_fn(net(tx), ty)
        theirs.backward()
        optimizer.step()
    diffs = []
    for w, tensor in zip(model.get_weights(), tensors, strict=True):
        t = tensor.detach().numpy()
        diffs.append(float(np.abs(w - (t.T if t.ndim == 2 else t)).max()))
    return diffs, abs(ours - theirs.item())


def _row(case: str, diffs: list[float], loss_diff: float, note: str = "") -> dict[str, Any]:
    worst = max(diffs)
    return make_row(
        "parity with PyTorch", case,
        f"max |weight difference| {worst:.1e}, |loss difference| {loss_diff:.1e} "
        f"after {STEPS} steps (float64){note}",
        target=f"<= {TOLERANCE:g}", passed=worst <= TOLERANCE and loss_diff <= TOLERANCE,
        median=worst, unit="max abs weight difference",
    )  # fmt: skip


def run(level: str = "full") -> list[dict[str, Any]]:
    """One row per optimizer, then the BatchNormalization model (smoke: the first only)."""
    try:
        _torch()
    except ImportError:
        return [make_row("parity with PyTorch", "-", "torch not installed")]
    rows = [_row(case, *_compare(ours, theirs))
            for case, ours, theirs in pick(level, OPTIMIZERS[:1], OPTIMIZERS, OPTIMIZERS)]
    if level != "smoke":
        diffs, loss_diff = _compare(OPTIMIZERS[0][1], OPTIMIZERS[0][2], batch_norm=True)
        moving_variance = diffs.pop(5)  # see the module docstring
        rows.append(_row("Dense-BatchNormalization-GELU-Dense, SGD", diffs, loss_diff,
                         f"; moving variance {moving_variance:.1e} (biased vs unbiased, "
                         "by design)"))  # fmt: skip
    return rows


def main() -> None:
    print(format_table(run()))


if __name__ == "__main__":
    main()
