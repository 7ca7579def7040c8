"""Tests of 02_ffnet (instructor-only): fresh inputs, the reference's answers, known bugs.

Each ``build`` runs in the trusted grader: it draws inputs from ``rng`` (new
for every batch), computes the expected answer with ``reference_impl.ffnet``
in float64 on the CPU, and lists the bug patterns it would recognise. The
probes build the student's tensors and module *in the sandbox* with the
runtime ops (``@tensor``, ``@load_state_dict``, ``@backward``...), on the
grading device, and send back plain arrays.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from autograder.checks import BugPattern, Call, Case, Check, Probe, Ref, Tolerance
from autograder.compare import Mismatch, compare
from autograder.data.digits import load_digits_split
from reference_impl import ffnet as ref
from reference_impl import ffnet_bugs as bug

EXACT = Tolerance(rtol=1e-5, atol=1e-6)  # float32 arithmetic passes; every named bug is far outside
TRAIN = Tolerance(rtol=1e-4, atol=1e-5)  # a short SGD run in float32 (or another reduction order) against float64
COUNT = Tolerance(rtol=0.0, atol=1e-9)  # accuracies and flags: exact
PARAMS = ref.PARAM_NAMES


def _msg(es: str, en: str) -> dict[str, str]:
    return {"es": es, "en": en}


def _names(*names: str) -> dict[str, str]:
    return {f"[{i}]": n for i, n in enumerate(names)}


def _fail(es: str, en: str, hint: dict[str, str] | None = None) -> list[Mismatch]:
    return [Mismatch(path="", kind="custom", message=_msg(es, en), hints=[hint] if hint else [])]


def _dims(rng: np.random.Generator) -> tuple[int, int, int]:
    """Input, hidden and class sizes, all different (so that a transposed weight cannot multiply)."""
    D, H, C = rng.choice(np.arange(3, 12), size=3, replace=False)
    return int(D), int(H), int(C)


def _odd_batch(rng: np.random.Generator) -> int:
    return int(rng.choice([3, 5, 7, 9, 11, 13]))


def _t(a, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64 if np.asarray(a).dtype.kind == "f" else None,
                        requires_grad=requires_grad)


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


# -- Part A · q1: init_params and forward ---------------------------------------------------


def _params(rng: np.random.Generator, D: int, H: int, C: int) -> dict[str, np.ndarray]:
    return {"W1": rng.normal(0, math.sqrt(2 / D), (D, H)), "b1": rng.normal(0, 0.5, H),
            "W2": rng.normal(0, math.sqrt(2 / H), (H, C)), "b2": rng.normal(0, 0.5, C)}


def _param_steps(params: dict[str, np.ndarray]) -> list[Call]:
    """Steps that make each parameter a float64 leaf tensor with requires_grad, named after its key."""
    return [Call(k, "@tensor", (v,), {"requires_grad": True}) for k, v in params.items()]


def _forward_answer(fn, X, params, upstream):
    P = {k: _t(v, True) for k, v in params.items()}
    x = _t(X, True)
    out = fn(x, P)
    out.backward(torch.as_tensor(upstream))
    return _np(out), _np(x.grad), {k: _np(P[k].grad) for k in P}


INIT_STD_RTOL = 0.15  # W1 has >= 13000 entries, W2 >= 1300: the sample std is within a few % of the true one


def _judge_init(value, case: Case) -> list[Mismatch]:
    D, H, C = case.context["dims"]
    shapes = {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}
    if not isinstance(value, dict) or not isinstance(value.get("params"), dict):
        return _fail("init_params debe devolver un dict con W1, b1, W2 y b2.",
                     "init_params must return a dict with W1, b1, W2 and b2.")
    params = value["params"]
    if set(params) != set(shapes):
        return _fail(f"init_params devuelve las claves {sorted(params)}; se esperaban {sorted(shapes)}.",
                     f"init_params returns the keys {sorted(params)}; expected {sorted(shapes)}.")
    for k, shape in shapes.items():
        got = params[k]
        if not isinstance(got, np.ndarray) or got.dtype.kind != "f":
            return _fail(f"params['{k}'] debe ser un tensor de números reales.", f"params['{k}'] must be a float tensor.")
        if got.shape != shape:
            if got.shape == shape[::-1]:
                return _fail(f"params['{k}'] tiene forma {got.shape}, la de nn.Linear (salida, entrada): en esta parte "
                             f"W es (entrada, salida) = {shape} y la capa calcula X @ W + b.",
                             f"params['{k}'] has shape {got.shape}, nn.Linear's (out, in): here W is (in, out) = "
                             f"{shape} and the layer computes X @ W + b.")
            return _fail(f"params['{k}'] tiene forma {got.shape}; se esperaba {shape}.",
                         f"params['{k}'] has shape {got.shape}; expected {shape}.")
        if not np.all(np.isfinite(got)):
            return _fail(f"params['{k}'] tiene valores no finitos.", f"params['{k}'] has non-finite values.")
    for k in PARAMS:
        requires_grad, leaf = value["flags"][k]
        if requires_grad is not True:
            return _fail(f"params['{k}'] no tiene requires_grad=True: autograd no calculará su gradiente.",
                         f"params['{k}'] does not have requires_grad=True: autograd will not compute its gradient.")
        if leaf is not True:
            return _fail(f"params['{k}'] no es una hoja del grafo (is_leaf=False), así que su .grad quedará en None: "
                         "crea el tensor, escálalo y solo después llama a .requires_grad_().",
                         f"params['{k}'] is not a leaf of the graph (is_leaf=False), so its .grad stays None: "
                         "create the tensor, scale it, and only then call .requires_grad_().")
    for k in ("b1", "b2"):
        if np.any(params[k] != 0):
            return _fail(f"Los sesgos empiezan en cero: params['{k}'] no lo es.", f"Biases start at zero: params['{k}'] does not.")
    for k, fan_in, fan_out in (("W1", D, H), ("W2", H, C)):
        w = params[k].astype(np.float64)
        want = math.sqrt(2.0 / fan_in)
        std, mean = float(w.std()), float(w.mean())
        if abs(std - want) > INIT_STD_RTOL * want or abs(mean) > 0.15 * want:
            why_es, why_en = "", ""
            if abs(std - math.sqrt(2.0 / (fan_in + fan_out))) < INIT_STD_RTOL * math.sqrt(2.0 / (fan_in + fan_out)):
                why_es, why_en = " Eso es Xavier/Glorot; se pide He.", " That is Xavier/Glorot; He is asked for."
            elif abs(std - math.sqrt(2.0 / fan_out)) < INIT_STD_RTOL * math.sqrt(2.0 / fan_out):
                why_es = (" Eso es sqrt(2 / fan_out): nn.init.kaiming_normal_ supone pesos (salida, entrada); aquí W es "
                          "(entrada, salida).")
                why_en = " That is sqrt(2 / fan_out): nn.init.kaiming_normal_ assumes (out, in) weights; here W is (in, out)."
            return _fail(f"params['{k}'] tiene media {mean:.3g} y desviación típica {std:.3g}; la inicialización de He "
                         f"pide media 0 y sqrt(2 / fan_in) = {want:.3g} (fan_in = {fan_in}).{why_es}",
                         f"params['{k}'] has mean {mean:.3g} and standard deviation {std:.3g}; He initialisation asks for "
                         f"mean 0 and sqrt(2 / fan_in) = {want:.3g} (fan_in = {fan_in}).{why_en}")
    again, other = value.get("again"), value.get("other")
    if not isinstance(again, dict) or any(not np.array_equal(np.asarray(again.get(k)), params[k]) for k in PARAMS):
        return _fail("Con la misma semilla init_params debe dar los mismos valores: usa un torch.Generator con "
                     "manual_seed(seed) (o torch.manual_seed(seed)).",
                     "With the same seed init_params must give the same values: use a torch.Generator with "
                     "manual_seed(seed) (or torch.manual_seed(seed)).")
    if isinstance(other, dict) and np.array_equal(np.asarray(other.get("W1")), params["W1"]):
        return _fail("Con otra semilla init_params da los mismos pesos: la semilla debe decidir los valores.",
                     "With another seed init_params gives the same weights: the seed must decide the values.")
    return []


def build_init_params(rng: np.random.Generator) -> Case:
    # W1 nearly square, so that Xavier (std ~ sqrt(1 / D)) is far from He; W2 tall (H >> C), so that
    # nn.init.kaiming_normal_ on an (in, out) tensor (std sqrt(2 / C)) is far from sqrt(2 / H)
    D, H, C = int(rng.integers(100, 130)), int(rng.integers(130, 160)), int(rng.integers(10, 16))
    seed = int(rng.integers(0, 10_000))
    steps = [Call("p", "init_params", (D, H, C), {"seed": seed}),
             Call("again", "init_params", (D, H, C), {"seed": seed}),
             Call("other", "init_params", (D, H, C), {"seed": seed + 1}),
             Call("none", "@tensor", (np.zeros(1),))]
    flags = {}
    for k in PARAMS:  # .get with a stand-in, so that a missing key is reported by the judge, not as a crash
        steps += [Call(f"t_{k}", "@method", (Ref("p"), "get", k, Ref("none"))),
                  Call(f"rg_{k}", "@getattr", (Ref(f"t_{k}"), "requires_grad")),
                  Call(f"leaf_{k}", "@getattr", (Ref(f"t_{k}"), "is_leaf"))]
        flags[k] = (Ref(f"rg_{k}"), Ref(f"leaf_{k}"))
    probe = Probe(steps, outputs={"params": Ref("p"), "again": Ref("again"), "other": Ref("other"), "flags": flags})
    return Case(probe, judge=_judge_init, context={"dims": (D, H, C)})


NO_RELU = _msg("Falta la ReLU entre las dos capas: sin ella la red entera es lineal.",
               "The ReLU between the two layers is missing: without it the whole net is linear.")
TRANSPOSED_W = _msg("¿Usaste W.T? En esta parte W tiene forma (entrada, salida) y la capa calcula X @ W + b "
                    "(nn.Linear guarda (salida, entrada), aquí no).",
                    "Did you use W.T? Here W has shape (in, out) and the layer computes X @ W + b "
                    "(nn.Linear stores (out, in), not here).")


NO_BIAS = _msg("Falta sumar un sesgo: cada capa calcula X @ W + b (b1 en la primera, b2 en la segunda).",
               "A bias is missing: each layer computes X @ W + b (b1 in the first, b2 in the second).")


def _forward_without_b1(X, P):
    return torch.relu(X @ P["W1"]) @ P["W2"] + P["b2"]


def _forward_without_b2(X, P):
    return torch.relu(X @ P["W1"] + P["b1"]) @ P["W2"]


def _mixed_signs(pre: np.ndarray) -> bool:
    """Hidden pre-activations with both signs in every row, so that a missing ReLU always shows."""
    return bool(np.all((pre < -1e-3).any(axis=1)) and np.all((pre > 1e-3).any(axis=1)))


def _build_forward(n: int | None, square: bool):
    def build(rng: np.random.Generator) -> Case:
        D, H, C = (_dims(rng) if not square else (int(rng.integers(4, 9)),) * 3)
        N = n or _odd_batch(rng)
        while True:
            X, params, upstream = rng.normal(size=(N, D)), _params(rng, D, H, C), rng.normal(size=(N, C))
            if _mixed_signs(X @ params["W1"] + params["b1"]):
                break
        steps = [*_param_steps(params), Call("x", "@tensor", (X,), {"requires_grad": True}),
                 Call("out", "forward", (Ref("x"), {k: Ref(k) for k in PARAMS})),
                 Call("b", "@backward", (Ref("out"), upstream)), Call("gx", "@grad", (Ref("x"),)),
                 *[Call(f"g_{k}", "@grad", (Ref(k),)) for k in PARAMS]]
        probe = Probe(steps, outputs=(Ref("out"), Ref("gx"), {k: Ref(f"g_{k}") for k in PARAMS}))
        patterns = [BugPattern("matches", NO_RELU, data=_forward_answer(bug.forward_no_relu, X, params, upstream)[0],
                               output="[0]")]
        patterns += [BugPattern("matches", NO_BIAS, data=_np(fn(_t(X), {k: _t(v) for k, v in params.items()})),
                                output="[0]") for fn in (_forward_without_b1, _forward_without_b2)]
        if square:
            patterns.append(BugPattern("matches", TRANSPOSED_W, output="[0]",
                                       data=_forward_answer(bug.forward_transposed, X, params, upstream)[0]))
        return Case(probe, _forward_answer(ref.forward, X, params, upstream), EXACT,
                    output_names=_names("logits", "X.grad", "grad"), patterns=patterns)
    return build


# -- Part A · q2: cross-entropy by hand ------------------------------------------------------


def _ce_answer(fn, logits, y):
    z = _t(logits, True)
    loss = fn(z, torch.as_tensor(y))
    loss.backward()
    return float(loss.item()), _np(z.grad)


CE_WRONG_DIM = _msg("La log-softmax va por filas: el máximo y logsumexp sobre dim=1 (una distribución por ejemplo), "
                    "no sobre dim=0.",
                    "The log-softmax runs over rows: the max and logsumexp over dim=1 (one distribution per example), "
                    "not over dim=0.")


def _ce_dims(max_dim: int, sum_dim: int):
    """cross_entropy with its max or its logsumexp over the wrong dimension."""
    def ce(logits, y):
        shifted = logits - logits.max(dim=max_dim, keepdim=True).values
        log_probs = shifted - torch.logsumexp(shifted, dim=sum_dim, keepdim=True)
        return -log_probs[torch.arange(logits.shape[0]), y].mean()
    return ce


def _build_cross_entropy(scale: float):
    def build(rng: np.random.Generator) -> Case:
        N, C = _odd_batch(rng), int(rng.integers(3, 8))
        logits, y = rng.normal(0, scale, size=(N, C)), rng.integers(0, C, size=N)
        if np.all(y == logits.argmax(axis=1)):  # with large logits every loss would be ~0: a mean and a sum would agree
            y[0] = int(logits[0].argmin())
        probe = Probe([Call("z", "@tensor", (logits,), {"requires_grad": True}), Call("y", "@tensor", (y,)),
                       Call("loss", "cross_entropy", (Ref("z"), Ref("y"))), Call("b", "@backward", (Ref("loss"),)),
                       Call("gz", "@grad", (Ref("z"),))], outputs=(Ref("loss"), Ref("gz")))
        patterns = [
            BugPattern("nonfinite", _msg("NaN/inf con logits grandes: resta el máximo de cada fila antes de exp "
                                         "(o usa torch.logsumexp).",
                                         "NaN/inf with large logits: subtract each row's max before exp "
                                         "(or use torch.logsumexp).")),
            BugPattern("matches", _msg(f"La pérdida es la *media* sobre el lote: falta dividir por N (= {N}).",
                                       f"The loss is the *mean* over the batch: divide by N (= {N})."),
                       data=_ce_answer(bug.cross_entropy_sum, logits, y)),
            BugPattern("scaled", _msg(f"La pérdida es {N} veces la esperada: falta el 1/N de la media.",
                                      f"The loss is {N} times the expected one: the mean's 1/N is missing."),
                       data=float(N), output="[0]"),
            *[BugPattern("matches", CE_WRONG_DIM, data=_ce_answer(_ce_dims(m, d), logits, y)) for m, d in ((0, 0), (1, 0), (0, 1))],
        ]
        return Case(probe, _ce_answer(ref.cross_entropy, logits, y), EXACT,
                    output_names=_names("loss", "logits.grad"), patterns=patterns)
    return build


# -- Part A · q3: sgd_step and train_manual --------------------------------------------------


def _set_grads(params: dict[str, Ref], grads: dict[str, np.ndarray], tag: str) -> list[Call]:
    """Steps giving each parameter the gradient ``grads[k]``: backward of sum(p * g)."""
    steps = []
    for k in grads:
        steps += [Call(f"{tag}m_{k}", "@method", (params[k], "mul", Ref(f"{tag}g_{k}"))),
                  Call(f"{tag}s_{k}", "@method", (Ref(f"{tag}m_{k}"), "sum")),
                  Call(f"{tag}b_{k}", "@backward", (Ref(f"{tag}s_{k}"),))]
    return [Call(f"{tag}g_{k}", "@tensor", (g,)) for k, g in grads.items()] + steps


def _sgd_inputs(rng: np.random.Generator):
    D, H, C = _dims(rng)
    params = _params(rng, D, H, C)
    return params, {k: rng.normal(size=v.shape) for k, v in params.items()}, float(rng.uniform(0.05, 0.5))


def build_sgd_step(rng: np.random.Generator) -> Case:
    params, grads, lr = _sgd_inputs(rng)
    after = {k: Ref("sgd", k, arg=0) for k in PARAMS}
    steps = [*_param_steps(params), *_set_grads({k: Ref(k) for k in PARAMS}, grads, "a"),
             Call("sgd", "sgd_step", ({k: Ref(k) for k in PARAMS}, lr))]
    for k in PARAMS:
        steps += [Call(f"rg_{k}", "@getattr", (after[k], "requires_grad")), Call(f"leaf_{k}", "@getattr", (after[k], "is_leaf"))]
    flags = {k: (Ref(f"rg_{k}"), Ref(f"leaf_{k}")) for k in PARAMS}
    expected = ({k: v - lr * grads[k] for k, v in params.items()}, {k: (True, True) for k in PARAMS})
    not_leaf = {k: (True, False) for k in PARAMS}
    return Case(Probe(steps, outputs=(after, flags)), expected, EXACT, output_names=_names("params", "(requires_grad, is_leaf)"),
                patterns=[
                    BugPattern("unchanged", _msg("params no cambió: sgd_step debe restar lr * p.grad a cada parámetro.",
                                                 "params did not change: sgd_step must subtract lr * p.grad from each parameter."),
                               data=params, output="[0]"),
                    BugPattern("matches", _msg("El signo está al revés: SGD *resta* lr * grad.",
                                               "Wrong sign: SGD *subtracts* lr * grad."),
                               data={k: v + lr * grads[k] for k, v in params.items()}, output="[0]"),
                    BugPattern("matches", _msg("Tras sgd_step los parámetros ya no son hojas del grafo: el paso se hizo con "
                                               "autograd activo (p = p - lr * p.grad). Hazlo in situ dentro de "
                                               "`with torch.no_grad():` (p -= lr * p.grad).",
                                               "After sgd_step the parameters are no longer leaves of the graph: the step "
                                               "ran with autograd on (p = p - lr * p.grad). Do it in place inside "
                                               "`with torch.no_grad():` (p -= lr * p.grad)."),
                               data=not_leaf, output="[1]"),
                    BugPattern("matches", _msg("Tras sgd_step los parámetros perdieron requires_grad: reemplazaste cada tensor "
                                               "por uno nuevo. Actualízalos in situ (p -= lr * p.grad) dentro de "
                                               "torch.no_grad().",
                                               "After sgd_step the parameters lost requires_grad: each tensor was replaced by "
                                               "a new one. Update them in place (p -= lr * p.grad) inside torch.no_grad()."),
                               data={k: (False, True) for k in PARAMS}, output="[1]"),
                ])


def build_sgd_zero_grad(rng: np.random.Generator) -> Case:
    params, grads, lr = _sgd_inputs(rng)
    again = {k: rng.normal(size=v.shape) for k, v in params.items()}
    after = {k: Ref("sgd", k, arg=0) for k in PARAMS}
    steps = [*_param_steps(params), *_set_grads({k: Ref(k) for k in PARAMS}, grads, "a"),
             Call("sgd", "sgd_step", ({k: Ref(k) for k in PARAMS}, lr)),
             *_set_grads(after, again, "b"), *[Call(f"g_{k}", "@grad", (after[k],)) for k in PARAMS]]
    probe = Probe(steps, outputs={k: Ref(f"g_{k}") for k in PARAMS})
    return Case(probe, again, EXACT, output_names={"": "grad"}, patterns=[
        BugPattern("matches", _msg("Los gradientes se acumulan: el siguiente backward suma al gradiente anterior. sgd_step "
                                   "debe ponerlos a cero al terminar (p.grad.zero_() o p.grad = None).",
                                   "The gradients accumulate: the next backward adds to the previous gradient. sgd_step "
                                   "must zero them at the end (p.grad.zero_() or p.grad = None)."),
                   data={k: grads[k] + again[k] for k in PARAMS})])


def _train_manual_answer(fn, X, y, params, lr, epochs, batch_size):
    P = {k: _t(v, True) for k, v in params.items()}
    history = fn(_t(X), torch.as_tensor(y), P, lr, epochs, batch_size)
    return [float(h) for h in history], {k: _np(P[k]) for k in PARAMS}


def build_train_manual(rng: np.random.Generator) -> Case:
    D, H, C = _dims(rng)
    batch_size = int(rng.integers(5, 9))
    N = batch_size * int(rng.integers(3, 6)) + int(rng.integers(1, batch_size))  # a shorter last batch
    X, y, params = rng.normal(size=(N, D)), rng.integers(0, C, size=N), _params(rng, D, H, C)
    lr, epochs = float(rng.uniform(0.05, 0.2)), 3
    probe = Probe([*_param_steps(params), Call("X", "@tensor", (X,)), Call("y", "@tensor", (y,)),
                   Call("tm", "train_manual", (Ref("X"), Ref("y"), {k: Ref(k) for k in PARAMS}, lr, epochs, batch_size))],
                  outputs=(Ref("tm"), {k: Ref("tm", k, arg=2) for k in PARAMS}))
    args = (X, y, params, lr, epochs, batch_size)
    unweighted = _train_manual_answer(bug.train_manual_unweighted, *args)[0]
    batches = -(-N // batch_size)
    return Case(probe, _train_manual_answer(ref.train_manual, *args), TRAIN,
                output_names=_names("loss_history", "params"), patterns=[
                    BugPattern("matches", WEIGHTED, data=unweighted, output="[0]"),
                    BugPattern("matches", WEIGHTED, data=[h * batches / N for h in unweighted], output="[0]")])


WEIGHTED = _msg("La pérdida de cada época es la media de las pérdidas de sus lotes *ponderada por su tamaño* "
                "(loss.item() * len(yb), y al final / N): el último lote es más corto.",
                "Each epoch's loss is the mean of its batch losses *weighted by batch size* (loss.item() * len(yb), "
                "then / N): the last batch is shorter.")


# -- Part B · q4: the MLP module -------------------------------------------------------------


def _state(rng: np.random.Generator, D: int, H: int, C: int) -> dict[str, np.ndarray]:
    """Weights in the reference's names and nn.Linear's (out, in) layout."""
    return {"fc1.weight": rng.uniform(-1, 1, (H, D)) / math.sqrt(D), "fc1.bias": rng.uniform(-1, 1, H) / math.sqrt(D),
            "fc2.weight": rng.uniform(-1, 1, (C, H)) / math.sqrt(H), "fc2.bias": rng.uniform(-1, 1, C) / math.sqrt(H)}


def _module_answer(cls, state, X, upstream, dropout=0.0):
    model = cls(X.shape[1], state["fc1.weight"].shape[0], state["fc2.weight"].shape[0], dropout).double()
    model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    x = _t(X, True)
    out = model(x)
    out.backward(torch.as_tensor(upstream))
    return _np(out), _np(x.grad), {k: _np(p.grad) for k, p in model.named_parameters()}


def _module_steps(D: int, H: int, C: int, state, dropout: float | None = None, dtype: str | None = None) -> list[Call]:
    kwargs = {} if dropout is None else {"dropout": dropout}
    load_kwargs = {} if dtype is None else {"dtype": dtype}
    return [Call("m", "MLP", (D, H, C), kwargs), Call("l", "@load_state_dict", (Ref("m"), state), load_kwargs)]


def _build_mlp(n: int | None):
    def build(rng: np.random.Generator) -> Case:
        D, H, C = _dims(rng)
        N = n or _odd_batch(rng)
        while True:
            state, X, upstream = _state(rng, D, H, C), rng.normal(size=(N, D)), rng.normal(size=(N, C))
            if _mixed_signs(X @ state["fc1.weight"].T + state["fc1.bias"]):
                break
        probe = Probe([*_module_steps(D, H, C, state), Call("x", "@tensor", (X,), {"requires_grad": True}),
                       Call("out", "@call", (Ref("m"), Ref("x"))), Call("b", "@backward", (Ref("out"), upstream)),
                       Call("gx", "@grad", (Ref("x"),)), Call("gp", "@param_grads", (Ref("m"),))],
                      outputs=(Ref("out"), Ref("gx"), Ref("gp")))
        return Case(probe, _module_answer(ref.MLP, state, X, upstream), EXACT,
                    output_names=_names("logits", "x.grad", "grad"),
                    patterns=[BugPattern("matches", NO_RELU, output="[0]",
                                         data=_module_answer(bug.MLPNoReLU, state, X, upstream)[0]),
                              BugPattern("shape", LOGITS_SHAPE, output="[0]")])
    return build


LOGITS_SHAPE = _msg("Los logits deben tener forma (N, C): forward aplica fc1 → ReLU → dropout → fc2. ¿Te saltas una capa, "
                    "o las aplicas en otro orden?",
                    "The logits must have shape (N, C): forward applies fc1 → ReLU → dropout → fc2. A skipped layer, or "
                    "layers in another order?")


DROPOUT_IN_EVAL = _msg("En modo evaluación (model.eval()) el dropout no debe actuar: usa la capa self.dropout = nn.Dropout(p), "
                       "que mira self.training; F.dropout(h, p) sin training=self.training apaga neuronas siempre.",
                       "In eval mode (model.eval()) dropout must do nothing: use the layer self.dropout = nn.Dropout(p), "
                       "which looks at self.training; F.dropout(h, p) without training=self.training always drops units.")


def _judge_eval_dropout(value, case: Case) -> list[Mismatch]:
    mismatches = compare(value, case.expected, case.tolerance, {"": "logits"})
    if mismatches and all(m.kind == "values" for m in mismatches):  # a wrong shape is not dropout's doing
        mismatches[0].hints.append(DROPOUT_IN_EVAL)
    return mismatches


def build_mlp_eval_dropout(rng: np.random.Generator) -> Case:
    D, H, C = _dims(rng)
    H += 16  # enough hidden units that dropout cannot go unnoticed
    state, X = _state(rng, D, H, C), rng.normal(size=(_odd_batch(rng), D))
    probe = Probe([*_module_steps(D, H, C, state, dropout=0.5), Call("e", "@method", (Ref("m"), "eval")),
                   Call("x", "@tensor", (X,)), Call("out", "@call", (Ref("m"), Ref("x")))], outputs=Ref("out"))
    logits = _np(ref.mlp_with_state(state, dropout=0.5).eval()(_t(X)))
    return Case(probe, logits, EXACT, judge=_judge_eval_dropout)


def _judge_train_dropout(value, case: Case) -> list[Mismatch]:
    deterministic = case.context["deterministic"]
    if not isinstance(value, np.ndarray) or value.shape != deterministic.shape or not np.all(np.isfinite(value)):
        return _fail(f"En modo entrenamiento MLP debe devolver logits finitos de forma {deterministic.shape}.",
                     f"In training mode MLP must return finite logits of shape {deterministic.shape}.")
    if not compare(value, deterministic, EXACT):
        return _fail("Con dropout=0.5 y en modo entrenamiento la salida es la misma que sin dropout: MLP debe aplicar "
                     "nn.Dropout(dropout) después de la ReLU.",
                     "With dropout=0.5 in training mode the output is the same as without dropout: MLP must apply "
                     "nn.Dropout(dropout) after the ReLU.")
    return []


def build_mlp_train_dropout(rng: np.random.Generator) -> Case:
    D, H, C = _dims(rng)
    H += 16
    state, X = _state(rng, D, H, C), rng.normal(size=(9, D))
    probe = Probe([*_module_steps(D, H, C, state, dropout=0.5), Call("t", "@method", (Ref("m"), "train")),
                   Call("x", "@tensor", (X,)), Call("out", "@call", (Ref("m"), Ref("x")))], outputs=Ref("out"))
    deterministic = _np(ref.mlp_with_state(state, dropout=0.5).eval()(_t(X)))
    return Case(probe, judge=_judge_train_dropout, context={"deterministic": deterministic})


# -- Part B · q5: train_epoch and evaluate ---------------------------------------------------


def _f32(a: np.ndarray) -> np.ndarray:
    """Values exactly representable in float32: the student's float32 run and our float64 one start equal."""
    return a.astype(np.float32).astype(np.float64)


def _run_epochs(state, X, y, batch_size, lr, epochs, fn=ref.train_epoch, cls=ref.MLP, momentum=0.0):
    model = cls(X.shape[1], state["fc1.weight"].shape[0], state["fc2.weight"].shape[0]).double()
    model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(_t(X), torch.as_tensor(y)), batch_size=batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = [float(fn(model, loader, optimizer, loss_fn, "cpu")) for _ in range(epochs)]
    return losses, ref.state_arrays(model)


def _training_steps(D, H, C, state, X, y, batch_size, lr, epochs, momentum=0.0) -> list[Call]:
    """The student's MLP (float32) with our weights, loader (no shuffling), SGD and loss; ``epochs`` calls of train_epoch."""
    return [*_module_steps(D, H, C, state, dtype="float32"), Call("dev", "@device"),
            Call("ld", "@loader", (X.astype(np.float32), y), {"batch_size": batch_size, "shuffle": False}),
            Call("opt", "@sgd", (Ref("m"), lr), {"momentum": momentum}), Call("lf", "@cross_entropy_loss"),
            *[Call(f"e{i}", "train_epoch", (Ref("m"), Ref("ld"), Ref("opt"), Ref("lf"), Ref("dev"))) for i in range(epochs)],
            Call("sd", "@state_dict", (Ref("m"),))]


TRAIN_BUGS = [
    (bug.train_epoch_no_zero_grad, "[1]", _msg(
        "Los pesos no coinciden tras entrenar: ¿falta optimizer.zero_grad()? Sin él cada paso usa la suma de todos los "
        "gradientes anteriores.",
        "The weights do not match after training: is optimizer.zero_grad() missing? Without it each step uses the sum of "
        "every gradient so far.")),
    (bug.train_epoch_step_before_backward, "[1]", _msg(
        "optimizer.step() va después de loss.backward(): dado antes, cada paso usa el gradiente del lote anterior.",
        "optimizer.step() goes after loss.backward(): before it, each step uses the previous batch's gradient.")),
    (bug.train_epoch_sum, "[0]", _msg(
        "train_epoch debe devolver la pérdida *media* por ejemplo, no la suma de las pérdidas de los lotes.",
        "train_epoch must return the *mean* loss per example, not the sum of the batch losses.")),
    (bug.train_epoch_unweighted, "[0]", _msg(
        "La media de la época pondera cada lote por su tamaño (loss.item() * len(yb), y al final / número de ejemplos): "
        "el último lote es más corto.",
        "The epoch's mean weights each batch by its size (loss.item() * len(yb), then / number of examples): the last "
        "batch is shorter.")),
]


UNCHANGED = _msg("Los pesos no cambiaron al entrenar: en cada lote hace falta loss.backward() (calcula los gradientes) y "
                 "después optimizer.step() (los aplica).",
                 "The weights did not change while training: every batch needs loss.backward() (computes the "
                 "gradients) and then optimizer.step() (applies them).")


def build_train_epoch(rng: np.random.Generator) -> Case:
    D, H, C = _dims(rng)
    batch_size = int(rng.integers(5, 9))
    N = batch_size * int(rng.integers(3, 6)) + int(rng.integers(1, batch_size))
    state = {k: _f32(v) for k, v in _state(rng, D, H, C).items()}
    X, y = _f32(rng.normal(size=(N, D))), rng.integers(0, C, size=N)
    lr, epochs = float(rng.uniform(0.1, 0.5)), 2
    probe = Probe(_training_steps(D, H, C, state, X, y, batch_size, lr, epochs),
                  outputs=(tuple(Ref(f"e{i}") for i in range(epochs)), Ref("sd")))
    expected = _run_epochs(state, X, y, batch_size, lr, epochs)
    patterns = []
    for fn, output, message in TRAIN_BUGS:
        losses, final = _run_epochs(state, X, y, batch_size, lr, epochs, fn=fn)
        patterns.append(BugPattern("matches", message, data=tuple(losses) if output == "[0]" else final, output=output))
        if fn is bug.train_epoch_no_zero_grad:  # the weights never changed: no backward, or no step
            patterns.append(BugPattern("unchanged", UNCHANGED, data=state, output="[1]"))
        if fn is bug.train_epoch_unweighted:  # the batch means added up and divided by N: the other way to miss the weights
            batches = -(-N // batch_size)
            patterns.append(BugPattern("matches", message, data=tuple(v * batches / N for v in losses), output=output))
    return Case(probe, (tuple(expected[0]), expected[1]), TRAIN, output_names=_names("losses", "state_dict"),
                patterns=patterns)


def build_train_epoch_mode(rng: np.random.Generator) -> Case:
    D, H, C = _dims(rng)
    state, X, y = _state(rng, D, H, C), rng.normal(size=(6, D)), rng.integers(0, C, size=6)
    steps = _training_steps(D, H, C, state, X, y, 4, 0.1, 1)
    steps.insert(2, Call("eval", "@method", (Ref("m"), "eval")))  # as after an evaluate()
    probe = Probe([*steps, Call("mode", "@mode", (Ref("m"),))], outputs=Ref("mode"))
    return Case(probe, True, COUNT, output_names={"": "model.training"}, patterns=[
        BugPattern("matches", _msg("train_epoch debe empezar con model.train(): después de evaluate() el modelo sigue en modo "
                                   "evaluación y el dropout no actuaría al entrenar.",
                                   "train_epoch must start with model.train(): after evaluate() the model is still in eval "
                                   "mode and dropout would not act while training."), data=False)])


def build_evaluate(rng: np.random.Generator) -> Case:
    D, H, C = _dims(rng)
    H += 16
    state = _state(rng, D, H, C)
    model = ref.mlp_with_state(state, dropout=0.5).eval()
    batch_size = int(rng.integers(12, 18))
    N = 3 * batch_size + int(rng.integers(1, batch_size))  # a shorter last batch
    X = rng.normal(size=(N, D))
    for _ in range(100):  # keep only examples whose top two logits are well apart: float32 ranks them alike
        top2 = np.sort(_np(model(_t(X))), axis=1)[:, -2:]
        close = top2[:, 1] - top2[:, 0] < 1e-3
        if not close.any():
            break
        X[close] = rng.normal(size=(int(close.sum()), D))
    pred = _np(model(_t(X))).argmax(axis=1)
    batches = [slice(i, i + batch_size) for i in range(0, N, batch_size)]  # the last one shorter
    while True:  # wrong labels spread so that the mean of the batches' accuracies is not the accuracy
        wrong = rng.choice(N, size=N // 4, replace=False)
        y_mixed = pred.copy()
        y_mixed[wrong] = (pred[wrong] + rng.integers(1, C, size=len(wrong))) % C
        acc_mixed = float(np.mean(y_mixed == pred))
        unweighted = float(np.mean([np.mean(y_mixed[b] == pred[b]) for b in batches]))
        if abs(unweighted - acc_mixed) > 1e-3:
            break
    probe = Probe([*_module_steps(D, H, C, state, dropout=0.5), Call("t", "@method", (Ref("m"), "train")),
                   Call("dev", "@device"),
                   Call("ld1", "@loader", (X, pred), {"batch_size": batch_size}),
                   Call("ld2", "@loader", (X, y_mixed), {"batch_size": batch_size}),
                   Call("a1", "evaluate", (Ref("m"), Ref("ld1"), Ref("dev"))),
                   Call("a2", "evaluate", (Ref("m"), Ref("ld2"), Ref("dev"))), Call("mode", "@mode", (Ref("m"),))],
                  outputs=(Ref("a1"), Ref("a2"), Ref("mode")))
    patterns = [
        BugPattern("matches", _msg("Después de evaluate el modelo sigue en modo entrenamiento: evaluate debe llamar a "
                                   "model.eval() (si no, el dropout sigue apagando neuronas al evaluar).",
                                   "After evaluate the model is still in training mode: evaluate must call model.eval() "
                                   "(otherwise dropout keeps dropping units while evaluating)."), data=True, output="[2]"),
        BugPattern("scaled", _msg("evaluate devuelve un porcentaje: se pide una fracción en [0, 1].",
                                  "evaluate returns a percentage: a fraction in [0, 1] is asked for."), data=100.0, output="[1]"),
        BugPattern("scaled", _msg("evaluate devuelve el número de aciertos: divide por el número de ejemplos.",
                                  "evaluate returns the number of hits: divide by the number of examples."),
                   data=float(N), output="[1]"),
        BugPattern("matches", _msg("La exactitud se cuenta sobre todos los ejemplos, no como media de las exactitudes de "
                                   "los lotes (el último lote es más corto).",
                                   "Accuracy counts over all examples, not as the mean of the batches' accuracies "
                                   "(the last batch is shorter)."), data=unweighted, output="[1]"),
    ]
    return Case(probe, (1.0, acc_mixed, False), COUNT,
                output_names=_names("exactitud (etiquetas = predicción)", "exactitud", "model.training"), patterns=patterns)


TARGET = {"hidden": 32, "epochs": 3, "batch_size": 64, "lr": 0.1, "momentum": 0.9, "margin": 0.03}


def _judge_target(value, case: Case) -> list[Mismatch]:
    want = {k: v.shape for k, v in case.context["init"].items()}
    if not isinstance(value, dict) or {k: getattr(v, "shape", None) for k, v in value.items()} != want:
        return _fail(f"Tras entrenar, el state_dict debe tener {want}.", f"After training, the state_dict must hold {want}.")
    if not all(np.all(np.isfinite(v)) for v in value.values()):
        return _fail("Tras entrenar hay pesos no finitos (NaN/inf): el entrenamiento divergió.",
                     "After training some weights are not finite (NaN/inf): training diverged.")
    acc = ref.accuracy(ref.mlp_with_state(value), case.context["X_test"], case.context["y_test"])
    want_acc = case.context["reference_accuracy"] - TARGET["margin"]
    if acc < want_acc:
        ref_acc = case.context["reference_accuracy"]
        return _fail(f"Tras {TARGET['epochs']} épocas con tu MLP y tu train_epoch la exactitud en test es {acc:.1%}; la "
                     f"referencia llega a {ref_acc:.1%} y se pide al menos {want_acc:.1%}.",
                     f"After {TARGET['epochs']} epochs with your MLP and your train_epoch the test accuracy is {acc:.1%}; "
                     f"the reference reaches {ref_acc:.1%} and at least {want_acc:.1%} is required.",
                     _msg("Revisa train_epoch: en cada lote optimizer.zero_grad() (si no, los gradientes se acumulan), "
                          "loss.backward() y después optimizer.step(); y model.train() al empezar.",
                          "Check train_epoch: every batch, optimizer.zero_grad() (otherwise the gradients accumulate), "
                          "loss.backward() and then optimizer.step(); and model.train() at the start."))
    return []


def build_target_accuracy(rng: np.random.Generator) -> Case:
    X_train, X_test, y_train, y_test = load_digits_split()
    torch.manual_seed(int(rng.integers(0, 2**31)))
    init = ref.state_arrays(ref.MLP(X_train.shape[1], TARGET["hidden"], 10))
    init = {k: _f32(v) for k, v in init.items()}
    X, y = X_train.numpy().astype(np.float64), y_train.numpy()
    args = (init, X, y, TARGET["batch_size"], TARGET["lr"], TARGET["epochs"])
    _, trained = _run_epochs(*args, momentum=TARGET["momentum"])
    X_test64 = X_test.double()
    reference_accuracy = ref.accuracy(ref.mlp_with_state(trained), X_test64, y_test)
    probe = Probe(_training_steps(X.shape[1], TARGET["hidden"], 10, init, X, y, TARGET["batch_size"], TARGET["lr"],
                                  TARGET["epochs"], TARGET["momentum"]), outputs=Ref("sd"))
    return Case(probe, judge=_judge_target, context={"init": init, "X_test": X_test64, "y_test": y_test,
                                                     "reference_accuracy": reference_accuracy})


# -- Part B · q6: early stopping ------------------------------------------------------------

STOP_BUGS = [
    (bug.EarlyStoppingNonStrict, _msg("Una pérdida *igual* a la mejor no es una mejora: compara con < (estricto), no con <=.",
                                      "A loss *equal* to the best one is not an improvement: compare with < (strict), not <=.")),
    (bug.EarlyStoppingOffByOne, _msg("Paras un paso tarde: step devuelve True en cuanto van `patience` pasos seguidos sin "
                                     "mejora (contador >= patience).",
                                     "You stop one step late: step returns True as soon as there have been `patience` "
                                     "steps in a row without improvement (counter >= patience).")),
    (bug.EarlyStoppingNoReset, _msg("Al mejorar, el contador de pasos sin mejora vuelve a 0.",
                                    "On an improvement the counter of steps without improvement goes back to 0.")),
]


def _losses(rng: np.random.Generator, n: int) -> list[float]:
    """Validation losses with improvements, exact ties with the best one, and bad runs."""
    best, out = 1.0, []
    for _ in range(n):
        r = rng.random()
        if r < 0.3:
            v = best - rng.uniform(0.01, 0.1)
        elif r < 0.5 and out:
            v = best
        else:
            v = best + rng.uniform(0.001, 0.2)
        v = round(float(v), 4)
        best = min(best, v)
        out.append(v)
    return out


def _build_early_stopping(patiences: tuple[int, ...]):
    def build(rng: np.random.Generator) -> Case:
        patience = int(rng.choice(patiences))
        while True:  # a sequence on which every named bug answers differently
            losses = _losses(rng, int(rng.integers(10, 16)))
            expected = bug.early_stopping_answers(ref.EarlyStopping, patience, losses)
            answers = [bug.early_stopping_answers(cls, patience, losses) for cls, _ in STOP_BUGS]
            if any(expected) and all(a != expected for a in answers):
                break
        steps = [Call("es", "EarlyStopping", (patience,))]
        steps += [Call(f"s{i}", "@method", (Ref("es"), "step", v)) for i, v in enumerate(losses)]
        return Case(Probe(steps, outputs=[Ref(f"s{i}") for i in range(len(losses))]), expected, COUNT,
                    output_names={"": f"step(val_loss) con patience={patience} y pérdidas {losses}"},
                    patterns=[BugPattern("matches", message, data=a) for (_, message), a in zip(STOP_BUGS, answers, strict=True)])
    return build


def _single_threaded(build):
    """The reference's tensors are tiny: one thread is faster, and fair to a busy grading machine."""
    def wrapped(rng: np.random.Generator) -> Case:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return build(rng)
        finally:
            torch.set_num_threads(threads)
    return wrapped


def _check(question, name, es, en, build, **kwargs) -> Check:
    return Check(question, name, _msg(es, en), _single_threaded(build), **kwargs)


CHECKS = [
    _check("q1", "init_params", "init_params: formas, requires_grad, hojas del grafo, He y semilla",
           "init_params: shapes, requires_grad, graph leaves, He and the seed", build_init_params),
    _check("q1", "forward", "forward: logits y gradientes respecto a X, W1, b1, W2 y b2",
           "forward: logits and gradients w.r.t. X, W1, b1, W2 and b2", _build_forward(None, False), weight=2, public=True),
    _check("q1", "forward_square", "forward con pesos cuadrados (detecta un W.T)", "forward with square weights (catches a W.T)",
           _build_forward(None, True)),
    _check("q1", "forward_batch1", "forward con un lote de un solo ejemplo", "forward with a batch of one example",
           _build_forward(1, False)),
    _check("q2", "cross_entropy", "cross_entropy: pérdida media y gradiente respecto a los logits",
           "cross_entropy: mean loss and gradient w.r.t. the logits", _build_cross_entropy(3.0), weight=2, public=True),
    _check("q2", "cross_entropy_large_logits", "cross_entropy con logits grandes (~1000): estabilidad",
           "cross_entropy with large logits (~1000): stability", _build_cross_entropy(1000.0)),
    _check("q3", "sgd_step", "sgd_step actualiza in situ, fuera de autograd", "sgd_step updates in place, outside autograd",
           build_sgd_step, public=True),
    _check("q3", "sgd_step_zero_grad", "sgd_step deja los gradientes a cero", "sgd_step leaves the gradients at zero",
           build_sgd_zero_grad),
    _check("q3", "train_manual", "train_manual: 3 épocas de SGD, pérdidas y pesos finales",
           "train_manual: 3 epochs of SGD, losses and final weights", build_train_manual, weight=2, timeout_s=5),
    _check("q4", "mlp", "MLP con los pesos de la referencia: logits y gradientes de x y de cada parámetro",
           "MLP with the reference's weights: logits and gradients of x and of every parameter", _build_mlp(None),
           weight=2, public=True),
    _check("q4", "mlp_batch1", "MLP con un lote de un solo ejemplo", "MLP with a batch of one example", _build_mlp(1)),
    _check("q4", "mlp_eval_dropout", "MLP(dropout=0.5) en modo evaluación: sin dropout",
           "MLP(dropout=0.5) in eval mode: no dropout", build_mlp_eval_dropout),
    _check("q4", "mlp_train_dropout", "MLP(dropout=0.5) en modo entrenamiento: con dropout",
           "MLP(dropout=0.5) in training mode: with dropout", build_mlp_train_dropout),
    _check("q5", "train_epoch", "train_epoch: dos épocas de SGD, pérdidas medias y pesos finales",
           "train_epoch: two epochs of SGD, mean losses and final weights", build_train_epoch, weight=2, public=True),
    _check("q5", "train_epoch_mode", "train_epoch pone el modelo en modo entrenamiento",
           "train_epoch puts the model in training mode", build_train_epoch_mode),
    _check("q5", "evaluate", "evaluate: exactitud en [0, 1], en modo evaluación",
           "evaluate: accuracy in [0, 1], in eval mode", build_evaluate, public=True),
    _check("q5", "target_accuracy",
           f"{TARGET['epochs']} épocas en digits con tu MLP y tu train_epoch: exactitud cercana a la de la referencia",
           f"{TARGET['epochs']} epochs on digits with your MLP and train_epoch: accuracy close to the reference's",
           build_target_accuracy, weight=2, timeout_s=30),
    _check("q6", "early_stopping", "EarlyStopping.step en una secuencia de pérdidas",
           "EarlyStopping.step on a sequence of losses", _build_early_stopping((2, 3)), public=True),
    _check("q6", "early_stopping_patience", "EarlyStopping.step con otra paciencia y empates",
           "EarlyStopping.step with another patience and ties", _build_early_stopping((1, 4))),
]
