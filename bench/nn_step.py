"""nn step speed: aiofit's numpy MLP vs PyTorch eager, and vs its own matmul floor.

Model: 784-512-256-10 MLP, relu, softmax + sparse categorical cross-entropy
(PyTorch: logits + CrossEntropyLoss, the idiomatic equivalent). Both use the
same BLAS thread count. Run: ``python -m bench.nn_step [--quick]``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from bench._timing import Timing, interleave, ratio_cell

SIZES = (784, 512, 256, 10)


def _aiofit_step(batch: int, opt: str, rng: np.random.Generator) -> Any:
    import aiofit
    from aiofit import layers, optimizers

    model = aiofit.Sequential(
        [layers.Input(shape=(SIZES[0],)), layers.Dense(SIZES[1], activation="relu"),
         layers.Dense(SIZES[2], activation="relu"), layers.Dense(SIZES[3], activation="softmax")],
        seed=0,
    )
    optimizer = optimizers.SGD(0.01, momentum=0.9) if opt == "sgd" else optimizers.Adam()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    x = rng.random((batch, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], batch)
    return lambda: model.train_on_batch(x, y)


def _torch_step(batch: int, opt: str, fused: bool, rng: np.random.Generator) -> Any:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.ReLU(),
        torch.nn.Linear(SIZES[1], SIZES[2]), torch.nn.ReLU(),
        torch.nn.Linear(SIZES[2], SIZES[3]),
    )
    extra = {"fused": True} if fused else {}
    if opt == "sgd":
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, **extra)
    else:
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, **extra)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.from_numpy(rng.random((batch, SIZES[0]), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, SIZES[-1], batch))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # Keras-style logs need the value on the host

    return step


def _matmul_floor(batch: int, rng: np.random.Generator) -> Any:
    """The 8 matmuls a train step cannot avoid (no dX for the input layer)."""
    w = [rng.random((a, b), dtype=np.float32) for a, b in zip(SIZES, SIZES[1:], strict=False)]
    acts = [rng.random((batch, n), dtype=np.float32) for n in SIZES]
    outs = [np.empty((batch, n), np.float32) for n in SIZES]
    grads = [np.empty_like(k) for k in w]

    def step() -> None:
        for i, k in enumerate(w):
            np.matmul(acts[i], k, out=outs[i + 1])
        for i in reversed(range(len(w))):
            np.matmul(acts[i].T, acts[i + 1], out=grads[i])
            if i:
                np.matmul(acts[i + 1], w[i].T, out=outs[i])

    return step


def _threads() -> int:
    try:
        from threadpoolctl import threadpool_info

        return max((i.get("num_threads", 1) for i in threadpool_info()), default=1)
    except ImportError:
        return int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure every (optimizer, batch) cell; return rows for the report."""
    rng = np.random.default_rng(0)
    try:
        import torch

        torch.set_num_threads(_threads())
    except ImportError:
        torch = None  # type: ignore[assignment]
    rows = []
    for opt in ("sgd", "adam"):
        for batch in (32, 128, 512):
            contenders = {"aiofit": _aiofit_step(batch, opt, rng)}
            if torch is not None:
                contenders["torch"] = _torch_step(batch, opt, False, rng)
                contenders["torch_fused"] = _torch_step(batch, opt, True, rng)
            if batch == 512:
                contenders["matmul_floor"] = _matmul_floor(batch, rng)
            calls = max(3, 2048 // batch) if quick else max(5, 8192 // batch)
            t = interleave(contenders, calls=calls, rounds=5 if quick else 11)
            rows.append(_row(opt, batch, t))
    return rows


def _row(opt: str, batch: int, t: dict[str, Timing]) -> dict[str, Any]:
    ours = t["aiofit"]
    row: dict[str, Any] = {
        "optimizer": opt, "batch": batch, "aiofit_ms": ours.median * 1e3,
        "vs_torch": ratio_cell(ours, t["torch"]) if "torch" in t else "torch not installed",
        "vs_torch_fused": ratio_cell(ours, t["torch_fused"]) if "torch_fused" in t else "-",
        "vs_matmul_floor": "-",
    }
    if "matmul_floor" in t:
        row["vs_matmul_floor"] = f"{ours.median / t['matmul_floor'].median:.2f}x of floor"
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    head = ("| optimizer | batch | aiofit ms/step | speed-up vs torch eager "
            "| vs torch fused | step / matmul floor |\n|---|---|---|---|---|---|")
    lines = [
        f"| {r['optimizer']} | {r['batch']} | {r['aiofit_ms']:.3f} | {r['vs_torch']} "
        f"| {r['vs_torch_fused']} | {r['vs_matmul_floor']} |" for r in rows
    ]
    return "\n".join([head, *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"BLAS threads: {_threads()}")
    print(format_table(run(args.quick)))


if __name__ == "__main__":
    main()
