"""Tests of 04_rnn (instructor-only): fresh inputs, the reference's answers, known bugs.

Each ``build`` runs in the trusted grader: it draws inputs and weights from
``rng`` (new for every batch), computes the expected answer with
``reference_impl.rnn`` in float64 on the CPU, and lists the bug patterns whose
answers it would recognise (``"raises"`` patterns recognise a bug by the error
it raises). Module checks build the *student's* module in the sandbox, load
the reference's weights by the prescribed parameter names
(``@load_state_dict``) and send back outputs and every gradient; generators
come back as lists (``@list``). Checks marked ``public`` are also released,
built once with a fixed seed, for the students' self-check.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from autograder.checks import BugPattern, Call, Case, Check, Probe, Ref, Tolerance
from autograder.compare import Mismatch
from autograder.data.names import NAMES, make_names_text
from reference_impl import rnn as ref
from reference_impl import rnn_bugs as bug

# float64 everywhere; float32 arithmetic in a student's code passes, every named bug is off by O(1)
# (tests/test_tolerances_rnn.py).
EXACT = Tolerance(rtol=1e-5, atol=1e-6)
COUNT = Tolerance(rtol=0.0, atol=0.0)  # indices, lengths, masks: exact
TRAIN = Tolerance(rtol=1e-4, atol=1e-5)  # a few SGD steps through clipping, float64 against float64

TRAIN_TARGET = {"hidden": 48, "batch_size": 16, "num_steps": 16, "epochs": 10, "lr": 0.5, "momentum": 0.5,
                "theta": 1.0, "train_names": 700, "test_names": 300, "margin": 0.2}
"""The training run of q7: 10 epochs of about 18 batches (SGD with momentum) from the same initial weights as the
reference. The held-out perplexity may exceed the reference's by 20 %: correct loops (float32 or float64, another
loss layout, torch's clipping) land within 5 % of it; a loop without zero_grad lands 40 % or more above it."""


def _msg(es: str, en: str) -> dict[str, str]:
    return {"es": es, "en": en}


def _names(*names: str) -> dict[str, str]:
    return {f"[{i}]": n for i, n in enumerate(names)}


def _fail(es: str, en: str) -> list[Mismatch]:
    return [Mismatch(path="", kind="custom", message=_msg(es, en))]


def _t(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _one_thread(fn):
    """Run ``fn`` with one torch thread: the same work as in the sandbox, and no oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


# -- q1: the vocabulary ------------------------------------------------------------------------

UNKNOWN = ("Ω", "Z", "7", "@")  # never in a names text (lower case, letters and spaces)
TO_TOKENS = [3, 1, 0, 2]  # indices that every vocabulary here has, even a buggy one

VOCAB_SORTED = _msg("Tu vocabulario está en orden alfabético (como la versión más reciente de D2L): aquí el índice 0 es "
                    "\"<unk>\", después van los reservados y después los tokens de más a menos frecuente.",
                    "Your vocabulary is in alphabetical order (as D2L's newest version): here index 0 is \"<unk>\", "
                    "then the reserved tokens, then the tokens from most to least frequent.")
VOCAB_TIES = _msg("A igual frecuencia, los tokens van en el orden en que aparecen por primera vez, no en orden "
                  "alfabético (Counter(...).most_common() o un sorted estable por frecuencia lo hacen).",
                  "Tokens with the same frequency go in the order they first appear, not alphabetically "
                  "(Counter(...).most_common() or a stable sort by frequency does it).")
VOCAB_MIN_FREQ = _msg("min_freq es inclusivo: un token que aparece exactamente min_freq veces entra en el vocabulario "
                      "(se descartan los que aparecen *menos*).",
                      "min_freq is inclusive: a token seen exactly min_freq times is kept (those seen *fewer* times "
                      "are dropped).")
VOCAB_RESERVED = _msg("Faltan los reserved_tokens: van justo después de \"<unk>\", en el orden dado.",
                      "The reserved_tokens are missing: they go right after \"<unk>\", in the given order.")
VOCAB_KEYERROR = _msg("Un token desconocido debe dar 0 (\"<unk>\"), no un error: usa token_to_idx.get(token, 0).",
                      "An unknown token must give 0 (\"<unk>\"), not an error: use token_to_idx.get(token, 0).")


def _vocab_answer(cls, tokens, query, kwargs):
    v = cls(tokens, **kwargs)
    indices = TO_TOKENS
    return {"idx_to_token": list(v.idx_to_token), "len": len(v), "token_to_idx": dict(v.token_to_idx),
            "lookup": v[list(query)], "single": v[query[0]], "unknown": v[UNKNOWN[0]],
            "to_tokens": v.to_tokens(indices), "to_token": v.to_tokens(indices[0])}


def _vocab_case(tokens: list[str], query: list[str], kwargs: dict, bugs: tuple) -> Case:
    expected = _vocab_answer(ref.Vocab, tokens, query, kwargs)
    indices = TO_TOKENS
    steps = [Call("v", "Vocab", (tokens,), kwargs),
             Call("itos", "@getattr", (Ref("v"), "idx_to_token")),
             Call("n", "@method", (Ref("v"), "__len__")),
             Call("stoi", "@getattr", (Ref("v"), "token_to_idx")),
             Call("lookup", "@method", (Ref("v"), "__getitem__", list(query))),
             Call("single", "@method", (Ref("v"), "__getitem__", query[0])),
             Call("unknown", "@method", (Ref("v"), "__getitem__", UNKNOWN[0])),
             Call("back", "@method", (Ref("v"), "to_tokens", indices)),
             Call("one", "@method", (Ref("v"), "to_tokens", indices[0]))]
    outputs = {"idx_to_token": Ref("itos"), "len": Ref("n"), "token_to_idx": Ref("stoi"), "lookup": Ref("lookup"),
               "single": Ref("single"), "unknown": Ref("unknown"), "to_tokens": Ref("back"), "to_token": Ref("one")}
    patterns = [BugPattern("raises", VOCAB_KEYERROR, data="KeyError")]
    for cls, message in bugs:
        buggy = _vocab_answer(cls, tokens, query, kwargs)
        patterns.append(BugPattern("matches", message, data=buggy["idx_to_token"], output="['idx_to_token']"))
    return Case(Probe(steps, outputs=outputs), expected, COUNT,
                output_names={"['idx_to_token']": "idx_to_token", "['len']": "len(vocab)",
                              "['token_to_idx']": "token_to_idx", "['lookup']": "vocab[lista]",
                              "['single']": "vocab[token]", "['unknown']": f"vocab[{UNKNOWN[0]!r}]",
                              "['to_tokens']": f"to_tokens({indices})", "['to_token']": f"to_tokens({indices[0]})"},
                patterns=patterns)


def _names_tokens(rng: np.random.Generator, num_names: int) -> list[str]:
    return list(make_names_text(num_names, seed=int(rng.integers(0, 2**31))))


def _query(rng: np.random.Generator, tokens: list[str]) -> list[str]:
    known = sorted(set(tokens))
    picks = [known[i] for i in rng.integers(0, len(known), size=6)]
    picks.insert(int(rng.integers(1, 6)), UNKNOWN[int(rng.integers(1, len(UNKNOWN)))])
    return picks


def build_vocab_basic(rng: np.random.Generator) -> Case:
    tokens = _names_tokens(rng, int(rng.integers(25, 40)))
    return _vocab_case(tokens, _query(rng, tokens), {}, ((bug.VocabSorted, VOCAB_SORTED),))


def _tied_tokens(rng: np.random.Generator) -> list[str]:
    """Tokens whose counts tie in groups, first appearances not in alphabetical order within a group."""
    while True:
        alphabet = list(rng.choice(list("abcdefghijklmnopqrstuvwxyzñáéíóú "), size=12, replace=False))
        counts = rng.choice([1, 2, 2, 3, 3, 3, 5, 5], size=len(alphabet))
        tokens = [t for t, c in zip(alphabet, counts, strict=True) for _ in range(int(c))]
        order = rng.permutation(len(tokens))
        tokens = [str(tokens[i]) for i in order]
        good = ref.Vocab(tokens).idx_to_token
        if good != bug.VocabAlphabeticalTies(tokens).idx_to_token and good != bug.VocabSorted(tokens).idx_to_token:
            return tokens


def build_vocab_ties(rng: np.random.Generator) -> Case:
    tokens = _tied_tokens(rng)
    return _vocab_case(tokens, _query(rng, tokens), {},
                       ((bug.VocabAlphabeticalTies, VOCAB_TIES), (bug.VocabSorted, VOCAB_SORTED)))


def build_vocab_min_freq(rng: np.random.Generator) -> Case:
    while True:
        tokens = _tied_tokens(rng)
        counts = {t: tokens.count(t) for t in set(tokens)}
        min_freq = int(rng.choice([2, 3]))
        if min_freq in counts.values() and min(counts.values()) < min_freq:  # the boundary and the dropped exist
            break
    rare = [t for t, c in counts.items() if c < min_freq]
    query = _query(rng, tokens)
    query[-1] = sorted(rare)[0]  # a known but rare token: -> <unk>
    kwargs = {"min_freq": min_freq, "reserved_tokens": ["<pad>", "<bos>", "<eos>"]}
    return _vocab_case(tokens, query, kwargs, ((bug.VocabMinFreqStrict, VOCAB_MIN_FREQ),
                                               (bug.VocabNoReserved, VOCAB_RESERVED),
                                               (bug.VocabSorted, VOCAB_SORTED)))


def build_vocab_reserved_in_text(rng: np.random.Generator) -> Case:
    tokens = _names_tokens(rng, int(rng.integers(15, 25)))
    kwargs = {"reserved_tokens": ["<pad>", " "]}  # " " is also in the text: it keeps its reserved index only
    return _vocab_case(tokens, _query(rng, tokens), kwargs,
                       ((bug.VocabNoReserved, VOCAB_RESERVED), (bug.VocabSorted, VOCAB_SORTED)))


# -- q2: one-hot encoding and minibatches ------------------------------------------------------

ONE_HOT_INT = _msg("one_hot debe devolver float32: compara y convierte con .to(torch.float32) (o .float()).",
                   "one_hot must return float32: compare and convert with .to(torch.float32) (or .float()).")


def _one_hot_case(shapes_and_classes: list[tuple[tuple[int, ...], int]], rng: np.random.Generator) -> Case:
    steps, outputs, expected, as_int = [], [], [], []
    for i, (shape, V) in enumerate(shapes_and_classes):
        X = rng.integers(0, V, size=shape)
        X.flat[0], X.flat[-1] = 0, V - 1  # both ends of the range
        steps += [Call(f"x{i}", "@tensor", (X,)), Call(f"o{i}", "one_hot", (Ref(f"x{i}"), V))]
        outputs.append(Ref(f"o{i}"))
        expected.append(_np(ref.one_hot(_t(X), V)))
        as_int.append(expected[-1].astype(np.int64))
    names = {f"[{i}]": f"one_hot(X{shape}, {V})" for i, (shape, V) in enumerate(shapes_and_classes)}
    patterns = [BugPattern("matches", ONE_HOT_INT, data=a, output=f"[{i}]") for i, a in enumerate(as_int)]
    return Case(Probe(steps, outputs=tuple(outputs)), tuple(expected), COUNT, output_names=names, patterns=patterns)


def build_one_hot_basic(rng: np.random.Generator) -> Case:
    return _one_hot_case([((int(rng.integers(2, 4)), int(rng.integers(3, 7))), int(rng.integers(5, 12)))], rng)


def build_one_hot_shapes(rng: np.random.Generator) -> Case:
    # a vector, a (T, B) matrix (the transposed batch of the RNN) and a 3-D tensor; V = 1 is legal too
    return _one_hot_case([((int(rng.integers(1, 6)),), int(rng.integers(2, 9))),
                          ((int(rng.integers(4, 9)), 1), int(rng.integers(20, 40))),
                          ((2, 3, int(rng.integers(2, 5))), int(rng.integers(3, 6))),
                          ((3,), 1)], rng)


SEQ_UNSHIFTED = _msg("Y es igual a X: los objetivos son los tokens *siguientes*, Y = corpus[1 : m + 1] frente a "
                     "X = corpus[:m].", "Y equals X: the targets are the *next* tokens, Y = corpus[1 : m + 1] "
                     "against X = corpus[:m].")
SEQ_SHIFT_TWO = _msg("Y está desplazado dos tokens: el objetivo de X[b, t] es el token que le sigue, uno más "
                     "(un error de ±1 en el desplazamiento).",
                     "Y is shifted by two tokens: the target of X[b, t] is the very next token (an off-by-one in the "
                     "shift).")
SEQ_ROWS = _msg("Tus lotes no son una partición secuencial: la fila b de un lote debe continuar la fila b del anterior. "
                "Coloca el texto en batch_size filas (Xs.reshape(batch_size, -1)) y corta columnas de num_steps.",
                "Your batches are not a sequential partition: row b of a batch must continue row b of the previous "
                "one. Lay the text out in batch_size rows (Xs.reshape(batch_size, -1)) and cut num_steps columns.")
SEQ_FEW_TOKENS = _msg("Usas solo (len(corpus) − 1) // batch_size tokens: ese cociente es el número de columnas; el de "
                      "tokens es el cociente multiplicado por el tamaño del lote, num_tokens = ((len(corpus) − 1) // "
                      "batch_size) * batch_size.",
                      "You use only (len(corpus) − 1) // batch_size tokens: that quotient is the number of columns; the "
                      "number of tokens is the quotient times the batch size, num_tokens = ((len(corpus) − 1) // "
                      "batch_size) * batch_size.")
SEQ_RESHAPE = _msg("Un reshape falla: el número de tokens que tomas no es múltiplo de la forma pedida. Toma un múltiplo "
                   "del tamaño del lote, num_tokens = ((len(corpus) − 1) // batch_size) * batch_size (dejando sitio al "
                   "último objetivo), y colócalos con reshape(batch_size, -1).",
                   "A reshape fails: the number of tokens you take is not a multiple of the requested shape. Take a "
                   "multiple of the batch size, num_tokens = ((len(corpus) − 1) // batch_size) * batch_size (leaving "
                   "room for the last target), and lay them out with reshape(batch_size, -1).")
SEQ_BUGS = ((bug.seq_iter_unshifted, SEQ_UNSHIFTED), (bug.seq_iter_shift_two, SEQ_SHIFT_TWO),
            (bug.seq_iter_consecutive_rows, SEQ_ROWS), (bug.seq_iter_few_tokens, SEQ_FEW_TOKENS))


def _batches(fn, corpus, batch_size, num_steps) -> list:
    return [(_np(X), _np(Y)) for X, Y in fn(corpus, batch_size, num_steps)]


def _buggy_batches(fn, corpus, batch_size, num_steps) -> list | None:
    """A buggy iterator's batches, or ``None`` where that bug raises (its error has a pattern of its own)."""
    try:
        return _batches(fn, corpus, batch_size, num_steps)
    except RuntimeError:
        return None


def _seq_case(rng: np.random.Generator, settings: list[tuple[int, int, int]]) -> Case:
    """One call of seq_data_iter_sequential per (corpus length, batch_size, num_steps)."""
    steps, outputs, expected, names = [], [], [], {}
    buggy: list[list | None] = [[] for _ in SEQ_BUGS]
    for i, (n, batch_size, num_steps) in enumerate(settings):
        corpus = [int(c) for c in rng.integers(0, 30, size=n)]
        steps += [Call(f"it{i}", "seq_data_iter_sequential", (corpus, batch_size, num_steps)),
                  Call(f"l{i}", "@list", (Ref(f"it{i}"),))]
        outputs.append(Ref(f"l{i}"))
        expected.append(_batches(ref.seq_data_iter_sequential, corpus, batch_size, num_steps))
        for b, (fn, _) in enumerate(SEQ_BUGS):
            answer = _buggy_batches(fn, corpus, batch_size, num_steps)
            buggy[b] = None if buggy[b] is None or answer is None else [*buggy[b], answer]
        names[f"[{i}]"] = f"list(seq_data_iter_sequential(corpus de {n}, batch_size={batch_size}, num_steps={num_steps}))"
    patterns = [BugPattern("matches", message, data=tuple(buggy[b])) for b, (_, message) in enumerate(SEQ_BUGS)
                if buggy[b] is not None]
    patterns.append(BugPattern("raises", SEQ_RESHAPE, data="is invalid for input of size"))
    return Case(Probe(steps, outputs=tuple(outputs)), tuple(expected), COUNT, output_names=names, patterns=patterns)


def build_seq_iter_basic(rng: np.random.Generator) -> Case:
    batch_size, num_steps = int(rng.integers(2, 4)), int(rng.integers(3, 6))
    n = batch_size * num_steps * int(rng.integers(3, 5)) + int(rng.integers(1, 2 * num_steps))  # a leftover
    return _seq_case(rng, [(n, batch_size, num_steps)])


def build_seq_iter_shapes(rng: np.random.Generator) -> Case:
    # batch_size 1, odd sizes, num_steps 1, a long corpus
    return _seq_case(rng, [(int(rng.integers(20, 40)), 1, int(rng.choice([3, 5, 7]))),
                           (int(rng.integers(60, 90)), int(rng.choice([3, 5])), int(rng.choice([5, 7]))),
                           (int(rng.integers(10, 20)), int(rng.integers(2, 4)), 1),
                           (int(rng.integers(800, 1200)), int(rng.integers(6, 10)), int(rng.integers(20, 30)))])


def build_seq_iter_continuity(rng: np.random.Generator) -> Case:
    # several batches per epoch, so that rows continuing (or not) from one batch to the next shows
    batch_size, num_steps = int(rng.integers(3, 5)), int(rng.integers(2, 4))
    n = batch_size * num_steps * int(rng.integers(4, 6)) + 1
    return _seq_case(rng, [(n, batch_size, num_steps)])


# -- q3: the RNN cell and the language model ----------------------------------------------------

CELL_NO_TANH = _msg("Falta la tanh: h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h).",
                    "The tanh is missing: h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h).")
CELL_RELU = _msg("La activación de la RNN es tanh, no ReLU.", "The RNN's activation is tanh, not ReLU.")
CELL_NO_BIAS = _msg("Falta sumar el sesgo b_h.", "The bias b_h is not added.")
CELL_WHH_T = _msg("Usas W_hh traspuesta: el estado multiplica por la derecha, h @ W_hh, con W_hh de forma "
                  "(entrada, salida) = (H, H).",
                  "You use W_hh transposed: the state multiplies on the right, h @ W_hh, with W_hh of shape "
                  "(in, out) = (H, H).")
CELL_SWAPPED = _msg("Has cruzado los pesos: x multiplica a W_xh y h a W_hh.",
                    "The weights are crossed: x multiplies W_xh and h multiplies W_hh.")
CELL_BUGS = {"no_tanh": (bug.rnn_cell_no_tanh, CELL_NO_TANH), "relu": (bug.rnn_cell_relu, CELL_RELU),
             "no_bias": (bug.rnn_cell_no_bias, CELL_NO_BIAS), "whh_t": (bug.rnn_cell_W_hh_transposed, CELL_WHH_T),
             "swapped": (bug.rnn_cell_weights_swapped, CELL_SWAPPED)}


def _cell_inputs(rng: np.random.Generator, B: int, D: int, H: int) -> dict[str, np.ndarray]:
    return {"x": rng.normal(size=(B, D)), "h": rng.uniform(-0.9, 0.9, size=(B, H)),
            "W_xh": rng.normal(0, 1 / math.sqrt(D), size=(D, H)), "W_hh": rng.normal(0, 1 / math.sqrt(H), size=(H, H)),
            "b_h": rng.normal(0, 0.3, size=H)}


CELL_ARGS = ("x", "h", "W_xh", "W_hh", "b_h")


def _cell_case(rng: np.random.Generator, B: int, D: int, H: int, backward: bool, bugs: tuple[str, ...]) -> Case:
    inputs = _cell_inputs(rng, B, D, H)
    tensors = {k: _t(v).clone().requires_grad_(backward) for k, v in inputs.items()}
    out = ref.rnn_cell_forward(*(tensors[k] for k in CELL_ARGS))
    patterns = [BugPattern("matches", CELL_BUGS[b][1], output="[0]",
                           data=_np(CELL_BUGS[b][0](*(_t(inputs[k]) for k in CELL_ARGS)))) for b in bugs]
    steps = [Call(k, "@tensor", (inputs[k],), {"requires_grad": backward}) for k in CELL_ARGS]
    steps.append(Call("out", "rnn_cell_forward", tuple(Ref(k) for k in CELL_ARGS)))
    if not backward:
        return Case(Probe(steps, outputs=(Ref("out"),)), (_np(out),), EXACT, output_names=_names("h_t"),
                    patterns=patterns)
    upstream = rng.normal(size=(B, H))
    out.backward(_t(upstream))
    steps += [Call("back", "@backward", (Ref("out"), upstream))]
    steps += [Call(f"g_{k}", "@grad", (Ref(k),)) for k in CELL_ARGS]
    expected = (_np(out), {k: _np(tensors[k].grad) for k in CELL_ARGS})
    return Case(Probe(steps, outputs=(Ref("out"), {k: Ref(f"g_{k}") for k in CELL_ARGS})), expected, EXACT,
                output_names=_names("h_t", "grad"), patterns=patterns)


def _sizes(rng: np.random.Generator) -> tuple[int, int]:
    D, H = rng.choice(np.arange(3, 10), size=2, replace=False)
    return int(D), int(H)


def build_rnn_cell(rng: np.random.Generator) -> Case:
    D, H = _sizes(rng)
    return _cell_case(rng, int(rng.choice([3, 5])), D, H, True, ("no_tanh", "relu", "no_bias", "whh_t"))


def build_rnn_cell_batch1(rng: np.random.Generator) -> Case:
    D, H = _sizes(rng)
    return _cell_case(rng, 1, D, H, True, ("no_tanh", "no_bias", "whh_t"))


def build_rnn_cell_square(rng: np.random.Generator) -> Case:
    D = int(rng.integers(3, 8))  # D = H: crossed weights give an answer, not a shape error
    return _cell_case(rng, int(rng.integers(2, 5)), D, D, False, ("swapped", "whh_t", "no_tanh"))


RNN_BATCH_AXIS = _msg("Tu bucle recorre el eje del lote, no el del tiempo: X es (B, T), así que codifica one_hot(X.T, V), "
                      "(T, B, V), y recorre su primer eje.",
                      "Your loop runs over the batch axis, not time: X is (B, T), so encode one_hot(X.T, V), (T, B, V), "
                      "and loop over its first axis.")
RNN_TIME_MAJOR = _msg("Tus logits tienen forma (T, B, V): apílalos en el eje 1, torch.stack(outputs, dim=1), para "
                      "devolver (B, T, V).",
                      "Your logits have shape (T, B, V): stack them on axis 1, torch.stack(outputs, dim=1), to return "
                      "(B, T, V).")
RNN_NO_RECURRENCE = _msg("El estado no pasa de un paso al siguiente: cada paso debe usar el h que calculó el anterior "
                         "(state = rnn_cell_forward(x, state, ...)).",
                         "The state is not carried from one step to the next: each step must use the h the previous "
                         "one computed (state = rnn_cell_forward(x, state, ...)).")
RNN_NO_OUTPUT_BIAS = _msg("Falta el sesgo de la capa de salida: los logits de cada paso son state @ W_hq + b_q.",
                         "The output layer's bias is missing: each step's logits are state @ W_hq + b_q.")
RNN_DTYPE = _msg("Tu forward mezcla dtypes: la corrección carga pesos float64, y el one-hot es float32. Conviértelo al "
                 "dtype de los pesos (one_hot(X.T, V).to(self.W_xh.dtype)) y crea el estado inicial con ese dtype.",
                 "Your forward mixes dtypes: the grader loads float64 weights and the one-hot is float32. Convert it to "
                 "the weights' dtype (one_hot(X.T, V).to(self.W_xh.dtype)) and create the initial state with it.")
RNN_RAISES = (BugPattern("raises", RNN_DTYPE, data="dtype"), BugPattern("raises", RNN_DTYPE, data="Double and Float"),
              BugPattern("raises", RNN_DTYPE, data="scalar type"))


def _rnn_state(rng: np.random.Generator, V: int, H: int) -> dict[str, np.ndarray]:
    """Weights that keep the tanh units away from saturation and make every step matter."""
    return {"W_xh": rng.normal(0, 0.6, size=(V, H)), "W_hh": rng.normal(0, 0.9 / math.sqrt(H), size=(H, H)),
            "b_h": rng.normal(0, 0.2, size=H), "W_hq": rng.normal(0, 1 / math.sqrt(H), size=(H, V)),
            "b_q": rng.normal(0, 0.2, size=V)}


def _rnn_model(cls, state: dict[str, np.ndarray], dtype=torch.float64):
    V, H = state["W_xh"].shape
    model = cls(V, H).to(dtype)
    model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    return model


def _rnn_dims(rng: np.random.Generator) -> tuple[int, int]:
    V, H = rng.choice(np.arange(5, 13), size=2, replace=False)
    return int(V), int(H)


def _rnn_case(rng: np.random.Generator, B: int, T: int, *, with_state: bool, backward: bool,
              bugs: tuple[str, ...]) -> Case:
    V, H = _rnn_dims(rng)
    state = _rnn_state(rng, V, H)
    X = rng.integers(0, V, size=(B, T))
    h0 = rng.uniform(-0.8, 0.8, size=(B, H)) if with_state else None
    model = _rnn_model(ref.RNNScratch, state)
    h0_t = _t(h0).clone().requires_grad_(backward) if with_state else None
    logits, hT = model(_t(X), h0_t)
    steps = [Call("m", "RNNScratch", (V, H)), Call("load", "@load_state_dict", (Ref("m"), state)),
             Call("x", "@tensor", (X,))]
    call_args = (Ref("m"), Ref("x"))
    if with_state:
        steps.append(Call("h0", "@tensor", (h0,), {"requires_grad": backward}))
        call_args += (Ref("h0"),)
    steps.append(Call("out", "@call", call_args))
    outputs: list = [Ref("out", 0), Ref("out", 1)]
    expected: list = [_np(logits), _np(hT)]
    names = ["logits", "state"]
    if backward:
        upstream = rng.normal(size=(B, T, V))
        logits.backward(_t(upstream))
        steps += [Call("back", "@backward", (Ref("out", 0), upstream)), Call("gp", "@param_grads", (Ref("m"),))]
        outputs.append(Ref("gp"))
        expected.append({k: _np(p.grad) for k, p in model.named_parameters()})
        names.append("grad")
        if with_state:
            steps.append(Call("gh", "@grad", (Ref("h0"),)))
            outputs.append(Ref("gh"))
            expected.append(_np(h0_t.grad))
            names.append("state.grad")
    patterns = list(RNN_RAISES)
    with torch.no_grad():
        h0_plain = _t(h0) if with_state else None
        patterns.append(BugPattern("matches", RNN_TIME_MAJOR, output="[0]",
                                   data=_np(bug.time_major(_rnn_model(ref.RNNScratch, state)(_t(X), h0_plain)[0]))))
        patterns.append(BugPattern("matches", RNN_NO_OUTPUT_BIAS, output="[0]",
                                   data=_np(_rnn_model(bug.RNNNoOutputBias, state)(_t(X), h0_plain)[0])))
        if "no_recurrence" in bugs:
            patterns.append(BugPattern("matches", RNN_NO_RECURRENCE, output="[0]",
                                       data=_np(_rnn_model(bug.RNNNoRecurrence, state)(_t(X), h0_plain)[0])))
        if "batch_axis" in bugs:
            patterns.append(BugPattern("matches", RNN_BATCH_AXIS, output="[0]",
                                       data=_np(_rnn_model(bug.RNNBatchAxis, state)(_t(X), h0_plain)[0])))
    return Case(Probe(steps, outputs=tuple(outputs)), tuple(expected), EXACT, output_names=_names(*names),
                patterns=patterns)


def build_rnn_parameters(rng: np.random.Generator) -> Case:
    V, H = _rnn_dims(rng)
    state = _rnn_state(rng, V, H)
    probe = Probe([Call("m", "RNNScratch", (V, H)), Call("load", "@load_state_dict", (Ref("m"), state)),
                   Call("after", "@state_dict", (Ref("m"),)), Call("gp", "@param_grads", (Ref("m"),))],
                  outputs=(Ref("after"), Ref("gp")))
    # the parameters (not buffers), with no gradient yet
    return Case(probe, (state, {k: None for k in ref.RNN_PARAMS}), EXACT,
                output_names=_names("state_dict", "parámetros (named_parameters)"))


INIT_RTOL = 0.15  # >= 2000 weights per matrix: the sample std is within a few % of sigma


def _judge_init(value, case: Case) -> list[Mismatch]:
    V, H, sigma = case.context["V"], case.context["H"], case.context["sigma"]
    shapes = {"W_xh": (V, H), "W_hh": (H, H), "b_h": (H,), "W_hq": (H, V), "b_q": (V,)}
    got = {k: getattr(v, "shape", None) for k, v in value.items()} if isinstance(value, dict) else {}
    if got != shapes:
        return _fail(f"RNNScratch({V}, {H}) debe tener exactamente los parámetros {shapes}; tiene {got}.",
                     f"RNNScratch({V}, {H}) must have exactly the parameters {shapes}; it has {got}.")
    for k in ("b_h", "b_q"):
        if np.any(np.asarray(value[k]) != 0):
            return _fail(f"Los sesgos empiezan a cero: {k} no lo es.", f"Biases start at zero: {k} does not.")
    for k in ("W_xh", "W_hh", "W_hq"):
        w = np.asarray(value[k], dtype=np.float64)
        std, mean = float(w.std()), float(w.mean())
        if abs(std - sigma) > INIT_RTOL * sigma or abs(mean) > 0.15 * sigma:
            return _fail(f"{k} tiene media {mean:.3g} y desviación típica {std:.3g}; con sigma={sigma:g} se pide "
                         f"torch.randn(...) * sigma: media 0 y desviación {sigma:g}.",
                         f"{k} has mean {mean:.3g} and standard deviation {std:.3g}; with sigma={sigma:g} the "
                         f"initialisation is torch.randn(...) * sigma: mean 0 and deviation {sigma:g}.")
    return []


def build_rnn_init(rng: np.random.Generator) -> Case:
    V, H, sigma = int(rng.integers(40, 50)), int(rng.integers(50, 60)), float(rng.choice([0.05, 0.1, 0.2]))
    probe = Probe([Call("m", "RNNScratch", (V, H), {"sigma": sigma}), Call("sd", "@state_dict", (Ref("m"),))],
                  outputs=Ref("sd"))
    return Case(probe, judge=_judge_init, context={"V": V, "H": H, "sigma": sigma})


def _different(rng: np.random.Generator, low: int, high: int, avoid: int) -> int:
    value = avoid
    while value == avoid:
        value = int(rng.integers(low, high))
    return value


def build_rnn_forward(rng: np.random.Generator) -> Case:
    B = int(rng.integers(2, 5))
    return _rnn_case(rng, B, _different(rng, 3, 7, B), with_state=True, backward=True, bugs=("no_recurrence",))


def build_rnn_no_state(rng: np.random.Generator) -> Case:
    # forward only: logits of the wrong layout are reported as such, with their hint
    B = int(rng.choice([3, 5]))
    return _rnn_case(rng, B, int(rng.integers(15, 25)), with_state=False, backward=False, bugs=("no_recurrence",))


def build_rnn_square(rng: np.random.Generator) -> Case:
    # B = T: a loop over the batch axis gives an answer of the right shape
    B = int(rng.integers(3, 6))
    return _rnn_case(rng, B, B, with_state=True, backward=False, bugs=("batch_axis", "no_recurrence"))


def build_rnn_single(rng: np.random.Generator) -> Case:
    # one sequence of one step (how predict calls the model), state None, gradients too
    return _rnn_case(rng, 1, 1, with_state=False, backward=True, bugs=())


# -- q4: clipping, perplexity, prediction -------------------------------------------------------

CLIP_PER_PARAM = _msg("Recortas cada gradiente con su propia norma: la norma es *global*, la de todos los gradientes "
                      "juntos, sqrt(Σ_p Σ_i g²), y todos se escalan por el mismo factor θ / norma.",
                      "You clip each gradient by its own norm: the norm is *global*, over all gradients together, "
                      "sqrt(Σ_p Σ_i g²), and all are scaled by the same factor θ / norm.")
CLIP_NO_SQRT = _msg("Falta la raíz cuadrada: la norma es sqrt(Σ g²), no Σ g².",
                    "The square root is missing: the norm is sqrt(Σ g²), not Σ g².")
CLIP_MEAN = _msg("Tu norma usa la media de los cuadrados de cada gradiente: la norma global es la raíz de la *suma* de "
                 "todos los cuadrados, sqrt(Σ_p (p.grad ** 2).sum()), no de sus medias.",
                 "Your norm uses the mean of each gradient's squares: the global norm is the root of the *sum* of all "
                 "the squares, sqrt(Σ_p (p.grad ** 2).sum()), not of their means.")
CLIP_ALWAYS = _msg("Con norma ≤ θ los gradientes no se tocan: escala solo si norma > θ (si no, los gradientes pequeños "
                   "crecen hasta θ).",
                   "With norm ≤ θ the gradients are left alone: scale only when norm > θ (otherwise small gradients grow "
                   "to θ).")
CLIP_VALUE = _msg("Recortas cada componente a [-θ, θ] (clip por valor): se pide recortar por la norma global, "
                  "g ← g · θ / norma, que conserva la dirección.",
                  "You clip each component to [-θ, θ] (clipping by value): clip by the global norm, g ← g · θ / norm, "
                  "which keeps the direction.")
CLIP_UNCHANGED = _msg("Los gradientes no cambiaron: con norma > θ hay que multiplicarlos in situ por θ / norma "
                      "(p.grad.mul_(...) o p.grad[:] *= ...).",
                      "The gradients did not change: with norm > θ multiply them in place by θ / norm "
                      "(p.grad.mul_(...) or p.grad[:] *= ...).")


def _clip_answer(fn, params: dict, grads: dict, theta: float):
    P = {k: _t(v).clone().requires_grad_() for k, v in params.items()}
    for k, p in P.items():
        p.grad = _t(grads[k]).clone()
    norm = fn(list(P.values()), theta)
    return {k: _np(p.grad) for k, p in P.items()}, float(norm)


CLIP_AFTER = _msg("Devuelve la norma *antes* de recortar, no la de después (que es θ).",
                  "Return the norm *before* clipping, not the one after (which is θ).")
CLIP_NO_RETURN = _msg("clip_gradients debe devolver la norma global antes de recortar (un float): ¿falta el return?",
                      "clip_gradients must return the global norm before clipping (a float): is the return missing?")


def _clip_inputs(rng: np.random.Generator, large: bool):
    shapes = {"W_xh": (int(rng.integers(3, 7)), 5), "W_hh": (5, 5), "b_h": (5,), "extra": (int(rng.integers(2, 9)),)}
    params = {k: rng.normal(size=s) for k, s in shapes.items()}
    grads = {k: rng.normal(0, 1.0, size=s) for k, s in shapes.items()}
    grads["b_h"] *= 4.0  # one gradient larger than the others: its own norm alone may exceed theta
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
    theta = float(norm * rng.uniform(0.2, 0.5) if large else norm * rng.uniform(1.2, 3.0))
    return params, grads, theta


def _clip_steps(params: dict, grads: dict, theta: float, tag: str) -> list[Call]:
    """Leaf tensors named ``{tag}{name}`` with the given gradients, then ``clip_gradients`` as step ``{tag}clip``."""
    steps = [Call(f"{tag}{k}", "@tensor", (v,), {"requires_grad": True}) for k, v in params.items()]
    for k, g in grads.items():
        steps += [Call(f"{tag}g_{k}", "@tensor", (g,)), Call(f"{tag}m_{k}", "@method", (Ref(f"{tag}{k}"), "mul", Ref(f"{tag}g_{k}"))),
                  Call(f"{tag}s_{k}", "@method", (Ref(f"{tag}m_{k}"), "sum")), Call(f"{tag}b_{k}", "@backward", (Ref(f"{tag}s_{k}"),))]
    steps.append(Call(f"{tag}clip", "clip_gradients", ([Ref(f"{tag}{k}") for k in params], theta)))
    return steps


def _clip_case(rng: np.random.Generator, large: bool) -> Case:
    """The gradients after clipping (the returned norm has a check of its own)."""
    params, grads, theta = _clip_inputs(rng, large)
    steps = _clip_steps(params, grads, theta, "")
    steps += [Call(f"after_{k}", "@grad", (Ref(k),)) for k in params]
    probe = Probe(steps, outputs={k: Ref(f"after_{k}") for k in params})
    expected = _clip_answer(ref.clip_gradients, params, grads, theta)[0]
    patterns = [BugPattern("matches", CLIP_ALWAYS, data=_clip_answer(bug.clip_always, params, grads, theta)[0])]
    if large:
        patterns += [BugPattern("matches", msg, data=_clip_answer(fn, params, grads, theta)[0])
                     for fn, msg in ((bug.clip_per_parameter, CLIP_PER_PARAM), (bug.clip_no_sqrt, CLIP_NO_SQRT),
                                     (bug.clip_by_value, CLIP_VALUE), (bug.clip_mean_of_squares, CLIP_MEAN))]
        patterns.append(BugPattern("unchanged", CLIP_UNCHANGED, data=grads))
    return Case(probe, expected, EXACT, output_names={"": "p.grad"}, patterns=patterns)


def build_clip_large(rng: np.random.Generator) -> Case:
    return _clip_case(rng, large=True)


def build_clip_small(rng: np.random.Generator) -> Case:
    return _clip_case(rng, large=False)


def build_clip_norm(rng: np.random.Generator) -> Case:
    """What clip_gradients returns: the global norm before clipping, with large and with small gradients."""
    (p1, g1, t1), (p2, g2, t2) = _clip_inputs(rng, True), _clip_inputs(rng, False)
    probe = Probe(_clip_steps(p1, g1, t1, "a_") + _clip_steps(p2, g2, t2, "b_"),
                  outputs=(Ref("a_clip"), Ref("b_clip")))
    expected = (_clip_answer(ref.clip_gradients, p1, g1, t1)[1], _clip_answer(ref.clip_gradients, p2, g2, t2)[1])
    return Case(probe, expected, EXACT, output_names=_names("norma devuelta (norma > θ)", "norma devuelta (norma ≤ θ)"),
                patterns=[BugPattern("matches", CLIP_AFTER, data=t1, output="[0]"),
                          BugPattern("matches", CLIP_NO_RETURN, data=None, output="[0]"),
                          BugPattern("matches", CLIP_MEAN, data=_clip_answer(bug.clip_mean_of_squares, p1, g1, t1)[1],
                                     output="[0]"),
                          BugPattern("matches", CLIP_MEAN, data=_clip_answer(bug.clip_mean_of_squares, p2, g2, t2)[1],
                                     output="[1]")])


PPL_CLASSES_AXIS = _msg("La entropía cruzada va sobre el eje del vocabulario: F.cross_entropy espera las clases en el eje "
                        "1, así que con logits (B, T, V) usa logits.reshape(-1, V) e Y.reshape(-1) (o log_softmax sobre "
                        "el último eje).",
                        "The cross-entropy runs over the vocabulary axis: F.cross_entropy expects the classes on axis 1, "
                        "so with logits (B, T, V) use logits.reshape(-1, V) and Y.reshape(-1) (or log_softmax over the "
                        "last axis).")
PPL_ROWS = _msg("La perplejidad es exp de la entropía cruzada media sobre *todas* las B·T posiciones, no la media de las "
                "perplejidades de cada secuencia.",
                "Perplexity is exp of the mean cross-entropy over *all* B·T positions, not the mean of each sequence's "
                "perplexity.")
PPL_NO_EXP = _msg("Devuelves la entropía cruzada: la perplejidad es su exponencial, math.exp(loss).",
                  "You return the cross-entropy: perplexity is its exponential, math.exp(loss).")
PPL_BASE2 = _msg("La entropía cruzada de PyTorch está en nats (logaritmo natural): la perplejidad es exp(loss), no "
                 "2 ** loss.", "PyTorch's cross-entropy is in nats (natural log): perplexity is exp(loss), not 2 ** loss.")


def _ppl_case(rng: np.random.Generator, B: int, T: int, V: int, uniform: bool) -> Case:
    if uniform:  # every token equally likely: a constant per position, whatever its value
        logits = np.repeat(rng.normal(0, 3, size=(B, T, 1)), V, axis=2)
    else:
        logits = rng.normal(0, 2, size=(B, T, V))
    Y = rng.integers(0, V, size=(B, T))
    probe = Probe([Call("z", "@tensor", (logits,)), Call("y", "@tensor", (Y,)),
                   Call("ppl", "perplexity", (Ref("z"), Ref("y")))], outputs=Ref("ppl"))
    z, y = _t(logits), _t(Y)
    expected = ref.perplexity(z, y)
    patterns = [BugPattern("matches", msg, data=fn(z, y)) for fn, msg in (
        (bug.perplexity_mean_of_rows, PPL_ROWS), (bug.perplexity_no_exp, PPL_NO_EXP), (bug.perplexity_base2, PPL_BASE2))]
    patterns += [BugPattern("raises", PPL_CLASSES_AXIS, data="Expected target size"),
                 BugPattern("raises", PPL_CLASSES_AXIS, data="out of bounds")]
    if T == V:  # F.cross_entropy(logits, Y) runs and takes T for the classes
        patterns.append(BugPattern("matches", PPL_CLASSES_AXIS, data=bug.perplexity_classes_on_dim1(z, y)))
    name = f"perplexity(logits {B}×{T}×{V}, Y)" + (" de un modelo uniforme: V" if uniform else "")
    return Case(probe, expected, EXACT, output_names={"": name}, patterns=patterns)


def build_perplexity(rng: np.random.Generator) -> Case:
    return _ppl_case(rng, int(rng.integers(2, 5)), int(rng.integers(3, 8)), int(rng.integers(9, 15)), uniform=False)


def build_perplexity_uniform(rng: np.random.Generator) -> Case:
    return _ppl_case(rng, int(rng.integers(2, 5)), int(rng.integers(3, 8)), int(rng.integers(9, 40)), uniform=True)


def build_perplexity_square(rng: np.random.Generator) -> Case:
    V = int(rng.integers(5, 9))  # T = V: the classes read from the wrong axis still give a number; and B = 1
    return _ppl_case(rng, 1, V, V, uniform=False)


PREDICT_NO_WARMUP = _msg("El estado no se «calienta» con todo el prefijo: pasa cada carácter del prefijo por el modelo "
                         "llevando el estado de un paso al siguiente, y predice a partir del estado final.",
                         "The state is not warmed up with the whole prefix: feed every character of the prefix through "
                         "the model carrying the state from step to step, and predict from the final state.")
PREDICT_STATE_RESET = _msg("El estado no pasa de un paso al siguiente: guarda el que devuelve el modelo "
                           "(logits, state = model(X, state)) y pásaselo en la llamada siguiente.",
                           "The state is not carried from one step to the next: keep what the model returns "
                           "(logits, state = model(X, state)) and pass it to the next call.")
PREDICT_ONE_SHORT = _msg("predict devuelve un carácter de menos: el bucle se queda corto en uno (off-by-one). Son "
                         "len(prefix) + num_preds − 1 pasos: len(prefix) − 1 de calentamiento y num_preds de predicción.",
                         "predict returns one character too few: the loop stops one short (off-by-one). It takes "
                         "len(prefix) + num_preds − 1 steps: len(prefix) − 1 of warm-up and num_preds of prediction.")
PREDICT_PAST_PREFIX = _msg("Lees un carácter más allá del final del prefijo (string index out of range): el calentamiento "
                           "toma prefix[i + 1] solo mientras i < len(prefix) − 1 (comparación estricta); desde ahí, "
                           "cada paso predice.",
                           "You read a character past the end of the prefix (string index out of range): the warm-up "
                           "takes prefix[i + 1] only while i < len(prefix) − 1 (a strict comparison); from there on, "
                           "every step predicts.")
PREDICT_NO_PREFIX = _msg("predict devuelve el prefijo *seguido* de los caracteres predichos.",
                         "predict returns the prefix *followed by* the predicted characters.")


def _greedy_gaps(model, prefix: str, num_preds: int, vocab) -> float:
    """The smallest gap between the two largest logits over the greedy steps (argmax must not be a near-tie)."""
    state, outputs, gaps = None, [vocab[prefix[0]]], [np.inf]
    with torch.no_grad():
        for i in range(len(prefix) + num_preds - 1):
            logits, state = model(torch.tensor([[outputs[-1]]]), state)
            if i < len(prefix) - 1:
                outputs.append(vocab[prefix[i + 1]])
            else:
                top = torch.topk(logits[0, -1], 2).values
                gaps.append(float(top[0] - top[1]))
                outputs.append(int(logits[0, -1].argmax()))
    return min(gaps)


def _predict_case(rng: np.random.Generator, prefix_len: tuple[int, int], num_preds: tuple[int, int]) -> Case:
    tokens = _names_tokens(rng, 30)
    vocab = ref.Vocab(tokens)
    V, H = len(vocab), int(rng.integers(8, 16))
    text = "".join(tokens)
    for _ in range(200):
        state = _rnn_state(rng, V, H)
        state["W_hh"] *= 2.5  # a state that matters: the prefix changes the prediction
        model = _rnn_model(ref.RNNScratch, state)
        length = int(rng.integers(*prefix_len))
        start = int(rng.integers(0, len(text) - length))
        prefix = text[start:start + length]  # a piece of the names text, spaces included
        n = int(rng.integers(*num_preds))
        expected = ref.predict(model, prefix, n, vocab)
        buggy = {fn: fn(model, prefix, n, vocab) for fn in (bug.predict_no_warmup, bug.predict_state_reset)}
        distinct = len(prefix) == 1 or all(b != expected for b in buggy.values())
        if _greedy_gaps(model, prefix, n, vocab) > 1e-4 and (n == 0 or distinct):
            break
    else:  # pragma: no cover - 200 draws without a clean case would be a broken test
        raise RuntimeError("no predict case without near-ties")
    probe = Probe([Call("v", "Vocab", (tokens,)), Call("m", "RNNScratch", (V, H)),
                   Call("load", "@load_state_dict", (Ref("m"), state)), Call("dev", "@device"),
                   Call("out", "predict", (Ref("m"), prefix, n, Ref("v")), {"device": Ref("dev")})],
                  outputs=Ref("out"))
    patterns = [BugPattern("matches", PREDICT_NO_PREFIX, data=bug.predict_without_prefix(model, prefix, n, vocab)),
                BugPattern("matches", PREDICT_ONE_SHORT, data=bug.predict_one_short(model, prefix, n, vocab)),
                BugPattern("raises", PREDICT_PAST_PREFIX, data="string index out of range"), *RNN_RAISES]
    if len(prefix) > 1:
        patterns += [BugPattern("matches", PREDICT_NO_WARMUP, data=buggy[bug.predict_no_warmup]),
                     BugPattern("matches", PREDICT_STATE_RESET, data=buggy[bug.predict_state_reset])]
    return Case(probe, expected, COUNT, output_names={"": f"predict(model, {prefix!r}, {n}, vocab)"},
                patterns=patterns)


def build_predict(rng: np.random.Generator) -> Case:
    return _predict_case(rng, (2, 4), (5, 10))


def build_predict_long(rng: np.random.Generator) -> Case:
    return _predict_case(rng, (6, 10), (15, 25))


def build_predict_edge(rng: np.random.Generator) -> Case:
    # a one-character prefix (no warm-up at all), then num_preds = 0 (the prefix itself) in a second call
    case = _predict_case(rng, (1, 2), (3, 8))
    steps = list(case.probe.steps)
    prefix = steps[-1].args[1]
    steps.append(Call("none", "predict", (Ref("m"), prefix + "a", 0, Ref("v")), {"device": Ref("dev")}))
    return Case(Probe(steps, outputs=(Ref("out"), Ref("none"))), (case.expected, prefix + "a"), COUNT,
                output_names=_names(case.output_names[""], f"predict(model, {prefix + 'a'!r}, 0, vocab)"),
                patterns=[BugPattern(p.kind, p.message, p.data, "[0]") for p in case.patterns])


# -- q5: the GRU -------------------------------------------------------------------------------

GRU_D2L = _msg("Aplicas la puerta de reinicio antes del producto, (R ⊙ H) W_hh, como D2L: aquí se pide la forma de "
               "PyTorch (nn.GRUCell), R ⊙ (H W_hh), con b_h fuera: tanh(X W_xh + b_h + R * (H @ W_hh)).",
               "You apply the reset gate before the product, (R ⊙ H) W_hh, as D2L does: here PyTorch's form "
               "(nn.GRUCell) is asked for, R ⊙ (H W_hh), with b_h outside: tanh(X W_xh + b_h + R * (H @ W_hh)).")
GRU_UPDATE = _msg("Los papeles de Z y 1 − Z están cambiados: H = Z ⊙ H_prev + (1 − Z) ⊙ H̃ (con Z ≈ 1 el estado se "
                  "conserva).", "The roles of Z and 1 − Z are swapped: H = Z ⊙ H_prev + (1 − Z) ⊙ H̃ (with Z ≈ 1 the "
                  "state is kept).")
GRU_GATES = _msg("Has cruzado las puertas: Z (actualización) usa W_xz, W_hz, b_z y R (reinicio) usa W_xr, W_hr, b_r.",
                 "The gates are crossed: Z (update) uses W_xz, W_hz, b_z and R (reset) uses W_xr, W_hr, b_r.")
GRU_NO_RESET = _msg("El candidato no usa la puerta de reinicio: H̃ = tanh(X W_xh + b_h + R ⊙ (H W_hh)).",
                    "The candidate ignores the reset gate: H̃ = tanh(X W_xh + b_h + R ⊙ (H W_hh)).")
GRU_BATCH_AXIS = _msg("Tu bucle recorre el lote, no el tiempo: inputs es (T, B, D), con el tiempo primero, como en "
                      "nn.GRU; recorre su primer eje.",
                      "Your loop runs over the batch, not time: inputs is (T, B, D), time first, as in nn.GRU; loop "
                      "over its first axis.")
GRU_DTYPE = _msg("Tu GRU mezcla dtypes: la corrección usa entradas y pesos float64. Crea el estado inicial con el dtype y el "
                 "dispositivo de la entrada (inputs.new_zeros(...) o dtype=inputs.dtype, device=inputs.device).",
                 "Your GRU mixes dtypes: the grader uses float64 inputs and weights. Create the initial state with the "
                 "input's dtype and device (inputs.new_zeros(...) or dtype=inputs.dtype, device=inputs.device).")
GRU_RAISES = (BugPattern("raises", GRU_DTYPE, data="dtype"), BugPattern("raises", GRU_DTYPE, data="Double and Float"),
              BugPattern("raises", GRU_DTYPE, data="scalar type"))
_GATE = {"b_z": _msg("de la puerta de actualización Z", "of the update gate Z"),
         "b_r": _msg("de la puerta de reinicio R", "of the reset gate R"),
         "b_h": _msg("del estado candidato H̃", "of the candidate state H̃")}


def _gru_no_bias(b: str) -> dict[str, str]:
    return _msg(f"Falta el sesgo {b} {_GATE[b]['es']}: Z = σ(X W_xz + H W_hz + b_z), R = σ(X W_xr + H W_hr + b_r), "
                "H̃ = tanh(X W_xh + b_h + R ⊙ (H W_hh)).",
                f"The bias {b} {_GATE[b]['en']} is missing: Z = σ(X W_xz + H W_hz + b_z), R = σ(X W_xr + H W_hr + b_r), "
                "H̃ = tanh(X W_xh + b_h + R ⊙ (H W_hh)).")


def _gru_transposed(w: str) -> dict[str, str]:
    return _msg(f"Usas {w} traspuesta: el estado multiplica por la derecha, H @ {w}, con {w} de forma (entrada, salida) "
                "= (H, H).",
                f"You use {w} transposed: the state multiplies on the right, H @ {w}, with {w} of shape (in, out) = (H, H).")


GRU_BUGS = {"no_b_z": (bug.GRUNoBiasZ, _gru_no_bias("b_z")), "no_b_r": (bug.GRUNoBiasR, _gru_no_bias("b_r")),
            "no_b_h": (bug.GRUNoBiasH, _gru_no_bias("b_h")), "W_hz_t": (bug.GRUWhzTransposed, _gru_transposed("W_hz")),
            "W_hr_t": (bug.GRUWhrTransposed, _gru_transposed("W_hr")),
            "W_hh_t": (bug.GRUWhhTransposed, _gru_transposed("W_hh")),
            "d2l": (bug.GRUResetBeforeProduct, GRU_D2L), "update": (bug.GRUUpdateSwapped, GRU_UPDATE),
            "gates": (bug.GRUGatesSwapped, GRU_GATES), "no_reset": (bug.GRUNoReset, GRU_NO_RESET),
            "batch_axis": (bug.GRUBatchAxis, GRU_BATCH_AXIS)}


GRU_PARAM_BUGS = ("no_b_z", "no_b_r", "no_b_h", "W_hz_t", "W_hr_t", "W_hh_t")  # in every GRU case


def _gru_state(rng: np.random.Generator, D: int, H: int) -> dict[str, np.ndarray]:
    state = {}
    for gate in "zrh":
        state[f"W_x{gate}"] = rng.normal(0, 1 / math.sqrt(D), size=(D, H))
        state[f"W_h{gate}"] = rng.normal(0, 1.2 / math.sqrt(H), size=(H, H))
        state[f"b_{gate}"] = rng.normal(0, 0.4, size=H)
    return {k: state[k] for k in ref.GRU_PARAMS}


def _gru_model(cls, state):
    D, H = state["W_xh"].shape
    model = cls(D, H).double()
    model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    return model


def _gru_case(rng: np.random.Generator, T: int, B: int, *, with_state: bool, backward: bool, bugs: tuple[str, ...],
              oracle: str = "reference") -> Case:
    D, H = _sizes(rng)
    state = _gru_state(rng, D, H)
    inputs = rng.normal(size=(T, B, D))
    h0 = rng.uniform(-0.9, 0.9, size=(B, H)) if with_state else None
    x_t = _t(inputs).clone().requires_grad_(backward)
    h_t = _t(h0).clone().requires_grad_(backward) if with_state else None
    if oracle == "grucell":  # torch.nn.GRUCell with the mapped weights, not the reference's loop
        out, hT = ref.gru_with_grucell({k: torch.as_tensor(v) for k, v in state.items()}, x_t, h_t)
        model = None
    else:
        model = _gru_model(ref.GRU, state)
        out, hT = model(x_t, h_t)
    steps = [Call("m", "GRU", (D, H)), Call("load", "@load_state_dict", (Ref("m"), state)),
             Call("x", "@tensor", (inputs,), {"requires_grad": backward})]
    call_args = (Ref("m"), Ref("x"))
    if with_state:
        steps.append(Call("h0", "@tensor", (h0,), {"requires_grad": backward}))
        call_args += (Ref("h0"),)
    steps.append(Call("out", "@call", call_args))
    outputs: list = [Ref("out", 0), Ref("out", 1)]
    expected: list = [_np(out), _np(hT)]
    names = ["outputs", "H"]
    if backward:
        upstream = rng.normal(size=(T, B, H))
        out.backward(_t(upstream))
        steps += [Call("back", "@backward", (Ref("out", 0), upstream)), Call("gx", "@grad", (Ref("x"),)),
                  Call("gp", "@param_grads", (Ref("m"),))]
        outputs += [Ref("gx"), Ref("gp")]
        expected += [_np(x_t.grad), {k: _np(p.grad) for k, p in model.named_parameters()}]
        names += ["inputs.grad", "grad"]
        if with_state:
            steps.append(Call("gh", "@grad", (Ref("h0"),)))
            outputs.append(Ref("gh"))
            expected.append(_np(h_t.grad))
            names.append("H.grad")
    patterns = list(GRU_RAISES)
    with torch.no_grad():
        for key in (*bugs, *GRU_PARAM_BUGS):
            cls, message = GRU_BUGS[key]
            patterns.append(BugPattern("matches", message, output="[0]",
                                       data=_np(_gru_model(cls, state)(_t(inputs), _t(h0) if with_state else None)[0])))
    return Case(Probe(steps, outputs=tuple(outputs)), tuple(expected), EXACT, output_names=_names(*names),
                patterns=patterns)


def build_gru_parameters(rng: np.random.Generator) -> Case:
    D, H = _sizes(rng)
    state = _gru_state(rng, D, H)
    probe = Probe([Call("m", "GRU", (D, H)), Call("load", "@load_state_dict", (Ref("m"), state)),
                   Call("after", "@state_dict", (Ref("m"),)), Call("gp", "@param_grads", (Ref("m"),))],
                  outputs=(Ref("after"), Ref("gp")))
    return Case(probe, (state, {k: None for k in ref.GRU_PARAMS}), EXACT,
                output_names=_names("state_dict", "parámetros (named_parameters)"))


def build_gru_forward(rng: np.random.Generator) -> Case:
    B = int(rng.integers(2, 4))
    return _gru_case(rng, _different(rng, 3, 7, B), B, with_state=True, backward=True,
                     bugs=("d2l", "update", "gates", "no_reset"))


def build_gru_no_state(rng: np.random.Generator) -> Case:
    # forward only (wrong layouts reported with their hint), one sequence, a long one, H = None
    return _gru_case(rng, int(rng.integers(15, 25)), 1, with_state=False, backward=False,
                     bugs=("d2l", "update", "gates", "no_reset"))


def build_gru_vs_grucell(rng: np.random.Generator) -> Case:
    B = int(rng.choice([3, 5]))
    return _gru_case(rng, _different(rng, 3, 7, B), B, with_state=True, backward=False, bugs=("d2l", "update"),
                     oracle="grucell")


def build_gru_square(rng: np.random.Generator) -> Case:
    T = int(rng.integers(3, 6))  # T = B: a loop over the batch gives an answer of the right shape
    return _gru_case(rng, T, T, with_state=True, backward=False, bugs=("batch_axis", "d2l"))


# -- q6: attention -----------------------------------------------------------------------------

ATT_NO_SCALE = _msg("Falta dividir las puntuaciones por √d: softmax(q kᵀ / √d).",
                    "The scores are not divided by √d: softmax(q kᵀ / √d).")
ATT_SCALE_D = _msg("Divides por d en lugar de por √d: la varianza de q·k es d, así que su desviación es √d.",
                   "You divide by d instead of √d: the variance of q·k is d, so its standard deviation is √d.")
ATT_WRONG_DIM = _msg("La softmax va sobre las claves (el último eje, dim=-1): los pesos de cada consulta suman 1.",
                     "The softmax runs over the keys (the last axis, dim=-1): each query's weights add up to 1.")
ATT_INVERTED = _msg("Has invertido la máscara: True significa que la consulta *puede* atender a esa clave (como en "
                    "F.scaled_dot_product_attention); se anulan las posiciones con False: masked_fill(~mask, -inf).",
                    "Your mask is inverted: True means the query *may* attend that key (as in "
                    "F.scaled_dot_product_attention); the False positions are cancelled: masked_fill(~mask, -inf).")
ATT_ZERO = _msg("Las posiciones enmascaradas reciben peso: poner su puntuación a 0 no basta (exp(0) = 1); usa -inf "
                "(o un número muy negativo) antes de la softmax.",
                "Masked positions get weight: setting their score to 0 is not enough (exp(0) = 1); use -inf (or a very "
                "negative number) before the softmax.")
ATT_AFTER = _msg("Enmascaras después de la softmax: los pesos que quedan ya no suman 1. Enmascara las puntuaciones "
                 "(con -inf) *antes* de la softmax.",
                 "You mask after the softmax: the remaining weights no longer add up to 1. Mask the scores (with -inf) "
                 "*before* the softmax.")
ATT_IGNORED = _msg("Ignoras la máscara: las claves con False deben recibir peso 0. Aplica "
                  "scores.masked_fill(~mask, float(\"-inf\")) antes de la softmax.",
                  "You ignore the mask: the keys with False must get zero weight. Apply "
                  "scores.masked_fill(~mask, float(\"-inf\")) before the softmax.")
ATT_BUGS = {"no_scale": (bug.sdpa_no_scale, ATT_NO_SCALE), "scale_d": (bug.sdpa_scale_d, ATT_SCALE_D),
            "wrong_dim": (bug.sdpa_softmax_queries, ATT_WRONG_DIM), "batch_dim": (bug.sdpa_softmax_batch, ATT_WRONG_DIM),
            "ignored": (bug.sdpa_mask_ignored, ATT_IGNORED), "inverted": (bug.sdpa_mask_inverted, ATT_INVERTED),
            "zero": (bug.sdpa_mask_zero, ATT_ZERO), "after": (bug.sdpa_mask_after_softmax, ATT_AFTER)}


def _qkv(rng: np.random.Generator, B: int, Lq: int, Lk: int, d: int, dv: int):
    return rng.normal(size=(B, Lq, d)), rng.normal(size=(B, Lk, d)), rng.normal(size=(B, Lk, dv))


def _attention_case(rng: np.random.Generator, q, k, v, mask: np.ndarray | None, *, backward: bool,
                    bugs: tuple[str, ...]) -> Case:
    tensors = [_t(a).clone().requires_grad_(backward) for a in (q, k, v)]
    mask_t = None if mask is None else _t(mask)
    out, weights = ref.scaled_dot_product_attention(*tensors, mask_t)
    steps = [Call(n, "@tensor", (a,), {"requires_grad": backward}) for n, a in (("q", q), ("k", k), ("v", v))]
    args: tuple = (Ref("q"), Ref("k"), Ref("v"))
    if mask is not None:
        steps.append(Call("mask", "@tensor", (mask,)))
        args += (Ref("mask"),)
    steps.append(Call("att", "scaled_dot_product_attention", args))
    outputs: list = [Ref("att", 0), Ref("att", 1)]
    expected: list = [_np(out), _np(weights)]
    names = ["out", "weights"]
    if backward:
        upstream = rng.normal(size=out.shape)
        out.backward(_t(upstream))
        steps.append(Call("back", "@backward", (Ref("att", 0), upstream)))
        steps += [Call(f"g{n}", "@grad", (Ref(n),)) for n in "qkv"]
        outputs += [Ref("gq"), Ref("gk"), Ref("gv")]
        expected += [_np(t.grad) for t in tensors]
        names += ["q.grad", "k.grad", "v.grad"]
    patterns = []
    with torch.no_grad():
        for key in bugs:
            fn, message = ATT_BUGS[key]
            bad_out, bad_w = fn(_t(q), _t(k), _t(v), mask_t)
            patterns.append(BugPattern("matches", message, data=_np(bad_w), output="[1]"))
            patterns.append(BugPattern("matches", message, data=_np(bad_out), output="[0]"))
    return Case(Probe(steps, outputs=tuple(outputs)), tuple(expected), EXACT, output_names=_names(*names),
                patterns=patterns)


def _dims(rng: np.random.Generator) -> tuple[int, int, int, int, int]:
    B = int(rng.integers(2, 4))
    Lq, Lk = rng.choice(np.arange(2, 8), size=2, replace=False)
    return B, int(Lq), int(Lk), int(rng.choice([8, 16])), int(rng.integers(2, 6))


SCALE_BUGS = ("no_scale", "scale_d", "wrong_dim", "batch_dim")


def build_attention_basic(rng: np.random.Generator) -> Case:
    B, Lq, Lk, d, dv = _dims(rng)
    return _attention_case(rng, *_qkv(rng, B, Lq, Lk, d, dv), None, backward=False, bugs=SCALE_BUGS)


def build_attention_backward(rng: np.random.Generator) -> Case:
    B, Lq, Lk, d, dv = _dims(rng)
    return _attention_case(rng, *_qkv(rng, B, Lq, Lk, d, dv), None, backward=True, bugs=SCALE_BUGS)


def _valid_lens(rng: np.random.Generator, B: int, Lk: int) -> np.ndarray:
    lens = rng.integers(1, Lk + 1, size=B)
    lens[0] = max(1, Lk - 2)  # at least one row with padding
    return lens


def _padding(lens: np.ndarray, Lk: int) -> np.ndarray:
    return (np.arange(Lk)[None, :] < lens[:, None])[:, None, :]


def build_attention_padding(rng: np.random.Generator) -> Case:
    B, Lq, _, d, dv = _dims(rng)
    Lk = int(rng.integers(4, 8))
    q, k, v = _qkv(rng, B, Lq, Lk, d, dv)
    lens = _valid_lens(rng, B, Lk)
    mask = _padding(lens, Lk)
    v = np.where(mask.transpose(0, 2, 1), v, v + 50.0)  # padding values far away: any weight on them shows in out
    return _attention_case(rng, q, k, v, mask, backward=True,
                           bugs=("ignored", "inverted", "zero", "after", "no_scale", "scale_d", "wrong_dim", "batch_dim"))


def build_attention_causal(rng: np.random.Generator) -> Case:
    B, L, d, dv = int(rng.integers(2, 4)), int(rng.integers(4, 8)), int(rng.choice([8, 16])), int(rng.integers(2, 6))
    mask = np.tril(np.ones((L, L), dtype=bool))  # (L, L), broadcast over the batch
    return _attention_case(rng, *_qkv(rng, B, L, L, d, dv), mask, backward=False,
                           bugs=("ignored", "inverted", "zero", "after", "no_scale", "scale_d", "wrong_dim", "batch_dim"))


def build_attention_single_query(rng: np.random.Generator) -> Case:
    Lk, d = int(rng.integers(5, 9)), int(rng.choice([8, 16]))
    q, k, v = _qkv(rng, 1, 1, Lk, d, int(rng.integers(2, 5)))
    mask = _padding(np.array([int(rng.integers(2, Lk))]), Lk)
    return _attention_case(rng, q, k, v, mask, backward=False, bugs=("ignored", "inverted", "zero", "after", "scale_d"))


CAUSAL_STRICT = _msg("Falta la diagonal: cada posición puede atenderse a sí misma (j ≤ i): tril(), no tril(-1).",
                     "The diagonal is missing: each position may attend itself (j ≤ i): tril(), not tril(-1).")
CAUSAL_UPPER = _msg("Tu máscara deja ver el futuro: la consulta i solo puede atender a las claves j ≤ i "
                    "(triangular inferior, tril).",
                    "Your mask lets the future through: query i may only attend keys j ≤ i (lower triangular, tril).")


def build_causal_mask(rng: np.random.Generator) -> Case:
    sizes = [1, int(rng.choice([3, 5])), int(rng.integers(6, 10))]
    steps = [Call("dev", "@device")]
    steps += [Call(f"m{i}", "causal_mask", (n,), {"device": Ref("dev")}) for i, n in enumerate(sizes)]
    expected = tuple(_np(ref.causal_mask(n)) for n in sizes)
    patterns = []
    for fn, message in ((bug.causal_mask_strict, CAUSAL_STRICT), (bug.causal_mask_upper, CAUSAL_UPPER)):
        patterns += [BugPattern("matches", message, data=_np(fn(n)), output=f"[{i}]") for i, n in enumerate(sizes)]
    return Case(Probe(steps, outputs=tuple(Ref(f"m{i}") for i in range(len(sizes)))), expected, COUNT,
                output_names={f"[{i}]": f"causal_mask({n})" for i, n in enumerate(sizes)}, patterns=patterns)


PADDING_INCLUSIVE = _msg("Una clave de más: las válidas son j < valid_lens[b], una comparación estricta (de 0 a "
                         "valid_lens[b] − 1), no j <= valid_lens[b].",
                         "One key too many: the valid ones are j < valid_lens[b], a strict comparison (0 to "
                         "valid_lens[b] − 1), not j <= valid_lens[b].")
PADDING_2D = _msg("La máscara debe tener forma (B, 1, num_keys): con (B, num_keys), al difundirla contra (B, Lq, Lk) "
                  "el eje del lote se alinea con las consultas. Añade el eje: mask[:, None, :].",
                  "The mask must be (B, 1, num_keys): with (B, num_keys), broadcast against (B, Lq, Lk), the batch axis "
                  "lines up with the queries. Add the axis: mask[:, None, :].")


def build_padding_mask(rng: np.random.Generator) -> Case:
    B, Lk = int(rng.integers(2, 6)), int(rng.integers(4, 9))
    lens = _valid_lens(rng, B, Lk)
    lens[-1] = Lk  # a row without padding
    probe = Probe([Call("lens", "@tensor", (lens,)), Call("m", "padding_mask", (Ref("lens"), Lk))], outputs=Ref("m"))
    lens_t = _t(lens)
    return Case(probe, _np(ref.padding_mask(lens_t, Lk)), COUNT, output_names={"": f"padding_mask({lens.tolist()}, {Lk})"},
                patterns=[BugPattern("matches", PADDING_INCLUSIVE, data=_np(bug.padding_mask_inclusive(lens_t, Lk))),
                          BugPattern("matches", PADDING_2D, data=_np(bug.padding_mask_2d(lens_t, Lk)))])


# -- q7: training ------------------------------------------------------------------------------

TRAIN_NOT_DETACHED = _msg("El estado no se separa del grafo entre lotes: el backward del segundo lote intenta recorrer "
                          "el grafo del primero, ya liberado (y con los pesos ya cambiados). Al empezar cada lote haz "
                          "state = state.detach() (o state.detach_()).",
                          "The state is not detached between batches: the second batch's backward tries to run through "
                          "the first batch's graph, already freed (and with the weights already changed). At the start "
                          "of each batch do state = state.detach() (or state.detach_()).")
TRAIN_STATE_RESET = _msg("El estado vuelve a cero en cada lote: con la partición secuencial, el estado final de un lote es "
                         "el inicial del siguiente (solo se separa del grafo con detach).",
                         "The state goes back to zero in every batch: with sequential partitioning, a batch's final state "
                         "is the next one's initial state (only detached from the graph).")
TRAIN_NO_CLIP = _msg("Los pesos no coinciden: ¿recortas los gradientes? Llama a clip_gradients(model.parameters(), theta) "
                     "entre loss.backward() y optimizer.step().",
                     "The weights do not match: are the gradients clipped? Call clip_gradients(model.parameters(), "
                     "theta) between loss.backward() and optimizer.step().")
TRAIN_NO_ZERO_GRAD = _msg("Los pesos no coinciden: ¿falta optimizer.zero_grad()? Sin él cada paso suma los gradientes de "
                          "todos los anteriores.",
                          "The weights do not match: is optimizer.zero_grad() missing? Without it each step adds up the "
                          "gradients of all the previous ones.")
TRAIN_MEAN_PPL = _msg("La perplejidad de la época es exp de la pérdida media por token de toda la época, no la media de "
                      "las perplejidades de los lotes.",
                      "The epoch's perplexity is exp of the mean loss per token over the whole epoch, not the mean of "
                      "the batches' perplexities.")
TRAIN_UNWEIGHTED = _msg("Sumas las pérdidas de los lotes tal cual y divides por el total de tokens: cada pérdida de lote "
                        "ya es una media, así que pondera cada una por sus tokens (loss.item() * Y.numel()) antes de "
                        "sumar y dividir por el total.",
                        "You add up the batches' losses as they are and divide by the total of tokens: each batch loss "
                        "is already a mean, so weight each one by its tokens (loss.item() * Y.numel()) before adding up "
                        "and dividing by the total.")
TRAIN_NO_STEP = _msg("Los pesos no cambiaron: ¿falta optimizer.step() después de loss.backward() y clip_gradients?",
                     "The weights did not change: is optimizer.step() missing after loss.backward() and clip_gradients?")
TRAIN_NO_BACKWARD = _msg("clip_gradients sumó una lista vacía (el entero 0, no un tensor): ¿ningún parámetro tenía "
                         "gradiente porque falta loss.backward() antes de recortar, o le pasas un iterador ya agotado?",
                         "clip_gradients added up an empty list (the integer 0, not a tensor): did no parameter have a "
                         "gradient because loss.backward() is missing before clipping, or do you pass it an iterator "
                         "already used up?")
TRAIN_BUGS = ((bug.train_epoch_state_reset, TRAIN_STATE_RESET, "[1]"), (bug.train_epoch_no_clip, TRAIN_NO_CLIP, "[1]"),
              (bug.train_epoch_no_zero_grad, TRAIN_NO_ZERO_GRAD, "[1]"), (bug.train_epoch_mean_of_ppl, TRAIN_MEAN_PPL, "[0]"),
              (bug.train_epoch_unweighted, TRAIN_UNWEIGHTED, "[0]"))
TRAIN_RAISES = [BugPattern("raises", TRAIN_NOT_DETACHED, data="backward through the graph a second time"),
                BugPattern("raises", TRAIN_NOT_DETACHED, data="modified by an inplace operation"),
                BugPattern("raises", TRAIN_NO_BACKWARD, data="must be Tensor, not int")]


def _train_run(fn, state, batches, lr, theta, epochs=1):
    model = _rnn_model(ref.RNNScratch, state)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    ppl = [fn(model, [(_t(X), _t(Y)) for X, Y in batches], optimizer, theta, "cpu") for _ in range(epochs)]
    return ppl, {k: _np(v) for k, v in model.state_dict().items()}


def _train_steps(V: int, H: int, state, batches, lr: float, epochs: int, theta: float, dtype: str = "float64",
                 momentum: float = 0.0):
    steps = [Call("m", "RNNScratch", (V, H)), Call("load", "@load_state_dict", (Ref("m"), state), {"dtype": dtype}),
             Call("dev", "@device"), Call("opt", "@sgd", (Ref("m"), lr), {"momentum": momentum})]
    for i, (X, Y) in enumerate(batches):
        steps += [Call(f"X{i}", "@tensor", (X,)), Call(f"Y{i}", "@tensor", (Y,))]
    data = [(Ref(f"X{i}"), Ref(f"Y{i}")) for i in range(len(batches))]
    steps += [Call(f"e{e}", "train_epoch", (Ref("m"), data, Ref("opt")), {"theta": theta, "device": Ref("dev")})
              for e in range(epochs)]
    steps.append(Call("sd", "@state_dict", (Ref("m"),)))
    return steps


def _train_case(rng: np.random.Generator, B: int, T: int, num_batches: int) -> Case:
    V, H = _rnn_dims(rng)
    state = _rnn_state(rng, V, H)
    corpus = [int(c) for c in rng.integers(0, V, size=B * T * num_batches + 1)]
    batches = _batches(ref.seq_data_iter_sequential, corpus, B, T)
    lr = float(rng.uniform(0.2, 0.5))
    # theta below every step's gradient norm, so that clipping acts in every step
    norms = []
    probe_model = _rnn_model(ref.RNNScratch, state)
    logits, _ = probe_model(_t(batches[0][0]))
    torch.nn.functional.cross_entropy(logits.reshape(-1, V), _t(batches[0][1]).reshape(-1)).backward()
    norms.append(math.sqrt(sum(float((p.grad ** 2).sum()) for p in probe_model.parameters())))
    theta = float(norms[0] * rng.uniform(0.1, 0.3))
    ppl, final = _train_run(ref.train_epoch, state, batches, lr, theta)
    probe = Probe(_train_steps(V, H, state, batches, lr, 1, theta), outputs=(Ref("e0"), Ref("sd")))
    patterns = [*TRAIN_RAISES, *RNN_RAISES, BugPattern("unchanged", TRAIN_NO_STEP, data=state, output="[1]")]
    for fn, message, output in TRAIN_BUGS:
        bad_ppl, bad_state = _train_run(fn, state, batches, lr, theta)
        patterns.append(BugPattern("matches", message, data=bad_ppl[0] if output == "[0]" else bad_state, output=output))
    return Case(probe, (ppl[0], final), TRAIN, output_names=_names("perplejidad", "state_dict"), patterns=patterns)


def build_train_epoch(rng: np.random.Generator) -> Case:
    return _train_case(rng, int(rng.integers(2, 5)), int(rng.integers(3, 7)), 3)


def build_train_epoch_odd(rng: np.random.Generator) -> Case:
    # one sequence per batch, odd lengths, more batches
    return _train_case(rng, 1, int(rng.choice([5, 7, 9])), 4)


def _judge_target(value, case: Case) -> list[Mismatch]:
    ctx = case.context
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[1], dict)):
        return _fail("No pude leer el resultado del entrenamiento.", "Could not read the training's result.")
    history, state = value
    epochs = TRAIN_TARGET["epochs"]
    try:
        hist = np.asarray([float(np.asarray(h)) for h in history], dtype=float)
    except (TypeError, ValueError):
        hist = np.array([])
    if len(hist) != epochs or not np.all(np.isfinite(hist)):
        return _fail(f"train_epoch debe devolver la perplejidad de la época, un número finito; en {epochs} épocas "
                     f"devolvió {list(history)[:epochs]!r}.",
                     f"train_epoch must return the epoch's perplexity, a finite number; over {epochs} epochs it "
                     f"returned {list(history)[:epochs]!r}.")
    model = ref.RNNScratch(ctx["V"], TRAIN_TARGET["hidden"])
    try:
        model.load_state_dict({k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in state.items()})
    except Exception as exc:  # names were checked in q3; say it plainly here too
        return _fail(f"No pude cargar los pesos entrenados en el RNNScratch de referencia: {str(exc)[:300]}",
                     f"Could not load the trained weights into the reference RNNScratch: {str(exc)[:300]}")
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        return _fail("Los pesos entrenados tienen NaN/inf: el entrenamiento divergió (¿recortas los gradientes?).",
                     "The trained weights hold NaN/inf: training diverged (are the gradients clipped?).")
    ppl = _one_thread(lambda: ref.evaluate_perplexity(model, ctx["test_corpus"], TRAIN_TARGET["batch_size"],
                                                      TRAIN_TARGET["num_steps"]))
    bound = ctx["reference"] * (1 + TRAIN_TARGET["margin"])
    if not ppl <= bound:
        return _fail(f"Tras {epochs} épocas con tu RNNScratch y tu train_epoch, la perplejidad en nombres nuevos es "
                     f"{ppl:.2f}; la referencia, desde los mismos pesos iniciales, llega a {ctx['reference']:.2f} y se "
                     f"pide como mucho {bound:.2f} (un modelo uniforme da {ctx['V']}). Revisa el bucle: estado con "
                     "detach entre lotes, zero_grad, backward, clip_gradients y step en cada lote.",
                     f"After {epochs} epochs with your RNNScratch and your train_epoch, the perplexity on new names is "
                     f"{ppl:.2f}; the reference, from the same initial weights, reaches {ctx['reference']:.2f} and at "
                     f"most {bound:.2f} is required (a uniform model gives {ctx['V']}). Check the loop: state detached "
                     "between batches, zero_grad, backward, clip_gradients and step every batch.")
    return []


def target_data(seed: int):
    """The target run's vocabulary, batches and held-out corpus (new names for every batch seed)."""
    train_text = make_names_text(TRAIN_TARGET["train_names"], seed=seed)
    test_text = make_names_text(TRAIN_TARGET["test_names"], seed=seed + 1)
    vocab = ref.Vocab(list(NAMES[0] + " " + " ".join(NAMES)))  # every character the names can have
    batches = _batches(ref.seq_data_iter_sequential, vocab[list(train_text)], TRAIN_TARGET["batch_size"],
                       TRAIN_TARGET["num_steps"])
    return vocab, batches, vocab[list(test_text)]


def build_train_target(rng: np.random.Generator) -> Case:
    seed = int(rng.integers(0, 2**31))
    vocab, batches, test_corpus = target_data(seed)
    V, H = len(vocab), TRAIN_TARGET["hidden"]
    gen = torch.Generator().manual_seed(seed)
    init = {"W_xh": torch.randn(V, H, generator=gen) * 0.1, "W_hh": torch.randn(H, H, generator=gen) * 0.1,
            "b_h": torch.zeros(H), "W_hq": torch.randn(H, V, generator=gen) * 0.1, "b_q": torch.zeros(V)}
    init = {k: _np(v).astype(np.float32) for k, v in init.items()}

    def reference_run():
        model = _rnn_model(ref.RNNScratch, init, dtype=torch.float32)
        optimizer = torch.optim.SGD(model.parameters(), lr=TRAIN_TARGET["lr"], momentum=TRAIN_TARGET["momentum"])
        data = [(_t(X), _t(Y)) for X, Y in batches]
        for _ in range(TRAIN_TARGET["epochs"]):
            ref.train_epoch(model, data, optimizer, TRAIN_TARGET["theta"])
        return ref.evaluate_perplexity(model, test_corpus, TRAIN_TARGET["batch_size"], TRAIN_TARGET["num_steps"])

    reference = _one_thread(reference_run)
    steps = _train_steps(V, H, init, batches, TRAIN_TARGET["lr"], TRAIN_TARGET["epochs"], TRAIN_TARGET["theta"],
                         dtype="float32", momentum=TRAIN_TARGET["momentum"])
    probe = Probe(steps, outputs=(tuple(Ref(f"e{e}") for e in range(TRAIN_TARGET["epochs"])), Ref("sd")))
    return Case(probe, judge=_judge_target, context={"V": V, "test_corpus": test_corpus, "reference": reference},
                patterns=[*TRAIN_RAISES, *RNN_RAISES])


def _check(question: str, name: str, es: str, en: str, build, **kwargs) -> Check:
    @functools.wraps(build)
    def one_thread_build(rng: np.random.Generator) -> Case:  # tiny tensors: threads only fight over the cores
        return _one_thread(lambda: build(rng))

    return Check(question, name, _msg(es, en), one_thread_build, **kwargs)


CHECKS = [
    # q1 · Vocab
    _check("q1", "vocab_basic", "Vocab de un texto de nombres: índices, búsqueda (con desconocidos) y to_tokens",
           "Vocab of a names text: indices, lookup (with unknown tokens) and to_tokens", build_vocab_basic, public=True),
    _check("q1", "vocab_ties", "Vocab con frecuencias empatadas: orden de primera aparición",
           "Vocab with tied frequencies: order of first appearance", build_vocab_ties),
    _check("q1", "vocab_min_freq", "Vocab con min_freq y reserved_tokens", "Vocab with min_freq and reserved_tokens",
           build_vocab_min_freq),
    _check("q1", "vocab_reserved_in_text", "Vocab con un token reservado que también está en el texto (sin repetirlo)",
           "Vocab with a reserved token that is also in the text (not repeated)", build_vocab_reserved_in_text),
    # q2 · one_hot and seq_data_iter_sequential
    _check("q2", "one_hot_basic", "one_hot de un lote (B, T)", "one_hot of a (B, T) batch", build_one_hot_basic,
           public=True),
    _check("q2", "one_hot_shapes", "one_hot de un vector, de (T, 1) y de un tensor 3-D; V = 1",
           "one_hot of a vector, of (T, 1) and of a 3-D tensor; V = 1", build_one_hot_shapes),
    _check("q2", "seq_iter_basic", "seq_data_iter_sequential: pares (X, Y) con Y desplazado un token",
           "seq_data_iter_sequential: (X, Y) pairs with Y shifted by one token", build_seq_iter_basic, public=True),
    _check("q2", "seq_iter_shapes", "seq_data_iter_sequential con batch_size 1, tamaños impares, num_steps 1 y un "
           "corpus largo", "seq_data_iter_sequential with batch_size 1, odd sizes, num_steps 1 and a long corpus",
           build_seq_iter_shapes),
    _check("q2", "seq_iter_continuity", "seq_data_iter_sequential: la fila b de cada lote continúa la del anterior",
           "seq_data_iter_sequential: row b of each batch continues the previous one's", build_seq_iter_continuity),
    # q3 · rnn_cell_forward and RNNScratch
    _check("q3", "rnn_cell", "rnn_cell_forward: salida y gradientes (x, h, W_xh, W_hh, b_h)",
           "rnn_cell_forward: output and gradients (x, h, W_xh, W_hh, b_h)", build_rnn_cell, public=True),
    _check("q3", "rnn_cell_batch1", "rnn_cell_forward con un solo ejemplo (B = 1), con gradientes",
           "rnn_cell_forward with a single example (B = 1), with gradients", build_rnn_cell_batch1),
    _check("q3", "rnn_cell_square", "rnn_cell_forward con D = H: cada peso en su sitio",
           "rnn_cell_forward with D = H: each weight in its place", build_rnn_cell_square),
    _check("q3", "rnn_parameters", "RNNScratch: nombres y formas de los parámetros prescritos",
           "RNNScratch: names and shapes of the prescribed parameters", build_rnn_parameters),
    _check("q3", "rnn_init", "RNNScratch: pesos N(0, sigma²) y sesgos a cero",
           "RNNScratch: N(0, sigma²) weights and zero biases", build_rnn_init),
    _check("q3", "rnn_forward", "RNNScratch con pesos y estado dados: logits (B, T, V), estado final y gradientes "
           "(parámetros y estado inicial)", "RNNScratch with given weights and state: logits (B, T, V), final state "
           "and gradients (parameters and initial state)", build_rnn_forward, weight=2, public=True),
    _check("q3", "rnn_no_state", "RNNScratch con state=None, lote impar y secuencias largas",
           "RNNScratch with state=None, an odd batch and long sequences", build_rnn_no_state),
    _check("q3", "rnn_square", "RNNScratch con B = T: el bucle recorre el tiempo, no el lote",
           "RNNScratch with B = T: the loop runs over time, not the batch", build_rnn_square),
    _check("q3", "rnn_single_step", "RNNScratch con una secuencia de un paso (B = T = 1), con gradientes",
           "RNNScratch with one sequence of one step (B = T = 1), with gradients", build_rnn_single),
    # q4 · clip_gradients, perplexity, predict
    _check("q4", "clip_large", "clip_gradients con norma global > θ: gradientes escalados a norma θ",
           "clip_gradients with global norm > θ: gradients scaled to norm θ", build_clip_large, weight=2, public=True),
    _check("q4", "clip_small", "clip_gradients con norma global ≤ θ: los gradientes no cambian",
           "clip_gradients with global norm ≤ θ: the gradients do not change", build_clip_small),
    _check("q4", "clip_norm", "clip_gradients devuelve la norma global antes de recortar",
           "clip_gradients returns the global norm before clipping", build_clip_norm),
    _check("q4", "perplexity", "perplexity de logits aleatorios", "perplexity of random logits", build_perplexity,
           public=True),
    _check("q4", "perplexity_uniform", "perplexity de un modelo uniforme: exactamente V",
           "perplexity of a uniform model: exactly V", build_perplexity_uniform),
    _check("q4", "perplexity_square", "perplexity con B = 1 y T = V", "perplexity with B = 1 and T = V",
           build_perplexity_square),
    _check("q4", "predict", "predict con pesos dados: prefijo corto y predicción voraz",
           "predict with given weights: a short prefix and greedy prediction", build_predict, public=True),
    _check("q4", "predict_long", "predict con un prefijo largo (calentamiento) y muchas predicciones",
           "predict with a long prefix (warm-up) and many predictions", build_predict_long),
    _check("q4", "predict_edge", "predict con un prefijo de un carácter y con num_preds = 0",
           "predict with a one-character prefix and with num_preds = 0", build_predict_edge),
    # q5 · GRU
    _check("q5", "gru_parameters", "GRU: nombres y formas de los parámetros prescritos",
           "GRU: names and shapes of the prescribed parameters", build_gru_parameters),
    _check("q5", "gru_forward", "GRU con pesos y estado dados: salidas, estado final y gradientes",
           "GRU with given weights and state: outputs, final state and gradients", build_gru_forward, weight=2,
           public=True),
    _check("q5", "gru_no_state", "GRU con H=None, una secuencia larga (B = 1)",
           "GRU with H=None, one long sequence (B = 1)", build_gru_no_state),
    _check("q5", "gru_vs_grucell", "GRU frente a torch.nn.GRUCell con los pesos equivalentes",
           "GRU against torch.nn.GRUCell with the equivalent weights", build_gru_vs_grucell),
    _check("q5", "gru_square", "GRU con T = B: el bucle recorre el tiempo, no el lote",
           "GRU with T = B: the loop runs over time, not the batch", build_gru_square),
    # q6 · attention and masks
    _check("q6", "attention_basic", "scaled_dot_product_attention sin máscara: salida y pesos",
           "scaled_dot_product_attention without a mask: output and weights", build_attention_basic, public=True),
    _check("q6", "attention_backward", "scaled_dot_product_attention: gradientes respecto a q, k y v",
           "scaled_dot_product_attention: gradients w.r.t. q, k and v", build_attention_backward),
    _check("q6", "attention_padding", "scaled_dot_product_attention con máscara de relleno (B, 1, Lk): peso 0 en el "
           "relleno, con gradientes", "scaled_dot_product_attention with a padding mask (B, 1, Lk): zero weight on "
           "the padding, with gradients", build_attention_padding, weight=2),
    _check("q6", "attention_causal", "scaled_dot_product_attention con máscara causal (L, L)",
           "scaled_dot_product_attention with a causal (L, L) mask", build_attention_causal, weight=2),
    _check("q6", "attention_single_query", "scaled_dot_product_attention con una consulta (B = Lq = 1) y relleno",
           "scaled_dot_product_attention with one query (B = Lq = 1) and padding", build_attention_single_query),
    _check("q6", "causal_mask", "causal_mask de 1, de un tamaño impar y de uno mayor",
           "causal_mask of size 1, of an odd size and of a larger one", build_causal_mask, weight=1.5, public=True),
    _check("q6", "padding_mask", "padding_mask: (B, 1, num_keys), True en las claves válidas",
           "padding_mask: (B, 1, num_keys), True on the valid keys", build_padding_mask, weight=1.5),
    # q7 · train_epoch
    _check("q7", "train_epoch", "train_epoch: 3 lotes con SGD y recorte; perplejidad y pesos finales",
           "train_epoch: 3 batches with SGD and clipping; perplexity and final weights", build_train_epoch, weight=2),
    _check("q7", "train_epoch_odd", "train_epoch con una secuencia por lote y longitud impar",
           "train_epoch with one sequence per batch and an odd length", build_train_epoch_odd, public=True),
    _check("q7", "train_target", f"train_epoch entrena un RNNScratch {TRAIN_TARGET['epochs']} épocas hasta la "
           f"perplejidad de la referencia más un {TRAIN_TARGET['margin']:.0%}",
           f"train_epoch trains an RNNScratch for {TRAIN_TARGET['epochs']} epochs to the reference's perplexity plus "
           f"{TRAIN_TARGET['margin']:.0%}", build_train_target, weight=2, timeout_s=60),
]
