"""Release (solution -> stub + public fixtures), the student bundle, and the self-check."""

from __future__ import annotations

import json

import nbformat
import pytest
from typer.testing import CliRunner

from autograder.cli import app
from autograder.fixtures import PUBLIC_SEED, PublicAssignment, dumps
from autograder.release import ReleaseError, make_stub, public_fixtures, strip_solutions
from autograder.selfcheck import check_in_namespace, run_public_checks
from conftest import ROOT, notebook_from_solution, write_notebook


def test_strip_solutions_keeps_indentation_and_code_around():
    source = "def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return x * 2\n    ### END SOLUTION\n\ny = 1"
    assert strip_solutions(source) == (
        "def f(x):\n    \"\"\"doc\"\"\"\n    # TU CÓDIGO AQUÍ\n    raise NotImplementedError()\n\ny = 1"
    )


@pytest.mark.parametrize("broken", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_malformed_markers_are_reported(broken):
    with pytest.raises(ReleaseError):
        strip_solutions(broken, where="cuaderno")


def test_committed_stub_and_fixtures_are_in_sync_with_the_solution(course):
    """Run `autograder release` after editing a solution or its public tests."""
    for aid in course.assignment_ids():
        spec = course.spec(aid)
        committed = nbformat.read(ROOT / "assignments" / aid / spec.stub_name, as_version=4)
        assert nbformat.writes(make_stub(spec)) == nbformat.writes(committed), f"{aid}: stub out of date"
        fixtures = (ROOT / "assignments" / aid / "public_tests.json").read_text(encoding="utf-8")
        assert fixtures == dumps(public_fixtures(spec)), f"{aid}: public fixtures out of date"


def test_stub_has_no_solution_code_and_knows_its_assignment(backprop):
    stub = nbformat.read(ROOT / "assignments/01_backprop/01_backprop.ipynb", as_version=4)
    text = "\n".join(c.source for c in stub.cells)
    assert "BEGIN SOLUTION" not in text and "TU CÓDIGO AQUÍ" in text
    solution = nbformat.read(backprop.solution_notebook, as_version=4)
    for line in ("shifted = logits - logits.max(axis=1, keepdims=True)", "db = dout.sum(axis=0)"):
        assert any(line in c.source for c in solution.cells)
        assert line not in text
    assert stub.metadata["autograder"] == {"assignment": "01_backprop", "version": backprop.version}
    assert all(not c.get("outputs") for c in stub.cells if c.cell_type == "code")


def test_public_fixtures_hold_only_public_checks(backprop):
    doc = json.loads((ROOT / "assignments/01_backprop/public_tests.json").read_text())
    public = {(c.question, c.name) for c in backprop.checks if c.public}
    assert {(c["question"], c["name"]) for c in doc["checks"]} == public
    hidden_only = {c.name for c in backprop.checks if not c.public}
    assert hidden_only and not hidden_only & {c["name"] for c in doc["checks"]}


def solved_namespace(spec) -> dict:
    namespace: dict = {"__name__": "__main__"}
    nb = nbformat.read(spec.solution_notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "skip-grading" not in cell.metadata.get("tags", []):
            code = "\n".join(line for line in cell.source.splitlines() if "check" not in line)
            exec(compile(code, "<celda>", "exec"), namespace)
    return namespace


def test_in_notebook_check_passes_on_the_solution_and_explains_a_bug(backprop, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    namespace = solved_namespace(backprop)
    namespace["ASSIGNMENT_ID"] = "01_backprop"
    assert check_in_namespace(namespace, "q3") is True
    out = capsys.readouterr().out
    assert "✔" in out and "✘" not in out and "q3" in out

    namespace["softmax_cross_entropy"] = lambda logits, y: (0.0, logits)
    assert check_in_namespace(namespace, "q3") is False
    out = capsys.readouterr().out
    assert "✘ q3 · softmax_cross_entropy" in out and "Elementos distintos" in out


def test_self_check_report_covers_points_and_speaks_english(backprop):
    public = PublicAssignment.load(ROOT / "assignments/01_backprop/public_tests.json")
    report = run_public_checks(solved_namespace(backprop), public, None, "en")
    assert report.passed
    assert "of 100 points" in report.render()
    with pytest.raises(ValueError, match="q9"):
        run_public_checks({}, public, "q9", "es")


def test_check_command_on_the_stub_and_on_a_solved_copy(backprop, sandbox_mode, tmp_path):
    runner = CliRunner()
    stub = tmp_path / "01_backprop" / "01_backprop.ipynb"
    stub.parent.mkdir()
    stub.write_bytes((ROOT / "assignments/01_backprop/01_backprop.ipynb").read_bytes())
    (stub.parent / "public_tests.json").write_bytes((ROOT / "assignments/01_backprop/public_tests.json").read_bytes())
    failing = runner.invoke(app, ["check", str(stub)])
    assert failing.exit_code == 1 and "NotImplementedError" in failing.output

    solved = notebook_from_solution(backprop)
    solved.metadata["autograder"] = {"assignment": "01_backprop", "version": backprop.version}
    path = write_notebook(solved, tmp_path / "01_backprop" / "mio.ipynb")
    passing = runner.invoke(app, ["check", str(path), "--lang", "en"])
    assert passing.exit_code == 0, passing.output
    assert "Public tests passed: 11 / 11" in passing.output


def test_check_command_rejects_what_it_cannot_read(tmp_path):
    bad = tmp_path / "roto.ipynb"
    bad.write_text("no soy json")
    result = CliRunner().invoke(app, ["check", str(bad)])
    assert result.exit_code == 2 and "JSON" in result.output
    unknown = write_notebook(nbformat.v4.new_notebook(), tmp_path / "sin_tarea.ipynb")
    result = CliRunner().invoke(app, ["check", str(unknown)])
    assert result.exit_code == 2 and "metadata" in result.output


def test_fixture_roundtrip_gives_back_the_same_cases(backprop):
    from autograder.compare import compare
    from autograder.grade.cases import check_rng

    again = {p.check.name: p.case for p in PublicAssignment(json.loads(dumps(public_fixtures(backprop)))).prepared()}
    for check in backprop.checks:
        if check.public:
            original = check.build(check_rng(PUBLIC_SEED, check))
            assert compare(again[check.name].expected, original.expected, original.tolerance) == []
            assert again[check.name].tolerance == original.tolerance


@pytest.mark.parametrize("assignment", [a for a in sorted(p.parent.name for p in (ROOT / "solutions").glob("*/spec.toml"))])
def test_self_check_in_the_students_process_passes_every_public_test_of_the_solution(course, assignment, monkeypatch):
    """``check_all()`` as it runs in Colab: the solution's functions in this process (no sandbox), the released
    fixtures (torch ones too), the grader's own comparison."""
    monkeypatch.chdir(ROOT)
    spec = course.spec(assignment)
    public = PublicAssignment.load(ROOT / "assignments" / assignment / "public_tests.json")
    report = run_public_checks(solved_namespace(spec), public, None, "es")
    assert report.passed and report.results, report.render()


def test_self_check_table_per_question_in_spanish_and_english(backprop):
    """One row per question: passed / public tests, and the points those tests cover of the question's; then each
    check with its status, the mismatch report and the hint; then what the public tests cover of the total."""
    public = PublicAssignment.load(ROOT / "assignments/01_backprop/public_tests.json")
    namespace = solved_namespace(backprop)
    exec("def linear_backward(dout, cache):\n    x, W, b = cache\n    return dout @ W.T, x.T @ dout, dout.mean(axis=0)\n",
         namespace)
    report = run_public_checks(namespace, public, None, "es")
    text = report.render()
    rows = {r.id: r for r in report.rows()}
    assert (rows["q2"].passed, rows["q2"].public, rows["q2"].points) == (1, 2, 15) and rows["q2"].mark == "✘"
    assert rows["q1"].mark == "✔" and 0 < rows["q1"].covered < rows["q1"].points
    assert "Pregunta" in text and "Pruebas públicas superadas" in text and "Puntos que cubren" in text
    assert "✘ q2 Capa lineal" in text and f"1 / 2  {rows['q2'].covered:g} de 15" in text
    assert "✘ q2 · linear_backward: incorrecto" in text and "db: no coincide con la referencia" in text
    assert "Elementos distintos" in text and "Pista: db debe *sumar* dout sobre el lote" in text
    assert "✔ q2 · linear_forward: correcto" in text
    passed = sum(r.passed for r in report.results)
    assert 0 < passed < 11 and f"Pruebas públicas superadas: {passed} / 11" in text
    assert "Las pruebas públicas cubren 53.58 de 100 puntos" in text
    assert "Probablemente la causa está en `linear_backward` (q2)" in text  # q5 fails because of q2: said so
    html = report._repr_html_()
    assert "<table" in html and "<th" in html and "Capa lineal" in html and "Pista: db debe" in html
    english = run_public_checks(namespace, public, "q2", "en").render()
    assert "Question" in english and "Public tests passed: 1 / 2" in english and "Points they cover" in english
    assert "q2 · linear_backward: failed" in english and "Hint: db must *sum* dout over the batch" in english
    assert "Mismatched elements" in english and "of 15 points" in english
    assert "Pista" not in english and "Pregunta" not in english


def test_every_notebook_says_what_to_hand_in_and_shows_progress_and_plots(course):
    """What a first-year student needs in every assignment's notebook: the install cell of the self-check, a
    check per question and check_all() at the end, hand-in instructions naming the one file to hand in, a
    progress bar for the long training cells (tqdm.auto, which renders in Colab, imported only where installed)
    and plots."""
    for aid in course.assignment_ids():
        spec = course.spec(aid)
        stub = nbformat.read(ROOT / "assignments" / aid / spec.stub_name, as_version=4)
        code = [c for c in stub.cells if c.cell_type == "code"]
        markdown = "\n".join(c.source for c in stub.cells if c.cell_type == "markdown")
        install = [c for c in code if "%pip install -q autograder_alumno-*.whl" in c.source]
        assert install and "skip-grading" in install[0].metadata.get("tags", []), aid
        checks = {c.source.strip() for c in code}
        assert {f'check("{q.id}")' for q in spec.questions} <= checks and "check_all()" in checks, aid
        hand_in = next((c.source for c in stub.cells if c.cell_type == "markdown" and c.source.startswith("## Entrega")),
                       "")
        assert f"`{spec.stub_name}`" in hand_in and "un único archivo" in hand_in, aid
        assert "Descargar .ipynb" in hand_in and "Copia de" in hand_in, aid  # Colab: how, and what the name may be
        tqdm_cells = [c for c in code if "tqdm" in c.source]
        assert any("tqdm.auto" in c.source for c in tqdm_cells), f"{aid}: no progress bar"
        for cell in tqdm_cells:  # tqdm is not a dependency: where it is missing the notebook still runs
            if "import tqdm" in cell.source or "from tqdm" in cell.source:
                assert "except ImportError" in cell.source, (aid, cell.get("id"))
        plots = [c for c in code if "plt." in c.source and "skip-grading" in c.metadata.get("tags", [])]
        assert plots, f"{aid}: no plot"
        assert "check(" in markdown or "check_all" in markdown, aid
