"""Building example submissions from a solved notebook: exact edits, nothing written when one fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import (
    AsDownloadedFromColab,
    EditError,
    Example,
    InsertCell,
    Redefine,
    Replace,
    ReplaceInCell,
    Unsolved,
    build,
    write_examples,
)
from conftest import ROOT

SOLUTION_DIR = ROOT / "solutions" / "01_backprop"


@pytest.fixture()
def course_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "01_backprop"
    folder.mkdir()
    for name in ("solution.ipynb", "spec.toml"):
        shutil.copy(SOLUTION_DIR / name, folder / name)
    return folder


def _code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_a_student_notebook_has_release_metadata_and_no_markers_or_outputs(course_dir):
    nb = build(course_dir, Example("limpio", "sin cambios", ()))
    assert "### BEGIN SOLUTION" not in _code(nb) and "### END SOLUTION" not in _code(nb)
    assert nb.metadata["autograder"]["assignment"] == "01_backprop"
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")


def test_edits_change_exactly_what_they_name(course_dir):
    nb = build(course_dir, Example("bug", "db con media", (
        Replace("linear_backward", "db = dout.sum(axis=0)", "db = dout.mean(axis=0)"),
        Redefine("relu_forward", "def relu_forward(x):\n    return x\n"),
        InsertCell(None, "primera", "x = 1\n"),
    )))
    code = _code(nb)
    assert "db = dout.mean(axis=0)" in code and "db = dout.sum(axis=0)" not in code
    assert "def relu_forward(x):\n    return x\n" in code
    assert nb.cells[0].id == "primera"


@pytest.mark.parametrize("edit, words", [
    (Replace("linear_backward", "no está en la función", "x"), "aparece 0 veces"),
    (Replace("no_existe", "a", "b"), "aparece definida 0 veces"),
    (ReplaceInCell("no-hay-celda", "a", "b"), "no hay ninguna celda"),
])
def test_an_edit_that_does_not_apply_stops_and_writes_nothing(course_dir, edit, words):
    with pytest.raises(EditError, match=words):
        write_examples(course_dir, [Example("bueno", "", ()), Example("malo", "", (edit,))])
    assert not (course_dir / "examples").exists()


def test_unsolved_leaves_the_stub_and_colab_download_moves_the_ids(course_dir):
    nb = nbformat.read(course_dir / "solution.ipynb", as_version=4)
    solved = next(c.id for c in nb.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source)
    built = build(course_dir, Example("sin_hacer", "", (Unsolved(solved), AsDownloadedFromColab())))
    assert "raise NotImplementedError()" in _code(built)
    assert built.metadata["colab"]["name"] == "Copia de 01_backprop.ipynb" and built.nbformat_minor == 0
    assert all("id" not in c and c.metadata["id"] for c in built.cells)


def test_write_examples_is_deterministic(course_dir):
    examples = [Example("uno", "", (Replace("linear_backward", "db = dout.sum(axis=0)", "db = 0 * dout.sum(axis=0)"),))]
    write_examples(course_dir, examples)
    first = (course_dir / "examples/uno/uno.ipynb").read_text(encoding="utf-8")
    write_examples(course_dir, examples)
    assert (course_dir / "examples/uno/uno.ipynb").read_text(encoding="utf-8") == first
    assert json.loads(first)["metadata"]["autograder"]["assignment"] == "01_backprop"
    with pytest.raises(EditError, match="mismo nombre"):
        write_examples(course_dir, examples * 2)
