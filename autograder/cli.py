"""The ``autograder`` command: demo, grade, check, release, validate.

Exit codes: ``grade`` and ``demo`` exit 0 when the batch completed, whatever
the students' code did, 2 for bad arguments and 3 for a grader fault;
``check`` exits 1 when a public test fails; ``validate`` exits 1 when an
example does not grade as its spec says.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from . import __version__
from .checks import text
from .course import Course, CourseError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="Autograder de cuadernos de deep learning.")
console = Console(stderr=True)

CourseOpt = typer.Option(None, "--course", help="Carpeta del curso (por defecto, la actual).")
LangOpt = typer.Option("es", "--lang", help="Idioma de los mensajes: es o en.")
InsecureOpt = typer.Option(False, "--insecure-no-sandbox", help="Califica SIN aislamiento (inseguro; sólo pruebas locales).")
NoPoolOpt = typer.Option(False, "--no-pool", help="Sin trabajadores precalentados: un sandbox nuevo por entrega (más lento).")


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _course(course: Path | None) -> Course:
    try:
        return Course(course or Path.cwd())
    except CourseError as exc:
        _fail(str(exc))
        raise  # unreachable


def _check_lang(lang: str) -> None:
    if lang not in ("es", "en"):
        _fail(f"--lang debe ser es o en, no {lang!r}")


def _check_device(device: str) -> str:
    from .devices import resolve_device

    try:
        return resolve_device(device)
    except ValueError as exc:
        _fail(str(exc))
        raise


def _grade_one(course: Course, assignment: str, submissions: Path, out: Path, *, jobs: int, student: str | None,
               seed: int | None, device: str, lang: str, insecure: bool, quiet: bool, force: bool = False,
               pool: bool = True):
    from .execute.sandbox import SandboxUnavailable
    from .grade.batch import BatchLocked, BatchOptions, grade_batch
    from .grade.cases import GraderFault

    try:
        spec = course.spec(assignment)
    except CourseError as exc:
        _fail(str(exc))
        raise
    options = BatchOptions(jobs=jobs, student=student, seed=seed, device=device, lang=lang, insecure=insecure,
                           force=force, pool=pool)
    # done/total, rate, failures so far (not gradable: invalid file or grader error; hangs and crashes), ETA
    progress = Progress(TextColumn(f"[bold]{assignment}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TextColumn("[red]{task.fields[failures]}"),
                        TextColumn("ETA"), TimeRemainingColumn(), console=console,
                        disable=quiet)
    failures = hangs = 0
    started = time.monotonic()
    with progress:
        task = progress.add_task(assignment, total=None, rate="", failures="")

        def start(total: int) -> None:
            nonlocal started
            started = time.monotonic()  # the rate counts from the first submission, not from start-up
            progress.update(task, completed=0, total=total)

        def hook(result, done: int, total: int) -> None:
            nonlocal failures, hangs
            why = _needs_attention(result)
            failures += result.status.value != "graded"
            hangs += bool(why) and result.status.value == "graded"
            parts = [f"{failures} {'sin calificar' if lang == 'es' else 'not gradable'}" if failures else "",
                     f"{hangs} {'cuelgues/caídas' if lang == 'es' else 'hangs/crashes'}" if hangs else ""]
            rate = done / max(time.monotonic() - started, 1e-9) * 60
            progress.update(task, completed=done, total=total, rate=f"{rate:.0f}/min",
                            failures=" · ".join(p for p in parts if p))

        try:
            summary = grade_batch(spec, submissions, out, options, progress=hook, on_start=start)
        except (BatchLocked, FileNotFoundError, SandboxUnavailable) as exc:
            _fail(str(exc))
        except GraderFault as exc:
            _fail(f"fallo del calificador: {exc}", 3)
    if not quiet:
        _summary_table(summary, spec, lang)
    return summary


FULL_TABLE_MAX = 40  # above this many students the summary shows the class, not every row (grades.csv has them)
ATTENTION_MAX = 25


def _needs_attention(result) -> str:
    """Why a graded submission deserves a look (not gradable, a hang, a crash), or ""."""
    if result.status.value != "graded":
        return result.status.value
    hung = {c.status.value for c in result.checks} | {c.status for c in result.cells}
    return ", ".join(s for s in ("timeout", "crash") if s in hung)


def _summary_table(summary, spec, lang: str) -> None:
    es = lang == "es"
    graded = sorted(summary.graded, key=lambda r: r.student)
    title = f"{spec.id} · {'semilla' if es else 'seed'} {summary.info.seed} · {summary.info.sandbox}"
    if len(graded) <= FULL_TABLE_MAX:
        table = Table(title=title)
        table.add_column("estudiante" if es else "student")
        for q in spec.questions:
            table.add_column(q.id, justify="right")
        table.add_column("total", justify="right")
        table.add_column("estado" if es else "status")
        for r in graded:
            scores = r.question_scores()
            table.add_row(r.student, *[f"{scores.get(q.id, (0, 0))[0]:.4g}" for q in spec.questions],
                          f"{r.score:.4g}/{r.max_score:g}", r.status.value)
        console.print(table)
    elif graded:  # a big class: per question, then the submissions that need a look
        table = Table(title=title)
        for i, col in enumerate(("pregunta", "media", "nota máxima", "sin puntos") if es else
                                ("question", "mean", "full marks", "no points")):
            table.add_column(col, justify="right" if i else "left")
        for q in [*spec.questions, None]:
            got = [r.question_scores().get(q.id, (0.0, q.points))[0] if q else r.score for r in graded]
            out_of = q.points if q else spec.max_score
            table.add_row(q.id if q else "total", f"{sum(got) / len(got):.1f}/{out_of:g}",
                          f"{sum(1 for g in got if g >= out_of - 1e-6)}", f"{sum(1 for g in got if g <= 1e-9)}")
        console.print(table)
        attention = [(r, why) for r in graded if (why := _needs_attention(r))]
        if attention:
            look = Table(title=f"{len(attention)} {'para revisar' if es else 'to look at'}")
            for col in ("estudiante", "nota", "motivo") if es else ("student", "score", "why"):
                look.add_column(col)
            for r, why in attention[:ATTENTION_MAX]:
                look.add_row(r.student, f"{r.score:g}/{r.max_score:g}", why)
            if len(attention) > ATTENTION_MAX:
                look.add_row("…", "", f"+{len(attention) - ATTENTION_MAX}")
            console.print(look)
    if summary.skipped:
        console.print(f"{len(summary.skipped)} ya calificadas con el mismo archivo y versión (se reanudó el lote)."
                      if es else f"{len(summary.skipped)} already graded from the same file and version (batch resumed).")
    rate = len(graded) / summary.duration_s * 60 if summary.duration_s > 0 else 0.0
    mean = sum(r.score for r in graded) / len(graded) if graded else 0.0
    failures = summary.failures
    if es:
        console.print(f"{len(graded)} calificadas en {summary.duration_s:.1f} s ({rate:.0f}/min); nota media "
                      f"{mean:.1f}/{spec.max_score:g}; {failures} sin calificar (archivo inválido o fallo del calificador).")
    else:
        console.print(f"{len(graded)} graded in {summary.duration_s:.1f} s ({rate:.0f}/min); mean score "
                      f"{mean:.1f}/{spec.max_score:g}; {failures} not gradable (invalid file or grader fault).")


@app.command()
def grade(
    assignment: str = typer.Argument(..., help="Id de la tarea, p. ej. 01_backprop."),
    submissions: Path = typer.Argument(..., help="Carpeta con las entregas."),
    out: Path = typer.Option(..., "--out", help="Carpeta de salida (libro de notas, CSV, retroalimentación)."),
    jobs: int = typer.Option(os.cpu_count() or 1, "--jobs", min=1, help="Entregas en paralelo."),
    student: str | None = typer.Option(None, "--student", help="Recalifica sólo a este estudiante."),
    seed: int | None = typer.Option(None, "--seed", help="Reproduce un lote con su semilla."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda o auto."),
    lang: str = LangOpt,
    course: Path | None = CourseOpt,
    insecure: bool = InsecureOpt,
    quiet: bool = typer.Option(False, "--quiet", help="Sin barra de progreso ni tabla: sólo los errores."),
    force: bool = typer.Option(False, "--force", help="Recalifica también lo ya calificado."),
    no_pool: bool = NoPoolOpt,
) -> None:
    """Califica todas las entregas de una tarea."""
    _check_lang(lang)
    device = _check_device(device)
    _grade_one(_course(course), assignment, submissions, out, jobs=jobs, student=student, seed=seed, device=device,
               lang=lang, insecure=insecure, quiet=quiet, force=force, pool=not no_pool)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Carpeta de salida."),
    jobs: int = typer.Option(os.cpu_count() or 1, "--jobs", min=1),
    device: str = typer.Option("cpu", "--device"),
    lang: str = LangOpt,
    course: Path | None = CourseOpt,
    insecure: bool = InsecureOpt,
    quiet: bool = typer.Option(False, "--quiet", help="Sin barra de progreso ni tabla: sólo los errores."),
    no_pool: bool = NoPoolOpt,
) -> None:
    """Califica los ejemplos incluidos de todas las tareas (libro de notas y retroalimentación en OUT)."""
    _check_lang(lang)
    device = _check_device(device)
    c = _course(course)
    for assignment in c.assignment_ids():
        _grade_one(c, assignment, c.examples_dir(assignment), out, jobs=jobs, student=None, seed=None, device=device,
                   lang=lang, insecure=insecure, quiet=quiet, pool=not no_pool)
    if not quiet:
        console.print(f"Listo: {out / 'grades.csv'}, {out / 'gradebook.sqlite'}, {out / 'feedback'}/")


@app.command()
def check(
    notebook: Path = typer.Argument(..., help="Tu cuaderno .ipynb."),
    lang: str = LangOpt,
    question: str | None = typer.Option(None, "--question", "-q", help="Sólo esta pregunta (p. ej. q3)."),
) -> None:
    """Autocomprobación: ejecuta tu cuaderno y sus pruebas públicas."""
    _check_lang(lang)
    from .notebook.load import NotebookError
    from .selfcheck import FixturesNotFound, check_notebook

    try:
        ok, report = check_notebook(notebook, lang=lang, question=question)
    except (NotebookError, FixturesNotFound, ValueError) as exc:
        _fail(f"{notebook}: {exc}", 2)
        return
    typer.echo(report)
    raise typer.Exit(0 if ok else 1)


@app.command()
def release(
    assignment: str | None = typer.Argument(None, help="Id de la tarea (todas si se omite)."),
    bundle: Path | None = typer.Option(None, "--bundle", help="Además, copia lo que reciben los estudiantes aquí."),
    course: Path | None = CourseOpt,
) -> None:
    """Genera assignments/<id>/ (cuaderno sin soluciones y pruebas públicas) desde la solución."""
    from .release import ReleaseError
    from .release import release as do_release

    c = _course(course)
    ids = [assignment] if assignment else c.assignment_ids()
    for aid in ids:
        try:
            written = do_release(c.spec(aid), c.root)
        except ReleaseError as exc:
            _fail(str(exc))
            return
        for path in written:
            typer.echo(f"escrito {path.relative_to(c.root)}")
    if bundle is not None:
        from .bundle import build_bundle

        for path in build_bundle(c, ids, bundle):
            typer.echo(f"paquete {path}")


@app.command()
def validate(
    assignment: str = typer.Argument(..., help="Id de la tarea."),
    jobs: int = typer.Option(os.cpu_count() or 1, "--jobs", min=1),
    device: str = typer.Option("cpu", "--device"),
    seed: int | None = typer.Option(None, "--seed"),
    course: Path | None = CourseOpt,
    insecure: bool = InsecureOpt,
    no_pool: bool = NoPoolOpt,
) -> None:
    """Comprueba que la solución saca la nota máxima, el esqueleto cero y cada ejemplo lo esperado,
    y que la tabla de la API del spec coincide con la del cuaderno."""
    from .api import api_problems
    from .validate import validate as do_validate

    device = _check_device(device)
    c = _course(course)
    spec = c.spec(assignment)
    api = api_problems(spec.api, spec.solution_notebook, {q.id for q in spec.questions})
    for problem in api:
        typer.echo(f"API: {problem}", err=True)
    verdicts = do_validate(spec, c.root, jobs=jobs, device=device, seed=seed, insecure=insecure,
                           pool=not no_pool)
    table = Table(title=f"validate {assignment} ({device})")
    for col in ("ejemplo", "nota", "esperada", "resultado"):
        table.add_column(col)
    for v in verdicts:
        table.add_row(v.name, f"{v.result.score:g}", f"{v.expected.score:g}",
                      "[green]ok[/]" if v.ok else "[red]" + "\n".join(v.problems) + "[/]")
    Console().print(table)
    raise typer.Exit(0 if all(v.ok for v in verdicts) and not api else 1)


@app.command()
def version() -> None:
    """Muestra la versión."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main", "text"]
