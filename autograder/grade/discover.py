"""Finding the submissions in a folder, whatever layout they came in.

Accepted layouts (they may be mixed):

* ``SUBMISSIONS/<student>/*.ipynb`` (one folder per student);
* nbgrader's ``submitted/<student>/<assignment>/*.ipynb``;
* a flat folder of ``<student>.ipynb`` files (LMS downloads; Colab's
  "Copia de ..." / "Copy of ..." prefixes are dropped from the name).

Every student folder and every loose file becomes a submission, even when no
notebook is in it, so that nothing is silently skipped: the grader then
records why it could not be graded. Where a folder holds several candidates,
:func:`pick` chooses one and the result says which and among what.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOK_SUFFIXES = (".ipynb", ".py")
IGNORED_PARTS = {".ipynb_checkpoints", "__pycache__", ".git", "__MACOSX"}
COPY_PREFIX = re.compile(r"^(copia de|copy of|copia di|cópia de)\s+", re.I)


@dataclass
class Submission:
    student: str
    path: Path
    candidates: list[Path] = field(default_factory=list)

    @property
    def picked_from(self) -> list[str]:
        return [c.name for c in self.candidates] if len(self.candidates) > 1 else []


def student_name(file_stem: str) -> str:
    """A student's name from a loose file's name (Colab copy prefixes dropped)."""
    return COPY_PREFIX.sub("", file_stem).strip() or file_stem


def _visible(path: Path) -> bool:
    return not (IGNORED_PARTS & set(path.parts)) and not path.name.startswith(".")


def _declared_assignment(path: Path) -> str | None:
    if path.suffix != ".ipynb":
        return None
    try:
        with path.open("rb") as fh:
            head = fh.read(2 * 1024 * 1024)
        meta = json.loads(head).get("metadata", {}).get("autograder", {})
        return meta.get("assignment") if isinstance(meta, dict) else None
    except (ValueError, OSError, AttributeError):
        return None  # huge or broken: the grader will say what is wrong with it


def pick(candidates: list[Path], assignment: str) -> Path:
    """The rule: a notebook released for this assignment, then one whose name has the
    assignment's id, then ``.ipynb`` over ``.py``, then the most recently modified."""

    def rank(p: Path) -> tuple[int, int, int, float]:
        return (
            _declared_assignment(p) == assignment,
            assignment.lower() in p.name.lower(),
            p.suffix == ".ipynb",
            p.stat().st_mtime,
        )

    return max(candidates, key=rank)


def discover(root: Path, assignment: str) -> list[Submission]:
    """Every submission under ``root``, one per student, sorted by student."""
    if not root.is_dir():
        raise FileNotFoundError(f"no existe la carpeta de entregas {root}")
    found: dict[str, Submission] = {}
    for entry in sorted(root.iterdir()):
        if not _visible(entry):
            continue
        if entry.is_file():
            student = student_name(entry.stem)
            found.setdefault(student, Submission(student, entry, [entry]))
            continue
        if not entry.is_dir():
            continue
        nested = entry / assignment  # nbgrader: submitted/<student>/<assignment>/
        base = nested if nested.is_dir() else entry
        files = sorted(p for p in base.rglob("*") if p.is_file() and _visible(p.relative_to(root)))
        notebooks = [p for p in files if p.suffix in NOTEBOOK_SUFFIXES]
        candidates = notebooks or files
        if not candidates:
            found[entry.name] = Submission(entry.name, entry, [])
            continue
        found[entry.name] = Submission(entry.name, pick(candidates, assignment), candidates)
    return [found[k] for k in sorted(found)]
