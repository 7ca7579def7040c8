"""The gradebook: every graded submission, with its checks and cells, in one SQL database.

SQLite by default (``OUT/gradebook.sqlite``); any SQLAlchemy URL works too, so
the same code can write to PostgreSQL when grading spreads past one machine.

Writing one submission is one transaction that replaces the (assignment,
student) row together with its check results and cell outcomes. A process
killed mid-batch (SIGKILL, power cut) therefore leaves only complete
submissions: the one being written is either all there or not there, and a
regrade that was interrupted leaves the previous grade intact.

Tables (one row per...):

- ``batches``: batch of grading (its seed, versions, device, sandbox);
- ``submissions``: (assignment, student), unique; points to its batch;
- ``check_results``: check of a submission (ordered by ``position``);
- ``cell_outcomes``: code cell of a submission's notebook.

Besides the fields of the result dataclasses, ``check_results.position`` keeps
the check order and ``cell_outcomes.defined`` (JSON text) keeps the names a
cell defined, so that :meth:`Gradebook.results` gives back exactly what was
saved. The seed is stored as text: it is a 64-bit (or wider) integer, wider
than SQL's ``BIGINT``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload

from ..results import BatchInfo, CellOutcome, CheckResult, Status, SubmissionResult, SubmissionStatus

__all__ = ["Gradebook", "GradedRecord", "database_url"]

# How long a writer waits for another writer's lock before giving up (SQLite).
BUSY_TIMEOUT_MS = 30_000


class _Base(DeclarativeBase):
    pass


class _BatchRow(_Base):
    __tablename__ = "batches"

    batch_id: Mapped[str] = mapped_column(String, primary_key=True)
    assignment: Mapped[str] = mapped_column(String, index=True)
    assignment_version: Mapped[str] = mapped_column(String)
    grader_version: Mapped[str] = mapped_column(String)
    seed: Mapped[str] = mapped_column(String)  # decimal text: wider than BIGINT
    device: Mapped[str] = mapped_column(String)
    lang: Mapped[str] = mapped_column(String)
    sandbox: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _SubmissionRow(_Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("assignment", "student", name="uq_submission_assignment_student"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.batch_id"), index=True)
    assignment: Mapped[str] = mapped_column(String)
    student: Mapped[str] = mapped_column(String)
    path: Mapped[str] = mapped_column(Text)
    notebook_sha256: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    duration_s: Mapped[float] = mapped_column(Float)
    picked_from: Mapped[str] = mapped_column(Text)  # JSON list of paths
    graded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    checks: Mapped[list[_CheckRow]] = relationship(
        order_by="_CheckRow.position", cascade="all, delete-orphan", passive_deletes=True
    )
    cells: Mapped[list[_CellRow]] = relationship(
        order_by="_CellRow.index", cascade="all, delete-orphan", passive_deletes=True
    )


class _CheckRow(_Base):
    __tablename__ = "check_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order of the check within the submission
    question: Mapped[str] = mapped_column(String)
    check: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    points: Mapped[float] = mapped_column(Float)
    max_points: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    hint: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    duration_s: Mapped[float] = mapped_column(Float)
    tolerance: Mapped[str] = mapped_column(Text)


class _CellRow(_Base):
    __tablename__ = "cell_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String)
    message: Mapped[str] = mapped_column(Text)
    duration_s: Mapped[float] = mapped_column(Float)
    defined: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of names


@dataclass(frozen=True)
class GradedRecord:
    """A stored submission with its provenance: the batch it was graded in, and when."""

    result: SubmissionResult
    batch: BatchInfo
    graded_at: datetime


def database_url(path_or_url: str | os.PathLike[str]) -> URL:
    """The SQLAlchemy URL for a file path (SQLite) or an URL string (``postgresql://...``)."""
    if isinstance(path_or_url, str) and "://" in path_or_url:
        return make_url(path_or_url)
    return URL.create("sqlite", database=os.fspath(path_or_url))


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _text(value: str) -> str:
    """Text the database can store: lone surrogates (from undecodable output) become escapes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _install_sqlite_pragmas(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and transactions that begin when SQLAlchemy says so.

    Python's sqlite3 module opens transactions lazily (at the first write), so
    a read-then-write transaction can fail with "database is locked" without
    waiting. As SQLAlchemy's documentation recommends, the driver's own
    transaction handling is switched off and ``BEGIN`` is emitted here;
    writers use ``BEGIN IMMEDIATE`` so that they queue on the busy timeout.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Gradebook:
    """The gradebook of one output folder (or one database server).

    ``Gradebook(OUT / "gradebook.sqlite")`` opens (and creates) a SQLite file;
    ``Gradebook("postgresql+psycopg://...")`` any SQLAlchemy database. Use it
    as a context manager, or call :meth:`close`.
    """

    def __init__(self, path_or_url: str | os.PathLike[str]) -> None:
        url = database_url(path_or_url)
        self.url = url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        self._engine = create_engine(url)
        if self._engine.dialect.name == "sqlite":
            _install_sqlite_pragmas(self._engine)
            self._writer = self._engine.execution_options(sqlite_immediate=True)
        else:
            self._writer = self._engine
        _Base.metadata.create_all(self._engine)

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        """Release every connection (the SQLite file stays consistent whether or not this is called)."""
        self._engine.dispose()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gradebook({self.url.render_as_string(hide_password=True)!r})"

    # -- batches -------------------------------------------------------------------

    def record_batch(self, info: BatchInfo) -> None:
        """Insert the batch, or update it (same ``batch_id``); it becomes the assignment's current batch."""
        with Session(self._writer) as session, session.begin():
            self._upsert_batch(session, info, touch=True)

    def batch_for(self, assignment: str) -> BatchInfo | None:
        """The batch recorded last for ``assignment`` (to resume or regrade it with its seed), if any."""
        with Session(self._engine) as session:
            row = session.scalars(
                select(_BatchRow)
                .where(_BatchRow.assignment == assignment)
                .order_by(_BatchRow.updated_at.desc(), _BatchRow.created_at.desc(), _BatchRow.batch_id.desc())
                .limit(1)
            ).first()
            return None if row is None else _batch_info(row)

    def batch_infos(self) -> dict[str, BatchInfo]:
        """``{assignment: its current batch}`` (what :meth:`batch_for` gives) for every assignment."""
        with Session(self._engine) as session:
            rows = session.scalars(select(_BatchRow).order_by(_BatchRow.updated_at, _BatchRow.created_at))
            return {row.assignment: _batch_info(row) for row in rows}  # the latest wins

    @staticmethod
    def _upsert_batch(session: Session, info: BatchInfo, *, touch: bool) -> None:
        now = _now()
        row = session.get(_BatchRow, info.batch_id)
        if row is None:
            row = _BatchRow(batch_id=info.batch_id, created_at=now, updated_at=now)
            session.add(row)
        elif not touch:
            return
        row.assignment = info.assignment
        row.assignment_version = info.assignment_version
        row.grader_version = info.grader_version
        row.seed = str(int(info.seed))
        row.device = info.device
        row.lang = info.lang
        row.sandbox = info.sandbox
        row.updated_at = now

    # -- submissions ---------------------------------------------------------------

    def save(self, result: SubmissionResult, batch: BatchInfo) -> None:
        """Store ``result`` (graded in ``batch``), replacing the student's previous grade, in one transaction.

        The batch is inserted if it is not recorded yet (it is left as it is
        otherwise: call :meth:`record_batch` to update it).
        """
        if result.assignment != batch.assignment:
            raise ValueError(
                f"result of {result.student!r} is for assignment {result.assignment!r}, "
                f"but the batch {batch.batch_id!r} is for {batch.assignment!r}"
            )
        with Session(self._writer) as session, session.begin():
            self._upsert_batch(session, batch, touch=False)
            bulk = {"synchronize_session": False}  # nothing of these rows is loaded in this session
            old = select(_SubmissionRow.id).where(
                _SubmissionRow.assignment == result.assignment, _SubmissionRow.student == result.student
            )
            # The foreign keys cascade too; deleting children explicitly keeps this
            # correct on a connection where foreign keys were left off.
            session.execute(delete(_CheckRow).where(_CheckRow.submission_id.in_(old)), execution_options=bulk)
            session.execute(delete(_CellRow).where(_CellRow.submission_id.in_(old)), execution_options=bulk)
            session.execute(
                delete(_SubmissionRow).where(
                    _SubmissionRow.assignment == result.assignment, _SubmissionRow.student == result.student
                ),
                execution_options=bulk,
            )
            session.add(_submission_row(result, batch.batch_id))

    def graded_hashes(self, assignment: str) -> dict[str, tuple[str, str, str]]:
        """``{student: (notebook_sha256, assignment_version, grader_version)}`` of stored grades, for resume.

        A submission whose notebook, assignment and grader are unchanged need
        not be graded again. Grader errors are left out: they are never final.
        """
        stmt = (
            select(
                _SubmissionRow.student,
                _SubmissionRow.notebook_sha256,
                _BatchRow.assignment_version,
                _BatchRow.grader_version,
            )
            .join(_BatchRow, _SubmissionRow.batch_id == _BatchRow.batch_id)
            .where(
                _SubmissionRow.assignment == assignment,
                _SubmissionRow.status != SubmissionStatus.GRADER_ERROR.value,
            )
        )
        with Session(self._engine) as session:
            return {student: (sha, av, gv) for student, sha, av, gv in session.execute(stmt)}

    def records(self, assignment: str | None = None) -> list[GradedRecord]:
        """Stored submissions with their batch and time, ordered by assignment and student."""
        stmt = (
            select(_SubmissionRow, _BatchRow)
            .join(_BatchRow, _SubmissionRow.batch_id == _BatchRow.batch_id)
            .options(selectinload(_SubmissionRow.checks), selectinload(_SubmissionRow.cells))
            .order_by(_SubmissionRow.assignment, _SubmissionRow.student)
        )
        if assignment is not None:
            stmt = stmt.where(_SubmissionRow.assignment == assignment)
        with Session(self._engine) as session:
            return [
                GradedRecord(_submission_result(sub), _batch_info(batch), _aware(sub.graded_at))
                for sub, batch in session.execute(stmt)
            ]

    def results(self, assignment: str | None = None) -> list[SubmissionResult]:
        """Stored results rebuilt as dataclasses, ordered by assignment and student."""
        return [record.result for record in self.records(assignment)]

    def students(self, assignment: str) -> list[str]:
        """Students with a stored grade for ``assignment``, sorted."""
        stmt = (
            select(_SubmissionRow.student)
            .where(_SubmissionRow.assignment == assignment)
            .order_by(_SubmissionRow.student)
        )
        with Session(self._engine) as session:
            return list(session.scalars(stmt))


# -- row <-> dataclass --------------------------------------------------------------


def _batch_info(row: _BatchRow) -> BatchInfo:
    return BatchInfo(
        batch_id=row.batch_id,
        assignment=row.assignment,
        assignment_version=row.assignment_version,
        grader_version=row.grader_version,
        seed=int(row.seed),
        device=row.device,
        lang=row.lang,
        sandbox=row.sandbox,
    )


def _json_list(values: Iterable[str]) -> str:
    return json.dumps([_text(str(v)) for v in values], ensure_ascii=False)


def _submission_row(result: SubmissionResult, batch_id: str) -> _SubmissionRow:
    return _SubmissionRow(
        batch_id=batch_id,
        assignment=result.assignment,
        student=result.student,
        path=_text(result.path),
        notebook_sha256=result.notebook_sha256,
        status=SubmissionStatus(result.status).value,
        score=result.score,
        max_score=result.max_score,
        message=_text(result.message),
        duration_s=float(result.duration_s),
        picked_from=_json_list(result.picked_from),
        graded_at=_now(),
        checks=[
            _CheckRow(
                position=i,
                question=c.question,
                check=c.check,
                status=Status(c.status).value,
                points=float(c.points),
                max_points=float(c.max_points),
                message=_text(c.message),
                hint=_text(c.hint),
                description=_text(c.description),
                duration_s=float(c.duration_s),
                tolerance=_text(c.tolerance),
            )
            for i, c in enumerate(result.checks)
        ],
        cells=[
            _CellRow(
                index=cell.index,
                status=cell.status,
                message=_text(cell.message),
                duration_s=float(cell.duration_s),
                defined=_json_list(cell.defined),
            )
            for cell in result.cells
        ],
    )


def _submission_result(row: _SubmissionRow) -> SubmissionResult:
    return SubmissionResult(
        student=row.student,
        assignment=row.assignment,
        path=row.path,
        notebook_sha256=row.notebook_sha256,
        status=SubmissionStatus(row.status),
        checks=[
            CheckResult(
                question=c.question,
                check=c.check,
                status=Status(c.status),
                points=c.points,
                max_points=c.max_points,
                message=c.message,
                hint=c.hint,
                description=c.description,
                duration_s=c.duration_s,
                tolerance=c.tolerance,
            )
            for c in row.checks
        ],
        cells=[
            CellOutcome(
                index=cell.index,
                status=cell.status,
                message=cell.message,
                duration_s=cell.duration_s,
                defined=list(json.loads(cell.defined or "[]")),
            )
            for cell in row.cells
        ],
        message=row.message,
        duration_s=row.duration_s,
        picked_from=list(json.loads(row.picked_from or "[]")),
    )
