"""What students get (``autograder release --bundle``): no secret in it, a client that works with numpy alone,
and a stub that runs in a real Jupyter kernel with the self-check's table in its outputs."""

from __future__ import annotations

import inspect
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import numpy
import pytest
from typer.testing import CliRunner

from autograder.bundle import STUDENT_MODULES, WHEEL_NAME, build_bundle, student_module_files
from autograder.cli import app
from autograder.release import BEGIN, END
from conftest import ROOT

INSTRUCTOR_ONLY = ("autograder/grade/", "autograder/store/", "autograder/notebook/", "autograder/spec.py",
                   "autograder/cli.py", "autograder/course.py", "autograder/release.py", "autograder/bundle.py",
                   "autograder/validate.py", "autograder/execute/sandbox.py", "autograder/execute/pool.py",
                   "autograder/execute/session.py", "autograder/execute/runtime/shim/", "reference_impl", "solutions")


@pytest.fixture(scope="module")
def bundle(course, tmp_path_factory) -> Path:
    """The bundle of every assignment, from the committed ``assignments/`` (kept in sync by another test)."""
    out = tmp_path_factory.mktemp("bundle") / "out"
    build_bundle(course, course.assignment_ids(), out)
    return out


# -- reading everything in the bundle, zips and wheels included ------------------------------------------

def _texts(name: str, data: bytes) -> list[str]:
    """The text of a file as it is, and, for JSON and notebooks, every string in it decoded (no escapes)."""
    raw = data.decode("utf-8", "replace")
    out = [raw]
    if name.endswith((".json", ".ipynb")):
        strings: list[str] = []

        def walk(node):
            if isinstance(node, str):
                strings.append(node)
            elif isinstance(node, list):
                for item in node:
                    walk(item)
            elif isinstance(node, dict):
                for key, item in node.items():
                    strings.append(key)
                    walk(item)

        walk(json.loads(raw))
        out.append("\n".join(strings))
    return out


def _documents(name: str, data: bytes):
    """``(path, text)`` of a file and, recursively, of every member of a zip or wheel."""
    if name.endswith((".zip", ".whl")):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for member in zf.namelist():
                yield from _documents(f"{name}!{member}", zf.read(member))
    else:
        for text in _texts(name, data):
            yield name, text


def bundle_documents(out: Path) -> list[tuple[str, str]]:
    return [doc for path in sorted(out.rglob("*")) if path.is_file()
            for doc in _documents(path.relative_to(out).as_posix(), path.read_bytes())]


def _scope(path: str) -> str | None:
    """The assignment a document belongs to (``None``: the client, shared by all)."""
    if ".whl!" in path or path == WHEEL_NAME:
        return None
    for part in re.split(r"[/!]", path):
        if re.fullmatch(r"\d\d_\w+", part.removesuffix(".zip")):
            return part.removesuffix(".zip")
    return None


# -- what must never be there ------------------------------------------------------------------------------

def _code(line: str) -> str:
    return line.split("  #")[0].strip()


def solution_secrets(spec) -> set[str]:
    """The lines of the solved notebook's ``BEGIN/END SOLUTION`` blocks that the notebook, its markdown and the
    public checks' own messages do not publish anyway (an API table may show ``dx = dout * (x > 0)``)."""
    nb = nbformat.read(spec.solution_notebook, as_version=4)
    secret, public = set(), []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if BEGIN.match(line):
                inside = True
            elif END.match(line):
                inside = False
            elif inside:
                secret.add(_code(line))
            else:
                public.append(line)
    fixtures = ROOT / "assignments" / spec.id / "public_tests.json"
    published = "\n".join(public + _texts(fixtures.name, fixtures.read_bytes())[1:])
    return {line for line in secret if len(line) >= 12 and not line.startswith("#") and line not in published}


def hidden_tests_secrets(spec) -> set[str]:
    """Every substantial line of the assignment's hidden tests module (code, docstrings, messages), less the
    ones published on purpose: public checks' messages (in the fixtures) and idioms the client's own source
    also has (``with np.errstate(all="ignore"):``)."""
    source = (spec.root / "tests.py").read_text(encoding="utf-8")
    fixtures = (ROOT / "assignments" / spec.id / "public_tests.json").read_text(encoding="utf-8")
    client = "\n".join(path.read_text(encoding="utf-8") for _, path in student_module_files())
    lines = {line.strip() for line in source.splitlines()}
    return {line for line in lines if len(line) >= 24 and not line.startswith(("import ", "from ", "#"))
            and line not in fixtures and line not in client}


def hidden_build_names(spec) -> set[str]:
    """The names of the functions that build hidden checks (``build_train``, ``_build_softmax``...)."""
    names = set()
    for check in spec.checks:
        if not check.public:
            name = inspect.unwrap(check.build).__qualname__.split(".")[0]
            if "build" in name:  # not a generic helper such as ``_forward`` (its text is in tests.py's lines)
                names.add(name)
    return names


def test_bundle_layout(bundle, course):
    ids = course.assignment_ids()
    assert (bundle / WHEEL_NAME).is_file()
    for aid in ids:
        folder = bundle / aid
        stub = course.spec(aid).stub_name
        assert {p.name for p in folder.iterdir()} >= {stub, "public_tests.json", WHEEL_NAME, "LEEME.txt"}
        with zipfile.ZipFile(bundle / f"{aid}.zip") as zf:
            assert f"{aid}/{stub}" in zf.namelist() and f"{aid}/{WHEEL_NAME}" in zf.namelist()
    with zipfile.ZipFile(bundle / "all.zip") as zf:
        assert {name.split("/")[0] for name in zf.namelist()} == set(ids)


def test_bundle_and_wheel_hold_no_solution_hidden_test_or_reference(bundle, course):
    documents = bundle_documents(bundle)
    assert any(".whl!autograder/selfcheck.py" in path for path, _ in documents)
    specs = [course.spec(aid) for aid in course.assignment_ids()]
    names = set().union(*(hidden_build_names(s) for s in specs))
    assert {"build_train", "_build_softmax"} <= names  # the scan really looks for something
    name_pattern = re.compile(r"(?<![\w])(" + "|".join(map(re.escape, sorted(names))) + r")(?![\w])")
    secrets = {s.id: (solution_secrets(s), hidden_tests_secrets(s)) for s in specs}
    assert "db = dout.sum(axis=0)" in secrets["01_backprop"][0]
    assert "def build_train(rng: np.random.Generator) -> Case:" in secrets["01_backprop"][1]
    leaks = []
    for path, text in documents:
        if "reference_impl" in text:
            leaks.append((path, "reference_impl"))
        if "BEGIN SOLUTION" in text:
            leaks.append((path, "BEGIN SOLUTION"))
        found = name_pattern.search(text)
        if found:
            leaks.append((path, f"hidden check builder {found.group(0)}"))
        scope = _scope(path)
        for aid, (solution, tests) in secrets.items():
            if scope not in (None, aid):
                continue
            leaks += [(path, f"{aid} solution line {line!r}") for line in solution if line in text]
            leaks += [(path, f"{aid}/tests.py line {line!r}") for line in tests if line in text]
    assert not leaks, "\n".join(f"{p}: {what}" for p, what in leaks[:20])


def test_fixtures_in_the_bundle_hold_only_public_checks(bundle, course):
    for aid in course.assignment_ids():
        spec = course.spec(aid)
        doc = json.loads((bundle / aid / "public_tests.json").read_text(encoding="utf-8"))
        assert {(c["question"], c["name"]) for c in doc["checks"]} == {(c.question, c.name) for c in spec.checks
                                                                       if c.public}


def test_wheel_holds_only_the_student_side_client(bundle):
    with zipfile.ZipFile(bundle / WHEEL_NAME) as zf:
        names = zf.namelist()
        record = zf.read("autograder_alumno-0.1.0.dist-info/RECORD").decode()
    modules = [n for n in names if not n.startswith("autograder_alumno-")]
    assert all(n.startswith("autograder/") and n.endswith(".py") for n in modules), modules
    assert not [n for n in modules if n.startswith(INSTRUCTOR_ONLY)]
    assert "autograder/selfcheck.py" in modules and "autograder/data/toy2d.py" in modules
    assert len(STUDENT_MODULES) <= len(modules)
    assert all(f"{n}," in record for n in names)  # pip checks the RECORD's hashes on install


def test_wheel_installs_offline_and_self_checks_with_numpy_alone(bundle, backprop, tmp_path):
    """pip installs the wheel with no index; then, in a Python with nothing but numpy and the wheel on its path
    (``-S``: no site-packages), every module imports, the solution passes and a bug gets its hint."""
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target",
                          str(target), str(bundle / WHEEL_NAME)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    only_numpy = tmp_path / "numpy_only"
    only_numpy.mkdir()
    site = Path(numpy.__file__).resolve().parents[1]
    for entry in site.glob("numpy*"):
        if entry.is_dir():
            (only_numpy / entry.name).symlink_to(entry)
    nb = nbformat.read(backprop.solution_notebook, as_version=4)
    solution = "\n\n".join(c.source for c in nb.cells if c.cell_type == "code"
                           and "skip-grading" not in c.metadata.get("tags", []) and not c.source.startswith("check"))
    (tmp_path / "solution.py").write_text(solution, encoding="utf-8")
    program = f"""
import importlib, pkgutil, sys
sys.path[:0] = [{str(target)!r}, {str(only_numpy)!r}]
import autograder
assert autograder.__file__.startswith({str(target)!r}), autograder.__file__
for info in pkgutil.walk_packages(autograder.__path__, "autograder."):
    importlib.import_module(info.name)
ns = {{"__name__": "__main__"}}
exec(open({str(tmp_path / "solution.py")!r}, encoding="utf-8").read(), ns)
exec("ok = check_all()", ns)
assert ns["ok"] is True
exec('''
def linear_backward(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout, dout.mean(axis=0)
ok = check("q2", lang="en")
''', ns)
assert ns["ok"] is False
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"IPython", "nbformat", "jinja2", "sqlalchemy", "typer",
                                                          "rich", "torch", "matplotlib", "sklearn"}})
print("heavy:", heavy)
"""
    env = {"PATH": os.environ.get("PATH", ""), "AUTOGRADER_LANG": "es"}
    run = subprocess.run([sys.executable, "-S", "-c", program], cwd=bundle / "01_backprop", env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "Pruebas públicas superadas: 11 / 11" in out and "heavy: []" in out
    assert "✘ q2 · linear_backward: failed" in out and "Hint: db must *sum* dout over the batch" in out
    assert "Public tests passed: 1 / 2" in out


def test_release_command_writes_the_bundle(tmp_path):
    result = CliRunner().invoke(app, ["release", "01_backprop", "--course", str(ROOT), "--bundle", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / "01_backprop.zip").is_file() and (tmp_path / "b" / "all.zip").is_file()
    assert WHEEL_NAME in result.output


# -- the released stub in a real kernel -------------------------------------------------------------------

BUGGY_LINEAR_BACKWARD = '''\
def linear_backward(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout, dout.mean(axis=0)  # bug: db promediado


check("q2")'''


def _plain_outputs(cell) -> str:
    texts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif "data" in output:
            texts.append(output.data.get("text/plain", ""))
        elif output.output_type == "error":
            texts.append("\n".join(output.traceback))
    return "\n".join(texts)


@pytest.mark.slow
def test_released_stub_with_the_solution_pasted_runs_in_a_kernel(bundle, backprop, tmp_path):
    """The student's path: the stub from the bundle, the solution's code pasted into it, the install cell
    (``%pip install``, into a private folder here) and every cell run by a Jupyter kernel; every ``check``
    shows its public tests passing, as an HTML table with a plain-text version, and a pasted bug its hint."""
    pytest.importorskip("nbclient")
    from nbclient import NotebookClient

    folder = bundle / "01_backprop"
    stub = nbformat.read(folder / "01_backprop.ipynb", as_version=4)
    solution = {c.id: c for c in nbformat.read(backprop.solution_notebook, as_version=4).cells}
    site = tmp_path / "site"
    pasted = 0
    for cell in stub.cells:
        if cell.cell_type != "code":
            continue
        if "TU CÓDIGO AQUÍ" in cell.source:
            cell.source = "\n".join(line for line in solution[cell.id].source.splitlines()
                                    if not (BEGIN.match(line) or END.match(line)))
            pasted += 1
        if "%pip install" in cell.source:  # the same cell, installing into a folder of this test, not the venv
            assert "%pip install -q autograder_alumno-*.whl" in cell.source
            cell.source = cell.source.replace(
                "%pip install -q autograder_alumno-*.whl",
                f"%pip install -q --no-index --no-deps --target {site} autograder_alumno-*.whl\n"
                f"import sys\nsys.path.insert(0, {str(site)!r})")
    assert pasted >= 10
    own = len(stub.cells)
    stub.cells.append(nbformat.v4.new_code_cell("import autograder\nprint(autograder.__file__)"))
    stub.cells.append(nbformat.v4.new_code_cell(BUGGY_LINEAR_BACKWARD))
    stub.cells.append(nbformat.v4.new_code_cell('check("q3", lang="en")'))
    client = NotebookClient(stub, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()

    checks = [c for c in stub.cells[:own] if c.cell_type == "code" and re.match(r"check(_all)?\(", c.source)]
    assert len(checks) == 8  # q1..q7 and check_all
    for cell in checks:
        html = [o.data["text/html"] for o in cell.outputs if "data" in o and "text/html" in o.data]
        text = _plain_outputs(cell)
        assert html and "<table" in html[0], text
        assert "✘" not in text and "✔" in text, text
        done = re.search(r"Pruebas públicas superadas: (\d+) / (\d+)", text)
        assert done and done.group(1) == done.group(2), text
    assert "Pruebas públicas superadas: 11 / 11" in _plain_outputs(checks[-1])
    assert "53.58 de 100" in _plain_outputs(checks[-1])
    where, buggy, english = (_plain_outputs(c) for c in stub.cells[-3:])
    assert str(site) in where
    assert "✘ q2 · linear_backward: incorrecto" in buggy and "Pista: db debe *sumar* dout sobre el lote" in buggy
    assert "Elementos distintos" in buggy and "1 / 2" in buggy
    assert "Public tests passed: 2 / 2" in english
    training = next(c for c in stub.cells if c.get("id") == "spirals-exp")
    assert "[5/5]" in _plain_outputs(training) or "entrenando" in _plain_outputs(training)
    assert any("image/png" in o.get("data", {}) for o in training.outputs)


TORCH_ASSIGNMENTS = [aid for aid in sorted(p.parent.name for p in (ROOT / "solutions").glob("*/spec.toml"))
                     if aid != "01_backprop"]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", TORCH_ASSIGNMENTS)
def test_every_released_stub_with_its_solution_pasted_passes_its_checks_in_a_kernel(bundle, course, assignment,
                                                                                    tmp_path):
    """The same path for the other assignments (PyTorch ones): the bundle's stub, its install cell, the solution
    pasted in, every graded cell and every ``check`` run by a kernel (the long training cells left out: they do
    not change what the checks see). Every check's table shows its public tests passing."""
    pytest.importorskip("nbclient")
    from nbclient import NotebookClient

    spec = course.spec(assignment)
    folder = bundle / assignment
    stub = nbformat.read(folder / spec.stub_name, as_version=4)
    solution = {c.id: c for c in nbformat.read(spec.solution_notebook, as_version=4).cells}
    site = tmp_path / "site"
    cells = []
    for cell in stub.cells:
        if cell.cell_type != "code":
            continue
        if "%pip install" in cell.source:
            cell.source = cell.source.replace(
                "%pip install -q autograder_alumno-*.whl",
                f"%pip install -q --no-index --no-deps --target {site} autograder_alumno-*.whl\n"
                f"import sys\nsys.path.insert(0, {str(site)!r})")
        elif "skip-grading" in cell.metadata.get("tags", []):
            continue
        if "TU CÓDIGO AQUÍ" in cell.source:
            cell.source = "\n".join(line for line in solution[cell.id].source.splitlines()
                                    if not (BEGIN.match(line) or END.match(line)))
        cells.append(cell)
    stub.cells = cells + [nbformat.v4.new_code_cell("import autograder\nprint(autograder.__file__)")]
    client = NotebookClient(stub, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    assert str(site) in _plain_outputs(stub.cells[-1])  # the bundle's client, not the course's package
    checks = [c for c in stub.cells if re.match(r"check(_all)?\(", c.source)]
    assert len(checks) == len(spec.questions) + 1
    for cell in checks:
        text = _plain_outputs(cell)
        assert any("text/html" in o.get("data", {}) for o in cell.outputs), text
        done = re.search(r"Pruebas públicas superadas: (\d+) / (\d+)", text)
        assert done and done.group(1) == done.group(2) and "✘" not in text, text
