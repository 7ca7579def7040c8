"""Pure functions that probes may pass as arguments (e.g. to ``numerical_gradient``).

Probes carry only data; a callable argument names one of these with its array
parameters (``checks.FunctionArg``). The grader's reference uses the same
definitions through ``value_and_grad``, so both sides agree on the maths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _weighted_sin(c: np.ndarray) -> Callable[[np.ndarray], float]:
    # f(x) = sum(c * sin(x)); df/dx = c * cos(x)
    return lambda x: float(np.sum(c * np.sin(x)))


def _quadratic(a: np.ndarray) -> Callable[[np.ndarray], float]:
    # f(x) = 0.5 * sum(a * x**2) + sum(x); df/dx = a * x + 1
    return lambda x: float(0.5 * np.sum(a * x**2) + np.sum(x))


def _softmax_ce(y: np.ndarray) -> Callable[[np.ndarray], float]:
    # f(z) = mean_n -log softmax(z_n)[y_n]; df/dz = (softmax(z) - onehot(y)) / N
    def f(z: np.ndarray) -> float:
        shifted = z - z.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    return f


LIBRARY: dict[str, Callable[..., Callable[[np.ndarray], float]]] = {
    "weighted_sin": _weighted_sin,
    "quadratic": _quadratic,
    "softmax_ce": _softmax_ce,
}


def build(name: str, params: dict[str, Any]) -> Callable[[np.ndarray], float]:
    """The callable ``name`` with ``params`` (raises KeyError for an unknown name)."""
    return LIBRARY[name](**params)


def value_and_grad(name: str, params: dict[str, Any], x: np.ndarray) -> tuple[float, np.ndarray]:
    """The exact value and gradient of library function ``name`` at ``x`` (grader side)."""
    f = build(name, params)
    if name == "weighted_sin":
        return f(x), params["c"] * np.cos(x)
    if name == "quadratic":
        return f(x), params["a"] * x + 1.0
    if name == "softmax_ce":
        y = params["y"]
        shifted = x - x.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        return f(x), p / len(y)
    raise KeyError(name)
