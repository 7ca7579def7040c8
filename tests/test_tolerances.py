"""Every tolerance accepts several correct implementations and rejects the named bugs.

Each case runs the hidden check's own probe (fresh inputs from several
seeds) against implementations written here, in this process, and judges the
answer exactly as the grader does.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.execute.runtime import runner, wire
from autograder.grade.cases import check_rng, probe_message
from autograder.grade.submission import judge_value
from reference_impl import backprop as ref
from reference_impl import backprop_bugs as bug

SEEDS = [0, 1, 2, 3]


def f32(fn):
    """The same implementation computed in float32 (e.g. after a student's astype)."""
    def wrapped(*args):
        cast = [a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a for a in args]
        out = fn(*cast)
        return tuple(o.astype(np.float64) if isinstance(o, np.ndarray) else o for o in out) if isinstance(out, tuple) \
            else out
    return wrapped


def sigmoid_backward_naive(dout, x):
    return dout * np.exp(-x) / (1 + np.exp(-x)) ** 2


def linear_backward_einsum(dout, cache):
    x, W, _ = cache
    return np.einsum("nm,dm->nd", dout, W), np.einsum("nd,nm->dm", x, dout), np.einsum("nm->m", dout)


def softmax_naive(logits):
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def softmax_ce_via_probs(logits, y):
    p = ref.softmax(logits)
    n = len(y)
    loss = -np.mean(np.log(p[np.arange(n), y]))
    d = p.copy()
    d[np.arange(n), y] -= 1
    return loss, d / n


def mse_loop(pred, target):
    diff = (pred - target).ravel()
    loss = sum(v * v for v in diff) / diff.size
    return loss, 2 * (pred - target) / pred.size


def numerical_gradient_flat(f, x, h=1e-5):
    grad = np.zeros_like(x)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = f(x)
        flat[i] = old - h
        minus = f(x)
        flat[i] = old
        g[i] = (plus - minus) / (2 * h)
    return grad


def mlp_backward_einsum(dlogits, cache):
    grads = ref.mlp_backward(dlogits, cache)
    return {k: np.asarray(v, dtype=np.float64) + 0.0 for k, v in grads.items()}


def relative_error_loop(a, b):
    return max(abs(x - y) / max(1e-8, abs(x) + abs(y)) for x, y in zip(a.ravel(), b.ravel(), strict=True))


CASES = [
    # check, [correct variants], [(named bug, word its hint must contain)]
    ("sigmoid_backward", [ref.sigmoid_backward, sigmoid_backward_naive, f32(ref.sigmoid_backward)],
     [(bug.sigmoid_backward_wrong, "s(x)")]),
    ("relu_backward", [ref.relu_backward, lambda dout, x: np.where(x > 0, dout, 0.0)], [(bug.relu_backward_ge, "x > 0")]),
    ("linear_backward", [ref.linear_backward, linear_backward_einsum, f32(ref.linear_backward)],
     [(bug.linear_backward_no_sum_db, "sumar"), (bug.linear_backward_transposed_dW, "W.T")]),
    ("softmax", [ref.softmax, softmax_naive, f32(ref.softmax)], []),
    ("softmax_large_logits", [ref.softmax, f32(ref.softmax)], [(softmax_naive, "máximo")]),
    ("softmax_cross_entropy", [ref.softmax_cross_entropy, softmax_ce_via_probs, f32(ref.softmax_cross_entropy)],
     [(bug.softmax_cross_entropy_no_mean, "dividir por N")]),
    ("mse_loss", [ref.mse_loss, mse_loop], [(bug.mse_no_mean, "media")]),
    ("binary_cross_entropy", [ref.binary_cross_entropy, f32(ref.binary_cross_entropy)], [(bug.bce_no_mean, "media")]),
    ("mlp_backward", [ref.mlp_backward, mlp_backward_einsum], [(bug.mlp_backward_no_relu_mask, "ReLU")]),
    ("numerical_gradient", [ref.numerical_gradient, numerical_gradient_flat],
     [(bug.numerical_gradient_forward_diff, "centrales")]),
    ("numerical_gradient_matrix", [ref.numerical_gradient, numerical_gradient_flat],
     [(bug.numerical_gradient_no_restore, "Restaura")]),
    ("relative_error", [ref.relative_error, relative_error_loop], []),
    ("sgd_step", [ref.sgd_step, bug.sgd_step_not_in_place], [(bug.sgd_step_plus, "signo")]),
]


def answer(check, implementation, seed):
    case = check.build(check_rng(seed, check))
    message = probe_message(case.probe)
    namespace = {"mlp_forward": ref.mlp_forward, message["steps"][-1]["function"]: implementation}
    with np.errstate(all="ignore"):
        reply = runner.run_probe(namespace, message["steps"], message["outputs"])
    assert reply["ok"], reply
    return case, wire.decode(wire.encode(reply["value"]))


@pytest.mark.parametrize("name, correct, bugs", CASES, ids=[c[0] for c in CASES])
def test_tolerance_accepts_correct_variants_and_rejects_named_bugs(backprop, name, correct, bugs):
    check = next(c for c in backprop.checks if c.name == name)
    assert len(correct) >= 2
    for seed in SEEDS:
        for implementation in correct:
            case, value = answer(check, implementation, seed)
            mismatches, _ = judge_value(value, case, "es")
            assert mismatches == [], (name, implementation, seed, mismatches)
        for buggy, word in bugs:
            case, value = answer(check, buggy, seed)
            mismatches, hints = judge_value(value, case, "es")
            assert mismatches, (name, buggy.__name__, seed)
            assert any(word in h for h in hints), (name, buggy.__name__, hints)
