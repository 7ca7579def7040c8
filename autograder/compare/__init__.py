"""Comparison of answers with the reference: pure, data-only, never executes student code.

``compare`` returns :class:`Mismatch` records, ``hints`` recognises known bugs
in a wrong answer, ``report`` renders both for people (Spanish or English).
"""

from autograder.compare.core import (
    KINDS,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MISSING,
    Mismatch,
    compare,
    describe,
    get_path,
    iter_leaves,
    name_for,
    parse_path,
)
from autograder.compare.hints import PATTERN_KINDS, RAISES, annotate, detect, error_hints, generic_hints
from autograder.compare.report import format_mismatch, format_mismatches

__all__ = [
    "KINDS",
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MISSING",
    "PATTERN_KINDS",
    "RAISES",
    "Mismatch",
    "annotate",
    "compare",
    "describe",
    "detect",
    "error_hints",
    "format_mismatch",
    "format_mismatches",
    "generic_hints",
    "get_path",
    "iter_leaves",
    "name_for",
    "parse_path",
]
