"""Static facts about a student's code, computed in the trusted process.

* IPython syntax (magics, ``!shell``) turned into plain Python, as IPython
  itself does, so a sandboxed plain interpreter can run the cells.
* Which functions use a forbidden module (``torch`` in a numpy assignment),
  however it was imported, aliased or named in a string.
* Which dotted names each function uses (``nn.Linear`` after
  ``import torch.nn as nn`` is ``torch.nn.Linear``), so that a question can
  forbid a shortcut (``torch.nn.Linear`` where raw tensors are asked for).
* Which of the student's own functions each function calls, so that a
  failure can point at its root cause.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

# Batch slots grade in threads, and CPython 3.11's AST constructor keeps its recursion depth in
# state shared by the whole interpreter (python/cpython#106905): in a threaded program a parse can
# fail with "SystemError: AST constructor recursion depth mismatch". Every parse of the trusted
# process goes through this lock, and a parse that still trips over it is tried once more (the
# depth is reset at the start of each parse). Parsing a notebook takes milliseconds.
PARSE_LOCK = threading.Lock()


def parse(source: str) -> ast.Module:
    """``ast.parse`` that is safe to call from several threads."""
    with PARSE_LOCK:
        try:
            return ast.parse(source)
        except SystemError:
            return ast.parse(source)


@lru_cache(maxsize=1)
def _transformer():  # imported lazily: only the grader needs IPython
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def to_python(source: str) -> str:
    """The cell as plain Python (IPython magics become ``get_ipython()`` calls)."""
    try:
        with PARSE_LOCK:  # one shared transformer, which parses too
            return _transformer().transform_cell(source)
    except Exception:  # a cell IPython itself cannot parse: let the interpreter report it
        return source


@dataclass
class CodeFacts:
    """What the analysis found in a notebook's code."""

    functions: dict[str, int] = field(default_factory=dict)  # name -> cell index of its (last) def
    calls: dict[str, set[str]] = field(default_factory=dict)  # function -> names it calls
    forbidden_uses: dict[str, str] = field(default_factory=dict)  # function -> forbidden module it uses
    top_level_forbidden: str | None = None  # a forbidden module imported anywhere
    unparsed: dict[str, int] = field(default_factory=dict)  # name -> cell that defines it but does not parse
    names: dict[str, set[str]] = field(default_factory=dict)  # function -> dotted names it uses, aliases resolved

    def callees(self, name: str, stop_at: Iterable[str] = ()) -> set[str]:
        """The student's own functions that ``name`` reaches, transitively (not through ``stop_at``)."""
        stop = set(stop_at)
        seen: set[str] = set()
        todo = [name]
        while todo:
            for callee in self.calls.get(todo.pop(), ()):
                if callee in self.functions and callee not in seen and callee not in stop:
                    seen.add(callee)
                    todo.append(callee)
        return seen

    def forbidden_in(self, names: Iterable[str], stop_at: Iterable[str] = ()) -> tuple[str, str] | None:
        """``(function, module)`` if any of ``names`` or the helpers they call uses a forbidden module.

        ``stop_at``: functions graded by other questions; a forbidden shortcut there costs *that*
        question, and this one only loses what fails at run time because of it."""
        for name in names:
            for fn in [name, *sorted(self.callees(name, stop_at))]:
                if fn in self.forbidden_uses:
                    return fn, self.forbidden_uses[fn]
        return None

    def forbidden_name_in(self, functions: Iterable[str], forbidden: Iterable[str],
                          stop_at: Iterable[str] = ()) -> tuple[str, str] | None:
        """``(function, name)`` if any of ``functions`` or the helpers they call uses a ``forbidden`` dotted name.

        A name counts when it is the forbidden one or lies under it: ``torch.optim`` forbids
        ``torch.optim.SGD`` too. The name reported is the one the code uses, resolved. ``stop_at``
        as in :meth:`forbidden_in`.
        """
        prefixes = [f.strip(".") for f in forbidden if f.strip(".")]
        if not prefixes:
            return None
        for name in functions:
            for fn in [name, *sorted(self.callees(name, stop_at))]:
                for used in sorted(self.names.get(fn, ())):
                    if any(used == p or used.startswith(p + ".") for p in prefixes):
                        return fn, used
        return None


def _module_root(name: str | None) -> str:
    return (name or "").split(".")[0]


def analyse(cells: list[tuple[int, str]], forbidden: Iterable[str]) -> CodeFacts:
    """Analyse ``(cell_index, python_source)`` pairs (sources already through :func:`to_python`)."""
    forbidden = set(forbidden)
    facts = CodeFacts()
    aliases: dict[str, str] = {}  # local name -> forbidden module
    trees: list[tuple[int, ast.Module]] = []
    for index, source in cells:
        try:
            trees.append((index, parse(source)))
        except SyntaxError:  # the sandbox reports it as that cell's error; remember what it meant to define
            for match in re.finditer(r"^(?:async\s+)?(?:def|class)\s+(\w+)", source, flags=re.M):
                facts.unparsed.setdefault(match.group(1), index)
            continue
    bindings: dict[str, set[str]] = {}  # local name -> dotted names it may stand for (any import, any cell)
    for _, tree in trees:
        for node in ast.walk(tree):
            _bind_imports(node, bindings)
            if isinstance(node, ast.Import):
                for a in node.names:
                    if _module_root(a.name) in forbidden:
                        aliases[(a.asname or a.name).split(".")[0]] = _module_root(a.name)
                        facts.top_level_forbidden = _module_root(a.name)
            elif isinstance(node, ast.ImportFrom) and _module_root(node.module) in forbidden:
                facts.top_level_forbidden = _module_root(node.module)
                for a in node.names:
                    aliases[a.asname or a.name] = _module_root(node.module)
    for index, tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                facts.functions[node.name] = index
                facts.calls[node.name] = _called_names(node)
                facts.names[node.name] = _dotted_names(node, bindings)
                used = _forbidden_in_body(node, aliases, forbidden)
                if used:
                    facts.forbidden_uses[node.name] = used
                else:
                    facts.forbidden_uses.pop(node.name, None)
    return facts


def _called_names(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
            names.add(sub.func.id)
        elif isinstance(sub, ast.Name):  # functions passed around (e.g. to numerical_gradient)
            names.add(sub.id)
    return names


def _forbidden_in_body(node: ast.AST, aliases: dict[str, str], forbidden: set[str]) -> str | None:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in aliases:
            return aliases[sub.id]
        if isinstance(sub, ast.Import):
            for a in sub.names:
                if _module_root(a.name) in forbidden:
                    return _module_root(a.name)
        if isinstance(sub, ast.ImportFrom) and _module_root(sub.module) in forbidden:
            return _module_root(sub.module)
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and _module_root(sub.value) in forbidden:
            return _module_root(sub.value)  # __import__("torch"), importlib.import_module("torch")
    return None


STAR = "*"  # bindings[STAR]: the modules imported with ``from M import *``


def _bind_imports(node: ast.AST, bindings: dict[str, set[str]]) -> None:
    """Record what the names an import binds stand for (``import torch.nn as nn``: nn -> torch.nn)."""
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.asname:
                bindings.setdefault(a.asname, set()).add(a.name)
            else:  # ``import torch.nn`` binds ``torch``
                root = a.name.split(".")[0]
                bindings.setdefault(root, set()).add(root)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        for a in node.names:
            key = STAR if a.name == "*" else (a.asname or a.name)
            bindings.setdefault(key, set()).add(node.module if a.name == "*" else f"{node.module}.{a.name}")


def _chain(node: ast.AST) -> list[str] | None:
    """``nn.functional.relu`` -> ``["nn", "functional", "relu"]``; None for anything but names and attributes."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def _resolve(parts: list[str], bindings: dict[str, set[str]]) -> set[str]:
    """The dotted names a chain may stand for, through the imports' bindings."""
    root, rest = parts[0], parts[1:]
    bases = set(bindings.get(root, ())) | {f"{m}.{root}" for m in bindings.get(STAR, ())}
    return {".".join([base, *rest]) for base in bases}


def _dotted_names(node: ast.AST, module_bindings: dict[str, set[str]]) -> set[str]:
    """Every dotted name ``node`` uses, resolved through the imports (its own ones too).

    ``getattr(nn, "Linear")`` counts as ``torch.nn.Linear``.
    """
    bindings = {k: set(v) for k, v in module_bindings.items()}
    for sub in ast.walk(node):
        _bind_imports(sub, bindings)
    names: set[str] = set()
    for sub in ast.walk(node):
        parts = _chain(sub) if isinstance(sub, (ast.Attribute, ast.Name)) else None
        if parts:
            names |= _resolve(parts, bindings)
        if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "getattr"
                and len(sub.args) >= 2 and isinstance(sub.args[1], ast.Constant) and isinstance(sub.args[1].value, str)):
            base = _chain(sub.args[0])
            if base:
                names |= _resolve([*base, *sub.args[1].value.split(".")], bindings)
    return names
