"""Reference for ``03_cnn``: convolution and pooling, LeNet, residual blocks, a small ResNet, training.

Conventions (the pinned API, *Dive into Deep Learning* ch. 7-8 with PyTorch's layouts):
images are ``(N, C, H, W)``; a convolution's weight is ``(F, C, KH, KW)`` (out
channels first) and its bias ``(F,)``; it computes a cross-correlation (the
kernel is not flipped), like ``torch.nn.functional.conv2d``. Output sizes use
the floor: ``H' = (H + 2P - KH) // S + 1``. Device-agnostic: every function
works on whatever device and dtype its inputs have.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ----------------------------------------------------------------------------
# q1, q2 · convolution and max pooling (the reference may use torch's own ops)


def conv2d_forward(x, w, b, stride=1, padding=0):
    return F.conv2d(x, w, b, stride=stride, padding=padding)  # (N, F, H', W')


def maxpool2d_forward(x, kernel_size=2, stride=2):
    return F.max_pool2d(x, kernel_size, stride)  # (N, C, H', W'), no padding


def conv2d_output_size(h, k, stride, padding):
    return (h + 2 * padding - k) // stride + 1


# ----------------------------------------------------------------------------
# q3 · LeNet (the "modern" one: ReLU and max pooling) for 1x28x28 inputs

LENET_LAYERS = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2", "relu4", "fc3")
"""The prescribed children of :class:`LeNet`, in the order the forward applies them."""


class LeNet(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)  # (N, 6, 28, 28): padding 2 keeps 28x28
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2, 2)  # (N, 6, 14, 14)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)  # (N, 16, 10, 10)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2, 2)  # (N, 16, 5, 5)
        self.flatten = nn.Flatten()  # (N, 400)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)  # (N, num_classes): logits

    def forward(self, x):
        for layer in self.children():  # registered in LENET_LAYERS order
            x = layer(x)
        return x


def lenet_shapes(model, x):
    """``[(name, output shape), ...]`` for every child of ``model``, in order (D2L's layer summary)."""
    shapes = []
    for name, layer in model.named_children():
        x = layer(x)
        shapes.append((name, tuple(x.shape)))
    return shapes


# ----------------------------------------------------------------------------
# q4 · the residual block (D2L 8.6, with explicit input channels)


class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        # the 1x1 projection makes the shortcut match the main path's channels and size
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(y + x)  # the ReLU comes after the addition


# ----------------------------------------------------------------------------
# q5 · a small ResNet


def resnet_block(in_channels, out_channels, num_residuals, first_block=False):
    """``num_residuals`` residual blocks; unless ``first_block``, the first halves the size (1x1 projection, stride 2)."""
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(Residual(in_channels, out_channels, use_1x1conv=True, strides=2))
        else:
            blocks.append(Residual(out_channels if i else in_channels, out_channels))
    return nn.Sequential(*blocks)


class ResNet(nn.Module):
    """conv1-bn1-ReLU, then one stage of two residual blocks per entry of ``channels``, average pool, fc."""

    def __init__(self, in_channels=1, num_classes=4, channels=(8, 16, 32)):
        super().__init__()
        c1, c2, c3 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(c1)
        self.layer1 = resnet_block(c1, c1, 2, first_block=True)  # (N, c1, H, W)
        self.layer2 = resnet_block(c1, c2, 2)  # (N, c2, H/2, W/2)
        self.layer3 = resnet_block(c2, c3, 2)  # (N, c3, H/4, W/4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c3, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.pool(x)))


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------
# q6 · evaluation and training


def _as_tensors(X, y, device, dtype=torch.float32):
    return torch.as_tensor(X, dtype=dtype, device=device), torch.as_tensor(y, dtype=torch.long, device=device)


def evaluate(model, X, y, batch_size=256, device="cpu"):
    """``(mean cross-entropy over all examples, accuracy)`` of ``model`` in eval mode, without gradients."""
    model.eval()  # BN uses its running statistics and does not update them
    dtype = next(model.parameters()).dtype
    X, y = _as_tensors(X, y, device, dtype)
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            logits = model(xb)
            total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(dim=1) == yb).sum().item()
    return total_loss / len(y), correct / len(y)


def train_cnn(model, X, y, epochs=3, lr=1e-3, batch_size=32, device="cpu", seed=0):
    """Adam on the mean cross-entropy, minibatches reshuffled every epoch; returns the mean loss of each epoch."""
    model.to(device)
    X, y = _as_tensors(X, y, device)
    generator = torch.Generator().manual_seed(seed)  # the order of the examples, on the CPU
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / len(y))
    model.eval()
    return history


def accuracy(model, X, y, device="cpu"):
    return evaluate(model, X, y, device=device)[1]
