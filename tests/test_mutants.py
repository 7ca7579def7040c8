"""The mutant generator (``autograder/mutants.py``): a smoke test. The full measurement is
``scripts/mutants.py`` (minutes), quoted in ``docs/MUTANTS.md``; here only what keeps it honest."""

from __future__ import annotations

import ast
import json

import pytest

from autograder.grade.cases import new_seed
from autograder.mutants import BUGS, OPERATORS, Rewrite, generate, grade_mutants, mutants_of, names_bug, strip_markers
from autograder.release import BEGIN, END

CELL = '''\
import numpy as np


def helper(x):
    return x.mean()  # scaffolding: never mutated


def layer(x, W, b, lr, p):
    """Docstring."""
    ### BEGIN SOLUTION
    out = x @ W + b
    m = (out > 0) * out
    s = np.exp(out - out.max(axis=1, keepdims=True))
    loss = -np.log(s.sum(axis=1)).mean() / len(x)
    p -= lr * W
    return loss, np.maximum(m, 0)
    ### END SOLUTION
'''


def notebook(*sources: str) -> dict:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# título"}]
    cells += [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": s} for s in sources]
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


def test_generic_operators_plant_one_named_bug_each_in_solution_code_only():
    mutants = generate(notebook(CELL), "99_demo", "1.0")
    changes = {m.what for m in mutants}
    for expected in ("`.mean(...)` → `.sum(...)`", "`out > 0` → `>=`",
                     "`W` → `W.T`", "sin `+ b`", "sin `keepdims=True`", "`axis=1` → `axis=0`",
                     "sin dividir por `len(x)`", "`p -= ...` → `+=`", "sin `np.maximum(m, 0)`"):
        assert expected in changes, (expected, sorted(changes))
    assert {m.function for m in mutants} == {"layer"}  # ``helper`` is scaffolding: never mutated
    assert len({m.id for m in mutants}) == len(mutants)
    original = ast.dump(ast.parse(strip_markers(CELL)))
    for m in mutants:
        assert m.bug in BUGS and m.assignment == "99_demo"
        assert m.notebook["metadata"]["autograder"] == {"assignment": "99_demo", "version": "1.0"}
        source = m.notebook["cells"][1]["source"]
        assert not any(BEGIN.match(line) or END.match(line) for line in source.splitlines())
        assert ast.dump(ast.parse(source)) != original  # parses, and means something else


def test_a_padding_or_stride_parameter_ignored_in_every_use_of_the_solution():
    cell = ("def pad(x, padding=0, stride=1):\n"
            "    n = padding  # scaffolding: stays\n"
            "    ### BEGIN SOLUTION\n"
            "    h = x.shape[0] + 2 * padding\n"
            "    return x[::stride] * padding + h\n"
            "    ### END SOLUTION\n")
    mutants = {m.what: m for m in generate(notebook(cell), "x", "1", operators=["hyperparameter"])}
    assert set(mutants) == {"`padding` ignorado (cada uso → `0`)", "`stride` ignorado (cada uso → `1`)"}
    source = mutants["`padding` ignorado (cada uso → `0`)"].notebook["cells"][1]["source"]
    assert "n = padding" in source and "2 * 0" in source and "x[::stride] * 0" in source
    assert mutants["`padding` ignorado (cada uso → `0`)"].bug == "padding"


def test_generation_is_deterministic_and_filterable():
    first = [(m.id, m.what) for m in generate(notebook(CELL), "x", "1")]
    assert first == [(m.id, m.what) for m in generate(notebook(CELL), "x", "1")]
    only = generate(notebook(CELL), "x", "1", operators=["compare"])
    assert only and all(m.operator == "compare" and m.bug == "strict" for m in only)
    assert generate(notebook(CELL), "x", "1", functions=["helper"]) == []


def test_rewrites_apply_exactly_once_or_say_why():
    edit = Rewrite("layer", "out = x @ W + b", "out = x @ W + b.sum()", "bias", "el sesgo sumado")
    mutants = generate(notebook(CELL), "x", "1", rewrites=[edit], operators=[])
    assert [m.what for m in mutants] == ["el sesgo sumado"]
    with pytest.raises(ValueError, match="exactamente una vez"):
        generate(notebook(CELL), "x", "1", rewrites=[Rewrite("layer", "no está", "x", "bias")], operators=[])
    with pytest.raises(ValueError, match="no define"):
        generate(notebook(CELL), "x", "1", rewrites=[Rewrite("otra", "a", "b", "bias")], operators=[])


def test_a_hint_names_a_bug_by_its_words_accents_and_case_aside():
    assert names_bug("Pista: falta DIVIDIR por N", "reduction")
    assert names_bug("La máscara de la ReLU", "activation")
    assert not names_bug("Probablemente la causa está en `linear_backward` (q2)", "transpose")
    assert names_bug("Tu forward se salta pool1", "layer", words=("pool1",))


def test_every_assignment_yields_mutants_of_its_own(course):
    for aid in course.assignment_ids():
        mutants = mutants_of(course.spec(aid))
        assert len(mutants) >= 10, aid
        assert len({m.operator for m in mutants}) >= 4, aid
        json.dumps(mutants[0].notebook)  # a plain notebook, ready to write
    assert set(OPERATORS) >= {"reduction", "transpose", "axis", "compare", "sign", "drop_call", "activation"}


@pytest.mark.slow
def test_two_mutants_graded_in_the_sandbox_get_the_hint_that_names_them(backprop, sandbox_mode, tmp_path):
    wanted = {"relu_backward.compare.1", "linear_backward.reduction.1"}
    mutants = [m for m in mutants_of(backprop, functions=["relu_backward", "linear_backward"]) if m.id in wanted]
    assert {m.id for m in mutants} == wanted
    results = grade_mutants(backprop, mutants, tmp_path, jobs=2, seed=new_seed())
    for r in results:
        assert r.killed and r.right_hint, (r.mutant.id, r.failed, r.explanations)
        assert 0 < r.checks < len(backprop.checks)  # only the checks that reach the mutated function
