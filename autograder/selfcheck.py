"""The student's self-check: public tests, with the grader's own messages.

Two entry points:

* ``check("q3")`` / ``check_all()`` inside Jupyter or Colab: runs in the
  student's own process, against the functions defined in the notebook (no
  sandbox: it is their machine and their code). In a notebook the report is
  an HTML table (plain text elsewhere).
* ``autograder check notebook.ipynb`` from a terminal: runs the notebook's
  cells in a separate process (sandboxed where bubblewrap is available) and
  then the public tests, exactly as the grader would.

Both judge with the same comparison, hints and messages as the grader. They
only know the public fixtures: passing them is a good sign, not the grade.

This module is student-side: it ships in the self-check's wheel
(``autograder release --bundle``) and needs only numpy (IPython for the HTML
table, where present). ``check_notebook`` is the one part that needs the
full package (the sandbox and the grader), imported only when called.
"""

from __future__ import annotations

import html
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import probe_message, text
from .compare.hints import error_hints, generic_error_hints
from .compare.judge import judge_value
from .compare.report import format_mismatches
from .execute.runtime import runner, wire
from .fixtures import PublicAssignment
from .i18n import tr
from .results import CheckResult, Status

FIXTURES = "public_tests.json"

LABELS = {
    "es": {"title": "Autocomprobación", "question": "Pregunta", "passed": "Pruebas públicas superadas",
           "covered": "Puntos que cubren", "of": "de", "pass": "correcto", "total": "Pruebas públicas superadas",
           "sum": "Total",
           "covers": "Las pruebas públicas cubren {covered} de {total} puntos. Pasarlas es buena señal, no la nota: "
                     "la nota la dan las pruebas ocultas, con entradas nuevas, que cubren todos los puntos.",
           "no_public": "{qid}: no tiene pruebas públicas (se califica sólo con pruebas ocultas)",
           "unknown": "No conozco la pregunta {qid!r}; las preguntas son: {ids}",
           "no_assignment": "Define ASSIGNMENT_ID = '<id de la tarea>' en la primera celda "
                            "(viene en el cuaderno de la tarea).",
           "not_found": "No encuentro {fixtures} de {assignment}: ponlo en la misma carpeta que este cuaderno "
                        "(en Colab, súbelo con el panel Archivos) o define AUTOGRADER_FIXTURES=/ruta/{fixtures}.",
           "status": {Status.FAIL.value: "incorrecto", Status.ERROR.value: "error", Status.MISSING.value: "no definida",
                      Status.TIMEOUT.value: "tiempo agotado", Status.CRASH.value: "el proceso terminó",
                      Status.FORBIDDEN.value: "no permitido", Status.NOT_RUN.value: "no ejecutada"}},
    "en": {"title": "Self-check", "question": "Question", "passed": "Public tests passed",
           "covered": "Points they cover", "of": "of", "pass": "passed", "total": "Public tests passed",
           "sum": "Total",
           "covers": "The public tests cover {covered} of {total} points. Passing them is a good sign, not the grade: "
                     "the grade comes from the hidden tests, on new inputs, which cover every point.",
           "no_public": "{qid}: has no public tests (graded by hidden tests only)",
           "unknown": "Unknown question {qid!r}; the questions are: {ids}",
           "no_assignment": "Define ASSIGNMENT_ID = '<assignment id>' in the first cell (it comes with the "
                            "assignment's notebook).",
           "not_found": "Cannot find {fixtures} of {assignment}: put it in the same folder as this notebook "
                        "(in Colab, upload it with the Files panel) or set AUTOGRADER_FIXTURES=/path/{fixtures}.",
           "status": {Status.FAIL.value: "failed", Status.ERROR.value: "error", Status.MISSING.value: "not defined",
                      Status.TIMEOUT.value: "timed out", Status.CRASH.value: "the process died",
                      Status.FORBIDDEN.value: "forbidden", Status.NOT_RUN.value: "not run"}},
}


def _labels(lang: str) -> dict[str, Any]:
    return LABELS.get(lang, LABELS["es"])


def _pts(x: float) -> str:
    return f"{round(x, 2):g}"


class FixturesNotFound(FileNotFoundError):
    """The public tests of the assignment are not where the self-check looks."""


def caller_namespace() -> dict[str, Any]:
    """The globals of the notebook cell that called ``check`` (two frames up)."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None and frame.f_back.f_back is not None
    return frame.f_back.f_back.f_globals


def find_fixtures(assignment: str, start: Path | None = None, lang: str = "es") -> Path:
    """``public_tests.json`` of ``assignment``: $AUTOGRADER_FIXTURES, else beside or above ``start``."""
    env = os.environ.get("AUTOGRADER_FIXTURES")
    if env and Path(env).is_file():
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        for candidate in (folder / FIXTURES, folder / "assignments" / assignment / FIXTURES, folder / assignment / FIXTURES):
            if candidate.is_file() and PublicAssignment.load(candidate).id == assignment:
                return candidate
    raise FixturesNotFound(_labels(lang)["not_found"].format(fixtures=FIXTURES, assignment=assignment))


@dataclass
class QuestionRow:
    """One line of the report's table: a question and what its public tests say."""

    id: str
    title: str
    passed: int
    public: int
    covered: float  # points of the question that its public tests are worth
    points: float  # the question's points

    @property
    def mark(self) -> str:
        return "·" if not self.public else "✔" if self.passed == self.public else "✘"


@dataclass
class SelfCheckReport:
    """What one ``check`` found; renders as text (terminal) or HTML (Jupyter, Colab)."""

    assignment: PublicAssignment
    results: list[CheckResult]
    lang: str
    question: str | None = None  # the question asked for; None: every question

    @property
    def passed(self) -> bool:
        return all(r.status is Status.PASS for r in self.results)

    def __bool__(self) -> bool:
        return self.passed

    def rows(self) -> list[QuestionRow]:
        rows = []
        for q in self.assignment.questions:
            if self.question is not None and q.id != self.question:
                continue
            mine = [r for r in self.results if r.question == q.id]
            points = [self.assignment.points(q.id, r.check) for r in mine]
            covered = sum(p for p in points if p is not None) if None not in points else (q.points if mine else 0.0)
            title = text(q.title, self.lang)
            title = title.split(" · ", 1)[1] if " · " in title else title  # "Pregunta 2 · Capa lineal"
            rows.append(QuestionRow(q.id, title, sum(r.passed for r in mine), len(mine), covered, q.points))
        return rows

    def _status(self, r: CheckResult) -> str:
        labels = _labels(self.lang)
        return labels["pass"] if r.passed else labels["status"].get(r.status.value, r.status.value)

    def _summary(self) -> tuple[str, str]:
        labels, rows = _labels(self.lang), self.rows()
        ok = sum(r.passed for r in self.results)
        total_line = f"{labels['total']}: {ok} / {len(self.results)}"
        covers = labels["covers"].format(covered=_pts(sum(r.covered for r in rows)), total=_pts(sum(r.points for r in rows)))
        return total_line, covers

    def render(self) -> str:
        """The report as plain text."""
        labels, rows = _labels(self.lang), self.rows()
        lines = [f"{labels['title']} · {self.assignment.id}", ""]
        width = max([len(f"{r.id} {r.title}") for r in rows] + [len(labels["question"])])
        lines.append(f"  {labels['question']:<{width}}  {labels['passed']:>{len(labels['passed'])}}  {labels['covered']}")
        for r in rows:
            counts = f"{r.passed} / {r.public}"
            lines.append(f"{r.mark} {r.id + ' ' + r.title:<{width}}  {counts:>{len(labels['passed'])}}  "
                         f"{_pts(r.covered)} {labels['of']} {_pts(r.points)}")
        if len(rows) > 1:
            counts = f"{sum(r.passed for r in rows)} / {sum(r.public for r in rows)}"
            lines.append(f"  {labels['sum']:<{width}}  {counts:>{len(labels['passed'])}}  "
                         f"{_pts(sum(r.covered for r in rows))} {labels['of']} {_pts(sum(r.points for r in rows))}")
        lines.append("")
        for r in self.results:
            mark = "✔" if r.passed else "✘"
            about = f" ({r.description})" if r.description else ""
            lines.append(f"{mark} {r.question} · {r.check}: {self._status(r)}{about}")
            if not r.passed:
                lines.extend("    " + line for line in r.message.splitlines())
                if r.hint:
                    lines.append("    " + tr("hint", self.lang, hint=r.hint))
        lines.append("")
        lines.extend(self._summary())
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython's text/plain
        p.text(self.render())

    def _repr_html_(self) -> str:
        """The report as an HTML fragment (inline styles only: Jupyter and Colab, light or dark)."""
        labels, rows, e = _labels(self.lang), self.rows(), html.escape
        ok_c, bad_c, muted = "#1a7f37", "#cf222e", "#57606a"
        cell = "padding:4px 10px;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top"
        out = ['<div style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:14px;'
               'line-height:1.45;max-width:60rem">',
               f'<div style="font-weight:600;font-size:15px;margin:2px 0 6px">{e(labels["title"])} · '
               f'<code>{e(self.assignment.id)}</code></div>',
               '<table style="border-collapse:collapse;margin:0 0 8px">',
               f'<thead><tr><th style="{cell}">{e(labels["question"])}</th><th style="{cell}">{e(labels["passed"])}'
               f'</th><th style="{cell}">{e(labels["covered"])}</th></tr></thead><tbody>']
        for r in rows:
            color = muted if not r.public else ok_c if r.passed == r.public else bad_c
            out.append(f'<tr><td style="{cell}"><span style="color:{color};font-weight:700">{r.mark}</span> '
                       f'<b>{e(r.id)}</b> {e(r.title)}</td><td style="{cell}">{r.passed} / {r.public}</td>'
                       f'<td style="{cell}">{_pts(r.covered)} {e(labels["of"])} {_pts(r.points)}</td></tr>')
        if len(rows) > 1:
            out.append(f'<tr><td style="{cell}"><b>{e(labels["sum"])}</b></td><td style="{cell}"><b>'
                       f'{sum(r.passed for r in rows)} / {sum(r.public for r in rows)}</b></td><td style="{cell}"><b>'
                       f'{_pts(sum(r.covered for r in rows))} {e(labels["of"])} {_pts(sum(r.points for r in rows))}'
                       f'</b></td></tr>')
        out.append('</tbody></table><ul style="list-style:none;padding:0;margin:0">')
        for r in self.results:
            mark, color = ("✔", ok_c) if r.passed else ("✘", bad_c)
            about = f' <span style="color:{muted}">· {e(r.description)}</span>' if r.description else ""
            out.append(f'<li style="margin:3px 0"><span style="color:{color};font-weight:700">{mark}</span> '
                       f'<b>{e(r.question)} · {e(r.check)}</b>: <span style="color:{color}">{e(self._status(r))}'
                       f'</span>{about}')
            if not r.passed and r.message:
                out.append('<pre style="white-space:pre-wrap;background:#f6f8fa;color:#1f2328;border:1px solid #d0d7de;'
                           f'border-radius:6px;padding:6px 10px;margin:4px 0 0 1.4em">{e(r.message)}</pre>')
            if not r.passed and r.hint:
                out.append('<div style="background:#ddf4ff;color:#1f2328;border-left:4px solid #0969da;'
                           f'padding:4px 10px;margin:4px 0 0 1.4em">{e(tr("hint", self.lang, hint=r.hint))}</div>')
            out.append("</li>")
        total_line, covers = self._summary()
        out.append(f'</ul><p style="margin:8px 0 0"><b>{e(total_line)}</b><br><span style="color:{muted}">'
                   f'{e(covers)}</span></p></div>')
        return "".join(out)


def _graded_function(check_case: Any) -> str:
    own = [f for f in check_case.probe.functions() if not f.startswith("@")]
    return own[-1] if own else ""


def run_public_checks(namespace: dict[str, Any], public: PublicAssignment, question: str | None,
                      lang: str) -> SelfCheckReport:
    """Judge the functions in ``namespace`` on the public checks (of ``question``, or all)."""
    labels = _labels(lang)
    ids = [q.id for q in public.questions]
    if question is not None and question not in ids:
        raise ValueError(labels["unknown"].format(qid=question, ids=", ".join(ids)))
    results, graded = [], []
    for check, case in public.checks():
        if question is not None and check.question != question:
            continue
        message = probe_message(case.probe)
        reply = runner.run_probe(namespace, message["steps"], message["outputs"])
        status, text_msg, hint = Status.PASS, "", ""
        if reply["ok"]:
            value = wire.decode(wire.encode(reply["value"]))  # the same plain data the grader would see
            mismatches, hints = judge_value(value, case, lang)
            if mismatches:
                function = _graded_function(case)
                status, hint = Status.FAIL, " ".join(dict.fromkeys(hints))
                text_msg = (f"`{function}`: " if function else "") + format_mismatches(mismatches, lang)
        elif reply.get("missing"):
            status, text_msg = Status.MISSING, tr("missing_function", lang, function=reply["function"])
        else:
            err = reply.get("error") or {}
            status = Status.ERROR
            key = "not_implemented" if err.get("type") == "NotImplementedError" and not err.get("message") else "raised"
            text_msg = tr(key, lang, function=reply["function"], type=err.get("type"), message=err.get("message"))
            if key == "raised":  # the grader's hints for an error, as in grade/submission.py
                raised = (case.patterns, str(err.get("type", "")), str(err.get("message", "")), lang)
                hint = " ".join(error_hints(*raised) or generic_error_hints(*raised))
        results.append(CheckResult(check.question, check.name, status, 0.0, 0.0, text_msg, hint,
                                   text(check.description, lang)))
        graded.append(_graded_function(case))
    _point_at_root_causes(namespace, results, graded, lang)
    return SelfCheckReport(public, results, lang, question)


def _point_at_root_causes(namespace: dict[str, Any], results: list[CheckResult], graded: list[str], lang: str) -> None:
    """Where a failing function calls another of the student's functions that fails too, say so (as the grader does)."""
    broken = (Status.FAIL, Status.ERROR)
    failing: dict[str, str] = {}
    for result, function in zip(results, graded, strict=True):
        if result.status in broken and function:
            failing.setdefault(function, result.question)
    for result, function in zip(results, graded, strict=True):
        if result.status not in broken:
            continue
        code = getattr(namespace.get(function), "__code__", None)
        for callee in sorted(set(getattr(code, "co_names", ())) & set(failing) - {function}):
            note = tr("root_cause", lang, function=callee, question=failing[callee])
            result.hint = (result.hint + " " + note).strip()
            break


def show(report: SelfCheckReport) -> None:
    """An HTML table in Jupyter/Colab (with the text as its plain-text version); text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(report.render())
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:  # a terminal or a script
        print(report.render())
        return
    display(report)


def check_in_namespace(namespace: dict[str, Any], question: str | None, *, lang: str | None = None) -> bool:
    """What ``check()`` does in a notebook: show the report, return whether all passed."""
    lang = lang or os.environ.get("AUTOGRADER_LANG") or "es"
    lang = lang if lang in LABELS else "es"
    assignment = namespace.get("ASSIGNMENT_ID")
    if not assignment:
        print(_labels(lang)["no_assignment"])
        return False
    try:
        public = PublicAssignment.load(find_fixtures(str(assignment), lang=lang))
    except FixturesNotFound as exc:
        print(exc)
        return False
    report = run_public_checks(namespace, public, question, lang)
    if question is not None and not report.results:
        print(_labels(lang)["no_public"].format(qid=question))
        return True
    show(report)
    return report.passed


def check_notebook(path: Path, *, lang: str = "es", question: str | None = None) -> tuple[bool, str]:
    """``autograder check``: run the notebook's cells in a separate process, then its public tests.

    Needs the full package (the sandbox and the grader), not only the student's client.
    """
    from .execute.sandbox import SandboxUnavailable, detect_mode
    from .grade.submission import GradeContext, grade_submission
    from .notebook.load import NotebookError, load_notebook

    notebook = load_notebook(path)
    assignment = notebook.assignment
    if assignment is None:
        raise NotebookError("el cuaderno no dice de qué tarea es (metadata.autograder); usa el cuaderno publicado")
    public = PublicAssignment.load(find_fixtures(assignment, path.parent, lang))
    spec = public.spec(path.parent)
    prepared = [p for p in public.prepared() if question is None or p.check.question == question]
    if question is not None and question not in {q.id for q in spec.questions}:
        raise ValueError(_labels(lang)["unknown"].format(qid=question, ids=", ".join(q.id for q in spec.questions)))
    try:
        mode = detect_mode()
    except SandboxUnavailable:
        mode = detect_mode(insecure=True)  # the student's own machine: their code, their process
    result = grade_submission(GradeContext(spec, prepared, mode, lang), path, "yo")
    report = SelfCheckReport(public, result.checks, lang, question)
    return report.passed, report.render()
