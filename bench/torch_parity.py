"""Parity with PyTorch: Keras 3's semantics checked against an independent implementation.

Not a speed benchmark. The same small float64 network is built in aiofit and in
PyTorch from the same weights and takes 6 steps on the same batch; each row
reports the largest weight difference and the last loss's difference. Covered:
every optimizer (5-7-3, tanh, softmax + sparse cross-entropy; PyTorch: logits +
CrossEntropyLoss), every activation (the hidden layer's, under SGD), the losses
(each with its output layer), an L1L2 kernel regularizer (PyTorch: the penalty
added to the loss), ``clipvalue`` (PyTorch: ``clip_grad_value_``), sample weights
(PyTorch: Keras's rule written over the unreduced loss) and a BatchNormalization
model. Each is configured where the two libraries define the
same thing: epsilon 0 for Adam, AdamW and RMSprop (Keras adds it outside the
root after bias correction, PyTorch inside), epsilon 1e-300 for Adagrad (Keras
adds it under the root, PyTorch outside), leaky_relu's slope 0.2 (Keras's
default; PyTorch's is 0.01). BatchNormalization's moving variance differs by
design (Keras 3 averages the biased batch variance, PyTorch the unbiased one),
and its row shows by how much.

Run: ``python -m bench.torch_parity`` (a few seconds), or ``python -m bench``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench._report import format_table, make_row, pick

STEPS = 6
TOLERANCE = 1e-12  # float64: rounding differences only


@dataclass
class Case:
    """One network in both libraries; ``hidden`` / ``output`` name aiofit activations."""

    name: str
    optimizer: tuple[Callable[[], Any], Callable[[Any], Any]]
    hidden: str = "tanh"
    output: str = "softmax"
    loss: tuple[str, Callable[[], Any]] = (
        "sparse_categorical_crossentropy", lambda: _nn().CrossEntropyLoss())
    targets: str = "sparse"  # or "regression", "binary", "one_hot"
    batch_norm: bool = False
    # A weight that differs by design: its index, and how the row reports it
    apart: int | None = None
    apart_note: str = ""  # a format string for its difference
    l1: float = 0.0  # the hidden kernel's regularizer (aiofit's L1L2; PyTorch: added to the loss)
    l2: float = 0.0
    torch_clipvalue: float | None = None  # PyTorch's side of an aiofit clipvalue
    # Keras's weighting rule, sum(loss_i * w_i) / n, written out on PyTorch's side
    # over its unreduced loss (the loss factory then takes ``reduction="none"``)
    sample_weight: bool = False


def _opt() -> Any:
    from aiofit import optimizers

    return optimizers


def _torch() -> Any:
    import torch

    return torch


def _nn() -> Any:
    return _torch().nn


def _optimizer(name: str, lr: float, ours: dict[str, Any], theirs: dict[str, Any]) -> Case:
    """A case for optimizer ``name`` (the class is so named in both libraries)."""
    args = ", ".join([f"{lr:g}", *(f"{k}={v if isinstance(v, bool) else format(v, 'g')}"
                                   for k, v in ours.items())])
    return Case(f"{name}({args})", (lambda: getattr(_opt(), name)(lr, **ours),
                                    lambda p: getattr(_torch().optim, name)(p, lr=lr, **theirs)))


SGD = _optimizer("SGD", 0.1, {}, {}).optimizer

OPTIMIZERS = [
    _optimizer("SGD", 0.1, {"momentum": 0.9}, {"momentum": 0.9}),
    _optimizer("SGD", 0.1, {"momentum": 0.9, "nesterov": True},
               {"momentum": 0.9, "nesterov": True}),
    _optimizer("Adam", 0.01, {"epsilon": 0.0}, {"eps": 0.0}),
    _optimizer("Adam", 0.01, {"epsilon": 0.0, "amsgrad": True}, {"eps": 0.0, "amsgrad": True}),
    _optimizer("AdamW", 0.01, {"weight_decay": 0.1, "epsilon": 0.0},
               {"weight_decay": 0.1, "eps": 0.0}),
    _optimizer("RMSprop", 0.01, {"rho": 0.99, "epsilon": 0.0}, {"alpha": 0.99, "eps": 0.0}),
    _optimizer("Adagrad", 0.1, {"epsilon": 1e-300},
               {"eps": 1e-300, "initial_accumulator_value": 0.1}),  # Keras's default
]  # fmt: skip

# aiofit activation name -> PyTorch module
ACTIVATIONS: dict[str, Callable[[], Any]] = {
    "linear": lambda: _nn().Identity(),
    "relu": lambda: _nn().ReLU(),
    "leaky_relu": lambda: _nn().LeakyReLU(0.2),
    "elu": lambda: _nn().ELU(),
    "gelu": lambda: _nn().GELU(),
    "sigmoid": lambda: _nn().Sigmoid(),
    "tanh": lambda: _nn().Tanh(),
    "softmax": lambda: _nn().Softmax(dim=1),
    "softplus": lambda: _nn().Softplus(),
    "swish": lambda: _nn().SiLU(),
}

LOSSES = [
    Case("loss mse", SGD, output="linear", loss=("mse", lambda: _nn().MSELoss()),
         targets="regression"),
    Case("loss mae", SGD, output="linear", loss=("mae", lambda: _nn().L1Loss()),
         targets="regression"),
    Case("loss huber", SGD, output="linear", loss=("huber", lambda: _nn().HuberLoss()),
         targets="regression"),
    Case("loss binary_crossentropy", SGD, output="sigmoid",
         loss=("binary_crossentropy", lambda: _nn().BCELoss()), targets="binary"),
    Case("loss categorical_crossentropy", SGD,
         loss=("categorical_crossentropy", lambda: _nn().CrossEntropyLoss()),
         targets="one_hot"),
]  # fmt: skip

REGULARIZED = [
    Case("L1L2(l1=0.01, l2=0.02) on the hidden kernel, SGD", SGD, l1=0.01, l2=0.02),
    Case("SGD(0.1, momentum=0.9, clipvalue=0.05)",
         _optimizer("SGD", 0.1, {"momentum": 0.9, "clipvalue": 0.05}, {"momentum": 0.9}).optimizer,
         torch_clipvalue=0.05),
    Case("sample_weight, SGD", SGD, sample_weight=True,
         loss=("sparse_categorical_crossentropy",
               lambda: _nn().CrossEntropyLoss(reduction="none"))),
]  # fmt: skip

BATCH_NORM = Case(
    "Dense-BatchNormalization-GELU-Dense, SGD", SGD, hidden="gelu", batch_norm=True,
    apart=5, apart_note="moving variance {:.1e} (biased vs unbiased, by design)",
)  # fmt: skip


def _batch(targets: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 5)) * 3 + 1
    if targets == "regression":
        return x, rng.normal(size=(16, 3))
    if targets == "binary":
        return x, rng.integers(0, 2, (16, 3)).astype(np.float64)
    labels = rng.integers(0, 3, 16)
    return x, (np.eye(3)[labels] if targets == "one_hot" else labels)


def _aiofit_model(case: Case) -> Any:
    import aiofit
    from aiofit import layers, regularizers

    penalty = regularizers.L1L2(case.l1, case.l2) if case.l1 or case.l2 else None
    dense = layers.Dense(7, kernel_regularizer=penalty)
    hidden = [dense, layers.BatchNormalization(), layers.Activation(case.hidden)] \
        if case.batch_norm else [layers.Dense(7, activation=case.hidden,
                                              kernel_regularizer=penalty)]  # fmt: skip
    model = aiofit.Sequential(
        [layers.Input(shape=(5,)), *hidden, layers.Dense(3, activation=case.output)],
        seed=3, dtype="float64",
    )  # fmt: skip
    model.compile(optimizer=case.optimizer[0](), loss=case.loss[0])
    model.build((None, 5))
    return model


def _torch_model(case: Case, weights: list[np.ndarray]) -> tuple[Any, list[Any]]:
    """The same network in PyTorch holding ``weights`` (aiofit's order), and its tensors.

    Under a softmax and a cross-entropy, PyTorch's loss takes the logits.
    """
    torch, nn = _torch(), _nn()
    f64 = torch.float64
    modules = [nn.Linear(5, 7, dtype=f64)]
    if case.batch_norm:  # PyTorch's momentum is 1 - Keras's
        modules.append(nn.BatchNorm1d(7, eps=1e-3, momentum=0.01, dtype=f64))
    modules += [ACTIVATIONS[case.hidden](), nn.Linear(7, 3, dtype=f64)]
    if case.output != "softmax":
        modules.append(ACTIVATIONS[case.output]())
    net = nn.Sequential(*modules)
    weighted = [m for m in modules if isinstance(m, nn.Linear | nn.BatchNorm1d)]
    tensors = [t for m in weighted for t in _weights(m)]
    with torch.no_grad():
        for tensor, w in zip(tensors, weights, strict=True):
            tensor.copy_(torch.from_numpy(w.T.copy() if w.ndim == 2 else w))
    return net, tensors


def _weights(module: Any) -> tuple[Any, ...]:
    """A Linear's or BatchNorm1d's tensors in aiofit's order (Dense, BatchNormalization)."""
    extra = (module.running_mean, module.running_var) if hasattr(module, "running_var") else ()
    return (module.weight, module.bias, *extra)


def compare(case: Case) -> tuple[list[float], float]:
    """Per-weight max |difference| after :data:`STEPS` steps, and the last loss's."""
    torch = _torch()
    x, y = _batch(case.targets)
    model = _aiofit_model(case)
    net, tensors = _torch_model(case, model.get_weights())
    optimizer, loss_fn = case.optimizer[1](net.parameters()), case.loss[1]()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    w = np.random.default_rng(2).uniform(0, 2, len(x)) if case.sample_weight else None
    for _ in range(STEPS):
        ours = model.train_on_batch(x, y, sample_weight=w)["loss"]
        optimizer.zero_grad()
        kernel = tensors[0]
        theirs = loss_fn(net(tx), ty)
        if w is not None:
            theirs = (theirs * torch.from_numpy(w)).sum() / len(x)
        theirs = theirs + case.l1 * kernel.abs().sum() + case.l2 * (kernel**2).sum()
        theirs.backward()
        if case.torch_clipvalue is not None:
            torch.nn.utils.clip_grad_value_(net.parameters(), case.torch_clipvalue)
        optimizer.step()
    diffs = []
    for w, tensor in zip(model.get_weights(), tensors, strict=True):
        t = tensor.detach().numpy()
        diffs.append(float(np.abs(w - (t.T if t.ndim == 2 else t)).max()))
    return diffs, abs(ours - theirs.item())


def _row(case: Case) -> dict[str, Any]:
    diffs, loss_diff = compare(case)
    note = "" if case.apart is None else "; " + case.apart_note.format(diffs.pop(case.apart))
    worst = max(diffs)
    return make_row(
        "parity with PyTorch", case.name,
        f"max |weight difference| {worst:.1e}, |loss difference| {loss_diff:.1e} "
        f"after {STEPS} steps (float64){note}",
        target=f"<= {TOLERANCE:g}", passed=worst <= TOLERANCE and loss_diff <= TOLERANCE,
        median=worst, unit="max abs weight difference",
    )  # fmt: skip


def _activation_cases() -> list[Case]:
    return [Case(f"activation {name}", SGD, hidden=name) for name in ACTIVATIONS]


def run(level: str = "full") -> list[dict[str, Any]]:
    """Every optimizer, activation and loss, a regularizer, clipping, sample weights and
    the BatchNormalization model (smoke: the first optimizer only)."""
    try:
        _torch()
    except ImportError:
        return [make_row("parity with PyTorch", "-", "torch not installed")]
    every = [*OPTIMIZERS, *_activation_cases(), *LOSSES, *REGULARIZED, BATCH_NORM]
    return [_row(case) for case in pick(level, OPTIMIZERS[:1], every, every)]


def main() -> None:
    print(format_table(run()))


if __name__ == "__main__":
    main()
