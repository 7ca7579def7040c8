"""Nothing is lost: a grading command SIGKILLed mid-batch, then run again, ends as if never interrupted.

The real CLI grades 12 submissions into OUT in a subprocess. Once at least
two results are in the gradebook (and before all are) a second ``grade`` on
the same OUT is refused (exit 2, with a message), and then the first one's
whole process group is SIGKILLed. The same command run again must finish the
batch: every submission exactly once, the same scores as an uninterrupted run
with the same ``--seed``, a sound SQLite file and a complete grades.csv.
"""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from catalogue import notebook

from conftest import ROOT

SEED = 20240613
N_STUDENTS = 12
CLI = [str(Path(sys.executable).with_name("autograder"))]
TIMEOUT_S = 300  # a runaway limit only


def make_class(subs: Path) -> dict[str, str]:
    """12 submissions: correct, partial, slow (a 1.5 s cell) and broken ones."""
    variants = {
        "completo": notebook(),
        "parcial": notebook(replacements={"db = dout.sum(axis=0)": "db = dout.mean(axis=0)"}),
        "lento": notebook(mid=["import time\ntime.sleep(1.5)"]),
        "roto": b'{"cells": [',
    }
    kinds = {}
    for i in range(N_STUDENTS):
        kind = list(variants)[i % len(variants)]
        student = f"e{i:02d}_{kind}"
        (subs / student).mkdir(parents=True)
        (subs / student / "01_backprop.ipynb").write_bytes(variants[kind])
        kinds[student] = kind
    return kinds


def grade_cmd(subs: Path, out: Path) -> list[str]:
    return CLI + ["grade", "01_backprop", str(subs), "--out", str(out), "--jobs", "2", "--quiet",
                  "--course", str(ROOT), "--seed", str(SEED)]


def stored(out: Path) -> dict[str, tuple[float, str, str]]:
    """``{student: (score, status, graded_at)}`` as the gradebook has it now ({} before it exists)."""
    path = out / "gradebook.sqlite"
    if not path.exists():
        return {}
    try:
        db = sqlite3.connect(path, timeout=30)
        try:
            return {s: (score, status, at) for s, score, status, at in
                    db.execute("select student, score, status, graded_at from submissions")}
        finally:
            db.close()
    except sqlite3.OperationalError:  # the tables are being created
        return {}


def integrity(out: Path) -> list:
    db = sqlite3.connect(out / "gradebook.sqlite")
    try:
        return db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()


def csv_scores(out: Path) -> list[tuple[str, float, str]]:
    with (out / "grades.csv").open(encoding="utf-8", newline="") as fh:
        return sorted((r["student"], float(r["score"]), r["batch_seed"]) for r in csv.DictReader(fh))


def wait_until(predicate, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        assert proc.poll() is None, f"the grader ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_sigkill_mid_batch_then_rerun_loses_nothing(sandbox_mode, tmp_path):
    subs = tmp_path / "entregas"
    kinds = make_class(subs)

    # an uninterrupted run: the scores to reproduce
    reference = subprocess.run(grade_cmd(subs, tmp_path / "ref"), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert reference.returncode == 0, reference.stderr
    expected = {s: v[:2] for s, v in stored(tmp_path / "ref").items()}
    assert set(expected) == set(kinds)
    assert {s: v[1] for s, v in expected.items()} == {s: "invalid" if k == "roto" else "graded"
                                                     for s, k in kinds.items()}

    out = tmp_path / "out"
    first = subprocess.Popen(grade_cmd(subs, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    try:
        wait_until(lambda: len(stored(out)) >= 1, first, "the first result was stored")
        # a second grader on the same OUT is refused while the first holds it
        second = subprocess.run(grade_cmd(subs, out), capture_output=True, text=True, timeout=TIMEOUT_S)
        assert second.returncode == 2, (second.returncode, second.stderr)
        assert "otro proceso está calificando" in " ".join(second.stderr.split()), second.stderr
        wait_until(lambda: len(stored(out)) >= 2, first, "two results were stored")
        assert first.poll() is None and len(stored(out)) < N_STUDENTS, "the batch finished before the kill"
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
        first.stderr.close()
    assert first.returncode == -signal.SIGKILL

    before = stored(out)
    assert 2 <= len(before) < N_STUDENTS, len(before)
    assert integrity(out) == [("ok",)]  # sound right after the kill
    for student, (score, status, _) in before.items():  # what was stored is final and right
        assert (score, status) == expected[student], student

    again = subprocess.run(grade_cmd(subs, out), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert again.returncode == 0, again.stderr

    after = stored(out)
    assert integrity(out) == [("ok",)]
    db = sqlite3.connect(out / "gradebook.sqlite")
    try:
        rows = db.execute("select student, count(*) from submissions group by student").fetchall()
        seeds = {seed for (seed,) in db.execute("select distinct seed from batches")}
    finally:
        db.close()
    assert sorted(rows) == sorted((s, 1) for s in kinds)  # every submission exactly once
    assert seeds == {str(SEED)}
    assert {s: v[:2] for s, v in after.items()} == expected  # the same scores as the uninterrupted run
    for student, values in before.items():  # resumed, not regraded: stored results kept as they were
        assert after[student] == values, student
    assert csv_scores(out) == sorted((s, score, str(SEED)) for s, (score, _) in expected.items())
    assert csv_scores(out) == csv_scores(tmp_path / "ref")
