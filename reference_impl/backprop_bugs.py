"""Known-wrong variants of ``reference_impl.backprop`` (instructor-only).

Each function reproduces one common student bug, with the reference's
signature, so that hidden tests can show that their tolerances reject it and
recognise the pattern in a mismatch report. Nothing here is correct on purpose.
"""

from __future__ import annotations

import numpy as np

from .backprop import BCE_EPS, linear_backward, linear_forward, sigmoid_forward, softmax


def sigmoid_backward_wrong(dout, x):
    """Bug: uses s(x) as the derivative instead of s(x) (1 - s(x))."""
    return dout * sigmoid_forward(x)


def relu_backward_ge(dout, x):
    """Bug: mask ``x >= 0`` lets the gradient through at x == 0 (ReLU'(0) must be 0)."""
    return dout * (x >= 0)


def linear_backward_no_sum_db(dout, cache):
    """Bug: db averaged over the batch (``dout.mean(0)``) instead of summed."""
    dx, dW, _ = linear_backward(dout, cache)
    return dx, dW, dout.mean(axis=0)


def linear_backward_transposed_dW(dout, cache):
    """Bug: dW computed as ``dout.T @ x``, shape (M, D) instead of (D, M)."""
    x, _, _ = cache
    dx, _, db = linear_backward(dout, cache)
    return dx, dout.T @ x, db


def softmax_unstable(logits):
    """Bug: no max subtraction, so exp overflows (inf/inf = nan) for large logits."""
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy_no_mean(logits, y):
    """Bug: loss summed over the batch and dlogits not divided by N."""
    N = logits.shape[0]
    probs = softmax(logits)
    loss = -np.log(probs[np.arange(N), y]).sum()
    dlogits = probs.copy()
    dlogits[np.arange(N), y] -= 1.0
    return float(loss), dlogits


def mse_no_mean(pred, target):
    """Bug: squared error summed, not averaged (loss and gradient n times too big)."""
    diff = pred - target
    return float(np.sum(diff**2)), 2.0 * diff


def bce_no_mean(probs, target):
    """Bug: binary cross-entropy summed, not averaged over the elements."""
    p = np.clip(probs, BCE_EPS, 1.0 - BCE_EPS)
    loss = -np.sum(target * np.log(p) + (1.0 - target) * np.log(1.0 - p))
    return float(loss), (p - target) / (p * (1.0 - p))


def mlp_backward_no_relu_mask(dlogits, cache):
    """Bug: backprop through the ReLU as if it were the identity (mask forgotten)."""
    lin1, _, lin2 = cache
    dh1, dW2, db2 = linear_backward(dlogits, lin2)
    _, dW1, db1 = linear_backward(dh1, lin1)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def mlp_forward_no_relu(X, params):
    """Bug: the hidden activation is missing (the MLP collapses to a linear model)."""
    z1, lin1 = linear_forward(X, params["W1"], params["b1"])
    logits, lin2 = linear_forward(z1, params["W2"], params["b2"])
    return logits, (lin1, z1, lin2)


def numerical_gradient_forward_diff(f, x, h=1e-5):
    """Bug: one-sided difference (f(x+h) - f(x)) / h, error O(h) instead of O(h^2)."""
    grad = np.zeros_like(x, dtype=np.float64)
    fx = f(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        grad[idx] = (f(x) - fx) / h
        x[idx] = old
    return grad


def numerical_gradient_no_restore(f, x, h=1e-5):
    """Bug: x is left at x - h after each element instead of being restored."""
    grad = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f(x)
        x[idx] = old - h
        grad[idx] = (fp - f(x)) / (2.0 * h)
    return grad


def sgd_step_not_in_place(params, grads, lr):
    """Bug: rebinds ``params[k]`` to a new array instead of updating it in place.

    The dict sees new values, but any other reference to the old arrays (the
    caller's ``W1 = params["W1"]``, an optimizer's state) keeps the old weights.
    """
    for k in params:
        params[k] = params[k] - lr * grads[k]


def sgd_step_plus(params, grads, lr):
    """Bug: gradient ascent (``+=``), the loss goes up."""
    for k in params:
        params[k] += lr * grads[k]


# bug name -> the reference function (in ``reference_impl.backprop``) it stands in for
BUGS = {
    "sigmoid_backward_wrong": "sigmoid_backward",
    "relu_backward_ge": "relu_backward",
    "linear_backward_no_sum_db": "linear_backward",
    "linear_backward_transposed_dW": "linear_backward",
    "softmax_unstable": "softmax",
    "softmax_cross_entropy_no_mean": "softmax_cross_entropy",
    "mse_no_mean": "mse_loss",
    "bce_no_mean": "binary_cross_entropy",
    "mlp_backward_no_relu_mask": "mlp_backward",
    "mlp_forward_no_relu": "mlp_forward",
    "numerical_gradient_forward_diff": "numerical_gradient",
    "numerical_gradient_no_restore": "numerical_gradient",
    "sgd_step_not_in_place": "sgd_step",
    "sgd_step_plus": "sgd_step",
}

__all__ = ["BUGS", *BUGS]
