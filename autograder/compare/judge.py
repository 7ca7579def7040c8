"""The judgement of one answer: mismatches and hints, shared by the grader and the self-check.

Pure and data-only like the rest of ``compare``: the grader calls it in its
trusted process on data decoded from the sandbox; the student's self-check
calls it in the student's own process on the public fixtures.
"""

from __future__ import annotations

from typing import Any

from autograder.checks import Case, text
from autograder.compare.core import compare
from autograder.compare.hints import detect


def judge_value(value: Any, case: Case, lang: str) -> tuple[list[Any], list[str]]:
    """Mismatches and hints for an answer (empty lists when it is acceptable).

    A custom judge says what is wrong in its mismatches' messages and *why* in their ``hints`` (plain or
    bilingual texts); those hints are taken out of the mismatches and returned as the check's hints.
    """
    if case.judge is not None:
        mismatches, hints = list(case.judge(value, case)), []
        for m in mismatches:
            hints += [text(h, lang) for h in getattr(m, "hints", ())]
            if getattr(m, "hints", None):
                m.hints = []
        return mismatches, list(dict.fromkeys(hints))
    mismatches = compare(value, case.expected, case.tolerance, case.output_names)
    if not mismatches:
        return [], []
    return mismatches, detect(value, case.expected, case.patterns, case.tolerance, lang)
