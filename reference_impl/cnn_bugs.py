"""Named bugs of ``03_cnn``: what common mistakes compute, for the hidden tests' bug patterns.

Each function is the reference with one realistic mistake; the hidden tests
run it on the same inputs and, when a student's answer matches it, say which
mistake it is. ``tests/test_tolerances_cnn.py`` shows every tolerance rejects them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import cnn as ref

# ----------------------------------------------------------------------------
# q1 · convolution


def conv2d_weight_channels_swapped(x, w, b, stride=1, padding=0):
    """``w`` read as ``(C, F, KH, KW)``: ``w[c, f]`` where ``w[f, c]`` is meant (needs C == F)."""
    return F.conv2d(x, w.transpose(0, 1), b, stride=stride, padding=padding)


def conv2d_kernel_transposed(x, w, b, stride=1, padding=0):
    """The kernel read as ``(KW, KH)``: rows and columns of every kernel swapped (square kernels)."""
    return F.conv2d(x, w.transpose(2, 3), b, stride=stride, padding=padding)


def conv2d_flipped(x, w, b, stride=1, padding=0):
    """A true convolution (kernel flipped in both axes) instead of the cross-correlation of deep learning."""
    return F.conv2d(x, w.flip(2, 3), b, stride=stride, padding=padding)


def conv2d_no_bias(x, w, b, stride=1, padding=0):
    return F.conv2d(x, w, None, stride=stride, padding=padding)


def conv2d_padding_ignored(x, w, b, stride=1, padding=0):
    return F.conv2d(x, w, b, stride=stride, padding=0)


def conv2d_stride_ignored(x, w, b, stride=1, padding=0):
    return F.conv2d(x, w, b, stride=1, padding=padding)


# ----------------------------------------------------------------------------
# q2 · max pooling


def maxpool2d_average(x, kernel_size=2, stride=2):
    return F.avg_pool2d(x, kernel_size, stride)


def maxpool2d_stride_is_kernel(x, kernel_size=2, stride=2):
    return F.max_pool2d(x, kernel_size, kernel_size)


# ----------------------------------------------------------------------------
# q3 · LeNet


def lenet_conv1_no_padding(model, x):
    """What ``conv1`` gives without ``padding=2``: (N, 6, 24, 24)."""
    return F.conv2d(x, model.conv1.weight, model.conv1.bias)


# ----------------------------------------------------------------------------
# q4 · the residual block (modules built like the reference, forward changed)


class ResidualNoFinalReLU(ref.Residual):
    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return y + x


class ResidualReLUBeforeAdd(ref.Residual):
    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        if self.conv3 is not None:
            x = self.conv3(x)
        return y + x


class ResidualNoProjection(ref.Residual):
    """``conv3`` exists (its weights load) but the shortcut skips it: only runs when the shapes agree."""

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + x)


class ResidualNoShortcut(ref.Residual):
    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)))


# ----------------------------------------------------------------------------
# q6 · evaluation


def evaluate_train_mode(model, X, y, batch_size=256, device="cpu"):
    """``evaluate`` without ``model.eval()``: BN normalises with each batch's statistics and updates its running ones."""
    model.train()
    dtype = next(model.parameters()).dtype
    X, y = ref._as_tensors(X, y, device, dtype)
    total, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(X[start:start + batch_size])
            yb = y[start:start + batch_size]
            total += F.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(1) == yb).sum().item()
    return total / len(y), correct / len(y)


def evaluate_mean_of_batch_means(model, X, y, batch_size=256, device="cpu"):
    """The loss as the mean of the batches' means: wrong when the last batch is smaller."""
    model.eval()
    dtype = next(model.parameters()).dtype
    X, y = ref._as_tensors(X, y, device, dtype)
    losses, correct = [], 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(X[start:start + batch_size])
            yb = y[start:start + batch_size]
            losses.append(F.cross_entropy(logits, yb).item())
            correct += (logits.argmax(1) == yb).sum().item()
    return sum(losses) / len(losses), correct / len(y)


def train_cnn_no_zero_grad(model, X, y, epochs=3, lr=1e-3, batch_size=32, device="cpu", seed=0):
    """The reference loop without ``optimizer.zero_grad()``: gradients pile up over the steps."""
    model.to(device)
    X, y = ref._as_tensors(X, y, device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / len(y))
    return history


def copy_module(cls: type[nn.Module], source: nn.Module, *args, **kwargs) -> nn.Module:
    """An instance of the buggy ``cls`` with ``source``'s state (weights and BN statistics)."""
    module = cls(*args, **kwargs).to(next(source.parameters()).dtype)
    module.load_state_dict(source.state_dict())
    return module
