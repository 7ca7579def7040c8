"""Recognise known bugs in a wrong answer, to add a hint to its mismatch report.

Authored patterns (:class:`~autograder.checks.BugPattern`) come first: each
names a kind of :data:`PATTERN_KINDS`, a message and, for some kinds, data.
Where none matches, a few generic detectors look at every wrong output: the
answer scaled by a constant factor, transposed, negated, with NaN/inf, one
element too few or too many, or wrong only along the last (or first) row or
column of an axis (off by one). An answer that never came back (the probe
raised) is explained by :func:`error_hints` (authored ``raises`` patterns) or
:func:`generic_error_hints` (the common errors read in plain words).

A hint is only given for an output that is wrong: a transposed symmetric
matrix, or buggy data that happens to equal the expected answer, give none.
Detection never raises: a pattern whose test fails in any way does not match.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from autograder.checks import BugPattern, Text, Tolerance, text
from autograder.compare.core import MISSING, Mismatch, compare, get_path, iter_leaves, name_for

PATTERN_KINDS = ("matches", "scaled", "transposed", "negated", "nonfinite", "unchanged", "shape")
"""``matches``/``unchanged``: the answer (at ``output``, else the whole of it)
is close to ``data``. ``scaled``: close to the expected one times ``data`` (a
number). ``transposed``, ``negated``: close to the expected one transposed
(2-D) or negated. ``nonfinite``: NaN/inf where the expected one is finite.
Without ``output``, the last four look at every output and match if one does.
``shape``: the array at ``output`` has a shape other than the expected one
(``data``, where given: that shape), e.g. to explain how an output's size is
computed; it also answers an error that reveals the output's shape."""

RAISES = "raises"
"""A pattern of this kind recognises a bug by the error it raises, not by an answer: ``data`` is a piece of
text that the exception's ``"Type: message"`` contains (``"backward through the graph a second time"``).
:func:`error_hints` reads them; :func:`detect` ignores them."""

NONFINITE: Text = {
    "es": "valores no finitos (NaN/inf): ¿una exponencial sin estabilizar o un log(0)?",
    "en": "non-finite values (NaN/inf): an exponential without stabilisation, or a log(0)?",
}
NEGATED: Text = {
    "es": "tu resultado tiene el signo cambiado: ¿una resta al revés o falta un signo menos?",
    "en": "your result has the opposite sign: a subtraction the wrong way round, or a missing minus?",
}
TRANSPOSED: Text = {
    "es": "tu resultado es el traspuesto del esperado: ¿falta o sobra un .T (filas por columnas)?",
    "en": "your result is the transpose of the expected one: a missing or extra .T (rows for columns)?",
}

_Found = tuple[str, str, bool]  # (path where it matched, message, generic?)


def detect(
    actual: Any,
    expected: Any,
    patterns: Sequence[BugPattern],
    tol: Tolerance,
    lang: str = "es",
    output_names: Mapping[str, str] | None = None,
    generic: bool = True,
) -> list[str]:
    """The messages of every pattern that ``actual`` matches, in ``lang``.

    Where no authored pattern matches and ``generic`` is true, the generic
    detectors' messages, each led by the output's name (or path) when the
    answer has several.
    """
    names = dict(output_names or {})
    messages: list[str] = []
    for path, message, is_generic in _find(actual, expected, patterns, tol, lang, generic):
        label = name_for(path, names) or path
        if is_generic and label:
            message = f"{label}: {message}"
        if message not in messages:
            messages.append(message)
    return messages


def generic_hints(
    actual: Any, expected: Any, tol: Tolerance, lang: str = "es", output_names: Mapping[str, str] | None = None
) -> list[str]:
    """Only the generic detectors (scaled, transposed, negated, non-finite)."""
    return detect(actual, expected, (), tol, lang, output_names)


def annotate(
    mismatches: list[Mismatch],
    actual: Any,
    expected: Any,
    patterns: Sequence[BugPattern],
    tol: Tolerance,
    lang: str = "es",
    generic: bool = True,
) -> list[Mismatch]:
    """Fill the ``hints`` of ``mismatches``: each hint goes to the first mismatch at, above or under its path."""
    if not mismatches:
        return mismatches
    for path, message, _ in _find(actual, expected, patterns, tol, lang, generic):
        related = (m for m in mismatches if m.path.startswith(path) or path.startswith(m.path))
        target = next(related, mismatches[0])
        if message not in target.hints:
            target.hints.append(message)
    return mismatches


def error_hints(patterns: Sequence[BugPattern], error_type: str, error_message: str, lang: str = "es") -> list[str]:
    """The messages of the :data:`RAISES` patterns whose text occurs in ``"error_type: error_message"``."""
    raised = f"{error_type}: {error_message}"
    found: list[str] = []
    for pattern in patterns:
        if pattern.kind == RAISES and isinstance(pattern.data, str) and pattern.data and pattern.data in raised:
            message = text(pattern.message, lang)
            if message not in found:
                found.append(message)
    return found


# --- matching ---------------------------------------------------------------------


def _find(
    actual: Any, expected: Any, patterns: Sequence[BugPattern], tol: Tolerance, lang: str, generic: bool
) -> list[_Found]:
    found: list[_Found] = []
    shape_last = [p for p in patterns if p.kind != "shape"] + [p for p in patterns if p.kind == "shape"]
    for pattern in shape_last:
        if pattern.kind == "shape" and found:
            break  # the size of an output is explained only where no other pattern explains the answer
        try:
            path = _match(pattern, actual, expected, tol)
            if path is not None:
                found.append((path, text(pattern.message, lang), False))
        except Exception:  # a pattern that cannot be tested does not match
            continue
    if found or not generic:
        return found
    try:
        leaves = list(iter_leaves(expected))
    except Exception:
        return found
    for path, e_leaf in leaves:
        try:
            message = _generic(get_path(actual, path), e_leaf, tol, lang)
        except Exception:
            continue
        if message:
            found.append((path, message, True))
    return found


def _match(pattern: BugPattern, actual: Any, expected: Any, tol: Tolerance) -> str | None:
    """The path where ``pattern`` matches, or ``None``."""
    base = pattern.output or ""
    a, e = get_path(actual, base), get_path(expected, base)
    if a is MISSING or pattern.kind not in PATTERN_KINDS:
        return None
    if pattern.kind in ("matches", "unchanged"):
        right = e is not MISSING and _close(a, e, tol)
        return base if not right and _close(a, pattern.data, tol) else None
    if pattern.kind == "shape":
        got, want = _shape(a), _shape(e)
        wrong = got is not None and want is not None and got != want
        return base if wrong and (pattern.data is None or tuple(pattern.data) == got) else None
    if e is MISSING:
        return None
    test = _TESTS[pattern.kind]
    for path, e_leaf in iter_leaves(e, base):
        a_leaf = get_path(actual, path)
        if a_leaf is not MISSING and not _close(a_leaf, e_leaf, tol) and test(a_leaf, e_leaf, pattern.data, tol):
            return path
    return None


def _generic(a: Any, e: Any, tol: Tolerance, lang: str) -> str | None:
    """The first generic detector that explains a wrong leaf, as a message."""
    if a is MISSING or _close(a, e, tol):
        return None
    if _nonfinite(a, e, None, tol):
        return text(NONFINITE, lang)
    if _scaled(a, e, -1.0, tol):
        return text(NEGATED, lang)
    if _transposed(a, e, None, tol):
        return text(TRANSPOSED, lang)
    c = _factor(a, e)
    if c is not None and _scaled(a, e, c, tol) and (_size(e) > 1 or _whole(c)):  # any number is c times another
        return _scaled_message(c, lang)
    return _off_by_one(a, e, tol, lang)


def _close(a: Any, e: Any, tol: Tolerance) -> bool:
    return not compare(a, e, tol)


def _numeric(x: Any) -> np.ndarray | None:
    """``x`` as a real or complex array (ints as float64), or ``None``."""
    if isinstance(x, dict) or x is None or isinstance(x, str):
        return None
    arr = np.asarray(x)
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    return arr if arr.dtype.kind in "fc" else None


def _scaled(a: Any, e: Any, c: Any, tol: Tolerance) -> bool:
    if not isinstance(c, numbers.Number) or isinstance(c, bool):
        return False
    e_arr = _numeric(e)
    if e_arr is None or not np.any(e_arr != 0):
        return False
    with np.errstate(all="ignore"):
        return _close(a, e_arr * c, tol)


def _negated(a: Any, e: Any, data: Any, tol: Tolerance) -> bool:
    return _scaled(a, e, -1.0, tol)


def _transposed(a: Any, e: Any, data: Any, tol: Tolerance) -> bool:
    e_arr = _numeric(e)
    return e_arr is not None and e_arr.ndim == 2 and _close(a, e_arr.T, tol)


def _nonfinite(a: Any, e: Any, data: Any, tol: Tolerance) -> bool:
    a_arr, e_arr = _numeric(a), _numeric(e)
    if a_arr is None or e_arr is None:
        return False
    a_bad = ~np.isfinite(a_arr)
    if a_arr.shape == e_arr.shape:
        return bool(np.any(a_bad & np.isfinite(e_arr)))
    return bool(a_bad.any() and np.isfinite(e_arr).all())


_TESTS: dict[str, Callable[[Any, Any, Any, Tolerance], bool]] = {
    "scaled": _scaled,
    "negated": _negated,
    "transposed": _transposed,
    "nonfinite": _nonfinite,
}


def _factor(a: Any, e: Any) -> float | None:
    """The least-squares ``c`` in ``a ≈ c·e``, rounded to an integer or 1/integer when that close."""
    a_arr, e_arr = _numeric(a), _numeric(e)
    if a_arr is None or e_arr is None or a_arr.size != e_arr.size or "c" in (a_arr.dtype.kind, e_arr.dtype.kind):
        return None
    a_flat, e_flat = a_arr.reshape(-1).astype(np.float64), e_arr.reshape(-1).astype(np.float64)
    with np.errstate(all="ignore"):
        den = float(np.dot(e_flat, e_flat))
        c = float(np.dot(a_flat, e_flat)) / den if den > 0 and np.isfinite(den) else 0.0
    if not np.isfinite(c) or c == 0 or abs(c - 1) < 1e-9 or abs(c + 1) < 1e-9:
        return None
    k = round(c)
    if k and abs(c - k) <= 1e-6 * abs(c):
        return float(k)
    k = round(1 / c)
    if k and abs(1 / c - k) <= 1e-6 * abs(1 / c):
        return 1 / k
    return c


def _scaled_message(c: float, lang: str) -> str:
    k, inv = round(c), round(1 / c)
    if c == k:
        es, en = f"{k} veces el esperado", f"{k} times the expected one"
    elif abs(1 / c - inv) < 1e-9 * abs(inv):
        frac = f"{'-' if inv < 0 else ''}1/{abs(inv)}"
        es, en = f"{frac} del esperado", f"{frac} of the expected one"
    else:
        es, en = f"{c:.3g} veces el esperado", f"{c:.3g} times the expected one"
    if c != k and abs(1 / c - inv) >= 1e-9 * abs(inv):
        why = {"es": "¿falta o sobra un factor constante?", "en": "a missing or extra constant factor?"}
    elif 2 in (abs(k), abs(inv)):
        why = {
            "es": "¿falta o sobra un factor 2 (p. ej. al derivar x²)?",
            "en": "a missing or extra factor of 2 (e.g. from differentiating x²)?",
        }
    else:
        why = {
            "es": "¿una media donde va una suma (o al revés), o falta o sobra dividir por un tamaño, como el del lote?",
            "en": "a mean where a sum belongs (or the other way round), or a missing or extra division by a size, such "
                  "as the batch size?",
        }
    return text({"es": f"tu resultado es {es}: {why['es']}", "en": f"your result is {en}: {why['en']}"}, lang)


# --- off by one -----------------------------------------------------------------------


def _size(x: Any) -> int:
    arr = _numeric(x)
    return int(arr.size) if arr is not None else 0


def _shape(x: Any) -> tuple[int, ...] | None:
    """The shape of an array (or of a list of numbers), else ``None``."""
    if isinstance(x, np.ndarray) or (isinstance(x, (list, tuple)) and x and all(isinstance(v, numbers.Number) for v in x)):
        arr = _numeric(x)
        return tuple(arr.shape) if arr is not None else None
    return None


def _whole(c: float) -> bool:
    """``c`` is an integer or the inverse of one (a count: the batch size, a factor 2)."""
    return c == round(c) or abs(1 / c - round(1 / c)) < 1e-9 * abs(1 / c)


OFF_BY_ONE_LENGTH: Text = {
    "es": "tiene {got} elementos y se esperaban {want}: ¿un range que se queda corto o se pasa en uno (off-by-one)?",
    "en": "has {got} items where {want} were expected: a range that stops one short or goes one too far (off-by-one)?",
}
OFF_BY_ONE_EDGE: Text = {
    "es": "solo difieren los elementos de índice {index} en el eje {axis} (el {where} de ese eje): ¿un bucle o un "
          "range que se queda corto en uno (off-by-one), o un borde que no se calcula?",
    "en": "only the items at index {index} along axis {axis} (the {where} of that axis) differ: a loop or range that "
          "stops one short (off-by-one), or an edge that is never computed?",
}


def _off_by_one(a: Any, e: Any, tol: Tolerance, lang: str) -> str | None:
    """One element too many or too few in a 1-D answer; or a wrong answer only along the last (or first) row
    or column of one axis, the mark of a loop that stops one short."""
    a_arr, e_arr = _numeric(a), _numeric(e)
    if a_arr is None or e_arr is None:
        return None
    if a_arr.ndim == e_arr.ndim == 1 and abs(a_arr.size - e_arr.size) == 1:
        return text(OFF_BY_ONE_LENGTH, lang).format(got=a_arr.size, want=e_arr.size)
    if a_arr.shape != e_arr.shape or e_arr.ndim == 0 or e_arr.size < 4:
        return None
    with np.errstate(all="ignore"):
        wrong = ~(np.abs(a_arr - e_arr) <= tol.atol + tol.rtol * np.abs(e_arr))
    if not wrong.any():
        return None
    # the rest must be right where it is not trivially so: an answer of zeros matches a ReLU's zeros everywhere
    right_and_nonzero = ~wrong & (np.abs(e_arr) > tol.atol)
    for axis in range(e_arr.ndim):
        n = e_arr.shape[axis]
        if n < 3:
            continue
        for index, where in ((n - 1, ("último", "last")), (0, ("primero", "first"))):
            edge = np.zeros(e_arr.shape, dtype=bool)
            edge[(slice(None),) * axis + (index,)] = True
            if not (wrong & ~edge).any() and (right_and_nonzero & ~edge).any():
                return text(OFF_BY_ONE_EDGE, lang).format(index=index, axis=axis, where=where[lang == "en"])
    return None


# --- errors: hints for an answer that never came back ------------------------------------

ERROR_HINTS: dict[str, Text] = {
    "matmul": {
        "es": "un producto de matrices con formas incompatibles: escribe la forma de cada operando, (N, D) @ (D, M) "
              "da (N, M). ¿Falta o sobra un .T (traspuesta), usas la matriz equivocada, o falta o sobra una capa "
              "antes de esta?",
        "en": "a matrix product with incompatible shapes: write down each operand's shape, (N, D) @ (D, M) gives "
              "(N, M). A missing or extra .T (transpose), the wrong matrix, or a missing or extra layer before this?",
    },
    "broadcast": {
        "es": "dos operandos de formas que no se pueden combinar (broadcast): comprueba sus formas. ¿Una reducción "
              "sin keepdims=True (o keepdim=True), una reducción sobre el eje (axis/dim) equivocado, un .T o un "
              ".transpose de más o de menos, o sumas tensores de distinto número de canales o tamaño?",
        "en": "two operands whose shapes cannot be combined (broadcast): check their shapes. A reduction without "
              "keepdims=True (or keepdim=True), a reduction over the wrong axis (axis/dim), a missing or extra .T or "
              ".transpose, or tensors with different channels or sizes added together?",
    },
    "einsum": {
        "es": "einsum: un mismo índice tiene tamaños distintos en dos operandos: revisa el orden de los ejes de cada "
              "operando en la cadena (¿ejes traspuestos?).",
        "en": "einsum: one index has different sizes in two operands: check the order of each operand's axes in "
              "the string (transposed axes?).",
    },
    "channels": {
        "es": "una convolución recibe un número de canales distinto del que espera: ¿te saltas una capa, o las "
              "aplicas en otro orden?",
        "en": "a convolution gets a number of channels other than the one it expects: a skipped layer, or layers "
              "in another order?",
    },
    "leaf_inplace": {
        "es": "no se puede modificar in situ un tensor hoja que requiere gradiente mientras autograd está activo: haz "
              "la actualización dentro de `with torch.no_grad():`.",
        "en": "a leaf tensor that requires grad cannot be changed in place while autograd is on: do the update "
              "inside `with torch.no_grad():`.",
    },
    "grad_none": {
        "es": "algo vale None donde se esperaba un tensor: si es un `.grad`, ¿falta llamar a loss.backward() antes "
              "del paso, o el tensor no tiene requires_grad=True?",
        "en": "something is None where a tensor was expected: if it is a `.grad`, is loss.backward() missing before "
              "the step, or does the tensor lack requires_grad=True?",
    },
    "bool_mean": {
        "es": "mean() no acepta booleanos: para sumar los aciertos usa .sum() (o conviértelos antes con .float()).",
        "en": "mean() does not take booleans: to add up the hits use .sum() (or convert them first with .float()).",
    },
    "device": {
        "es": "tensores en dispositivos distintos (CPU y GPU): crea cada tensor nuevo donde están los datos "
              "(torch.zeros_like(h), device=x.device), mueve modelo *y* entradas con .to(device) y no escribas "
              "\"cpu\" ni \"cuda\" dentro de tus funciones.",
        "en": "tensors on different devices (CPU and GPU): create every new tensor where the data are "
              "(torch.zeros_like(h), device=x.device), move the model *and* its inputs with .to(device), and do not "
              "write \"cpu\" or \"cuda\" inside your functions.",
    },
    "cuda_numpy": {
        "es": ".numpy() sobre un tensor de la GPU: pásalo antes a la CPU, t.detach().cpu().numpy().",
        "en": ".numpy() on a GPU tensor: bring it to the CPU first, t.detach().cpu().numpy().",
    },
    "no_cuda": {
        "es": "tu código pide la GPU (\"cuda\" escrito a mano) y aquí no hay: usa el argumento device o el "
              "dispositivo de los datos (x.device), así funciona en CPU y en GPU.",
        "en": "your code asks for the GPU (\"cuda\" hard-coded) and there is none here: use the device argument or "
              "the data's device (x.device), so that it runs on CPU and on GPU.",
    },
    "name": {
        "es": "`{name}` no está definido cuando se ejecuta tu función: ¿falta un import, o ejecutar (sin errores) la "
              "celda que lo define?",
        "en": "`{name}` is not defined when your function runs: a missing import, or a cell that defines it that "
              "did not run (or failed)?",
    },
    "output_shape": {
        "es": "tu función devuelve una salida de forma {got}, pero se esperaba {want}: revisa cómo calculas el tamaño "
              "de la salida.",
        "en": "your function returns an output of shape {got}, but {want} was expected: check how you compute the "
              "output's size.",
    },
}

_MATMUL = ("shapes cannot be multiplied", "mismatch in its core dimension", "not aligned", "size mismatch, got")
_BROADCAST = ("could not be broadcast", "must match the size of tensor")
_OUTPUT_SHAPE = re.compile(r"grad_output\[0\] has a shape of torch\.Size\(\[([\d, ]*)\]\) and output\[0\] has a shape of "
                           r"torch\.Size\(\[([\d, ]*)\]\)")


def _ints(text_: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text_.replace(" ", "").split(",") if v)


def generic_error_hints(patterns: Sequence[BugPattern], error_type: str, error_message: str,
                        lang: str = "es") -> list[str]:
    """Hints for a probe that raised, where no authored ``raises`` pattern explains it.

    Where the error reveals the shape of the answer (torch's ``backward`` given a gradient of the expected
    shape), the authored patterns whose buggy answer has that shape, and the ``shape`` patterns, speak first;
    otherwise a plain-words reading of the common errors: shapes that do not multiply or broadcast, in-place
    changes of a leaf under autograd, a ``None`` gradient, an undefined name.
    """
    said = f"{error_type}: {error_message}"
    found: list[str] = []

    def add(message: Text | str) -> None:
        rendered = text(message, lang)
        if rendered not in found:
            found.append(rendered)

    shapes = _OUTPUT_SHAPE.search(said)
    if shapes:
        want, got = _ints(shapes.group(1)), _ints(shapes.group(2))
        for kind in ("matches", "shape"):  # the size of an output explained only where no buggy answer has it
            for pattern in patterns:
                try:
                    data = pattern.data
                    leaf = data[0] if isinstance(data, tuple) and data and isinstance(data[0], np.ndarray) else data
                    if kind == pattern.kind == "matches" and isinstance(leaf, np.ndarray) and tuple(leaf.shape) == got:
                        add(pattern.message)
                    elif kind == pattern.kind == "shape" and (data is None or tuple(data) == got):
                        add(pattern.message)
                except Exception:
                    continue
            if found:
                break
        if not found:
            add(text(ERROR_HINTS["output_shape"], lang).format(got=got, want=want))
        return found
    lowered = said.lower()
    if "expected all tensors to be on the same device" in lowered or "found at least two devices" in lowered:
        add(ERROR_HINTS["device"])
    elif "can't convert cuda" in lowered and "numpy" in lowered:
        add(ERROR_HINTS["cuda_numpy"])
    elif "torch not compiled with cuda" in lowered or "no cuda gpus are available" in lowered or (
            "cuda" in lowered and "driver" in lowered and "found no nvidia" in lowered):
        add(ERROR_HINTS["no_cuda"])
    elif any(k in lowered for k in _MATMUL):
        add(ERROR_HINTS["matmul"])
    elif any(k in lowered for k in _BROADCAST):
        add(ERROR_HINTS["broadcast"])
    elif "einsum" in lowered:
        add(ERROR_HINTS["einsum"])
    elif "channels, but got" in lowered:
        add(ERROR_HINTS["channels"])
    elif "leaf variable that requires grad" in lowered and "in-place" in lowered:
        add(ERROR_HINTS["leaf_inplace"])
    elif "nonetype" in lowered:
        add(ERROR_HINTS["grad_none"])
    elif "could not infer output dtype" in lowered and "bool" in lowered:
        add(ERROR_HINTS["bool_mean"])
    elif error_type == "NameError":
        name = re.search(r"name '(\w+)' is not defined", error_message)
        if name:
            add(text(ERROR_HINTS["name"], lang).format(name=name.group(1)))
    return found
