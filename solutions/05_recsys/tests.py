"""Tests of 05_recsys (instructor-only): fresh inputs, the reference's answers, known bugs.

Each ``build`` runs in the trusted grader: it draws inputs from ``rng`` (new
for every batch), computes the expected answer with ``reference_impl.recsys``
in float64 on the CPU, and lists the bug patterns whose answers it would
recognise. Module checks build the *student's* ``MatrixFactorization`` in the
sandbox, load the reference's tables by the prescribed names, and send back
predictions and the gradient of every table (a sparse gradient, from
``nn.Embedding(sparse=True)``, travels dense). Random answers (the split,
negative sampling, a trained model) are judged by their properties, here,
never by the student's process.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from autograder.checks import BugPattern, Call, Case, Check, Probe, Ref, Tolerance
from autograder.compare import Mismatch
from autograder.data.ratings import make_ratings
from reference_impl import recsys as ref
from reference_impl import recsys_bugs as bug

# float32 arithmetic (a float32 R, a float32 cast) passes; every named bug is off by far more
# (tests/test_tolerances_recsys.py).
EXACT = Tolerance(rtol=1e-5, atol=1e-6)
# float64 modules (tables loaded as float64) against the float64 reference: only the summation order differs.
MODULE = Tolerance(rtol=1e-6, atol=1e-8)
# a few full-batch Adam steps in float64; lenient enough for a float32 step, far tighter than any named bug.
TRAIN = Tolerance(rtol=1e-4, atol=1e-6)
EQUAL = Tolerance(rtol=0.0, atol=0.0)

TARGET = {"num_factors": 8, "steps": 40, "lr": 0.05, "weight_decay": 1e-3, "test_fraction": 0.2, "margin": 0.10}
# 40 steps: the reference is near its best test RMSE (0.72-0.78), and another init or summation order lands within
# 0.015 of it. Measured gaps to the reference over 40 batches: no biases +0.03 to +0.07 (passes: the factors absorb
# part of the biases), nn.Embedding's N(0, 1) init +0.21 to +0.30, no weight decay +0.3, no zero_grad +0.6, the loss
# over every entry +2 (all fail).


def _msg(es: str, en: str) -> dict[str, str]:
    return {"es": es, "en": en}


def _names(*names: str) -> dict[str, str]:
    return {f"[{i}]": n for i, n in enumerate(names)}


def _fail(es: str, en: str, hint: dict[str, str] | None = None) -> list[Mismatch]:
    """What is wrong (the message) and, where known, why (the hint that names the bug)."""
    return [Mismatch(path="", kind="custom", message=_msg(es, en), hints=[hint] if hint else [])]


def _t(a, requires_grad: bool = False) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a))
    return t.clone().requires_grad_(True) if requires_grad else t


def _np(t) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().copy()


def _single_threaded(build):
    """The reference's tensors are small: one thread is faster, and fair to a busy grading machine."""
    def wrapped(rng: np.random.Generator) -> Case:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng():
                torch.manual_seed(int(rng.integers(0, 2**31)))
                return build(rng)
        finally:
            torch.set_num_threads(threads)
    return wrapped


# -- q1 · the data: dense matrix and per-user split -------------------------------------------

def _observed(rng: np.random.Generator, U: int, n_items: int, density: float):
    """Distinct (user, item) pairs in random order, with whole and half stars."""
    n = max(1, int(density * U * n_items))
    cells = rng.choice(U * n_items, size=n, replace=False)
    user, item = (cells // n_items).astype(np.int64), (cells % n_items).astype(np.int64)
    rating = (rng.integers(2, 11, size=n) / 2).astype(np.float32)  # 1.0, 1.5, ..., 5.0
    return user, item, rating


def build_ratings_matrix(rng: np.random.Generator) -> Case:
    U, n_items = (int(v) for v in rng.choice(np.arange(5, 12), size=2, replace=False))
    user, item, rating = _observed(rng, U, n_items, float(rng.uniform(0.2, 0.5)))
    R, mask = ref.ratings_matrix(user, item, rating, U, n_items)
    probe = Probe([Call("out", "ratings_matrix", (user, item, rating, U, n_items)),
                   Call("R_dtype", "@dtype", (Ref("out", 0),)), Call("mask_dtype", "@dtype", (Ref("out", 1),))],
                  outputs=(Ref("out", 0), Ref("out", 1), Ref("R_dtype"), Ref("mask_dtype")))
    swapped = np.zeros((n_items, U), dtype=np.float32)
    swapped[item, user] = rating
    return Case(probe, (_np(R), _np(mask), "torch.float32", "torch.bool"), EQUAL,
                output_names=_names("R", "mask", "R.dtype", "mask.dtype"),
                patterns=[BugPattern("matches", _msg("R tiene forma (num_items, num_users): las filas son los usuarios, "
                                                     "R[user, item] = rating.",
                                                     "R has shape (num_items, num_users): rows are users, "
                                                     "R[user, item] = rating."), data=swapped, output="[0]")])


def _split_counts_message(user: np.ndarray, test: np.ndarray, fraction: float) -> list[Mismatch] | None:
    want = ref.held_out_counts(user, fraction)
    users, counts = np.unique(user, return_counts=True)
    got = dict.fromkeys(want, 0)
    for u, c in zip(*np.unique(user[test], return_counts=True), strict=True):
        got[int(u)] = int(c)
    wrong = [u for u in want if got[u] != want[u]]
    if not wrong:
        return None
    n_of = dict(zip(users.tolist(), counts.tolist(), strict=True))
    examples = "; ".join(f"usuario {u}: {n_of[u]} valoraciones, {got[u]} en test, se piden {want[u]}" for u in wrong[:3])
    examples_en = "; ".join(f"user {u}: {n_of[u]} ratings, {got[u]} in test, {want[u]} required" for u in wrong[:3])
    why_es, why_en = "", ""
    if all(got[u] == round(fraction * n_of[u]) for u in want) or all(
            got[u] == math.ceil(fraction * n_of[u]) for u in want):
        why_es = (" Redondeas hacia arriba o al más cercano: el número de test de cada usuario es "
                  "int(test_fraction * n_u), truncado.")
        why_en = " You round up or to nearest: each user's test count is int(test_fraction * n_u), truncated."
    elif len(test) == 0:
        why_es = (" Ningún usuario tiene valoraciones en test: cada uno aporta int(test_fraction * n_u), la fracción "
                  "multiplicada por su número de valoraciones n_u (int(test_fraction) sola vale 0).")
        why_en = (" No user has a test rating: each one gives int(test_fraction * n_u), the fraction times their number "
                  "of ratings n_u (int(test_fraction) alone is 0).")
    elif len(test) == int(fraction * len(user)):
        why_es = (" Parece un reparto global (int(test_fraction * N) valoraciones al azar): el reparto es por usuario, "
                  "int(test_fraction * n_u) de cada uno, para que ningún usuario se quede sin datos de entrenamiento.")
        why_en = (" It looks like one global split (int(test_fraction * N) random ratings): the split is per user, "
                  "int(test_fraction * n_u) of each, so that no user is left without training data.")
    return _fail(f"El número de valoraciones de test por usuario no es int(test_fraction * n_u) en {len(wrong)} de "
                 f"{len(want)} usuarios ({examples}).",
                 f"The number of test ratings per user is not int(test_fraction * n_u) for {len(wrong)} of "
                 f"{len(want)} users ({examples_en}).",
                 _msg(why_es.strip(), why_en.strip()) if why_es else None)


def _as_index(value, n: int, name: str) -> tuple[np.ndarray | None, list[Mismatch]]:
    arr = value if isinstance(value, np.ndarray) else np.asarray(value) if isinstance(value, (list, tuple)) else None
    if arr is None or arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        kind = "una máscara booleana" if arr is not None and arr.dtype.kind == "b" else (
            "un array de forma " + str(arr.shape) + f" y tipo {arr.dtype}" if arr is not None else type(value).__name__)
        return None, _fail(f"{name} debe ser un array 1-D de índices enteros (int64) en 0..N-1; es {kind}.",
                           f"{name} must be a 1-D array of integer indices (int64) in 0..N-1; it is {kind}.")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        return None, _fail(f"{name} tiene índices fuera de 0..{n - 1}.", f"{name} has indices outside 0..{n - 1}.")
    if len(np.unique(arr)) != len(arr):
        return None, _fail(f"{name} repite índices: cada valoración va una sola vez.",
                           f"{name} repeats indices: each rating goes once.")
    return arr, []


def _judge_split(value, case: Case) -> list[Mismatch]:
    user, fraction = case.context["user"], case.context["fraction"]
    n = len(user)
    if not (isinstance(value, (tuple, list)) and len(value) == 3
            and all(isinstance(v, (tuple, list)) and len(v) == 2 for v in value)):
        return _fail("split_per_user debe devolver una tupla (train_idx, test_idx).",
                     "split_per_user must return a tuple (train_idx, test_idx).")
    parts = []
    for v in value:
        train, problem = _as_index(v[0], n, "train_idx")
        if problem:
            return problem
        test, problem = _as_index(v[1], n, "test_idx")
        if problem:
            return problem
        parts.append((train, test))
    (train, test), again, other = parts
    leaked = np.intersect1d(train, test)
    if len(leaked):
        users = np.unique(user[leaked])
        return _fail(f"Fuga de test a entrenamiento: {len(leaked)} valoraciones están a la vez en train_idx y en "
                     f"test_idx ({len(users)} usuarios, p. ej. el {int(users[0])}). El modelo vería en el entrenamiento "
                     "lo que luego se evalúa; train_idx son *las demás* valoraciones.",
                     f"Test data leak into training: {len(leaked)} ratings are both in train_idx and test_idx "
                     f"({len(users)} users, e.g. user {int(users[0])}). The model would see during training what is "
                     "evaluated later; train_idx are *the other* ratings.",
                     _msg("Fuga de test a entrenamiento: una valoración va a test_idx o a train_idx, nunca a los dos; "
                          "train_idx son las valoraciones que no elegiste para test.",
                          "Test data leak into training: a rating goes to test_idx or to train_idx, never to both; "
                          "train_idx are the ratings you did not pick for test."))
    if len(train) + len(test) != n:
        return _fail(f"train_idx y test_idx juntos deben cubrir las {n} valoraciones; faltan {n - len(train) - len(test)}.",
                     f"train_idx and test_idx together must cover all {n} ratings; {n - len(train) - len(test)} are missing.")
    counts = _split_counts_message(user, test, fraction)
    if counts:
        return counts
    same = [np.array_equal(np.sort(a), np.sort(b)) for a, b in zip(again, (train, test), strict=True)]
    if not all(same):
        return _fail("Con la misma semilla el reparto debe ser el mismo: usa un generador propio, "
                     "np.random.default_rng(seed).",
                     "With the same seed the split must be the same: use a generator of your own, "
                     "np.random.default_rng(seed).")
    if np.array_equal(np.sort(other[1]), np.sort(test)):
        return _fail("Con otra semilla sale el mismo reparto: las valoraciones de test de cada usuario se eligen al azar "
                     "(con el generador de la semilla), no las primeras o las últimas.",
                     "With another seed the split is the same: each user's test ratings are picked at random (with the "
                     "seed's generator), not the first or the last ones.")
    return []


def _build_split(kind: str):
    def build(rng: np.random.Generator) -> Case:
        if kind == "ratings":
            data = make_ratings(num_users=int(rng.integers(40, 60)), num_items=60, mean_per_user=10, min_per_user=2,
                                seed=int(rng.integers(0, 2**31)))
            user, fraction = data.user, 0.2
        else:  # users with 1 to 16 ratings, interleaved: some get no test rating at all
            counts = rng.integers(1, 17, size=int(rng.integers(12, 20)))
            user, fraction = rng.permutation(np.repeat(np.arange(len(counts)), counts)).astype(np.int64), 0.25
        seed = int(rng.integers(0, 10_000))
        probe = Probe([Call("a", "split_per_user", (user,), {"test_fraction": fraction, "seed": seed}),
                       Call("b", "split_per_user", (user,), {"test_fraction": fraction, "seed": seed}),
                       Call("c", "split_per_user", (user,), {"test_fraction": fraction, "seed": seed + 1})],
                      outputs=(Ref("a"), Ref("b"), Ref("c")))
        return Case(probe, judge=_judge_split, context={"user": user, "fraction": fraction})
    return build


# -- q2 · the model --------------------------------------------------------------------------

def _sizes(rng: np.random.Generator) -> tuple[int, int, int]:
    U, n_items = (int(v) for v in rng.choice(np.arange(5, 13), size=2, replace=False))  # U != I: swapped tables cannot load
    return U, n_items, int(rng.integers(2, 6))


def random_state(rng: np.random.Generator, U: int, n_items: int, k: int) -> dict[str, np.ndarray]:
    """Tables in the reference's names, with biases far from zero (so that a missing one shows)."""
    return {"P.weight": rng.normal(0, 0.5, (U, k)), "Q.weight": rng.normal(0, 0.5, (n_items, k)),
            "user_bias.weight": rng.normal(0, 0.5, (U, 1)), "item_bias.weight": rng.normal(0, 0.5, (n_items, 1))}


def _model(cls, state, mu):
    (U, k), (n_items, _) = state["P.weight"].shape, state["Q.weight"].shape
    model = cls(U, n_items, k, mu).double()
    model.load_state_dict({name: _t(v) for name, v in state.items()})
    return model


def _mf_steps(state, mu) -> list[Call]:
    (U, k), (n_items, _) = state["P.weight"].shape, state["Q.weight"].shape
    return [Call("m", "MatrixFactorization", (U, n_items, k), {"mu": mu}), Call("load", "@load_state_dict", (Ref("m"), state))]


NO_BIAS = _msg("Faltan los sesgos: la predicción es mu + b_u + b_i + p_u · q_i, con b_u = user_bias(u) y "
               "b_i = item_bias(i).", "The biases are missing: the prediction is mu + b_u + b_i + p_u · q_i, with "
               "b_u = user_bias(u) and b_i = item_bias(i).")
NO_MU = _msg("Falta la media global mu (self.mu) en la predicción.", "The global mean mu (self.mu) is missing from the prediction.")
NOT_SQUEEZED = _msg("user_bias(u) e item_bias(i) tienen forma (B, 1): sumadas a un vector (B,) dan una matriz (B, B) por "
                    "broadcasting. Quita la última dimensión (.squeeze(-1)) antes de sumar.",
                    "user_bias(u) and item_bias(i) have shape (B, 1): added to a (B,) vector they broadcast to a (B, B) "
                    "matrix. Drop the last dimension (.squeeze(-1)) before adding.")


NO_USER_BIAS = _msg("Falta el sesgo del usuario: la predicción es mu + b_u + b_i + p_u · q_i, con b_u = "
                    "user_bias(u).squeeze(-1).", "The user's bias is missing: the prediction is mu + b_u + b_i + p_u · q_i, "
                    "with b_u = user_bias(u).squeeze(-1).")
NO_ITEM_BIAS = _msg("Falta el sesgo del ítem: la predicción es mu + b_u + b_i + p_u · q_i, con b_i = "
                    "item_bias(i).squeeze(-1).", "The item's bias is missing: the prediction is mu + b_u + b_i + p_u · q_i, "
                    "with b_i = item_bias(i).squeeze(-1).")
USER_INDEX = _msg("Sumas el índice del usuario, no su sesgo: b_u es la entrada de la tabla user_bias de ese usuario, "
                  "self.user_bias(user).squeeze(-1).",
                  "You add the user's index, not their bias: b_u is that user's entry of the user_bias table, "
                  "self.user_bias(user).squeeze(-1).")
ITEM_INDEX = _msg("Sumas el índice del ítem, no su sesgo: b_i es la entrada de la tabla item_bias de ese ítem, "
                  "self.item_bias(item).squeeze(-1).",
                  "You add the item's index, not its bias: b_i is that item's entry of the item_bias table, "
                  "self.item_bias(item).squeeze(-1).")
DOT_MEAN = _msg("p_u · q_i es la *suma* de los k productos p_uf · q_if, no su media: (self.P(user) * "
                "self.Q(item)).sum(dim=-1).",
                "p_u · q_i is the *sum* of the k products p_uf · q_if, not their mean: (self.P(user) * "
                "self.Q(item)).sum(dim=-1).")


def build_mf_parameters(rng: np.random.Generator) -> Case:
    U, n_items, k = _sizes(rng)
    state, mu = random_state(rng, U, n_items, k), float(rng.uniform(3.0, 4.0))
    probe = Probe([*_mf_steps(state, mu), Call("sd", "@state_dict", (Ref("m"),)), Call("mu", "@getattr", (Ref("m"), "mu"))],
                  outputs=(Ref("sd"), Ref("mu")))
    return Case(probe, (state, mu), MODULE, output_names=_names("state_dict", "mu"))


INIT = {"U": 300, "I": 400, "k": 8, "rtol_std": 0.15}  # 2400+ values per table: the sample std is within ~3%


def _judge_init(value, case: Case) -> list[Mismatch]:
    U, n_items, k, mu = case.context["U"], case.context["I"], case.context["k"], case.context["mu"]
    shapes = {"P.weight": (U, k), "Q.weight": (n_items, k), "user_bias.weight": (U, 1), "item_bias.weight": (n_items, 1)}
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], dict)):
        return _fail("No pude leer el state_dict del modelo.", "Could not read the model's state_dict.")
    state, got_mu = value
    if {name: getattr(v, "shape", None) for name, v in state.items()} != shapes:
        got = {name: getattr(v, "shape", None) for name, v in state.items()}
        return _fail(f"MatrixFactorization({U}, {n_items}, {k}) debe tener exactamente {shapes} en su state_dict; tiene {got}.",
                     f"MatrixFactorization({U}, {n_items}, {k}) must hold exactly {shapes} in its state_dict; it holds {got}.")
    for name in ("P.weight", "Q.weight"):
        w = np.asarray(state[name], dtype=np.float64)
        std, mean = float(w.std()), float(w.mean())
        if abs(std - ref.INIT_STD) > INIT["rtol_std"] * ref.INIT_STD or abs(mean) > 0.15 * ref.INIT_STD:
            why_es = why_en = ""
            if abs(std - 1.0) < 0.15:
                why_es = " Es la inicialización por defecto de nn.Embedding, N(0, 1): demasiado grande para los factores."
                why_en = " That is nn.Embedding's default initialisation, N(0, 1): too large for the factors."
            return _fail(f"{name} tiene media {mean:.3g} y desviación típica {std:.3g}; se pide N(0, 0.1²): "
                         "nn.init.normal_(..., std=0.1).",
                         f"{name} has mean {mean:.3g} and standard deviation {std:.3g}; N(0, 0.1²) is required: "
                         "nn.init.normal_(..., std=0.1).",
                         _msg(why_es.strip(), why_en.strip()) if why_es else
                         _msg("Inicializa los factores con nn.init.normal_(tabla.weight, std=0.1).",
                              "Initialise the factors with nn.init.normal_(table.weight, std=0.1)."))
    for name in ("user_bias.weight", "item_bias.weight"):
        if np.any(np.asarray(state[name]) != 0):
            return _fail(f"Los sesgos empiezan en cero: {name} no lo es (nn.init.zeros_).",
                         f"The biases start at zero: {name} does not (nn.init.zeros_).")
    try:
        mu_ok = abs(float(np.asarray(got_mu, dtype=np.float64).reshape(-1)[0]) - mu) < 1e-6
    except Exception:
        mu_ok = False
    if not mu_ok:
        return _fail(f"model.mu debe ser la media global que recibe el constructor ({mu}); es {got_mu!r}.",
                     f"model.mu must be the global mean given to the constructor ({mu}); it is {got_mu!r}.")
    return []


def build_mf_init(rng: np.random.Generator) -> Case:
    mu = float(rng.uniform(3.0, 4.0))
    probe = Probe([Call("m", "MatrixFactorization", (INIT["U"], INIT["I"], INIT["k"]), {"mu": mu}),
                   Call("sd", "@state_dict", (Ref("m"),)), Call("mu", "@getattr", (Ref("m"), "mu"))],
                  outputs=(Ref("sd"), Ref("mu")))
    return Case(probe, judge=_judge_init, context={**INIT, "mu": mu})


def _forward_answer(cls, state, mu, user, item, upstream):
    model = _model(cls, state, mu)
    out = model(_t(user), _t(item))
    if out.shape != upstream.shape:  # a broadcasting bug: its forward alone is the pattern
        return _np(out), None
    out.backward(_t(upstream))
    return _np(out), {name: _np(p.grad) for name, p in model.named_parameters()}


def build_mf_forward(rng: np.random.Generator) -> Case:
    U, n_items, k = _sizes(rng)
    state, mu = random_state(rng, U, n_items, k), float(rng.uniform(3.0, 4.0))
    B = int(rng.integers(10, 17))
    user, item = rng.integers(0, U, B), rng.integers(0, n_items, B)  # repeats: a row's gradient adds up
    upstream = rng.normal(size=B)
    # backward of sum(out * upstream): the same gradients as out.backward(upstream), and a (B, B) answer (biases not
    # squeezed) still gets compared (and recognised) instead of failing in backward
    probe = Probe([*_mf_steps(state, mu), Call("u", "@tensor", (user,)), Call("i", "@tensor", (item,)),
                   Call("out", "@call", (Ref("m"), Ref("u"), Ref("i"))), Call("w", "@tensor", (upstream,)),
                   Call("prod", "@method", (Ref("out"), "mul", Ref("w"))), Call("s", "@method", (Ref("prod"), "sum")),
                   Call("back", "@backward", (Ref("s"),)), Call("gp", "@param_grads", (Ref("m"),))],
                  outputs=(Ref("out"), Ref("gp")))
    patterns = [BugPattern("matches", msg, output="[0]", data=_forward_answer(cls, state, mu, user, item, upstream)[0])
                for cls, msg in ((bug.MFNoBias, NO_BIAS), (bug.MFNoMu, NO_MU), (bug.MFBiasNotSqueezed, NOT_SQUEEZED),
                                 (bug.MFNoUserBias, NO_USER_BIAS), (bug.MFNoItemBias, NO_ITEM_BIAS),
                                 (bug.MFUserIndexAsBias, USER_INDEX), (bug.MFItemIndexAsBias, ITEM_INDEX),
                                 (bug.MFDotMean, DOT_MEAN))]
    return Case(probe, _forward_answer(ref.MatrixFactorization, state, mu, user, item, upstream), MODULE,
                output_names=_names("forward(user, item)", "grad"), patterns=patterns)


def _predict_all_answer(cls, state, mu, upstream):
    model = _model(cls, state, mu)
    out = model.predict_all()
    out.backward(_t(upstream))
    return _np(out), {name: _np(p.grad) for name, p in model.named_parameters()}


def build_mf_predict_all(rng: np.random.Generator) -> Case:
    U, n_items, k = _sizes(rng)
    state, mu = random_state(rng, U, n_items, k), float(rng.uniform(3.0, 4.0))
    upstream = rng.normal(size=(U, n_items))
    probe = Probe([*_mf_steps(state, mu), Call("out", "@method", (Ref("m"), "predict_all")),
                   Call("back", "@backward", (Ref("out"), upstream)), Call("gp", "@param_grads", (Ref("m"),))],
                  outputs=(Ref("out"), Ref("gp")))
    patterns = [BugPattern("matches", msg, output="[0]", data=_predict_all_answer(cls, state, mu, upstream)[0])
                for cls, msg in ((bug.MFNoBias, NO_BIAS), (bug.MFNoMu, NO_MU))]
    return Case(probe, _predict_all_answer(ref.MatrixFactorization, state, mu, upstream), MODULE,
                output_names=_names("predict_all()", "grad"), patterns=patterns)


# -- q3 · losses --------------------------------------------------------------------------------

def _dense(rng: np.random.Generator, U: int, n_items: int, *, empty_rows: bool = False):
    """pred (U, I) float64; R (U, I) float32 with ratings where mask is True and 0 elsewhere; mask (U, I) bool."""
    mask = rng.random((U, n_items)) < rng.uniform(0.2, 0.5)
    if empty_rows:  # whole users and items without a rating
        mask[rng.choice(U, size=2, replace=False)] = False
        mask[:, rng.choice(n_items, size=2, replace=False)] = False
    mask[rng.integers(0, U), rng.integers(0, n_items)] = True  # never empty
    R = np.where(mask, rng.integers(2, 11, size=(U, n_items)) / 2, 0.0).astype(np.float32)
    pred = rng.normal(3.5, 1.0, (U, n_items))
    return pred, R, mask


def _mse_answer(fn, pred, R, mask):
    p = _t(pred, True)
    loss = fn(p, _t(R), _t(mask))
    loss.backward()
    return loss.item(), _np(p.grad)


ALL_ENTRIES = _msg("Promedias sobre *todas* las celdas, también las no valoradas (donde R vale 0): la pérdida solo "
                   "cuenta las observadas, (pred - R)[mask].",
                   "You average over *every* entry, the unrated ones too (where R is 0): the loss only counts the "
                   "observed ones, (pred - R)[mask].")
OVER_ALL_CELLS = _msg("Divides por el número de celdas (U · I) en vez de por el de valoraciones observadas (mask.sum()).",
                      "You divide by the number of entries (U · I) instead of the number of observed ratings (mask.sum()).")


def _build_masked_mse(empty_rows: bool, huge: bool):
    def build(rng: np.random.Generator) -> Case:
        U, n_items = (int(v) for v in rng.integers(5, 12, size=2))
        pred, R, mask = _dense(rng, U, n_items, empty_rows=empty_rows)
        if huge:  # predictions for unrated entries are whatever the model says: here, huge
            pred = np.where(mask, pred, rng.normal(0, 1e3, (U, n_items)))
        n_obs = int(mask.sum())
        probe = Probe([Call("p", "@tensor", (pred,), {"requires_grad": True}), Call("R", "@tensor", (R,)),
                       Call("M", "@tensor", (mask,)), Call("loss", "masked_mse", (Ref("p"), Ref("R"), Ref("M"))),
                       Call("back", "@backward", (Ref("loss"),)), Call("g", "@grad", (Ref("p"),))],
                      outputs=(Ref("loss"), Ref("g")))
        patterns = [
            BugPattern("matches", ALL_ENTRIES, data=_mse_answer(bug.masked_mse_all_entries, pred, R, mask)[0], output="[0]"),
            BugPattern("matches", OVER_ALL_CELLS, data=_mse_answer(bug.masked_mse_over_all_cells, pred, R, mask)[0],
                       output="[0]"),
            BugPattern("scaled", _msg(f"La pérdida es {n_obs} veces la esperada: es la *media* sobre las valoraciones "
                                      "observadas, no la suma.",
                                      f"The loss is {n_obs} times the expected one: it is the *mean* over the observed "
                                      "ratings, not the sum."), data=float(n_obs), output="[0]"),
        ]
        return Case(probe, _mse_answer(ref.masked_mse, pred, R, mask), EXACT,
                    output_names=_names("loss", "pred.grad"), patterns=patterns)
    return build


def _l2_answer(fn, state, mu, wd):
    model = _model(ref.MatrixFactorization, state, mu)
    penalty = fn(model, wd)
    penalty.backward()
    return penalty.item(), {name: _np(p.grad) for name, p in model.named_parameters()}


L2_NO_BIAS = _msg("Regularizas P y Q pero no los sesgos: Adam(weight_decay=...) encoge *todos* los parámetros, así que la "
                  "penalización equivalente suma ||θ||² de las cuatro tablas (model.parameters()).",
                  "You regularise P and Q but not the biases: Adam(weight_decay=...) shrinks *every* parameter, so the "
                  "matching penalty adds ||θ||² over all four tables (model.parameters()).")


def build_l2_penalty(rng: np.random.Generator) -> Case:
    U, n_items, k = _sizes(rng)
    state, mu, wd = random_state(rng, U, n_items, k), float(rng.uniform(3.0, 4.0)), float(rng.uniform(0.01, 0.5))
    probe = Probe([*_mf_steps(state, mu), Call("pen", "l2_penalty", (Ref("m"), wd)), Call("back", "@backward", (Ref("pen"),)),
                   Call("gp", "@param_grads", (Ref("m"),))], outputs=(Ref("pen"), Ref("gp")))
    patterns = [
        BugPattern("matches", L2_NO_BIAS, data=_l2_answer(bug.l2_penalty_no_biases, state, mu, wd)[0], output="[0]"),
        BugPattern("scaled", _msg("La penalización es el doble de la esperada: falta el 1/2 (weight_decay / 2 · Σ ||θ||²), "
                                  "que hace que su gradiente sea weight_decay · θ, lo que suma Adam.",
                                  "The penalty is twice the expected one: the 1/2 is missing (weight_decay / 2 · Σ ||θ||²), "
                                  "which makes its gradient weight_decay · θ, what Adam adds."), data=2.0, output="[0]"),
        BugPattern("matches", _msg("Sumas normas, no normas al cuadrado: ||θ||² = (θ ** 2).sum().",
                                   "You add norms, not squared norms: ||θ||² = (θ ** 2).sum()."),
                   data=_l2_answer(bug.l2_penalty_norms, state, mu, wd)[0], output="[0]"),
    ]
    return Case(probe, _l2_answer(ref.l2_penalty, state, mu, wd), EXACT, output_names=_names("penalty", "grad"),
                patterns=patterns)


def build_rmse(rng: np.random.Generator) -> Case:
    U, n_items = (int(v) for v in rng.integers(5, 12, size=2))
    pred, R, mask = _dense(rng, U, n_items)
    t = (_t(pred), _t(R), _t(mask))
    probe = Probe([Call("p", "@tensor", (pred,)), Call("R", "@tensor", (R,)), Call("M", "@tensor", (mask,)),
                   Call("out", "rmse", (Ref("p"), Ref("R"), Ref("M")))], outputs=Ref("out"))
    return Case(probe, ref.rmse(*t), EXACT, output_names={"": "rmse"}, patterns=[
        BugPattern("matches", _msg("Falta la raíz cuadrada: eso es el MSE.", "The square root is missing: that is the MSE."),
                   data=bug.rmse_no_sqrt(*t)),
        BugPattern("matches", ALL_ENTRIES, data=bug.rmse_all_entries(*t))])


# -- q4 · training -----------------------------------------------------------------------------

def _train_answer(fn, state, mu, R, mask, **kwargs):
    model = _model(ref.MatrixFactorization, state, mu)
    history = fn(model, _t(R), _t(mask), **kwargs)
    return [float(h) for h in history], ref.state_arrays(model)


NO_DECAY = _msg("Los pesos no se encogen como deberían: crea el optimizador con "
                "torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay).",
                "The weights do not shrink as they should: build the optimizer as "
                "torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay).")
NO_ZERO_GRAD = _msg("Los gradientes se acumulan de un paso a otro: llama a optimizer.zero_grad() antes de loss.backward().",
                    "The gradients pile up from one step to the next: call optimizer.zero_grad() before loss.backward().")
NO_UPDATE = _msg("Los pesos no cambiaron: ¿falta loss.backward() u optimizer.step() en cada paso?",
                 "The weights did not change: is loss.backward() or optimizer.step() missing from each step?")
TRAIN_ALL_ENTRIES = _msg("La pérdida del entrenamiento cuenta las celdas no valoradas (R = 0): usa masked_mse(pred, R, mask).",
                         "The training loss counts the unrated entries (R = 0): use masked_mse(pred, R, mask).")


def build_train_steps(rng: np.random.Generator) -> Case:
    U, n_items = (int(v) for v in rng.choice(np.arange(6, 11), size=2, replace=False))
    k = 3
    state = random_state(rng, U, n_items, k)
    _, R, mask = _dense(rng, U, n_items)
    mu = float(R[mask].mean())
    kwargs = {"steps": 6, "lr": float(rng.uniform(0.02, 0.05)), "weight_decay": float(rng.uniform(0.1, 0.3))}
    probe = Probe([*_mf_steps(state, mu), Call("dev", "@device"), Call("R", "@tensor", (R,)), Call("M", "@tensor", (mask,)),
                   Call("hist", "train_mf", (Ref("m"), Ref("R"), Ref("M")), {**kwargs, "device": Ref("dev")}),
                   Call("sd", "@state_dict", (Ref("m"),))], outputs=(Ref("hist"), Ref("sd")))
    patterns = [BugPattern("unchanged", NO_UPDATE, data=state, output="[1]")]
    for fn, message in ((bug.train_mf_no_weight_decay, NO_DECAY), (bug.train_mf_no_zero_grad, NO_ZERO_GRAD),
                        (bug.train_mf_all_entries, TRAIN_ALL_ENTRIES)):
        patterns.append(BugPattern("matches", message, data=_train_answer(fn, state, mu, R, mask, **kwargs)[1], output="[1]"))
    return Case(probe, _train_answer(ref.train_mf, state, mu, R, mask, **kwargs), TRAIN,
                output_names=_names("historial", "state_dict"), patterns=patterns)


def _judge_target(value, case: Case) -> list[Mismatch]:
    ctx = case.context
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[1], dict)):
        return _fail("No pude leer el resultado de train_mf.", "Could not read train_mf's result.")
    history, state = value
    hist = np.asarray(history, dtype=float) if isinstance(history, (list, tuple, np.ndarray)) else np.array([])
    steps = ctx["steps"]
    if hist.ndim != 1 or len(hist) != steps or not np.all(np.isfinite(hist)):
        return _fail(f"train_mf debe devolver una lista con la pérdida (finita) de cada uno de los {steps} pasos; "
                     f"devolvió {hist.size} valores.",
                     f"train_mf must return a list with the (finite) loss of each of the {steps} steps; "
                     f"it returned {hist.size} values.")
    try:
        model = ref.mf_with_state(state, ctx["mu"])
    except Exception as exc:
        return _fail(f"No pude cargar los pesos entrenados en el modelo de referencia: {str(exc)[:300]}",
                     f"Could not load the trained weights into the reference model: {str(exc)[:300]}")
    with torch.no_grad():
        pred = model.predict_all()
    if not torch.isfinite(pred).all():
        return _fail("Tras entrenar hay predicciones no finitas (NaN/inf): el entrenamiento divergió.",
                     "After training some predictions are not finite (NaN/inf): training diverged.")
    got = ref.rmse(pred, ctx["R_test"], ctx["mask_test"])
    need = ctx["reference_rmse"] + TARGET["margin"]
    if got > need:
        return _fail(f"Tras {steps} pasos, tu modelo tiene un RMSE de {got:.3f} en las valoraciones de test; la referencia, "
                     f"con los mismos datos e hiperparámetros, {ctx['reference_rmse']:.3f} (se pide como mucho {need:.3f}; "
                     f"predecir siempre mu da {ctx['baseline_rmse']:.3f}). Revisa la inicialización (N(0, 0.1²) y sesgos "
                     "a cero), la pérdida (solo las celdas observadas) y el optimizador (Adam con weight_decay).",
                     f"After {steps} steps your model has a test RMSE of {got:.3f}; the reference, with the same data and "
                     f"hyperparameters, {ctx['reference_rmse']:.3f} (at most {need:.3f} is required; always predicting "
                     f"mu gives {ctx['baseline_rmse']:.3f}). Check the initialisation (N(0, 0.1²), biases at zero), the "
                     "loss (observed entries only) and the optimizer (Adam with weight_decay).",
                     _msg("Un RMSE alto tras entrenar suele venir de la inicialización (N(0, 1) en vez de N(0, 0.1²)), "
                          "de una pérdida sobre celdas no observadas o de olvidar weight_decay o zero_grad.",
                          "A high RMSE after training usually comes from the initialisation (N(0, 1) instead of "
                          "N(0, 0.1²)), a loss over unobserved entries, or a missing weight_decay or zero_grad."))
    return []


def build_train_target(rng: np.random.Generator) -> Case:
    data = make_ratings(seed=int(rng.integers(0, 2**31)))
    train_idx, test_idx = ref.split_per_user(data.user, TARGET["test_fraction"], seed=int(rng.integers(0, 10_000)))
    U, n_items = data.num_users, data.num_items
    R, mask = ref.ratings_matrix(data.user[train_idx], data.item[train_idx], data.rating[train_idx], U, n_items)
    R_test, mask_test = ref.ratings_matrix(data.user[test_idx], data.item[test_idx], data.rating[test_idx], U, n_items)
    mu = float(data.rating[train_idx].mean())
    kwargs = {k: TARGET[k] for k in ("steps", "lr", "weight_decay")}
    model = ref.MatrixFactorization(U, n_items, TARGET["num_factors"], mu)  # float32, as a student's
    ref.train_mf(model, R, mask, **kwargs)
    with torch.no_grad():
        reference_rmse = ref.rmse(model.predict_all().double(), R_test.double(), mask_test)
    baseline = ref.rmse(torch.full((U, n_items), mu, dtype=torch.float64), R_test.double(), mask_test)
    probe = Probe([Call("m", "MatrixFactorization", (U, n_items, TARGET["num_factors"]), {"mu": mu}), Call("dev", "@device"),
                   Call("R", "@tensor", (_np(R),)), Call("M", "@tensor", (_np(mask),)),
                   Call("hist", "train_mf", (Ref("m"), Ref("R"), Ref("M")), {**kwargs, "device": Ref("dev")}),
                   Call("sd", "@state_dict", (Ref("m"),))], outputs=(Ref("hist"), Ref("sd")))
    return Case(probe, judge=_judge_target, context={
        "mu": mu, "steps": TARGET["steps"], "R_test": R_test.double(), "mask_test": mask_test,
        "reference_rmse": reference_rmse, "baseline_rmse": baseline})


# -- q5 · BPR ------------------------------------------------------------------------------------

def _bpr_answer(fn, pos, neg):
    p, n = _t(pos, True), _t(neg, True)
    loss = fn(p, n)
    loss.backward()
    return loss.item(), _np(p.grad), _np(n.grad)


def _build_bpr(scale: float):
    def build(rng: np.random.Generator) -> Case:
        B = int(rng.integers(5, 14))
        pos, neg = rng.normal(0, scale, B), rng.normal(0, scale, B)
        if scale > 100:  # at least one pair very much the wrong way round: sigmoid underflows to 0
            pos[0], neg[0] = -scale, scale
        probe = Probe([Call("p", "@tensor", (pos,), {"requires_grad": True}), Call("n", "@tensor", (neg,), {"requires_grad": True}),
                       Call("loss", "bpr_loss", (Ref("p"), Ref("n"))), Call("back", "@backward", (Ref("loss"),)),
                       Call("gp", "@grad", (Ref("p"),)), Call("gn", "@grad", (Ref("n"),))],
                      outputs=(Ref("loss"), Ref("gp"), Ref("gn")))
        patterns = [
            BugPattern("nonfinite", _msg("NaN/inf con diferencias grandes: log(sigmoid(x)) da log(0) cuando sigmoid "
                                         "se anula; usa F.logsigmoid(pos - neg) (o -F.softplus(neg - pos)).",
                                         "NaN/inf with large differences: log(sigmoid(x)) gives log(0) when sigmoid "
                                         "underflows; use F.logsigmoid(pos - neg) (or -F.softplus(neg - pos)).")),
            BugPattern("matches", _msg("El signo de la diferencia está al revés: BPR quiere que el positivo puntúe más, "
                                       "-log σ(pos - neg).",
                                       "The difference has the wrong sign: BPR wants the positive to score higher, "
                                       "-log σ(pos - neg)."), data=_bpr_answer(bug.bpr_loss_swapped, pos, neg)),
            BugPattern("scaled", _msg(f"La pérdida es {B} veces la esperada: es la *media* sobre el lote, no la suma.",
                                      f"The loss is {B} times the expected one: it is the *mean* over the batch, not "
                                      "the sum."), data=float(B), output="[0]"),
        ]
        return Case(probe, _bpr_answer(ref.bpr_loss, pos, neg), EXACT,
                    output_names=_names("loss", "pos_scores.grad", "neg_scores.grad"), patterns=patterns)
    return build


NEG = {"U": 5, "I": 24, "draws": 800, "p_value": 1e-6}  # 800 draws over ~15 candidates: ~50 per item and user


def _chi2_sf(x: float, dof: int) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty: plenty for a 1e-6 threshold)."""
    z = ((x / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


def _judge_negatives(value, case: Case) -> list[Mismatch]:
    users, pos_mask = case.context["users"], case.context["pos_mask"]
    if not (isinstance(value, tuple) and len(value) == 2):
        return _fail("No pude leer el resultado de sample_negatives.", "Could not read sample_negatives' result.")
    first, second = value
    for got in (first, second):
        if not isinstance(got, np.ndarray) or got.shape != users.shape or got.dtype.kind not in "iu":
            desc = f"forma {got.shape} y tipo {got.dtype}" if isinstance(got, np.ndarray) else type(got).__name__
            return _fail(f"sample_negatives debe devolver un tensor de enteros (int64) de forma {users.shape}, uno por "
                         f"usuario del lote; devolvió {desc}.",
                         f"sample_negatives must return an integer (int64) tensor of shape {users.shape}, one per user "
                         f"of the batch; it returned {desc}.")
        if got.min() < 0 or got.max() >= pos_mask.shape[1]:
            return _fail(f"Hay ítems fuera de 0..{pos_mask.shape[1] - 1}.", f"Some items are outside 0..{pos_mask.shape[1] - 1}.")
        hits = pos_mask[users, got]
        if hits.any():
            return _fail(f"{int(hits.sum())} de {len(got)} negativos son ítems *positivos* de su usuario (pos_mask[u, j] "
                         f"es True): muestrea solo entre los ítems sin interacción, ~pos_mask[u].",
                         f"{int(hits.sum())} of {len(got)} negatives are *positive* items of their user (pos_mask[u, j] "
                         "is True): sample only among the items without an interaction, ~pos_mask[u].",
                         _msg("Un negativo nunca puede ser uno de los positivos del usuario: muestrea entre los ítems "
                              "con ~pos_mask[u] (p. ej. torch.multinomial sobre esa máscara).",
                              "A negative can never be one of the user's positives: sample among the items with "
                              "~pos_mask[u] (e.g. torch.multinomial over that mask)."))
    if np.array_equal(first, second):
        return _fail("Dos llamadas seguidas devuelven los mismos negativos: deben ser aleatorios "
                     "(torch.randint, torch.multinomial...).",
                     "Two calls in a row return the same negatives: they must be random (torch.randint, torch.multinomial...).")
    for u in np.unique(users):
        candidates = np.flatnonzero(~pos_mask[u])
        drawn = np.concatenate([first[users == u], second[users == u]])
        counts = np.array([(drawn == j).sum() for j in candidates], dtype=float)
        expected = len(drawn) / len(candidates)
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        if _chi2_sf(chi2, len(candidates) - 1) < NEG["p_value"]:
            return _fail(f"Los negativos del usuario {int(u)} no son uniformes entre sus {len(candidates)} candidatos "
                         f"(frecuencias de {int(counts.min())} a {int(counts.max())} en {len(drawn)} muestras, se esperaban "
                         f"unas {expected:.0f} de cada uno): cada ítem sin interacción debe tener la misma probabilidad.",
                         f"User {int(u)}'s negatives are not uniform over their {len(candidates)} candidates (counts from "
                         f"{int(counts.min())} to {int(counts.max())} in {len(drawn)} draws, about {expected:.0f} each "
                         "expected): every item without an interaction must be equally likely.")
    return []


def build_sample_negatives(rng: np.random.Generator) -> Case:
    U, n_items = NEG["U"], NEG["I"]
    pos_mask = rng.random((U, n_items)) < rng.uniform(0.2, 0.5, size=(U, 1))
    pos_mask[np.arange(U), rng.integers(0, n_items, U)] = True  # every user has a positive ...
    pos_mask[np.arange(U), rng.integers(0, n_items, U)] = False  # ... and at least one candidate
    users = rng.permutation(np.repeat(np.arange(U), NEG["draws"] // 2)).astype(np.int64)
    probe = Probe([Call("u", "@tensor", (users,)), Call("pm", "@tensor", (pos_mask,)),
                   Call("a", "sample_negatives", (Ref("u"), Ref("pm"))), Call("b", "sample_negatives", (Ref("u"), Ref("pm")))],
                  outputs=(Ref("a"), Ref("b")))
    return Case(probe, judge=_judge_negatives, context={"users": users, "pos_mask": pos_mask})


# -- q6 · ranking metrics --------------------------------------------------------------------------

def _ranking_inputs(rng: np.random.Generator, *, ties: bool, exclude: bool):
    """Scores (U, I), one test item per user, an optional exclude mask, and k: the test items' ranks
    include 1, k and k + 1, so that an off-by-one in k or in the rank always shows."""
    U, n_items, k = int(rng.integers(24, 36)), int(rng.integers(12, 18)), int(rng.integers(3, 7))
    if ties:
        scores = rng.integers(0, 8, size=(U, n_items)) / 4.0  # a coarse grid: many ties, exact in float32
    else:
        scores = np.stack([rng.permutation(n_items) for _ in range(U)]) / 4.0 + rng.integers(-3, 4, size=(U, 1))
    excl = (rng.random((U, n_items)) < 0.25) if exclude else np.zeros((U, n_items), dtype=bool)
    test = np.empty(U, dtype=np.int64)
    wanted = rng.permutation([1, k, k + 1, *rng.integers(1, n_items // 2, size=U - 3)])
    for u in range(U):
        candidates = np.flatnonzero(~excl[u]) if exclude else np.arange(n_items)
        order = candidates[np.argsort(-scores[u, candidates], kind="stable")]
        test[u] = order[min(wanted[u], len(order)) - 1]
        excl[u, test[u]] = False  # the test item is never excluded
    return scores, test, (excl if exclude else None), k


def _metric_answer(fn, scores, test, excl, k):
    return fn(_t(scores), _t(test), k, None if excl is None else _t(excl))


OFF_BY_ONE = _msg("Te sale un error de uno en k: el ítem de test cuenta si su posición (empezando en 1) es <= k; "
                  "con rank < k se pierde el que queda justo en la posición k.",
                  "Off by one in k: the test item counts when its rank (starting at 1) is <= k; with rank < k the one "
                  "right at position k is lost.")
OPTIMISTIC = _msg("Los empates cuentan en contra del modelo: la posición del ítem de test es el número de candidatos con "
                  "puntuación >= la suya (él incluido), no 1 + los que puntúan estrictamente más. (torch.topk ordena los "
                  "empates a su manera: cuenta, no ordenes.)",
                  "Ties count against the model: the test item's rank is the number of candidates scoring >= its score "
                  "(itself included), not 1 + those scoring strictly higher. (torch.topk breaks ties its own way: count, "
                  "do not sort.)")
NO_EXCLUDE = _msg("Los ítems de exclude (los del entrenamiento del usuario) no compiten con el de test: quítalos del "
                  "recuento (& ~exclude).",
                  "The items in exclude (the user's training items) do not compete with the test item: leave them out "
                  "of the count (& ~exclude).")
PER_USER_SUM = _msg("Devuelves la suma sobre usuarios: la métrica es la *media* sobre usuarios.",
                    "You return the sum over users: the metric is the *mean* over users.")
STRICTLY_AHEAD = _msg("Tu posición no cuenta al propio ítem de test ni a sus empates: es el número de candidatos con "
                      "puntuación >= la suya (él incluido, así el primero tiene la posición 1), no solo los que puntúan "
                      "estrictamente más.",
                      "Your rank counts neither the test item itself nor its ties: it is the number of candidates "
                      "scoring >= its score (itself included, so the first one is at rank 1), not only those scoring "
                      "strictly higher.")
OVER_USERS = _msg("La posición se cuenta en la fila de cada usuario: suma las comparaciones sobre los ítems (dim=1), "
                  "no sobre los usuarios (dim=0); rank tiene forma (U,), una por usuario.",
                  "The rank is counted in each user's row: add the comparisons up over the items (dim=1), not over the "
                  "users (dim=0); rank has shape (U,), one per user.")
NDCG_SHIFT = _msg("La ganancia es 1 / log2(rank + 1) con rank empezando en 1 (el primero vale 1); usas log2(rank + 2).",
                  "The gain is 1 / log2(rank + 1) with rank starting at 1 (the first is worth 1); you use log2(rank + 2).")
NDCG_LOG = _msg("NDCG usa log2, no el logaritmo natural: 1 / log2(rank + 1).", "NDCG uses log2, not the natural "
                "logarithm: 1 / log2(rank + 1).")
NDCG_INF = _msg("Infinito en NDCG (o una ganancia de más): con rank empezando en 1 la ganancia es 1 / log2(rank + 1); "
                "1 / log2(rank) divide por cero en la primera posición.",
                "Infinity in NDCG (or too large a gain): with rank starting at 1 the gain is 1 / log2(rank + 1); "
                "1 / log2(rank) divides by zero at the first position.")


def _build_metric(metric: str, *, ties: bool, exclude: bool):
    correct = {"hit": ref.hit_rate_at_k, "ndcg": ref.ndcg_at_k}[metric]
    bugs = {"hit": [(bug.hit_rate_strict, OFF_BY_ONE), (bug.hit_rate_optimistic, OPTIMISTIC),
                    (bug.hit_rate_no_exclude, NO_EXCLUDE), (bug.hit_rate_strictly_ahead, STRICTLY_AHEAD),
                    (bug.hit_rate_over_users, OVER_USERS)],
            "ndcg": [(bug.ndcg_strict, OFF_BY_ONE), (bug.ndcg_shifted, NDCG_SHIFT), (bug.ndcg_natural_log, NDCG_LOG),
                     (bug.ndcg_log_rank, NDCG_INF), (bug.ndcg_optimistic, OPTIMISTIC),
                     (bug.ndcg_no_exclude, NO_EXCLUDE), (bug.ndcg_over_users, OVER_USERS)]}[metric]
    function = {"hit": "hit_rate_at_k", "ndcg": "ndcg_at_k"}[metric]

    def build(rng: np.random.Generator) -> Case:
        while True:  # inputs on which every bug that applies here answers differently
            scores, test, excl, k = _ranking_inputs(rng, ties=ties, exclude=exclude)
            expected = _metric_answer(correct, scores, test, excl, k)
            answers = [(_metric_answer(fn, scores, test, excl, k), message) for fn, message in bugs]
            relevant = [(a, m) for a, m in answers if (ties or m is not OPTIMISTIC) and (exclude or m is not NO_EXCLUDE)]
            finite = [a for a, _ in relevant if math.isfinite(a)]
            distinct = all(abs(a - b) > 1e-3 for i, a in enumerate(finite) for b in finite[:i])  # one hint per answer
            if all(abs(a - expected) > 1e-3 for a, _ in relevant) and distinct:
                break
        steps = [Call("s", "@tensor", (scores,)), Call("t", "@tensor", (test,))]
        args: tuple = (Ref("s"), Ref("t"), k)
        if excl is not None:
            steps.append(Call("e", "@tensor", (excl,)))
            args = (*args, Ref("e"))
        steps.append(Call("out", function, args))
        patterns = [BugPattern("matches", m, data=a) for a, m in relevant if math.isfinite(a)]  # inf: "nonfinite"
        patterns.append(BugPattern("scaled", PER_USER_SUM, data=float(len(test))))
        if metric == "ndcg":
            patterns.append(BugPattern("nonfinite", NDCG_INF))
        return Case(Probe(steps, outputs=Ref("out")), expected, EXACT, output_names={"": f"{function}(k={k})"},
                    patterns=patterns)
    return build


def _check(question: str, name: str, es: str, en: str, build, **kwargs) -> Check:
    return Check(question, name, _msg(es, en), _single_threaded(build), **kwargs)


CHECKS = [
    # q1 · ratings_matrix and split_per_user
    _check("q1", "ratings_matrix", "ratings_matrix: R (U, I) float32 con las valoraciones y mask bool",
           "ratings_matrix: R (U, I) float32 with the ratings and a bool mask", build_ratings_matrix, public=True),
    _check("q1", "split_per_user", "split_per_user con valoraciones sintéticas: int(0.2 · n_u) de cada usuario a test, "
           "sin fugas, reproducible con la semilla", "split_per_user on synthetic ratings: int(0.2 · n_u) of each user to "
           "test, no leak, reproducible with the seed", _build_split("ratings"), weight=2),
    _check("q1", "split_per_user_small", "split_per_user con usuarios de 1 a 16 valoraciones y test_fraction=0.25",
           "split_per_user with users of 1 to 16 ratings and test_fraction=0.25", _build_split("counts")),
    # q2 · MatrixFactorization
    _check("q2", "mf_parameters", "MatrixFactorization: nombres y formas de las tablas (P, Q, user_bias, item_bias) y mu",
           "MatrixFactorization: names and shapes of the tables (P, Q, user_bias, item_bias) and mu", build_mf_parameters),
    _check("q2", "mf_init", "MatrixFactorization: inicialización N(0, 0.1²) de P y Q, sesgos a cero",
           "MatrixFactorization: N(0, 0.1²) initialisation of P and Q, biases at zero", build_mf_init),
    _check("q2", "mf_forward", "forward(user, item) con las tablas de la referencia: predicciones y gradientes de las "
           "cuatro tablas (usuarios e ítems repetidos)", "forward(user, item) with the reference's tables: predictions and "
           "gradients of the four tables (repeated users and items)", build_mf_forward, weight=2, public=True),
    _check("q2", "mf_predict_all", "predict_all(): la matriz (U, I) de predicciones y sus gradientes",
           "predict_all(): the (U, I) matrix of predictions and its gradients", build_mf_predict_all, weight=2),
    # q3 · masked_mse, l2_penalty, rmse
    _check("q3", "masked_mse", "masked_mse: media sobre las celdas observadas y gradiente respecto a pred",
           "masked_mse: mean over the observed entries and gradient w.r.t. pred", _build_masked_mse(False, False),
           weight=2, public=True),
    _check("q3", "masked_mse_unobserved", "masked_mse ignora las celdas no observadas (predicciones enormes, usuarios e "
           "ítems sin valoraciones)", "masked_mse ignores the unobserved entries (huge predictions, users and items "
           "without ratings)", _build_masked_mse(True, True)),
    _check("q3", "l2_penalty", "l2_penalty: weight_decay / 2 · Σ ||θ||² sobre las cuatro tablas, y su gradiente",
           "l2_penalty: weight_decay / 2 · Σ ||θ||² over the four tables, and its gradient", build_l2_penalty, weight=2),
    _check("q3", "rmse", "rmse: raíz del error cuadrático medio sobre las celdas observadas",
           "rmse: root of the mean squared error over the observed entries", build_rmse, public=True),
    # q4 · train_mf
    _check("q4", "train_mf_steps", "train_mf: 6 pasos de Adam con weight decay desde pesos dados: pérdidas y pesos finales",
           "train_mf: 6 Adam steps with weight decay from given weights: losses and final weights", build_train_steps,
           weight=2, public=True),
    _check("q4", "train_mf_target", f"train_mf entrena tu modelo {TARGET['steps']} pasos en datos sintéticos nuevos: RMSE "
           f"de test como mucho el de la referencia + {TARGET['margin']}", f"train_mf trains your model for "
           f"{TARGET['steps']} steps on new synthetic data: test RMSE at most the reference's + {TARGET['margin']}",
           build_train_target, weight=2, timeout_s=30),
    # q5 · BPR
    _check("q5", "bpr_loss", "bpr_loss: media de -log σ(pos - neg) y gradientes", "bpr_loss: mean of -log σ(pos - neg) "
           "and gradients", _build_bpr(2.0), weight=2, public=True),
    _check("q5", "bpr_loss_large", "bpr_loss con diferencias de ~1000: estabilidad numérica",
           "bpr_loss with differences of ~1000: numerical stability", _build_bpr(1000.0)),
    _check("q5", "sample_negatives", "sample_negatives: nunca un positivo del usuario, uniforme entre sus candidatos, "
           "aleatorio", "sample_negatives: never a positive of the user, uniform over their candidates, random",
           build_sample_negatives, weight=2),
    # q6 · hit_rate_at_k and ndcg_at_k
    _check("q6", "hit_rate", "hit_rate_at_k sin empates, con el ítem de test en las posiciones 1, k y k + 1",
           "hit_rate_at_k without ties, with the test item at ranks 1, k and k + 1",
           _build_metric("hit", ties=False, exclude=False), public=True),
    _check("q6", "hit_rate_ties", "hit_rate_at_k con empates (cuentan en contra)", "hit_rate_at_k with ties (they count "
           "against)", _build_metric("hit", ties=True, exclude=False)),
    _check("q6", "hit_rate_exclude", "hit_rate_at_k con exclude (los ítems de entrenamiento no compiten) y empates",
           "hit_rate_at_k with exclude (training items do not compete) and ties",
           _build_metric("hit", ties=True, exclude=True)),
    _check("q6", "ndcg", "ndcg_at_k sin empates", "ndcg_at_k without ties", _build_metric("ndcg", ties=False, exclude=False),
           public=True),
    _check("q6", "ndcg_ties", "ndcg_at_k con empates", "ndcg_at_k with ties", _build_metric("ndcg", ties=True, exclude=False)),
    _check("q6", "ndcg_exclude", "ndcg_at_k con exclude y empates", "ndcg_at_k with exclude and ties",
           _build_metric("ndcg", ties=True, exclude=True)),
]
