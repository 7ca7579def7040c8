"""03_cnn: every tolerance accepts several correct implementations and rejects the named bugs.

Each case runs the hidden check's own probe (fresh inputs from several seeds)
against implementations written here, in this process, and judges the answer
exactly as the grader does. Correct variants differ the way students' code
does: loops vs ``unfold`` (im2col), float64 vs float32 arithmetic, a forward
that loops over the children vs one written out, ``y += x`` vs ``relu(y + x)``,
a DataLoader vs index slicing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.execute.runtime import runner, wire
from autograder.grade.cases import check_rng, probe_message
from autograder.grade.submission import judge_value
from reference_impl import cnn as ref
from reference_impl import cnn_bugs as bug

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def cnn(course):
    return course.spec("03_cnn")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- correct variants -----------------------------------------------------------------------

def conv2d_loops(x, w, b, stride=1, padding=0):
    """Loops over the output positions, the kernel contracted with einsum (the solution's way)."""
    N, C, H, W = x.shape
    Fo, _, KH, KW = w.shape
    if padding:
        xp = x.new_zeros((N, C, H + 2 * padding, W + 2 * padding))
        xp[:, :, padding:padding + H, padding:padding + W] = x
        x = xp
    Ho, Wo = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    out = x.new_zeros((N, Fo, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = torch.einsum("ncab,fcab->nf", x[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW], w)
    return out + b.view(1, -1, 1, 1)


def conv2d_unfold(x, w, b, stride=1, padding=0):
    """im2col: every window as a column, one matrix product."""
    N, _, H, W = x.shape
    Fo, _, KH, KW = w.shape
    cols = F.unfold(x, (KH, KW), padding=padding, stride=stride)  # (N, C*KH*KW, L)
    Ho, Wo = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    return (w.reshape(Fo, -1) @ cols).reshape(N, Fo, Ho, Wo) + b.view(1, -1, 1, 1)


def float32(fn):
    """The same implementation computed in float32 (a student's float32 buffer or cast)."""
    def wrapped(*args, **kwargs):
        cast = [a.float() if isinstance(a, torch.Tensor) and a.dtype == torch.float64 else a for a in args]
        return fn(*cast, **kwargs)
    wrapped.__name__ = f"float32({fn.__name__})"
    return wrapped


def maxpool_loops(x, kernel_size=2, stride=2):
    N, C, H, W = x.shape
    k = kernel_size
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    out = x.new_zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + k, j * stride:j * stride + k].amax(dim=(2, 3))
    return out


def maxpool_unfold(x, kernel_size=2, stride=2):
    return x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride).amax(dim=(-2, -1))


class LeNetExplicit(ref.LeNet):
    """The same children, with the forward written out (F.relu would do as well: ReLU has no parameters)."""

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu4(self.fc2(self.relu3(self.fc1(self.flatten(x)))))
        return self.fc3(x)


class LeNetFlat256(ref.LeNet):
    """A bug: fc1 sized for 24×24 feature maps (16·4·4 = 256 inputs)."""

    def __init__(self, num_classes=4):
        super().__init__(num_classes)
        self.fc1 = nn.Linear(256, 120)


class ResidualAlwaysProjected(ref.Residual):
    """A bug: conv3 created even without use_1x1conv (its weights have no counterpart)."""

    def __init__(self, in_channels, out_channels, use_1x1conv=False, strides=1):
        super().__init__(in_channels, out_channels, True, strides)


def lenet_shapes_lists(model, x):
    out = []
    for name, layer in model.named_children():
        x = layer(x)
        out.append([name, list(x.shape)])
    return out


class ResidualD2L(ref.Residual):
    """D2L's own forward: ``if self.conv3:`` and the in-place ``Y += X``."""

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


class ResidualAlwaysBatchStats(ref.Residual):
    """A bug: batch norm written with ``training=True``, so eval mode still uses the batch's statistics."""

    def forward(self, x):
        def bn(layer, t):
            return F.batch_norm(t, layer.running_mean, layer.running_var, layer.weight, layer.bias, training=True)
        y = F.relu(bn(self.bn1, self.conv1(x)))
        y = bn(self.bn2, self.conv2(y))
        return F.relu(y + (self.conv3(x) if self.conv3 is not None else x))


def resnet_namespace(residual: type[nn.Module]) -> dict:
    """``resnet_block`` and ``ResNet`` built on ``residual``, as a student's notebook would define them."""
    def resnet_block(in_channels, out_channels, num_residuals, first_block=False):
        blocks = [residual(in_channels if i == 0 else out_channels, out_channels,
                           use_1x1conv=(i == 0 and not first_block), strides=2 if i == 0 and not first_block else 1)
                  for i in range(num_residuals)]
        return nn.Sequential(*blocks)

    class ResNet(nn.Module):
        def __init__(self, in_channels=1, num_classes=4, channels=(8, 16, 32)):
            super().__init__()
            c1, c2, c3 = channels
            self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(c1)
            self.layer1 = resnet_block(c1, c1, 2, first_block=True)
            self.layer2 = resnet_block(c1, c2, 2)
            self.layer3 = resnet_block(c2, c3, 2)
            self.pool = nn.AdaptiveAvgPool2d((1, 1))
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(c3, num_classes)

        def forward(self, x):
            x = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
            return self.fc(self.flatten(self.pool(x)))

    return {"Residual": residual, "resnet_block": resnet_block, "ResNet": ResNet}


def count_nelement(model):
    return int(sum(p.nelement() for p in model.parameters()))


def count_shapes(model):
    return int(sum(np.prod(p.shape) for p in model.parameters()))


def evaluate_dataloader(model, X, y, batch_size=256, device="cpu"):
    model.eval()
    dtype = next(model.parameters()).dtype
    data = torch.utils.data.TensorDataset(torch.as_tensor(X, dtype=dtype), torch.as_tensor(y).long())
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total, correct = 0.0, 0
    with torch.no_grad():
        for xb, yb in torch.utils.data.DataLoader(data, batch_size=batch_size):
            logits = model(xb.to(device))
            total += float(loss_fn(logits, yb.to(device)))
            correct += int((logits.argmax(1) == yb.to(device)).sum())
    return total / len(data), correct / len(data)


def train_cnn_dataloader(model, X, y, epochs=3, lr=1e-3, batch_size=32, device="cpu", seed=0):
    model.to(device)
    data = torch.utils.data.TensorDataset(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y).long())
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for _ in range(epochs):
        model.train()
        total = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb.to(device)), yb.to(device))
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
        history.append(total / len(data))
    return history


def without_batch(model, x):
    return [(name, tuple(s[1:])) for name, s in ref.lenet_shapes(model, x)]


# -- the cases --------------------------------------------------------------------------------

def base() -> dict:
    return {"conv2d_forward": ref.conv2d_forward, "maxpool2d_forward": ref.maxpool2d_forward, "LeNet": ref.LeNet,
            "lenet_shapes": ref.lenet_shapes, "count_parameters": ref.count_parameters, "evaluate": ref.evaluate,
            "train_cnn": ref.train_cnn, **resnet_namespace(ref.Residual)}


def ns(**overrides) -> dict:
    namespace = base()
    if "Residual" in overrides:
        namespace.update(resnet_namespace(overrides.pop("Residual")))
    namespace.update(overrides)
    return namespace


CONV = [ns(conv2d_forward=f) for f in (ref.conv2d_forward, conv2d_loops, conv2d_unfold, float32(conv2d_unfold))]
POOL = [ns(maxpool2d_forward=f) for f in (ref.maxpool2d_forward, maxpool_loops, maxpool_unfold, float32(maxpool_loops))]
RESIDUAL = [ns(), ns(Residual=ResidualD2L)]

CASES = [
    # check, [correct namespaces], [(buggy namespace, word its hint or message must contain, or None)]
    ("conv2d_basic", CONV, [(ns(conv2d_forward=bug.conv2d_flipped), "correlación cruzada"),
                            (ns(conv2d_forward=bug.conv2d_no_bias), "sesgo")]),
    ("conv2d_stride_padding", CONV, [(ns(conv2d_forward=bug.conv2d_padding_ignored), "padding"),
                                     (ns(conv2d_forward=bug.conv2d_stride_ignored), "stride")]),
    ("conv2d_layout", CONV, [(ns(conv2d_forward=bug.conv2d_weight_channels_swapped), "(F, C, KH, KW)"),
                             (ns(conv2d_forward=bug.conv2d_kernel_transposed), "traspuesto")]),
    ("conv2d_backward", CONV, [(ns(conv2d_forward=bug.conv2d_flipped), "correlación cruzada")]),
    ("conv2d_backward_stride", CONV, [(ns(conv2d_forward=bug.conv2d_no_bias), "sesgo")]),
    ("conv2d_single", CONV, [(ns(conv2d_forward=bug.conv2d_flipped), "correlación cruzada")]),
    ("maxpool_default", POOL, [(ns(maxpool2d_forward=bug.maxpool2d_average), "media")]),
    ("maxpool_backward", POOL, [(ns(maxpool2d_forward=bug.maxpool2d_average), "media")]),
    ("maxpool_overlap", POOL, [(ns(maxpool2d_forward=bug.maxpool2d_stride_is_kernel), "stride")]),
    ("maxpool_odd", POOL, [(ns(maxpool2d_forward=bug.maxpool2d_average), "media")]),
    ("lenet_parameters", [ns(), ns(LeNet=LeNetExplicit)], [(ns(LeNet=LeNetFlat256), None)]),
    ("lenet_layers", [ns(), ns(LeNet=LeNetExplicit)], [(ns(LeNet=type("LeNetNoPad", (ref.LeNet,), {
        "__init__": lambda self, num_classes=4: (ref.LeNet.__init__(self, num_classes),
                                                 setattr(self.conv1, "padding", (0, 0)))[0]})), "padding=2")]),
    ("lenet_forward_backward", [ns(), ns(LeNet=LeNetExplicit)], [(ns(LeNet=type("LeNetSigmoid", (ref.LeNet,), {
        "__init__": lambda self, num_classes=4: (ref.LeNet.__init__(self, num_classes),
                                                 setattr(self, "relu3", nn.Sigmoid()))[0]})), None)]),
    ("lenet_shapes", [ns(), ns(lenet_shapes=lenet_shapes_lists)], [(ns(lenet_shapes=without_batch), None)]),
    ("residual_parameters", RESIDUAL, [(ns(Residual=ResidualAlwaysProjected), None)]),
    ("residual_downsample", RESIDUAL, [(ns(Residual=bug.ResidualNoFinalReLU), "ReLU final"),
                                       (ns(Residual=bug.ResidualReLUBeforeAdd), "antes de sumar")]),
    ("residual_identity", RESIDUAL, [(ns(Residual=bug.ResidualNoShortcut), "atajo"),
                                     (ns(Residual=bug.ResidualReLUBeforeAdd), "antes de sumar")]),
    ("residual_projection", RESIDUAL, [(ns(Residual=bug.ResidualNoProjection), "conv3")]),
    ("residual_eval", RESIDUAL, [(ns(Residual=ResidualAlwaysBatchStats), "running_mean"),
                                 (ns(Residual=bug.ResidualNoFinalReLU), "ReLU final")]),
    ("resnet_block", RESIDUAL, [(ns(Residual=bug.ResidualNoFinalReLU), None)]),
    ("resnet_train", RESIDUAL, [(ns(Residual=bug.ResidualReLUBeforeAdd), None)]),
    ("resnet_eval", RESIDUAL, [(ns(Residual=ResidualAlwaysBatchStats), None)]),
    ("count_parameters", [ns(), ns(count_parameters=count_nelement), ns(count_parameters=count_shapes)],
     [(ns(count_parameters=lambda m: sum(v.numel() for v in m.state_dict().values())), "buffers"),
      (ns(count_parameters=lambda m: len(list(m.parameters()))), "numel")]),
    ("evaluate", [ns(), ns(evaluate=evaluate_dataloader)],
     [(ns(evaluate=bug.evaluate_train_mode), "model.eval()"),
      (ns(evaluate=bug.evaluate_mean_of_batch_means), "reduction")]),
]


def answer(check, namespace, seed):
    case = check.build(check_rng(seed, check))
    message = probe_message(case.probe)
    torch.manual_seed(seed)
    reply = runner.run_probe(namespace, message["steps"], message["outputs"])
    assert reply["ok"], reply
    return case, wire.decode(wire.encode(reply["value"]))


def _says(word, mismatches, hints) -> bool:
    texts = list(hints) + [str(getattr(m, "message", "")) for m in mismatches]
    return any(word in t for t in texts)


@pytest.mark.parametrize("name, correct, bugs", CASES, ids=[c[0] for c in CASES])
def test_tolerance_accepts_correct_variants_and_rejects_named_bugs(cnn, name, correct, bugs):
    check = next(c for c in cnn.checks if c.name == name)
    assert len(correct) >= 2 and bugs
    for seed in SEEDS:
        for namespace in correct:
            case, value = answer(check, namespace, seed)
            mismatches, _ = judge_value(value, case, "es")
            assert mismatches == [], (name, seed, mismatches)
        for namespace, word in bugs:
            try:
                case, value = answer(check, namespace, seed)
            except AssertionError:  # the bug breaks the probe (an error): it scores 0 too
                continue
            mismatches, hints = judge_value(value, case, "es")
            assert mismatches, (name, seed)
            if word is not None:
                assert _says(word, mismatches, hints), (name, word, hints)


@pytest.mark.slow
def test_training_target_accepts_two_loops_and_rejects_a_loop_without_zero_grad(cnn):
    """The accuracy target (reference minus a margin) on new data: two correct loops pass, no zero_grad fails."""
    check = next(c for c in cnn.checks if c.name == "train_cnn")
    for seed in SEEDS[:2]:
        for namespace in (ns(), ns(train_cnn=train_cnn_dataloader)):
            case, value = answer(check, namespace, seed)
            assert judge_value(value, case, "es")[0] == [], seed
        case, value = answer(check, ns(train_cnn=bug.train_cnn_no_zero_grad), seed)
        mismatches, hints = judge_value(value, case, "es")
        assert mismatches and _says("zero_grad", mismatches, hints)
