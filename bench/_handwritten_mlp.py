"""The leanest numpy train step we could write for the benchmark's MLP: a reference.

The step-vs-floor target asks for at most 1.25x the time of the step's matmuls.
This is the same step written by hand for one model and one loss, with nothing
a library needs: no checks on the batch, no layer objects, no metrics, no
general loss. Its distance from the floor is what numpy itself costs on this
machine (bias, ReLU and softmax passes, the optimizer's memory-bound passes);
aiofit's distance from it is what aiofit adds. ``tests/test_bench_smoke.py``
checks that it computes aiofit's step (same weights after one step).

It follows aiofit's own choices where they are the fastest we know (flat
weight buffer, bias gradients as ``ones @ dZ``, ReLU as a maximum against an
array of zeros, Adam's moments as weighted sums, 10 passes), so the row
isolates the library's overhead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["handwritten_step"]


def _flat_views(
    weights: Sequence[np.ndarray],
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """One flat buffer of ``weights`` (and one for gradients), with per-weight views."""
    total = sum(w.size for w in weights)
    flat, grads = np.empty(total, np.float32), np.zeros(total, np.float32)
    views, grad_views, at = [], [], 0
    for w in weights:
        views.append(flat[at : at + w.size].reshape(w.shape))
        grad_views.append(grads[at : at + w.size].reshape(w.shape))
        views[-1][...] = w
        at += w.size
    return flat, views, grads, grad_views


def _adam(
    params: np.ndarray,
    grads: np.ndarray,
    lr: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    eps: float = 1e-7,
) -> Callable[[], None]:
    m, v = np.zeros_like(params), np.zeros_like(params)
    step = [0]
    root_c2 = math.sqrt(1 - beta_2)

    def update() -> None:
        step[0] += 1
        t = step[0]
        alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m.__imul__(beta_1)
        m.__iadd__(grads)
        np.square(grads, out=grads)
        v.__imul__(beta_2)
        v.__iadd__(grads)
        np.sqrt(v, out=grads)  # g**2 is spent: reuse its (cached) buffer
        grads.__iadd__(eps / root_c2)
        np.divide(m, grads, out=grads)
        grads.__imul__(alpha * (1 - beta_1) / root_c2)
        params.__isub__(grads)

    return update


def _sgd(
    params: np.ndarray, grads: np.ndarray, lr: float = 0.01, momentum: float = 0.9
) -> Callable[[], None]:
    velocity = np.zeros_like(params)

    def update() -> None:
        grads.__imul__(lr)
        velocity.__imul__(momentum)
        velocity.__isub__(grads)
        params.__iadd__(velocity)

    return update


def handwritten_step(
    weights: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, opt: str
) -> tuple[Callable[[], float], list[np.ndarray]]:
    """A train step of a ReLU MLP with a softmax output and sparse cross-entropy.

    Args:
        weights: kernel, bias, kernel, bias, ... (float32), as ``get_weights`` gives.
        x: one float32 batch; y: its integer labels.
        opt: ``"sgd"`` (lr 0.01, momentum 0.9) or ``"adam"`` (Keras's defaults).

    Returns:
        ``(step, views)``: ``step()`` trains on the batch once and returns the
        loss; ``views`` are the live weights, in the order given.
    """
    flat, views, grads, grad_views = _flat_views(weights)
    kernels, biases = views[0::2], views[1::2]
    d_kernels, d_biases = grad_views[0::2], grad_views[1::2]
    n = len(x)
    acts = [np.empty((n, k.shape[1]), np.float32) for k in kernels]
    d_acts = [np.empty_like(a) for a in acts[:-1]]
    zeros = [np.zeros_like(a) for a in acts]  # max against an array: numpy's SIMD loop
    ones, rows = np.ones(n, np.float32), np.arange(n)
    update = _adam(flat, grads) if opt == "adam" else _sgd(flat, grads)
    last = len(kernels) - 1

    def step() -> float:
        a = x
        for i, (k, b) in enumerate(zip(kernels, biases, strict=True)):
            z = np.matmul(a, k, out=acts[i])
            z += b
            a = np.maximum(z, zeros[i], out=z) if i < last else z
        p = acts[last]  # softmax in place, then dL/dlogits = (p - onehot) / n
        p -= p.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        loss = float(-np.log(p[rows, y]).mean())
        p[rows, y] -= 1
        d = p
        d *= 1.0 / n
        for i in range(last, -1, -1):
            np.matmul(ones, d, out=d_biases[i])  # first: d is still in cache
            np.matmul((x if i == 0 else acts[i - 1]).T, d, out=d_kernels[i])
            if i:
                d = np.matmul(d, kernels[i].T, out=d_acts[i - 1])
                np.multiply(d, acts[i - 1] > 0, out=d)
        update()
        return loss

    return step, views
