"""The demo (computed once per session) grades every bundled example exactly as its spec says."""

from __future__ import annotations

import csv

import pytest

from autograder.course import Course
from autograder.grade.cases import new_seed, prepare
from autograder.grade.submission import GradeContext, grade_submission
from autograder.store import Gradebook
from autograder.validate import expected_outcomes, judge_example
from conftest import ROOT

COURSE = Course(ROOT)
EXAMPLES = [(aid, ex.name) for aid in COURSE.assignment_ids() for ex in COURSE.spec(aid).examples]


@pytest.fixture(scope="module")
def demo_results(graded_demo):
    gradebook = Gradebook(graded_demo / "gradebook.sqlite")
    try:
        return {(r.assignment, r.student): r for r in gradebook.results()}
    finally:
        gradebook.close()


@pytest.mark.parametrize("assignment, example", EXAMPLES, ids=[f"{a}/{e}" for a, e in EXAMPLES])
def test_example_scores_exactly_as_expected(demo_results, assignment, example):
    spec = COURSE.spec(assignment)
    expected = next(ex for ex in spec.examples if ex.name == example).expected_on("cpu")
    verdict = judge_example(example, demo_results[(assignment, example)], expected)
    assert verdict.ok, verdict.problems


def test_every_assignment_has_enough_examples():
    for aid in COURSE.assignment_ids():
        spec = COURSE.spec(aid)
        buggy = [ex for ex in spec.examples if ex.expected_on("cpu").score < spec.max_score]
        assert len(buggy) >= 8, aid
        failing_questions = {q for ex in buggy for q, pts in ex.expected_on("cpu").questions.items()
                             if pts < spec.question(q).points}
        assert failing_questions == {q.id for q in spec.questions}, f"{aid}: some question has no buggy example"


def test_demo_outputs_are_complete(graded_demo):
    with (graded_demo / "grades.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["assignment"], r["student"]) for r in rows} == set(EXAMPLES)
    for row in rows:
        assert row["batch_seed"] and row["grader_version"] and row["sandbox"].startswith("bwrap")
        html = graded_demo / "feedback" / row["assignment"] / f"{row['student']}.html"
        assert html.is_file()
    cheat = (graded_demo / "feedback" / "01_backprop" / "tramposo_monkeypatch.html").read_text(encoding="utf-8")
    assert "0 / 100" in cheat.replace("\u202f", " ")


@pytest.mark.parametrize("assignment", COURSE.assignment_ids())
def test_solution_full_marks_and_stub_zero(assignment, sandbox_mode):
    spec = COURSE.spec(assignment)
    ctx = GradeContext(spec, prepare(spec.checks, new_seed()), sandbox_mode)
    for name, path, expected in expected_outcomes(spec, ROOT, "cpu")[:2]:
        verdict = judge_example(name, grade_submission(ctx, path, name), expected)
        assert verdict.ok, (name, verdict.problems)
