"""``autograder validate ID``: prove an assignment grades as its spec says.

The solution must get full marks, the released stub zero, and every bundled
example exactly its expected points per question (and, where the spec names
them, its statuses and a word of its message), on a fresh seed each time, so
that the expectations hold for any batch and not only for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .execute.sandbox import detect_mode
from .grade.batch import _run_pool
from .grade.cases import new_seed, prepare
from .grade.discover import Submission
from .grade.submission import GradeContext
from .results import SubmissionResult
from .spec import AssignmentSpec, ExpectedOutcome

POINT_TOLERANCE = 1e-3


@dataclass
class ExampleVerdict:
    name: str
    result: SubmissionResult
    expected: ExpectedOutcome
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def expected_outcomes(spec: AssignmentSpec, course: Path, device: str) -> list[tuple[str, Path, ExpectedOutcome]]:
    """Solution (full marks), released stub (zero), then every bundled example."""
    full = {q.id: q.points for q in spec.questions}
    zero = {q.id: 0.0 for q in spec.questions}
    items = [
        ("solution", spec.solution_notebook, ExpectedOutcome(spec.max_score, full)),
        ("stub", course / "assignments" / spec.id / spec.stub_name, ExpectedOutcome(0.0, zero)),
    ]
    items += [(ex.name, ex.file, ex.expected_on(device)) for ex in spec.examples if ex.name not in ("solution", "stub")]
    return items


def judge_example(name: str, result: SubmissionResult, expected: ExpectedOutcome) -> ExampleVerdict:
    verdict = ExampleVerdict(name, result, expected)
    got = result.question_scores()
    for qid, points in expected.questions.items():
        have = got.get(qid, (0.0, 0.0))[0]
        if abs(have - points) > POINT_TOLERANCE:
            detail = "; ".join(f"{c.check}={c.status.value}" for c in result.checks if c.question == qid)
            verdict.problems.append(f"{qid}: {have:g} puntos, se esperaban {points:g} ({detail})")
    if abs(result.score - expected.score) > POINT_TOLERANCE:
        verdict.problems.append(f"total {result.score:g}, se esperaba {expected.score:g}")
    for qid, status in expected.statuses.items():
        statuses = {c.status.value for c in result.checks if c.question == qid}
        if status not in statuses:
            verdict.problems.append(f"{qid}: ningún resultado con estado {status!r} (hay {sorted(statuses)})")
    for qid, word in expected.messages.items():
        texts = " ".join(c.message + " " + c.hint for c in result.checks if c.question == qid)
        if word.lower() not in texts.lower():
            verdict.problems.append(f"{qid}: el mensaje no menciona {word!r}: {texts[:300]!r}")
    return verdict


def validate(spec: AssignmentSpec, course: Path, *, jobs: int = 2, device: str = "cpu", lang: str = "es",
             insecure: bool = False, seed: int | None = None, pool: bool = True) -> list[ExampleVerdict]:
    """Grade the solution, the stub and every example; compare with the spec's expectations."""
    ctx = GradeContext(spec, prepare(spec.checks, seed if seed is not None else new_seed()),
                       detect_mode(insecure), lang, device)
    items = expected_outcomes(spec, course, device)
    todo = [Submission(name, path, [path]) for name, path, _ in items]
    results = {r.student: r for r in _run_pool(ctx, todo, jobs, pool=pool)}
    return [judge_example(name, results[name], expected) for name, _, expected in items]
