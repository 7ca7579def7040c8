"""Compare a student's answer with the expected one: structured mismatch records.

Pure and data-only, in the manner of ``torch.testing.assert_close``: both
sides are plain data (nested tuples, lists and dicts of numpy arrays, Python
numbers, strings, ``None``), nothing is executed, and what comes back is a
list of :class:`Mismatch` records (empty when the answer is acceptable), which
``report`` turns into text. Attributes are checked before values: type, then
length or keys, then shape, then the kind of dtype, then non-finite values,
and only then the values themselves, ``|a - e| <= atol + rtol * |e|``
elementwise in float64.

What is accepted although it differs in form:

- a list where a tuple is expected, and the reverse;
- for an expected scalar: a Python number, a numpy scalar, a 0-d array or any
  size-1 array (a loss returned as ``array([2.3])``);
- float32 where float64 is expected (the tolerance decides), floats with
  integral values where integers (labels) are expected;
- a list of numbers where an array is expected (compared as that array), an
  array where a list of numbers is expected (a loss history).

Paths name items as torch does: ``""`` (the whole answer), ``"[1]"``,
``"['W1']"``, ``"[0]['b']"``. :func:`get_path` reads them back.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autograder.checks import Text, Tolerance

MAX_ELEMENTS = 50_000_000
"""An actual array larger than this is never compared element by element."""

MAX_DEPTH = 64
"""Nesting deeper than this is reported, not followed (no recursion blow-up)."""

KINDS = ("type", "length", "keys", "shape", "dtype", "nonfinite", "values", "custom")

_NUMERIC = "biufc"  # dtype kinds compared as numbers
_REAL_SCALARS = (bool, int, float, np.bool_, np.integer, np.floating)
_SCALARS = (*_REAL_SCALARS, complex, np.complexfloating)
UNSUPPORTED = "__unsupported__"  # how the sandbox sends an object it cannot serialise


@dataclass
class Mismatch:
    """One way in which the answer differs from the expected one, at one path.

    ``kind`` is one of :data:`KINDS`. The fields that matter depend on it:
    ``values`` and ``nonfinite`` fill the counts, differences and indices;
    ``type``, ``length``, ``shape`` and ``dtype`` fill ``expected_desc`` and
    ``actual_desc`` (``type`` with the codes of :func:`describe`); ``keys``
    fills ``missing`` and ``extra``; ``custom`` carries a ready ``message``.
    """

    path: str
    kind: str
    name: str = ""  # readable name of the output ("dW"), "" when none was given
    n_mismatched: int = 0  # elements that differ (for "nonfinite": the non-finite ones)
    n_total: int = 0
    max_abs: float = 0.0  # greatest |actual - expected| among the mismatched elements
    max_abs_index: tuple[int, ...] = ()
    max_rel: float = 0.0  # greatest |actual - expected| / |expected| among them
    max_rel_index: tuple[int, ...] = ()
    tolerance: Tolerance | None = None
    expected_desc: str = ""
    actual_desc: str = ""
    missing: list[str] = field(default_factory=list)  # keys, as repr
    extra: list[str] = field(default_factory=list)
    first_index: tuple[int, ...] = ()  # "nonfinite": where the first one is
    message: Text | str = ""  # "custom": already rendered, {"es", "en"} or plain
    hints: list[str] = field(default_factory=list)


def compare(
    actual: Any, expected: Any, tol: Tolerance, output_names: Mapping[str, str] | None = None
) -> list[Mismatch]:
    """All the mismatches between ``actual`` and ``expected`` (``[]``: acceptable).

    ``output_names`` maps a path to a readable name (``{"[0]": "dW"}``); an
    item under a named path is called after it (``"grads['W1']"``).
    """
    comparer = _Comparer(tol, dict(output_names or {}))
    comparer.walk(actual, expected, "", 0)
    return comparer.found


# --- paths -------------------------------------------------------------------


class _Missing:
    """Returned by :func:`get_path` where the path leads nowhere."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def key_path(path: str, key: Any) -> str:
    """The path of item ``key`` (an index or a dict key) under ``path``."""
    return f"{path}[{key!r}]"


def parse_path(path: str) -> list[Any]:
    """``"[0]['b']"`` -> ``[0, "b"]``; raises ``ValueError`` on a malformed path."""
    keys: list[Any] = []
    i = 0
    while i < len(path):
        if path[i] != "[":
            raise ValueError(f"malformed path {path!r} at {i}")
        j = i + 1
        if j < len(path) and path[j] in "'\"":  # a string literal, possibly holding ']'
            quote, j = path[j], j + 1
            while j < len(path) and path[j] != quote:
                j += 2 if path[j] == "\\" else 1
            j += 1
        end = path.find("]", j)
        if end < 0:
            raise ValueError(f"malformed path {path!r}: missing ']'")
        keys.append(ast.literal_eval(path[i + 1 : end]))
        i = end + 1
    return keys


def get_path(obj: Any, path: str) -> Any:
    """The item of ``obj`` at ``path`` (:data:`MISSING` where there is none). Never raises."""
    try:
        for key in parse_path(path):
            if isinstance(obj, dict):
                if key not in obj:
                    return MISSING
                obj = obj[key]
            elif isinstance(obj, (list, tuple, np.ndarray)) and isinstance(key, int) and not isinstance(key, bool):
                if (isinstance(obj, np.ndarray) and obj.ndim == 0) or not 0 <= key < len(obj):
                    return MISSING
                obj = obj[key]
            else:
                return MISSING
        return obj
    except Exception:
        return MISSING


def name_for(path: str, names: Mapping[str, str]) -> str:
    """The readable name of ``path``: its own, or its nearest named ancestor's plus the rest."""
    for cut in range(len(path), -1, -1):
        if (cut == len(path) or path[cut] == "[") and path[:cut] in names:
            return names[path[:cut]] + path[cut:]
    return ""


# --- descriptions --------------------------------------------------------------


def describe(value: Any) -> str:
    """A language-neutral code for the form of ``value``, rendered by ``report``.

    ``"None"``, ``"bool"``, ``"int"``, ``"float"``, ``"complex"``, ``"number"``
    (an expected scalar), ``"scalar:float32"`` (a numpy scalar), ``"str"``,
    ``"tuple:2"``, ``"list:3"``, ``"dict:4"``, ``"ndarray:(3, 4):float64"``,
    ``"unsupported:Tensor"``, ``"other:Foo"``.
    """
    if value is None:
        return "None"
    if isinstance(value, np.generic):  # before float: np.float64 is a float
        return f"scalar:{value.dtype}"
    for plain in (bool, int, float, complex, str):
        if isinstance(value, plain):
            return plain.__name__
    if isinstance(value, np.ndarray):
        return f"ndarray:{value.shape}:{value.dtype}"
    if isinstance(value, (tuple, list)):
        return f"{'tuple' if isinstance(value, tuple) else 'list'}:{len(value)}"
    if isinstance(value, dict):
        if UNSUPPORTED in value:
            return "unsupported:" + _short(str(value[UNSUPPORTED]), 80)
        return f"dict:{len(value)}"
    if type(value).__name__ == "Unsupported" and isinstance(getattr(value, "type_name", None), str):
        # what the sandbox's wire decodes an object it could not send into (the student's own type name)
        return "unsupported:" + _short(value.type_name, 80)
    return "other:" + _short(type(value).__name__, 80)


def _describe_expected(value: Any) -> str:
    if isinstance(value, _REAL_SCALARS) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return "number"
    return describe(value)


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _num(x: Any) -> str:
    """A number for a message (6 significant digits)."""
    try:
        if isinstance(x, (complex, np.complexfloating)):
            return f"{complex(x):.6g}"
        return f"{float(x):.6g}"
    except Exception:
        return _short(repr(x))


# --- the comparison --------------------------------------------------------------


def _is_scalar(x: Any) -> bool:
    return isinstance(x, _SCALARS)


def _scalar_array(x: Any) -> np.ndarray:
    """A Python or numpy scalar as a 0-d array; ints beyond float64's range become ±inf."""
    if isinstance(x, int) and not isinstance(x, bool) and not -(2**63) <= x < 2**63:
        try:
            return np.asarray(float(x))
        except OverflowError:
            return np.asarray(math.inf if x > 0 else -math.inf)
    return np.asarray(x)


def _actual_array(a: Any) -> np.ndarray | None:
    """``a`` as an array where it can stand for one (else ``None``: a type mismatch)."""
    if isinstance(a, np.ndarray):
        return np.asarray(a)  # drops subclasses (matrix, masked)
    if _is_scalar(a):
        return _scalar_array(a)
    if isinstance(a, (list, tuple)):
        try:
            arr = np.asarray(a)
        except Exception:  # ragged, too deep, ints too large
            return None
        return arr if arr.dtype.kind in _NUMERIC else None
    return None


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape)) if shape else ()


class _Comparer:
    def __init__(self, tol: Tolerance, names: dict[str, str]) -> None:
        self.tol = tol
        self.names = names
        self.found: list[Mismatch] = []

    def add(self, path: str, kind: str, **fields: Any) -> None:
        self.found.append(Mismatch(path=path, kind=kind, name=name_for(path, self.names), **fields))

    def type_mismatch(self, a: Any, e: Any, path: str) -> None:
        self.add(path, "type", expected_desc=_describe_expected(e), actual_desc=describe(a))

    def walk(self, a: Any, e: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            msg = {
                "es": f"la estructura está anidada a más de {MAX_DEPTH} niveles",
                "en": f"the structure is nested more than {MAX_DEPTH} levels deep",
            }
            self.add(path, "custom", message=msg)
        elif isinstance(e, dict):
            self.mapping(a, e, path, depth)
        elif isinstance(e, (list, tuple)):
            self.sequence(a, e, path, depth)
        elif e is None or isinstance(e, str):
            if (e is None and a is not None) or (e is not None and not isinstance(a, str)):
                self.type_mismatch(a, e, path)
            elif a != e:
                self.add(path, "values", expected_desc=_short(repr(e)), actual_desc=_short(repr(a)))
        elif _is_scalar(e) or isinstance(e, np.ndarray):
            self.leaf(a, _scalar_array(e) if _is_scalar(e) else e, path)
        else:  # an expected value of some other (trusted) type: plain equality
            try:
                equal = type(a) is type(e) and bool(a == e)
            except Exception:
                equal = False
            if not equal:
                self.add(path, "values", expected_desc=_short(repr(e)), actual_desc=_short(repr(a)))

    def mapping(self, a: Any, e: dict, path: str, depth: int) -> None:
        if not isinstance(a, dict) or (UNSUPPORTED in a and UNSUPPORTED not in e):
            self.type_mismatch(a, e, path)
            return
        missing = [k for k in e if k not in a]
        extra = [k for k in a if k not in e]
        if missing or extra:
            self.add(
                path,
                "keys",
                missing=[repr(k) for k in missing],
                extra=[repr(k) for k in extra],
                expected_desc=_short(repr(list(e)), 200),
                actual_desc=_short(repr(list(a)), 200),
            )
        for k, ek in e.items():
            if k in a:
                self.walk(a[k], ek, key_path(path, k), depth + 1)

    def sequence(self, a: Any, e: list | tuple, path: str, depth: int) -> None:
        numbers = len(e) > 0 and all(isinstance(x, _REAL_SCALARS) for x in e)
        if numbers and isinstance(e, list) and not any(p.startswith(path + "[") for p in self.names):
            # a list of numbers (a loss history) is one vector: one comparison, indices as (i,)
            plain = isinstance(a, (list, tuple)) and len(a) == len(e) and all(isinstance(x, _REAL_SCALARS) for x in a)
            if isinstance(a, np.ndarray) or plain:
                try:
                    arr_e = np.asarray(e, dtype=np.float64)
                except Exception:  # ints beyond float64: item by item below
                    pass
                else:
                    self.leaf(a, arr_e, path, check_dtype=False)
                    return
        if numbers and isinstance(a, np.ndarray) and a.ndim == 1 and len(a) == len(e):
            a = list(a)  # numbers as an array, where a tuple of numbers is expected
        if not isinstance(a, (list, tuple)):
            self.type_mismatch(a, e, path)
            return
        if len(a) != len(e):
            self.add(path, "length", expected_desc=str(len(e)), actual_desc=str(len(a)))
            return
        for i, (ai, ei) in enumerate(zip(a, e, strict=True)):
            self.walk(ai, ei, key_path(path, i), depth + 1)

    def leaf(self, a: Any, e: np.ndarray, path: str, check_dtype: bool = True) -> None:
        arr = _actual_array(a)
        if arr is None:
            self.type_mismatch(a, e, path)
            return
        if arr.size > MAX_ELEMENTS or arr.shape != e.shape:  # decided from the shapes alone
            if e.ndim == 0 and arr.size == 1:
                arr = arr.reshape(())
            else:
                self.add(path, "shape", expected_desc=str(e.shape), actual_desc=str(arr.shape))
                return
        ek, ak = e.dtype.kind, arr.dtype.kind
        if ek not in _NUMERIC:  # a (trusted) non-numeric expected array: exact equality
            self.other_array(arr, e, path)
            return
        float_needed = ek in "fc" and ak in "biu" and check_dtype and isinstance(a, np.ndarray) and a.ndim >= 1
        if ak not in _NUMERIC or (ak == "c" and ek != "c") or float_needed:
            self.add(path, "dtype", expected_desc=str(e.dtype), actual_desc=str(arr.dtype))
            return
        self.values(arr, e, path)

    def other_array(self, arr: np.ndarray, e: np.ndarray, path: str) -> None:
        try:
            equal = arr.dtype.kind == e.dtype.kind and bool(np.array_equal(arr, e))
        except Exception:
            equal = False
        if not equal:
            self.add(path, "values", n_total=int(e.size), expected_desc=_short(repr(e)), actual_desc=_short(repr(arr)))

    def values(self, arr: np.ndarray, e: np.ndarray, path: str) -> None:
        work = np.complex128 if "c" in (arr.dtype.kind, e.dtype.kind) else np.float64
        a = arr.astype(work, copy=False)
        ex = e.astype(work, copy=False)
        n = int(ex.size)
        with np.errstate(all="ignore"):
            a_finite = np.isfinite(a)
            e_finite = np.isfinite(ex)
            e_all_finite = bool(e_finite.all())
            if not a_finite.all():
                bad = ~a_finite & e_finite
                n_bad = int(np.count_nonzero(bad))
                if n_bad:
                    first = int(np.argmax(bad))
                    self.add(
                        path,
                        "nonfinite",
                        n_mismatched=n_bad,
                        n_total=n,
                        first_index=_index(first, ex.shape),
                        actual_desc=_num(a.reshape(-1)[first]),
                        tolerance=self.tol,
                    )
                    return
            diff = np.abs(a - ex)
            abs_e = np.abs(ex)
            ok = diff <= self.tol.atol + self.tol.rtol * abs_e
            if not e_all_finite:  # where the reference itself is NaN/inf: only the same value matches
                same = (a == ex) | (np.isnan(a) & np.isnan(ex))
                ok = np.where(e_finite, ok, same)
            if ok.all():
                return
            wrong = ~ok
            abs_diff = np.where(wrong, diff, 0.0)  # as torch: only mismatched elements count
            rel_diff = np.where(wrong, diff / abs_e, 0.0)  # inf where expected is 0
            i_abs, i_rel = int(np.argmax(abs_diff)), int(np.argmax(rel_diff))
            flat_abs, flat_rel = abs_diff.reshape(-1), rel_diff.reshape(-1)
            fields: dict[str, Any] = {}
            if n == 1:
                fields = {"expected_desc": _num(ex.reshape(-1)[0]), "actual_desc": _num(a.reshape(-1)[0])}
            self.add(
                path,
                "values",
                n_mismatched=int(np.count_nonzero(wrong)),
                n_total=n,
                max_abs=float(flat_abs[i_abs]),
                max_abs_index=_index(i_abs, ex.shape),
                max_rel=float(flat_rel[i_rel]),
                max_rel_index=_index(i_rel, ex.shape),
                tolerance=self.tol,
                **fields,
            )


def iter_leaves(expected: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """The numeric leaves (arrays and numbers) of an expected structure, with their paths."""
    if depth > MAX_DEPTH:
        return
    if isinstance(expected, dict):
        for k, v in expected.items():
            yield from iter_leaves(v, key_path(path, k), depth + 1)
    elif isinstance(expected, (list, tuple)):
        if expected and all(isinstance(x, _REAL_SCALARS) for x in expected):
            yield path, expected
        else:
            for i, v in enumerate(expected):
                yield from iter_leaves(v, key_path(path, i), depth + 1)
    elif _is_scalar(expected) or isinstance(expected, np.ndarray):
        yield path, expected
