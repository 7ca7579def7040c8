"""Reference for ``02_ffnet``: a feed-forward net in PyTorch, by hand and the PyTorch way.

Conventions (the pinned API): Part A works on raw tensors with ``X @ W + b``,
``W`` of shape ``(in, out)``, integer class labels of shape ``(N,)``, and a
mean cross-entropy over the batch; Part B is an ``nn.Module`` whose parameter
names (``fc1.*``, ``fc2.*``) match this one's, so that weights load by name.
Everything is device-agnostic: tensors stay where they are given, loaders'
batches go to ``device``. The grader runs this in float64 on the CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

PARAM_NAMES = ("W1", "b1", "W2", "b2")

# ----------------------------------------------------------------------------
# Part A · q1: parameters and forward pass on raw tensors


def init_params(input_dim, hidden_dim, num_classes, seed=0):
    """He (Kaiming) normal init, std = sqrt(2 / fan_in), biases at zero; leaf tensors with requires_grad."""
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(input_dim, hidden_dim, generator=g) * math.sqrt(2.0 / input_dim)  # (D, H)
    W2 = torch.randn(hidden_dim, num_classes, generator=g) * math.sqrt(2.0 / hidden_dim)  # (H, C)
    params = {"W1": W1, "b1": torch.zeros(hidden_dim), "W2": W2, "b2": torch.zeros(num_classes)}
    return {k: v.requires_grad_() for k, v in params.items()}  # scaled first, so they are leaves


def forward(X, params):
    H = torch.relu(X @ params["W1"] + params["b1"])  # (N, D) @ (D, H) + (H,) -> (N, H)
    return H @ params["W2"] + params["b2"]  # (N, C) logits


# ----------------------------------------------------------------------------
# Part A · q2: softmax cross-entropy by hand


def cross_entropy(logits, y):
    """Mean over the batch of -log softmax(logits)[y], stable for large logits."""
    shifted = logits - logits.max(dim=1, keepdim=True).values  # (N, C), max 0 per row
    log_probs = shifted - torch.logsumexp(shifted, dim=1, keepdim=True)  # log-softmax
    return -log_probs[torch.arange(len(y), device=logits.device), y].mean()


# ----------------------------------------------------------------------------
# Part A · q3: manual SGD and the training loop


def sgd_step(params, lr):
    """p <- p - lr * dL/dp in place (outside autograd), then the gradients back to zero."""
    with torch.no_grad():
        for p in params.values():
            p -= lr * p.grad
            p.grad.zero_()


def train_manual(X, y, params, lr, epochs, batch_size):
    """Mini-batches in order (no shuffling); one loss per epoch: the batch losses' mean weighted by batch size."""
    N = X.shape[0]
    history = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, N, batch_size):
            Xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            loss = cross_entropy(forward(Xb, params), yb)
            loss.backward()
            sgd_step(params, lr)
            total += loss.item() * len(yb)
        history.append(total / N)
    return history


# ----------------------------------------------------------------------------
# Part B · q4: the module


class MLP(nn.Module):
    """fc1 -> ReLU -> dropout -> fc2 (logits). Parameters: fc1.weight (H, D), fc1.bias, fc2.weight (C, H), fc2.bias."""

    def __init__(self, input_dim, hidden_dim, num_classes, dropout=0.0):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)  # no parameters: active only in train mode
        self.fc2 = nn.Linear(hidden_dim, num_classes)

    def forward(self, x):
        return self.fc2(self.dropout(F.relu(self.fc1(x))))  # (N, C)


# ----------------------------------------------------------------------------
# Part B · q5: training and evaluation loops


def train_epoch(model, loader, optimizer, loss_fn, device):
    """One pass over ``loader``; returns the mean loss per example (batch losses weighted by batch size)."""
    model.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(yb)
        count += len(yb)
    return total / count


def evaluate(model, loader, device):
    """Accuracy in [0, 1] over ``loader``, in eval mode and without autograd."""
    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            correct += (model(xb).argmax(dim=1) == yb).sum().item()
            count += len(yb)
    return correct / count


# ----------------------------------------------------------------------------
# Part B · q6: early stopping


class EarlyStopping:
    """Stop after ``patience`` consecutive steps without a strict improvement of the best loss.

    ``step(val_loss)`` returns True when training should stop: the counter of
    steps without improvement resets to 0 on a loss strictly below the best
    one so far, and otherwise goes up by 1; stop once it reaches ``patience``.
    """

    def __init__(self, patience=3):
        self.patience = patience
        self.best = math.inf
        self.counter = 0

    def step(self, val_loss):
        if val_loss < self.best:
            self.best = val_loss
            self.counter = 0
        else:
            self.counter += 1
        return self.counter >= self.patience


# ----------------------------------------------------------------------------
# helpers for the hidden tests (not part of the students' API)


def mlp_with_state(state, dropout=0.0, dtype=torch.float64):
    """The reference MLP holding ``state`` (name -> array), in ``dtype``."""
    D, H, C = state["fc1.weight"].shape[1], state["fc1.weight"].shape[0], state["fc2.weight"].shape[0]
    model = MLP(D, H, C, dropout).to(dtype)
    model.load_state_dict({k: torch.as_tensor(v, dtype=dtype) for k, v in state.items()})
    return model


def state_arrays(model):
    """``model.state_dict()`` as float64 numpy arrays."""
    return {k: v.detach().to("cpu", torch.float64).numpy().copy() for k, v in model.state_dict().items()}


def accuracy(model, X, y):
    """Accuracy of ``model`` (eval mode) on tensors ``X``, ``y``."""
    model.eval()
    with torch.no_grad():
        return (model(X).argmax(dim=1) == y).double().mean().item()
