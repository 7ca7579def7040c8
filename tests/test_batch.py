"""Batch behaviour: answers built once per batch, resume, any number of jobs, skipped cells, progress and summary.

Correctness only: nothing here asserts a duration (the benchmark in
``benchmarks/bench_batch.py`` measures speed).
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from autograder import cli
from autograder.cli import app
from autograder.grade.batch import BatchOptions, BatchSummary, grade_batch
from autograder.notebook.analysis import to_python
from autograder.results import BatchInfo, CellOutcome, CheckResult, Status, SubmissionResult, SubmissionStatus
from conftest import ROOT, notebook_from_solution, write_notebook

SKIP = "skip-grading"


def small_class(backprop, folder: Path) -> Path:
    """Full marks, a bug, the stub, a file that is not a notebook, and a hang that costs one check."""
    subs = folder / "entregas"
    write_notebook(notebook_from_solution(backprop), subs / "ana.ipynb")
    write_notebook(notebook_from_solution(backprop, {"db = dout.sum(axis=0)": "db = dout.mean(axis=0)"}),
                   subs / "bruno.ipynb")
    write_notebook(nbformat.read(ROOT / "assignments/01_backprop/01_backprop.ipynb", as_version=4),
                   subs / "carla.ipynb")
    (subs / "dario.ipynb").write_text('{"cells": [', encoding="utf-8")
    write_notebook(notebook_from_solution(backprop, extra_cells=["import os\nos._exit(1)"]), subs / "eva.ipynb")
    return subs


def scores_in(out: Path) -> dict[str, tuple[str, str]]:
    with (out / "grades.csv").open(encoding="utf-8") as fh:
        return {row["student"]: (row["score"], row["status"]) for row in csv.DictReader(fh)}


def outcomes(summary: BatchSummary) -> dict[str, tuple]:
    return {r.student: (round(r.score, 6), tuple((c.check, c.status.value) for c in r.checks)) for r in summary.graded}


# -- reference answers: once per batch -------------------------------------------------------

def test_reference_answers_are_built_once_per_batch_and_shared(backprop, sandbox_mode, tmp_path):
    builds: Counter[str] = Counter()

    def counted(check):
        def build(rng):
            builds[check.name] += 1
            return check.build(rng)
        return dataclasses.replace(check, build=build)

    spec = dataclasses.replace(backprop, checks=[counted(c) for c in backprop.checks])
    summary = grade_batch(spec, small_class(backprop, tmp_path), tmp_path / "out", BatchOptions(jobs=2, seed=3))
    assert len(summary.graded) == 5
    assert builds == Counter({c.name: 1 for c in backprop.checks})  # 5 submissions, each check built once
    by_student = {r.student: r for r in summary.graded}
    assert by_student["ana"].score == backprop.max_score
    assert 0 < by_student["bruno"].score < backprop.max_score


# -- resume and jobs -------------------------------------------------------------------------

def test_an_interrupted_batch_resumes_to_the_same_scores_with_any_jobs(backprop, sandbox_mode, tmp_path):
    subs = small_class(backprop, tmp_path)
    whole = grade_batch(backprop, subs, tmp_path / "whole", BatchOptions(jobs=1, seed=11))

    def killed_after_two(result, done, total):
        if done == 2:
            raise KeyboardInterrupt  # as if the instructor pressed Ctrl-C (or the machine went down)

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        grade_batch(backprop, subs, out, BatchOptions(jobs=2, seed=11), progress=killed_after_two)
    resumed = grade_batch(backprop, subs, out, BatchOptions(jobs=2))  # no --seed: the batch's own
    assert resumed.info.seed == 11 and resumed.info.batch_id
    assert len(resumed.skipped) == 2 and len(resumed.graded) == 3
    assert not set(resumed.skipped) & {r.student for r in resumed.graded}
    assert scores_in(out) == scores_in(tmp_path / "whole")
    assert outcomes(resumed) == {k: v for k, v in outcomes(whole).items() if k not in resumed.skipped}

    nothing = grade_batch(backprop, subs, out, BatchOptions(jobs=1))
    assert not nothing.graded and len(nothing.skipped) == 5


def test_resume_regrades_a_changed_notebook_and_everything_after_a_new_assignment_version(backprop, sandbox_mode,
                                                                                         tmp_path):
    subs, out = small_class(backprop, tmp_path), tmp_path / "out"
    first = grade_batch(backprop, subs, out, BatchOptions(jobs=2))
    write_notebook(notebook_from_solution(backprop), subs / "bruno.ipynb")  # bruno hands in a fixed notebook
    second = grade_batch(backprop, subs, out, BatchOptions(jobs=2))
    assert [r.student for r in second.graded] == ["bruno"] and second.graded[0].score == backprop.max_score
    assert second.info.seed == first.info.seed

    bumped = dataclasses.replace(backprop, version=backprop.version + "+1")
    third = grade_batch(bumped, subs, out, BatchOptions(jobs=1))
    assert sorted(r.student for r in third.graded) == ["ana", "bruno", "carla", "dario", "eva"]
    assert third.info.seed == first.info.seed
    assert {r.student: r.score for r in third.graded} == \
        {**{r.student: r.score for r in first.graded}, "bruno": backprop.max_score}


def test_a_hang_in_one_submission_costs_its_own_limit_and_nothing_else(backprop, sandbox_mode, tmp_path):
    """The infinite loop is stopped once (its cell's limit) and every other student is graded as usual."""
    spec = dataclasses.replace(backprop, limits=dataclasses.replace(backprop.limits, cell_timeout_s=2))
    subs = tmp_path / "entregas"
    write_notebook(notebook_from_solution(backprop, extra_cells=["while True:\n    pass"]), subs / "bucle.ipynb")
    write_notebook(notebook_from_solution(backprop), subs / "ana.ipynb")
    summary = grade_batch(spec, subs, tmp_path / "out", BatchOptions(jobs=2))
    by_student = {r.student: r for r in summary.graded}
    loop = by_student["bucle"]
    assert [c.status for c in loop.cells].count("timeout") == 1
    assert loop.score == by_student["ana"].score == backprop.max_score


# -- expensive cells -----------------------------------------------------------------------------

def _assignment_ids() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "solutions").glob("*/spec.toml"))


@pytest.mark.parametrize("assignment", _assignment_ids())
def test_the_cells_grading_runs_only_define_things(course, assignment):
    """Training loops and plots are tagged ``skip-grading`` in every solution (so in every stub too): the
    cells that grading runs hold definitions, imports and constants, not work."""
    spec = course.spec(assignment)
    nb = nbformat.read(spec.solution_notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any(SKIP in c.metadata.get("tags", []) for c in code), "no cell is tagged skip-grading"
    defined = set()
    for cell in code:
        for node in ast.parse(to_python(cell.source)).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.add(node.name)
    problems = []
    for cell in code:
        if SKIP in cell.metadata.get("tags", []):
            continue
        tree = ast.parse(to_python(cell.source))
        if "matplotlib" in cell.source or "plt." in cell.source:
            problems.append(f"plots: {cell.source[:60]!r}")
        for node in tree.body:
            if isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)):
                problems.append(f"top-level {type(node).__name__}: {ast.unparse(node)[:60]!r}")
            elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                calls = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
                if calls & defined:
                    problems.append(f"runs its own code at top level: {ast.unparse(node)[:60]!r}")
    assert not problems, problems


@pytest.mark.parametrize("assignment", _assignment_ids())
def test_the_released_stub_keeps_the_skip_tags(course, assignment):
    spec = course.spec(assignment)
    stub = ROOT / "assignments" / assignment / spec.stub_name
    if not stub.is_file():
        pytest.skip("not released yet")
    tagged = [SKIP in c.metadata.get("tags", []) for c in nbformat.read(stub, as_version=4).cells if c.cell_type == "code"]
    solution = [SKIP in c.metadata.get("tags", []) for c in nbformat.read(spec.solution_notebook, as_version=4).cells
                if c.cell_type == "code"]
    assert tagged == solution


# -- progress and summary ----------------------------------------------------------------------

def test_cli_shows_progress_and_a_summary_and_is_silent_with_quiet(backprop, sandbox_mode, tmp_path):
    subs = small_class(backprop, tmp_path)
    runner = CliRunner()
    shown = runner.invoke(app, ["grade", "01_backprop", str(subs), "--out", str(tmp_path / "o"), "--jobs", "2",
                                "--course", str(ROOT), "--lang", "en"])
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "5/5" in text and "/min" in text and "ETA" in text  # done/total, rate, ETA
    assert "1 not gradable" in text and "1 hangs/crashes" in text  # failures so far (dario; eva crashes)
    for student in ("ana", "bruno", "carla", "dario", "eva"):
        assert student in text
    assert "5 graded in" in text and "1 not gradable" in text

    again = runner.invoke(app, ["grade", "01_backprop", str(subs), "--out", str(tmp_path / "o"), "--course", str(ROOT),
                                "--lang", "en"])
    assert again.exit_code == 0 and "5 already graded" in again.output  # resumed: nothing to do

    quiet = runner.invoke(app, ["grade", "01_backprop", str(subs), "--out", str(tmp_path / "q"), "--quiet",
                                "--course", str(ROOT)])
    assert quiet.exit_code == 0 and quiet.output == ""
    assert json.loads((tmp_path / "q" / "grades.json").read_text())["submissions"]


def _fake_result(spec, student: str, *, passed: bool, status=SubmissionStatus.GRADED, hang: bool = False):
    checks = []
    for check in spec.checks:
        q = spec.question(check.question)
        points = q.points / len(spec.checks_of(q.id))
        ok = passed and not (hang and check is spec.checks[0])
        checks.append(CheckResult(check.question, check.name, Status.PASS if ok else Status.TIMEOUT if hang else Status.FAIL,
                                  points if ok else 0.0, points))
    return SubmissionResult(student, spec.id, f"{student}.ipynb", "0" * 64, status, checks=checks,
                            cells=[CellOutcome(0, "ok")])


def test_the_summary_of_a_big_class_shows_the_class_and_what_needs_a_look(backprop, capsys, monkeypatch):
    monkeypatch.setattr(cli, "console", cli.Console(stderr=True, width=200))
    graded = [_fake_result(backprop, f"est{i:03d}", passed=i % 2 == 0) for i in range(200)]
    graded.append(_fake_result(backprop, "colgado", passed=True, hang=True))
    graded.append(_fake_result(backprop, "roto", passed=False, status=SubmissionStatus.INVALID))
    info = BatchInfo("b", backprop.id, backprop.version, "0", 1, "cpu", "en", "bwrap")
    cli._summary_table(BatchSummary(info, graded=graded, skipped=["viejo"], duration_s=60.0), backprop, "en")
    text = capsys.readouterr().err
    assert "est001" not in text  # 202 rows are in grades.csv, not on the screen
    assert "total" in text and all(q.id in text for q in backprop.questions)
    assert "colgado" in text and "timeout" in text and "roto" in text and "invalid" in text
    assert "202 graded in 60.0 s (202/min)" in text and "1 not gradable" in text and "1 already graded" in text
