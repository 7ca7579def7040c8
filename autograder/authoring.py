"""Build an assignment's bundled example submissions from its solved notebook (instructor tooling).

Each ``solutions/<id>/make_examples.py`` lists its examples: what one "student"
hands in, that is the solved notebook as a student would have it (the stub
filled in: no ``### BEGIN/END SOLUTION`` markers, the release metadata, no
outputs) with a list of edits that plant one realistic mistake (or a broken or
hostile notebook). :func:`write_examples` writes each to
``examples/<name>/<name>.ipynb``; its expected grade lives in ``spec.toml``
(``[[examples]]``), and ``autograder validate <id>`` checks it.

The edits are exact: a snippet that is not found (the solution changed) stops
with an :class:`EditError` instead of writing an example without its bug, and
nothing is written unless every example builds. The output is deterministic,
so building again gives identical files.
"""

from __future__ import annotations

import copy
import hashlib
import re
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import nbformat

from .release import BEGIN, END, strip_solutions


class EditError(RuntimeError):
    """An edit does not apply to the solution any more: fix the edit, do not skip it."""


class Edit(Protocol):
    def apply(self, nb: Any) -> None: ...


# -- finding things in the notebook ------------------------------------------------------

def cell_by_id(nb: Any, cell_id: str) -> Any:
    """The cell whose id is ``cell_id``."""
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            return cell
    raise EditError(f"no hay ninguna celda con id {cell_id!r}")


def definition_span(nb: Any, name: str) -> tuple[Any, int, int]:
    """The code cell that defines ``name`` (a function or a class) and the (start, end) of its source in it."""
    pattern = re.compile(rf"^(?:def|class) {re.escape(name)}\b.*?(?=^\S|\Z)", re.M | re.S)
    found = [(cell, m) for cell in nb.cells if cell.cell_type == "code" for m in pattern.finditer(cell.source)]
    if len(found) != 1:
        raise EditError(f"{name!r} aparece definida {len(found)} veces (se esperaba 1)")
    cell, match = found[0]
    return cell, match.start(), match.end()


# -- the edits ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Replace:
    """Replace ``old`` (exactly once) inside the source of the function or class ``name`` with ``new``."""

    name: str
    old: str
    new: str

    def apply(self, nb: Any) -> None:
        cell, start, end = definition_span(nb, self.name)
        body = cell.source[start:end]
        if body.count(self.old) != 1:
            raise EditError(f"en {self.name}: el fragmento aparece {body.count(self.old)} veces "
                            f"(se esperaba 1):\n{self.old}")
        cell.source = cell.source[:start] + body.replace(self.old, self.new) + cell.source[end:]


@dataclass(frozen=True)
class ReplaceInCell:
    """Replace ``old`` (exactly once) in the source of the cell ``cell`` with ``new``."""

    cell: str
    old: str
    new: str

    def apply(self, nb: Any) -> None:
        target = cell_by_id(nb, self.cell)
        count = target.source.count(self.old)
        if count != 1:
            raise EditError(f"celda {self.cell}: el fragmento aparece {count} veces (se esperaba 1):\n{self.old}")
        target.source = target.source.replace(self.old, self.new)


@dataclass(frozen=True)
class Redefine:
    """Replace the whole definition of the function or class ``name`` with ``new`` (another correct or buggy one)."""

    name: str
    new: str

    def apply(self, nb: Any) -> None:
        cell, start, end = definition_span(nb, self.name)
        tail = cell.source[end:]
        cell.source = cell.source[:start] + self.new.strip("\n") + ("\n\n\n" + tail.lstrip("\n") if tail.strip() else "\n")


@dataclass(frozen=True)
class ReplaceCell:
    """Replace the whole source of the cell ``cell``."""

    cell: str
    source: str

    def apply(self, nb: Any) -> None:
        cell_by_id(nb, self.cell).source = self.source


@dataclass(frozen=True)
class InsertCell:
    """Insert a new code cell (id ``id``) right after the cell ``after``; ``after=None`` puts it first."""

    after: str | None
    id: str
    source: str

    def apply(self, nb: Any) -> None:
        position = 0 if self.after is None else nb.cells.index(cell_by_id(nb, self.after)) + 1
        nb.cells.insert(position, nbformat.v4.new_code_cell(self.source, id=self.id))


@dataclass(frozen=True)
class AppendCell:
    """Add a new code cell at the end of the notebook."""

    id: str
    source: str

    def apply(self, nb: Any) -> None:
        nb.cells.append(nbformat.v4.new_code_cell(self.source, id=self.id))


@dataclass(frozen=True)
class Unsolved:
    """Leave the cell as the released stub has it (``raise NotImplementedError()``)."""

    cell: str

    def apply(self, nb: Any) -> None:
        cell = cell_by_id(nb, self.cell)
        if not any(BEGIN.match(line) for line in cell.source.split("\n")):
            raise EditError(f"la celda {self.cell!r} no tiene bloques de solución")
        cell.source = strip_solutions(cell.source, where=self.cell)


@dataclass(frozen=True)
class Outputs:
    """Give the code cell ``cell`` these stored outputs (as if it had been run)."""

    cell: str
    outputs: tuple

    def apply(self, nb: Any) -> None:
        cell_by_id(nb, self.cell).outputs = [nbformat.from_dict(copy.deepcopy(o)) for o in self.outputs]


@dataclass(frozen=True)
class AsDownloadedFromColab:
    """What Colab's File > Download .ipynb writes: Colab metadata, nbformat 4.0, ids in the metadata."""

    def apply(self, nb: Any) -> None:
        assignment = nb.metadata["autograder"]["assignment"]
        nb.metadata = nbformat.from_dict({
            "accelerator": "GPU",
            "autograder": nb.metadata["autograder"],
            "colab": {"gpuType": "T4", "name": f"Copia de {assignment}.ipynb", "provenance": [], "toc_visible": True},
            "kernelspec": {"display_name": "Python 3", "name": "python3"},
            "language_info": {"name": "python"},
        })
        nb.nbformat_minor = 0
        count = 0
        for cell in nb.cells:
            colab_id = hashlib.sha1(cell.pop("id").encode()).hexdigest()[:12]
            cell.metadata["id"] = colab_id
            if cell.cell_type == "code":
                count += 1
                cell.execution_count = count
                if cell.outputs:
                    cell.metadata["outputId"] = hashlib.sha1(colab_id.encode()).hexdigest()[:12]
                    for output in cell.outputs:
                        if "execution_count" in output:
                            output.execution_count = count


@dataclass(frozen=True)
class Example:
    """One bundled submission: its folder name, what is wrong with it (Spanish), and the edits that make it."""

    name: str
    description: str
    edits: tuple[Edit, ...]


# -- building ----------------------------------------------------------------------------

def drop_markers(nb: Any) -> None:
    """Remove the ``### BEGIN/END SOLUTION`` lines of every code cell."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines = cell.source.split("\n")
            cell.source = "\n".join(line for line in lines if not (BEGIN.match(line) or END.match(line)))


def student_notebook(solution_dir: Path, *, markers_first: bool = False) -> Any:
    """The solution as a student who filled in the stub has it: release metadata, no outputs.

    With ``markers_first`` the markers are dropped here and every code cell ends with a newline, so
    that edits read the code exactly as the student has it; otherwise :func:`build` drops them after
    the edits (which lets :class:`Unsolved` still find its blocks).
    """
    nb = nbformat.read(solution_dir / "solution.ipynb", as_version=4)
    spec = tomllib.loads((solution_dir / "spec.toml").read_text(encoding="utf-8"))
    nb.metadata["autograder"] = {"assignment": spec["id"], "version": spec["version"]}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if markers_first:
        drop_markers(nb)
        for cell in nb.cells:
            if cell.cell_type == "code" and not cell.source.endswith("\n"):
                cell.source += "\n"
    return nb


def build(solution_dir: Path, example: Example, *, markers_first: bool = False) -> Any:
    """The notebook of one example."""
    nb = student_notebook(solution_dir, markers_first=markers_first)
    for edit in example.edits:
        edit.apply(nb)
    if not markers_first:
        drop_markers(nb)
    return nb


def write_examples(solution_dir: Path, examples: Sequence[Example], *, markers_first: bool = False) -> None:
    """Build every example, then (only if all of them built and validate) replace ``examples/`` with them."""
    names = [e.name for e in examples]
    if len(set(names)) != len(names):
        raise EditError("hay ejemplos con el mismo nombre")
    built = [(example, build(solution_dir, example, markers_first=markers_first)) for example in examples]
    for _, nb in built:
        nbformat.validate(nb)
    folder = solution_dir / "examples"
    if folder.exists():
        shutil.rmtree(folder)
    for example, nb in built:
        target = folder / example.name / f"{example.name}.ipynb"
        target.parent.mkdir(parents=True)
        target.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        print(f"{target.relative_to(solution_dir)}  ·  {example.description}")
