"""Result records: what grading one submission produces.

Plain dataclasses shared by the grader (``grade``), the gradebook (``store``)
and the student-facing reports. They hold no behaviour beyond small derived
properties, so that every layer agrees on one shape of a result.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    """Outcome of one check (and, summarised, of one submission)."""

    PASS = "pass"
    FAIL = "fail"  # ran and answered, but the answer is wrong
    ERROR = "error"  # the student's code raised, or returned something unusable
    TIMEOUT = "timeout"  # the student's code ran past its time limit
    CRASH = "crash"  # the student's process died (os._exit, segfault, memory)
    MISSING = "missing"  # the function the check needs is not defined
    FORBIDDEN = "forbidden"  # a forbidden shortcut (e.g. torch in a numpy assignment)
    NOT_RUN = "not_run"  # never attempted (submission cap reached, invalid notebook)


class SubmissionStatus(str, enum.Enum):
    """Overall outcome of grading one submission."""

    GRADED = "graded"  # the notebook ran; its checks were scored (whatever they gave)
    INVALID = "invalid"  # the file is not a usable notebook; scored zero, with the reason
    GRADER_ERROR = "grader_error"  # a fault on our side; never the student's fault


@dataclass
class CheckResult:
    """The outcome of one check of one question."""

    question: str
    check: str
    status: Status
    points: float
    max_points: float
    message: str = ""
    hint: str = ""
    description: str = ""
    duration_s: float = 0.0
    tolerance: str = ""

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS


@dataclass
class CellOutcome:
    """How one code cell of the notebook ran in the sandbox."""

    index: int  # position among the notebook's cells (0-based, markdown included)
    status: str  # "ok", "error", "timeout", "crash", "skipped"
    message: str = ""
    duration_s: float = 0.0
    defined: list[str] = field(default_factory=list)


@dataclass
class SubmissionResult:
    """Everything recorded about grading one student's notebook."""

    student: str
    assignment: str
    path: str
    notebook_sha256: str
    status: SubmissionStatus
    checks: list[CheckResult] = field(default_factory=list)
    cells: list[CellOutcome] = field(default_factory=list)
    message: str = ""
    duration_s: float = 0.0
    picked_from: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 6)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 6)

    def question_scores(self) -> dict[str, tuple[float, float]]:
        """``{question: (points, max_points)}`` in check order."""
        totals: dict[str, tuple[float, float]] = {}
        for c in self.checks:
            got, out_of = totals.get(c.question, (0.0, 0.0))
            totals[c.question] = (got + c.points, out_of + c.max_points)
        return {q: (round(a, 6), round(b, 6)) for q, (a, b) in totals.items()}


@dataclass(frozen=True)
class BatchInfo:
    """Provenance shared by every result of one batch: what makes a grade defensible."""

    batch_id: str
    assignment: str
    assignment_version: str
    grader_version: str
    seed: int
    device: str
    lang: str
    sandbox: str  # "bwrap+setpriv", "bwrap-userns", or "none (INSECURE)"
