"""Reference for ``01_backprop``: a 2-layer MLP by hand in numpy.

Conventions (the pinned API): float64 everywhere, ``x @ W + b`` with ``W`` of
shape ``(in, out)``, integer class labels of shape ``(N,)``, every loss is a
mean (over the batch, or over all elements for MSE/BCE), and every ``*_backward``
takes the upstream gradient ``dout`` first.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------
# q1 · activations: out = f(x), dx = dout * f'(x)


def sigmoid_forward(x):
    # s(x) = 1 / (1 + e^-x), written with e^-|x| so that exp never overflows
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def sigmoid_backward(dout, x):
    s = sigmoid_forward(x)
    return dout * s * (1.0 - s)  # s' = s (1 - s)


def relu_forward(x):
    return np.maximum(x, 0.0)


def relu_backward(dout, x):
    return dout * (x > 0)  # ReLU'(0) = 0


def tanh_forward(x):
    return np.tanh(x)


def tanh_backward(dout, x):
    return dout * (1.0 - np.tanh(x) ** 2)  # tanh' = 1 - tanh^2


# ----------------------------------------------------------------------------
# q2 · linear layer: out = x W + b


def linear_forward(x, W, b):
    out = x @ W + b  # (N, D) @ (D, M) + (M,) -> (N, M)
    return out, (x, W, b)


def linear_backward(dout, cache):
    x, W, b = cache
    dx = dout @ W.T  # (N, M) @ (M, D) -> (N, D)
    dW = x.T @ dout  # (D, N) @ (N, M) -> (D, M)
    db = dout.sum(axis=0)  # (M,): b is broadcast over the batch, so its gradient sums
    return dx, dW, db


# ----------------------------------------------------------------------------
# q3 · softmax and cross-entropy


def softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), max 0 per row: exp <= 1
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)  # (N, C), rows sum to 1


def softmax_cross_entropy(logits, y):
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # log-softmax, (N, C)
    loss = -log_probs[np.arange(N), y].mean()  # L = -1/N sum_i log p_{i, y_i}
    dlogits = np.exp(log_probs)  # p
    dlogits[np.arange(N), y] -= 1.0  # p - onehot(y)
    return float(loss), dlogits / N  # (N, C)


# ----------------------------------------------------------------------------
# q4 · MSE and BCE (means over all elements)


def mse_loss(pred, target):
    diff = pred - target
    loss = np.mean(diff**2)  # L = 1/n sum (p - t)^2
    return float(loss), 2.0 * diff / pred.size  # dL/dp = 2 (p - t) / n


BCE_EPS = 1e-12  # probabilities are clipped to [eps, 1 - eps]; the API allows any eps <= 1e-7


def binary_cross_entropy(probs, target):
    p = np.clip(probs, BCE_EPS, 1.0 - BCE_EPS)  # log(0) guard
    loss = -np.mean(target * np.log(p) + (1.0 - target) * np.log(1.0 - p))
    dprobs = (p - target) / (p * (1.0 - p)) / p.size  # dL/dp = (p - t) / (p (1 - p) n)
    return float(loss), dprobs


# ----------------------------------------------------------------------------
# q5 · 2-layer MLP: Linear -> ReLU -> Linear


def init_params(input_dim, hidden_dim, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.standard_normal((input_dim, hidden_dim)) * np.sqrt(2.0 / input_dim),  # He init, (D, H)
        "b1": np.zeros(hidden_dim),  # (H,)
        "W2": rng.standard_normal((hidden_dim, num_classes)) * np.sqrt(2.0 / hidden_dim),  # (H, C)
        "b2": np.zeros(num_classes),  # (C,)
    }


def mlp_forward(X, params):
    z1, lin1 = linear_forward(X, params["W1"], params["b1"])  # (N, H)
    h1 = relu_forward(z1)  # (N, H)
    logits, lin2 = linear_forward(h1, params["W2"], params["b2"])  # (N, C)
    return logits, (lin1, z1, lin2)


def mlp_backward(dlogits, cache):
    lin1, z1, lin2 = cache
    dh1, dW2, db2 = linear_backward(dlogits, lin2)  # (N, H), (H, C), (C,)
    dz1 = relu_backward(dh1, z1)  # (N, H)
    _, dW1, db1 = linear_backward(dz1, lin1)  # (D, H), (H,)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def predict(params, X):
    logits, _ = mlp_forward(X, params)
    return logits.argmax(axis=1)  # (N,)


def accuracy(params, X, y):
    return float(np.mean(predict(params, X) == y))


# ----------------------------------------------------------------------------
# q6 · numerical gradient check


def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f(x)
        x[idx] = old - h
        fm = f(x)
        x[idx] = old  # restore
        grad[idx] = (fp - fm) / (2.0 * h)  # central difference, error O(h^2)
    return grad


def relative_error(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


# ----------------------------------------------------------------------------
# q7 · SGD and training


def sgd_step(params, grads, lr):
    for k in params:
        params[k] -= lr * grads[k]  # in place: the caller's arrays change


def train(X, y, hidden_dim=32, lr=0.5, epochs=300, batch_size=None, seed=0):
    N, D = X.shape
    params = init_params(D, hidden_dim, int(y.max()) + 1, seed=seed)
    rng = np.random.default_rng(seed)
    loss_history = []
    for _ in range(epochs):
        if batch_size is None:
            batches = [np.arange(N)]
        else:
            perm = rng.permutation(N)
            batches = [perm[i : i + batch_size] for i in range(0, N, batch_size)]
        epoch_loss = 0.0
        for idx in batches:
            logits, cache = mlp_forward(X[idx], params)
            loss, dlogits = softmax_cross_entropy(logits, y[idx])
            sgd_step(params, mlp_backward(dlogits, cache), lr)
            epoch_loss += loss * len(idx)
        loss_history.append(epoch_loss / N)  # mean loss over the epoch's examples
    return params, loss_history
