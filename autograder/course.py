"""The course folder: ``solutions/<id>/`` (instructor) and ``assignments/<id>/`` (students)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .spec import AssignmentSpec, SpecError, load_spec


class CourseError(ValueError):
    """The folder is not a course, or the assignment is unknown."""


class Course:
    """A course root: the current directory or ``--course DIR``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        if not (self.root / "solutions").is_dir():
            raise CourseError(
                f"{self.root} no parece la carpeta de un curso (falta solutions/); "
                "ejecuta el comando desde ella o usa --course CARPETA"
            )

    def assignment_ids(self) -> list[str]:
        """Every assignment with a spec, in order."""
        return sorted(p.parent.name for p in (self.root / "solutions").glob("*/spec.toml"))

    def spec(self, assignment: str) -> AssignmentSpec:
        if assignment not in self.assignment_ids():
            known = ", ".join(self.assignment_ids()) or "ninguna"
            raise CourseError(f"no conozco la tarea {assignment!r}; tareas: {known}")
        try:
            return _load(self.root / "solutions" / assignment)
        except SpecError as exc:
            raise CourseError(str(exc)) from exc

    def examples_dir(self, assignment: str) -> Path:
        return self.root / "solutions" / assignment / "examples"


@cache
def _load(root: Path) -> AssignmentSpec:
    return load_spec(root)
