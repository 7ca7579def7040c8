"""Shared fixtures: the course, the real sandbox, notebooks built on the fly, one graded demo."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat
import pytest

from autograder.course import Course
from autograder.execute.sandbox import MODE_NONE, SandboxUnavailable, detect_mode

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def course() -> Course:
    return Course(ROOT)


@pytest.fixture(scope="session")
def backprop(course):
    return course.spec("01_backprop")


@pytest.fixture(scope="session")
def sandbox_mode() -> str:
    """The real sandbox; CI (AUTOGRADER_REQUIRE_SANDBOX=1) fails if it is missing."""
    try:
        mode = detect_mode()
    except SandboxUnavailable as exc:
        if os.environ.get("AUTOGRADER_REQUIRE_SANDBOX"):
            pytest.fail(f"the real sandbox is required here: {exc}")
        pytest.skip(str(exc))
    assert mode != MODE_NONE
    return mode


def notebook_from_solution(spec, replacements: dict[str, str] | None = None, extra_cells: list[str] | None = None,
                           prepend_cells: list[str] | None = None) -> nbformat.NotebookNode:
    """The solved notebook with ``old -> new`` source replacements and extra code cells."""
    nb = copy.deepcopy(nbformat.read(spec.solution_notebook, as_version=4))
    for old, new in (replacements or {}).items():
        hits = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        assert hits, f"snippet not found in the solution: {old!r}"
        for cell in hits:
            cell.source = cell.source.replace(old, new)
    for source in extra_cells or []:
        nb.cells.append(nbformat.v4.new_code_cell(source))
    for source in reversed(prepend_cells or []):
        nb.cells.insert(0, nbformat.v4.new_code_cell(source))
    return nb


def write_notebook(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="session")
def graded_demo(tmp_path_factory, sandbox_mode):
    """``autograder demo`` run once for the whole session; tests inspect its output."""
    from typer.testing import CliRunner

    from autograder.cli import app

    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--quiet", "--course", str(ROOT), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture()
def one_torch_thread():
    """Tiny tensors: one thread is faster than two fighting over a busy CI machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def one_torch_thread_seeded(one_torch_thread):
    """One thread, and torch's global generator reset, for tests that draw from it."""
    import torch

    torch.manual_seed(0)


def cell_source(cell) -> str:
    """A notebook cell's source as one string (stored as a list of lines or as one string)."""
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def run_graded_cells(notebook: dict) -> dict:
    """Run a solved notebook's graded cells here (not its skip-grading cells; the self-check is a no-op)."""
    namespace: dict = {"__name__": "__main__"}
    for cell in notebook["cells"]:
        source = cell_source(cell)
        if cell["cell_type"] != "code" or "skip-grading" in cell["metadata"].get("tags", []) or source.startswith("check"):
            continue
        source = source.replace("from autograder import check, check_all", "check = check_all = None")
        exec(compile(source, "<celda>", "exec"), namespace)
    return namespace
