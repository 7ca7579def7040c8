"""The authoring API for tests: questions, checks, probes and bug patterns.

A *check* is data plus one plain function. ``Check.build(rng)`` runs in the
trusted grader process: it draws fresh inputs from ``rng``, computes the
expected answer with the reference implementation, and returns a :class:`Case`. The
case's :class:`Probe` is a small data-only program (calls of the student's
functions, with arrays as arguments) that the sandbox executes; what comes
back is plain data, compared with the expected answer here, in the trusted
process. No test code and no reference code ever reaches the student's
process: only the probe's inputs do.

Public checks (``public=True``) are built once with a fixed seed by
``autograder release`` and shipped as fixtures for the self-check; hidden
checks are built anew for every batch from the batch's seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Text = Mapping[str, str]  # {"es": ..., "en": ...}


@dataclass(frozen=True)
class Tolerance:
    """Allowed difference: ``|actual - expected| <= atol + rtol * |expected|``."""

    rtol: float
    atol: float

    def describe(self) -> str:
        return f"rtol={self.rtol:g}, atol={self.atol:g}"


FLOAT64 = Tolerance(rtol=1e-7, atol=1e-9)
"""For float64 code that follows the same formula in a different order."""


@dataclass(frozen=True)
class Ref:
    """Refers, inside a probe, to the result of an earlier step.

    ``Ref("fwd", 1)`` is item 1 of what step ``fwd`` returned (``Ref("fwd")``
    the whole value). ``Ref("fwd", arg=0)`` is step ``fwd``'s first positional
    argument *after* the call (to see in-place updates).
    """

    step: str
    item: int | str | None = None
    arg: int | None = None


@dataclass(frozen=True)
class FunctionArg:
    """A callable argument, built inside the sandbox from a fixed library.

    Probes carry only data, so a function argument (``numerical_gradient(f, x)``)
    names one of the runtime's pure functions (``autograder/execute/runtime/
    functions.py``) with its array parameters.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One step of a probe: call the student's ``function`` and keep the result as ``name``."""

    name: str
    function: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """A data-only program run in the sandbox: steps, then the outputs to send back."""

    steps: Sequence[Call]
    outputs: Any  # a (nested) structure of Ref, sent back as plain data

    @classmethod
    def call(cls, function: str, *args: Any, **kwargs: Any) -> Probe:
        """The common case: one call, send back its return value."""
        return cls(steps=[Call("out", function, args, kwargs)], outputs=Ref("out"))

    def functions(self) -> list[str]:
        return [s.function for s in self.steps]


@dataclass(frozen=True)
class BugPattern:
    """A known bug, recognised by the answer it produces.

    ``kind`` is one of ``compare.hints.PATTERN_KINDS``: ``"matches"`` (the
    answer equals ``data``, an array the buggy formula gives on the same
    inputs), ``"scaled"`` (the answer is the expected one times ``data``, a
    number such as the batch size), ``"transposed"``, ``"negated"``,
    ``"nonfinite"``, ``"unchanged"`` (equals ``data``, the input left as is),
    ``"shape"`` (the output's shape is wrong: a message on how its size is
    computed, used only where no other pattern explains the answer);
    or ``"raises"``: the probe raised an exception whose ``"Type: message"``
    contains ``data`` (a string), for bugs known by their error.
    ``output`` restricts it to one output (its path, e.g. ``"[1]"`` or
    ``"['W1']"``); ``None`` looks at every output.
    """

    kind: str
    message: Text
    data: Any = None
    output: str | None = None


Judge = Callable[[Any, "Case"], list[Any]]
"""A custom judgement for answers that are not compared to one expected value
(e.g. the accuracy of trained parameters). Runs in the trusted process and
returns mismatch records (empty when the answer is acceptable)."""


@dataclass
class Case:
    """One concrete instance of a check: inputs (in the probe), the expected answer, how to compare."""

    probe: Probe
    expected: Any = None
    tolerance: Tolerance = FLOAT64
    output_names: Mapping[str, str] = field(default_factory=dict)  # path -> readable name
    patterns: Sequence[BugPattern] = ()
    judge: Judge | None = None
    context: Mapping[str, Any] = field(default_factory=dict)  # extra data for the judge


@dataclass
class Check:
    """One test of one question; its points are ``weight`` shares of the question's."""

    question: str
    name: str
    description: Text
    build: Callable[[np.random.Generator], Case]
    weight: float = 1.0
    public: bool = False
    timeout_s: float | None = None  # None: the assignment's ``check_timeout_s``


@dataclass
class Question:
    """A graded unit of the assignment: the functions it asks for and its points."""

    id: str
    title: Text
    points: float
    functions: Sequence[str]
    uses: Sequence[str] = ()  # other student functions it calls (for root-cause messages)
    forbidden: Sequence[str] = ()  # dotted names its functions must not use ("torch.nn.Linear"); scores 0


def text(value: Text | str, lang: str) -> str:
    """Pick the ``lang`` version of a bilingual text (Spanish as fallback)."""
    if isinstance(value, str):
        return value
    return value.get(lang) or value.get("es") or next(iter(value.values()), "")


def probe_message(probe: Probe, seed: int | None = None) -> dict[str, Any]:
    """The probe as a plain-data request for the runner (the sandbox's, or the self-check's in the student's process)."""
    return {
        "op": "probe",
        "seed": seed,
        "steps": [
            {"name": s.name, "function": s.function, "args": _plain(list(s.args)), "kwargs": _plain(dict(s.kwargs))}
            for s in probe.steps
        ],
        "outputs": _plain(probe.outputs),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Ref):
        return {"__ref__": [value.step, value.item, value.arg]}
    if isinstance(value, FunctionArg):
        return {"__fn__": value.name, "params": _plain(dict(value.params))}
    if isinstance(value, Call):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.copy()
    return value
