"""The pinned API of an assignment: ``[[api]]`` in its spec, the same table in its notebook.

Each row names one function or class students write, with its exact
signature, what it takes and returns (shapes, layouts, dtypes, reductions)
and its parameter names. The spec's rows are checked against the solved
notebook (:func:`api_problems`): every signature is defined there with the
same parameters and defaults (the notebook may add a default where the API
has none: the tests always pass that argument), and appears, word for word, in the notebook's
own API table, so the students read exactly what the hidden tests call.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

_FIELDS = ("question", "signature", "inputs", "returns", "notes")


@dataclass(frozen=True)
class ApiEntry:
    """One row of the API table: ``signature`` as students must write it, e.g. ``f(x, k=2)``."""

    question: str
    signature: str
    inputs: str = ""
    returns: str = ""
    notes: str = ""

    @property
    def name(self) -> str:
        return self.signature.split("(", 1)[0].strip()


class ApiError(ValueError):
    """An ``[[api]]`` row is malformed."""


def parse_entry(row: dict, where: str) -> ApiEntry:
    """An ``[[api]]`` table of the spec, checked: known keys, a parseable signature."""
    unknown = set(row) - set(_FIELDS)
    if unknown or "question" not in row or "signature" not in row:
        raise ApiError(f"{where}: cada [[api]] necesita question y signature (y sólo {', '.join(_FIELDS)}); "
                       f"sobran {sorted(unknown)}" if unknown else f"{where}: [[api]] sin question o signature")
    entry = ApiEntry(**{k: str(v) for k, v in row.items()})
    _signature_args(entry.signature, where)
    return entry


def _signature_args(signature: str, where: str = "") -> ast.arguments:
    try:
        tree = ast.parse(f"def {signature.strip()}:\n    pass\n")
    except SyntaxError as exc:
        raise ApiError(f"{where}: la firma {signature!r} no es Python válido ({exc.msg})") from exc
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    return func.args


def _describe(args: ast.arguments, *, drop_self: bool = False) -> list[tuple[str, str, str | None]]:
    """(kind, name, default source) for every parameter, in order."""
    positional = [*args.posonlyargs, *args.args]
    if drop_self and positional:
        positional = positional[1:]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = [("pos", a.arg, None if d is None else ast.unparse(d)) for a, d in zip(positional, defaults, strict=True)]
    if args.vararg:
        out.append(("*", args.vararg.arg, None))
    out += [("kw", a.arg, None if d is None else ast.unparse(d))
            for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg:
        out.append(("**", args.kwarg.arg, None))
    return out


def _notebook_cells(path: Path) -> tuple[list[str], list[str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    code, markdown = [], []
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        (code if cell.get("cell_type") == "code" else markdown if cell.get("cell_type") == "markdown" else []).append(
            source)
    return code, markdown


def _definitions(code_cells: list[str]) -> dict[str, list[tuple[str, str, str | None]]]:
    """Top-level functions and classes (their ``__init__``) defined by the notebook's code cells."""
    found: dict[str, list[tuple[str, str, str | None]]] = {}
    for source in code_cells:
        python = "\n".join(line for line in source.splitlines() if not re.match(r"\s*[%!]", line))
        try:
            tree = ast.parse(python)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                found[node.name] = _describe(node.args)
            elif isinstance(node, ast.ClassDef):
                init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
                found[node.name] = _describe(init.args, drop_self=True) if init else []
    return found


def _compatible(defined: list[tuple[str, str, str | None]], api: list[tuple[str, str, str | None]]) -> bool:
    """Same parameters in the same order with the same defaults; where the API gives none, callers always pass
    the argument, so the notebook may offer a default of its own."""
    return len(defined) == len(api) and all(
        d[:2] == a[:2] and (a[2] is None or d[2] == a[2]) for d, a in zip(defined, api, strict=True))


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def api_problems(entries: list[ApiEntry], notebook: Path, question_ids: set[str]) -> list[str]:
    """What disagrees between the spec's API rows and the solved notebook (empty: all agree)."""
    code, markdown = _notebook_cells(notebook)
    defined = _definitions(code)
    tables = _squash("\n".join(line for cell in markdown for line in cell.splitlines() if line.lstrip().startswith("|")))
    problems = []
    for entry in entries:
        if entry.question not in question_ids:
            problems.append(f"{entry.signature}: la pregunta {entry.question!r} no existe")
        if entry.name not in defined:
            problems.append(f"{entry.signature}: {notebook.name} no define {entry.name}")
        else:
            want = _describe(_signature_args(entry.signature))
            if not _compatible(defined[entry.name], want):
                problems.append(f"{entry.signature}: en {notebook.name} los parámetros son {defined[entry.name]}, "
                                f"la API dice {want}")
        if f"`{_squash(entry.signature)}`" not in tables:
            problems.append(f"{entry.signature}: no aparece, tal cual y entre comillas invertidas, en una tabla "
                            f"de {notebook.name}")
    return problems


def markdown_table(entries: list[ApiEntry], lang: str = "es") -> str:
    """The API rows as a Markdown table (for the README or a notebook)."""
    head = {"es": ("Pregunta", "Función o clase", "Entradas", "Devuelve", "Notas"),
            "en": ("Question", "Function or class", "Inputs", "Returns", "Notes")}[lang]
    rows = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for e in entries:
        rows.append(f"| {e.question} | `{e.signature}` | {e.inputs} | {e.returns} | {e.notes} |")
    return "\n".join(rows)
