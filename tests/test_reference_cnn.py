"""The ``03_cnn`` oracle is right, its bugs are bugs, the data generator keeps its promises, and the
solved notebook agrees with the oracle."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.data.shapes import CLASSES, make_shapes
from autograder.release import BEGIN, END
from conftest import ROOT, run_graded_cells
from conftest import cell_source as _source
from reference_impl import cnn as ref
from reference_impl import cnn_bugs as bug

NOTEBOOK = ROOT / "solutions" / "03_cnn" / "solution.ipynb"
SKIP = "skip-grading"


pytestmark = pytest.mark.usefixtures("one_torch_thread_seeded")


def naive_conv(x, w, b, stride, padding):
    """The definition, one output element at a time (float64 numpy)."""
    x, w, b = (t.detach().numpy() for t in (x, w, b))
    N, C, H, W = x.shape
    Fo, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    Ho, Wo = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    out = np.zeros((N, Fo, Ho, Wo))
    for n in range(N):
        for f in range(Fo):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, f, i, j] = b[f] + np.sum(xp[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW] * w[f])
    return out


# ------------------------------------------------------------------------ q1, q2


@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((2, 3, 7, 6), (4, 3, 3, 2), 1, 0), ((1, 1, 5, 5), (2, 1, 3, 3), 2, 1), ((2, 2, 9, 8), (3, 2, 3, 2), 2, 2),
    ((3, 2, 6, 6), (2, 2, 2, 2), 1, 1),
])
def test_conv2d_reference_is_the_cross_correlation_of_the_definition(shape, kernel, stride, padding):
    x, w, b = torch.randn(shape, dtype=torch.float64), torch.randn(kernel, dtype=torch.float64), \
        torch.randn(kernel[0], dtype=torch.float64)
    out = ref.conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(out.numpy(), naive_conv(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)
    assert out.shape[2:] == (ref.conv2d_output_size(shape[2], kernel[2], stride, padding),
                             ref.conv2d_output_size(shape[3], kernel[3], stride, padding))


def test_maxpool_reference_takes_each_window_maximum():
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    out = ref.maxpool2d_forward(x, 3, 2)
    assert out.shape == (2, 3, 3, 4)
    assert out[1, 2, 2, 3] == x[1, 2, 4:7, 6:9].max()
    assert ref.maxpool2d_forward(torch.randn(1, 1, 5, 7)).shape == (1, 1, 2, 3)  # floor


def test_conv_bugs_differ_from_the_reference():
    x, w, b = torch.randn(2, 3, 6, 6, dtype=torch.float64), torch.randn(3, 3, 3, 3, dtype=torch.float64), \
        torch.randn(3, dtype=torch.float64)
    good = ref.conv2d_forward(x, w, b, 2, 1)
    for buggy in (bug.conv2d_weight_channels_swapped, bug.conv2d_kernel_transposed, bug.conv2d_flipped,
                  bug.conv2d_no_bias, bug.conv2d_padding_ignored, bug.conv2d_stride_ignored):
        out = buggy(x, w, b, 2, 1)
        assert out.shape != good.shape or not torch.allclose(out, good), buggy.__name__
    for buggy in (bug.maxpool2d_average, bug.maxpool2d_stride_is_kernel):
        out, good = buggy(x, 3, 2), ref.maxpool2d_forward(x, 3, 2)
        assert out.shape != good.shape or not torch.allclose(out, good), buggy.__name__


# ------------------------------------------------------------------------ q3


def test_lenet_layers_shapes_and_parameters():
    model = ref.LeNet()
    assert tuple(name for name, _ in model.named_children()) == ref.LENET_LAYERS
    shapes = ref.lenet_shapes(model, torch.zeros(2, 1, 28, 28))
    assert shapes == [("conv1", (2, 6, 28, 28)), ("relu1", (2, 6, 28, 28)), ("pool1", (2, 6, 14, 14)),
                      ("conv2", (2, 16, 10, 10)), ("relu2", (2, 16, 10, 10)), ("pool2", (2, 16, 5, 5)),
                      ("flatten", (2, 400)), ("fc1", (2, 120)), ("relu3", (2, 120)), ("fc2", (2, 84)),
                      ("relu4", (2, 84)), ("fc3", (2, 4))]
    assert list(model.state_dict()) == [f"{layer}.{p}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")
                                        for p in ("weight", "bias")]
    assert ref.count_parameters(model) == (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 4 + 4)
    x = torch.randn(3, 1, 28, 28)
    assert bug.lenet_conv1_no_padding(model, x).shape == (3, 6, 24, 24)


# ------------------------------------------------------------------------ q4, q5


def test_residual_shapes_names_and_batch_norm_modes():
    plain, down = ref.Residual(3, 3), ref.Residual(3, 6, use_1x1conv=True, strides=2)
    assert plain.conv3 is None and "conv3.weight" not in plain.state_dict()
    assert {"conv3.weight", "conv3.bias", "bn1.running_mean", "bn2.num_batches_tracked"} <= set(down.state_dict())
    x = torch.randn(4, 3, 6, 6)
    assert plain(x).shape == (4, 3, 6, 6) and down(x).shape == (4, 6, 3, 3)
    assert (down(x) >= 0).all()  # the ReLU comes last
    before = down.bn1.running_mean.clone()
    down.eval()
    with torch.no_grad():
        eval_out = down(x)
    assert torch.equal(before, down.bn1.running_mean)  # eval mode leaves the statistics alone
    down.train()
    with torch.no_grad():
        train_out = down(x)
    assert not torch.equal(before, down.bn1.running_mean)  # train mode updates them
    assert not torch.allclose(eval_out, train_out)


def test_residual_bugs_differ_from_the_reference():
    torch.manual_seed(1)
    good = ref.Residual(3, 3, use_1x1conv=True).double()
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    expected = good(x)
    for cls in (bug.ResidualNoFinalReLU, bug.ResidualReLUBeforeAdd, bug.ResidualNoProjection, bug.ResidualNoShortcut):
        module = bug.copy_module(cls, good, 3, 3, use_1x1conv=True)
        assert not torch.allclose(module(x), expected), cls.__name__


def test_resnet_structure_and_parameter_count():
    stage = ref.resnet_block(4, 8, 2)
    assert stage[0].conv3 is not None and stage[0].conv1.stride == (2, 2) and stage[1].conv3 is None
    first = ref.resnet_block(4, 4, 2, first_block=True)
    assert first[0].conv3 is None and first[0].conv1.stride == (1, 1)
    net = ref.ResNet(1, 4, (4, 6, 8))
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 4)
    assert {"layer2.0.conv3.weight", "layer3.1.bn2.running_var", "fc.weight"} <= set(net.state_dict())
    n = ref.count_parameters(net)
    assert n == sum(np.prod(p.shape) for p in net.parameters())
    assert n < sum(v.numel() for v in net.state_dict().values())  # the BN buffers are not parameters


# ------------------------------------------------------------------------ q6


def test_evaluate_is_eval_mode_and_averages_over_all_examples():
    net = ref.ResNet(1, 4, (2, 4, 4))
    X, y = make_shapes(10, size=12, seed=3)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    loss, acc = ref.evaluate(net, X, y, batch_size=4)
    assert not net.training and all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    with torch.no_grad():
        logits = net(torch.as_tensor(X))
    assert loss == pytest.approx(F.cross_entropy(logits, torch.as_tensor(y)).item(), rel=1e-6)
    assert acc == pytest.approx((logits.argmax(1).numpy() == y).mean())
    assert bug.evaluate_mean_of_batch_means(net, X, y, batch_size=4)[0] != pytest.approx(loss, rel=1e-6)
    net.load_state_dict(state)
    assert bug.evaluate_train_mode(net, X, y, batch_size=4)[0] != pytest.approx(loss, rel=1e-3)


@pytest.mark.slow
def test_train_cnn_is_deterministic_and_learns_the_shapes():
    X, y = make_shapes(640, seed=11)
    X_test, y_test = make_shapes(300, seed=12)
    runs = []
    for _ in range(2):
        torch.manual_seed(5)
        model = ref.LeNet()
        runs.append(ref.train_cnn(model, X, y, epochs=3, lr=3e-3, batch_size=16, seed=7))
    assert runs[0] == runs[1] and len(runs[0]) == 3 and runs[0][-1] < runs[0][0]
    assert ref.accuracy(model, X_test, y_test) > 0.75
    torch.manual_seed(5)
    broken = ref.LeNet()
    bug.train_cnn_no_zero_grad(broken, X, y, epochs=3, lr=3e-3, batch_size=16, seed=7)
    assert ref.accuracy(broken, X_test, y_test) < 0.5


# ------------------------------------------------------------------------ data


def test_make_shapes_is_seeded_balanced_and_in_range():
    X, y = make_shapes(40, seed=4)
    assert X.shape == (40, 1, 28, 28) and X.dtype == np.float32 and y.shape == (40,) and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert np.bincount(y, minlength=len(CLASSES)).tolist() == [10, 10, 10, 10]
    X2, y2 = make_shapes(40, seed=4)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    X3, _ = make_shapes(40, seed=5)
    assert not np.array_equal(X, X3)
    assert make_shapes(3, size=16)[0].shape == (3, 1, 16, 16)
    assert make_shapes(0)[0].shape == (0, 1, 28, 28)
    with pytest.raises(ValueError):
        make_shapes(4, size=4)


def test_shape_classes_are_drawn_differently():
    X, y = make_shapes(400, seed=0)
    ink = X.reshape(len(X), -1).mean(axis=1)
    means = [ink[y == k].mean() for k in range(len(CLASSES))]
    assert means[3] < min(means[:3])  # a line has the least ink


# ------------------------------------------------------------------------ the notebook


@pytest.fixture(scope="module")
def notebook():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def solution_namespace(notebook):
    return run_graded_cells(notebook)


def test_notebook_structure(notebook):
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    checks = [_source(c).strip() for c in code if _source(c).startswith("check(")]
    assert checks == [f'check("q{i}")' for i in range(1, 7)]
    for cell in code:
        lines = _source(cell).split("\n")
        assert sum(bool(BEGIN.match(x)) for x in lines) == sum(bool(END.match(x)) for x in lines)
        if re.search(r"train_cnn\(|plt\.|make_shapes\(2000", _source(cell)) and "def " not in _source(cell):
            assert SKIP in cell["metadata"].get("tags", []), _source(cell)[:80]
    api = next(_source(c) for c in notebook["cells"] if c.get("id") == "api")
    for name in ("conv2d_forward", "maxpool2d_forward", "LeNet", "lenet_shapes", "Residual", "resnet_block", "ResNet",
                 "count_parameters", "evaluate", "train_cnn", "(F, C, KH, KW)", "running_mean"):
        assert name in api, name


def test_solution_agrees_with_the_reference(solution_namespace):
    s = solution_namespace
    x, w, b = torch.randn(2, 3, 7, 6, dtype=torch.float64), torch.randn(4, 3, 3, 2, dtype=torch.float64), \
        torch.randn(4, dtype=torch.float64)
    for stride, padding in ((1, 0), (2, 1), (2, 2)):
        torch.testing.assert_close(s["conv2d_forward"](x, w, b, stride, padding), ref.conv2d_forward(x, w, b, stride, padding))
    torch.testing.assert_close(s["maxpool2d_forward"](x, 3, 2), ref.maxpool2d_forward(x, 3, 2))
    for mine, theirs, args, size in ((s["LeNet"], ref.LeNet, (), 28), (s["ResNet"], ref.ResNet, (1, 4, (3, 5, 6)), 12),
                                     (s["Residual"], ref.Residual, (3, 5, True, 2), 7)):
        a, r = mine(*args).double(), theirs(*args).double()
        a.load_state_dict(r.state_dict())
        xin = torch.randn(3, args[0] if args else 1, size, size, dtype=torch.float64)
        torch.testing.assert_close(a(xin), r(xin))
        assert s["count_parameters"](a) == ref.count_parameters(r)
    assert s["lenet_shapes"](s["LeNet"](), torch.zeros(1, 1, 28, 28)) == ref.lenet_shapes(ref.LeNet(), torch.zeros(1, 1, 28, 28))
