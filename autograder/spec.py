"""Assignment specs: ``solutions/<id>/spec.toml`` and the hidden tests beside it.

The spec says what an assignment is (questions, points, limits, forbidden
modules, bundled examples with their expected outcomes); ``tests.py`` beside
it holds the checks. Both are instructor-only: they are loaded here, in the
trusted process, and never reach a student's process or bundle.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import ApiEntry, ApiError, parse_entry
from .checks import Check, Question


class SpecError(ValueError):
    """The assignment's spec or tests are malformed (an instructor's error)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission's sandboxed process."""

    cell_timeout_s: float = 20.0
    check_timeout_s: float = 10.0
    submission_cap_s: float = 120.0
    memory_mb: int = 1536
    cpu_s: int = 300  # CPU seconds for one sandboxed process (a backstop to the wall clock)
    max_processes: int = 64  # processes *and* threads of the sandbox uid
    max_open_files: int = 256
    max_file_mb: int = 64  # largest file the student may write (tmpfs, private)
    tmp_mb: int = 128  # size of the private /tmp
    output_kb: int = 256  # stdout/stderr kept for the report (the rest is drained and counted)


@dataclass(frozen=True)
class ExpectedOutcome:
    """What a bundled example must score: per question points, and a word its message must contain."""

    score: float
    questions: Mapping[str, float]
    statuses: Mapping[str, str] = field(default_factory=dict)
    messages: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    """A bundled submission (solution, stub, buggy, broken, hostile) and its expected outcome per device."""

    name: str
    file: Path
    description: str
    expected: Mapping[str, ExpectedOutcome]  # device -> outcome ("cpu", and "cuda" where it differs)

    def expected_on(self, device: str) -> ExpectedOutcome:
        return self.expected.get(device) or self.expected["cpu"]


@dataclass
class AssignmentSpec:
    """An assignment as the grader sees it."""

    id: str
    version: str
    title: Mapping[str, str]
    root: Path  # solutions/<id>
    solution_notebook: Path
    stub_name: str
    needs_torch: bool
    forbidden_modules: Sequence[str]
    limits: Limits
    questions: list[Question]
    examples: list[Example]
    checks: list[Check] = field(default_factory=list)
    api: list[ApiEntry] = field(default_factory=list)  # the pinned API table (``[[api]]``)

    @property
    def max_score(self) -> float:
        return float(sum(q.points for q in self.questions))

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    def checks_of(self, qid: str) -> list[Check]:
        return [c for c in self.checks if c.question == qid]


def _require(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise SpecError(f"{where}: falta la clave obligatoria {key!r}")
    return table[key]


def _outcome(raw: Mapping[str, Any], where: str) -> ExpectedOutcome:
    questions = dict(_require(raw, "questions", where))
    return ExpectedOutcome(
        score=float(raw.get("score", sum(questions.values()))),
        questions={k: float(v) for k, v in questions.items()},
        statuses=dict(raw.get("statuses", {})),
        messages=dict(raw.get("messages", {})),
    )


def _forbidden_names(raw: Any, where: str) -> list[str]:
    """A question's forbidden names: dotted Python names such as ``"torch.nn.Linear"``."""
    if not isinstance(raw, list) or not all(
        isinstance(n, str) and n and all(part.isidentifier() for part in n.split(".")) for n in raw
    ):
        raise SpecError(f"{where}: 'forbidden' debe ser una lista de nombres con puntos, p. ej. [\"torch.nn.Linear\"]; "
                        f"se leyó {raw!r}")
    return list(raw)


def load_spec(root: Path, *, with_checks: bool = True) -> AssignmentSpec:
    """Load ``root/spec.toml`` (and ``root/tests.py`` unless ``with_checks`` is false)."""
    path = root / "spec.toml"
    if not path.is_file():
        raise SpecError(f"{path}: no existe; cada tarea necesita un spec.toml")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: TOML inválido: {exc}") from exc
    where = str(path)
    known_limits = set(Limits.__dataclass_fields__)
    unknown = set(raw.get("limits", {})) - known_limits
    if unknown:
        raise SpecError(f"{where}: límites desconocidos {sorted(unknown)}; válidos: {sorted(known_limits)}")
    questions = [
        Question(
            id=_require(q, "id", where),
            title=dict(_require(q, "title", where)),
            points=float(_require(q, "points", where)),
            functions=list(_require(q, "functions", where)),
            uses=list(q.get("uses", [])),
            forbidden=_forbidden_names(q.get("forbidden", []), f"{where} [question {q.get('id')}]"),
        )
        for q in raw.get("questions", [])
    ]
    qids = {q.id for q in questions}
    examples = []
    for ex in raw.get("examples", []):
        name = _require(ex, "name", where)
        ewhere = f"{where} [example {name}]"
        expected = {"cpu": _outcome(_require(ex, "expected", ewhere), ewhere)}
        if "expected_cuda" in ex:
            expected["cuda"] = _outcome(ex["expected_cuda"], ewhere)
        for outcome in expected.values():
            stray = set(outcome.questions) - qids
            if stray:
                raise SpecError(f"{ewhere}: preguntas desconocidas {sorted(stray)}")
        examples.append(
            Example(
                name=name,
                file=root / _require(ex, "file", ewhere),
                description=ex.get("description", ""),
                expected=expected,
            )
        )
    try:
        api = [parse_entry(row, f"{where} [[api]] {i + 1}") for i, row in enumerate(raw.get("api", []))]
    except ApiError as exc:
        raise SpecError(str(exc)) from exc
    spec = AssignmentSpec(
        id=_require(raw, "id", where),
        version=str(_require(raw, "version", where)),
        title=dict(_require(raw, "title", where)),
        root=root,
        solution_notebook=root / raw.get("notebook", "solution.ipynb"),
        stub_name=raw.get("stub_name", f"{root.name}.ipynb"),
        needs_torch=bool(raw.get("needs_torch", False)),
        forbidden_modules=list(raw.get("forbidden_modules", [])),
        limits=Limits(**raw.get("limits", {})),
        questions=questions,
        examples=examples,
        api=api,
    )
    if spec.id != root.name:
        raise SpecError(f"{where}: id {spec.id!r} no coincide con la carpeta {root.name!r}")
    if with_checks:
        spec.checks = load_checks(root / "tests.py", qids)
    return spec


def load_checks(path: Path, question_ids: set[str]) -> list[Check]:
    """Import an assignment's ``tests.py`` and return its ``CHECKS`` list, validated."""
    if not path.is_file():
        raise SpecError(f"{path}: no existe; define CHECKS con las pruebas de la tarea")
    course_root = str(path.parent.parent.parent)  # tests import the course's reference_impl/
    if course_root not in sys.path:
        sys.path.insert(0, course_root)
    module_name = f"_autograder_tests_{path.parent.name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    checks = list(getattr(module, "CHECKS", []))
    if not checks:
        raise SpecError(f"{path}: CHECKS está vacío o no existe")
    seen: set[tuple[str, str]] = set()
    for check in checks:
        if check.question not in question_ids:
            raise SpecError(f"{path}: la prueba {check.name!r} cita la pregunta desconocida {check.question!r}")
        key = (check.question, check.name)
        if key in seen:
            raise SpecError(f"{path}: prueba repetida {key}")
        seen.add(key)
    missing = question_ids - {c.question for c in checks}
    if missing:
        raise SpecError(f"{path}: preguntas sin pruebas: {sorted(missing)}")
    return checks
