"""Mutants: buggy submissions generated from an assignment's solution, to measure its hints.

The bundled examples show that the grader names the bugs its hints were
written for. Mutants ask the harder question: given a bug nobody wrote a hint
*for*, does the student still get a hint that names it? A mutant is the solved
notebook as a student would hand it in (the ``### BEGIN/END SOLUTION`` markers
gone, the release metadata in place) with one small bug planted in the code of
one solution block by a *mutation operator*:

* generic operators, for any assignment: ``.mean()`` ↔ ``.sum()``, a division by
  the batch size dropped, a weight transposed in a product (``W`` → ``W.T``, or
  a ``.T`` dropped, or two indices of an ``einsum`` operand swapped), ``axis``/
  ``dim`` 0 ↔ 1, ``keepdims`` dropped, ``>`` ↔ ``>=``, ``-=`` → ``+=`` and a
  dropped minus, ``zero_grad()``/``eval()``/``train()``/``step()`` dropped, an
  activation dropped, ``torch.no_grad()`` dropped, a bias dropped, the
  max-subtraction of a stable softmax dropped, off-by-one ranges and sizes,
  ``padding``/``stride`` ignored, a residual shortcut or a layer skipped,
  ``.detach()`` dropped, a ``1/sqrt(d)`` scale dropped, a mask dropped;
* the assignment's own, in ``solutions/<id>/mutants.py`` (optional): a list
  ``MUTANTS`` of :class:`Rewrite` (exact text edits inside one function).

Every mutant names its *bug* (a :class:`Bug`: a family such as
``"reduction"`` with the words a hint that names it uses). :func:`grade_mutants`
grades mutants with the real grader (sandboxed, in batch, with the checks that
can reach the mutated function), and :func:`score` says whether each one fails
at least one check (*killed*) and whether a failing check's hint names its bug
(*right hint*). ``scripts/mutants.py`` runs it for every assignment and prints
the table quoted in ``docs/MUTANTS.md``.

Instructor-side only: not part of the students' wheel.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .release import BEGIN, END

# -- bugs: what a hint that names one says --------------------------------------------------------


@dataclass(frozen=True)
class Bug:
    """A family of bugs and the words (lower case, no accents) that a hint naming it contains."""

    id: str
    title: str
    keywords: tuple[str, ...]


BUGS: dict[str, Bug] = {b.id: b for b in [
    Bug("reduction", "media/suma sobre el lote (falta o sobra 1/N)",
        ("media", "promedi", "sumar", "suma ", "dividir", "divide", "1/n", "/ n", "tamano del lote",
         "numero de ejemplos", "pondera")),
    Bug("transpose", "peso traspuesto o disposición de los ejes",
        (".t", "traspuest", "(entrada, salida)", "(entradas, salidas)", "disposicion", "(f, c, kh, kw)",
         "kh recorre", "w[f, c]")),
    Bug("axis", "eje equivocado (axis/dim, keepdims)",
        ("axis", "eje", "dim=", "keepdim", "broadcast", "por filas", "cada fila")),
    Bug("strict", "comparación estricta o no (> frente a >=)",
        (">=", "<=", "> 0", "estrict", "igual", "inclusiv")),
    Bug("sign", "signo cambiado", ("signo", "resta", "al reves")),
    Bug("zero_grad", "gradientes que se acumulan (falta zero_grad)", ("zero_grad", "a cero", "acumul")),
    Bug("mode", "modo entrenamiento/evaluación", ("eval()", "train()", "modo")),
    Bug("update", "paso de optimización que no se da", ("step()", "backward()", "no cambi", "no bajo")),
    Bug("activation", "falta una activación", ("relu", "activacion", "lineal")),
    Bug("no_grad", "actualización dentro de autograd", ("no_grad", "hoja", "autograd")),
    Bug("bias", "falta el sesgo", ("sesgo", "bias", "b[f]")),
    Bug("stability", "exponencial sin estabilizar", ("maximo", "estab", "nan/inf", "logsumexp", "desbord")),
    Bug("off_by_one", "uno de más o de menos (range, tamaños)",
        ("off-by-one", "en uno", "se queda corto", "ultima fila", "ultima columna", "h' =", "// s + 1",
         "// stride + 1", "un paso tarde", "contador")),
    Bug("padding", "padding ignorado", ("padding", "relleno")),
    Bug("stride", "stride ignorado", ("stride", "paso")),
    Bug("shortcut", "atajo residual ausente o sin proyectar", ("atajo", "shortcut", "conv3", "proyec")),
    Bug("layer", "una capa que no se aplica", ("capa", "layer", "pool", "flatten")),
    Bug("normalization", "falta la normalización por lotes", ("batchnorm", "bn", "normaliz")),
    Bug("detach", "estado sin desconectar del grafo", ("detach", "desconect", "grafo")),
    Bug("scale", "falta la escala 1/sqrt(d)", ("sqrt", "raiz", "escala", "√")),
    Bug("mask", "máscara ignorada", ("mascara", "mask")),
    Bug("clipping", "gradientes sin recortar", ("clip", "recort")),
    Bug("zero_division", "división por cero o log(0)", ("denominador", "0/0", "log(0)", "division por cero")),
    Bug("factor", "falta o sobra un factor constante", ("factor", "veces el esperado", "del esperado")),
    Bug("formula", "fórmula equivocada",
        ("derivada", "formula", "central", "restaura", "inicializacion de he", "fan_in", "xavier")),
]}


def normalize(text: str) -> str:
    """Lower case, accents removed: how hints are searched for a bug's keywords."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def names_bug(explanation: str, bug: str, words: Iterable[str] = ()) -> bool:
    """Whether ``explanation`` (hints and judges' messages) contains a keyword of ``bug`` (or one of ``words``)."""
    said = normalize(explanation)
    return any(word in said for word in (*BUGS[bug].keywords, *words))


# -- the solution as students would hand it in -----------------------------------------------------


def solution_lines(source: str) -> set[int]:
    """The (1-based) line numbers of ``source`` inside ``### BEGIN/END SOLUTION`` blocks."""
    inside, lines = False, set()
    for number, line in enumerate(source.splitlines(), start=1):
        if BEGIN.match(line):
            inside = True
        elif END.match(line):
            inside = False
        elif inside:
            lines.add(number)
    return lines


def strip_markers(source: str) -> str:
    """``source`` without its marker lines: the solution as a student would have written it."""
    return "\n".join(line for line in source.splitlines() if not (BEGIN.match(line) or END.match(line)))


def handed_in(solution: dict[str, Any], assignment: str, version: str) -> dict[str, Any]:
    """The solved notebook (JSON) as a student hands it in: markers stripped, release metadata, no outputs."""
    nb = copy.deepcopy(solution)
    for cell in nb["cells"]:
        source = _source(cell)
        cell["source"] = strip_markers(source) if cell["cell_type"] == "code" else source
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.setdefault("metadata", {})["autograder"] = {"assignment": assignment, "version": version}
    return nb


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


# -- edits ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """Replace characters ``[start, end)`` of a cell's source with ``text``."""

    start: int
    end: int
    text: str


class _Source:
    """A cell's source with conversions from AST positions (UTF-8 byte columns) to string offsets."""

    def __init__(self, source: str) -> None:
        self.text = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", "ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
                self.offset(node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]

    def segment(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.text[start:end]

    def replace(self, node: ast.AST, text: str) -> Edit:
        return Edit(*self.span(node), text)

    def attr_name(self, node: ast.Attribute, new: str) -> Edit:
        """Rename the attribute of ``value.attr`` (the last ``len(attr)`` characters of the node)."""
        _, end = self.span(node)
        return Edit(end - len(node.attr), end, new)

    def statement_line(self, node: ast.stmt) -> Edit:
        """Replace a one-line statement with ``pass`` (indentation kept)."""
        return self.replace(node, "pass")


@dataclass(frozen=True)
class _Multi:
    """Several edits of one mutant, applied from the end of the source backwards."""

    edits: tuple[Edit, ...]


def apply(source: str, edit: Edit | _Multi) -> str:
    if isinstance(edit, _Multi):
        for one in sorted(edit.edits, key=lambda e: -e.start):
            source = apply(source, one)
        return source
    return source[:edit.start] + edit.text + source[edit.end:]


# -- operators -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One place where an operator plants a bug."""

    edit: Edit | _Multi
    bug: str
    what: str  # in words: "`.mean()` → `.sum()`"
    words: tuple[str, ...] = ()  # more words that name this very bug (a skipped layer's name)


@dataclass
class Scope:
    """Where a node sits: the top-level function or class (``owner``), the method, its parameters."""

    owner: str
    method: str
    params: tuple[str, ...]
    lines: frozenset[int] = frozenset()  # the solution's lines (a mutation never touches the scaffolding)


Operator = Callable[[ast.AST, _Source, Scope], Iterator[Site]]

_COUNT_NAMES = {"n", "count", "total", "num", "batch_size", "n_samples", "num_examples", "m"}
_BIAS_NAMES = re.compile(r"^(b\d*|bias\w*|b_\w+)$")
_ACTIVATIONS = ("relu", "leaky_relu", "gelu", "elu")
_SIDE_EFFECTS = {"zero_grad": "zero_grad", "zero_": "zero_grad", "eval": "mode", "train": "mode",
                 "step": "update", "backward": "update", "clip_grad_norm_": "clipping", "clip_grad_value_": "clipping"}
_NEUTRAL = {"padding": ("0", "padding"), "stride": ("1", "stride"), "strides": ("1", "stride")}


def _name_of(node: ast.AST) -> str:
    """The last name of ``a.b.c`` / ``c`` / ``a["c"]`` (lower case), else ``""``."""
    if isinstance(node, ast.Name):
        return node.id.lower()
    if isinstance(node, ast.Attribute):
        return node.attr.lower()
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value.lower()
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    return ""


def _is_count(node: ast.AST) -> bool:
    """An expression that counts examples: ``N``, ``len(y)``, ``x.size``, ``x.shape[0]``, ``x.numel()``."""
    if isinstance(node, ast.Name):
        return node.id.lower() in _COUNT_NAMES
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("numel", "size"):
        return True
    if isinstance(node, ast.Attribute) and node.attr == "size":
        return True
    return (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape"
            and isinstance(node.slice, ast.Constant) and node.slice.value == 0)


def _is_bias(node: ast.AST) -> bool:
    """``b``, ``b1``, ``bias``, ``params["b1"]``, ``self.fc.bias``, ``b.view(1, F, 1, 1)``, ``b[None]``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("view", "reshape"):
        return _is_bias(node.func.value)
    if isinstance(node, ast.Subscript) and not (isinstance(node.slice, ast.Constant)
                                                 and isinstance(node.slice.value, str)):
        return _is_bias(node.value)
    name = _name_of(node)
    return bool(name) and bool(_BIAS_NAMES.match(name))


def op_reduction(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``.mean()`` ↔ ``.sum()``; ``x / N`` → ``x``; ``loss * len(yb)`` → ``loss``; ``reduction=`` sum ↔ mean."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("mean", "sum"):
        new = "sum" if node.func.attr == "mean" else "mean"
        yield Site(src.attr_name(node.func, new), "reduction", f"`.{node.func.attr}(...)` → `.{new}(...)`")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and _is_count(node.right):
        yield Site(src.replace(node, f"({src.segment(node.left)})"), "reduction",
                   f"sin dividir por `{src.segment(node.right)}`")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and _is_count(node.right):
        yield Site(src.replace(node, f"({src.segment(node.left)})"), "reduction",
                   f"sin multiplicar por `{src.segment(node.right)}`")
    if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Div) and _is_count(node.value):
        yield Site(src.statement_line(node), "reduction", f"sin `/= {src.segment(node.value)}`")
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "amax"
            and node.keywords and not node.args):
        yield Site(src.attr_name(node.func, "mean"), "reduction", "`.amax(...)` → `.mean(...)`")
    if isinstance(node, ast.keyword) and node.arg == "reduction" and isinstance(node.value, ast.Constant):
        new = {"sum": "mean", "mean": "sum"}.get(str(node.value.value))
        if new:
            yield Site(src.replace(node.value, repr(new)), "reduction", f"`reduction={node.value.value!r}` → {new!r}")


def op_factor(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``2.0 * diff`` → ``diff`` (a constant factor of a formula dropped; integer sizes such as ``16 * 5 * 5``
    are left alone)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for const, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(const, ast.Constant) and isinstance(const.value, float) and const.value not in (0.0, 1.0, -1.0):
                yield Site(src.replace(node, f"({src.segment(other)})"), "factor", f"sin el factor `{const.value}`")


def op_transpose(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``A @ W`` → ``A @ W.T``; ``W.T`` → ``W``; two indices of an ``einsum`` operand swapped."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        for side in (node.right, node.left):
            if isinstance(side, ast.Attribute) and side.attr == "T":
                yield Site(src.replace(side, src.segment(side.value)), "transpose",
                           f"`{src.segment(side)}` → `{src.segment(side.value)}`")
            elif isinstance(side, (ast.Name, ast.Subscript, ast.Attribute)):
                yield Site(src.replace(side, f"{src.segment(side)}.T"), "transpose",
                           f"`{src.segment(side)}` → `{src.segment(side)}.T`")
    if (isinstance(node, ast.Call) and _name_of(node.func) == "einsum" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        spec = node.args[0].value
        inputs, arrow, output = spec.partition("->")
        operands = inputs.split(",")
        for i, operand in enumerate(operands):
            if len(operand) < 2:
                continue
            for a, b in ((0, 1), (len(operand) - 2, len(operand) - 1)):
                swapped = list(operand)
                swapped[a], swapped[b] = swapped[b], swapped[a]
                new_ops = operands[:i] + ["".join(swapped)] + operands[i + 1:]
                new_spec = ",".join(new_ops) + arrow + output
                if new_spec != spec:
                    yield Site(src.replace(node.args[0], repr(new_spec)), "transpose",
                               f"einsum {spec!r} → {new_spec!r}")


def op_axis(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``axis``/``dim`` 0 ↔ 1 (and -1 → 0); ``keepdims=True`` dropped."""
    if isinstance(node, ast.keyword) and node.arg in ("axis", "dim"):
        value = node.value
        number = value.value if isinstance(value, ast.Constant) else None
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub) and isinstance(value.operand, ast.Constant):
            number = -value.operand.value
        new = {0: 1, 1: 0, -1: 0}.get(number) if isinstance(number, int) and not isinstance(number, bool) else None
        if new is not None:
            yield Site(src.replace(value, str(new)), "axis", f"`{node.arg}={number}` → `{node.arg}={new}`")
    if isinstance(node, ast.Call):
        for kw in node.keywords:
            if kw.arg in ("keepdims", "keepdim") and isinstance(kw.value, ast.Constant) and kw.value.value is True:
                yield Site(src.replace(kw.value, "False"), "axis", f"sin `{kw.arg}=True`")


def op_compare(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``>`` ↔ ``>=``, ``<`` ↔ ``<=`` (one comparison)."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        swap = {ast.Gt: ">=", ast.GtE: ">", ast.Lt: "<=", ast.LtE: "<"}
        new = swap.get(type(node.ops[0]))
        if new:
            left, right = src.segment(node.left), src.segment(node.comparators[0])
            old = {">=": ">", ">": ">=", "<=": "<", "<": "<="}[new]
            yield Site(src.replace(node, f"{left} {new} {right}"), "strict", f"`{left} {old} {right}` → `{new}`")


def op_sign(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``p -= lr * g`` → ``+=``; ``p - lr * g`` → ``p + lr * g``; ``-x.mean()`` → ``x.mean()``."""
    if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Sub):
        target, value = src.segment(node.target), src.segment(node.value)
        yield Site(src.replace(node, f"{target} += {value}"), "sign", f"`{target} -= ...` → `+=`")
    if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.right, ast.BinOp)
            and isinstance(node.right.op, ast.Mult) and {"lr", "learning_rate", "eta"} & {
                _name_of(node.right.left), _name_of(node.right.right)}):
        yield Site(src.replace(node, f"{src.segment(node.left)} + {src.segment(node.right)}"), "sign",
                   "`p - lr * g` → `p + lr * g`")
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, (ast.Call, ast.Subscript, ast.Attribute))):
        yield Site(src.replace(node, src.segment(node.operand)), "sign", f"sin el `-` de `{src.segment(node)[:40]}`")


def op_drop_call(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """A statement ``x.zero_grad()`` / ``.zero_()`` / ``.eval()`` / ``.train()`` / ``.step()`` / ``.backward()`` dropped."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute):
        attr = node.value.func.attr
        bug = _SIDE_EFFECTS.get(attr)
        if bug:
            yield Site(src.statement_line(node), bug, f"sin `{src.segment(node)}`")


def op_activation(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``relu(x)`` (any spelling: ``F.relu``, ``torch.relu``, ``self.relu1``, ``relu_forward``,
    ``np.maximum(x, 0)``) → ``x``."""
    if not isinstance(node, ast.Call) or not node.args:
        return
    name = _name_of(node.func)
    is_relu = name.startswith(_ACTIVATIONS) or (
        name == "maximum" and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)
        and node.args[1].value == 0)
    if is_relu:
        yield Site(src.replace(node, src.segment(node.args[0])), "activation", f"sin `{_short(src.segment(node))}`")


def op_no_grad(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``with torch.no_grad():`` → ``if True:`` (the body runs under autograd)."""
    if isinstance(node, ast.With) and len(node.items) == 1 and _name_of(node.items[0].context_expr) == "no_grad":
        start = src.offset(node.lineno, node.col_offset)
        header_end = src.text.index(":", src.span(node.items[0].context_expr)[1]) + 1
        yield Site(Edit(start, header_end, "if True:"), "no_grad", "sin `with torch.no_grad():`")


def op_bias(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``x @ W + b`` → ``x @ W`` (a bias term dropped)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        if _is_bias(node.right) and not _is_bias(node.left):
            yield Site(src.replace(node, src.segment(node.left)), "bias", f"sin `+ {_short(src.segment(node.right))}`")


def op_stability(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``z - z.max(axis=1, keepdims=True)`` → ``z``; ``np.exp(-np.abs(x))`` style guards are left alone."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
        right = node.right
        if isinstance(right, ast.Attribute) and right.attr == "values":
            right = right.value
        if isinstance(right, ast.Call) and _name_of(right.func) in ("max", "amax"):
            yield Site(src.replace(node, src.segment(node.left)), "stability",
                       f"sin restar `{_short(src.segment(node.right))}`")


def op_off_by_one(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``range(n)`` → ``range(n - 1)``; ``... // s + 1`` → ``... // s``."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and len(node.args) == 1 and not isinstance(node.args[0], ast.Constant)):
        yield Site(src.replace(node.args[0], f"{src.segment(node.args[0])} - 1"), "off_by_one",
                   f"`range({src.segment(node.args[0])})` → `range({src.segment(node.args[0])} - 1)`")
    if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.Constant)
            and node.right.value == 1 and isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.FloorDiv)):
        yield Site(src.replace(node, src.segment(node.left)), "off_by_one", f"sin el `+ 1` de `{src.segment(node)}`")


def op_hyperparameter(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``padding=2`` / ``stride=2`` in a layer's constructor dropped; a use of a ``padding``/``stride``
    parameter replaced with its neutral value (0 / 1)."""
    if isinstance(node, ast.Call):
        for kw in node.keywords:
            if kw.arg in _NEUTRAL and not (isinstance(kw.value, ast.Constant) and str(kw.value.value) == _NEUTRAL[kw.arg][0]):
                neutral, bug = _NEUTRAL[kw.arg]
                yield Site(src.replace(kw.value, neutral), bug, f"`{kw.arg}={src.segment(kw.value)}` → `{neutral}`")
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):  # the parameter ignored everywhere
        for param in scope.params:
            if param not in _NEUTRAL:
                continue
            uses = [n for n in ast.walk(node) if isinstance(n, ast.Name) and n.id == param
                    and isinstance(n.ctx, ast.Load) and n.lineno in scope.lines]
            if uses:
                neutral, bug = _NEUTRAL[param]
                edits = sorted((src.replace(n, neutral) for n in uses), key=lambda e: -e.start)
                yield Site(_Multi(tuple(edits)), bug, f"`{param}` ignorado (cada uso → `{neutral}`)")


def op_layer(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """In a ``forward``: ``y + x`` (the input added back) → ``y``; ``x = self.layer(x)`` → skipped;
    ``self.layer(h)`` → ``h``."""
    if scope.method != "forward":
        return
    inputs = set(scope.params[1:2])  # forward(self, x)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        for keep, drop in ((node.left, node.right), (node.right, node.left)):
            if isinstance(drop, ast.Name) and drop.id in inputs and isinstance(keep, (ast.Name, ast.Call)):
                yield Site(src.replace(node, src.segment(keep)), "shortcut", f"sin sumar el atajo `{drop.id}`")
                break
    call = None
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
        call, stmt = node.value, node
    elif isinstance(node, ast.Call):
        call, stmt = node, None
    if (call is not None and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "self" and len(call.args) == 1 and not call.keywords):
        layer = call.func.attr.lower()
        if layer.startswith(_ACTIVATIONS):
            return  # op_activation's
        bug = ("shortcut" if any(k in layer for k in ("conv3", "shortcut", "proj", "downsample"))
               else "normalization" if layer.startswith(("bn", "norm", "batchnorm")) else "layer")
        if stmt is not None and isinstance(stmt.targets[0], ast.Name) and isinstance(call.args[0], ast.Name) \
                and stmt.targets[0].id == call.args[0].id:
            yield Site(src.statement_line(stmt), bug, f"sin `{src.segment(stmt)}`", _layer_words(call.func.attr))
        elif stmt is None:
            yield Site(src.replace(call, src.segment(call.args[0])), bug, f"sin `self.{call.func.attr}(...)`",
                       _layer_words(call.func.attr))


def _layer_words(attr: str) -> tuple[str, ...]:
    """A layer named in a hint: ``pool1`` by its name or its kind (``pool``)."""
    return tuple(dict.fromkeys((attr.lower(), re.sub(r"\d+$", "", attr.lower()))))


def op_dl_extras(node: ast.AST, src: _Source, scope: Scope) -> Iterator[Site]:
    """``h.detach()`` → ``h``; ``s / math.sqrt(d)`` → ``s``; ``s.masked_fill(mask, v)`` → ``s``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args:
        if node.func.attr in ("detach", "detach_"):
            yield Site(src.replace(node, src.segment(node.func.value)), "detach", f"sin `.{node.func.attr}()`")
    if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Call)
            and _name_of(node.right.func) == "sqrt"):
        yield Site(src.replace(node, f"({src.segment(node.left)})"), "scale", f"sin dividir por `{src.segment(node.right)}`")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("masked_fill", "masked_fill_"):
        yield Site(src.replace(node, src.segment(node.func.value)), "mask", f"sin `.{node.func.attr}(...)`")


OPERATORS: dict[str, Operator] = {
    "reduction": op_reduction,
    "factor": op_factor,
    "transpose": op_transpose,
    "axis": op_axis,
    "compare": op_compare,
    "sign": op_sign,
    "drop_call": op_drop_call,
    "activation": op_activation,
    "no_grad": op_no_grad,
    "bias": op_bias,
    "stability": op_stability,
    "off_by_one": op_off_by_one,
    "hyperparameter": op_hyperparameter,
    "layer": op_layer,
    "dl_extras": op_dl_extras,
}


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# -- assignment-specific rewrites ---------------------------------------------------------------


@dataclass(frozen=True)
class Rewrite:
    """An assignment's own mutant: replace ``old`` (exactly once) inside ``function``'s solution code."""

    function: str
    old: str
    new: str
    bug: str
    what: str = ""
    words: tuple[str, ...] = ()  # more words that name this very bug


def assignment_rewrites(root: Path) -> list[Rewrite]:
    """``MUTANTS`` of ``solutions/<id>/mutants.py`` (empty without one)."""
    path = root / "mutants.py"
    if not path.is_file():
        return []
    spec = importlib.util.spec_from_file_location(f"_mutants_{root.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(getattr(module, "MUTANTS", []))


# -- generation ------------------------------------------------------------------------------------


@dataclass
class Mutant:
    """One buggy submission: the handed-in notebook with one bug in ``function``."""

    assignment: str
    id: str  # "<function>.<operator>.<n>"
    function: str  # the top-level function or class it lives in
    operator: str
    bug: str  # a key of BUGS
    what: str  # the change, in words
    notebook: dict[str, Any] = field(repr=False)
    words: tuple[str, ...] = ()  # more words that name this very bug

    def write(self, folder: Path) -> Path:
        path = folder / self.id / f"{self.assignment}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.notebook, ensure_ascii=False, indent=1), encoding="utf-8")
        return path


def _scopes(tree: ast.Module, lines: frozenset[int]) -> Iterator[tuple[ast.AST, Scope]]:
    """Every node under a top-level def/class, with its scope."""
    for top in tree.body:
        if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = tuple(a.arg for a in top.args.posonlyargs + top.args.args + top.args.kwonlyargs)
            for node in ast.walk(top):
                yield node, Scope(top.name, top.name, params, lines)
        elif isinstance(top, ast.ClassDef):
            for item in top.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    params = tuple(a.arg for a in item.args.posonlyargs + item.args.args + item.args.kwonlyargs)
                    for node in ast.walk(item):
                        yield node, Scope(top.name, item.name, params, lines)


def _in_solution(node: ast.AST, lines: set[int]) -> bool:
    start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
    return start is not None and end is not None and all(n in lines for n in range(start, end + 1))


def _canonical(source: str) -> str | None:
    try:
        return ast.dump(ast.parse(strip_markers(source)))
    except SyntaxError:
        return None


def generate(solution: dict[str, Any], assignment: str, version: str, *, rewrites: Sequence[Rewrite] = (),
             operators: Iterable[str] | None = None, functions: Iterable[str] | None = None) -> list[Mutant]:
    """Every mutant of the solved notebook ``solution`` (its JSON), deterministic and without duplicates.

    Only code inside solution blocks is mutated (never the notebook's scaffolding), each mutant differs
    from the solution in one place, parses, and changes the code's meaning (its AST).
    """
    chosen = {name: OPERATORS[name] for name in (OPERATORS if operators is None else operators)}
    wanted = set(functions) if functions is not None else None
    base = handed_in(solution, assignment, version)
    mutants: list[Mutant] = []
    seen: set[tuple[str, str]] = set()
    counters: dict[tuple[str, str], int] = {}
    defined: set[str] = set()

    def add(index: int, function: str, operator: str, bug: str, what: str, mutated: str,
            words: tuple[str, ...] = ()) -> None:
        canonical = _canonical(mutated)
        original = _canonical(_source(solution["cells"][index]))
        if canonical is None and operator == "rewrite":
            raise ValueError(f"{assignment}: la reescritura de {function} ({what}) no da código válido")
        if canonical is None or canonical == original or (function, canonical) in seen:
            return
        seen.add((function, canonical))
        key = (function, operator)
        counters[key] = counters.get(key, 0) + 1
        nb = copy.deepcopy(base)
        nb["cells"][index]["source"] = strip_markers(mutated)
        mutants.append(Mutant(assignment, f"{function}.{operator}.{counters[key]}", function, operator, bug, what, nb,
                              words))

    for index, cell in enumerate(solution["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = _source(cell)
        lines = solution_lines(source)
        if not lines:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        src = _Source(source)
        defined.update(n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
        for node, scope in _scopes(tree, frozenset(lines)):
            if wanted is not None and scope.owner not in wanted:
                continue
            # a def is the scaffolding; operators that act on a whole function touch only its solution lines
            if not _in_solution(node, lines) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for name, operator in chosen.items():
                for site in operator(node, src, scope):
                    add(index, scope.owner, name, site.bug, site.what, apply(source, site.edit), site.words)
        for rewrite in rewrites:
            if wanted is not None and rewrite.function not in wanted:
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == rewrite.function:
                    start, end = src.span(node)
                    body = source[start:end]
                    if body.count(rewrite.old) != 1:
                        raise ValueError(f"{assignment}: la reescritura de {rewrite.function} no encuentra "
                                         f"exactamente una vez {rewrite.old!r}")
                    mutated = source[:start] + body.replace(rewrite.old, rewrite.new) + source[end:]
                    add(index, rewrite.function, "rewrite", rewrite.bug,
                        rewrite.what or f"`{_short(rewrite.old)}` → `{_short(rewrite.new)}`", mutated, rewrite.words)
    missing = {r.function for r in rewrites if wanted is None or r.function in wanted} - defined
    if missing:
        raise ValueError(f"{assignment}: las reescrituras nombran funciones que la solución no define: {sorted(missing)}")
    return mutants


def mutants_of(spec: Any, **kwargs: Any) -> list[Mutant]:
    """The mutants of an assignment (its spec), generic operators and its own rewrites."""
    solution = json.loads(Path(spec.solution_notebook).read_text(encoding="utf-8"))
    return generate(solution, spec.id, spec.version, rewrites=assignment_rewrites(Path(spec.root)), **kwargs)


# -- grading and scoring ---------------------------------------------------------------------------


@dataclass
class MutantResult:
    """What the grader said about one mutant."""

    mutant: Mutant
    checks: int = 0  # checks graded (those that can reach the mutated function)
    failed: list[str] = field(default_factory=list)  # "q1/relu_backward: fail"
    explanations: list[str] = field(default_factory=list)  # hints and judges' messages of the failing checks
    named_by: str = ""  # the check whose explanation names the bug

    @property
    def killed(self) -> bool:
        return bool(self.failed)

    @property
    def right_hint(self) -> bool:
        return bool(self.named_by)


def explanation(check_result: Any, judged: bool) -> str:
    """What a failing check says about *why*: its hint, and the whole message where a judge wrote it."""
    parts = [check_result.hint]
    if judged:
        parts.append(check_result.message)
    return " ".join(p for p in parts if p)


def score(mutant: Mutant, result: Any, judged: dict[str, bool]) -> MutantResult:
    """Killed? Right hint? ``result`` is the grader's ``SubmissionResult``; ``judged`` maps a check's name
    to whether a custom judge decides it."""
    out = MutantResult(mutant, checks=len(result.checks))
    for check in result.checks:
        if check.status.value == "pass":
            continue
        out.failed.append(f"{check.question}/{check.check}: {check.status.value}")
        said = explanation(check, judged.get(check.check, False))
        if said:
            out.explanations.append(f"{check.check}: {said}")
        if not out.named_by and said and names_bug(said, mutant.bug, mutant.words):
            out.named_by = check.check
    return out


def reaching_checks(spec: Any, prepared: Sequence[Any], notebook: dict[str, Any], function: str) -> list[Any]:
    """The prepared checks whose probe calls ``function`` or a function of the student's that reaches it."""
    from .notebook.analysis import analyse, to_python

    cells = [(i, to_python(_source(c))) for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code"]
    facts = analyse(cells, spec.forbidden_modules)
    out = []
    for p in prepared:
        own = [f for f in p.case.probe.functions() if not f.startswith("@")]
        if any(f == function or function in facts.callees(f) for f in own):
            out.append(p)
    return out


def grade_mutants(spec: Any, mutants: Sequence[Mutant], folder: Path, *, jobs: int = 2, seed: int | None = None,
                  all_checks: bool = False, insecure: bool = False,
                  progress: Callable[[MutantResult], None] | None = None) -> list[MutantResult]:
    """Grade ``mutants`` with the real grader (sandboxed, warm workers, ``jobs`` at a time).

    Each mutant is graded on the checks that can reach its mutated function (``all_checks``: on every
    check); the others would pass anyway. Mutants of one function share one batch.
    """
    from .execute.sandbox import detect_mode
    from .grade.batch import _run_pool
    from .grade.cases import new_seed, prepare
    from .grade.discover import Submission
    from .grade.submission import GradeContext

    mode = detect_mode(insecure)
    prepared = prepare(spec.checks, seed if seed is not None else new_seed())
    judged = {p.check.name: p.case.judge is not None for p in prepared}
    groups: dict[tuple[str, ...], list[tuple[Mutant, Path]]] = {}
    for mutant in mutants:
        subset = prepared if all_checks else reaching_checks(spec, prepared, mutant.notebook, mutant.function)
        key = tuple(p.check.name for p in subset)
        groups.setdefault(key, []).append((mutant, mutant.write(folder)))
    results: list[MutantResult] = []
    for key, members in groups.items():
        by_id = {m.id: m for m, _ in members}
        if not key:
            for mutant, _ in members:
                results.append(MutantResult(mutant))
                if progress:
                    progress(results[-1])
            continue
        subset = [p for p in prepared if p.check.name in key]
        ctx = GradeContext(spec, subset, mode, "es")
        todo = [Submission(m.id, path, [path]) for m, path in members]
        for graded in _run_pool(ctx, todo, jobs):
            results.append(score(by_id[graded.student], graded, judged))
            if progress:
                progress(results[-1])
    order = {m.id: i for i, m in enumerate(mutants)}
    return sorted(results, key=lambda r: order[r.mutant.id])


@dataclass
class Summary:
    """Counts for one assignment (or all)."""

    name: str
    total: int = 0
    untested: int = 0  # no check reaches the mutated function
    killed: int = 0
    right: int = 0

    def add(self, r: MutantResult) -> None:
        self.total += 1
        self.untested += r.checks == 0
        self.killed += r.killed
        self.right += r.right_hint

    @property
    def share_of_killed(self) -> float:
        return self.right / self.killed if self.killed else 0.0

    @property
    def share_of_all(self) -> float:
        return self.right / self.total if self.total else 0.0


def summarize(name: str, results: Iterable[MutantResult]) -> Summary:
    summary = Summary(name)
    for r in results:
        summary.add(r)
    return summary


def table(summaries: Sequence[Summary]) -> str:
    """A Markdown table: mutants, killed, right hint (of the killed and of all)."""
    head = ("| tarea | mutantes | fallan alguna prueba | con la pista correcta | % de los que fallan | % del total |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = [f"| {s.name} | {s.total} | {s.killed} | {s.right} | {100 * s.share_of_killed:.1f} % | "
            f"{100 * s.share_of_all:.1f} % |" for s in summaries]
    return "\n".join([head, *rows])


def by_bug(results: Iterable[MutantResult]) -> str:
    """A Markdown table per bug family: mutants, killed, right hint."""
    counts: dict[str, list[int]] = {}
    for r in results:
        c = counts.setdefault(r.mutant.bug, [0, 0, 0])
        c[0] += 1
        c[1] += r.killed
        c[2] += r.right_hint
    lines = ["| error plantado | mutantes | fallan | con la pista correcta |", "| --- | ---: | ---: | ---: |"]
    for bug, (n, k, r) in sorted(counts.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {BUGS[bug].title} (`{bug}`) | {n} | {k} | {r} |")
    return "\n".join(lines)
