"""The red team: every attack of the catalogue, graded in one batch with the real sandbox.

One batch grades all the attacks plus two innocent bystanders (a correct
solution and a partial one) with short limits (3 s per cell, 20 s per
submission). Each attack must get exactly its expected outcome; the
bystanders exactly what they get when graded alone; every submission exactly
one row in the gradebook and in grades.csv; and the honeypots (the gradebook's
integrity, the other students' folders, the hidden tests) must be intact.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import socketserver
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from catalogue import ATTACKS, BY_NAME, Q4_CODE, Attack, Target, b64, notebook

from autograder.grade.batch import BatchOptions, BatchSummary, grade_batch
from autograder.grade.cases import prepare
from autograder.grade.submission import GradeContext, grade_submission
from autograder.results import SubmissionResult
from autograder.store import Gradebook
from conftest import ROOT

ASSIGNMENT = "01_backprop"
SECRET_ENV = "AUTOGRADER_REDTEAM_SECRET"
HIDDEN = [ROOT / "solutions" / ASSIGNMENT / "tests.py", ROOT / "reference_impl" / "backprop.py"]
# The innocent bystanders: a correct solution, and one whose mse_loss sums instead of averaging (q4 = 5).
FULL, PARTIAL = "inocente_completo", "inocente_parcial"
BYSTANDERS = {
    FULL: (lambda: notebook(), 100.0),
    PARTIAL: (lambda: notebook(replacements={"loss = np.mean(diff**2)\n    dpred = 2.0 * diff / pred.size":
                                             "loss = np.sum(diff**2)\n    dpred = 2.0 * diff"}), 95.0),
}


def short_limits(spec):
    """The real spec with short wall-time limits, so the red-team batch stays quick."""
    return dataclasses.replace(spec, limits=dataclasses.replace(
        spec.limits, cell_timeout_s=3, check_timeout_s=3, submission_cap_s=20))


def digest_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class _Handout(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(Q4_CODE.encode())


@contextmanager
def honeypot_servers(base: Path) -> Iterator[tuple[int, Path, str]]:
    """Servers on the grader's host that hand q4's code to whoever connects."""
    unix_path, abstract = base / "grader.sock", f"redteam-{uuid.uuid4().hex}"
    servers = [socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handout),
               socketserver.ThreadingUnixStreamServer(str(unix_path), _Handout),
               socketserver.ThreadingUnixStreamServer("\0" + abstract, _Handout)]
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield servers[0].server_address[1], unix_path, abstract
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        for t in threads:
            t.join()


@dataclass
class RedTeamBatch:
    target: Target
    spec: object
    summary: BatchSummary
    results: dict[str, SubmissionResult]  # from the gradebook
    csv_rows: list[dict[str, str]]
    subs_before: dict[str, str]
    hidden_before: dict[str, str]
    served: bool  # the honeypot servers worked for a client on the host


def _served(port: int) -> bool:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        return s.makefile("rb").read().decode() == Q4_CODE


@pytest.fixture(scope="module")
def redteam(backprop, sandbox_mode, tmp_path_factory) -> RedTeamBatch:
    base = tmp_path_factory.mktemp("redteam")
    subs, out = base / "entregas", base / "out"
    with ExitStack() as stack:
        port, unix_path, abstract = stack.enter_context(honeypot_servers(base))
        monkeypatch = stack.enter_context(pytest.MonkeyPatch.context())
        monkeypatch.setenv(SECRET_ENV, b64(Q4_CODE))
        target = Target(root=ROOT, subs=subs, out=out, victims=(FULL, PARTIAL), grader_pid=os.getpid(),
                        secret_env=SECRET_ENV, tcp_port=port, unix_path=unix_path,
                        unix_abstract=abstract)
        for attack in ATTACKS:
            path = subs / attack.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(attack.build(target))
        for student, (build, _) in BYSTANDERS.items():
            (subs / student).mkdir(parents=True)
            (subs / student / f"{ASSIGNMENT}.ipynb").write_bytes(build())
        subs_before = digest_tree(subs)
        hidden_before = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in HIDDEN}
        spec = short_limits(backprop)
        summary = grade_batch(spec, subs, out, BatchOptions(jobs=2))
        served = _served(port)
    with Gradebook(out / "gradebook.sqlite") as gradebook:
        stored = gradebook.results(ASSIGNMENT)
    results = {r.student: r for r in stored}
    assert len(results) == len(stored)
    with (out / "grades.csv").open(encoding="utf-8", newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    return RedTeamBatch(target, spec, summary, results, csv_rows, subs_before, hidden_before, served)


def outcome_problems(result: SubmissionResult, attack: Attack) -> list[str]:
    """Every way in which ``result`` differs from the attack's expected outcome."""
    exp, problems = attack.expected, []
    if result.status.value != exp.status:
        problems.append(f"status {result.status.value!r}, expected {exp.status!r}")
    if abs(result.score - exp.score) > 1e-6:
        problems.append(f"score {result.score}, expected {exp.score}")
    got = {q: points for q, (points, _) in result.question_scores().items()}
    for q, points in exp.question_points().items():
        if abs(got.get(q, -1) - points) > 1e-6:
            problems.append(f"{q}: {got.get(q)} points, expected {points:g}")
    checks = {c.check: c for c in result.checks}
    for name, status in exp.checks.items():
        if name not in checks or checks[name].status.value != status:
            problems.append(f"check {name}: {checks[name].status.value if name in checks else 'absent'}, "
                            f"expected {status}")
    if exp.all_checks is not None:
        odd = sorted(c.check for c in result.checks if c.status.value != exp.all_checks)
        if odd or not result.checks:
            problems.append(f"checks not {exp.all_checks}: {odd or 'no checks at all'}")
    for where, words in exp.words.items():
        text = result.message if where == "message" else (checks[where].message + " " + checks[where].hint
                                                          if where in checks else "")
        missing = [w for w in words if w not in text]
        if missing:
            problems.append(f"{where} message lacks {missing}: {text[:400]!r}")
    cells = [c for c in result.cells if c.status != "ok"]
    if len(cells) != len(exp.cells):
        problems.append(f"cells not ok: {[(c.index, c.status, c.message[:200]) for c in cells]}, "
                        f"expected {list(exp.cells)}")
    else:
        for cell, (status, words) in zip(cells, exp.cells, strict=True):
            if cell.status != status or any(w not in cell.message for w in words):
                problems.append(f"cell {cell.index}: {cell.status} {cell.message[:300]!r}, expected {status} "
                                f"with {list(words)}")
    return problems


@pytest.mark.parametrize("name", list(BY_NAME))
def test_attack_gets_exactly_its_expected_outcome(redteam, name):
    attack = BY_NAME[name]
    result = redteam.results.get(attack.who)
    assert result is not None, f"{attack.who!r} is not in the gradebook: its submission was lost"
    problems = outcome_problems(result, attack)
    details = [f"check {c.check}: {c.status.value}: {c.message[:200]!r}" for c in result.checks if not c.passed]
    assert not problems, f"{name}:\n  " + "\n  ".join(problems + ["-- what the grader recorded:"] + details)


def test_bystanders_unaffected_and_nothing_lost(redteam):
    expected_students = {a.who for a in ATTACKS} | set(BYSTANDERS)
    assert len(expected_students) == len(ATTACKS) + 2
    # every submission exactly once in the gradebook and in grades.csv
    assert set(redteam.results) == expected_students
    csv_students = [row["student"] for row in redteam.csv_rows]
    assert sorted(csv_students) == sorted(expected_students)
    db = sqlite3.connect(redteam.target.out / "gradebook.sqlite")
    try:
        assert db.execute("select count(*) from submissions").fetchone()[0] == len(ATTACKS) + 2
    finally:
        db.close()
    assert len(redteam.summary.graded) == len(ATTACKS) + 2
    # the grader itself never failed: every attack is the student's result, never a grader error
    assert not [r.student for r in redteam.results.values() if r.status.value == "grader_error"]
    # the bystanders get exactly what they get when graded alone
    seed = redteam.summary.info.seed
    ctx = GradeContext(redteam.spec, prepare(redteam.spec.checks, seed), redteam.summary.info.sandbox)
    for student, (_, score) in BYSTANDERS.items():
        in_batch = redteam.results[student]
        alone = grade_submission(ctx, redteam.target.subs / student / f"{ASSIGNMENT}.ipynb", student)
        assert in_batch.score == alone.score == score, (student, in_batch.score, alone.score)
        assert [(c.check, c.status) for c in in_batch.checks] == [(c.check, c.status) for c in alone.checks]
        assert all(c.status == "ok" for c in in_batch.cells), in_batch.cells
        row = next(r for r in redteam.csv_rows if r["student"] == student)
        assert float(row["score"]) == score and row["batch_seed"] == str(seed)


def test_honeypots_intact(redteam):
    out = redteam.target.out
    db = sqlite3.connect(out / "gradebook.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("select count(*) from submissions where student = 'ghost'").fetchone()[0] == 0
        scores = dict(db.execute("select student, score from submissions"))
    finally:
        db.close()
    assert scores[FULL] == 100 and scores[PARTIAL] == 95
    assert scores["write_gradebook"] == 100  # its own honest part: the tampering did not count
    # no file appeared (or changed) in any student's folder, and nothing foreign in OUT
    assert digest_tree(redteam.target.subs) == redteam.subs_before
    assert not (out / "pwned.txt").exists()
    assert {p.name for p in out.iterdir()} <= {"gradebook.sqlite", "gradebook.sqlite-wal", "gradebook.sqlite-shm",
                                              "grades.csv", "grades.json", "feedback", ".autograder.lock"}
    # the hidden tests and the reference are unchanged
    assert {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in HIDDEN} == redteam.hidden_before
    # the escapes had something real to reach: the servers answered a client on the host
    assert redteam.served


def test_feedback_for_every_student(redteam):
    folder = redteam.target.out / "feedback" / ASSIGNMENT
    for student in redteam.results:
        assert (folder / f"{student}.html").is_file(), student
