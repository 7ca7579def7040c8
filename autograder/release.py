"""From the solved notebook (the single source) to what students get.

``release(spec, course)`` writes ``assignments/<id>/``: the stub notebook,
where every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block becomes
``# TU CÓDIGO AQUÍ`` and ``raise NotImplementedError()`` (nbgrader's markers
and replacement, with its indentation rule), outputs cleared, the
assignment's id and version in the metadata; and ``public_tests.json``, the
public fixtures (:func:`public_fixtures`: the public checks built with the
fixed public seed, read back by the student's self-check in ``fixtures``).
The result is deterministic, so a test can prove that the committed stub is
in sync with the solution.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat

from .checks import probe_message
from .fixtures import FORMAT, PUBLIC_SEED, dumps, to_json
from .grade.cases import check_rng
from .spec import AssignmentSpec, Limits

BEGIN = re.compile(r"^(?P<indent>\s*)#+\s*BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*#+\s*END SOLUTION\s*$")
STUB_CODE = ("# TU CÓDIGO AQUÍ", "raise NotImplementedError()")
STUB_MARKDOWN = "TU RESPUESTA AQUÍ"


class ReleaseError(ValueError):
    """The solved notebook's markers are malformed."""


def strip_solutions(source: str, *, code: bool = True, where: str = "") -> str:
    """Replace each solution block of ``source`` with the stub lines, at the block's indentation."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise ReleaseError(f"{where}, línea {number}: BEGIN SOLUTION dentro de otro bloque")
            inside = True
            indent = begin.group("indent")
            out.extend(indent + s for s in (STUB_CODE if code else (STUB_MARKDOWN,)))
            continue
        if END.match(line):
            if not inside:
                raise ReleaseError(f"{where}, línea {number}: END SOLUTION sin BEGIN")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise ReleaseError(f"{where}: falta END SOLUTION")
    return "\n".join(out)


def make_stub(spec: AssignmentSpec) -> nbformat.NotebookNode:
    """The student's notebook, built from the solved one."""
    nb = nbformat.read(spec.solution_notebook, as_version=4)
    for index, cell in enumerate(nb.cells):
        where = f"{spec.solution_notebook.name}, celda {index}"
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, where=where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source, code=False, where=where)
    nb.metadata["autograder"] = {"assignment": spec.id, "version": spec.version}
    return nb


def public_fixtures(spec: AssignmentSpec) -> dict[str, Any]:
    """The JSON document of ``spec``'s public checks and what a student may know of the assignment."""
    checks = []
    for check in spec.checks:
        if not check.public:
            continue
        share = check.weight / sum(c.weight for c in spec.checks_of(check.question))
        case = check.build(check_rng(PUBLIC_SEED, check))
        if case.judge is not None:
            raise ValueError(f"{check.question}/{check.name}: una prueba con juez propio no puede ser pública")
        checks.append({
            "question": check.question,
            "name": check.name,
            "description": dict(check.description),
            "weight": check.weight,
            "points": round(spec.question(check.question).points * share, 6),  # what it is worth in the grade
            "timeout_s": check.timeout_s,
            "probe": to_json(probe_message(case.probe)),
            "expected": to_json(case.expected),
            "tolerance": [case.tolerance.rtol, case.tolerance.atol],
            "output_names": dict(case.output_names),
            "patterns": [{"kind": p.kind, "message": dict(p.message), "data": to_json(p.data), "output": p.output}
                         for p in case.patterns],
        })
    return {
        "format": FORMAT,
        "assignment": spec.id,
        "version": spec.version,
        "title": dict(spec.title),
        "needs_torch": spec.needs_torch,
        "forbidden_modules": list(spec.forbidden_modules),
        "limits": {k: getattr(spec.limits, k) for k in Limits.__dataclass_fields__},
        "questions": [{"id": q.id, "title": dict(q.title), "points": q.points, "functions": list(q.functions)}
                      for q in spec.questions],
        "checks": checks,
    }


def release(spec: AssignmentSpec, course: Path) -> list[Path]:
    """Write ``assignments/<id>/`` (stub and public fixtures); return the files written."""
    target = course / "assignments" / spec.id
    target.mkdir(parents=True, exist_ok=True)
    stub_path = target / spec.stub_name
    nbformat.write(make_stub(spec), stub_path)
    fixtures_path = target / "public_tests.json"
    fixtures_path.write_text(dumps(public_fixtures(spec)), encoding="utf-8")
    return [stub_path, fixtures_path]
