"""Gradebook exports: ``grades.csv`` for spreadsheets and LMS imports, ``grades.json`` with every check.

Both are rewritten whole from the gradebook after a batch, and written
atomically (:func:`atomic_write_text`): a reader, or a crash, sees the old file
or the new one, never half of one.

``grades.csv``: one row per (student, assignment), sorted by assignment and
student, with the columns

- ``student, assignment, score, max_score, percent, status``: ``percent`` is
  ``100 * score / max_score`` rounded to 2 decimals (blank when
  ``max_score`` is 0); ``status`` is the submission's (``graded``,
  ``invalid``, ``grader_error``);
- one column per question id, the union over the assignments present, in the
  order they first appear: the points got in that question, blank where the
  row's assignment has no such question;
- ``batch_id, batch_seed, assignment_version, grader_version, device,
  sandbox``: the provenance of the row's grade;
- ``graded_at``: when it was stored (ISO 8601, UTC), blank when unknown.

A question id equal to one of the fixed column names gets a ``q:`` prefix.
Text that a spreadsheet would read as a formula (a student name starting
with ``=``, ``+``, ``-``, ``@``) is prefixed with ``'`` (CSV injection).
Numbers are written plainly (``87.5``, ``100``), seeds in full as decimal text.

``grades.json``: ``{"format": "autograder-grades/1", "batches": {batch_id:
{...}}, "submissions": [{..., "questions": {q: {"points", "max_points"}},
"checks": [...], "cells": [...]}]}``; seeds are strings there too (JSON
readers often keep only 53 bits of an integer).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results import BatchInfo, Status, SubmissionResult, SubmissionStatus

if TYPE_CHECKING:
    from .gradebook import Gradebook

__all__ = [
    "CSV_LEADING_COLUMNS",
    "CSV_TRAILING_COLUMNS",
    "atomic_write_text",
    "export_gradebook",
    "format_number",
    "grades_csv_text",
    "grades_json_data",
    "write_grades_csv",
    "write_grades_json",
]

CSV_LEADING_COLUMNS = ("student", "assignment", "score", "max_score", "percent", "status")
CSV_TRAILING_COLUMNS = (
    "batch_id",
    "batch_seed",
    "assignment_version",
    "grader_version",
    "device",
    "sandbox",
    "graded_at",
)
JSON_FORMAT = "autograder-grades/1"

# A batch lookup: by assignment, or by (student, assignment) for per-submission provenance.
BatchInfos = Mapping[str, BatchInfo] | Mapping[tuple[str, str], BatchInfo]
GradedAt = Mapping[tuple[str, str], datetime]


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` so that no reader ever sees a partial file.

    The text goes to a temporary file in the same folder, is flushed to disk
    (``fsync``) and renamed over ``path`` (``os.replace``, atomic on POSIX and
    Windows); the folder is synced too where the OS allows. The text is
    written as is (no newline translation); characters the encoding cannot
    represent (lone surrogates) are written as backslash escapes. Parent
    folders are created. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode(encoding, "backslashreplace")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # 0o666 filtered by the umask, like an ordinary open(path, "w").
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def format_number(value: float, digits: int = 6) -> str:
    """``87.5`` -> ``"87.5"``, ``100.0`` -> ``"100"``: rounded to ``digits`` decimals, no trailing zeros."""
    if not math.isfinite(value):
        return ""
    text = f"{round(value, digits):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _percent(result: SubmissionResult) -> str:
    return format_number(100.0 * result.score / result.max_score, 2) if result.max_score else ""


def _batch_of(result: SubmissionResult, batch_infos: BatchInfos) -> BatchInfo | None:
    lookup: Mapping[Any, BatchInfo] = batch_infos
    return lookup.get((result.student, result.assignment)) or lookup.get(result.assignment)


def _spreadsheet_safe(text: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (OWASP's CSV injection advice)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _sorted(results: Iterable[SubmissionResult]) -> list[SubmissionResult]:
    return sorted(results, key=lambda r: (r.assignment, r.student))


def _question_columns(results: list[SubmissionResult]) -> list[str]:
    seen: dict[str, None] = {}
    for result in results:
        for question in result.question_scores():
            seen.setdefault(question, None)
    return list(seen)


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat(timespec="seconds")


def grades_csv_text(
    results: Iterable[SubmissionResult], batch_infos: BatchInfos, *, graded_at: GradedAt | None = None
) -> str:
    """The text of ``grades.csv`` (see the module's docstring for its columns)."""
    rows = _sorted(results)
    questions = _question_columns(rows)
    reserved = set(CSV_LEADING_COLUMNS) | set(CSV_TRAILING_COLUMNS)
    header = [*CSV_LEADING_COLUMNS, *(f"q:{q}" if q in reserved else q for q in questions), *CSV_TRAILING_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for result in rows:
        batch = _batch_of(result, batch_infos)
        scores = result.question_scores()
        writer.writerow(
            [
                _spreadsheet_safe(result.student),
                _spreadsheet_safe(result.assignment),
                format_number(result.score),
                format_number(result.max_score),
                _percent(result),
                SubmissionStatus(result.status).value,
                *(format_number(scores[q][0]) if q in scores else "" for q in questions),
                *(
                    (batch.batch_id, str(batch.seed), batch.assignment_version, batch.grader_version)
                    if batch
                    else ("", "", "", "")
                ),
                *((batch.device, batch.sandbox) if batch else ("", "")),
                _iso((graded_at or {}).get((result.student, result.assignment))),
            ]
        )
    return buffer.getvalue()


def write_grades_csv(
    path: str | os.PathLike[str],
    results: Iterable[SubmissionResult],
    batch_infos: BatchInfos,
    *,
    graded_at: GradedAt | None = None,
) -> Path:
    """Write ``grades.csv`` atomically; ``batch_infos`` is keyed by assignment or by (student, assignment)."""
    return atomic_write_text(path, grades_csv_text(results, batch_infos, graded_at=graded_at))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _batch_json(batch: BatchInfo) -> dict[str, Any]:
    data = asdict(batch)
    data["seed"] = str(batch.seed)
    return data


def grades_json_data(
    results: Iterable[SubmissionResult], batch_infos: BatchInfos, *, graded_at: GradedAt | None = None
) -> dict[str, Any]:
    """The content of ``grades.json`` as plain data."""
    batches: dict[str, dict[str, Any]] = {}
    submissions = []
    for result in _sorted(results):
        batch = _batch_of(result, batch_infos)
        if batch is not None:
            batches.setdefault(batch.batch_id, _batch_json(batch))
        submissions.append(
            {
                "student": result.student,
                "assignment": result.assignment,
                "status": SubmissionStatus(result.status).value,
                "score": result.score,
                "max_score": result.max_score,
                "percent": round(100.0 * result.score / result.max_score, 2) if result.max_score else None,
                "message": result.message,
                "path": result.path,
                "notebook_sha256": result.notebook_sha256,
                "picked_from": list(result.picked_from),
                "duration_s": _finite(result.duration_s),
                "batch_id": batch.batch_id if batch else None,
                "graded_at": _iso((graded_at or {}).get((result.student, result.assignment))) or None,
                "questions": {
                    q: {"points": got, "max_points": out_of} for q, (got, out_of) in result.question_scores().items()
                },
                "checks": [
                    {
                        **asdict(c),
                        "status": Status(c.status).value,
                        "points": _finite(c.points),
                        "max_points": _finite(c.max_points),
                        "duration_s": _finite(c.duration_s),
                    }
                    for c in result.checks
                ],
                "cells": [{**asdict(cell), "duration_s": _finite(cell.duration_s)} for cell in result.cells],
            }
        )
    return {"format": JSON_FORMAT, "batches": batches, "submissions": submissions}


def write_grades_json(
    path: str | os.PathLike[str],
    results: Iterable[SubmissionResult],
    batch_infos: BatchInfos,
    *,
    graded_at: GradedAt | None = None,
) -> Path:
    """Write ``grades.json`` (every check and cell of every submission) atomically."""
    data = grades_json_data(results, batch_infos, graded_at=graded_at)
    return atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False) + "\n")


def export_gradebook(gradebook: Gradebook, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Rewrite ``OUT/grades.csv`` and ``OUT/grades.json`` from everything in ``gradebook``.

    Each row carries the provenance of the batch it was actually graded in.
    """
    records = gradebook.records()
    results = [r.result for r in records]
    batches = {(r.result.student, r.result.assignment): r.batch for r in records}
    moments = {(r.result.student, r.result.assignment): r.graded_at for r in records}
    out = Path(out_dir)
    return (
        write_grades_csv(out / "grades.csv", results, batches, graded_at=moments),
        write_grades_json(out / "grades.json", results, batches, graded_at=moments),
    )
