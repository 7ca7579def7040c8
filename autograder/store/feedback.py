"""Per-student feedback: one self-contained HTML page per submission.

``OUT/feedback/<assignment>/<student>.html`` says, in the course's language
(Spanish by default, English with ``lang="en"``), what was checked, what
passed, what failed and why (the mismatch report, verbatim), with the hint
for a known bug, which notebook cells failed, and the provenance of the grade
(batch seed, versions, device, sandbox).

Everything a student's code produced (exception text, printed output inside
messages, even the student's name) is untrusted: the template is rendered with
autoescaping on and nothing is ever marked safe. The page has no scripts and
no external resources, and its Content-Security-Policy forbids both.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ..checks import Text, text
from ..results import BatchInfo, CheckResult, Status, SubmissionResult, SubmissionStatus
from .export import atomic_write_text, format_number

__all__ = ["LABELS", "STATUS_LABELS", "feedback_path", "render_feedback", "safe_filename", "write_feedback"]

TEMPLATES = Path(__file__).parent / "templates"

STATUS_LABELS: dict[str, dict[str, str]] = {
    "es": {
        Status.PASS.value: "correcto",
        Status.FAIL.value: "incorrecto",
        Status.ERROR.value: "error",
        Status.TIMEOUT.value: "tiempo agotado",
        Status.CRASH.value: "el proceso terminó",
        Status.MISSING.value: "no definida",
        Status.FORBIDDEN.value: "no permitido",
        Status.NOT_RUN.value: "no ejecutada",
    },
    "en": {
        Status.PASS.value: "passed",
        Status.FAIL.value: "failed",
        Status.ERROR.value: "error",
        Status.TIMEOUT.value: "timed out",
        Status.CRASH.value: "the process died",
        Status.MISSING.value: "not defined",
        Status.FORBIDDEN.value: "forbidden",
        Status.NOT_RUN.value: "not run",
    },
}

SUBMISSION_STATUS_LABELS: dict[str, dict[str, str]] = {
    "es": {
        SubmissionStatus.GRADED.value: "calificada",
        SubmissionStatus.INVALID.value: "no válida",
        SubmissionStatus.GRADER_ERROR.value: "error del corrector",
    },
    "en": {
        SubmissionStatus.GRADED.value: "graded",
        SubmissionStatus.INVALID.value: "invalid",
        SubmissionStatus.GRADER_ERROR.value: "grader error",
    },
}

CELL_STATUS_LABELS: dict[str, dict[str, str]] = {
    "es": {
        "ok": "correcta",
        "error": "error",
        "timeout": "tiempo agotado",
        "crash": "el proceso terminó",
        "skipped": "omitida",
    },
    "en": {"ok": "ok", "error": "error", "timeout": "timed out", "crash": "the process died", "skipped": "skipped"},
}

LABELS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Informe de corrección",
        "student": "Estudiante",
        "assignment": "Tarea",
        "score": "Puntuación",
        "status": "Estado",
        "message": "Mensaje",
        "picked": "Se corrigió",
        "picked_among": "elegido entre",
        "grader_error": "Un fallo del corrector (no de tu código) impidió calificar esta entrega; se volverá a corregir.",
        "questions": "Preguntas",
        "points": "puntos",
        "check": "Comprobación",
        "no_checks": "No se ejecutó ninguna comprobación.",
        "hint": "Pista",
        "tolerance": "Tolerancia",
        "execution": "Ejecución del cuaderno",
        "cells_ok": "Todas las celdas se ejecutaron sin errores.",
        "cells_none": "No se ejecutó ninguna celda.",
        "cells_note": "Las celdas se numeran desde 1, contando también las de texto.",
        "cell": "Celda",
        "provenance": "Procedencia de la nota",
        "batch": "Lote",
        "seed": "Semilla",
        "assignment_version": "Versión de la tarea",
        "grader_version": "Versión del corrector",
        "device": "Dispositivo",
        "sandbox": "Aislamiento",
        "duration": "Duración",
        "notebook": "Cuaderno",
    },
    "en": {
        "title": "Grading report",
        "student": "Student",
        "assignment": "Assignment",
        "score": "Score",
        "status": "Status",
        "message": "Message",
        "picked": "Graded",
        "picked_among": "picked among",
        "grader_error": "A fault of the grader (not of your code) kept this submission from being graded; "
        "it will be graded again.",
        "questions": "Questions",
        "points": "points",
        "check": "Check",
        "no_checks": "No check was run.",
        "hint": "Hint",
        "tolerance": "Tolerance",
        "execution": "Notebook execution",
        "cells_ok": "Every cell ran without errors.",
        "cells_none": "No cell was run.",
        "cells_note": "Cells are numbered from 1, text cells included.",
        "cell": "Cell",
        "provenance": "Provenance of this grade",
        "batch": "Batch",
        "seed": "Seed",
        "assignment_version": "Assignment version",
        "grader_version": "Grader version",
        "device": "Device",
        "sandbox": "Sandbox",
        "duration": "Duration",
        "notebook": "Notebook",
    },
}


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # always: every message may hold a student's text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _lang(lang: str) -> str:
    return lang if lang in LABELS else "es"


def _label(table: Mapping[str, Mapping[str, str]], lang: str, key: str) -> str:
    return table[_lang(lang)].get(key, key)


@dataclass(frozen=True)
class _QuestionView:
    id: str
    title: str
    points: str
    max_points: str
    state: str  # "full", "partial", "zero" (a CSS class)
    checks: list[dict[str, Any]]


def _check_view(check: CheckResult, lang: str) -> dict[str, Any]:
    status = Status(check.status)
    return {
        "passed": status is Status.PASS,
        "name": check.check,
        "description": check.description or check.check,
        "status": status.value,
        "status_label": _label(STATUS_LABELS, lang, status.value),
        "points": format_number(check.points, 2),
        "max_points": format_number(check.max_points, 2),
        "message": check.message.rstrip(),
        "hint": check.hint.strip(),
        "tolerance": check.tolerance,
    }


def _question_views(result: SubmissionResult, titles: Mapping[str, Text | str], lang: str) -> list[_QuestionView]:
    grouped: dict[str, list[CheckResult]] = {}
    for check in result.checks:
        grouped.setdefault(check.question, []).append(check)
    scores = result.question_scores()
    views = []
    for qid, checks in grouped.items():
        got, out_of = scores[qid]
        state = "full" if out_of and got >= out_of else ("partial" if got > 0 else "zero")
        title = text(titles[qid], lang) if qid in titles else qid
        views.append(
            _QuestionView(
                id=qid,
                title=title,
                points=format_number(got, 2),
                max_points=format_number(out_of, 2),
                state=state,
                checks=[_check_view(c, lang) for c in checks],
            )
        )
    return views


def _seconds(value: float) -> str:
    return f"{format_number(value, 1)} s"


def render_feedback(
    result: SubmissionResult,
    batch: BatchInfo,
    question_titles: Mapping[str, Text | str],
    lang: str = "es",
) -> str:
    """The feedback page of one submission, as HTML text.

    ``question_titles`` maps a question id to its title, as text or as a
    bilingual ``{"es": ..., "en": ...}``; questions without a title show their id.
    """
    lang = _lang(lang)
    status = SubmissionStatus(result.status)
    failed_cells = [
        {
            "number": cell.index + 1,
            "status_label": _label(CELL_STATUS_LABELS, lang, cell.status),
            "message": cell.message.rstrip(),
            "duration": _seconds(cell.duration_s),
        }
        for cell in result.cells
        if cell.status != "ok"
    ]
    context = {
        "lang": lang,
        "L": LABELS[lang],
        "student": result.student,
        "assignment": result.assignment,
        "score": format_number(result.score, 2),
        "max_score": format_number(result.max_score, 2),
        "status": status.value,
        "status_label": _label(SUBMISSION_STATUS_LABELS, lang, status.value),
        "grader_error": status is SubmissionStatus.GRADER_ERROR,
        "message": result.message.rstrip(),
        "notebook": Path(result.path).name if result.path else "",
        "picked_from": [Path(p).name for p in result.picked_from] if len(result.picked_from) > 1 else [],
        "questions": _question_views(result, question_titles, lang),
        "cells_run": bool(result.cells),
        "failed_cells": failed_cells,
        "provenance": [
            ("batch", batch.batch_id),
            ("seed", str(batch.seed)),
            ("assignment_version", batch.assignment_version),
            ("grader_version", batch.grader_version),
            ("device", batch.device),
            ("sandbox", batch.sandbox),
            ("duration", _seconds(result.duration_s)),
            ("notebook", f"{Path(result.path).name} (SHA-256 {result.notebook_sha256[:12]})"),
        ],
    }
    return _environment().get_template("feedback.html").render(context)


# Characters no file name may hold somewhere (POSIX: "/" and NUL; Windows: the rest).
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_MAX_NAME_BYTES = 120  # well under the 255 of most file systems, with room for a suffix


def safe_filename(name: str) -> str:
    """A file name for ``name`` that stays recognisable: accents and spaces kept; slashes, ``..`` not.

    Characters no file system accepts become ``_``, leading dots and spaces
    go, and very long names are cut. When anything had to change, a short
    hash of the original is appended so that two names never end up as the
    same file (``"a/b"`` and ``"a_b"``).
    """
    normalized = unicodedata.normalize("NFC", name)  # macOS folder names come decomposed (NFD)
    cleaned = _UNSAFE.sub("_", normalized).strip().lstrip(".").rstrip(". ")
    if cleaned.split(".")[0].upper() in _WINDOWS_RESERVED:
        cleaned = "_" + cleaned
    encoded = cleaned.encode("utf-8")
    if len(encoded) > _MAX_NAME_BYTES:
        cleaned = encoded[:_MAX_NAME_BYTES].decode("utf-8", "ignore")
    if cleaned == normalized and cleaned:
        return cleaned
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned or '_'}~{digest}"


def feedback_path(out_dir: str | os.PathLike[str], assignment: str, student: str) -> Path:
    """``OUT/feedback/<assignment>/<student>.html``, both names made safe for the file system."""
    return Path(out_dir) / "feedback" / safe_filename(assignment) / f"{safe_filename(student)}.html"


def write_feedback(
    out_dir: str | os.PathLike[str],
    result: SubmissionResult,
    batch: BatchInfo,
    question_titles: Mapping[str, Text | str],
    lang: str = "es",
) -> Path:
    """Render and write (atomically) ``OUT/feedback/<assignment>/<student>.html``; returns its path."""
    path = feedback_path(out_dir, result.assignment, result.student)
    return atomic_write_text(path, render_feedback(result, batch, question_titles, lang))
