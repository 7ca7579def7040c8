"""02_ffnet: every tolerance (and judge) accepts several correct implementations and rejects the named bugs.

Each case runs the hidden check's own probe (fresh inputs from several seeds)
with the runtime ops, in this process, against implementations written here,
and judges the answer exactly as the grader does.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.execute.runtime import runner, wire
from autograder.grade.cases import check_rng, probe_message
from autograder.grade.submission import judge_value
from reference_impl import ffnet as ref
from reference_impl import ffnet_bugs as bug

SEEDS = [0, 1, 2]
REFERENCE = {name: getattr(ref, name) for name in
             ("init_params", "forward", "cross_entropy", "sgd_step", "train_manual", "MLP", "train_epoch", "evaluate",
              "EarlyStopping")}


# -- correct variants ---------------------------------------------------------------------


def f32(fn):
    """The same function computed in float32 (a student's .float()), answered in float64."""
    def wrapped(first, second):
        if isinstance(second, dict):  # forward(X, params)
            return fn(first.float(), {k: v.float() for k, v in second.items()}).double()
        return fn(first.float(), second).double()  # cross_entropy(logits, y)
    return wrapped


def forward_addmm(X, params):
    H = (torch.mm(X, params["W1"]) + params["b1"]).clamp(min=0)
    return torch.addmm(params["b2"], H, params["W2"])


def forward_einsum(X, params):
    H = torch.where(X @ params["W1"] + params["b1"] > 0, X @ params["W1"] + params["b1"], 0.0)
    return torch.einsum("nh,hc->nc", H, params["W2"]) + params["b2"]


def cross_entropy_log_softmax(logits, y):
    return -torch.log_softmax(logits, dim=1).gather(1, y[:, None]).mean()


def sgd_step_data(params, lr):
    for p in params.values():
        p.data.sub_(lr * p.grad)  # .data is outside autograd too
        p.grad = None


def train_manual_split(X, y, params, lr, epochs, batch_size):
    history = []
    for _ in range(epochs):
        losses, sizes = [], []
        for Xb, yb in zip(X.split(batch_size), y.split(batch_size), strict=True):
            loss = ref.cross_entropy(ref.forward(Xb, params), yb)
            loss.backward()
            ref.sgd_step(params, lr)
            losses.append(loss.detach())
            sizes.append(len(yb))
        history.append(float((torch.stack(losses) * torch.tensor(sizes)).sum() / len(y)))
    return history


def init_params_uniform(input_dim, hidden_dim, num_classes, seed=0):
    """He uniform: U(-b, b) with b = sqrt(6 / fan_in), the same variance."""
    g = torch.Generator().manual_seed(seed)
    W1 = (torch.rand(input_dim, hidden_dim, generator=g) * 2 - 1) * math.sqrt(6 / input_dim)
    W2 = (torch.rand(hidden_dim, num_classes, generator=g) * 2 - 1) * math.sqrt(6 / hidden_dim)
    params = {"W1": W1, "b1": torch.zeros(hidden_dim), "W2": W2, "b2": torch.zeros(num_classes)}
    return {k: v.requires_grad_() for k, v in params.items()}


def init_params_manual_seed(input_dim, hidden_dim, num_classes, seed=0):
    torch.manual_seed(seed)
    W1 = torch.randn(input_dim, hidden_dim, dtype=torch.float64) * math.sqrt(2 / input_dim)
    W2 = torch.randn(hidden_dim, num_classes, dtype=torch.float64) * math.sqrt(2 / hidden_dim)
    return {"W1": W1.requires_grad_(), "b1": torch.zeros(hidden_dim, requires_grad=True),
            "W2": W2.requires_grad_(), "b2": torch.zeros(num_classes, requires_grad=True)}


class MLPByHand(nn.Module):
    def __init__(self, input_dim, hidden_dim, num_classes, dropout=0.0):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(input_dim, hidden_dim), nn.Linear(hidden_dim, num_classes)
        self.p = dropout

    def forward(self, x):
        h = torch.relu(x @ self.fc1.weight.T + self.fc1.bias)
        return self.fc2(F.dropout(h, self.p, training=self.training))


def train_epoch_zero_after(model, loader, optimizer, loss_fn, device):
    model.train()
    total, n = torch.zeros((), dtype=torch.float64), 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()  # at the end of the step: the first step starts from no gradient anyway
        total += loss.detach().double() * xb.size(0)
        n += xb.size(0)
    return (total / n).item()


def evaluate_inference_mode(model, loader, device):
    model.eval()
    hits = total = 0
    with torch.inference_mode():
        for xb, yb in loader:
            hits += int((model(xb.to(device)).argmax(1) == yb.to(device)).sum())
            total += yb.numel()
    return hits / total


class EarlyStoppingHistory:
    """The same rule from the whole history: steps since the first occurrence of the minimum."""

    def __init__(self, patience=3):
        self.patience, self.history = patience, []

    def step(self, val_loss):
        self.history.append(val_loss)
        best = min(range(len(self.history)), key=lambda i: (self.history[i], i))
        return len(self.history) - 1 - best >= self.patience


# -- named bugs -------------------------------------------------------------------------------


def init_params_not_leaf(input_dim, hidden_dim, num_classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"W1": torch.randn(input_dim, hidden_dim, generator=g, requires_grad=True) * math.sqrt(2 / input_dim),
            "b1": torch.zeros(hidden_dim, requires_grad=True),
            "W2": torch.randn(hidden_dim, num_classes, generator=g, requires_grad=True) * math.sqrt(2 / hidden_dim),
            "b2": torch.zeros(num_classes, requires_grad=True)}


def init_params_xavier(input_dim, hidden_dim, num_classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(input_dim, hidden_dim, generator=g) * math.sqrt(2 / (input_dim + hidden_dim))
    W2 = torch.randn(hidden_dim, num_classes, generator=g) * math.sqrt(2 / (hidden_dim + num_classes))
    params = {"W1": W1, "b1": torch.zeros(hidden_dim), "W2": W2, "b2": torch.zeros(num_classes)}
    return {k: v.requires_grad_() for k, v in params.items()}


def init_params_torch_kaiming(input_dim, hidden_dim, num_classes, seed=0):
    """nn.init.kaiming_normal_ on an (in, out) tensor takes fan_in from dim 1: sqrt(2 / out)."""
    torch.manual_seed(seed)
    W1, W2 = torch.empty(input_dim, hidden_dim), torch.empty(hidden_dim, num_classes)
    nn.init.kaiming_normal_(W1, nonlinearity="relu")
    nn.init.kaiming_normal_(W2, nonlinearity="relu")
    params = {"W1": W1, "b1": torch.zeros(hidden_dim), "W2": W2, "b2": torch.zeros(num_classes)}
    return {k: v.requires_grad_() for k, v in params.items()}


def init_params_no_seed(input_dim, hidden_dim, num_classes, seed=0):
    W1 = torch.randn(input_dim, hidden_dim) * math.sqrt(2 / input_dim)
    W2 = torch.randn(hidden_dim, num_classes) * math.sqrt(2 / hidden_dim)
    params = {"W1": W1, "b1": torch.zeros(hidden_dim), "W2": W2, "b2": torch.zeros(num_classes)}
    return {k: v.requires_grad_() for k, v in params.items()}


class MLPNoDropout(ref.MLP):
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def evaluate_percent(model, loader, device):
    return 100 * ref.evaluate(model, loader, device)


def evaluate_batch_mean(model, loader, device):
    model.eval()
    with torch.no_grad():
        accs = [(model(xb.to(device)).argmax(1) == yb.to(device)).double().mean().item() for xb, yb in loader]
    return sum(accs) / len(accs)


CASES = [
    # check, [correct implementations], [(named bug, word its message or hint must contain)]
    ("init_params", [{}, {"init_params": init_params_uniform}, {"init_params": init_params_manual_seed}],
     [({"init_params": init_params_not_leaf}, "hoja"), ({"init_params": init_params_xavier}, "Xavier"),
      ({"init_params": init_params_torch_kaiming}, "kaiming_normal_"), ({"init_params": init_params_no_seed}, "semilla")]),
    ("forward", [{}, {"forward": forward_addmm}, {"forward": forward_einsum}, {"forward": f32(ref.forward)}],
     [({"forward": bug.forward_no_relu}, "ReLU")]),
    ("forward_square", [{}, {"forward": forward_einsum}, {"forward": f32(ref.forward)}],
     [({"forward": bug.forward_transposed}, "W.T"), ({"forward": bug.forward_no_relu}, "ReLU")]),
    ("forward_batch1", [{}, {"forward": forward_addmm}], [({"forward": bug.forward_no_relu}, "ReLU")]),
    ("cross_entropy", [{}, {"cross_entropy": cross_entropy_log_softmax}, {"cross_entropy": f32(ref.cross_entropy)}],
     [({"cross_entropy": bug.cross_entropy_sum}, "dividir por N")]),
    ("cross_entropy_large_logits", [{}, {"cross_entropy": cross_entropy_log_softmax}],
     [({"cross_entropy": bug.cross_entropy_naive}, "máximo"), ({"cross_entropy": bug.cross_entropy_sum}, "dividir por N")]),
    ("sgd_step", [{}, {"sgd_step": sgd_step_data}], [({"sgd_step": bug.sgd_step_outside_no_grad}, "no_grad")]),
    ("sgd_step_zero_grad", [{}, {"sgd_step": sgd_step_data}], [({"sgd_step": bug.sgd_step_no_zero}, "cero")]),
    ("train_manual", [{}, {"train_manual": train_manual_split}],
     [({"train_manual": bug.train_manual_unweighted}, "ponderada")]),
    ("mlp", [{}, {"MLP": MLPByHand}], [({"MLP": bug.MLPNoReLU}, "ReLU")]),
    ("mlp_batch1", [{}, {"MLP": MLPByHand}], [({"MLP": bug.MLPNoReLU}, "ReLU")]),
    ("mlp_eval_dropout", [{}, {"MLP": MLPByHand}], [({"MLP": bug.MLPFunctionalDropout}, "F.dropout")]),
    ("mlp_train_dropout", [{}, {"MLP": MLPByHand}], [({"MLP": MLPNoDropout}, "nn.Dropout")]),
    ("train_epoch", [{}, {"train_epoch": train_epoch_zero_after}, {"MLP": MLPByHand}],
     [({"train_epoch": bug.train_epoch_no_zero_grad}, "zero_grad"),
      ({"train_epoch": bug.train_epoch_step_before_backward}, "después de loss.backward()"),
      ({"train_epoch": bug.train_epoch_sum}, "*media*"), ({"train_epoch": bug.train_epoch_unweighted}, "pondera")]),
    ("train_epoch_mode", [{}, {"train_epoch": train_epoch_zero_after}],
     [({"train_epoch": bug.train_epoch_no_train_mode}, "model.train()")]),
    ("evaluate", [{}, {"evaluate": evaluate_inference_mode}, {"MLP": MLPByHand}],
     [({"evaluate": bug.evaluate_no_eval}, "model.eval()"), ({"evaluate": evaluate_percent}, "porcentaje"),
      ({"evaluate": evaluate_batch_mean}, "lotes"), ({"MLP": bug.MLPFunctionalDropout}, "exactitud")]),
    ("early_stopping", [{}, {"EarlyStopping": EarlyStoppingHistory}],
     [({"EarlyStopping": bug.EarlyStoppingNonStrict}, "estricto"), ({"EarlyStopping": bug.EarlyStoppingOffByOne}, "tarde"),
      ({"EarlyStopping": bug.EarlyStoppingNoReset}, "vuelve a 0")]),
    ("early_stopping_patience", [{}, {"EarlyStopping": EarlyStoppingHistory}],
     [({"EarlyStopping": bug.EarlyStoppingNonStrict}, "estricto"), ({"EarlyStopping": bug.EarlyStoppingOffByOne}, "tarde"),
      ({"EarlyStopping": bug.EarlyStoppingNoReset}, "vuelve a 0")]),
]


@pytest.fixture(scope="module")
def ffnet(course):
    return course.spec("02_ffnet")


def judged(check, implementation, seed):
    """(mismatches, everything the student would read) for one implementation on one seed's probe."""
    case = check.build(check_rng(seed, check))
    message = probe_message(case.probe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bugs' warnings (a non-leaf's .grad) are part of the bug
        torch.manual_seed(seed)
        reply = runner.run_probe({**REFERENCE, **implementation}, message["steps"], message["outputs"])
    if not reply["ok"]:
        return ["error"], str(reply.get("error"))
    mismatches, hints = judge_value(wire.decode(wire.encode(reply["value"])), case, "es")
    from autograder.compare import format_mismatches

    return mismatches, format_mismatches(mismatches, "es") + " " + " ".join(hints)


@pytest.mark.parametrize("name, correct, bugs", CASES, ids=[c[0] for c in CASES])
def test_tolerance_accepts_correct_variants_and_rejects_named_bugs(ffnet, name, correct, bugs):
    check = next(c for c in ffnet.checks if c.name == name)
    assert len(correct) >= 2
    for seed in SEEDS:
        for implementation in correct:
            mismatches, text = judged(check, implementation, seed)
            assert mismatches == [], (name, implementation, seed, text)
        for buggy, word in bugs:
            mismatches, text = judged(check, buggy, seed)
            assert mismatches, (name, buggy, seed)
            assert word in text, (name, buggy, text)


def test_target_accuracy_accepts_float32_training_and_rejects_a_forgotten_zero_grad(ffnet):
    check = next(c for c in ffnet.checks if c.name == "target_accuracy")
    for implementation in ({}, {"train_epoch": train_epoch_zero_after, "MLP": MLPByHand}):
        mismatches, text = judged(check, implementation, 0)
        assert mismatches == [], text
    mismatches, text = judged(check, {"train_epoch": bug.train_epoch_no_zero_grad}, 0)
    assert mismatches and "exactitud" in text
