"""The 02_ffnet reference agrees with PyTorch's own building blocks, and its named bugs really differ."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.data.digits import load_digits_arrays, load_digits_split
from reference_impl import ffnet as ref
from reference_impl import ffnet_bugs as bug


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def _params(D=5, H=7, C=4):
    g = torch.Generator().manual_seed(1)
    return {"W1": torch.randn(D, H, generator=g, dtype=torch.float64), "b1": torch.randn(H, generator=g, dtype=torch.float64),
            "W2": torch.randn(H, C, generator=g, dtype=torch.float64), "b2": torch.randn(C, generator=g, dtype=torch.float64)}


def _leaves(params):
    return {k: v.clone().requires_grad_() for k, v in params.items()}


def test_forward_equals_nn_linear_with_transposed_weights():
    params, X = _params(), torch.randn(9, 5, dtype=torch.float64)
    P = _leaves(params)
    out = ref.forward(X, P)
    expected = F.linear(F.relu(F.linear(X, params["W1"].T, params["b1"])), params["W2"].T, params["b2"])
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert all(P[k].grad is not None and P[k].grad.shape == P[k].shape for k in P)
    assert not torch.allclose(bug.forward_no_relu(X, params), out)


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_cross_entropy_equals_torch_value_and_gradient(scale):
    logits = (torch.randn(7, 5, dtype=torch.float64) * scale).requires_grad_()
    y = torch.randint(0, 5, (7,))
    loss = ref.cross_entropy(logits, y)
    loss.backward()
    z = logits.detach().clone().requires_grad_()
    expected = F.cross_entropy(z, y)
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(logits.grad, z.grad)
    torch.testing.assert_close(bug.cross_entropy_sum(logits, y), loss * 7)
    if scale > 100:
        assert not torch.isfinite(bug.cross_entropy_naive(logits.detach(), y))


def test_init_params_he_leaves_and_seed():
    params = ref.init_params(60, 250, 12, seed=3)
    assert {k: tuple(v.shape) for k, v in params.items()} == {"W1": (60, 250), "b1": (250,), "W2": (250, 12), "b2": (12,)}
    assert all(v.is_leaf and v.requires_grad for v in params.values())
    assert not params["b1"].any() and not params["b2"].any()
    assert abs(params["W1"].std().item() / math.sqrt(2 / 60) - 1) < 0.05
    assert abs(params["W2"].std().item() / math.sqrt(2 / 250) - 1) < 0.1
    again, other = ref.init_params(60, 250, 12, seed=3), ref.init_params(60, 250, 12, seed=4)
    assert torch.equal(params["W1"], again["W1"]) and not torch.equal(params["W1"], other["W1"])


def test_sgd_step_equals_torch_optim_and_zeroes_the_gradients():
    params, X, y = _params(), torch.randn(6, 5, dtype=torch.float64), torch.randint(0, 4, (6,))
    ours, theirs = _leaves(params), _leaves(params)
    ref.cross_entropy(ref.forward(X, ours), y).backward()
    ref.sgd_step(ours, 0.3)
    optimizer = torch.optim.SGD(theirs.values(), lr=0.3)
    F.cross_entropy(ref.forward(X, theirs), y).backward()
    optimizer.step()
    for k in params:
        torch.testing.assert_close(ours[k], theirs[k])
        assert ours[k].is_leaf and ours[k].requires_grad and not ours[k].grad.any()


def test_train_manual_equals_a_torch_optim_loop_with_in_order_batches():
    params, X, y = _params(), torch.randn(23, 5, dtype=torch.float64), torch.randint(0, 4, (23,))
    ours, theirs = _leaves(params), _leaves(params)
    history = ref.train_manual(X, y, ours, lr=0.2, epochs=3, batch_size=5)
    optimizer = torch.optim.SGD(theirs.values(), lr=0.2)
    expected = []
    for _ in range(3):
        total = 0.0
        for xb, yb in zip(X.split(5), y.split(5), strict=True):
            optimizer.zero_grad()
            loss = F.cross_entropy(ref.forward(xb, theirs), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
        expected.append(total / 23)
    assert history == pytest.approx(expected, rel=1e-12)
    for k in params:
        torch.testing.assert_close(ours[k], theirs[k])
    unweighted = bug.train_manual_unweighted(X, y, _leaves(params), 0.2, 3, 5)
    assert unweighted != pytest.approx(history, rel=1e-6)


def test_mlp_names_shapes_forward_and_dropout_modes():
    model = ref.MLP(5, 7, 4, dropout=0.5).double()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        "fc1.weight": (7, 5), "fc1.bias": (7,), "fc2.weight": (4, 7), "fc2.bias": (4,)}
    X = torch.randn(8, 5, dtype=torch.float64)
    by_hand = F.relu(X @ model.fc1.weight.T + model.fc1.bias) @ model.fc2.weight.T + model.fc2.bias
    model.eval()
    torch.testing.assert_close(model(X), by_hand)
    model.train()
    assert not torch.allclose(model(X), by_hand)
    buggy = bug.MLPFunctionalDropout(5, 7, 4, dropout=0.5).double()
    buggy.load_state_dict(model.state_dict())
    assert not torch.allclose(buggy.eval()(X), by_hand)


def _loader(X, y, batch_size):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch_size)


def test_train_epoch_weighted_mean_train_mode_and_bugs_differ():
    X, y = torch.randn(23, 5, dtype=torch.float64), torch.randint(0, 4, (23,))
    start = ref.MLP(5, 7, 4).double().state_dict()

    def run(fn):
        model = ref.MLP(5, 7, 4).double()
        model.load_state_dict(start)
        model.eval()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
        loss = fn(model, _loader(X, y, 5), optimizer, torch.nn.CrossEntropyLoss(), "cpu")
        return loss, model

    loss, model = run(ref.train_epoch)
    assert model.training
    again = ref.MLP(5, 7, 4).double()
    again.load_state_dict(start)
    optimizer = torch.optim.SGD(again.parameters(), lr=0.3)
    losses = []
    for xb, yb in zip(X.split(5), y.split(5), strict=True):
        optimizer.zero_grad()
        batch_loss = F.cross_entropy(again(xb), yb)
        batch_loss.backward()
        optimizer.step()
        losses.append((batch_loss.item(), len(yb)))
    assert loss == pytest.approx(sum(v * n for v, n in losses) / 23, rel=1e-12)
    torch.testing.assert_close(model.fc1.weight, again.fc1.weight)
    for wrong in (bug.train_epoch_no_zero_grad, bug.train_epoch_step_before_backward):
        assert not torch.allclose(run(wrong)[1].fc1.weight, model.fc1.weight)
    for wrong in (bug.train_epoch_sum, bug.train_epoch_unweighted):
        assert run(wrong)[0] != pytest.approx(loss, rel=1e-6)
    assert not run(bug.train_epoch_no_train_mode)[1].training


def test_evaluate_is_a_fraction_in_eval_mode_without_autograd():
    model = ref.MLP(5, 7, 4, dropout=0.5).double()
    X = torch.randn(23, 5, dtype=torch.float64)
    y = model.eval()(X).argmax(dim=1)
    y[:5] = (y[:5] + 1) % 4
    grad_enabled = []
    model.fc1.register_forward_hook(lambda *args: grad_enabled.append(torch.is_grad_enabled()))
    model.train()
    assert ref.evaluate(model, _loader(X, y, 6), "cpu") == pytest.approx(18 / 23)
    assert not model.training and grad_enabled and not any(grad_enabled)


def test_early_stopping_rule_and_its_bugs():
    assert bug.early_stopping_answers(ref.EarlyStopping, 2, [1.0, 0.8, 0.8, 0.9]) == [False, False, False, True]
    losses = [1.0, 0.9, 0.9, 0.95, 0.8, 0.85, 0.8, 0.8]
    expected = bug.early_stopping_answers(ref.EarlyStopping, 2, losses)
    assert expected == [False, False, False, True, False, False, True, True]
    for cls in (bug.EarlyStoppingNonStrict, bug.EarlyStoppingOffByOne, bug.EarlyStoppingNoReset):
        assert bug.early_stopping_answers(cls, 2, losses) != expected


def test_digits_split_is_seeded_scaled_and_the_bundled_data():
    X_train, X_test, y_train, y_test = load_digits_split()
    assert (tuple(X_train.shape), tuple(X_test.shape)) == ((1438, 64), (359, 64))
    assert X_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert 0.0 <= X_train.min() and X_train.max() == 1.0 and set(y_test.tolist()) == set(range(10))
    again = load_digits_split()
    assert torch.equal(X_train, again[0]) and torch.equal(y_test, again[3])
    assert not torch.equal(load_digits_split(seed=1)[3], y_test)
    X, y = load_digits_arrays()
    rows = {tuple(r) for r in (X / 16).astype(np.float32).tolist()}
    assert len(X) == 1797 and all(tuple(r) in rows for r in X_test.tolist()[:20])
    from sklearn.datasets import load_digits

    bunch = load_digits()
    assert np.array_equal(X, bunch.data) and np.array_equal(y, bunch.target)
    with pytest.raises(ValueError):
        load_digits_split(test_size=1.0)
