"""The pinned API: the spec's ``[[api]]`` rows and the notebook's table say the same, and the code agrees."""

from __future__ import annotations

import json
import shutil

import pytest

from autograder.api import ApiEntry, api_problems, markdown_table
from autograder.course import Course, CourseError
from conftest import ROOT

COURSE = Course(ROOT)


@pytest.mark.parametrize("assignment", COURSE.assignment_ids())
def test_spec_api_matches_the_notebook_and_covers_every_graded_function(assignment):
    spec = COURSE.spec(assignment)
    assert spec.api, f"{assignment}: spec.toml has no [[api]] table"
    assert api_problems(spec.api, spec.solution_notebook, {q.id for q in spec.questions}) == []
    pinned = {entry.name for entry in spec.api}
    graded = {f for q in spec.questions for f in q.functions}
    assert graded <= pinned, f"graded but not pinned in the API: {sorted(graded - pinned)}"


def _notebook(tmp_path, code: str, table_row: str):
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "| función | devuelve |\n|---|---|\n" + table_row},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "%matplotlib inline\n" + code},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def test_signature_mismatches_and_missing_rows_are_named(tmp_path):
    entry = ApiEntry("q1", "f(x, k=2)")
    ok = _notebook(tmp_path, "def f(x, k=2):\n    return x\n", "| `f(x, k=2)` | x |")
    assert api_problems([entry], ok, {"q1"}) == []

    renamed = _notebook(tmp_path, "def f(x, n=2):\n    return x\n", "| `f(x, k=2)` | x |")
    assert any("parámetros" in p for p in api_problems([entry], renamed, {"q1"}))
    other_default = _notebook(tmp_path, "def f(x, k=3):\n    return x\n", "| `f(x, k=2)` | x |")
    assert any("parámetros" in p for p in api_problems([entry], other_default, {"q1"}))
    no_row = _notebook(tmp_path, "def f(x, k=2):\n    return x\n", "| `f(x)` | x |")
    assert any("tabla" in p for p in api_problems([entry], no_row, {"q1"}))
    missing = _notebook(tmp_path, "def g(x, k=2):\n    return x\n", "| `f(x, k=2)` | x |")
    assert any("no define f" in p for p in api_problems([entry], missing, {"q1"}))
    assert any("q9" in p for p in api_problems([ApiEntry("q9", "f(x, k=2)")], ok, {"q1"}))


def test_classes_are_checked_by_their_constructor(tmp_path):
    code = "class Net:\n    def __init__(self, d, h=4):\n        pass\n"
    path = _notebook(tmp_path, code, "| `Net(d, h=4)` | módulo |")
    assert api_problems([ApiEntry("q1", "Net(d, h=4)")], path, {"q1"}) == []
    assert api_problems([ApiEntry("q1", "Net(d)")], path, {"q1"})


def test_a_default_only_in_the_notebook_is_allowed(tmp_path):
    """The API without a default means callers always pass it; the notebook may still offer one."""
    path = _notebook(tmp_path, "def f(x, k=2):\n    return x\n", "| `f(x, k)` | x |")
    assert api_problems([ApiEntry("q1", "f(x, k)")], path, {"q1"}) == []


def test_malformed_api_rows_are_spec_errors(tmp_path):
    course = tmp_path / "curso"
    shutil.copytree(ROOT / "solutions" / "01_backprop", course / "solutions" / "01_backprop")
    spec_path = course / "solutions" / "01_backprop" / "spec.toml"
    spec_path.write_text(spec_path.read_text(encoding="utf-8") + '\n[[api]]\nquestion = "q1"\nsignature = "f(x"\n',
                         encoding="utf-8")
    with pytest.raises(CourseError, match="firma"):
        Course(course).spec("01_backprop")


def test_markdown_table_renders_every_row():
    table = markdown_table([ApiEntry("q1", "f(x)", "x (N,)", "y", "media")], lang="en")
    assert table.splitlines()[0].startswith("| Question |") and "| q1 | `f(x)` | x (N,) | y | media |" in table
