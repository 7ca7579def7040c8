"""Mismatch records as text for people, in the manner of ``torch.testing.assert_close``.

Spanish by default, English with ``lang="en"``::

    dlogits: no coincide con la referencia.
      Elementos distintos: 12 / 40 (30.0%)
      Mayor diferencia absoluta: 0.0231 en el índice (2, 1) (se permite 1e-09 + 1e-07·|esperado|)
      Mayor diferencia relativa: 0.5 en el índice (0, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

from autograder.checks import Tolerance, text
from autograder.compare.core import Mismatch

MAX_SHOWN = 5
_MAX_KEYS = 10

# Each phrase as (Spanish, English); {} fields are filled in by str.format.
_PHRASES: dict[str, tuple[str, str]] = {
    "result": ("resultado", "result"),
    "type": ("el tipo no coincide: se esperaba {}, se obtuvo {}.", "type mismatch: expected {}, got {}."),
    "length": (
        "la longitud no coincide: se esperaban {} elementos, se obtuvieron {}.",
        "length mismatch: expected {} items, got {}.",
    ),
    "length1": (
        "la longitud no coincide: se esperaba 1 elemento, se obtuvieron {}.",
        "length mismatch: expected 1 item, got {}.",
    ),
    "keys": ("las claves no coinciden: {}.", "keys do not match: {}."),
    "missing": ("faltan las claves {}", "missing keys {}"),
    "extra_too": ("sobran {}", "unexpected {}"),
    "extra": ("sobran las claves {}", "unexpected keys {}"),
    "shape": ("la forma no coincide: se esperaba {}, se obtuvo {}.", "shape mismatch: expected {}, got {}."),
    "dtype": (
        "el tipo de datos no coincide: se esperaban {} ({}), se obtuvo {}.",
        "dtype mismatch: expected {} ({}), got {}.",
    ),
    "nonfinite": (
        "hay valores no finitos (NaN/inf) donde la referencia es finita.",
        "has non-finite values (NaN/inf) where the reference is finite.",
    ),
    "n_nonfinite": ("Elementos no finitos: {}", "Non-finite elements: {}"),
    "first": ("El primero{}: {}", "The first{}: {}"),
    "values": ("no coincide con la referencia.", "does not match the reference."),
    "values_got": (
        "no coincide con la referencia: se esperaba {}, se obtuvo {}.",
        "does not match the reference: expected {}, got {}.",
    ),
    "n_values": ("Elementos distintos: {}", "Mismatched elements: {}"),
    "max_abs": ("Mayor diferencia absoluta: {}{}{}", "Greatest absolute difference: {}{}{}"),
    "max_rel": ("Mayor diferencia relativa: {}{}", "Greatest relative difference: {}{}"),
    "abs": ("Diferencia absoluta: {}{}", "Absolute difference: {}{}"),
    "rel": ("Diferencia relativa: {}{}", "Relative difference: {}{}"),
    "at": (" en el índice {}", " at index {}"),
    "allowed": (" (se permite {})", " (up to {} allowed)"),
    "expected": ("esperado", "expected"),
    "hint": ("Pista: {}", "Hint: {}"),
    "more": ("… y {} discrepancias más.", "… and {} more mismatches."),
    "more_one": ("… y 1 discrepancia más.", "… and 1 more mismatch."),
    # forms, for the codes of core.describe
    "None": ("None", "None"),
    "bool": ("un booleano (bool)", "a boolean (bool)"),
    "int": ("un entero (int)", "an integer (int)"),
    "float": ("un número (float)", "a number (float)"),
    "complex": ("un número complejo", "a complex number"),
    "number": ("un número", "a number"),
    "str": ("un texto (str)", "a string (str)"),
    "scalar": ("un escalar de numpy ({})", "a numpy scalar ({})"),
    "tuple": ("una tupla de {} elementos", "a tuple of {} items"),
    "tuple1": ("una tupla de 1 elemento", "a tuple of 1 item"),
    "list": ("una lista de {} elementos", "a list of {} items"),
    "list1": ("una lista de 1 elemento", "a list of 1 item"),
    "dict": ("un diccionario", "a dict"),
    "ndarray": ("un ndarray de forma {} ({})", "an ndarray of shape {} ({})"),
    "unsupported": (
        "un objeto {} (no admitido: devuelve arrays de numpy, números, tuplas, listas o diccionarios)",
        "a {} object (not supported: return numpy arrays, numbers, tuples, lists or dicts)",
    ),
    "other": ("un objeto {}", "a {} object"),
    # dtype kinds
    "f": ("números reales", "floating-point numbers"),
    "c": ("números complejos", "complex numbers"),
    "i": ("enteros", "integers"),
    "u": ("enteros", "integers"),
    "b": ("booleanos", "booleans"),
}


def _p(key: str, lang: str, *args: object) -> str:
    es, en = _PHRASES[key]
    return (en if lang == "en" else es).format(*args)


def format_mismatch(m: Mismatch, lang: str = "es") -> str:
    """One mismatch as text (several lines for a values mismatch), hints included."""
    label = m.name or m.path or _p("result", lang)
    body = _body(m, lang)
    lines = [f"{label}: {body}"]
    lines += ["  " + _p("hint", lang, h) for h in m.hints]
    return "\n".join(lines)


def format_mismatches(ms: Sequence[Mismatch], lang: str = "es", limit: int = MAX_SHOWN) -> str:
    """At most ``limit`` mismatches, one after the other, and how many more there are."""
    shown = [format_mismatch(m, lang) for m in ms[:limit]]
    rest = len(ms) - len(shown)
    if rest > 0:
        shown.append(_p("more_one", lang) if rest == 1 else _p("more", lang, rest))
    return "\n".join(shown)


def _body(m: Mismatch, lang: str) -> str:
    if m.kind == "type":
        return _p("type", lang, describe_form(m.expected_desc, lang), describe_form(m.actual_desc, lang))
    if m.kind == "length":
        if m.expected_desc == "1":
            return _p("length1", lang, m.actual_desc)
        return _p("length", lang, m.expected_desc, m.actual_desc)
    if m.kind == "keys":
        parts = []
        if m.missing:
            parts.append(_p("missing", lang, _keys(m.missing)))
        if m.extra:
            parts.append(_p("extra_too" if m.missing else "extra", lang, _keys(m.extra)))
        return _p("keys", lang, "; ".join(parts))
    if m.kind == "shape":
        return _p("shape", lang, m.expected_desc, m.actual_desc)
    if m.kind == "dtype":
        kind = _dtype_kind(m.expected_desc)
        return _p("dtype", lang, _p(kind, lang) if kind in "fciub" else m.expected_desc, m.expected_desc, m.actual_desc)
    if m.kind == "nonfinite":
        at = _p("at", lang, _index(m.first_index)) if m.first_index else ""
        return "\n  ".join(
            [
                _p("nonfinite", lang),
                _p("n_nonfinite", lang, _ratio(m.n_mismatched, m.n_total)),
                _p("first", lang, at, m.actual_desc),
            ]
        )
    if m.kind == "values":
        return _values(m, lang)
    if m.kind == "custom":
        return text(m.message, lang)
    return f"{m.kind}: {m.expected_desc} / {m.actual_desc}"


def _values(m: Mismatch, lang: str) -> str:
    if m.n_total == 0 or (m.n_total == 1 and m.expected_desc):  # a string, or a single number
        if not m.expected_desc:
            return _p("values", lang)
        head = _p("values_got", lang, m.expected_desc, m.actual_desc)
        if m.n_total == 0:
            return head
        return "\n  ".join(
            [head, _p("abs", lang, _g(m.max_abs), _allowed(m.tolerance, lang)), _p("rel", lang, _g(m.max_rel), "")]
        )
    at_abs = _p("at", lang, _index(m.max_abs_index)) if m.max_abs_index else ""
    at_rel = _p("at", lang, _index(m.max_rel_index)) if m.max_rel_index else ""
    return "\n  ".join(
        [
            _p("values", lang),
            _p("n_values", lang, _ratio(m.n_mismatched, m.n_total)),
            _p("max_abs", lang, _g(m.max_abs), at_abs, _allowed(m.tolerance, lang)),
            _p("max_rel", lang, _g(m.max_rel), at_rel),
        ]
    )


def describe_form(code: str, lang: str = "es") -> str:
    """A form code of ``core.describe`` (``"tuple:2"``) in words (``"una tupla de 2 elementos"``)."""
    head, _, rest = code.partition(":")
    try:
        if head in ("None", "bool", "int", "float", "complex", "number", "str") and not rest:
            return _p(head, lang)
        if head in ("tuple", "list"):
            return _p(head + "1", lang) if rest == "1" else _p(head, lang, rest)
        if head == "dict":
            return _p("dict", lang)
        if head == "ndarray":
            shape, _, dtype = rest.rpartition(":")
            return _p("ndarray", lang, shape, dtype)
        if head in ("scalar", "unsupported", "other"):
            return _p(head, lang, rest)
    except (KeyError, IndexError, ValueError):
        pass
    return code


def _dtype_kind(dtype: str) -> str:
    for prefix, kind in (("float", "f"), ("complex", "c"), ("uint", "u"), ("int", "i"), ("bool", "b")):
        if dtype.startswith(prefix):
            return kind
    return "?"


def _keys(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_MAX_KEYS])
    more = f", … (+{len(keys) - _MAX_KEYS})" if len(keys) > _MAX_KEYS else ""
    return f"[{shown}{more}]"


def _allowed(tol: Tolerance | None, lang: str) -> str:
    if tol is None:
        return ""
    terms = []
    if tol.atol or not tol.rtol:
        terms.append(f"{tol.atol:g}")
    if tol.rtol:
        terms.append(f"{tol.rtol:g}·|{_p('expected', lang)}|")
    return _p("allowed", lang, " + ".join(terms))


def _ratio(k: int, n: int) -> str:
    return f"{k} / {n} ({100 * k / n:.1f}%)" if n else f"{k} / {n}"


def _index(index: tuple[int, ...]) -> str:
    return str(tuple(index))


def _g(x: float) -> str:
    return f"{x:.3g}"
