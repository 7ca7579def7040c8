"""Per-question forbidden names (``nn.Linear`` where raw tensors are asked for): found however imported."""

from __future__ import annotations

import pytest

from autograder.grade.cases import PreparedCheck, check_rng
from autograder.grade.submission import GradeContext, _run_check
from autograder.i18n import MESSAGES
from autograder.notebook.analysis import analyse
from autograder.results import Status
from autograder.spec import SpecError, load_spec

PART_A = ["torch.nn.Linear", "torch.nn.Module", "torch.nn.functional.linear", "torch.optim",
          "torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss"]


@pytest.mark.parametrize("source, name", [
    ("import torch.nn as nn\ndef f(x):\n    return nn.Linear(2, 3)(x)", "torch.nn.Linear"),
    ("from torch import nn\ndef f(x):\n    return nn.Linear(2, 3)(x)", "torch.nn.Linear"),
    ("from torch.nn import Linear as Capa\ndef f(x):\n    return Capa(2, 3)(x)", "torch.nn.Linear"),
    ("import torch\ndef f(x):\n    return torch.nn.Linear(2, 3)(x)", "torch.nn.Linear"),
    ("import torch.nn\ndef f(x):\n    return torch.nn.Linear(2, 3)(x)", "torch.nn.Linear"),
    ("from torch.nn import *\ndef f(x):\n    return Linear(2, 3)(x)", "torch.nn.Linear"),
    ("import torch.nn as nn\ndef f(x):\n    return getattr(nn, 'Linear')(2, 3)(x)", "torch.nn.Linear"),
    ("def f(x):\n    import torch.nn as nn\n    return nn.Linear(2, 3)(x)", "torch.nn.Linear"),
    ("def f(x):\n    from torch.nn import Linear\n    return Linear(2, 3)(x)", "torch.nn.Linear"),
    ("from torch import optim\ndef f(p):\n    return optim.SGD(p, lr=0.1)", "torch.optim"),
    ("import torch.optim as opt\ndef f(p):\n    return opt.SGD(p, lr=0.1)", "torch.optim"),
    ("import torch.nn.functional as F\ndef f(z, y):\n    return F.cross_entropy(z, y)", "torch.nn.functional.cross_entropy"),
    ("from torch.nn.functional import cross_entropy as ce\ndef f(z, y):\n    return ce(z, y)",
     "torch.nn.functional.cross_entropy"),
    ("import torch.nn as nn\ndef f(z, y):\n    return nn.CrossEntropyLoss()(z, y)", "torch.nn.CrossEntropyLoss"),
    ("import torch.nn as nn\nclass Red(nn.Module):\n    pass\ndef f(x):\n    return Red()", "torch.nn.Module"),
])
def test_forbidden_names_are_found_however_imported(source, name):
    facts = analyse([(0, source)], [])
    found = facts.forbidden_name_in(["f"], PART_A)
    assert found is not None and found[1].startswith(name), found


@pytest.mark.parametrize("source", [
    "import torch\ndef f(x, W):\n    return torch.relu(x @ W)",
    "import torch.nn.functional as F\ndef f(x):\n    return F.relu(x) + F.log_softmax(x, dim=1)",
    "import torch.nn as nn\ndef f(x):\n    return nn.Parameter(x)",
    "import torch.nn as nn\ndef f(x):\n    return nn.LazyLinear(3)",  # a name that only starts like a forbidden one
    "def Linear(a, b):\n    return a\ndef f(x):\n    return Linear(x, 1)",  # the student's own Linear
    "import torch\ndef f(x):\n    optim = 3\n    return x * optim",  # a local variable, not an import
])
def test_allowed_code_is_not_flagged(source):
    assert analyse([(0, source)], []).forbidden_name_in(["f"], PART_A) is None


def test_forbidden_names_through_a_helper_and_across_cells():
    facts = analyse([(0, "import torch.nn as nn"),
                     (1, "def capa(d, h):\n    return nn.Linear(d, h)"),
                     (2, "def init_params(d, h):\n    return {'W1': capa(d, h).weight.T}"),
                     (3, "def forward(X, params):\n    return X @ params['W1']")], [])
    assert facts.forbidden_name_in(["init_params", "forward"], PART_A) == ("capa", "torch.nn.Linear")
    assert facts.forbidden_name_in(["forward"], PART_A) is None
    assert facts.forbidden_name_in(["init_params"], []) is None


def test_a_later_definition_replaces_the_forbidden_one():
    facts = analyse([(0, "import torch.nn as nn\ndef f(x):\n    return nn.Linear(1, 1)"),
                     (1, "def f(x):\n    return x")], [])
    assert facts.forbidden_name_in(["f"], PART_A) is None


def test_spec_reads_forbidden_names_and_rejects_malformed_ones(tmp_path, course):
    spec = course.spec("02_ffnet")
    assert "torch.nn.Linear" in spec.question("q1").forbidden
    assert spec.question("q4").forbidden == []
    root = tmp_path / "x"
    root.mkdir()
    (root / "spec.toml").write_text(
        'id = "x"\nversion = "1"\ntitle = { es = "x" }\n[[questions]]\nid = "q1"\ntitle = { es = "t" }\npoints = 1\n'
        'functions = ["f"]\nforbidden = ["torch.nn Linear"]\n', encoding="utf-8")
    with pytest.raises(SpecError, match="forbidden"):
        load_spec(root, with_checks=False)


@pytest.mark.parametrize("lang, words", [("es", ["`init_params` usa `torch.nn.Linear`", "vale 0"]),
                                         ("en", ["`init_params` uses `torch.nn.Linear`", "scores 0"])])
def test_a_forbidden_name_scores_the_check_forbidden_with_a_message(course, lang, words):
    spec = course.spec("02_ffnet")
    check = next(c for c in spec.checks if c.question == "q1" and c.name == "forward")
    prepared = PreparedCheck(check, check.build(check_rng(0, check)))
    ctx = GradeContext(spec, [prepared], mode="none", lang=lang)
    facts = analyse([(0, "import torch\nimport torch.nn as nn"),
                     (1, "def init_params(d, h, c, seed=0):\n    return {'W1': nn.Linear(d, h).weight.T}"),
                     (2, "def forward(X, params):\n    return torch.relu(X @ params['W1'])")], spec.forbidden_modules)
    result = _run_check(ctx, None, facts, {"init_params": 1, "forward": 2}, prepared)  # never runs: decided statically
    assert result.status is Status.FORBIDDEN and result.points == 0
    assert all(w in result.message for w in words), result.message
    assert {"es", "en"} <= set(MESSAGES["forbidden_name"])
    clean = analyse([(0, "import torch"), (2, "def forward(X, params):\n    return torch.relu(X @ params['W1'])")], [])
    assert clean.forbidden_name_in(spec.question("q1").functions, spec.question("q1").forbidden) is None
