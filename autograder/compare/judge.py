"""The judgement of one answer: mismatches and hints, shared by the grader and the self-check.

Pure and data-only like the rest of ``compare``: the grader calls it in its
trusted process on data decoded from the sandbox; the student's self-check
calls it in the student's own process on the public fixtures.
"""

from __future__ import annotations

from typing import Any

from autograder.checks import Case
from autograder.compare.core import compare
from autograder.compare.hints import detect


def judge_value(value: Any, case: Case, lang: str) -> tuple[list[Any], list[str]]:
    """Mismatches and hints for an answer (empty lists when it is acceptable)."""
    if case.judge is not None:
        return list(case.judge(value, case)), []
    mismatches = compare(value, case.expected, case.tolerance, case.output_names)
    if not mismatches:
        return [], []
    return mismatches, detect(value, case.expected, case.patterns, case.tolerance, lang)
