"""The demo (computed once per session) grades every bundled example exactly as its spec says."""

from __future__ import annotations

import csv

import pytest

from autograder.course import Course
from autograder.grade.cases import new_seed, prepare
from autograder.grade.submission import GradeContext, grade_submission
from autograder.store import Gradebook
from autograder.store.export import format_number
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


def _buggy_examples():
    """Examples that plant a named bug (their spec names a word of its message) and lose points for it."""
    for aid in COURSE.assignment_ids():
        spec = COURSE.spec(aid)
        for ex in spec.examples:
            expected = ex.expected_on("cpu")
            if expected.messages and expected.score < spec.max_score:
                yield aid, ex.name


BUGGY = list(_buggy_examples())


@pytest.mark.parametrize("assignment, example", BUGGY, ids=[f"{a}/{e}" for a, e in BUGGY])
def test_every_buggy_example_gets_a_hint_that_names_its_bug(demo_results, assignment, example):
    """Where a question's answers come back wrong (status ``fail``), one of its checks carries a hint, not only a
    mismatch report; and where the spec names the bug's word for that question, the hints say it."""
    spec = COURSE.spec(assignment)
    expected = next(ex for ex in spec.examples if ex.name == example).expected_on("cpu")
    result = demo_results[(assignment, example)]
    for question in spec.questions:
        failed = [c for c in result.checks if c.question == question.id and c.status.value == "fail"]
        if not failed:
            continue  # lost to an error, a timeout, a missing or forbidden function: the message is the explanation
        hints = " ".join(c.hint for c in failed)
        assert hints.strip(), f"{example} {question.id}: only a mismatch report, no hint"
        word = expected.messages.get(question.id)
        if word:
            assert word.lower() in hints.lower(), f"{example} {question.id}: the hint does not say {word!r}: {hints}"


def test_feedback_lists_points_what_was_checked_the_mismatch_and_the_hint(graded_demo, demo_results):
    """The per-student page: per question its points, every check in words (never test code), the mismatch
    report and the hint."""
    import html as html_module

    result = demo_results[("01_backprop", "db_promedio")]
    page = html_module.unescape((graded_demo / "feedback" / "01_backprop" / "db_promedio.html").read_text("utf-8"))
    spec = COURSE.spec("01_backprop")
    for question in spec.questions:
        got, out_of = result.question_scores()[question.id]
        assert f"{format_number(got, 2)} / {format_number(out_of, 2)} puntos" in page, question.id
    for check in spec.checks:
        assert check.description["es"] in page, check.name
    failing = next(c for c in result.checks if c.check == "linear_backward")
    assert failing.status.value == "fail"
    assert "db: no coincide con la referencia" in page and "Elementos distintos" in page  # the mismatch, verbatim
    assert "Pista:" in page and "db debe *sumar* dout sobre el lote" in page
    for aid in COURSE.assignment_ids():
        for path in (graded_demo / "feedback" / aid).glob("*.html"):
            text = path.read_text("utf-8")
            for secret in ("reference_impl", "def build", "BugPattern", "Probe(", "@load_state_dict", "tests.py"):
                assert secret not in text, (path.name, secret)
