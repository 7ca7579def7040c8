"""Batch grading benchmark: ours (warm pool, --jobs 1 / all cores; no pool) against nbgrader and Otter.

One command::

    .venv/bin/python benchmarks/bench_batch.py                      # N=100 on 01_backprop, peers if they install
    .venv/bin/python benchmarks/bench_batch.py -n 100 -n 500        # also N=500 (ours only at 500)
    .venv/bin/python benchmarks/bench_batch.py --no-peers --configs pool-all,no-pool-all

It generates a class of N submissions (a realistic mix built from the
assignment's bundled examples: mostly correct and buggy notebooks, a few
broken ones, exactly one infinite loop), grades it with each configuration
and prints submissions per minute, the ratios ours/theirs and
pool/no-pool, the per-submission overhead (a submission's wall time minus
the time spent in the student's own cells, median) and the peak resident
memory of the grader and of its workers (sampled with psutil, else /proc).
A JSON report is written to ``WORK/report.json``.

Peers: nbgrader and Otter-Grader are installed from PyPI into a separate
virtual environment under the work folder (never into the project's
``.venv``). ``nbgrader autograde`` grades an equivalent nbgrader course built
here: the released stub plus one autograded test cell per hidden check,
which calls the student's functions on fixed inputs and asserts against the
values our reference computed for them (training is judged by accuracy, as
ours does); Otter's no-container ``otter run`` grades a smaller N with the
same tests (it takes seconds per notebook). Where they cannot be installed
or run, the report says so and shows ours alone. Nothing here asserts a
time: it only measures.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.checks import Call, FunctionArg, Ref  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.grade.cases import prepare  # noqa: E402
from autograder.spec import AssignmentSpec  # noqa: E402

SEED = 20240611  # the batch seed of every configuration (same inputs everywhere)
PEER_SEED = 12345  # the fixed inputs of the peers' test cells
CONFIGS = ("pool-1", "pool-all", "no-pool-all")
LOOP_WORDS = ("bucle", "loop", "cuelga", "hang", "infinit")


# -- the class ----------------------------------------------------------------------------

@dataclass
class Student:
    name: str
    source: str  # the example it was made from
    kind: str  # correct, buggy, broken, loop
    path: Path


def _is_loop(example: Any) -> bool:
    text = f"{example.name} {example.description}".lower()
    statuses = set(example.expected_on("cpu").statuses.values())
    return any(w in text for w in LOOP_WORDS) or "timeout" in statuses


def _kind(example: Any, spec: AssignmentSpec) -> str:
    expected = example.expected_on("cpu")
    if expected.score >= spec.max_score - 1e-6:
        return "correct"
    if expected.score <= 0.3 * spec.max_score or set(expected.statuses.values()) & {"missing", "forbidden"}:
        return "broken"
    return "buggy"


def make_class(course: Course, spec: AssignmentSpec, n: int, dest: Path) -> list[Student]:
    """N notebooks ``estNNN.ipynb``: ~60 % correct, ~30 % buggy, the rest broken, exactly one infinite loop."""
    pools: dict[str, list[tuple[str, Path]]] = {"correct": [("solution", spec.solution_notebook)],
                                                 "buggy": [], "broken": [], "loop": []}
    stub = course.root / "assignments" / spec.id / spec.stub_name
    if stub.is_file():
        pools["broken"].append(("stub", stub))
    for example in spec.examples:
        if not example.file.is_file():
            continue
        kind = "loop" if _is_loop(example) else _kind(example, spec)
        pools[kind].append((example.name, example.file))
    loop_source = next((p for p in pools["loop"] if "infinit" in p[0]), pools["loop"][0] if pools["loop"] else None)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if loop_source is None:  # no bundled loop: the solution with a `while True: pass` cell
        nb = json.loads(spec.solution_notebook.read_text(encoding="utf-8"))
        nb["cells"].append({"cell_type": "code", "metadata": {}, "source": "while True:\n    pass\n",
                            "outputs": [], "execution_count": None})
        loop_path = dest.parent / f"{dest.name}-loop.ipynb"
        loop_path.write_text(json.dumps(nb), encoding="utf-8")
        loop_source = ("solution+while_true", loop_path)
    rng = random.Random(n)
    n_loop = 1 if n >= 1 else 0
    n_broken = max(1, round(0.1 * n) - n_loop) if pools["broken"] and n >= 10 else 0
    n_buggy = round(0.3 * n) if pools["buggy"] else 0
    n_correct = n - n_loop - n_broken - n_buggy
    plan = ["loop"] * n_loop + ["broken"] * n_broken + ["buggy"] * n_buggy + ["correct"] * n_correct
    rng.shuffle(plan)
    counters = dict.fromkeys(pools, 0)
    students = []
    for i, kind in enumerate(plan, 1):
        source = loop_source if kind == "loop" else pools[kind][counters[kind] % len(pools[kind])]
        counters[kind] += 1
        path = dest / f"est{i:03d}.ipynb"
        shutil.copyfile(source[1], path)
        students.append(Student(path.stem, source[0], kind, path))
    return students


# -- measuring a command ----------------------------------------------------------------------

class MemorySampler:
    """Peak RSS of a process (the grader) and of all its descendants together (its workers)."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_grader_rss = 0
        self.peak_workers_rss = 0
        self.peak_workers_pss = 0
        self.peak_workers = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        try:
            import psutil
            self._psutil: Any = psutil
        except ImportError:
            self._psutil = None
        self.source = "psutil" if self._psutil else "/proc"

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except Exception:
                pass
            self._stop.wait(self.interval_s)

    def _sample(self) -> None:
        if self._psutil is not None:
            proc = self._psutil.Process(self.pid)
            grader = proc.memory_info().rss
            rss = pss = 0
            children = proc.children(recursive=True)
            for child in children:
                try:
                    rss += child.memory_info().rss
                    if self.samples % 5 == 0:  # PSS reads smaps: not every sample
                        pss += getattr(child.memory_full_info(), "pss", 0)
                except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                    continue
        else:
            grader = _proc_rss(self.pid)
            children = _proc_descendants(self.pid)
            rss, pss = sum(_proc_rss(p) for p in children), 0
        self.samples += 1
        self.peak_grader_rss = max(self.peak_grader_rss, grader)
        self.peak_workers_rss = max(self.peak_workers_rss, rss)
        self.peak_workers_pss = max(self.peak_workers_pss, pss)
        self.peak_workers = max(self.peak_workers, len(children))

    def report(self) -> dict[str, Any]:
        mib = 1024 * 1024
        return {"peak_grader_rss_mib": round(self.peak_grader_rss / mib, 1),
                "peak_workers_rss_mib": round(self.peak_workers_rss / mib, 1),
                "peak_workers_pss_mib": round(self.peak_workers_pss / mib, 1) if self.peak_workers_pss else None,
                "peak_processes": self.peak_workers, "memory_source": self.source}


def _proc_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _proc_descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def run_measured(cmd: list[str], *, cwd: Path | None = None, log: Path, env: dict[str, str] | None = None,
                 timeout_s: float | None = None) -> dict[str, Any]:
    start = time.monotonic()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        with MemorySampler(proc.pid) as sampler:
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
    return {"returncode": code, "wall_s": round(time.monotonic() - start, 2), **sampler.report()}


# -- ours -----------------------------------------------------------------------------------------

def ours(config: str, spec: AssignmentSpec, class_dir: Path, work: Path, n: int) -> dict[str, Any]:
    jobs = 1 if config == "pool-1" else (os.cpu_count() or 1)
    out = work / "out" / f"ours-{config}-{n}"
    if out.exists():
        shutil.rmtree(out)
    cli = Path(sys.executable).with_name("autograder")
    base = [str(cli)] if cli.exists() else [sys.executable, "-c", "from autograder.cli import main; main()"]
    cmd = base + ["grade", spec.id, str(class_dir), "--out", str(out), "--jobs", str(jobs), "--seed", str(SEED),
                  "--quiet", "--course", str(ROOT)] + (["--no-pool"] if config.startswith("no-pool") else [])
    result = run_measured(cmd, log=work / "logs" / f"ours-{config}-{n}.log")
    result.update(tool="ours", config=config, jobs=jobs, n=n)
    grades = out / "grades.json"
    if result["returncode"] != 0 or not grades.is_file():
        result["error"] = (work / "logs" / f"ours-{config}-{n}.log").read_text(errors="replace")[-2000:]
        return result
    subs = json.loads(grades.read_text())["submissions"]
    overhead = [s["duration_s"] - sum(c["duration_s"] for c in s.get("cells", [])) for s in subs]
    in_checks = [sum(c["duration_s"] for c in s.get("checks", [])) for s in subs]
    durations = [s["duration_s"] for s in subs]
    result.update(
        graded=len(subs),
        per_minute=round(len(subs) / result["wall_s"] * 60, 1),
        median_submission_s=round(statistics.median(durations), 3),
        median_overhead_s=round(statistics.median(overhead), 3),
        median_overhead_without_checks_s=round(statistics.median(o - c for o, c in zip(overhead, in_checks, strict=True)), 3),
        mean_score=round(statistics.mean(s["score"] for s in subs), 3),
        statuses={k: sum(1 for s in subs if s["status"] == k) for k in sorted({s["status"] for s in subs})},
        scores={s["student"]: s["score"] for s in subs},
    )
    return result


# -- the peers' tests: our hidden checks on fixed inputs, as plain Python --------------------------

PEER_HELPERS = '''
import base64 as _b64, random as _random
import numpy as _np
_lib = {}
exec(%(functions)r, _lib)


def _a(data, dtype, shape):
    return _np.frombuffer(_b64.b64decode(data), dtype=dtype).reshape(shape).copy()


def _close(actual, expected, rtol, atol, path="resultado"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), path + ": claves"
        for key in expected:
            _close(actual[key], expected[key], rtol, atol, path + "[%%r]" %% key)
    elif isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), path + ": longitud"
        for i, (a, e) in enumerate(zip(actual, expected)):
            _close(a, e, rtol, atol, path + "[%%d]" %% i)
    else:
        a, e = _np.asarray(actual, dtype=float), _np.asarray(expected, dtype=float)
        assert a.shape == e.shape, path + ": forma %%s != %%s" %% (a.shape, e.shape)
        assert _np.allclose(a, e, rtol=rtol, atol=atol), path + ": valores"


def _train_ok(value, X, y, epochs):
    params, history = value
    assert len(history) == epochs and history[-1] < history[0], "la pérdida no bajó"
    hidden = _np.maximum(X @ params["W1"] + params["b1"], 0)
    accuracy = float(_np.mean((hidden @ params["W2"] + params["b2"]).argmax(axis=1) == y))
    assert accuracy >= 0.9, "exactitud %%.2f" %% accuracy
'''


def _expr(value: Any) -> str:
    """A Python expression for a probe value (arrays exactly, as base64)."""
    if isinstance(value, Ref):
        base = f"_args[{value.step!r}][{value.arg}]" if value.arg is not None else f"_res[{value.step!r}]"
        return base if value.item is None else f"{base}[{value.item!r}]"
    if isinstance(value, FunctionArg):
        return f"_lib['build']({value.name!r}, {_expr(dict(value.params))})"
    if isinstance(value, np.ndarray):
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
        return f"_a({data!r}, {value.dtype.str!r}, {tuple(value.shape)!r})"
    if isinstance(value, np.generic):
        return _expr(value.item())
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_expr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "(" + "".join(f"{_expr(v)}, " for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_expr(v) for v in value) + "]"
    if isinstance(value, float) and not np.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


@dataclass
class PeerTest:
    question: str
    name: str
    points: float
    body: str  # uses G, the notebook's globals


def peer_tests(spec: AssignmentSpec) -> list[PeerTest]:
    tests = []
    for prepared in prepare(spec.checks, PEER_SEED):
        check, case = prepared.check, prepared.case
        total = sum(c.weight for c in spec.checks_of(check.question))
        points = spec.question(check.question).points * check.weight / total
        lines = ["_res, _args = {}, {}", f"_random.seed({prepared.seed}); _np.random.seed({prepared.seed})"]
        for step in case.probe.steps:
            assert isinstance(step, Call)
            if step.function.startswith("@"):
                lines = []
                break
            lines.append(f"_args[{step.name!r}] = {_expr(list(step.args))}")
            lines.append(f"_res[{step.name!r}] = G[{step.function!r}](*_args[{step.name!r}], "
                         f"**{_expr(dict(step.kwargs))})")
        if not lines:
            continue  # runtime ops (torch modules): no plain-Python equivalent here
        value = _expr(case.probe.outputs)
        if case.judge is None:
            lines.append(f"_close({value}, {_expr(case.expected)}, {case.tolerance.rtol!r}, {case.tolerance.atol!r})")
        elif check.name == "train" and {"X", "y", "epochs"} <= set(case.context):
            lines.append(f"_train_ok({value}, {_expr(case.context['X'])}, {_expr(case.context['y'])}, "
                         f"{case.context['epochs']!r})")
        else:
            lines.append(f"assert {value} is not None")
        tests.append(PeerTest(check.question, check.name, round(points, 6), "\n".join(lines)))
    return tests


def _helpers() -> str:
    functions = (ROOT / "autograder/execute/runtime/functions.py").read_text(encoding="utf-8")
    return PEER_HELPERS % {"functions": functions}


# -- nbgrader --------------------------------------------------------------------------------------

def peers_venv(work: Path) -> tuple[Path | None, str]:
    """A virtual environment with nbgrader and otter-grader (made once, under the work folder)."""
    venv = work / "peers-venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import nbgrader, otter, numpy, ipykernel"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return venv, "reused"
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [[base, "-m", "venv", "--clear", str(venv)],
             [str(python), "-m", "pip", "install", "-q", "nbgrader", "otter-grader", "numpy", "ipykernel"]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"{' '.join(step[:4])}... falló: {(done.stderr or done.stdout)[-800:]}"
    if subprocess.run(probe, capture_output=True).returncode != 0:
        return None, "instalados, pero no se importan"
    return venv, "installed"


def _nb_cell(source: str, meta: dict | None = None) -> dict:
    return {"cell_type": "code", "metadata": {"nbgrader": meta} if meta else {}, "source": source,
            "outputs": [], "execution_count": None}


def _nbgrader_cells(tests: list[PeerTest]) -> list[dict]:
    helpers = {"grade": False, "solution": False, "locked": True, "grade_id": "helpers", "schema_version": 3}
    cells = [_nb_cell(_helpers(), helpers)]
    for t in tests:
        meta = {"grade": True, "solution": False, "locked": True, "points": t.points,
                "grade_id": f"test_{t.question}_{t.name}", "schema_version": 3}
        cells.append(_nb_cell("G = globals()\n" + t.body, meta))
    return cells


def _with_cells(notebook: Path, extra: list[dict]) -> dict:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if c.get("cell_type") in ("code", "markdown")] + extra
    nb.setdefault("metadata", {})["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def nbgrader(venv: Path, spec: AssignmentSpec, course: Course, students: list[Student], work: Path,
             tests: list[PeerTest], cell_timeout_s: float) -> dict[str, Any]:
    root = work / "nbgrader" / f"course-{len(students)}"
    if root.exists():
        shutil.rmtree(root)
    (root / "source" / "ps1").mkdir(parents=True)
    cells = _nbgrader_cells(tests)
    stub = course.root / "assignments" / spec.id / spec.stub_name
    (root / "source" / "ps1" / "ps1.ipynb").write_text(json.dumps(_with_cells(stub, cells)), encoding="utf-8")
    for s in students:
        folder = root / "submitted" / s.name / "ps1"
        folder.mkdir(parents=True)
        (folder / "ps1.ipynb").write_text(json.dumps(_with_cells(s.path, cells)), encoding="utf-8")
    (root / "nbgrader_config.py").write_text(textwrap.dedent(f"""
        c = get_config()
        c.CourseDirectory.root = {str(root)!r}
        c.CourseDirectory.course_id = "bench"
        c.Execute.timeout = {int(cell_timeout_s)}
        c.Execute.interrupt_on_timeout = True
    """), encoding="utf-8")
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}", JUPYTER_PLATFORM_DIRS="1",
               JUPYTER_CONFIG_DIR=str(root / ".jupyter"), JUPYTER_DATA_DIR=str(root / ".jupyter-data"),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    nbg = [str(venv / "bin" / "python"), "-m", "nbgrader"]
    logs = work / "logs"
    for step in (["db", "assignment", "add", "ps1"], ["generate_assignment", "ps1", "--force"]):
        done = subprocess.run([*nbg, *step], cwd=root, env=env, capture_output=True, text=True)
        if done.returncode != 0 and step[0] != "db":
            return {"tool": "nbgrader", "n": len(students), "error": (done.stdout + done.stderr)[-2000:]}
    result = run_measured([*nbg, "autograde", "ps1", "--force"], cwd=root, env=env,
                          log=logs / f"nbgrader-{len(students)}.log")
    result.update(tool="nbgrader", config="autograde (1 proceso)", jobs=1, n=len(students))
    scores = _nbgrader_scores(root / "gradebook.db")
    result.update(graded=len(scores), per_minute=round(len(students) / result["wall_s"] * 60, 1),
                  mean_score=round(statistics.mean(scores.values()), 3) if scores else None, scores=scores)
    if result["returncode"] != 0 and not scores:
        result["error"] = (logs / f"nbgrader-{len(students)}.log").read_text(errors="replace")[-2000:]
    return result


def _nbgrader_scores(db: Path) -> dict[str, float]:
    if not db.is_file():
        return {}
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "select s.student_id, sum(coalesce(g.manual_score, g.auto_score, 0)) from grade g "
            "join submitted_notebook n on g.notebook_id = n.id join submitted_assignment s on n.assignment_id = s.id "
            "group by s.student_id").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        con.close()
    return {student: round(float(score or 0), 6) for student, score in rows}


# -- Otter ----------------------------------------------------------------------------------------

def otter(venv: Path, spec: AssignmentSpec, students: list[Student], work: Path,
          tests: list[PeerTest], cap_s: float) -> dict[str, Any]:
    """``otter run`` once per notebook (it grades one at a time); it has no time limit of its own, so a
    notebook that runs past our submission cap is killed and scores 0."""
    root = work / "otter" / f"run-{len(students)}"
    if root.exists():
        shutil.rmtree(root)
    (root / "tests").mkdir(parents=True)
    for qid in dict.fromkeys(t.question for t in tests):
        body = ["from otter.test_files import test_case", "", "OK_FORMAT = False", f"name = {qid!r}", "points = None",
                "", _helpers(), ""]
        for t in (t for t in tests if t.question == qid):
            body += [f"@test_case(points={t.points!r}, hidden=False, name={t.name!r})",
                     f"def test_{t.name}(env):", "    G = env", textwrap.indent(t.body, "    "), ""]
        (root / "tests" / f"{qid}.py").write_text("\n".join(body), encoding="utf-8")
    (root / "requirements.txt").write_text("numpy\n", encoding="utf-8")
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", JUPYTER_PLATFORM_DIRS="1")
    otter_cli = [str(venv / "bin" / "python"), "-m", "otter"]
    generated = subprocess.run([*otter_cli, "generate", "-t", "tests", "-o", "autograder.zip", "-r",
                                "requirements.txt"], cwd=root, env=env, capture_output=True, text=True)
    zips = [root / "autograder.zip"]
    if generated.returncode != 0 or not zips[0].is_file():
        return {"tool": "otter", "n": len(students), "error": (generated.stdout + generated.stderr)[-2000:]}
    scores: dict[str, float] = {}
    walls, peaks, killed = [], [], []
    for s in students:
        notebook = root / "subs" / f"{s.name}.ipynb"
        notebook.parent.mkdir(exist_ok=True)
        nb = json.loads(s.path.read_text(encoding="utf-8"))
        nb.setdefault("metadata", {})["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                                       "language": "python"}
        notebook.write_text(json.dumps(nb), encoding="utf-8")
        out = root / "results" / s.name
        out.mkdir(parents=True)
        one = run_measured([*otter_cli, "run", "-a", str(zips[0]), "-o", str(out), str(notebook)], cwd=root, env=env,
                           log=work / "logs" / f"otter-{s.name}.log", timeout_s=cap_s)
        walls.append(one["wall_s"])
        peaks.append(one)
        results = out / "results.json"
        if one["wall_s"] >= cap_s:
            killed.append(s.name)
            scores[s.name] = 0.0
        elif results.is_file():
            data = json.loads(results.read_text())
            scores[s.name] = round(sum(float(t.get("score") or 0) for t in data.get("tests", [])), 6)
    total = sum(walls)
    result = {"tool": "otter", "config": "otter run (sin contenedor, uno por cuaderno)", "jobs": 1,
              "n": len(students), "wall_s": round(total, 2), "graded": len(scores),
              "per_minute": round(len(students) / total * 60, 1) if total else None,
              "median_submission_s": round(statistics.median(walls), 3) if walls else None,
              "peak_grader_rss_mib": max((p["peak_grader_rss_mib"] for p in peaks), default=None),
              "peak_workers_rss_mib": max((p["peak_workers_rss_mib"] for p in peaks), default=None),
              "mean_score": round(statistics.mean(scores.values()), 3) if scores else None, "scores": scores,
              "killed_at_cap": killed}
    if not scores:
        result["error"] = (work / "logs" / f"otter-{students[0].name}.log").read_text(errors="replace")[-2000:]
    return result


# -- report -----------------------------------------------------------------------------------------

def _line(r: dict[str, Any]) -> str:
    if r.get("error") or "wall_s" not in r:
        error = (r.get("error") or "?").strip().splitlines() or ["?"]
        return f"  {r['tool']:9s} {r.get('config', ''):24s} N={r['n']:<4d} ERROR: {error[-1][:160]}"
    rss = f"grader {r.get('peak_grader_rss_mib')} MiB, workers {r.get('peak_workers_rss_mib')} MiB"
    if r.get("peak_workers_pss_mib"):
        rss += f" (PSS {r['peak_workers_pss_mib']} MiB)"
    over = f", overhead/sub {r['median_overhead_s']:.3f} s" if "median_overhead_s" in r else ""
    return (f"  {r['tool']:9s} {r.get('config', ''):24s} N={r['n']:<4d} {r['wall_s']:8.1f} s  "
            f"{r.get('per_minute') or 0:7.1f} subs/min{over}; peak RSS {rss}")


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    by = {(r["tool"], r.get("config"), r["n"]): r for r in results if not r.get("error") and r.get("per_minute")}
    for n in sorted({r["n"] for r in results}):
        pool = by.get(("ours", "pool-all", n))
        nopool = by.get(("ours", "no-pool-all", n))
        pool1 = by.get(("ours", "pool-1", n))
        if pool and nopool:
            ratios[f"N={n} pool/no-pool (all cores)"] = round(pool["per_minute"] / nopool["per_minute"], 2)
            ratios[f"N={n} overhead no-pool - pool (s/sub)"] = round(
                nopool["median_overhead_s"] - pool["median_overhead_s"], 3)
        for (tool, _config, m), peer in by.items():
            if tool == "ours" or m > n:
                continue
            for label, mine in (("--jobs 1, pool", pool1), ("all cores, pool", pool)):
                if mine and m == n:
                    ratios[f"N={n} ours ({label}) / {tool}"] = round(mine["per_minute"] / peer["per_minute"], 1)
                elif mine and m < n:
                    ratios[f"ours N={n} ({label}) / {tool} N={m}"] = round(mine["per_minute"] / peer["per_minute"], 1)
    agreement = {}
    for peer in (r for r in results if r["tool"] != "ours" and r.get("scores")):
        mine = next((r for r in results if r["tool"] == "ours" and r.get("scores") and
                     set(peer["scores"]) <= set(r["scores"]) and r["n"] >= peer["n"]), None)
        if mine:
            close = sum(1 for k, v in peer["scores"].items() if abs(v - mine["scores"][k]) <= 0.5)
            agreement[f"{peer['tool']} N={peer['n']}"] = f"{close}/{len(peer['scores'])} within 0.5 points of ours"
    same = {}
    ours_runs = [r for r in results if r["tool"] == "ours" and r.get("scores")]
    for n in sorted({r["n"] for r in ours_runs}):
        runs = [r["scores"] for r in ours_runs if r["n"] == n]
        same[f"N={n}"] = all(s == runs[0] for s in runs[1:])
    return {"ratios": ratios, "ours_scores_identical_across_configs": same, "peer_score_agreement": agreement}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="01_backprop")
    parser.add_argument("-n", "--size", type=int, action="append", help="class size (repeatable; default 100)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"ours: any of {', '.join(CONFIGS)}")
    parser.add_argument("--no-peers", action="store_true", help="skip nbgrader and Otter")
    parser.add_argument("--nbgrader-n", type=int, default=100, help="class size for nbgrader (0: skip)")
    parser.add_argument("--otter-n", type=int, default=10, help="class size for Otter (0: skip)")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "autograder-bench")
    args = parser.parse_args(argv)
    sizes = args.size or [100]
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}")
    work: Path = args.work.resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    course = Course(ROOT)
    spec = course.spec(args.assignment)
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform}
    try:
        machine["load_avg_at_start"] = os.getloadavg()
    except OSError:
        pass
    print(f"bench: {spec.id}, sizes {sizes}, {machine['cpus']} CPUs, work {work}", flush=True)
    results: list[dict[str, Any]] = []
    classes: dict[int, list[Student]] = {}
    for n in sizes:
        students = make_class(course, spec, n, work / "classes" / f"{spec.id}-{n}")
        classes[n] = students
        mix = {k: sum(1 for s in students if s.kind == k) for k in ("correct", "buggy", "broken", "loop")}
        print(f"class N={n}: {mix}", flush=True)
        for config in configs:
            r = ours(config, spec, work / "classes" / f"{spec.id}-{n}", work, n)
            results.append(r)
            print(_line(r), flush=True)
    peers_status = "skipped (--no-peers)"
    if not args.no_peers and (args.nbgrader_n or args.otter_n):
        venv, peers_status = peers_venv(work)
        print(f"peers venv: {peers_status}", flush=True)
        if venv is not None:
            tests = peer_tests(spec)
            largest = max(sizes)
            if args.nbgrader_n:
                n = min(args.nbgrader_n, largest)
                students = classes.get(n) or make_class(course, spec, n, work / "classes" / f"{spec.id}-{n}")
                r = nbgrader(venv, spec, course, students, work, tests, spec.limits.cell_timeout_s)
                results.append(r)
                print(_line(r), flush=True)
            if args.otter_n:
                n = min(args.otter_n, largest)
                base = classes[min(m for m in sizes if m >= n)]
                students = base[:n]  # a subset of the class, with its one infinite loop
                loop = next(s for s in base if s.kind == "loop")
                if loop not in students:
                    students[-1] = loop
                r = otter(venv, spec, students, work, tests, spec.limits.submission_cap_s)
                results.append(r)
                print(_line(r), flush=True)
        else:
            print("nbgrader/Otter could not be installed here: reporting ours alone.", flush=True)
    summary = summarize(results)
    print("\nsummary:")
    for r in results:
        print(_line(r))
    for key, value in summary["ratios"].items():
        print(f"  {key}: {value}")
    for key, value in summary["ours_scores_identical_across_configs"].items():
        print(f"  our scores identical across configurations ({key}): {value}")
    for key, value in summary["peer_score_agreement"].items():
        print(f"  score agreement, {key}: {value}")
    report = {"assignment": spec.id, "seed": SEED, "machine": machine, "peers": peers_status, "results": results,
              **summary}
    (work / "report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"\nreport: {work / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
