"""The storage and reporting layer: gradebook, CSV/JSON exports, feedback pages."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import text as sql

import autograder.store
from autograder.results import BatchInfo, CellOutcome, CheckResult, Status, SubmissionResult, SubmissionStatus
from autograder.store import (
    Gradebook,
    atomic_write_text,
    database_url,
    export_gradebook,
    feedback_path,
    format_number,
    render_feedback,
    safe_filename,
    write_feedback,
    write_grades_csv,
    write_grades_json,
)

REPO = Path(autograder.store.__file__).resolve().parents[2]
BIG_SEED = 2**64 + 12345  # wider than any SQL integer

MISMATCH = textwrap.dedent(
    """\
    linear_backward: dL/dW no coincide con la referencia.
    Mismatched elements: 12 / 12 (100.0%)
    Greatest absolute difference: 3.5 at index (0, 1) (up to 1e-09 allowed)
    Greatest relative difference: 0.75 at index (0, 1) (up to 1e-07 allowed)"""
)


def make_batch(assignment: str = "01_backprop", batch_id: str = "b-1", **changes: object) -> BatchInfo:
    fields: dict[str, object] = dict(
        batch_id=batch_id,
        assignment=assignment,
        assignment_version="1.2.0",
        grader_version="0.1.0",
        seed=BIG_SEED,
        device="cpu",
        lang="es",
        sandbox="bwrap+setpriv",
    )
    fields.update(changes)
    return BatchInfo(**fields)  # type: ignore[arg-type]


def make_result(student: str = "ana", assignment: str = "01_backprop", *, tag: str = "v1") -> SubmissionResult:
    return SubmissionResult(
        student=student,
        assignment=assignment,
        path=f"/subs/{student}/tarea.ipynb",
        notebook_sha256=f"sha-{student}-{tag}",
        status=SubmissionStatus.GRADED,
        checks=[
            CheckResult("q1", "relu_forward", Status.PASS, 2.0, 2.0, description="relu en valores aleatorios"),
            CheckResult(
                "q2",
                "linear_backward",
                Status.FAIL,
                0.0,
                3.0,
                message=MISMATCH,
                hint="¿Olvidaste dividir por N?",
                description="gradientes de la capa lineal",
                duration_s=0.25,
                tolerance="rtol=1e-07, atol=1e-09",
            ),
            CheckResult("q2", "linear_forward", Status.PASS, 1.5, 1.5, message=f"tag {tag}", duration_s=0.125),
            CheckResult("q3", "softmax", Status.TIMEOUT, 0.0, 1.0, message="pasó de 10 s"),
        ],
        cells=[
            CellOutcome(0, "ok", duration_s=0.5, defined=["relu", "relu_forward"]),
            CellOutcome(2, "error", message='Traceback...\nValueError: shapes (3,) and (4,) "no"', duration_s=0.1),
            CellOutcome(5, "timeout", message="la celda pasó de 20 s"),
        ],
        message="",
        duration_s=12.75,
        picked_from=[f"/subs/{student}/tarea.ipynb", f"/subs/{student}/Copia de tarea.ipynb"],
    )


@pytest.fixture
def gradebook(tmp_path: Path):
    with Gradebook(tmp_path / "out" / "gradebook.sqlite") as gb:
        yield gb


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# -- gradebook ----------------------------------------------------------------------


def test_roundtrip_gives_back_what_was_saved(gradebook: Gradebook) -> None:
    batch = make_batch()
    weird = make_result("José Ñúñez <b>", tag="ü\n\t\"'")
    weird.message = "línea 1\nlínea 2 \x00 nul"
    weird.checks[0].points = 1 / 3
    results = [make_result("zoe"), weird, make_result("ana")]
    for result in results:
        gradebook.save(result, batch)
    loaded = gradebook.results()
    assert loaded == sorted(results, key=lambda r: r.student)
    by_student = {r.student: r for r in loaded}
    assert by_student["José Ñúñez <b>"].checks[0].points == 1 / 3  # floats exact
    assert by_student["José Ñúñez <b>"].message == "línea 1\nlínea 2 \x00 nul"
    assert loaded[1].cells[0].defined == ["relu", "relu_forward"]
    assert isinstance(loaded[0].status, SubmissionStatus) and isinstance(loaded[0].checks[0].status, Status)


def test_results_ordered_and_filtered_by_assignment(gradebook: Gradebook) -> None:
    b1, b2 = make_batch("02_ffnet", "b-2"), make_batch("01_backprop", "b-1")
    gradebook.save(make_result("bea", "02_ffnet"), b1)
    gradebook.save(make_result("zoe", "01_backprop"), b2)
    gradebook.save(make_result("ana", "02_ffnet"), b1)
    assert [(r.assignment, r.student) for r in gradebook.results()] == [
        ("01_backprop", "zoe"),
        ("02_ffnet", "ana"),
        ("02_ffnet", "bea"),
    ]
    assert [r.student for r in gradebook.results("02_ffnet")] == ["ana", "bea"]
    assert gradebook.results("03_cnn") == []
    assert gradebook.students("02_ffnet") == ["ana", "bea"]


def test_regrade_replaces_in_place(tmp_path: Path, gradebook: Gradebook) -> None:
    db = tmp_path / "out" / "gradebook.sqlite"
    batch = make_batch()
    gradebook.save(make_result("ana"), batch)
    gradebook.save(make_result("bea"), batch)
    again = make_result("ana", tag="v2")
    again.checks = again.checks[:2]
    again.cells = again.cells[:1]
    gradebook.save(again, batch)
    assert [r.student for r in gradebook.results()] == ["ana", "bea"]
    assert gradebook.results()[0] == again
    assert count(db, "submissions") == 2
    assert count(db, "check_results") == 2 + 4  # no leftovers of ana's first grade
    assert count(db, "cell_outcomes") == 1 + 3


def test_delete_cascades_to_checks_and_cells(tmp_path: Path, gradebook: Gradebook) -> None:
    gradebook.save(make_result("ana"), make_batch())
    with gradebook._engine.begin() as con:  # foreign keys are on for the gradebook's connections
        assert con.execute(sql("PRAGMA foreign_keys")).scalar() == 1
        assert con.execute(sql("PRAGMA journal_mode")).scalar() == "wal"
        con.execute(sql("DELETE FROM submissions"))
    db = tmp_path / "out" / "gradebook.sqlite"
    assert count(db, "check_results") == count(db, "cell_outcomes") == 0


def test_batches_recorded_updated_and_latest_wins(gradebook: Gradebook) -> None:
    assert gradebook.batch_for("01_backprop") is None
    first = make_batch(batch_id="b-1")
    gradebook.record_batch(first)
    assert gradebook.batch_for("01_backprop") == first
    assert gradebook.batch_for("01_backprop").seed == BIG_SEED  # type: ignore[union-attr]
    moved = make_batch(batch_id="b-1", device="cuda")
    gradebook.record_batch(moved)  # same batch: updated, not duplicated
    assert gradebook.batch_for("01_backprop") == moved
    second = make_batch(batch_id="b-2", seed=7)
    gradebook.record_batch(second)
    gradebook.record_batch(make_batch("02_ffnet", batch_id="b-3"))
    assert gradebook.batch_for("01_backprop") == second
    assert set(gradebook.batch_infos()) == {"01_backprop", "02_ffnet"}
    assert gradebook.batch_infos()["01_backprop"] == second


def test_save_records_an_unknown_batch_and_rejects_a_foreign_one(gradebook: Gradebook) -> None:
    batch = make_batch(batch_id="fresh")
    gradebook.save(make_result("ana"), batch)
    assert gradebook.batch_for("01_backprop") == batch
    with pytest.raises(ValueError, match="02_ffnet"):
        gradebook.save(make_result("ana", "02_ffnet"), batch)


def test_graded_hashes_for_resume(gradebook: Gradebook) -> None:
    old, new = make_batch(batch_id="b-1", assignment_version="1.0"), make_batch(batch_id="b-2")
    gradebook.save(make_result("ana"), old)
    gradebook.save(make_result("bea"), new)
    broken = make_result("carla")
    broken.status = SubmissionStatus.GRADER_ERROR
    gradebook.save(broken, new)
    gradebook.save(make_result("dan", "02_ffnet"), make_batch("02_ffnet", "b-3"))
    assert gradebook.graded_hashes("01_backprop") == {
        "ana": ("sha-ana-v1", "1.0", "0.1.0"),
        "bea": ("sha-bea-v1", "1.2.0", "0.1.0"),
    }  # carla's grader error is not final: she is graded again
    assert gradebook.graded_hashes("05_recsys") == {}


def test_records_carry_their_own_batch_and_time(gradebook: Gradebook) -> None:
    b1, b2 = make_batch(batch_id="b-1", seed=1), make_batch(batch_id="b-2", seed=2)
    gradebook.save(make_result("ana"), b1)
    gradebook.save(make_result("bea"), b2)
    records = gradebook.records()
    assert [(r.result.student, r.batch.seed) for r in records] == [("ana", 1), ("bea", 2)]
    assert all(r.graded_at.tzinfo is UTC or r.graded_at.utcoffset().total_seconds() == 0 for r in records)


def test_unencodable_text_is_stored_not_fatal(gradebook: Gradebook) -> None:
    result = make_result("ana")
    result.checks[1].message = "salida: \udcff\udcfe"  # surrogateescape-decoded bytes
    gradebook.save(result, make_batch())
    assert gradebook.results()[0].checks[1].message == "salida: \\udcff\\udcfe"


def test_url_or_path(tmp_path: Path) -> None:
    assert database_url(tmp_path / "g.sqlite").get_backend_name() == "sqlite"
    assert database_url("postgresql+psycopg://u:p@host/db").get_backend_name() == "postgresql"
    url = f"sqlite:///{tmp_path / 'by-url.sqlite'}"
    with Gradebook(url) as gb:
        gb.save(make_result(), make_batch())
    with Gradebook(tmp_path / "by-url.sqlite") as gb:
        assert [r.student for r in gb.results()] == ["ana"]


# -- surviving SIGKILL ---------------------------------------------------------------

WRITER = textwrap.dedent(
    """\
    import sys, time
    from sqlalchemy import event
    from sqlalchemy.orm import Session
    from autograder.results import BatchInfo, CellOutcome, CheckResult, Status, SubmissionResult, SubmissionStatus
    from autograder.store import Gradebook

    def result(student, version):
        n = 3 + version % 7  # a different number of checks each time
        return SubmissionResult(
            student=student, assignment="a", path="p", notebook_sha256=f"{version}",
            status=SubmissionStatus.GRADED, message=f"v{version} n={n}",
            checks=[CheckResult(f"q{k}", f"c{k}", Status.PASS, 1.0, 1.0, message=f"v{version}" + "x" * 2000)
                    for k in range(n)],
            cells=[CellOutcome(k, "ok", message=f"v{version}") for k in range(n + 1)],
        )

    gb = Gradebook(sys.argv[1])
    batch = BatchInfo("b", "a", "1", "0.1", 2**64 + 1, "cpu", "es", "none")
    gb.record_batch(batch)
    if sys.argv[2] == "stress":  # save as fast as possible, regrading the same 25 students
        version = 0
        while True:
            gb.save(result(f"s{version % 25:02d}", version), batch)
            print(version, flush=True)
            version += 1
    else:  # hang inside the transaction of a regrade, after its rows were written
        for version in range(10):
            gb.save(result(f"s{version:02d}", version), batch)
        def hang(session, context):
            print("flushed", flush=True)
            time.sleep(60)
        event.listen(Session, "after_flush", hang)
        gb.save(result("s03", 100), batch)
    """
)


def _run_and_kill(tmp_path: Path, mode: str, until: str) -> Path:
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    db = tmp_path / "gradebook.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == until:
                break
        else:
            pytest.fail(f"the writer stopped early: {proc.stderr.read() if proc.stderr else ''}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    return db


def _check_integrity(db: Path) -> list[SubmissionResult]:
    with Gradebook(db) as gb:  # reopening recovers the write-ahead log
        results = gb.results()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        total_checks = con.execute("SELECT count(*) FROM check_results").fetchone()[0]
        total_cells = con.execute("SELECT count(*) FROM cell_outcomes").fetchone()[0]
    for r in results:  # every submission is complete, and all of one version
        version, n = r.message.removeprefix("v").split(" n=")
        assert len(r.checks) == int(n) and len(r.cells) == int(n) + 1, r.student
        assert all(c.message.startswith(f"v{version}x") for c in r.checks), r.student
        assert all(c.message == f"v{version}" for c in r.cells), r.student
    assert total_checks == sum(len(r.checks) for r in results)  # no orphans
    assert total_cells == sum(len(r.cells) for r in results)
    return results


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_batch_leaves_complete_rows_only(tmp_path: Path) -> None:
    db = _run_and_kill(tmp_path, "stress", until="80")
    results = _check_integrity(db)
    assert len(results) == 25


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_inside_a_regrade_keeps_the_previous_grade(tmp_path: Path) -> None:
    db = _run_and_kill(tmp_path, "hang", until="flushed")
    results = _check_integrity(db)
    assert [r.student for r in results] == [f"s{k:02d}" for k in range(10)]
    assert results[3].message == "v3 n=6"  # the interrupted regrade (v100) left no trace


# -- exports ------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_grades_csv_columns_and_values(tmp_path: Path) -> None:
    other = make_result("bea", "02_ffnet")
    other.checks = [CheckResult("q1", "a", Status.PASS, 1, 1), CheckResult("q9", "b", Status.FAIL, 0, 2)]
    results = [other, make_result("ana"), make_result("=cmd|' /C calc'!A0")]
    batches = {"01_backprop": make_batch(), "02_ffnet": make_batch("02_ffnet", "b-2", seed=3, device="cuda")}
    path = write_grades_csv(tmp_path / "grades.csv", results, batches)
    with path.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert header == [
        "student",
        "assignment",
        "score",
        "max_score",
        "percent",
        "status",
        "q1",
        "q2",
        "q3",
        "q9",
        "batch_id",
        "batch_seed",
        "assignment_version",
        "grader_version",
        "device",
        "sandbox",
        "graded_at",
    ]
    rows = read_csv(path)
    assert [(r["assignment"], r["student"]) for r in rows] == [
        ("01_backprop", "'=cmd|' /C calc'!A0"),  # a spreadsheet will not run it
        ("01_backprop", "ana"),
        ("02_ffnet", "bea"),
    ]
    ana = rows[1]
    assert (ana["score"], ana["max_score"], ana["percent"], ana["status"]) == ("3.5", "7.5", "46.67", "graded")
    assert (ana["q1"], ana["q2"], ana["q3"], ana["q9"]) == ("2", "1.5", "0", "")
    assert (ana["batch_seed"], ana["assignment_version"], ana["device"]) == (str(BIG_SEED), "1.2.0", "cpu")
    bea = rows[2]
    assert (bea["q1"], bea["q2"], bea["q9"], bea["batch_seed"], bea["device"]) == ("1", "", "0", "3", "cuda")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grades.csv"]  # no temporary file left


def test_grades_csv_per_submission_batches_and_times(tmp_path: Path, gradebook: Gradebook) -> None:
    gradebook.save(make_result("ana"), make_batch(batch_id="b-1", seed=1))
    gradebook.save(make_result("bea"), make_batch(batch_id="b-2", seed=2))
    empty = make_result("carla")
    empty.status, empty.checks, empty.message = SubmissionStatus.INVALID, [], "no es un cuaderno"
    gradebook.save(empty, make_batch(batch_id="b-2", seed=2))
    csv_path, json_path = export_gradebook(gradebook, tmp_path / "out")
    rows = read_csv(csv_path)
    assert [(r["student"], r["batch_id"], r["batch_seed"]) for r in rows] == [
        ("ana", "b-1", "1"),
        ("bea", "b-2", "2"),
        ("carla", "b-2", "2"),
    ]
    assert rows[2]["status"] == "invalid" and rows[2]["percent"] == "" and rows[2]["score"] == "0"
    assert all(r["graded_at"].endswith("+00:00") for r in rows)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert [s["batch_id"] for s in data["submissions"]] == ["b-1", "b-2", "b-2"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if "sqlite" not in p.name) == [
        "grades.csv",
        "grades.json",
    ]  # no temporary file left


def test_question_named_like_a_column_is_prefixed(tmp_path: Path) -> None:
    result = make_result()
    result.checks = [CheckResult("status", "c", Status.PASS, 1, 1)]
    path = write_grades_csv(tmp_path / "grades.csv", [result], {"01_backprop": make_batch()})
    row = read_csv(path)[0]
    assert row["status"] == "graded" and row["q:status"] == "1"


def test_grades_json_has_every_check(tmp_path: Path) -> None:
    path = write_grades_json(tmp_path / "grades.json", [make_result("ana")], {"01_backprop": make_batch()})
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "autograder-grades/1"
    assert data["batches"]["b-1"]["seed"] == str(BIG_SEED)  # exact, whatever reads it
    sub = data["submissions"][0]
    assert (sub["student"], sub["score"], sub["max_score"], sub["percent"]) == ("ana", 3.5, 7.5, 46.67)
    assert sub["questions"]["q2"] == {"points": 1.5, "max_points": 4.5}
    check = sub["checks"][1]
    assert (check["check"], check["status"], check["message"], check["hint"]) == (
        "linear_backward",
        "fail",
        MISMATCH,
        "¿Olvidaste dividir por N?",
    )
    assert check["tolerance"] == "rtol=1e-07, atol=1e-09"
    assert sub["cells"][1]["status"] == "error"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grades.json"]


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "grades.csv"
    atomic_write_text(target, "old\n")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grades.csv"]
    atomic_write_text(tmp_path / "deep" / "er" / "f.txt", "a\r\nb")  # parents made, text kept as is
    assert (tmp_path / "deep" / "er" / "f.txt").read_bytes() == b"a\r\nb"


def test_format_number() -> None:
    assert [format_number(x) for x in (87.5, 100.0, 0.0, -0.0, 1 / 3, 2e6)] == [
        "87.5",
        "100",
        "0",
        "0",
        "0.333333",
        "2000000",
    ]
    assert format_number(2 / 3, 2) == "0.67" and format_number(float("nan")) == ""


# -- feedback -----------------------------------------------------------------------

TITLES = {"q1": {"es": "Activación ReLU", "en": "ReLU activation"}, "q2": "Capa lineal"}


def test_feedback_escapes_everything_a_student_controls() -> None:
    result = make_result('<img src=x onerror="alert(1)">')
    result.checks[1].message = "<script>alert('x')</script>\n& \"quotes\""
    result.checks[1].hint = "<b>negrita</b>"
    result.checks[1].description = "<i>desc</i>"
    result.cells[1].message = "</pre><script>steal()</script>"
    result.message = "<script>m</script>"
    page = render_feedback(result, make_batch(), {"q2": "<u>título</u>"})
    assert "<script" not in page and "<img" not in page and "<b>negrita" not in page and "<u>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&amp; &#34;quotes&#34;" in page
    assert "&lt;/pre&gt;&lt;script&gt;steal()" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_feedback_in_spanish() -> None:
    result = make_result("José")
    result.checks.append(CheckResult("q4", "mlp", Status.CRASH, 0, 92.5, description="entrenamiento"))
    page = render_feedback(result, make_batch(), TITLES)
    assert '<html lang="es">' in page
    for words in (
        "Informe de corrección",
        "José",
        "3.5 / 100",
        "calificada",
        "Activación ReLU",
        "Capa lineal",
        "q3",  # no title: its id
        "✔",
        "✘",
        "correcto",
        "incorrecto",
        "tiempo agotado",
        "el proceso terminó",
        "gradientes de la capa lineal",
        "Pista:",
        "¿Olvidaste dividir por N?",
        "Mismatched elements: 12 / 12 (100.0%)\nGreatest absolute difference",  # the report, verbatim
        "Ejecución del cuaderno",
        str(BIG_SEED),
        "1.2.0",
        "0.1.0",
        "bwrap+setpriv",
        "12.8 s",
        "rtol=1e-07, atol=1e-09",
        "Se corrigió <code>tarea.ipynb</code>, elegido entre: ",
        "Copia de tarea.ipynb",
    ):
        assert words in page, words
    assert "<pre>" + MISMATCH.split("\n")[0] in page
    # failed cells listed (numbered from 1), the cell that ran fine is not
    assert "<td>3</td>" in page and "<td>6</td>" in page and "<td>1</td>" not in page
    assert "ValueError: shapes (3,) and (4,) &#34;no&#34;" in page


def test_feedback_in_english() -> None:
    page = render_feedback(make_result(), make_batch(), TITLES, lang="en")
    assert '<html lang="en">' in page
    for words in ("Grading report", "ReLU activation", "passed", "failed", "timed out", "Hint:", "Notebook execution"):
        assert words in page, words
    assert "Pista" not in page and "correcto" not in page


@pytest.mark.parametrize(
    ("status", "es", "en"),
    [
        (Status.MISSING, "no definida", "not defined"),
        (Status.FORBIDDEN, "no permitido", "forbidden"),
        (Status.NOT_RUN, "no ejecutada", "not run"),
        (Status.ERROR, "error", "error"),
    ],
)
def test_feedback_status_names(status: Status, es: str, en: str) -> None:
    result = make_result()
    result.checks = [CheckResult("q1", "c", status, 0, 1)]
    assert f">{es}</span>" in render_feedback(result, make_batch(), {}, "es")
    assert f">{en}</span>" in render_feedback(result, make_batch(), {}, "en")


def test_feedback_grader_error_and_clean_run() -> None:
    result = make_result()
    result.status = SubmissionStatus.GRADER_ERROR
    result.cells = [CellOutcome(0, "ok")]
    page = render_feedback(result, make_batch(), {})
    assert "no de tu código" in page and "Todas las celdas se ejecutaron sin errores." in page


def test_write_feedback_path(tmp_path: Path) -> None:
    path = write_feedback(tmp_path, make_result("María José"), make_batch(), TITLES)
    assert path == tmp_path / "feedback" / "01_backprop" / "María José.html"
    assert "María José" in path.read_text(encoding="utf-8")
    hostile = write_feedback(tmp_path, make_result("../../etc/passwd"), make_batch(), TITLES, "en")
    assert hostile.parent == tmp_path / "feedback" / "01_backprop"
    assert "Grading report" in hostile.read_text(encoding="utf-8")
    assert sorted(p.name for p in hostile.parent.iterdir()) == sorted(["María José.html", hostile.name])
    assert feedback_path(tmp_path, "../x", "a").parent.parent == tmp_path / "feedback"


def test_safe_filename() -> None:
    assert safe_filename("José Ñúñez-García") == "José Ñúñez-García"
    for name in ("../../etc/passwd", "..", ".", "a/b", "a\\b", "", "con", "x\x00y", "a" * 300):
        safe = safe_filename(name)
        assert "/" not in safe and "\\" not in safe and "\x00" not in safe, name
        assert not safe.startswith("."), name
        assert len(safe.encode()) < 200, name
    assert safe_filename("../../etc/passwd").startswith("_.._etc_passwd~")
    assert safe_filename("a/b") != safe_filename("a_b") == "a_b"
    assert safe_filename("Jose\u0301") == "José"  # macOS (NFD) names stay recognisable
