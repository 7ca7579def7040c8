"""Tests of the pure comparison core: compare, hints, report."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import FLOAT64, BugPattern, Tolerance
from autograder.compare import (
    MAX_DEPTH,
    MISSING,
    PATTERN_KINDS,
    Mismatch,
    annotate,
    compare,
    describe,
    detect,
    format_mismatch,
    format_mismatches,
    generic_hints,
    get_path,
    name_for,
    parse_path,
)

TOL = FLOAT64


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def kinds(ms: list[Mismatch]) -> list[tuple[str, str]]:
    return [(m.path, m.kind) for m in ms]


# --- compare: acceptable answers -----------------------------------------------------------


def test_identical_structures_give_no_mismatch(rng):
    grads = {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "n": 3, "tag": "x", "none": None}
    expected = (rng.normal(size=(2, 2)), [1.0, 2.5], grads)
    assert compare(expected, expected, TOL) == []


def test_within_tolerance_is_accepted(rng):
    e = rng.normal(size=(50, 20))
    a = e * (1 + 5e-8) + 5e-10
    assert compare(a, e, TOL) == []
    assert compare(e.astype(np.float32), e, Tolerance(rtol=1e-5, atol=1e-6)) == []


def test_float32_is_not_a_dtype_mismatch(rng):
    e = rng.normal(size=10)
    assert compare(e.astype(np.float32), e, Tolerance(rtol=1e-6, atol=1e-7)) == []
    ms = compare((e * 1.001).astype(np.float32), e, TOL)
    assert kinds(ms) == [("", "values")]  # the tolerance decides, not the dtype


def test_list_and_tuple_are_interchangeable(rng):
    e = (rng.normal(size=3), rng.normal(size=(2, 2)))
    assert compare(list(e), e, TOL) == []
    assert compare(tuple(e), list(e), TOL) == []


@pytest.mark.parametrize("actual", [2.5, np.float64(2.5), np.float32(2.5), np.array(2.5), np.array([2.5]), [2.5]])
def test_expected_scalar_accepts_scalar_forms(actual):
    assert compare(actual, 2.5, TOL) == []
    assert compare(actual, np.float64(2.5), TOL) == []
    assert compare(actual, np.array(2.5), TOL) == []


def test_python_int_for_float_scalar_is_fine():
    assert compare(3, 3.0, TOL) == []


def test_integer_labels_accept_integral_floats_and_other_int_dtypes():
    labels = np.array([0, 2, 1, 1], dtype=np.int64)
    assert compare(labels.astype(np.float64), labels, TOL) == []
    assert compare(labels.astype(np.int32), labels, TOL) == []
    assert compare(labels.astype(np.uint8), labels, TOL) == []
    ms = compare(np.array([0.0, 2.0, 1.0, 0.0]), labels, TOL)
    assert kinds(ms) == [("", "values")] and ms[0].max_abs_index == (3,)


def test_list_of_numbers_and_array_are_interchangeable():
    history = [2.3, 1.9, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.65, 0.6]
    assert compare(np.array(history), history, TOL) == []
    assert compare(tuple(history), history, TOL) == []
    assert compare(history, np.array(history), TOL) == []
    wrong = list(history)
    wrong[4] = 1.1
    ms = compare(wrong, history, TOL)
    assert kinds(ms) == [("", "values")] and ms[0].max_abs_index == (4,) and ms[0].n_mismatched == 1


def test_tuple_of_named_scalars_reports_each_item():
    ms = compare((2.3, 0.5), (2.3, 0.75), TOL, {"[0]": "loss", "[1]": "accuracy"})
    assert kinds(ms) == [("[1]", "values")]
    assert ms[0].name == "accuracy"


# --- compare: attributes -----------------------------------------------------------


def test_shape_n_vs_n1_is_a_mismatch(rng):
    e = rng.normal(size=5)
    ms = compare(e.reshape(5, 1), e, TOL)
    assert kinds(ms) == [("", "shape")]
    assert (ms[0].expected_desc, ms[0].actual_desc) == ("(5,)", "(5, 1)")


def test_shape_1_vs_scalar_only_relaxed_for_expected_scalars():
    assert kinds(compare(np.float64(1.0), np.array([1.0]), TOL)) == [("", "shape")]
    assert kinds(compare(np.array([1.0, 2.0]), 1.0, TOL)) == [("", "shape")]


def test_float_expected_int_array_is_dtype_mismatch():
    e = np.array([0.5, 1.5])
    ms = compare(np.array([0, 1]), e, TOL)
    assert kinds(ms) == [("", "dtype")]
    assert ms[0].expected_desc == "float64" and ms[0].actual_desc == "int64"
    assert kinds(compare(np.array([True, False]), e, TOL)) == [("", "dtype")]
    assert kinds(compare(np.array([1 + 0j, 2j]), e, TOL)) == [("", "dtype")]
    assert kinds(compare(np.array(["a", "b"]), e, TOL)) == [("", "dtype")]


def test_shape_checked_before_dtype_and_values():
    ms = compare(np.zeros((4, 3), dtype=int), np.ones((3, 4)), TOL)
    assert kinds(ms) == [("", "shape")]


def test_dict_keys_missing_and_extra_and_common_keys_still_compared():
    e = {"W1": np.ones(2), "b2": 1.0, "W2": np.ones(3)}
    a = {"W1": np.ones(2), "B2": 1.0, "W2": np.zeros(3)}
    ms = compare(a, e, TOL, {"['W2']": "dW2"})
    assert kinds(ms) == [("", "keys"), ("['W2']", "values")]
    assert ms[0].missing == ["'b2'"] and ms[0].extra == ["'B2'"]
    assert ms[1].name == "dW2"


def test_length_mismatch():
    ms = compare((1.0, 2.0, 3.0), (1.0, 2.0), TOL)
    assert kinds(ms) == [("", "length")]
    assert (ms[0].expected_desc, ms[0].actual_desc) == ("2", "3")


def test_nested_paths_like_torch(rng):
    e = ({"a": 1.0}, [np.zeros(2), {"b": np.ones((2, 2))}])
    a = ({"a": 1.0}, [np.zeros(2), {"b": np.eye(2)}])
    ms = compare(a, e, TOL)
    assert kinds(ms) == [("[1][1]['b']", "values")]
    assert get_path(a, ms[0].path) is a[1][1]["b"]
    assert ms[0].n_mismatched == 2 and ms[0].n_total == 4


def test_type_mismatches():
    cases = [
        (np.zeros(3), (np.zeros(3), np.zeros(2)), "tuple:2", "ndarray:(3,):float64"),
        (None, np.zeros(3), "ndarray:(3,):float64", "None"),
        ("0.5", 0.5, "number", "str"),
        ({"__unsupported__": "Tensor"}, np.zeros(3), "ndarray:(3,):float64", "unsupported:Tensor"),
        ({"__unsupported__": "Tensor"}, {"W": 1.0}, "dict:1", "unsupported:Tensor"),
        ([1.0, 2.0], {"W": 1.0}, "dict:1", "list:2"),
        (1.0, None, "None", "float"),
        (3, "relu", "str", "int"),
    ]
    for actual, expected, exp_desc, act_desc in cases:
        ms = compare(actual, expected, TOL)
        assert kinds(ms) == [("", "type")], (actual, expected)
        assert (ms[0].expected_desc, ms[0].actual_desc) == (exp_desc, act_desc)


def test_strings_and_none():
    assert compare("relu", "relu", TOL) == []
    assert compare(None, None, TOL) == []
    ms = compare("tanh", "relu", TOL)
    assert kinds(ms) == [("", "values")] and ms[0].actual_desc == "'tanh'"


# --- compare: non-finite values -----------------------------------------------------------


def test_nan_where_expected_finite_is_nonfinite_with_count_and_first_index():
    e = np.arange(12.0).reshape(3, 4)
    a = e.copy()
    a[1, 2] = np.nan
    a[2, 0] = np.inf
    ms = compare(a, e, TOL)
    assert kinds(ms) == [("", "nonfinite")]
    m = ms[0]
    assert (m.n_mismatched, m.n_total, m.first_index, m.actual_desc) == (2, 12, (1, 2), "nan")


def test_nonfinite_expected_matches_same_nonfinite_only():
    e = np.array([1.0, np.nan, np.inf, -np.inf])
    assert compare(e.copy(), e, TOL) == []
    ms = compare(np.array([1.0, 0.0, np.inf, np.inf]), e, TOL)
    assert kinds(ms) == [("", "values")]
    assert ms[0].n_mismatched == 2
    assert ms[0].max_abs_index in ((1,), (3,))


def test_scalar_nan_and_huge_int():
    assert kinds(compare(float("nan"), 1.0, TOL)) == [("", "nonfinite")]
    assert kinds(compare(10**400, 1.0, TOL)) == [("", "nonfinite")]
    assert kinds(compare(np.inf, np.inf, TOL)) == []


# --- compare: value statistics -----------------------------------------------------------


def test_greatest_differences_and_their_indices(rng):
    e = rng.uniform(1, 2, size=(4, 10))
    a = e.copy()
    a[2, 1] += 0.0231  # the greatest absolute difference
    a[0, 3] = e[0, 3] * 1.5 if e[0, 3] * 0.5 < 0.0231 else e[0, 3] + 0.01
    e[3, 3] = 0.0
    a[3, 3] = 1e-3  # relative difference inf
    ms = compare(a, e, TOL)
    assert kinds(ms) == [("", "values")]
    m = ms[0]
    assert (m.n_mismatched, m.n_total) == (3, 40)
    assert m.max_abs_index == (2, 1) and m.max_abs == pytest.approx(0.0231)
    assert m.max_rel_index == (3, 3) and m.max_rel == np.inf
    assert m.tolerance == TOL


def test_greatest_difference_counts_only_mismatched_elements():
    e = np.array([1e9, 1.0])
    a = np.array([1e9 + 50, 1.5])  # 50 is within rtol * 1e9 = 100
    m = compare(a, e, TOL)[0]
    assert (m.n_mismatched, m.max_abs_index, m.max_abs) == (1, (1,), 0.5)


def test_two_million_elements_locate_the_one_difference(rng):
    e = rng.normal(size=2_000_000)
    a = e.copy()
    a[1_234_567] += 1.0
    ms = compare(a, e, TOL)
    same = compare(e.copy(), e, TOL)
    assert same == [] and ms[0].max_abs_index == (1_234_567,) and ms[0].n_mismatched == 1


def test_huge_actual_array_is_a_shape_mismatch_without_elementwise_work():
    huge = np.broadcast_to(np.float64(0.0), (60_000_000,))  # no memory behind it
    ms = compare(huge, np.zeros(10), TOL)
    assert kinds(ms) == [("", "shape")]
    ms = compare(np.broadcast_to(np.float64(0.0), (60_000_000,)), 0.0, TOL)
    assert kinds(ms) == [("", "shape")]


# --- compare: garbage never raises -----------------------------------------------------------


def deep_list(depth: int) -> list:
    x: list = [1.0]
    for _ in range(depth):
        x = [x]
    return x


GARBAGE = [
    {"__unsupported__": "X"},
    "a string",
    None,
    b"bytes",
    deep_list(1000),
    [[1.0, 2.0], [3.0]],
    [None, {"a": 1}],
    {"W1": None, 3: "x"},
    np.array(["a", "b"]),
    np.zeros((0,)),
    np.zeros((2, 0, 3)),
    np.array(1.0 + 2j),
    np.zeros(3, dtype=[("x", "f8")]),
    np.array(["2020-01-01"], dtype="datetime64[D]"),
    10**400,
    -(10**400),
    float("nan"),
    True,
    (),
    [],
    {},
    object(),
]
EXPECTED = [
    np.zeros((2, 3)),
    1.0,
    (np.zeros(2), np.zeros(3)),
    {"W1": np.zeros(2), "b1": 0.0},
    [1.0, 2.0, 3.0],
    np.array([1, 2, 3]),
    "relu",
    None,
    deep_list(3),
]


@pytest.mark.parametrize("actual", GARBAGE, ids=lambda x: type(x).__name__)
def test_garbage_never_raises_and_is_a_mismatch(actual):
    for expected in EXPECTED:
        ms = compare(actual, expected, TOL)
        assert isinstance(ms, list)
        assert all(m.kind in ("type", "length", "keys", "shape", "dtype", "nonfinite", "values", "custom") for m in ms)
        for m in ms:
            assert format_mismatch(m, "es") and format_mismatch(m, "en")
        detect(actual, expected, [BugPattern("scaled", "x", data=2.0)], TOL)
        generic_hints(actual, expected, TOL)
    assert compare(actual, np.zeros((2, 3)), TOL) != []


def test_deep_structures_are_cut_off():
    ms = compare(deep_list(1000), deep_list(1000), TOL)
    assert [m.kind for m in ms] == ["custom"]
    assert ms[0].path.count("[") == MAX_DEPTH + 1
    assert compare(deep_list(20), deep_list(20), TOL) == []


# --- paths -----------------------------------------------------------


def test_paths_round_trip():
    obj = ({"W1": [np.arange(3), 7]}, "x", {"we]ird'": 1, 3: "three"})
    assert parse_path("[0]['W1'][1]") == [0, "W1", 1]
    assert get_path(obj, "[0]['W1'][1]") == 7
    assert get_path(obj, "[0]['W1'][0][2]") == 2
    assert get_path(obj, "[2]" + "[" + repr("we]ird'") + "]") == 1
    assert get_path(obj, "[2][3]") == "three"
    assert get_path(obj, "") is obj
    for bad in ("[5]", "[0]['W2']", "[1][0]", "[0", "junk", "[-1]", "[0]['W1'][0][9]", "[__import__('os')]"):
        assert get_path(obj, bad) is MISSING


def test_name_for_uses_nearest_named_ancestor():
    names = {"": "grads", "[1]": "db"}
    assert name_for("[1]", names) == "db"
    assert name_for("[0]['W1']", names) == "grads[0]['W1']"
    assert name_for("[1][2]", {"[1]": "db", "[12]": "x"}) == "db[2]"
    assert name_for("[12]", {"[1]": "db"}) == ""


def test_describe_codes():
    assert describe(np.float64(1.0)) == "scalar:float64"
    assert describe(1.0) == "float"
    assert describe((1, 2)) == "tuple:2"
    assert describe(np.zeros((2, 3), np.float32)) == "ndarray:(2, 3):float32"


# --- hints: authored patterns -----------------------------------------------------------

MSG = {"es": "¿promedias db en vez de sumarlo?", "en": "averaging db instead of summing it?"}


def linear_grads(rng: np.random.Generator, n: int = 8):
    x, dout = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    return x.T @ dout, dout.sum(axis=0)  # dW, db


def test_scaled_pattern_db_averaged_instead_of_summed(rng):
    dW, db = linear_grads(rng, n=8)
    buggy = (dW, db / 8)
    pattern = BugPattern("scaled", MSG, data=1 / 8, output="[1]")
    assert detect(buggy, (dW, db), [pattern], TOL) == [MSG["es"]]
    assert detect(buggy, (dW, db), [pattern], TOL, lang="en") == [MSG["en"]]
    assert detect((dW, db), (dW, db), [pattern], TOL) == []  # right answer: no hint
    wrong_output = BugPattern("scaled", MSG, data=1 / 8, output="[0]")
    assert detect(buggy, (dW, db), [wrong_output], TOL, generic=False) == []
    anywhere = BugPattern("scaled", MSG, data=1 / 8)
    assert detect(buggy, (dW, db), [anywhere], TOL) == [MSG["es"]]


def test_generic_scaled_detects_batch_size(rng):
    dW, db = linear_grads(rng, n=32)
    hints = detect((dW, db / 32), (dW, db), [], TOL, output_names={"[1]": "db"})
    assert hints == ["db: tu resultado es 1/32 del esperado: ¿una media donde va una suma (o al revés), o falta o "
                     "sobra dividir por un tamaño, como el del lote?"]
    hints = generic_hints(dW * 32, dW, TOL, lang="en")
    assert hints == ["your result is 32 times the expected one: a mean where a sum belongs (or the other way round), "
                     "or a missing or extra division by a size, such as the batch size?"]
    assert "0.73" in generic_hints(dW * 0.73, dW, TOL)[0]
    assert "factor 2" in generic_hints(dW * 2, dW, TOL)[0]
    assert generic_hints(np.float64(0.73), np.float64(1.0), TOL) == []  # any number is c times another: no guess
    assert "3 veces" in generic_hints(np.float64(3.0), np.float64(1.0), TOL)[0]  # but a whole factor is a count


def test_generic_transposed_negated_nonfinite(rng):
    e = rng.normal(size=(3, 5))
    assert "traspuesto" in generic_hints(e.T, e, TOL)[0]
    square = rng.normal(size=(4, 4))
    assert "transpose" in generic_hints(square.T, square, TOL, "en")[0]
    symmetric = square + square.T
    assert generic_hints(symmetric.T, symmetric, TOL) == []  # right answer
    assert "signo" in generic_hints(-e, e, TOL)[0]
    bad = e.copy()
    bad[0, 0] = np.nan
    assert generic_hints(bad, e, TOL) == ["valores no finitos (NaN/inf): ¿una exponencial sin estabilizar o un log(0)?"]
    assert generic_hints(rng.normal(size=(3, 5)), e, TOL) == []  # unrelated: no guess
    assert generic_hints(np.zeros((3, 5)), np.zeros((3, 5)), TOL) == []


def test_generic_only_when_no_authored_pattern_matched(rng):
    e = rng.normal(size=(3, 3))
    authored = BugPattern("negated", {"es": "gradiente ascendente", "en": "gradient ascent"})
    assert detect(-e, e, [authored], TOL) == ["gradiente ascendente"]
    never = BugPattern("scaled", "never", data=5.0)
    assert "signo" in detect(-e, e, [never], TOL)[0]


def test_authored_kinds(rng):
    e = rng.normal(size=(3, 4))
    params = rng.normal(size=(3, 4))
    assert detect(e.T, e, [BugPattern("transposed", "T")], TOL) == ["T"]
    assert detect(params, e, [BugPattern("unchanged", "U", data=params)], TOL) == ["U"]
    buggy = np.maximum(e, 0)
    assert detect(buggy, e, [BugPattern("matches", "M", data=buggy)], TOL) == ["M"]
    with_nan = e.copy()
    with_nan[1, 1] = np.inf
    assert detect(with_nan, e, [BugPattern("nonfinite", "N")], TOL) == ["N"]
    assert detect(e, e, [BugPattern(k, k, data=e) for k in PATTERN_KINDS], TOL) == []


def test_matches_pattern_on_whole_structure_and_output_path(rng):
    e = {"W1": rng.normal(size=(2, 2)), "b1": rng.normal(size=2)}
    buggy = {"W1": e["W1"], "b1": e["b1"] * 0 + 1}
    whole = BugPattern("matches", "whole", data=buggy)
    part = BugPattern("matches", "part", data=buggy["b1"], output="['b1']")
    other = BugPattern("matches", "other", data=e["W1"] + 1, output="['W1']")
    assert detect(buggy, e, [whole, part, other], TOL) == ["whole", "part"]


def test_patterns_never_raise(rng):
    e = rng.normal(size=(3, 4))
    weird = [
        BugPattern("scaled", "a", data="two"),
        BugPattern("scaled", "b", data=None),
        BugPattern("matches", "c", data={"__unsupported__": "Y"}),
        BugPattern("no-such-kind", "d"),
        BugPattern("transposed", "e", output="[[[["),
        BugPattern("negated", "f", output="[0]"),
        BugPattern("unchanged", "g", data=object()),
        BugPattern("scaled", "h", data=np.array([1.0, 2.0])),
    ]
    for actual in [*GARBAGE, e * 2]:
        hints = detect(actual, e, weird, TOL)
        assert all(isinstance(h, str) and len(h) > 1 for h in hints)  # only generic ones
    assert detect(e * 2, e, weird, TOL) == [
        "tu resultado es 2 veces el esperado: ¿falta o sobra un factor 2 (p. ej. al derivar x²)?"
    ]
    assert detect(e * 3, e, weird, TOL, generic=False) == []
    assert detect(np.vstack([-e[0], e[1:]]), e, weird, TOL) == ["f"]  # a row of an array is a path too


def test_generic_off_by_one_length_and_edge(rng):
    history = [0.9, 0.5, 0.3]
    assert "off-by-one" in generic_hints(history[:2], history, TOL)[0]  # one epoch short
    assert "off-by-one" in generic_hints(np.arange(5.0), np.arange(4.0), TOL, lang="en")[0]
    e = rng.normal(size=(2, 3, 4, 5))
    short = e.copy()
    short[:, :, -1, :] = 0.0  # the loop over rows stopped one short: the last row never computed
    hint = generic_hints(short, e, TOL)[0]
    assert "índice 3 en el eje 2" in hint and "off-by-one" in hint
    first = e.copy()
    first[:, 0] += 1.0
    assert "primero" in generic_hints(first, e, TOL)[0]
    scattered = e.copy()
    scattered[0, 0, 0, 0] += 1.0
    scattered[1, 2, 1, 3] += 1.0
    assert generic_hints(scattered, e, TOL) == []  # wrong here and there: no guess
    relu = np.maximum(e[0, 0], 0.0)
    relu[1:] = 0.0  # only the first row has positive values...
    assert all("off-by-one" not in h for h in generic_hints(np.zeros_like(relu), relu, TOL))  # ...zeros are no loop


def test_shape_patterns_explain_a_size_only_when_nothing_else_does(rng):
    e = rng.normal(size=(2, 3, 4, 4))
    size = BugPattern("shape", "H' = (H + 2P - K) // S + 1", output="[0]")
    padding_ignored = rng.normal(size=(2, 3, 2, 2))
    specific = BugPattern("matches", "sin padding", data=padding_ignored, output="[0]")
    assert detect((padding_ignored,), (e,), [size, specific], TOL) == ["sin padding"]
    assert detect((rng.normal(size=(2, 3, 3, 3)),), (e,), [size, specific], TOL) == ["H' = (H + 2P - K) // S + 1"]
    assert detect((e + 1,), (e,), [size], TOL, generic=False) == []  # right shape: not this pattern's business
    only = BugPattern("shape", "solo 3x3", data=(2, 3, 3, 3), output="[0]")
    assert detect((rng.normal(size=(2, 3, 2, 2)),), (e,), [only], TOL, generic=False) == []


def test_error_hints_read_the_common_errors():
    from autograder.compare.hints import generic_error_hints

    def hint(error_type, message, patterns=(), lang="es"):
        return " ".join(generic_error_hints(list(patterns), error_type, message, lang))

    assert ".T" in hint("RuntimeError", "mat1 and mat2 shapes cannot be multiplied (13x4 and 10x4)")
    assert ".T" in hint("ValueError", "matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc "
                                      "signature (n?,k),(k,m?)->(n?,m?) (size 3 is different from 5)")
    assert "keepdims" in hint("ValueError", "operands could not be broadcast together with shapes (5,3) (5,)")
    assert "keepdim" in hint("RuntimeError", "The size of tensor a (5) must match the size of tensor b (3) at "
                                             "non-singleton dimension 1")
    assert "no_grad" in hint("RuntimeError", "a leaf Variable that requires grad is being used in an in-place "
                                             "operation.")
    assert "backward()" in hint("TypeError", "unsupported operand type(s) for *: 'float' and 'NoneType'")
    assert "`np`" in hint("NameError", "name 'np' is not defined")
    assert "import" in hint("NameError", "name 'np' is not defined", lang="en")
    assert hint("ZeroDivisionError", "division by zero") == ""
    shape = ("RuntimeError", "Mismatch in shape: grad_output[0] has a shape of torch.Size([2, 4, 5, 5]) and output[0] "
                             "has a shape of torch.Size([2, 4, 3, 3]).")
    assert "(2, 4, 3, 3)" in hint(*shape) and "(2, 4, 5, 5)" in hint(*shape)
    buggy = BugPattern("matches", "sin padding", data=np.zeros((2, 4, 3, 3)), output="[0]")
    other = BugPattern("matches", "otra", data=np.zeros((2, 4, 4, 4)), output="[0]")
    size = BugPattern("shape", "la fórmula del tamaño", output="[0]")
    assert hint(*shape, [other, buggy, size]) == "sin padding"  # the buggy answer with the shape the error reveals
    assert hint(*shape, [other, size]) == "la fórmula del tamaño"


def test_annotate_attaches_hints_to_the_right_mismatch(rng):
    dW, db = linear_grads(rng, n=16)
    actual = (dW.T, db * 16)
    ms = compare(actual, (dW, db), TOL, {"[0]": "dW", "[1]": "db"})
    assert kinds(ms) == [("[0]", "shape"), ("[1]", "values")]
    annotate(ms, actual, (dW, db), [], TOL, "es")
    assert "traspuesto" in ms[0].hints[0] and "16 veces" in ms[1].hints[0]
    text = format_mismatches(ms)
    assert "Pista: tu resultado es el traspuesto" in text and "Pista: tu resultado es 16 veces" in text


# --- report -----------------------------------------------------------


def test_values_report_es_and_en(rng):
    e = rng.uniform(1, 2, size=(4, 10))
    a = e.copy()
    a[2, 1] += 0.0231
    ms = compare(a, e, TOL, {"": "dlogits"})
    es = format_mismatch(ms[0])
    assert es.splitlines()[0] == "dlogits: no coincide con la referencia."
    assert "Elementos distintos: 1 / 40 (2.5%)" in es
    assert "Mayor diferencia absoluta: 0.0231 en el índice (2, 1) (se permite 1e-09 + 1e-07·|esperado|)" in es
    assert "Mayor diferencia relativa: " in es and "en el índice (2, 1)" in es.splitlines()[3]
    en = format_mismatch(ms[0], "en")
    assert "Mismatched elements: 1 / 40 (2.5%)" in en
    assert "Greatest absolute difference: 0.0231 at index (2, 1) (up to 1e-09 + 1e-07·|expected| allowed)" in en
    assert "Greatest relative difference:" in en


def test_report_examples():
    m = Mismatch(path="[0]", kind="shape", name="dW", expected_desc="(3, 4)", actual_desc="(4, 3)")
    assert format_mismatch(m) == "dW: la forma no coincide: se esperaba (3, 4), se obtuvo (4, 3)."
    assert format_mismatch(m, "en") == "dW: shape mismatch: expected (3, 4), got (4, 3)."
    m = Mismatch(
        path="",
        kind="values",
        name="dlogits",
        n_mismatched=12,
        n_total=40,
        max_abs=0.0231,
        max_abs_index=(2, 1),
        max_rel=0.5,
        max_rel_index=(0, 3),
        tolerance=TOL,
    )
    assert format_mismatch(m) == (
        "dlogits: no coincide con la referencia.\n"
        "  Elementos distintos: 12 / 40 (30.0%)\n"
        "  Mayor diferencia absoluta: 0.0231 en el índice (2, 1) (se permite 1e-09 + 1e-07·|esperado|)\n"
        "  Mayor diferencia relativa: 0.5 en el índice (0, 3)"
    )
    ms = compare({"W1": 1.0, "B2": 2.0}, {"W1": 1.0, "b2": 2.0}, TOL)
    assert format_mismatch(ms[0]) == "resultado: las claves no coinciden: faltan las claves ['b2']; sobran ['B2']."
    assert "missing keys ['b2']; unexpected ['B2']" in format_mismatch(ms[0], "en")
    ms = compare(np.zeros(3), (np.zeros(3), 1.0), TOL)
    assert "se esperaba una tupla de 2 elementos, se obtuvo un ndarray de forma (3,) (float64)" in format_mismatch(
        ms[0]
    )
    assert "expected a tuple of 2 items, got an ndarray of shape (3,) (float64)" in format_mismatch(ms[0], "en")


def test_report_scalar_nonfinite_dtype_custom():
    ms = compare(2.5, 2.302585, TOL, {"": "loss"})
    es = format_mismatch(ms[0])
    assert es.startswith("loss: no coincide con la referencia: se esperaba 2.30259, se obtuvo 2.5.")
    assert "Diferencia absoluta: 0.197" in es and "Diferencia relativa: 0.0857" in es
    assert "expected 2.30259, got 2.5" in format_mismatch(ms[0], "en")

    a = np.ones((2, 3))
    a[1, 2] = -np.inf
    es = format_mismatch(compare(a, np.ones((2, 3)), TOL)[0])
    assert "1 / 6 (16.7%)" in es and "(1, 2)" in es and "-inf" in es

    ms = compare(np.array([1, 2]), np.array([1.0, 2.0]), TOL, {"": "dW"})
    assert (
        format_mismatch(ms[0])
        == "dW: el tipo de datos no coincide: se esperaban números reales (float64), se obtuvo int64."
    )
    assert "expected floating-point numbers (float64), got int64" in format_mismatch(ms[0], "en")

    m = Mismatch(path="", kind="custom", message={"es": "precisión 0.6 < 0.9", "en": "accuracy 0.6 < 0.9"})
    assert format_mismatch(m, "en") == "result: accuracy 0.6 < 0.9"


def test_report_path_when_no_name_and_long_lists():
    ms = compare([np.zeros(2)] * 8, [np.ones(2)] * 8, TOL)
    assert len(ms) == 8
    es = format_mismatches(ms)
    assert es.startswith("[0]: no coincide") and es.endswith("… y 3 discrepancias más.")
    assert format_mismatches(ms, "en").endswith("… and 3 more mismatches.")
    assert format_mismatches(ms[:6], "en").endswith("… and 1 more mismatch.")
    assert format_mismatches([]) == ""
    keys = {f"k{i}": 1.0 for i in range(30)}
    text = format_mismatch(compare(keys, {}, TOL)[0])
    assert "sobran las claves" in text and "(+20)" in text


def test_a_judge_says_why_in_its_hints():
    from autograder.checks import Case, Probe
    from autograder.compare.judge import judge_value

    def judge(value, case):
        return [Mismatch(path="", kind="custom", message={"es": "exactitud 40 %", "en": "accuracy 40 %"},
                         hints=[{"es": "¿falta zero_grad()?", "en": "is zero_grad() missing?"}])]

    case = Case(Probe.call("train"), judge=judge)
    mismatches, hints = judge_value(None, case, "es")
    assert hints == ["¿falta zero_grad()?"] and mismatches[0].hints == []  # the hint, once: not in the message too
    assert format_mismatches(mismatches) == "resultado: exactitud 40 %"
    assert judge_value(None, case, "en")[1] == ["is zero_grad() missing?"]


def test_device_errors_are_explained_in_plain_words():
    """Hard-coded "cuda" on a CPU machine (the real torch error), and the GPU-only errors by their text."""
    import torch

    from autograder.compare.hints import generic_error_hints

    try:
        torch.zeros(2, device="cuda")
    except (AssertionError, RuntimeError) as exc:
        hard_coded = generic_error_hints([], type(exc).__name__, str(exc))
        assert hard_coded and "x.device" in hard_coded[0], hard_coded
    else:
        pytest.skip("this machine has a GPU: hard-coded cuda works here")
    mixed = generic_error_hints([], "RuntimeError", "Expected all tensors to be on the same device, but found at "
                                "least two devices, cuda:0 and cpu!", "en")
    assert mixed and ".to(device)" in mixed[0] and "inputs" in mixed[0]
    to_numpy = generic_error_hints([], "TypeError", "can't convert cuda:0 device type tensor to numpy. Use "
                                   "Tensor.cpu() to copy the tensor to host memory first.")
    assert to_numpy and ".cpu().numpy()" in to_numpy[0]
