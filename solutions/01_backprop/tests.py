"""Tests of 01_backprop (instructor-only): fresh inputs, the reference's answers, known bugs.

Each ``build`` runs in the trusted grader: it draws inputs from ``rng`` (new
for every batch), computes the expected answer with ``reference_impl``, and
lists the bug patterns whose answers it would recognise. Checks marked
``public`` are also released, built once with a fixed seed, for the
students' self-check.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import BugPattern, Call, Case, Check, FunctionArg, Probe, Ref, Tolerance
from autograder.compare import Mismatch
from autograder.data import make_spirals
from autograder.execute.runtime import functions as probe_functions
from reference_impl import backprop as ref
from reference_impl import backprop_bugs as bug

EXACT = Tolerance(rtol=1e-5, atol=1e-6)  # float32 arithmetic passes; every named bug is far outside (tests/test_tolerances.py)
NUMERIC = Tolerance(rtol=1e-6, atol=1e-7)  # central differences with h=1e-5: error ~1e-10


def _names(*names: str) -> dict[str, str]:
    return {f"[{i}]": n for i, n in enumerate(names)}


def _msg(es: str, en: str) -> dict[str, str]:
    return {"es": es, "en": en}


def _quietly(fn, *args):
    """A buggy reference's answer, without its overflow warnings (they are the point)."""
    with np.errstate(all="ignore"):
        return fn(*args)


def _batch(rng: np.random.Generator, low: int = 3, high: int = 9) -> int:
    return int(rng.integers(low, high))


# -- q1: activations ----------------------------------------------------------------

def _activation_input(rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(0, 3, size=(_batch(rng), _batch(rng, 2, 6)))
    x.flat[:: max(1, x.size // 3)] = 0.0  # the kink of ReLU
    return x


def _forward(name: str, reference) -> Check:
    def build(rng: np.random.Generator) -> Case:
        x = _activation_input(rng)
        x[0, 0], x[-1, -1] = 800.0, -800.0  # a stable implementation neither overflows nor returns nan
        return Case(Probe.call(name, x), reference(x), EXACT,
                    patterns=[BugPattern("nonfinite", _msg(
                        f"`{name}` devuelve NaN/inf con entradas grandes (±800): evita exp de números grandes.",
                        f"`{name}` returns NaN/inf for large inputs (±800): avoid exp of large numbers."))])
    return Check("q1", name, _msg(f"{name} en una matriz aleatoria con valores grandes y ceros",
                                  f"{name} on a random matrix with large values and zeros"), build, public=name == "relu_forward")


def _backward(name: str, reference, bugs: list[tuple]) -> Check:
    def build(rng: np.random.Generator) -> Case:
        x, dout = _activation_input(rng), None
        dout = rng.normal(size=x.shape)
        patterns = [BugPattern("matches", msg, data=buggy(dout, x)) for buggy, msg in bugs]
        return Case(Probe.call(name, dout, x), reference(dout, x), EXACT, patterns=patterns)
    return Check("q1", name, _msg(f"{name}: gradiente respecto a x (regla de la cadena con dout)",
                                  f"{name}: gradient w.r.t. x (chain rule with dout)"), build, public=name == "sigmoid_backward")


# -- q2: linear layer ---------------------------------------------------------------

def _linear_inputs(rng: np.random.Generator, n: int | None = None):
    n = n or _batch(rng)
    d, m = _batch(rng, 2, 7), _batch(rng, 2, 7)
    while m == d:
        m = _batch(rng, 2, 7)  # non-square W, so a transposed dW shows as a shape error
    return rng.normal(size=(n, d)), rng.normal(size=(d, m)), rng.normal(size=m), rng.normal(size=(n, m))


def build_linear_forward(rng: np.random.Generator) -> Case:
    x, W, b, _ = _linear_inputs(rng)
    probe = Probe([Call("fwd", "linear_forward", (x, W, b))], outputs=Ref("fwd", 0))
    return Case(probe, ref.linear_forward(x, W, b)[0], EXACT,
                patterns=[BugPattern("matches", _msg("Falta sumar el sesgo: la capa calcula x @ W + b (b se suma a cada fila).",
                                                      "The bias is missing: the layer computes x @ W + b (b added to every row)."),
                                     data=x @ W)])


def _build_linear_backward(n: int | None):
    def build(rng: np.random.Generator) -> Case:
        x, W, b, dout = _linear_inputs(rng, n)
        cache = (x, W, b)
        patterns = [
            BugPattern("matches", _msg("db debe *sumar* dout sobre el lote (axis=0), no promediarlo.",
                                       "db must *sum* dout over the batch (axis=0), not average it."),
                       data=bug.linear_backward_no_sum_db(dout, cache)[2], output="[2]"),
            BugPattern("transposed", _msg("dW tiene la forma de W.T: dW = x.T @ dout, de forma (entradas, salidas).",
                                          "dW has the shape of W.T: dW = x.T @ dout, shape (in, out)."), output="[1]"),
            BugPattern("matches", _msg("db se suma sobre el lote, el eje 0 (axis=0): tiene la forma de b, (M,).",
                                       "db is summed over the batch, axis 0 (axis=0): it has b's shape, (M,)."),
                       data=dout.sum(axis=1), output="[2]"),
        ]
        return Case(Probe.call("linear_backward", dout, cache), ref.linear_backward(dout, cache), EXACT,
                    output_names=_names("dx", "dW", "db"), patterns=patterns)
    return build


# -- q3: softmax and cross-entropy --------------------------------------------------

UNSTABLE = _msg("Con logits grandes (~1000) tu softmax da NaN/inf: resta el máximo de cada fila antes de exp.",
                "With large logits (~1000) your softmax gives NaN/inf: subtract each row's max before exp.")


def _logits(rng: np.random.Generator, scale: float):
    n, c = _batch(rng), _batch(rng, 3, 7)
    logits, y = rng.normal(0, scale, size=(n, c)), rng.integers(0, c, size=n)
    if scale > 100:
        logits[0, 0] = 1000.0  # exp overflows here for sure: only a stable softmax survives
        y[0] = int(np.argmin(logits[0]))  # a label far from its row's max: the loss and its gradient are not ~0
    return logits, y


WRONG_AXIS = _msg("softmax se normaliza por filas: el máximo y la suma van sobre axis=1 (una distribución por ejemplo), "
                  "no sobre axis=0.",
                  "softmax normalises each row: the max and the sum run over axis=1 (one distribution per example), "
                  "not over axis=0.")


def _softmax_axes(logits: np.ndarray, max_axis: int, sum_axis: int) -> np.ndarray:
    """A softmax whose max and sum may run over the wrong axis (the common slips)."""
    with np.errstate(all="ignore"):
        e = np.exp(logits - logits.max(axis=max_axis, keepdims=True))
        return e / e.sum(axis=sum_axis, keepdims=True)


def _build_softmax(scale: float):
    def build(rng: np.random.Generator) -> Case:
        logits, _ = _logits(rng, scale)
        patterns = [BugPattern("nonfinite", UNSTABLE)]
        patterns += [BugPattern("matches", WRONG_AXIS, data=_softmax_axes(logits, m, s)) for m, s in ((0, 0), (1, 0), (0, 1))]
        return Case(Probe.call("softmax", logits), ref.softmax(logits), EXACT, patterns=patterns)
    return build


def _plus_onehot(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = ref.softmax(logits)
    d[np.arange(len(y)), y] += 1.0
    return d / len(y)


def _softmax_ce_axes(logits: np.ndarray, y: np.ndarray, max_axis: int, sum_axis: int):
    """softmax_cross_entropy with its max or its log-sum-exp over the wrong axis."""
    n = len(y)
    with np.errstate(all="ignore"):
        shifted = logits - logits.max(axis=max_axis, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=sum_axis, keepdims=True))
        dlogits = np.exp(log_probs)
        dlogits[np.arange(n), y] -= 1.0
        return float(-log_probs[np.arange(n), y].mean()), dlogits / n


def _build_softmax_ce(scale: float):
    def build(rng: np.random.Generator) -> Case:
        logits, y = _logits(rng, scale)
        n = len(y)
        patterns = [
            BugPattern("nonfinite", UNSTABLE),
            BugPattern("matches", _msg(f"La pérdida y dlogits deben promediarse sobre el lote: falta dividir por N (= {n}).",
                                       f"The loss and dlogits must be averaged over the batch: divide by N (= {n})."),
                       data=_quietly(bug.softmax_cross_entropy_no_mean, logits, y)),
            BugPattern("scaled", _msg(f"dlogits es {n} veces el esperado: falta dividir por N.",
                                      f"dlogits is {n} times the expected one: divide by N."), data=float(n), output="[1]"),
            BugPattern("matches", _msg("dlogits = (probs − onehot) / N: falta restar 1 en la columna de la clase correcta "
                                       "de cada fila (dlogits[np.arange(N), y] -= 1).",
                                       "dlogits = (probs − onehot) / N: subtract 1 in each row's column of the right class "
                                       "(dlogits[np.arange(N), y] -= 1)."),
                       data=ref.softmax(logits) / n, output="[1]"),
            BugPattern("matches", _msg("dlogits = (probs − onehot) / N: el one-hot se *resta* (signo cambiado).",
                                       "dlogits = (probs − onehot) / N: the one-hot is *subtracted* (wrong sign)."),
                       data=_plus_onehot(logits, y), output="[1]"),
            *[BugPattern("matches", WRONG_AXIS, data=_softmax_ce_axes(logits, y, m, s)) for m, s in ((0, 0), (1, 0), (0, 1))],
        ]
        return Case(Probe.call("softmax_cross_entropy", logits, y), ref.softmax_cross_entropy(logits, y), EXACT,
                    output_names=_names("loss", "dlogits"), patterns=patterns)
    return build


# -- q4: MSE and BCE -----------------------------------------------------------------

def build_mse(rng: np.random.Generator) -> Case:
    shape = (_batch(rng), _batch(rng, 1, 4))
    pred, target = rng.normal(size=shape), rng.normal(size=shape)
    size = pred.size
    return Case(Probe.call("mse_loss", pred, target), ref.mse_loss(pred, target), EXACT,
                output_names=_names("loss", "dpred"),
                patterns=[BugPattern("matches", _msg(f"La MSE es la *media* sobre todos los elementos: divide por pred.size (= {size}).",
                                                     f"MSE is the *mean* over all elements: divide by pred.size (= {size})."),
                                     data=bug.mse_no_mean(pred, target))])


def build_bce(rng: np.random.Generator) -> Case:
    shape = (_batch(rng), _batch(rng, 1, 4))
    probs, target = rng.uniform(0.02, 0.98, size=shape), (rng.random(shape) < 0.5).astype(float)
    return Case(Probe.call("binary_cross_entropy", probs, target), ref.binary_cross_entropy(probs, target), EXACT,
                output_names=_names("loss", "dprobs"),
                patterns=[BugPattern("matches", _msg("La BCE es la *media* sobre todos los elementos.",
                                                     "BCE is the *mean* over all elements."),
                                     data=bug.bce_no_mean(probs, target)),
                          BugPattern("matches", _msg("(p − t) / n es el gradiente respecto al *logit*; aquí la entrada son "
                                                     "probabilidades: la derivada es (p − t) / (p (1 − p)) / n.",
                                                     "(p − t) / n is the gradient w.r.t. the *logit*; here the input is "
                                                     "probabilities: the derivative is (p − t) / (p (1 − p)) / n."),
                                     data=(probs - target) / probs.size, output="[1]")])


# -- q5: the 2-layer MLP -------------------------------------------------------------

def _mlp_inputs(rng: np.random.Generator, n: int | None = None):
    n, d, h, c = n or _batch(rng, 4, 12), _batch(rng, 2, 6), _batch(rng, 4, 10), _batch(rng, 2, 5)
    params = {"W1": rng.normal(size=(d, h)), "b1": rng.normal(size=h),
              "W2": rng.normal(size=(h, c)), "b2": rng.normal(size=c)}
    X = rng.normal(size=(n, d))
    # Half the hidden units inactive for every example: a forgotten ReLU mask always shows. The other half active
    # for every example: no gradient is all zeros (where a transposed one would pass unnoticed).
    pre = X @ params["W1"] + params["b1"]  # (N, H)
    half = h // 2
    params["b1"][:half] -= np.abs(pre[:, :half]).max(axis=0) + 1.0
    params["b1"][half:] += np.abs(pre[:, half:]).max(axis=0) + 1.0
    return X, params, rng.normal(size=(n, c))


def build_mlp_forward(rng: np.random.Generator) -> Case:
    X, params, _ = _mlp_inputs(rng)
    probe = Probe([Call("fwd", "mlp_forward", (X, params))], outputs=Ref("fwd", 0))
    return Case(probe, ref.mlp_forward(X, params)[0], EXACT,
                patterns=[BugPattern("matches", _msg("Falta la ReLU entre las dos capas lineales.",
                                                     "The ReLU between the two linear layers is missing."),
                                     data=bug.mlp_forward_no_relu(X, params)[0])])


def _build_mlp_backward(n: int | None):
    def build(rng: np.random.Generator) -> Case:
        X, params, dlogits = _mlp_inputs(rng, n)
        probe = Probe([Call("fwd", "mlp_forward", (X, params)),
                       Call("bwd", "mlp_backward", (dlogits, Ref("fwd", 1)))], outputs=Ref("bwd"))
        _, cache = ref.mlp_forward(X, params)
        return Case(probe, ref.mlp_backward(dlogits, cache), EXACT,
                    patterns=[BugPattern("matches", _msg("El gradiente no pasa por la máscara de la ReLU (dh * (h > 0)).",
                                                         "The gradient skips the ReLU mask (dh * (h > 0))."),
                                         data=bug.mlp_backward_no_relu_mask(dlogits, cache))])
    return build


# -- q6: numerical gradient ----------------------------------------------------------

def _build_numerical(function: str, shape_2d: bool, h: float | None):
    def build(rng: np.random.Generator) -> Case:
        shape = (_batch(rng, 2, 5), _batch(rng, 2, 5)) if shape_2d else (_batch(rng, 4, 12),)
        x = rng.normal(size=shape)
        params = {"c": rng.normal(size=shape)} if function == "weighted_sin" else {"a": rng.uniform(0.5, 3, size=shape)}
        _, grad = probe_functions.value_and_grad(function, params, x)
        f = probe_functions.build(function, params)
        kwargs = {} if h is None else {"h": h}
        step = h or 1e-5
        one_sided = bug.numerical_gradient_forward_diff(f, x.copy(), step)
        drifted = x.copy()
        bug.numerical_gradient_no_restore(f, drifted, step)
        # x must come back as it was: the function may change it while it works, then restore it
        probe = Probe([Call("out", "numerical_gradient", (FunctionArg(function, params), x), kwargs)],
                      outputs=(Ref("out"), Ref("out", arg=1)))
        return Case(probe, (grad, x.copy()), NUMERIC, output_names=_names("grad", "x"),
                    patterns=[BugPattern("matches", _msg("Parece una diferencia hacia adelante (f(x+h)-f(x))/h: usa diferencias centrales (f(x+h)-f(x-h))/(2h).",
                                                         "Looks like a forward difference (f(x+h)-f(x))/h: use central differences (f(x+h)-f(x-h))/(2h)."),
                                         data=one_sided, output="[0]"),
                              BugPattern("matches", _msg("Restaura x[i] después de cada evaluación: x debe quedar como estaba.",
                                                         "Restore x[i] after each evaluation: x must be left as it was."),
                                         data=drifted, output="[1]"),
                              BugPattern("matches", _msg("Tu gradiente es 0: f se evalúa dos veces en el mismo punto. En "
                                                         "diferencias centrales, pon x[i] = old + h antes de f(x+h) y "
                                                         "x[i] = old - h antes de f(x-h).",
                                                         "Your gradient is 0: f is evaluated twice at the same point. With "
                                                         "central differences, set x[i] = old + h before f(x+h) and "
                                                         "x[i] = old - h before f(x-h)."),
                                         data=np.zeros_like(x), output="[0]")])
    return build


def build_relative_error(rng: np.random.Generator) -> Case:
    shape = (_batch(rng), _batch(rng, 2, 5))
    a = rng.normal(size=shape)
    b = a + rng.normal(scale=1e-3, size=shape)
    a[0, 0] = b[0, 0] = 0.0  # 0/0 must not give nan: max(1e-8, |a|+|b|)
    return Case(Probe.call("relative_error", a, b), ref.relative_error(a, b), EXACT,
                patterns=[BugPattern("nonfinite", _msg("Con a = b = 0 el denominador es 0: usa np.maximum(1e-8, |a| + |b|).",
                                                       "With a = b = 0 the denominator is 0: use np.maximum(1e-8, |a| + |b|)."))])


# -- q7: SGD and training ------------------------------------------------------------

def build_sgd_step(rng: np.random.Generator) -> Case:
    _, params, _ = _mlp_inputs(rng)
    grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
    lr = float(rng.uniform(0.01, 0.5))
    expected = {k: v - lr * grads[k] for k, v in params.items()}
    probe = Probe([Call("step", "sgd_step", (params, grads, lr))], outputs=Ref("step", arg=0))
    return Case(probe, expected, EXACT, patterns=[
        BugPattern("unchanged", _msg("params no cambió: sgd_step debe actualizar params en el sitio (params[k] -= lr * grads[k]).",
                                     "params did not change: sgd_step must update params in place (params[k] -= lr * grads[k])."),
                   data=params),
        BugPattern("matches", _msg("El signo está al revés: SGD *resta* lr * grad (descenso, no ascenso).",
                                   "Wrong sign: SGD *subtracts* lr * grad (descent, not ascent)."),
                   data={k: v + lr * grads[k] for k, v in params.items()})])


TRAIN_ACCURACY = 0.9


def _judge_training(value, case: Case) -> list[Mismatch]:
    X, y, epochs = case.context["X"], case.context["y"], case.context["epochs"]

    def fail(es: str, en: str, hint: dict[str, str] | None = None) -> list[Mismatch]:
        return [Mismatch(path="", kind="custom", message=_msg(es, en), hints=[hint] if hint else [])]

    if not (isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], dict)):
        return fail("train debe devolver (params, loss_history).", "train must return (params, loss_history).")
    params, history = value
    shapes = {"W1": (2, 32), "b1": (32,), "W2": (32, int(y.max()) + 1), "b2": (int(y.max()) + 1,)}
    for key, shape in shapes.items():
        got = params.get(key)
        if not isinstance(got, np.ndarray) or got.shape != shape or not np.all(np.isfinite(got)):
            return fail(f"params['{key}'] debe ser un array finito de forma {shape}.",
                        f"params['{key}'] must be a finite array of shape {shape}.")
    hist = np.asarray(history, dtype=float) if isinstance(history, (list, tuple, np.ndarray)) else np.array([])
    if hist.ndim != 1 or len(hist) != epochs or not np.all(np.isfinite(hist)):
        one = abs(hist.size - epochs) == 1
        return fail(f"loss_history debe tener un valor finito por época ({epochs}); tiene {hist.size}.",
                    f"loss_history must hold one finite value per epoch ({epochs}); it has {hist.size}.",
                    _msg("¿Un range que se queda corto o se pasa en uno?",
                         "A range that stops one short or goes one too far?") if one else None)
    if not hist[-1] < hist[0]:
        return fail("La pérdida no bajó durante el entrenamiento.", "The loss did not go down during training.",
                    _msg("Revisa el signo del paso (SGD *resta* lr * grad), que se llame a sgd_step en cada lote, y lr.",
                         "Check the step's sign (SGD *subtracts* lr * grad), that sgd_step is called on every batch, "
                         "and lr."))
    acc = ref.accuracy({k: params[k] for k in shapes}, X, y)
    if acc < TRAIN_ACCURACY:
        return fail(f"La exactitud de entrenamiento es {acc:.1%}; se pide al menos {TRAIN_ACCURACY:.0%} con los valores por defecto.",
                    f"Training accuracy is {acc:.1%}; at least {TRAIN_ACCURACY:.0%} is required with the defaults.")
    # the last epoch's loss (full batch: before the last step) is the loss of the final parameters, give or take one step
    final = ref.softmax_cross_entropy(ref.mlp_forward(X, {k: params[k] for k in shapes})[0], y)[0]
    if abs(hist[-1] - final) > 0.25 * final + 0.02:
        return fail(f"loss_history[-1] = {hist[-1]:.4g}, pero la entropía cruzada media de tus parámetros finales en "
                    f"estos datos es {final:.4g}.",
                    f"loss_history[-1] = {hist[-1]:.4g}, but the mean cross-entropy of your final parameters on these "
                    f"data is {final:.4g}.",
                    _msg("Cada valor de loss_history es la pérdida *media* de la época sobre todos sus ejemplos "
                         "(suma loss * len(lote) y divide por N).",
                         "Each value of loss_history is the epoch's *mean* loss over all its examples (add up "
                         "loss * len(batch) and divide by N)."))
    return []


def build_train(rng: np.random.Generator) -> Case:
    # Spirals, not moons: a linear-ish (buggy) network never fits them to 90 %, a correct one always does.
    X, y = make_spirals(n_per_class=80, n_classes=3, noise=0.15, seed=int(rng.integers(0, 2**31)))
    epochs = 300
    return Case(Probe.call("train", X, y), judge=_judge_training, context={"X": X, "y": y, "epochs": epochs})


CHECKS = [
    _forward("sigmoid_forward", ref.sigmoid_forward),
    _backward("sigmoid_backward", ref.sigmoid_backward, [
        (bug.sigmoid_backward_wrong, _msg("La derivada de la sigmoide es s(x)·(1 − s(x)), no s(x).",
                                          "The sigmoid's derivative is s(x)·(1 − s(x)), not s(x).")),
        (lambda dout, x: dout * x * (1.0 - x), _msg(
            "La derivada de la sigmoide es s·(1 − s) con s = σ(x): x es la *entrada* de la forward, aplica antes la sigmoide.",
            "The sigmoid's derivative is s·(1 − s) with s = σ(x): x is the forward's *input*, apply the sigmoid first."))]),
    _forward("relu_forward", ref.relu_forward),
    _backward("relu_backward", ref.relu_backward, [(bug.relu_backward_ge, _msg(
        "En x = 0 la derivada de ReLU es 0: usa la máscara x > 0, no x >= 0.", "At x = 0 ReLU's derivative is 0: use the mask x > 0, not x >= 0."))]),
    _forward("tanh_forward", ref.tanh_forward),
    _backward("tanh_backward", ref.tanh_backward, [
        (lambda dout, x: dout * (1.0 - x ** 2), _msg(
            "La derivada de tanh es 1 − tanh(x)²: x es la *entrada* de la forward, aplica antes tanh.",
            "tanh's derivative is 1 − tanh(x)²: x is the forward's *input*, apply tanh first.")),
        (lambda dout, x: dout * (1.0 - np.tanh(x)), _msg(
            "La derivada de tanh es 1 − tanh(x)², con el cuadrado.", "tanh's derivative is 1 − tanh(x)², squared.")),
        (lambda dout, x: dout * np.tanh(x) ** 2, _msg(
            "La derivada de tanh es 1 − tanh(x)², no tanh(x)².", "tanh's derivative is 1 − tanh(x)², not tanh(x)²."))]),
    Check("q2", "linear_forward", _msg("linear_forward: x @ W + b con W de forma (entradas, salidas)",
                                        "linear_forward: x @ W + b with W of shape (in, out)"), build_linear_forward, public=True),
    Check("q2", "linear_backward", _msg("linear_backward: dx, dW y db en un lote aleatorio",
                                         "linear_backward: dx, dW and db on a random batch"), _build_linear_backward(None), weight=2, public=True),
    Check("q2", "linear_backward_batch1", _msg("linear_backward con un lote de un solo ejemplo",
                                                "linear_backward with a batch of one example"), _build_linear_backward(1)),
    Check("q3", "softmax", _msg("softmax en logits aleatorios", "softmax on random logits"), _build_softmax(2.0), public=True),
    Check("q3", "softmax_large_logits", _msg("softmax con logits grandes (~1000): estabilidad numérica",
                                              "softmax with large logits (~1000): numerical stability"), _build_softmax(1000.0)),
    Check("q3", "softmax_cross_entropy", _msg("softmax_cross_entropy: pérdida media y dlogits",
                                               "softmax_cross_entropy: mean loss and dlogits"), _build_softmax_ce(2.0), weight=2, public=True),
    Check("q3", "softmax_cross_entropy_large", _msg("softmax_cross_entropy con logits grandes (~1000)",
                                                     "softmax_cross_entropy with large logits (~1000)"), _build_softmax_ce(1000.0)),
    Check("q4", "mse_loss", _msg("mse_loss: pérdida media y gradiente", "mse_loss: mean loss and gradient"), build_mse, public=True),
    Check("q4", "binary_cross_entropy", _msg("binary_cross_entropy sobre probabilidades: pérdida media y gradiente",
                                              "binary_cross_entropy on probabilities: mean loss and gradient"), build_bce),
    Check("q5", "mlp_forward", _msg("mlp_forward: logits de Linear-ReLU-Linear", "mlp_forward: logits of Linear-ReLU-Linear"),
          build_mlp_forward, public=True),
    Check("q5", "mlp_backward", _msg("mlp_backward: gradiente de W1, b1, W2 y b2", "mlp_backward: gradients of W1, b1, W2 and b2"),
          _build_mlp_backward(None), weight=2, public=True),
    Check("q5", "mlp_backward_batch1", _msg("mlp_backward con un lote de un solo ejemplo", "mlp_backward with a batch of one example"),
          _build_mlp_backward(1)),
    Check("q6", "numerical_gradient", _msg("numerical_gradient de una función escalar de un vector, comparado con el gradiente exacto",
                                            "numerical_gradient of a scalar function of a vector, against the exact gradient"),
          _build_numerical("weighted_sin", False, None), public=True),
    Check("q6", "numerical_gradient_matrix", _msg("numerical_gradient sobre una matriz, con h dado",
                                                   "numerical_gradient over a matrix, with a given h"),
          _build_numerical("quadratic", True, 1e-4)),
    Check("q6", "relative_error", _msg("relative_error, incluido el caso 0/0", "relative_error, including the 0/0 case"),
          build_relative_error),
    Check("q7", "sgd_step", _msg("sgd_step actualiza params en el sitio", "sgd_step updates params in place"), build_sgd_step,
          public=True),
    Check("q7", "train", _msg(f"train alcanza al menos {TRAIN_ACCURACY:.0%} de exactitud en datos 2-D nuevos",
                              f"train reaches at least {TRAIN_ACCURACY:.0%} accuracy on new 2-D data"),
          build_train, weight=2, timeout_s=30),
]
