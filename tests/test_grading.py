"""Grading end to end: the trust boundary, seeds, resume, layouts, nothing lost."""

from __future__ import annotations

import csv
import json
import sqlite3
import textwrap
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from autograder.cli import app
from autograder.grade.batch import BatchLocked, BatchOptions, grade_batch, output_lock
from autograder.grade.cases import prepare
from autograder.grade.submission import GradeContext, grade_submission
from autograder.results import Status, SubmissionStatus
from conftest import ROOT, notebook_from_solution, write_notebook


def code_notebook(*cells: str, tags: dict[int, list[str]] | None = None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for i, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(textwrap.dedent(source))
        if tags and i in tags:
            cell.metadata["tags"] = tags[i]
        nb.cells.append(cell)
    return nb


def statuses(result, question: str) -> set[str]:
    return {c.status.value for c in result.checks if c.question == question}


@pytest.fixture()
def ctx(backprop, sandbox_mode):
    return GradeContext(backprop, prepare(backprop.checks, seed=1234), sandbox_mode)


def test_hard_coded_answers_from_one_batch_fail_the_next(backprop, sandbox_mode, tmp_path):
    batch_a = prepare(backprop.checks, seed=1)
    softmax_case = next(p.case for p in batch_a if p.check.name == "softmax")
    recorded = softmax_case.expected.tolist()
    nb = code_notebook(f"import numpy as np\ndef softmax(logits):\n    return np.array({recorded!r})")
    path = write_notebook(nb, tmp_path / "copion.ipynb")

    def softmax_status(seed: int) -> Status:
        ctx = GradeContext(backprop, prepare(backprop.checks, seed), sandbox_mode)
        result = grade_submission(ctx, path, "copion")
        return next(c.status for c in result.checks if c.check == "softmax")

    assert softmax_status(1) is Status.PASS  # the batch it was copied from
    assert softmax_status(2) is Status.FAIL  # any other batch


def test_monkeypatching_checks_and_builtins_changes_nothing(ctx, tmp_path):
    nb = code_notebook("""
        import builtins, numpy as np, numpy.testing
        np.allclose = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
        numpy.testing.assert_array_almost_equal = lambda *a, **k: None
        builtins.abs = lambda x: 0
        builtins.isinstance = lambda *a: True
        class Liar(np.ndarray):
            def __eq__(self, other): return True
            def __array__(self, *a, **k): return np.zeros(3)
        def softmax(logits):
            return np.zeros_like(logits).view(Liar)
        def relative_error(a, b):
            return float('nan')
    """)
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "t.ipynb"), "t")
    assert result.score == 0
    assert statuses(result, "q3") <= {"fail", "missing"}
    softmax = next(c for c in result.checks if c.check == "softmax")
    assert softmax.status is Status.FAIL and "no coincide" in softmax.message


def test_correct_code_that_prints_and_warns_gets_full_marks(backprop, ctx, tmp_path):
    nb = notebook_from_solution(backprop, {
        "    ### BEGIN SOLUTION\n    shifted": "    ### BEGIN SOLUTION\n    import warnings, sys\n"
        "    warnings.warn('cuidado', UserWarning)\n    print('softmax!', file=sys.stderr)\n    shifted",
    })
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "ruidoso.ipynb"), "ruidoso")
    assert result.score == backprop.max_score, [c for c in result.checks if not c.passed]


def test_a_hang_costs_only_what_depends_on_it(backprop, ctx, tmp_path):
    nb = code_notebook(
        "import numpy as np\ndef relu_forward(x):\n    return np.maximum(x, 0)",
        "while True:\n    pass",
        "def softmax(logits):\n    e = np.exp(logits - logits.max(axis=1, keepdims=True))\n    return e / e.sum(axis=1, keepdims=True)",
    )
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "h.ipynb"), "h")
    assert [c.status for c in result.cells] == ["ok", "timeout", "ok"]
    assert next(c for c in result.checks if c.check == "relu_forward").status is Status.PASS
    assert next(c for c in result.checks if c.check == "softmax").status is Status.PASS
    assert result.duration_s < backprop.limits.submission_cap_s


def test_a_hanging_function_costs_its_checks_only(ctx, tmp_path):
    nb = code_notebook(
        "import numpy as np\ndef relu_forward(x):\n    while True:\n        pass",
        "def relu_backward(dout, x):\n    return dout * (x > 0)",
    )
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "f.ipynb"), "f")
    assert next(c for c in result.checks if c.check == "relu_forward").status is Status.TIMEOUT
    assert next(c for c in result.checks if c.check == "relu_backward").status is Status.PASS


def test_exit_in_a_function_is_a_crash_for_that_check_only(ctx, tmp_path):
    nb = code_notebook(
        "import numpy as np, os\ndef relu_forward(x):\n    os._exit(0)",
        "def relu_backward(dout, x):\n    return dout * (x > 0)",
        "import sys\nsys.exit(0)",
    )
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "e.ipynb"), "e")
    assert result.cells[2].status == "error" and "SystemExit" in result.cells[2].message
    assert next(c for c in result.checks if c.check == "relu_forward").status is Status.CRASH
    assert next(c for c in result.checks if c.check == "relu_backward").status is Status.PASS


def test_torch_in_the_numpy_assignment_zeroes_the_question(ctx, tmp_path):
    nb = code_notebook(
        "import numpy as np\nimport torch as T",
        "def softmax(logits):\n    return T.softmax(T.tensor(logits), dim=1).numpy()",
        "def relu_forward(x):\n    return np.maximum(x, 0)",
    )
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "t.ipynb"), "t")
    assert statuses(result, "q3") == {"forbidden"}
    assert "torch" in next(c for c in result.checks if c.question == "q3").message
    assert next(c for c in result.checks if c.check == "relu_forward").status is Status.PASS


def test_hidden_import_of_a_forbidden_module_is_caught(ctx, tmp_path):
    nb = code_notebook("import importlib\ndef relu_forward(x):\n    t = importlib.import_module('torch')\n    return x")
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "t.ipynb"), "t")
    assert statuses(result, "q1") == {"forbidden"}


def test_root_cause_points_at_the_broken_helper(backprop, ctx, tmp_path):
    nb = notebook_from_solution(backprop, {"db = dout.sum(axis=0)": "db = dout.mean(axis=0)"})
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "r.ipynb"), "r")
    linear = next(c for c in result.checks if c.check == "linear_backward")
    assert linear.status is Status.FAIL and "sumar" in linear.hint
    mlp = next(c for c in result.checks if c.check == "mlp_backward")
    assert mlp.status is Status.FAIL
    assert "`linear_backward` (q2)" in mlp.hint


def test_relu_kink_bug_gets_its_hint(backprop, ctx, tmp_path):
    nb = notebook_from_solution(backprop, {"return dout * (x > 0)": "return dout * (x >= 0)"})
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "k.ipynb"), "k")
    relu = next(c for c in result.checks if c.check == "relu_backward")
    assert relu.status is Status.FAIL and "x > 0" in relu.hint
    assert result.question_scores()["q5"] == (20, 20)  # random floats never hit the kink in the MLP


def test_skip_grading_cells_are_not_run(ctx, tmp_path):
    nb = code_notebook("import numpy as np\ndef relu_forward(x):\n    return np.maximum(x, 0)",
                       "import time\ntime.sleep(60)", tags={1: ["skip-grading"]})
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "s.ipynb"), "s")
    assert [c.index for c in result.cells] == [0]
    assert next(c for c in result.checks if c.check == "relu_forward").status is Status.PASS


def test_messages_in_english(backprop, sandbox_mode, tmp_path):
    ctx = GradeContext(backprop, prepare(backprop.checks, 5), sandbox_mode, lang="en")
    nb = code_notebook("import numpy as np\ndef softmax(logits):\n    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)")
    result = grade_submission(ctx, write_notebook(nb, tmp_path / "u.ipynb"), "u")
    large = next(c for c in result.checks if c.check == "softmax_large_logits")
    assert large.status is Status.FAIL
    assert "subtract each row's max" in large.hint


# -- batches -----------------------------------------------------------------

def make_class(tmp_path: Path, backprop) -> Path:
    """A small class in mixed layouts, with broken files."""
    subs = tmp_path / "entregas"
    write_notebook(notebook_from_solution(backprop), subs / "ana" / "01_backprop.ipynb")
    write_notebook(notebook_from_solution(backprop, {"db = dout.sum(axis=0)": "db = dout.mean(axis=0)"}),
                   subs / "bruno" / "01_backprop" / "tarea.ipynb")  # nbgrader layout
    write_notebook(nbformat.read(ROOT / "assignments/01_backprop/01_backprop.ipynb", as_version=4),
                   subs / "Copia de carla.ipynb")  # flat, Colab name
    (subs / "dario.ipynb").write_bytes(b"\x00\x01junk")
    (subs / "eva").mkdir()
    (subs / "eva" / "notas.txt").write_text("olvidé el cuaderno")
    return subs


def read_csv(path: Path) -> dict[str, dict]:
    with path.open(encoding="utf-8") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def test_batch_grades_everyone_and_resumes_identically(backprop, sandbox_mode, tmp_path):
    subs, out = make_class(tmp_path, backprop), tmp_path / "out"
    first = grade_batch(backprop, subs, out, BatchOptions(jobs=2))
    rows = read_csv(out / "grades.csv")
    assert set(rows) == {"ana", "bruno", "carla", "dario", "eva"}
    assert float(rows["ana"]["score"]) == backprop.max_score
    assert 0 < float(rows["bruno"]["score"]) < backprop.max_score
    assert float(rows["carla"]["score"]) == 0
    assert rows["dario"]["status"] == "invalid" and rows["eva"]["status"] == "invalid"
    assert {r["batch_seed"] for r in rows.values()} == {str(first.info.seed)}
    for student in rows:
        assert (out / "feedback" / "01_backprop" / f"{student}.html").is_file()

    again = grade_batch(backprop, subs, out, BatchOptions(jobs=1))
    assert again.info.seed == first.info.seed and not again.graded  # resumed: nothing to do
    forced = grade_batch(backprop, subs, out, BatchOptions(jobs=1, force=True))
    assert {r.student: r.score for r in forced.graded} == {r.student: r.score for r in first.graded}
    db = sqlite3.connect(out / "gradebook.sqlite")
    assert db.execute("select count(*) from submissions").fetchone()[0] == 5  # updated in place


def test_regrade_one_student_and_reproduce_with_seed(backprop, sandbox_mode, tmp_path):
    subs, out = make_class(tmp_path, backprop), tmp_path / "out"
    first = grade_batch(backprop, subs, out, BatchOptions(jobs=2))
    one = grade_batch(backprop, subs, out, BatchOptions(student="bruno"))
    assert [r.student for r in one.graded] == ["bruno"]
    assert one.graded[0].score == next(r for r in first.graded if r.student == "bruno").score
    other = tmp_path / "other"
    again = grade_batch(backprop, subs, other, BatchOptions(seed=first.info.seed, jobs=1))
    assert {r.student: r.score for r in again.graded} == {r.student: r.score for r in first.graded}


def test_second_grader_on_the_same_output_is_refused(tmp_path):
    with output_lock(tmp_path):
        with pytest.raises(BatchLocked):
            with output_lock(tmp_path):
                pass


def test_cli_grade_exit_codes(backprop, sandbox_mode, tmp_path):
    subs = make_class(tmp_path, backprop)
    runner = CliRunner()
    ok = runner.invoke(app, ["grade", "01_backprop", str(subs), "--out", str(tmp_path / "o"), "--quiet",
                             "--course", str(ROOT), "--lang", "en"])
    assert ok.exit_code == 0, ok.output
    data = json.loads((tmp_path / "o" / "grades.json").read_text())
    assert len(data["results"] if "results" in data else data["submissions"]) == 5
    bad = runner.invoke(app, ["grade", "99_nada", str(subs), "--out", str(tmp_path / "o2"), "--course", str(ROOT)])
    assert bad.exit_code == 2 and "99_nada" in bad.output
    missing = runner.invoke(app, ["grade", "01_backprop", str(tmp_path / "no"), "--out", str(tmp_path / "o3"),
                                  "--course", str(ROOT)])
    assert missing.exit_code == 2
    wrong_device = runner.invoke(app, ["grade", "01_backprop", str(subs), "--out", str(tmp_path / "o4"),
                                       "--device", "tpu", "--course", str(ROOT)])
    assert wrong_device.exit_code == 2


def test_invalid_result_is_recorded_with_a_reason(backprop, ctx, tmp_path):
    path = tmp_path / "x.ipynb"
    path.write_text('{"cells": [')
    result = grade_submission(ctx, path, "x")
    assert result.status is SubmissionStatus.INVALID and "JSON" in result.message
    assert result.score == 0 and all(c.status is Status.NOT_RUN for c in result.checks)



def test_notebook_analysis_parses_safely_from_many_threads(monkeypatch):
    """Batch slots analyse notebooks in threads; a spurious SystemError from CPython's parser is retried."""
    import ast
    import threading

    from autograder.notebook import analysis

    calls = {"n": 0}
    real_parse = ast.parse

    def flaky(source, *args, **kwargs):  # the first parse trips over CPython 3.11's depth bookkeeping
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=24, after=23)")
        return real_parse(source, *args, **kwargs)

    monkeypatch.setattr(analysis.ast, "parse", flaky)
    source = "def f(x):\n    return [g(y) for y in x if y]\n"
    trees, errors = [], []

    def work():
        try:
            trees.append(analysis.parse(source))
        except Exception as exc:  # noqa: BLE001 - any escape is the failure under test
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(trees) == 8
    assert all(isinstance(t.body[0], ast.FunctionDef) for t in trees)
