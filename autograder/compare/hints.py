"""Recognise known bugs in a wrong answer, to add a hint to its mismatch report.

Authored patterns (:class:`~autograder.checks.BugPattern`) come first: each
names a kind of :data:`PATTERN_KINDS`, a message and, for some kinds, data.
Where none matches, a few generic detectors look at every wrong output: the
answer scaled by a constant factor, transposed, negated, or with NaN/inf.

A hint is only given for an output that is wrong: a transposed symmetric
matrix, or buggy data that happens to equal the expected answer, give none.
Detection never raises: a pattern whose test fails in any way does not match.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from autograder.checks import BugPattern, Text, Tolerance, text
from autograder.compare.core import MISSING, Mismatch, compare, get_path, iter_leaves, name_for

PATTERN_KINDS = ("matches", "scaled", "transposed", "negated", "nonfinite", "unchanged")
"""``matches``/``unchanged``: the answer (at ``output``, else the whole of it)
is close to ``data``. ``scaled``: close to the expected one times ``data`` (a
number). ``transposed``, ``negated``: close to the expected one transposed
(2-D) or negated. ``nonfinite``: NaN/inf where the expected one is finite.
Without ``output``, the last four look at every output and match if one does."""

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


# --- matching ---------------------------------------------------------------------


def _find(
    actual: Any, expected: Any, patterns: Sequence[BugPattern], tol: Tolerance, lang: str, generic: bool
) -> list[_Found]:
    found: list[_Found] = []
    for pattern in patterns:
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
    if c is not None and _scaled(a, e, c, tol):
        return _scaled_message(c, lang)
    return None


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
            "es": "¿falta o sobra dividir por el tamaño del lote?",
            "en": "a missing or extra division by the batch size?",
        }
    return text({"es": f"tu resultado es {es}: {why['es']}", "en": f"your result is {en}: {why['en']}"}, lang)
