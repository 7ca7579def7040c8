"""Grading one submission: run it in the sandbox, probe it, compare, score.

Everything that decides a grade happens here, in the trusted process: the
sandbox only runs cells and probe programs and sends back plain data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import text
from ..compare import error_hints, format_mismatches
from ..compare.hints import generic_error_hints
from ..compare.judge import judge_value  # shared with the self-check
from ..execute.notebook_run import CapReached, NotebookRun, ProbeOutcome
from ..execute.pool import Zygote
from ..execute.sandbox import SandboxPlan
from ..i18n import tr
from ..notebook.analysis import CodeFacts, analyse, to_python
from ..notebook.load import Notebook, NotebookError, file_digest, load_notebook
from ..results import CheckResult, Status, SubmissionResult, SubmissionStatus
from ..spec import AssignmentSpec
from .cases import PreparedCheck, probe_message

SKIP_TAGS = {"skip-grading", "skip_grading", "no-calificar"}


@dataclass
class GradeContext:
    """What every submission of a batch shares."""

    spec: AssignmentSpec
    prepared: list[PreparedCheck]
    mode: str
    lang: str = "es"
    device: str = "cpu"
    extra_readonly: list[Path] = field(default_factory=list)

    def plan(self, slot: int) -> SandboxPlan:
        return SandboxPlan(
            mode=self.mode,
            limits=self.spec.limits,
            slot=slot,
            forbidden_modules=list(self.spec.forbidden_modules),
            readonly_dirs=list(self.extra_readonly),
            gpu=self.device == "cuda",
        )

    @property
    def preload(self) -> list[str]:
        # torch._dynamo: the first torch.optim optimizer imports it (~2 s); preloaded, a warm worker pays it once
        return ["numpy", "torch", "torch._dynamo"] if self.spec.needs_torch else ["numpy"]


def grade_submission(ctx: GradeContext, path: Path, student: str, *, slot: int = 0,
                     picked_from: list[str] | None = None, worker: Zygote | None = None) -> SubmissionResult:
    """Grade one notebook. Never raises for anything the student's file or code does.

    ``worker`` is the slot's warm worker (the pool); without it the notebook gets a fresh sandbox.
    """
    start = time.monotonic()
    result = SubmissionResult(
        student=student, assignment=ctx.spec.id, path=str(path), notebook_sha256="",
        status=SubmissionStatus.GRADED, picked_from=picked_from or [],
    )
    try:
        notebook = load_notebook(path)
    except NotebookError as exc:
        result.notebook_sha256 = file_digest(path)
        result.status = SubmissionStatus.INVALID
        result.message = tr("invalid_notebook", ctx.lang, reason=exc)
        result.checks = [_result(ctx, p, Status.NOT_RUN, tr("not_run_invalid", ctx.lang)) for p in ctx.prepared]
        result.duration_s = time.monotonic() - start
        return result
    result.notebook_sha256 = notebook.sha256
    result.message = notebook.note
    try:
        _grade_notebook(ctx, notebook, result, slot, worker)
    except Exception as exc:  # our fault: recorded, and the batch goes on
        result.status = SubmissionStatus.GRADER_ERROR
        result.message = tr("grader_error", ctx.lang, message=repr(exc))
        result.checks = [_result(ctx, p, Status.NOT_RUN, result.message) for p in ctx.prepared]
    result.duration_s = time.monotonic() - start
    return result


def _grade_notebook(ctx: GradeContext, notebook: Notebook, result: SubmissionResult, slot: int,
                    worker: Zygote | None = None) -> None:
    cells = [(c.index, to_python(c.source)) for c in notebook.code_cells if not SKIP_TAGS & set(c.tags)]
    facts = analyse(cells, ctx.spec.forbidden_modules)
    run = NotebookRun(ctx.plan(slot), cells, cap_s=ctx.spec.limits.submission_cap_s,
                      preload=ctx.preload, lang=ctx.lang, spawn=worker.spawn if worker is not None else None)
    try:
        result.cells = run.run_cells()
        defined = run.defined_names()
        for prepared in ctx.prepared:
            result.checks.append(_run_check(ctx, run, facts, defined, prepared))
    finally:
        run.close()
    _point_at_root_causes(ctx, facts, result)


def _run_check(ctx: GradeContext, run: NotebookRun, facts: CodeFacts, defined: dict[str, int],
               prepared: PreparedCheck) -> CheckResult:
    question = ctx.spec.question(prepared.check.question)
    graded_elsewhere = {fn for q in ctx.spec.questions if q.id != question.id for fn in q.functions}
    forbidden = facts.forbidden_in(question.functions, stop_at=graded_elsewhere)
    if forbidden:
        fn, module = forbidden
        return _result(ctx, prepared, Status.FORBIDDEN, tr("forbidden", ctx.lang, function=fn, module=module))
    forbidden_name = facts.forbidden_name_in(question.functions, question.forbidden, stop_at=graded_elsewhere)
    if forbidden_name:
        fn, name = forbidden_name
        names = ", ".join(f"`{n}`" for n in question.forbidden)
        return _result(ctx, prepared, Status.FORBIDDEN, tr("forbidden_name", ctx.lang, function=fn, name=name, names=names))
    for fn in prepared.case.probe.functions():
        if not fn.startswith("@") and fn not in defined:
            return _result(ctx, prepared, Status.MISSING, _missing_message(ctx, run, facts, fn))
    try:
        outcome = run.probe(probe_message(prepared.case.probe, prepared.seed), check_timeout(ctx, prepared))
    except CapReached:
        return _result(ctx, prepared, Status.TIMEOUT,
                       tr("submission_cap", ctx.lang, seconds=ctx.spec.limits.submission_cap_s))
    return _judge(ctx, prepared, outcome)


def check_timeout(ctx: GradeContext, prepared: PreparedCheck) -> float:
    """The check's own time limit, else the assignment's ``check_timeout_s``."""
    return prepared.check.timeout_s or ctx.spec.limits.check_timeout_s


def graded_function(prepared: PreparedCheck) -> str:
    """The student function a check is about: the last of its probe's own (non-``@``) steps."""
    own = [f for f in prepared.case.probe.functions() if not f.startswith("@")]
    return own[-1] if own else prepared.check.name


def _student_function(prepared: PreparedCheck, function: str, *, last: bool) -> str:
    """The name to show for ``function`` when it is a runtime op (``@tensor``, ``@load_state_dict``...):
    a wrong answer is the probe's last student function's (the one under test); an op that raises
    acts on what the first one built (the student's module, tensors)."""
    if not function.startswith("@"):
        return function
    own = [f for f in prepared.case.probe.functions() if not f.startswith("@")]
    return (own[-1] if last else own[0]) if own else function


def _judge(ctx: GradeContext, prepared: PreparedCheck, outcome: ProbeOutcome) -> CheckResult:
    lang, case = ctx.lang, prepared.case
    if outcome.status == "ok":  # a wrong answer belongs to the function under test: the probe's last own one
        outcome.function = graded_function(prepared)
    else:
        outcome.function = _student_function(prepared, outcome.function, last=False)
    if outcome.status == "ok":
        mismatches, hints = judge_value(outcome.value, case, lang)
        if not mismatches:
            return _result(ctx, prepared, Status.PASS, "", duration=outcome.duration_s)
        message = f"`{outcome.function}`: " + format_mismatches(mismatches, lang)
        hint = " ".join(dict.fromkeys(hints))
        return _result(ctx, prepared, Status.FAIL, message, hint=hint, duration=outcome.duration_s)
    if outcome.status == "missing":
        return _result(ctx, prepared, Status.MISSING, tr("missing_function", lang, function=outcome.function))
    if outcome.status in ("error", "unsendable"):
        err = outcome.error or {}
        key = "unsendable" if outcome.status == "unsendable" else "raised"
        if key == "raised" and err.get("type") == "NotImplementedError" and not err.get("message"):
            key = "not_implemented"
        message = tr(key, lang, function=outcome.function, type=err.get("type", "?"), message=err.get("message", ""))
        if err.get("traceback"):
            message += "\n" + err["traceback"].rstrip()
        raised = (case.patterns, str(err.get("type", "")), str(err.get("message", "")), lang)
        hint = " ".join(error_hints(*raised) or generic_error_hints(*raised))
        return _result(ctx, prepared, Status.ERROR, message, hint=hint, duration=outcome.duration_s)
    if outcome.status == "timeout":
        return _result(ctx, prepared, Status.TIMEOUT,
                       tr("check_timeout", lang, function=outcome.function, seconds=check_timeout(ctx, prepared)),
                       duration=outcome.duration_s)
    return _result(ctx, prepared, Status.CRASH, tr("crash", lang, function=outcome.function, detail=outcome.detail),
                   duration=outcome.duration_s)


def _missing_message(ctx: GradeContext, run: NotebookRun, facts: CodeFacts, fn: str) -> str:
    cell = facts.functions.get(fn, facts.unparsed.get(fn))
    outcome = run.outcomes.get(cell) if cell is not None else None
    if outcome is not None and outcome.status != "ok":
        return tr("missing_in_failed_cell", ctx.lang, function=fn, cell=cell, reason=outcome.message or outcome.status)
    return tr("missing_function", ctx.lang, function=fn)


def _result(ctx: GradeContext, prepared: PreparedCheck, status: Status, message: str, *,
            hint: str = "", duration: float = 0.0) -> CheckResult:
    check = prepared.check
    question = ctx.spec.question(check.question)
    total_weight = sum(c.weight for c in ctx.spec.checks_of(check.question))
    max_points = question.points * check.weight / total_weight
    return CheckResult(
        question=check.question,
        check=check.name,
        status=status,
        points=max_points if status is Status.PASS else 0.0,  # rounded only in sums
        max_points=max_points,
        message=message,
        hint=hint,
        description=text(check.description, ctx.lang),
        duration_s=round(duration, 4),
        tolerance=prepared.case.tolerance.describe() if prepared.case.judge is None else "",
    )


def _point_at_root_causes(ctx: GradeContext, facts: CodeFacts, result: SubmissionResult) -> None:
    """Where a failing function calls another of the student's functions that fails, say so."""
    broken = (Status.FAIL, Status.ERROR, Status.TIMEOUT, Status.CRASH)
    checked = list(zip(result.checks, ctx.prepared, strict=True))
    failing: dict[str, str] = {}  # function -> its question
    for check, prepared in checked:
        if check.status in broken:
            failing.setdefault(graded_function(prepared), check.question)
    for check, prepared in checked:
        if check.status not in (Status.FAIL, Status.ERROR):
            continue
        fn = graded_function(prepared)
        uses = facts.callees(fn) | set(ctx.spec.question(check.question).uses)
        for callee in sorted(uses - {fn}):
            if callee in failing:
                note = tr("root_cause", ctx.lang, function=callee, question=failing[callee])
                if note not in check.hint:
                    check.hint = (check.hint + " " + note).strip()
                break
