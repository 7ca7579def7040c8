"""The ``01_backprop`` oracle is right, its bugs are bugs, and the solved notebook agrees with it."""

from __future__ import annotations

import ast
import json
import re
import warnings

import numpy as np
import pytest

from autograder.data import make_moons, make_spirals
from conftest import ROOT
from reference_impl import backprop as ref
from reference_impl import backprop_bugs as bugs

NOTEBOOK = ROOT / "solutions" / "01_backprop" / "solution.ipynb"


def num_grad(f, x, h=1e-6):
    """Central differences of the scalar ``f()`` w.r.t. every element of ``x`` (modified in place, restored)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f()
        x[idx] = old - h
        fm = f()
        x[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


def assert_grad(analytic, f, x, rtol=1e-6, atol=1e-8):
    np.testing.assert_allclose(analytic, num_grad(f, x), rtol=rtol, atol=atol)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.5, x)  # keep off the ReLU kink


# ---------------------------------------------------------------------------- q1


@pytest.mark.parametrize("name", ["sigmoid", "relu", "tanh"])
def test_activation_backward_matches_finite_differences(rng, name):
    fwd, bwd = getattr(ref, f"{name}_forward"), getattr(ref, f"{name}_backward")
    x = away_from_zero(rng, (4, 5))
    dout = rng.standard_normal((4, 5))
    dx = bwd(dout, x)
    assert dx.shape == x.shape and dx.dtype == np.float64
    assert_grad(dx, lambda: np.sum(fwd(x) * dout), x)


def test_activation_values():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(ref.sigmoid_forward(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_array_equal(ref.relu_forward(x), [0.0, 0.0, 3.0])
    np.testing.assert_allclose(ref.tanh_forward(x), np.tanh(x))
    np.testing.assert_array_equal(ref.relu_backward(np.ones(3), x), [0.0, 0.0, 1.0])  # ReLU'(0) = 0


def test_sigmoid_is_stable_for_large_inputs():
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning fails the test
        s = ref.sigmoid_forward(x)
        ds = ref.sigmoid_backward(np.ones_like(x), x)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(ds))
    np.testing.assert_allclose(s[0, [0, 2, 4]], [0.0, 0.5, 1.0], atol=1e-300)
    assert ds[0, 2] == 0.25


# ---------------------------------------------------------------------------- q2


def test_linear_forward_and_backward(rng):
    x, W, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    out, cache = ref.linear_forward(x, W, b)
    assert out.shape == (5, 4)
    np.testing.assert_allclose(out, x @ W + b)
    assert isinstance(cache, tuple) and len(cache) == 3 and all(c is o for c, o in zip(cache, (x, W, b), strict=True))
    dout = rng.standard_normal((5, 4))
    dx, dW, db = ref.linear_backward(dout, cache)
    assert (dx.shape, dW.shape, db.shape) == ((5, 3), (3, 4), (4,))

    def f():
        return np.sum(ref.linear_forward(x, W, b)[0] * dout)

    assert_grad(dx, f, x)
    assert_grad(dW, f, W)
    assert_grad(db, f, b)


# ---------------------------------------------------------------------------- q3


def test_softmax_matches_naive_on_small_logits(rng):
    z = rng.standard_normal((6, 4))
    naive = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ref.softmax(z), naive, rtol=1e-13)


def test_softmax_is_stable_at_1000():
    z = np.array([[1000.0, 1000.0, 999.0], [-1000.0, 0.0, 1000.0], [1000.0, 1000.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = ref.softmax(z)
        loss, dlogits = ref.softmax_cross_entropy(z, np.array([2, 0, 1]))
    assert not np.any(np.isnan(p)) and np.all(np.isfinite(dlogits)) and np.isfinite(loss)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(p[2], 1 / 3)
    per_row = [1 + np.log(2 + np.exp(-1)), 2000.0, np.log(3)]  # -log p[i, y_i]; row 1 is 2000, not inf
    np.testing.assert_allclose(loss, np.mean(per_row), rtol=1e-12)


def test_softmax_cross_entropy(rng):
    N, C = 7, 5
    z = rng.standard_normal((N, C)) * 3
    y = rng.integers(0, C, size=N)
    loss, dlogits = ref.softmax_cross_entropy(z, y)
    assert isinstance(loss, float) and dlogits.shape == (N, C)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss, -np.mean(np.log(p[np.arange(N), y])), rtol=1e-13)
    np.testing.assert_allclose(dlogits, (p - np.eye(C)[y]) / N, rtol=1e-12, atol=1e-15)
    assert_grad(dlogits, lambda: ref.softmax_cross_entropy(z, y)[0], z)


# ---------------------------------------------------------------------------- q4


def test_mse_loss(rng):
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss, dpred = ref.mse_loss(pred, target)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, np.mean((pred - target) ** 2))
    assert_grad(dpred, lambda: ref.mse_loss(pred, target)[0], pred)


def test_binary_cross_entropy(rng):
    probs = rng.uniform(0.05, 0.95, size=(4, 3))
    target = rng.integers(0, 2, size=(4, 3)).astype(np.float64)
    loss, dprobs = ref.binary_cross_entropy(probs, target)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, -np.mean(target * np.log(probs) + (1 - target) * np.log(1 - probs)))
    assert_grad(dprobs, lambda: ref.binary_cross_entropy(probs, target)[0], probs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # saturated probabilities: no log(0), no division by zero
        loss, dprobs = ref.binary_cross_entropy(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dprobs))


# ---------------------------------------------------------------------------- q5


def test_init_params():
    p = ref.init_params(400, 300, 3, seed=7)
    assert {k: v.shape for k, v in p.items()} == {"W1": (400, 300), "b1": (300,), "W2": (300, 3), "b2": (3,)}
    assert all(v.dtype == np.float64 for v in p.values())
    np.testing.assert_allclose(p["W1"].std(), np.sqrt(2 / 400), rtol=0.02)
    np.testing.assert_allclose(p["W2"].std(), np.sqrt(2 / 300), rtol=0.1)
    assert not p["b1"].any() and not p["b2"].any()
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(p["W1"], rng.standard_normal((400, 300)) * np.sqrt(2 / 400))
    np.testing.assert_array_equal(p["W2"], rng.standard_normal((300, 3)) * np.sqrt(2 / 300))


def test_mlp_backward_matches_finite_differences(rng):
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, size=6)
    params = ref.init_params(4, 5, 3, seed=3)
    params["b1"] += 0.1 * rng.standard_normal(5)
    logits, cache = ref.mlp_forward(X, params)
    assert logits.shape == (6, 3)
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    np.testing.assert_allclose(logits, h @ params["W2"] + params["b2"])
    grads = ref.mlp_backward(ref.softmax_cross_entropy(logits, y)[1], cache)
    assert {k: v.shape for k, v in grads.items()} == {k: v.shape for k, v in params.items()}
    for k in params:
        assert_grad(grads[k], lambda: ref.softmax_cross_entropy(ref.mlp_forward(X, params)[0], y)[0], params[k])


# ---------------------------------------------------------------------------- q6


def test_numerical_gradient_and_relative_error(rng):
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    c = rng.standard_normal((3, 4))
    g = ref.numerical_gradient(lambda a: float(np.sum(np.sin(a) * c)), x)
    assert g.shape == x.shape
    np.testing.assert_array_equal(x, x0)  # restored
    assert ref.relative_error(g, np.cos(x) * c) < 1e-8
    a, b = np.array([1.0, 0.0, 2.0]), np.array([1.5, 0.0, 2.0])
    assert ref.relative_error(a, b) == pytest.approx(0.2)
    assert ref.relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert isinstance(ref.relative_error(a, b), float)


# ---------------------------------------------------------------------------- q7


def test_sgd_step_is_in_place():
    params = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    held = dict(params)
    grads = {"W": np.full((2, 2), 2.0), "b": np.array([1.0, -1.0])}
    assert ref.sgd_step(params, grads, 0.1) is None
    assert all(params[k] is held[k] for k in params)
    np.testing.assert_allclose(held["W"], 0.8)
    np.testing.assert_allclose(held["b"], [-0.1, 0.1])


@pytest.mark.parametrize("make", [make_spirals, make_moons], ids=["spirals", "moons"])
def test_train_fits_toy_data(make):
    X, y = make(seed=0)
    params, hist = ref.train(X, y)
    assert len(hist) == 300 and all(isinstance(v, float) for v in hist)
    assert hist[-1] < hist[0]
    assert ref.accuracy(params, X, y) >= 0.9


def test_train_minibatch_is_deterministic():
    X, y = make_spirals(seed=1)
    p1, h1 = ref.train(X, y, batch_size=32, epochs=20, seed=5)
    p2, h2 = ref.train(X, y, batch_size=32, epochs=20, seed=5)
    _, h3 = ref.train(X, y, batch_size=32, epochs=20, seed=6)
    assert h1 == h2 and h1 != h3
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)
    assert ref.predict(p1, X).shape == y.shape


# ---------------------------------------------------------------------------- data


def test_toy_data_shapes_and_seeds():
    X, y = make_spirals(n_per_class=50, n_classes=4, seed=3)
    assert X.shape == (200, 2) and X.dtype == np.float64 and y.shape == (200,) and y.dtype == np.int64
    assert sorted(set(y.tolist())) == [0, 1, 2, 3]
    X2, y2 = make_moons(n=101, seed=3)
    assert X2.shape == (101, 2) and X2.dtype == np.float64 and y2.dtype == np.int64
    assert np.bincount(y2).tolist() == [50, 51]
    for make in (make_spirals, make_moons):
        a, b, c = make(seed=0), make(seed=0), make(seed=1)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        assert not np.array_equal(a[0], c[0])


# ---------------------------------------------------------------------------- bugs


def test_every_named_bug_exists():
    for bug, target in bugs.BUGS.items():
        assert callable(getattr(bugs, bug)) and callable(getattr(ref, target))
        assert getattr(bugs, bug).__doc__.startswith("Bug:")


def test_activation_bugs_differ(rng):
    x, dout = rng.standard_normal(10), rng.standard_normal(10)
    assert not np.allclose(bugs.sigmoid_backward_wrong(dout, x), ref.sigmoid_backward(dout, x))
    x[::2] = 0.0
    assert not np.allclose(bugs.relu_backward_ge(dout, x), ref.relu_backward(dout, x))
    np.testing.assert_array_equal(bugs.relu_backward_ge(dout, x)[1::2], ref.relu_backward(dout, x)[1::2])


def test_linear_bugs_differ(rng):
    x, W, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    dout = rng.standard_normal((5, 4))
    cache = (x, W, b)
    dx, dW, db = ref.linear_backward(dout, cache)
    _, _, db_bug = bugs.linear_backward_no_sum_db(dout, cache)
    np.testing.assert_allclose(db_bug * 5, db)
    _, dW_bug, _ = bugs.linear_backward_transposed_dW(dout, cache)
    assert dW_bug.shape == (4, 3) != dW.shape
    np.testing.assert_allclose(dW_bug.T, dW)


def test_softmax_bugs_differ(rng):
    z = rng.standard_normal((4, 3))
    np.testing.assert_allclose(bugs.softmax_unstable(z), ref.softmax(z))  # same on small logits
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(bugs.softmax_unstable(z + 1000)).any()
    y = np.array([0, 2, 1, 1])
    loss, d = ref.softmax_cross_entropy(z, y)
    loss_bug, d_bug = bugs.softmax_cross_entropy_no_mean(z, y)
    np.testing.assert_allclose([loss_bug, *d_bug.ravel()], [4 * loss, *(4 * d).ravel()])


def test_loss_bugs_differ(rng):
    pred, target = rng.uniform(0.1, 0.9, (3, 4)), rng.integers(0, 2, (3, 4)).astype(np.float64)
    for good, bad in [(ref.mse_loss, bugs.mse_no_mean), (ref.binary_cross_entropy, bugs.bce_no_mean)]:
        (lg, dg), (lb, db) = good(pred, target), bad(pred, target)
        np.testing.assert_allclose(lb, 12 * lg)
        np.testing.assert_allclose(db, 12 * dg)


def test_mlp_bugs_differ(rng):
    X = rng.standard_normal((8, 4))
    params = ref.init_params(4, 6, 3, seed=0)
    logits, cache = ref.mlp_forward(X, params)
    assert not np.allclose(bugs.mlp_forward_no_relu(X, params)[0], logits)
    dlogits = rng.standard_normal((8, 3))
    good, bad = ref.mlp_backward(dlogits, cache), bugs.mlp_backward_no_relu_mask(dlogits, cache)
    np.testing.assert_allclose(bad["W2"], good["W2"])
    assert not np.allclose(bad["W1"], good["W1"]) and not np.allclose(bad["b1"], good["b1"])


def test_numerical_gradient_bugs_differ(rng):
    x = rng.uniform(1.0, 2.0, size=6)
    exact = 3 * x**2

    def f(a):
        return float(np.sum(a**3))

    central = ref.relative_error(ref.numerical_gradient(f, x), exact)
    forward = ref.relative_error(bugs.numerical_gradient_forward_diff(f, x), exact)
    assert central < 1e-8 < 1e-6 < forward
    x0 = x.copy()
    bugs.numerical_gradient_no_restore(f, x)
    assert not np.array_equal(x, x0)


def test_sgd_bugs_differ():
    params = {"W": np.ones(3)}
    held = params["W"]
    bugs.sgd_step_not_in_place(params, {"W": np.ones(3)}, 0.5)
    np.testing.assert_array_equal(held, 1.0)  # the caller's array never moved
    np.testing.assert_array_equal(params["W"], 0.5)
    bugs.sgd_step_plus(params, {"W": np.ones(3)}, 0.5)
    np.testing.assert_array_equal(params["W"], 1.0)


# ---------------------------------------------------------------------------- the solved notebook

PINNED = [
    "sigmoid_forward", "sigmoid_backward", "relu_forward", "relu_backward", "tanh_forward", "tanh_backward",
    "linear_forward", "linear_backward", "softmax", "softmax_cross_entropy", "mse_loss", "binary_cross_entropy",
    "init_params", "mlp_forward", "mlp_backward", "numerical_gradient", "relative_error", "sgd_step", "train",
]  # fmt: skip

_CHECK_LINE = re.compile(r"^\s*(check(_all)?\(.*\)|from autograder import .*|[%!].*)\s*$")  # and IPython magics
_MAGIC_LINE = re.compile(r"^\s*[%!]")


@pytest.fixture(scope="module")
def notebook():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def nb_ns(notebook):
    """Run every code cell (self-check lines removed, a dummy ``check`` injected) in a fresh namespace."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = []
    ns = {"__name__": "__notebook__", "check": calls.append}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-interactive.*", category=UserWarning)  # plt.show() on Agg
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            kept = "\n".join(line for line in src.splitlines() if not _CHECK_LINE.match(line))
            exec(compile(kept, f"<cell {cell.get('id')}>", "exec"), ns)
    plt.close("all")
    return ns


def test_notebook_structure(notebook):
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    first = next(src for src in ("".join(c["source"]) for c in code) if "ASSIGNMENT_ID" in src)
    assert "import numpy as np" in first and 'ASSIGNMENT_ID = "01_backprop"' in first
    assert "from autograder import check" in first
    text = "\n".join("".join(c["source"]) for c in notebook["cells"])
    code_text = "\n".join("".join(c["source"]) for c in code)
    assert "reference_impl" not in code_text and "torch" not in code_text
    for q in range(1, 8):
        assert f'check("q{q}")' in [("".join(c["source"])).strip() for c in code]
        assert re.search(rf"^## Pregunta {q} · .+ \(\d+ puntos\)$", text, re.M)
    defined = set()
    for cell in code:  # every pinned function: def line, docstring, then the body between the markers
        lines = [line for line in "".join(cell["source"]).splitlines() if not _MAGIC_LINE.match(line)]
        for fn in ast.parse("\n".join(lines)).body:
            if isinstance(fn, ast.FunctionDef) and fn.name in PINNED:
                defined.add(fn.name)
                assert isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant), fn.name
                assert lines[fn.body[0].end_lineno] == "    ### BEGIN SOLUTION", fn.name
                assert lines[fn.end_lineno] == "    ### END SOLUTION", fn.name
    assert defined == set(PINNED)
    tagged = [c for c in code if "skip-grading" in c.get("metadata", {}).get("tags", [])]
    tagged_src = "\n".join("".join(c["source"]) for c in tagged)
    assert "make_spirals(" in tagged_src and "train(X_train" in tagged_src and "plt." in tagged_src
    assert all("### BEGIN SOLUTION" not in "".join(c["source"]) for c in tagged)
    assert "Entrega" in "".join(notebook["cells"][-1]["source"])


def test_notebook_runs_and_trains(nb_ns):
    assert all(callable(nb_ns[name]) for name in PINNED)
    assert nb_ns["train_acc"] >= 0.9


def test_notebook_agrees_with_reference(nb_ns, rng):
    nb = type("NB", (), {k: staticmethod(nb_ns[k]) for k in PINNED})

    def same(a, b):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)

    x, dout = rng.standard_normal((5, 4)) * 3, rng.standard_normal((5, 4))
    x[0, 0] = 0.0
    for act in ("sigmoid", "relu", "tanh"):
        same(getattr(nb, f"{act}_forward")(x), getattr(ref, f"{act}_forward")(x))
        same(getattr(nb, f"{act}_backward")(dout, x), getattr(ref, f"{act}_backward")(dout, x))
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    out, cache = nb.linear_forward(x, W, b)
    same(out, ref.linear_forward(x, W, b)[0])
    for got, want in zip(nb.linear_backward(out, cache), ref.linear_backward(out, (x, W, b)), strict=True):
        same(got, want)
    y = rng.integers(0, 3, size=5)
    same(nb.softmax(out * 100), ref.softmax(out * 100))
    for got, want in zip(nb.softmax_cross_entropy(out, y), ref.softmax_cross_entropy(out, y), strict=True):
        same(got, want)
    p, t = rng.uniform(0.01, 0.99, (5, 4)), rng.integers(0, 2, (5, 4)).astype(np.float64)
    for fn in ("mse_loss", "binary_cross_entropy"):
        for got, want in zip(getattr(nb, fn)(p, t), getattr(ref, fn)(p, t), strict=True):
            same(got, want)
    params = nb.init_params(4, 6, 3, seed=2)
    want_params = ref.init_params(4, 6, 3, seed=2)
    for k in want_params:
        same(params[k], want_params[k])
    logits, nb_cache = nb.mlp_forward(x, params)
    same(logits, ref.mlp_forward(x, params)[0])
    dlogits = rng.standard_normal(logits.shape)
    nb_grads, ref_grads = nb.mlp_backward(dlogits, nb_cache), ref.mlp_backward(dlogits, ref.mlp_forward(x, params)[1])
    for k in ref_grads:
        same(nb_grads[k], ref_grads[k])
    c = rng.standard_normal((5, 4))
    f = lambda a: float(np.sum(np.tanh(a) * c))  # noqa: E731
    same(nb.numerical_gradient(f, x.copy()), ref.numerical_gradient(f, x.copy()))
    assert nb.relative_error(p, t) == ref.relative_error(p, t)
    held = {k: v.copy() for k, v in params.items()}
    assert nb.sgd_step(params, nb_grads, 0.1) is None
    ref.sgd_step(held, ref_grads, 0.1)
    for k in held:
        same(params[k], held[k])
    X, yy = make_moons(n=60, seed=4)
    for kw in ({}, {"batch_size": 16}):
        (pn, hn), (pr, hr) = nb.train(X, yy, epochs=15, **kw), ref.train(X, yy, epochs=15, **kw)
        same(hn, hr)
        for k in pr:
            same(pn[k], pr[k])
