"""Grading a class: discover, grade in parallel sandboxes, store, report.

A batch is one assignment graded into one output folder. Its seed is drawn
once and recorded in the gradebook; grading into the same folder again
resumes or regrades *that* batch with the same seed (so scores are
identical), and skips submissions already graded from the same file, the
same assignment version and the same grader version. Each result is stored
in its own transaction as soon as it is ready, so a killed batch loses at
most the submissions in flight, and running the same command again finishes
it. One lock per output folder refuses a second concurrent grader.

Each of the ``jobs`` worker slots grades one submission at a time. With the
warm pool (the default) a slot keeps one sandboxed zygote for the whole
batch, which has paid the interpreter's start and the imports once, and
forks a fresh runtime per submission (``execute/pool.py``); ``pool=False``
starts a new sandbox for every submission and every restart instead.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..checks import text
from ..execute.pool import WorkerPool
from ..execute.sandbox import INSECURE_WARNING, MODE_NONE, detect_mode
from ..notebook.load import file_digest
from ..results import BatchInfo, SubmissionResult, SubmissionStatus
from ..spec import AssignmentSpec
from ..store import Gradebook, export_gradebook, write_feedback
from .cases import new_seed, prepare
from .discover import Submission, discover
from .submission import GradeContext, grade_submission


class BatchLocked(RuntimeError):
    """Another grading command is writing to the same output folder."""


@dataclass
class BatchOptions:
    jobs: int = max(1, os.cpu_count() or 1)
    student: str | None = None
    seed: int | None = None
    device: str = "cpu"
    lang: str = "es"
    insecure: bool = False
    force: bool = False  # regrade even what is already graded
    pool: bool = True  # warm workers (one zygote per slot); False: a fresh sandbox per submission


@dataclass
class BatchSummary:
    """What a batch did: its info, a compact copy of each result graded now, and who was skipped."""

    info: BatchInfo
    graded: list[SubmissionResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def failures(self) -> int:
        return sum(1 for r in self.graded if r.status is not SubmissionStatus.GRADED)


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".autograder.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchLocked(f"otro proceso está calificando en {out}; espera a que termine") from None
        yield


def _batch_info(gradebook: Gradebook, spec: AssignmentSpec, options: BatchOptions, mode: str) -> BatchInfo:
    recorded = gradebook.batch_for(spec.id)
    if recorded is not None and (options.seed is None or options.seed == recorded.seed):
        seed, batch_id = recorded.seed, recorded.batch_id
    else:
        seed = options.seed if options.seed is not None else new_seed()
        batch_id = uuid.uuid4().hex[:12]
    sandbox = "none (INSECURE)" if mode == MODE_NONE else mode
    return BatchInfo(batch_id, spec.id, spec.version, __version__, seed, options.device, options.lang, sandbox)


def _is_current(submission: Submission, recorded: dict, info: BatchInfo, same_batch: bool) -> bool:
    known = recorded.get(submission.student)
    if not same_batch or known is None:
        return False
    return tuple(known) == (file_digest(submission.path), info.assignment_version, info.grader_version)


def _compact(result: SubmissionResult) -> SubmissionResult:
    """What the batch summary keeps of a stored result: scores and statuses, not the texts.

    Messages, hints and cell errors are in the gradebook and the feedback already; keeping them
    for every student would make a batch's memory grow with the class.
    """
    return dataclasses.replace(
        result,
        checks=[dataclasses.replace(c, message="", hint="", description="", tolerance="") for c in result.checks],
        cells=[dataclasses.replace(c, message="", defined=[]) for c in result.cells])


ProgressHook = Callable[[SubmissionResult, int, int], None]


def grade_batch(spec: AssignmentSpec, submissions_dir: Path, out: Path, options: BatchOptions,
                progress: ProgressHook | None = None, on_start: Callable[[int], None] | None = None) -> BatchSummary:
    """Grade every submission of ``submissions_dir`` into ``out``; see the module docstring.

    ``on_start(total)`` is called once the submissions to grade are known, ``progress(result, done,
    total)`` after each one.
    """
    mode = detect_mode(options.insecure)
    start = time.monotonic()
    with output_lock(out):
        gradebook = Gradebook(out / "gradebook.sqlite")
        try:
            previous = gradebook.batch_for(spec.id)
            info = _batch_info(gradebook, spec, options, mode)
            same_batch = previous is not None and previous.seed == info.seed
            ctx = GradeContext(spec, prepare(spec.checks, info.seed), mode, options.lang, options.device)
            submissions = discover(submissions_dir, spec.id)
            if options.student is not None:
                submissions = [s for s in submissions if s.student == options.student]
                if not submissions:
                    raise FileNotFoundError(f"no hay entrega del estudiante {options.student!r} en {submissions_dir}")
            recorded = gradebook.graded_hashes(spec.id)
            force = options.force or options.student is not None
            todo = [s for s in submissions if force or not _is_current(s, recorded, info, same_batch)]
            summary = BatchSummary(info, skipped=[s.student for s in submissions if s not in todo])
            gradebook.record_batch(info)
            titles = {q.id: text(q.title, options.lang) for q in spec.questions}
            if on_start is not None:
                on_start(len(todo))
            for result in _run_pool(ctx, todo, options.jobs, pool=options.pool):
                if mode == MODE_NONE:
                    result.message = (INSECURE_WARNING + " " + result.message).strip()
                gradebook.save(result, info)
                write_feedback(out, result, info, titles, options.lang)
                summary.graded.append(_compact(result))
                if progress is not None:
                    progress(result, len(summary.graded), len(todo))
            export_gradebook(gradebook, out)
        finally:
            gradebook.close()
    summary.duration_s = time.monotonic() - start
    return summary


def _run_pool(ctx: GradeContext, todo: list[Submission], jobs: int, *, pool: bool = True) -> Iterator[SubmissionResult]:
    """Grade ``todo`` with ``jobs`` sandboxes at once, yielding each result as soon as it is ready.

    Each worker slot is a thread of its own (with its own uid) that takes the next submission as soon
    as it has finished one, so storing a result and writing its feedback (here, in the caller's thread)
    never keeps a slot waiting. With ``pool`` (and the real sandbox) each slot keeps a warm zygote for
    the whole batch, started and closed in the slot's thread (bubblewrap's ``--die-with-parent``
    follows the thread that started it); without it, or with ``--insecure-no-sandbox``, every
    submission starts its own process. If the caller stops early, the slots finish the submissions
    they are grading and take no more.
    """
    if not todo:
        return
    jobs = max(1, min(jobs, len(todo)))
    waiting: queue.SimpleQueue[Submission] = queue.SimpleQueue()
    for sub in todo:
        waiting.put(sub)
    ready: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    stop = threading.Event()
    workers = WorkerPool(ctx.plan, ctx.preload, jobs) if pool and ctx.mode != MODE_NONE else None

    def slot_loop(slot: int) -> None:
        worker = workers.worker(slot) if workers is not None else None
        try:
            while not stop.is_set():
                try:
                    sub = waiting.get_nowait()
                except queue.Empty:
                    break
                ready.put(("result", grade_submission(ctx, sub.path, sub.student, slot=slot,
                                                      picked_from=sub.picked_from, worker=worker)))
        except BaseException as exc:  # a fault of ours: the batch stops and reports it
            ready.put(("fault", exc))
        finally:
            if worker is not None:
                worker.close()
            ready.put(("done", slot))

    threads = [threading.Thread(target=slot_loop, args=(slot,), name=f"grading-slot-{slot}", daemon=True)
               for slot in range(jobs)]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            kind, value = ready.get()
            if kind == "done":
                running -= 1
            elif kind == "fault":
                raise value
            else:
                yield value
    finally:
        stop.set()
        for thread in threads:
            thread.join()
