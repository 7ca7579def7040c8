"""Public fixtures: public checks frozen with a fixed seed, shipped to students.

``autograder release`` (:func:`autograder.release.public_fixtures`) builds
every ``public`` check once with :data:`PUBLIC_SEED` and writes
``assignments/<id>/public_tests.json``: the probe (inputs), the expected
answer, the tolerance, the bug patterns and the points the check is worth.
The self-check reads it back here into :class:`~autograder.checks.Case`
objects and judges answers exactly as the grader does. Hidden checks never
appear there, and a batch never uses the public seed, so these answers reveal
nothing the grader will ask.

This module is student-side (it ships in the self-check's wheel): it only
reads fixtures, with numpy and the pure ``checks`` dataclasses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .checks import BugPattern, Call, Case, Check, FunctionArg, Probe, Question, Ref, Tolerance

if TYPE_CHECKING:  # instructor-side types, never imported by the student's client
    from .grade.cases import PreparedCheck
    from .spec import AssignmentSpec

PUBLIC_SEED = 20240901
FORMAT = 1


def to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__array__": {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}}
    if isinstance(value, np.generic):
        return to_json(np.asarray(value))
    if isinstance(value, tuple):
        return {"__tuple__": [to_json(v) for v in value]}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[k, to_json(v)] for k, v in value.items()]}
    return value


def from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if "__array__" in value:
            spec = value["__array__"]
            return np.array(spec["data"], dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
        if "__tuple__" in value:
            return tuple(from_json(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: from_json(v) for k, v in value["__dict__"]}
        return {k: from_json(v) for k, v in value.items()}
    return value


def _unplain(node: Any) -> Any:
    """Plain probe data back into :class:`Ref` / :class:`FunctionArg` objects."""
    if isinstance(node, dict) and set(node) == {"__ref__"}:
        step, item, arg = node["__ref__"]
        return Ref(step, item, arg)
    if isinstance(node, dict) and set(node) == {"__fn__", "params"}:
        return FunctionArg(node["__fn__"], _unplain(node["params"]))
    if isinstance(node, dict):
        return {k: _unplain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_unplain(v) for v in node)
    return node


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=False) + "\n"


class PublicAssignment:
    """An assignment as the student side knows it: questions and public checks."""

    def __init__(self, document: dict[str, Any], path: Path | None = None) -> None:
        if document.get("format") != FORMAT:
            raise ValueError(f"{path}: formato de pruebas públicas desconocido")
        self.path = path
        self.document = document
        self.id: str = document["assignment"]
        self.version: str = document["version"]
        self.questions = [Question(q["id"], q["title"], q["points"], q["functions"]) for q in document["questions"]]

    @classmethod
    def load(cls, path: Path) -> PublicAssignment:
        return cls(json.loads(path.read_text(encoding="utf-8")), path)

    def points(self, question: str, check: str) -> float | None:
        """The points ``question``/``check`` is worth in the grade (``None`` in fixtures without them)."""
        for raw in self.document["checks"]:
            if raw["question"] == question and raw["name"] == check:
                return raw.get("points")
        return None

    def spec(self, root: Path) -> AssignmentSpec:
        """A spec for running the public checks (no examples, no hidden tests): ``autograder check``."""
        from .spec import AssignmentSpec, Limits

        doc = self.document
        spec = AssignmentSpec(
            id=self.id, version=self.version, title=doc["title"], root=root, solution_notebook=root,
            stub_name="", needs_torch=doc["needs_torch"], forbidden_modules=doc["forbidden_modules"],
            limits=Limits(**doc["limits"]), questions=self.questions, examples=[],
        )
        spec.checks = [check for check, _ in self.checks()]
        return spec

    def prepared(self) -> list[PreparedCheck]:
        """The public checks as the grader prepares them (``autograder check``)."""
        from .grade.cases import PreparedCheck

        return [PreparedCheck(check, case) for check, case in self.checks()]

    def checks(self) -> list[tuple[Check, Case]]:
        """Every public check with its frozen case, in the assignment's order."""
        out = []
        for raw in self.document["checks"]:
            probe_plain = from_json(raw["probe"])
            probe = Probe(
                steps=[Call(s["name"], s["function"], tuple(_unplain(s["args"])), _unplain(s["kwargs"]))
                       for s in probe_plain["steps"]],
                outputs=_unplain(probe_plain["outputs"]),
            )
            case = Case(
                probe=probe,
                expected=from_json(raw["expected"]),
                tolerance=Tolerance(*raw["tolerance"]),
                output_names=raw["output_names"],
                patterns=[BugPattern(p["kind"], p["message"], from_json(p["data"]), p["output"]) for p in raw["patterns"]],
            )
            check = Check(raw["question"], raw["name"], raw["description"], build=lambda rng, c=case: c,
                          weight=raw["weight"], public=True, timeout_s=raw["timeout_s"])
            out.append((check, case))
        return out
