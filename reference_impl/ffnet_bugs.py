"""Known-wrong variants of ``reference_impl.ffnet`` (instructor-only).

Each reproduces one common student bug with the reference's signature, so
that the hidden tests can recognise its answer (a hint in the report) and
``tests/test_tolerances_ffnet.py`` can show that the tolerances reject it.
Nothing here is correct on purpose.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ffnet import MLP, cross_entropy, forward

# -- Part A ---------------------------------------------------------------------


def forward_no_relu(X, params):
    """Bug: no ReLU between the layers (the net is linear)."""
    return (X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]


def forward_transposed(X, params):
    """Bug: ``X @ W.T`` as if W had nn.Linear's (out, in) layout (runs only for square W)."""
    H = torch.relu(X @ params["W1"].T + params["b1"])
    return H @ params["W2"].T + params["b2"]


def cross_entropy_sum(logits, y):
    """Bug: sums over the batch (no 1/N)."""
    return cross_entropy(logits, y) * len(y)


def cross_entropy_naive(logits, y):
    """Bug: exp without subtracting the max: inf/inf = nan for large logits."""
    e = torch.exp(logits)
    p = e / e.sum(dim=1, keepdim=True)
    return -torch.log(p[torch.arange(len(y)), y]).mean()


def sgd_step_no_zero(params, lr):
    """Bug: updates but leaves the gradients to accumulate."""
    with torch.no_grad():
        for p in params.values():
            p -= lr * p.grad


def sgd_step_outside_no_grad(params, lr):
    """Bug: ``params[k] = p - lr * p.grad`` with autograd on: a new non-leaf tensor replaces the parameter."""
    for k, p in list(params.items()):
        params[k] = p - lr * p.grad
        p.grad = None


def train_manual_unweighted(X, y, params, lr, epochs, batch_size):
    """Bug: the epoch's loss is the plain mean of the batch losses (the short last batch counts as much)."""
    from .ffnet import sgd_step

    history = []
    for _ in range(epochs):
        losses = []
        for start in range(0, X.shape[0], batch_size):
            loss = cross_entropy(forward(X[start : start + batch_size], params), y[start : start + batch_size])
            loss.backward()
            sgd_step(params, lr)
            losses.append(loss.item())
        history.append(sum(losses) / len(losses))
    return history


# -- Part B ---------------------------------------------------------------------


class MLPNoReLU(MLP):
    """Bug: fc1 -> dropout -> fc2, no ReLU."""

    def forward(self, x):
        return self.fc2(self.dropout(self.fc1(x)))


class MLPFunctionalDropout(MLP):
    """Bug: ``F.dropout(h, p)`` whose ``training`` defaults to True: dropout also in eval mode."""

    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), self.dropout.p))


def _epoch(model, loader, optimizer, loss_fn, device, *, zero=True, step_first=False, train=True, reduce="weighted"):
    if train:
        model.train()
    total, count, losses = 0.0, 0, []
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        if zero:
            optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        if step_first:
            optimizer.step()
            loss.backward()
        else:
            loss.backward()
            optimizer.step()
        total += loss.item() * len(yb)
        count += len(yb)
        losses.append(loss.item())
    if reduce == "sum":
        return sum(losses)
    if reduce == "unweighted":
        return sum(losses) / len(losses)
    return total / count


def train_epoch_no_zero_grad(model, loader, optimizer, loss_fn, device):
    """Bug: no ``optimizer.zero_grad()``: each step uses the sum of all gradients so far."""
    return _epoch(model, loader, optimizer, loss_fn, device, zero=False)


def train_epoch_step_before_backward(model, loader, optimizer, loss_fn, device):
    """Bug: ``optimizer.step()`` before ``loss.backward()``: each step uses the previous batch's gradient."""
    return _epoch(model, loader, optimizer, loss_fn, device, step_first=True)


def train_epoch_no_train_mode(model, loader, optimizer, loss_fn, device):
    """Bug: never calls ``model.train()`` (after an evaluate, dropout stays off)."""
    return _epoch(model, loader, optimizer, loss_fn, device, train=False)


def train_epoch_sum(model, loader, optimizer, loss_fn, device):
    """Bug: returns the sum of the batch losses, not their mean."""
    return _epoch(model, loader, optimizer, loss_fn, device, reduce="sum")


def train_epoch_unweighted(model, loader, optimizer, loss_fn, device):
    """Bug: the plain mean of the batch losses (not weighted by batch size)."""
    return _epoch(model, loader, optimizer, loss_fn, device, reduce="unweighted")


def evaluate_no_eval(model, loader, device):
    """Bug: no ``model.eval()``: dropout stays active while evaluating."""
    correct, count = 0, 0
    with torch.no_grad():
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            correct += (model(xb).argmax(dim=1) == yb).sum().item()
            count += len(yb)
    return correct / count


class EarlyStoppingNonStrict:
    """Bug: an equal loss counts as an improvement (``<=``)."""

    def __init__(self, patience=3):
        self.patience, self.best, self.counter = patience, float("inf"), 0

    def step(self, val_loss):
        if val_loss <= self.best:
            self.best, self.counter = val_loss, 0
        else:
            self.counter += 1
        return self.counter >= self.patience


class EarlyStoppingOffByOne(EarlyStoppingNonStrict):
    """Bug: stops one step late (``counter > patience``)."""

    def step(self, val_loss):
        if val_loss < self.best:
            self.best, self.counter = val_loss, 0
        else:
            self.counter += 1
        return self.counter > self.patience


class EarlyStoppingNoReset(EarlyStoppingNonStrict):
    """Bug: the counter never goes back to 0 on an improvement."""

    def step(self, val_loss):
        if val_loss < self.best:
            self.best = val_loss
        else:
            self.counter += 1
        return self.counter >= self.patience


def early_stopping_answers(cls, patience, losses):
    stopper = cls(patience)
    return [bool(stopper.step(v)) for v in losses]
