"""Batch grading benchmark: ours (warm pool, --jobs 1 / all cores; no pool) against nbgrader and Otter.

One command (about 65 minutes on a 2-core machine, nearly all of it spent by the peers)::

    .venv/bin/python benchmarks/bench_batch.py

grades, for ``01_backprop`` and ``02_ffnet``, the same generated class of
N=100 submissions (a realistic mix built from the assignment's solution, stub
and bundled examples: mostly correct and buggy notebooks, some broken ones,
exactly one infinite loop) with

* ours with ``--jobs 1`` and with all cores (warm pool), and with all cores
  and ``--no-pool`` (a fresh sandbox per submission);
* ours with all cores on a class of 500 (``--memory-n``), to show that the
  pool's memory does not grow with the class;
* ``nbgrader autograde`` on an equivalent nbgrader course built here;
* Otter-Grader's no-container ``otter run`` on the first ``--otter-n``
  submissions (10, always including the infinite loop).

It prints, per assignment, submissions per minute, the ratios ours/theirs,
the per-submission overhead of ours (median of a submission's wall time minus
the time spent in the student's own cells), the peak memory of our worker
pool at N=100 and N=500, what the infinite loop cost each grader, and how
busy the machine was with other work during each run (``others``: cores used
by processes outside the measured one). A JSON report is written to
``WORK/report.json``. Nothing here asserts a time: it only measures.

Options: ``--assignment ID`` (repeatable), ``-n N`` (repeatable class sizes),
``--configs pool-1,pool-all,no-pool-all``, ``--memory-n 0`` (skip the class of
500), ``--nbgrader-n``, ``--otter-n`` (0 skips that peer), ``--no-peers``,
``--work DIR``.

Peers: nbgrader and Otter-Grader are installed from PyPI into a separate
virtual environment under the work folder (never into the project's
``.venv``), with what the notebooks import (numpy, matplotlib, scikit-learn,
and torch, pinned by ``constraints/ci.txt``, for the PyTorch assignments).
Their kernels see the same ``autograder`` stand-in as our sandbox (a no-op
``check()`` and the course's data generators), so every notebook runs
unchanged. The nbgrader course is the released stub plus one autograded test
cell per hidden check: the cell runs our probe's steps on the student's
functions (with the same runtime helpers for tensors and modules) on inputs
fixed here, and asserts against the answers our reference computed for them
(custom judges are written out as plain assertions: training accuracy, He
initialisation, dropout). nbgrader runs every cell of the notebook, training
and plotting cells included (it cannot skip them), with our per-cell time
limit. Otter's ``otter run`` grades one notebook at a time with the same
tests and has no time limit: a notebook still running after our submission
cap is killed and scores 0.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.checks import Call, FunctionArg, Ref  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.grade.cases import prepare  # noqa: E402
from autograder.grade.submission import SKIP_TAGS  # noqa: E402
from autograder.spec import AssignmentSpec  # noqa: E402

SEED = 20240611  # the batch seed of every configuration (same inputs everywhere)
PEER_SEED = 12345  # the fixed inputs of the peers' test cells
CONFIGS = ("pool-1", "pool-all", "no-pool-all")
ASSIGNMENTS = ("01_backprop", "02_ffnet")
LOOP_WORDS = ("bucle", "loop", "cuelga", "hang", "infinit")
SHIM = ROOT / "autograder" / "execute" / "runtime" / "shim"  # `from autograder import check` as in our sandbox
TARGET_RATIO = 10.0
TARGET_OVERHEAD_S = 0.3


def _cores() -> int:
    return os.cpu_count() or 1


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
    """N notebooks ``estNNN.ipynb``: ~60 % correct, ~30 % buggy, the rest broken, exactly one infinite loop.

    Which example each student is goes to ``<dest>.json`` (beside the folder, not in it).
    """
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
    manifest = {s.name: {"source": s.source, "kind": s.kind} for s in students}
    dest.with_suffix(".json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return students


def _mix(students: list[Student]) -> str:
    counts = {k: sum(1 for s in students if s.kind == k) for k in ("correct", "buggy", "broken", "loop")}
    return (f"{counts['correct']} correct, {counts['buggy']} buggy, {counts['broken']} broken, "
            f"{counts['loop']} infinite loop")


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


CPUACCT = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1; cgroup v2 keeps cpu.stat in every group
CGROUP2 = Path("/sys/fs/cgroup/unified") if Path("/sys/fs/cgroup/unified/cgroup.procs").exists() else Path("/sys/fs/cgroup")


class CpuMeter:
    """The CPU time of a command with everything it starts (sandboxes and kernels included), and how many
    cores the rest of the machine kept busy meanwhile.

    The command runs in a cgroup of its own (it joins it before ``exec``), so the CPU of processes that
    never get waited for (a sandbox's runtimes) is counted too. Where no cgroup can be made (not root),
    the CPU is left unknown.
    """

    _count = 0

    def __init__(self) -> None:
        CpuMeter._count += 1
        self.group: Path | None = None
        for root, usage in ((CPUACCT, "cpuacct.usage"), (CGROUP2, "cpu.stat")):
            group = root / f"autograder-bench-{os.getpid()}-{CpuMeter._count}"
            try:
                group.mkdir()
            except OSError:
                continue
            if (group / usage).exists() and os.access(group / "cgroup.procs", os.W_OK):
                self.group, self.usage_file = group, group / usage
                break
            group.rmdir()

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` run from inside the cgroup (a shell joins it, then ``exec``s the command: same pid)."""
        if self.group is None:
            return cmd
        join = f'echo $$ > {str(self.group / "cgroup.procs")!r} && exec "$@"'
        return ["/bin/sh", "-c", join, "sh", *cmd]

    def _usage_s(self) -> float | None:
        if self.group is None:
            return None
        text = self.usage_file.read_text()
        if self.usage_file.name == "cpuacct.usage":
            return int(text) / 1e9
        return int(next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))) / 1e6

    def __enter__(self) -> CpuMeter:
        self.start = time.monotonic()
        self.busy0 = _machine_busy_s()
        self.load0 = _loadavg()
        return self

    def __exit__(self, *exc: Any) -> None:
        wall = max(time.monotonic() - self.start, 1e-9)
        busy = _machine_busy_s()
        ours = self._usage_s()
        self.report: dict[str, Any] = {"cpu_s": round(ours, 2) if ours is not None else None,
                                       "load_avg_1m": [self.load0, _loadavg()]}
        if ours is not None and busy is not None and self.busy0 is not None:
            self.report["others_cores"] = round(max(0.0, (busy - self.busy0 - ours) / wall), 2)
        if self.group is not None:
            try:
                self.group.rmdir()
            except OSError:
                pass  # a straggler still in it; harmless


def _machine_busy_s() -> float | None:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def run_measured(cmd: list[str], *, cwd: Path | None = None, log: Path, env: dict[str, str] | None = None,
                 timeout_s: float | None = None) -> dict[str, Any]:
    start = time.monotonic()
    with open(log, "wb") as fh, CpuMeter() as cpu:
        proc = subprocess.Popen(cpu.wrap(cmd), cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        with MemorySampler(proc.pid) as sampler:
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_tree(proc)
                code = proc.wait()
    return {"returncode": code, "wall_s": round(time.monotonic() - start, 2), **sampler.report(), **cpu.report}


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill a peer that ran past its cap, with its kernel (which it started in a session of its own)."""
    for pid in [*_proc_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


# -- ours -----------------------------------------------------------------------------------------

def ours(config: str, spec: AssignmentSpec, class_dir: Path, work: Path, n: int) -> dict[str, Any]:
    jobs = 1 if config == "pool-1" else _cores()
    label = f"ours-{spec.id}-{config}-{n}"
    out = work / "out" / label
    if out.exists():
        shutil.rmtree(out)
    cli = Path(sys.executable).with_name("autograder")
    base = [str(cli)] if cli.exists() else [sys.executable, "-c", "from autograder.cli import main; main()"]
    cmd = base + ["grade", spec.id, str(class_dir), "--out", str(out), "--jobs", str(jobs), "--seed", str(SEED),
                  "--quiet", "--course", str(ROOT)] + (["--no-pool"] if config.startswith("no-pool") else [])
    result = run_measured(cmd, log=work / "logs" / f"{label}.log")
    result.update(tool="ours", assignment=spec.id, config=config, jobs=jobs, n=n)
    grades = out / "grades.json"
    if result["returncode"] != 0 or not grades.is_file():
        result["error"] = (work / "logs" / f"{label}.log").read_text(errors="replace")[-2000:]
        return result
    subs = json.loads(grades.read_text())["submissions"]
    cells = [sum(c["duration_s"] for c in s.get("cells", [])) for s in subs]
    in_checks = [sum(c["duration_s"] for c in s.get("checks", [])) for s in subs]
    durations = [s["duration_s"] for s in subs]
    overhead = [d - c for d, c in zip(durations, cells, strict=True)]
    result.update(
        graded=len(subs),
        per_minute=round(len(subs) / result["wall_s"] * 60, 1),
        cpu_per_sub_s=_per(result.get("cpu_s"), len(subs)),
        median_submission_s=round(statistics.median(durations), 3),
        median_overhead_s=round(statistics.median(overhead), 3),
        median_overhead_without_checks_s=round(statistics.median(o - c for o, c in zip(overhead, in_checks, strict=True)), 3),
        mean_score=round(statistics.mean(s["score"] for s in subs), 3),
        statuses={k: sum(1 for s in subs if s["status"] == k) for k in sorted({s["status"] for s in subs})},
        scores={s["student"]: round(s["score"], 6) for s in subs},
        loops=[_loop_cost(s) for s in subs if _loop_cost(s)["timeouts"]],
    )
    return result


def _per(total: float | None, n: int) -> float | None:
    return round(total / n, 3) if total is not None and n else None


def _loop_cost(sub: dict[str, Any]) -> dict[str, Any]:
    """What a submission's hangs cost: its wall time and every cell or check that timed out."""
    cells = [c for c in sub.get("cells", []) if c["status"] == "timeout"]
    checks = [c for c in sub.get("checks", []) if c["status"] == "timeout"]
    return {"student": sub["student"], "duration_s": round(sub["duration_s"], 2), "score": round(sub["score"], 3),
            "timeouts": [f"cell {c['index']} ({c['duration_s']:.1f} s)" for c in cells]
            + [f"check {c['check']} ({c['duration_s']:.1f} s)" for c in checks]}


# -- the peers' tests: our hidden checks on fixed inputs, as plain Python --------------------------

PEER_HELPERS = '''
import base64 as _b64, random as _random, sys as _sys
import numpy as _np
_lib, _ops = {}, {}
exec(%(functions)r, _lib)
exec(%(ops)r, _ops)


def _a(data, dtype, shape):
    return _np.frombuffer(_b64.b64decode(data), dtype=dtype).reshape(shape).copy()


def _fn(G, name):
    return _ops["OPS"][name[1:]] if name.startswith("@") else G[name]


def _plain(value):
    torch = _sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _close(actual, expected, rtol, atol, path="resultado"):
    actual = _plain(actual)
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), path + ": claves"
        for key in expected:
            _close(actual[key], expected[key], rtol, atol, path + "[%%r]" %% key)
    elif isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), path + ": longitud"
        for i, (a, e) in enumerate(zip(actual, expected)):
            _close(a, e, rtol, atol, path + "[%%d]" %% i)
    elif expected is None or isinstance(expected, str):
        assert actual == expected, path + ": %%r != %%r" %% (actual, expected)
    else:
        a, e = _np.asarray(actual, dtype=float), _np.asarray(expected, dtype=float)
        assert a.shape == e.shape, path + ": forma %%s != %%s" %% (a.shape, e.shape)
        assert _np.allclose(a, e, rtol=rtol, atol=atol), path + ": valores"


def _train_ok(value, X, y, epochs):
    params, history = _plain(value)
    assert len(history) == epochs and history[-1] < history[0], "la pérdida no bajó"
    hidden = _np.maximum(X @ params["W1"] + params["b1"], 0)
    accuracy = float(_np.mean((hidden @ params["W2"] + params["b2"]).argmax(axis=1) == y))
    assert accuracy >= 0.9, "exactitud %%.2f" %% accuracy


def _init_ok(value, dims):
    value = _plain(value)
    D, H, C = dims
    params = value["params"]
    for k, shape in {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}.items():
        assert _np.shape(params[k]) == shape, k + ": forma"
        assert tuple(value["flags"][k]) == (True, True), k + ": requires_grad y hoja"
    assert not _np.any(params["b1"]) and not _np.any(params["b2"]), "sesgos a cero"
    for k, fan_in in (("W1", D), ("W2", H)):
        want = (2.0 / fan_in) ** 0.5
        assert abs(float(_np.std(params[k])) - want) <= 0.15 * want, k + ": inicialización de He"
    assert all(_np.array_equal(value["again"][k], params[k]) for k in params), "misma semilla, mismos pesos"
    assert not _np.array_equal(value["other"]["W1"], params["W1"]), "otra semilla, otros pesos"


def _differs(value, deterministic):
    value = _plain(value)
    assert _np.shape(value) == deterministic.shape and _np.all(_np.isfinite(value)), "forma"
    assert not _np.allclose(value, deterministic, rtol=1e-5, atol=1e-6), "el dropout no actúa"


def _accuracy_ok(state, X, y, minimum):
    s = _plain(state)
    hidden = _np.maximum(X @ s["fc1.weight"].T + s["fc1.bias"], 0)
    accuracy = float(_np.mean((hidden @ s["fc2.weight"].T + s["fc2.bias"]).argmax(axis=1) == y))
    assert accuracy >= minimum, "exactitud %%.3f < %%.3f" %% (accuracy, minimum)
'''


def _array(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor (a test's context)
        return value.detach().cpu().numpy()
    return value


def _expr(value: Any) -> str:
    """A Python expression for a probe value (arrays exactly, as base64)."""
    value = _array(value)
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
    judge: str  # how it decides: "values", or the custom judge written out


def _judge_line(check: Any, case: Any, value: str) -> tuple[str, str]:
    """The assertion of one check: values against our reference's answers, or a custom judge written out."""
    if case.judge is None or (case.expected is not None and check.name == "mlp_eval_dropout"):
        return f"_close({value}, {_expr(case.expected)}, {case.tolerance.rtol!r}, {case.tolerance.atol!r})", "values"
    ctx = case.context
    if {"X", "y", "epochs"} <= set(ctx):
        return f"_train_ok({value}, {_expr(ctx['X'])}, {_expr(ctx['y'])}, {ctx['epochs']!r})", "training accuracy"
    if "dims" in ctx:
        return f"_init_ok({value}, {_expr(tuple(ctx['dims']))})", "He initialisation"
    if "deterministic" in ctx:
        return f"_differs({value}, {_expr(ctx['deterministic'])})", "dropout acts"
    if {"X_test", "y_test", "reference_accuracy"} <= set(ctx):
        margin = getattr(sys.modules.get(check.build.__module__), "TARGET", {}).get("margin", 0.03)
        minimum = float(ctx["reference_accuracy"]) - margin
        return (f"_accuracy_ok({value}, {_expr(ctx['X_test'])}, {_expr(ctx['y_test'])}, {minimum!r})",
                "test accuracy")
    return f"assert {value} is not None", "runs (no plain equivalent of its judge)"


def peer_tests(spec: AssignmentSpec) -> list[PeerTest]:
    tests = []
    for prepared in prepare(spec.checks, PEER_SEED):
        check, case = prepared.check, prepared.case
        total = sum(c.weight for c in spec.checks_of(check.question))
        points = spec.question(check.question).points * check.weight / total
        lines = ["_res, _args = {}, {}", f"_random.seed({prepared.seed}); _np.random.seed({prepared.seed})"]
        if spec.needs_torch:
            lines.append(f"import torch as _torch; _torch.manual_seed({prepared.seed})")
        for step in case.probe.steps:
            assert isinstance(step, Call)
            lines.append(f"_args[{step.name!r}] = {_expr(list(step.args))}")
            lines.append(f"_res[{step.name!r}] = _fn(G, {step.function!r})(*_args[{step.name!r}], "
                         f"**{_expr(dict(step.kwargs))})")
        assertion, judge = _judge_line(check, case, _expr(case.probe.outputs))
        lines.append(assertion)
        tests.append(PeerTest(check.question, check.name, round(points, 6), "\n".join(lines), judge))
    return tests


def _helpers() -> str:
    runtime = ROOT / "autograder/execute/runtime"
    return PEER_HELPERS % {"functions": (runtime / "functions.py").read_text(encoding="utf-8"),
                           "ops": (runtime / "ops.py").read_text(encoding="utf-8")}


# -- the peers' environment ---------------------------------------------------------------------

def peers_venv(work: Path, torch: bool) -> tuple[Path | None, str]:
    """A virtual environment with nbgrader, otter-grader and what the notebooks import (made once)."""
    venv = work / "peers-venv"
    python = venv / "bin" / "python"
    modules = "nbgrader, otter, numpy, ipykernel, matplotlib, sklearn" + (", torch" if torch else "")
    probe = [str(python), "-c", f"import {modules}"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return venv, "reused"
    base = getattr(sys, "_base_executable", sys.executable)
    packages = ["nbgrader", "otter-grader", "numpy", "ipykernel", "matplotlib", "scikit-learn"] + (["torch"] if torch else [])
    steps = [] if python.exists() else [[base, "-m", "venv", str(venv)]]
    steps.append([str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints/ci.txt"), *packages])
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"{' '.join(step[:4])}... failed: {(done.stderr or done.stdout)[-800:]}"
    if subprocess.run(probe, capture_output=True).returncode != 0:
        return None, "installed, but they do not import"
    return venv, "installed"


def _peer_env(venv: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}", PYTHONPATH=str(SHIM),
                AUTOGRADER_SHIM_DATA=str(ROOT / "autograder"), MPLBACKEND="Agg", OMP_NUM_THREADS="1",
                OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", JUPYTER_PLATFORM_DIRS="1", **extra)


def _kernel_notebook(notebook: Path, extra: list[dict], *, strip_skipped: bool = False) -> dict:
    """The notebook as a peer runs it (with ``extra`` cells at the end); ``strip_skipped``: without the cells
    tagged ``skip-grading`` (what ours skips), to show what the peer costs with no training or plotting."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if c.get("cell_type") in ("code", "markdown") and not
                   (strip_skipped and SKIP_TAGS & set(c.get("metadata", {}).get("tags", [])))] + extra
    nb.setdefault("metadata", {})["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


# -- nbgrader --------------------------------------------------------------------------------------

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


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) .*Creating/updating student with ID '([^']+)'")


def _nbgrader_durations(log: Path, end: float) -> dict[str, float]:
    """Seconds per notebook, from the timestamps of nbgrader's log (one start per student)."""
    starts = []
    for line in log.read_text(errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if m:
            starts.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp(), m.group(2)))
    out = {}
    for (t, student), following in zip(starts, [*starts[1:], (end, "")], strict=True):
        out[student] = round(following[0] - t, 3)
    return out


def nbgrader(venv: Path, spec: AssignmentSpec, course: Course, students: list[Student], work: Path,
             tests: list[PeerTest], cell_timeout_s: float, *, strip_skipped: bool = False) -> dict[str, Any]:
    variant = "-lean" if strip_skipped else ""
    root = work / "nbgrader" / f"{spec.id}-{len(students)}{variant}"
    if root.exists():
        shutil.rmtree(root)
    (root / "source" / "ps1").mkdir(parents=True)
    cells = _nbgrader_cells(tests)
    stub = course.root / "assignments" / spec.id / spec.stub_name
    (root / "source" / "ps1" / "ps1.ipynb").write_text(
        json.dumps(_kernel_notebook(stub, cells, strip_skipped=strip_skipped)), encoding="utf-8")
    for s in students:
        folder = root / "submitted" / s.name / "ps1"
        folder.mkdir(parents=True)
        (folder / "ps1.ipynb").write_text(json.dumps(_kernel_notebook(s.path, cells, strip_skipped=strip_skipped)),
                                          encoding="utf-8")
    (root / "nbgrader_config.py").write_text(textwrap.dedent(f"""
        c = get_config()
        c.CourseDirectory.root = {str(root)!r}
        c.CourseDirectory.course_id = "bench"
        c.Execute.timeout = {int(cell_timeout_s)}
        c.Execute.interrupt_on_timeout = True
        c.Application.log_format = "%(asctime)s.%(msecs)03d [%(name)s | %(levelname)s] %(message)s"
        c.Application.log_datefmt = "%Y-%m-%d %H:%M:%S"
    """), encoding="utf-8")
    env = _peer_env(venv, JUPYTER_CONFIG_DIR=str(root / ".jupyter"), JUPYTER_DATA_DIR=str(root / ".jupyter-data"))
    nbg = [str(venv / "bin" / "python"), "-m", "nbgrader"]
    log = work / "logs" / f"nbgrader-{spec.id}-{len(students)}{variant}.log"
    for step in (["db", "assignment", "add", "ps1"], ["generate_assignment", "ps1", "--force"]):
        done = subprocess.run([*nbg, *step], cwd=root, env=env, capture_output=True, text=True)
        if done.returncode != 0 and step[0] != "db":
            return {"tool": "nbgrader", "assignment": spec.id, "n": len(students), "config": f"autograde{variant}",
                    "error": (done.stdout + done.stderr)[-2000:]}
    result = run_measured([*nbg, "autograde", "ps1", "--force"], cwd=root, env=env, log=log)
    result.update(tool="nbgrader", assignment=spec.id, config=f"autograde{variant}", jobs=1, n=len(students))
    scores = _nbgrader_scores(root / "gradebook.db")
    durations = _nbgrader_durations(log, datetime.now().timestamp())
    loop = next((s.name for s in students if s.kind == "loop"), None)
    result.update(graded=len(scores), per_minute=round(len(students) / result["wall_s"] * 60, 1),
                  cpu_per_sub_s=_per(result.get("cpu_s"), len(students)),
                  median_submission_s=round(statistics.median(durations.values()), 3) if durations else None,
                  mean_score=round(statistics.mean(scores.values()), 3) if scores else None, scores=scores,
                  loops=[{"student": loop, "duration_s": durations.get(loop), "score": scores.get(loop)}] if loop else [])
    if result["returncode"] != 0 and not scores:
        result["error"] = log.read_text(errors="replace")[-2000:]
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
    root = work / "otter" / f"{spec.id}-{len(students)}"
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
    env = _peer_env(venv)
    otter_cli = [str(venv / "bin" / "python"), "-m", "otter"]
    generated = subprocess.run([*otter_cli, "generate", "-t", "tests", "-o", "autograder.zip", "-r",
                                "requirements.txt"], cwd=root, env=env, capture_output=True, text=True)
    zip_file = root / "autograder.zip"
    if generated.returncode != 0 or not zip_file.is_file():
        return {"tool": "otter", "assignment": spec.id, "n": len(students),
                "error": (generated.stdout + generated.stderr)[-2000:]}
    scores: dict[str, float] = {}
    walls: dict[str, float] = {}
    peaks, killed = [], []
    for s in students:
        notebook = root / "subs" / f"{s.name}.ipynb"
        notebook.parent.mkdir(exist_ok=True)
        notebook.write_text(json.dumps(_kernel_notebook(s.path, [])), encoding="utf-8")
        out = root / "results" / s.name
        out.mkdir(parents=True)
        one = run_measured([*otter_cli, "run", "-a", str(zip_file), "-o", str(out), str(notebook)], cwd=root, env=env,
                           log=work / "logs" / f"otter-{spec.id}-{s.name}.log", timeout_s=cap_s)
        walls[s.name] = one["wall_s"]
        peaks.append(one)
        results = out / "results.json"
        if one["wall_s"] >= cap_s:
            killed.append(s.name)
            scores[s.name] = 0.0
        elif results.is_file():
            data = json.loads(results.read_text())
            scores[s.name] = round(sum(float(t.get("score") or 0) for t in data.get("tests", [])), 6)
    total = sum(walls.values())
    cpu = [p["cpu_s"] for p in peaks if p.get("cpu_s") is not None]
    loop = next((s.name for s in students if s.kind == "loop"), None)
    others = [p.get("others_cores") for p in peaks if p.get("others_cores") is not None]
    result = {"tool": "otter", "assignment": spec.id, "config": "otter run", "jobs": 1,
              "n": len(students), "wall_s": round(total, 2), "graded": len(scores),
              "per_minute": round(len(students) / total * 60, 1) if total else None,
              "cpu_per_sub_s": _per(sum(cpu), len(cpu)) if cpu else None,
              "median_submission_s": round(statistics.median(walls.values()), 3) if walls else None,
              "peak_grader_rss_mib": max((p["peak_grader_rss_mib"] for p in peaks), default=None),
              "peak_workers_rss_mib": max((p["peak_workers_rss_mib"] for p in peaks), default=None),
              "others_cores": round(statistics.mean(others), 2) if others else None,
              "mean_score": round(statistics.mean(scores.values()), 3) if scores else None, "scores": scores,
              "killed_at_cap": killed,
              "loops": [{"student": loop, "duration_s": walls.get(loop), "score": scores.get(loop),
                         "killed": loop in killed}] if loop else []}
    if not scores:
        result["error"] = (work / "logs" / f"otter-{spec.id}-{students[0].name}.log").read_text(errors="replace")[-2000:]
    return result


# -- report -----------------------------------------------------------------------------------------

LABELS = {"pool-1": "ours --jobs 1 (warm pool)", "pool-all": f"ours --jobs {_cores()} (warm pool)",
          "no-pool-all": f"ours --jobs {_cores()} --no-pool", "autograde": "nbgrader autograde",
          "autograde-lean": "nbgrader, skip-grading cells cut",
          "otter run": "otter run (no container)"}


def _label(r: dict[str, Any]) -> str:
    return LABELS.get(r.get("config", ""), f"{r['tool']} {r.get('config', '')}")


def _fmt(value: Any, spec: str = ".1f", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def table(results: list[dict[str, Any]]) -> list[str]:
    head = (f"  {'grader':34s} {'N':>4s} {'wall s':>8s} {'subs/min':>9s} {'CPU s/sub':>9s} {'median s/sub':>12s} "
            f"{'overhead s':>10s} "
            f"{'grader RSS':>10s} {'pool RSS':>9s} {'pool PSS':>9s} {'others':>6s}")
    lines = [head]
    for r in results:
        if r.get("error") or "wall_s" not in r:
            error = (r.get("error") or "?").strip().splitlines() or ["?"]
            lines.append(f"  {_label(r):34s} {r['n']:>4d} ERROR: {error[-1][:120]}")
            continue
        lines.append(
            f"  {_label(r):34s} {r['n']:>4d} {r['wall_s']:>8.1f} {_fmt(r.get('per_minute')):>9s} "
            f"{_fmt(r.get('cpu_per_sub_s'), '.3f'):>9s} "
            f"{_fmt(r.get('median_submission_s'), '.3f'):>12s} {_fmt(r.get('median_overhead_s'), '.3f'):>10s} "
            f"{_fmt(r.get('peak_grader_rss_mib'), '.0f'):>10s} {_fmt(r.get('peak_workers_rss_mib'), '.0f'):>9s} "
            f"{_fmt(r.get('peak_workers_pss_mib'), '.0f'):>9s} {_fmt(r.get('others_cores'), '.2f'):>6s}")
    return lines


def summarize(results: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Ratios, targets, memory, loop costs and score agreement of one assignment's results."""
    ok = [r for r in results if not r.get("error") and r.get("per_minute")]
    mine = {r["config"]: r for r in ok if r["tool"] == "ours" and r["n"] == n}
    peers = [r for r in ok if r["tool"] != "ours"]
    ratios: dict[str, float] = {}
    for peer in peers:
        for config in ("pool-1", "pool-all"):
            if config in mine:
                ratios[f"{_label(mine[config])} / {_label(peer)}"] = round(
                    mine[config]["per_minute"] / peer["per_minute"], 1)
    for peer in peers:
        if "pool-all" in mine and mine["pool-all"].get("cpu_per_sub_s") and peer.get("cpu_per_sub_s"):
            ratios[f"CPU per submission, {_label(peer)} / {_label(mine['pool-all'])}"] = round(
                peer["cpu_per_sub_s"] / mine["pool-all"]["cpu_per_sub_s"], 1)
    if "pool-all" in mine and "no-pool-all" in mine:
        ratios["warm pool / no pool (all cores)"] = round(mine["pool-all"]["per_minute"]
                                                          / mine["no-pool-all"]["per_minute"], 2)
    targets: dict[str, str] = {}
    nbg = next((p for p in peers if p.get("config") == "autograde"), None)
    if nbg and "pool-all" in mine:
        ratio = mine["pool-all"]["per_minute"] / nbg["per_minute"]
        targets[f"throughput >= {TARGET_RATIO:g}x nbgrader"] = f"{ratio:.1f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'}"
    for config in ("pool-1", "pool-all"):
        if config in mine:
            over = mine[config]["median_overhead_s"]
            bare = mine[config]["median_overhead_without_checks_s"]
            targets[f"overhead < {TARGET_OVERHEAD_S:g} s ({_label(mine[config])})"] = \
                f"{over:.3f} s: {'met' if over < TARGET_OVERHEAD_S else 'NOT met'} ({bare:.3f} s without the checks, " \
                "which run the student's functions)"
    memory = {f"N={r['n']}": {"pool_rss_mib": r.get("peak_workers_rss_mib"), "pool_pss_mib": r.get("peak_workers_pss_mib"),
                              "grader_rss_mib": r.get("peak_grader_rss_mib")}
              for r in ok if r["tool"] == "ours" and r["config"] == "pool-all"}
    loops = {_label(r) + (f" N={r['n']}" if r["n"] != n else ""): r.get("loops") for r in ok if r.get("loops")}
    same = [r["scores"] for r in ok if r["tool"] == "ours" and r["n"] == n and r.get("scores")]
    agreement: dict[str, Any] = {}
    base = mine.get("pool-all") or mine.get("pool-1")
    for peer in peers:
        if base and peer.get("scores"):
            differ = {k: (base["scores"].get(k), v) for k, v in peer["scores"].items()
                      if k in base["scores"] and abs(v - base["scores"][k]) > 0.5}
            agreement[_label(peer)] = {"same": len(peer["scores"]) - len(differ), "of": len(peer["scores"]),
                                       "differ": differ}
    return {"ratios": ratios, "targets": targets, "memory": memory, "loops": loops,
            "ours_scores_identical_across_configs": all(s == same[0] for s in same[1:]) if same else None,
            "agreement": agreement}


def print_assignment(spec: AssignmentSpec, n: int, students: list[Student], results: list[dict[str, Any]],
                     summary: dict[str, Any], manifest: dict[str, dict[str, str]]) -> None:
    limits = spec.limits
    print(f"\n== {spec.id}: N={n} ({_mix(students)}); limits: cell {limits.cell_timeout_s:g} s, "
          f"check {limits.check_timeout_s:g} s, submission {limits.submission_cap_s:g} s")
    for line in table(results):
        print(line)
    print("  (CPU s/sub: CPU time of the grader and everything it started, per submission; overhead: median of a "
          "submission's wall time minus the time in the student's own cells; RSS/PSS: peak MiB; others: cores used "
          "by other processes on the machine meanwhile)")
    for key, value in summary["ratios"].items():
        print(f"  ratio {key}: {value}x")
    for key, value in summary["targets"].items():
        print(f"  target {key}: {value}")
    for key, value in summary["memory"].items():
        print(f"  pool memory {key}: RSS {value['pool_rss_mib']} MiB, PSS {value['pool_pss_mib']} MiB "
              f"(grader {value['grader_rss_mib']} MiB)")
    for key, loops in summary["loops"].items():
        for loop in loops:
            what = f", timed out: {', '.join(loop['timeouts'])}" if loop.get("timeouts") else ""
            killed = " (killed at our cap: no limit of its own)" if loop.get("killed") else ""
            print(f"  infinite loop, {key}: {loop['student']} took {_fmt(loop.get('duration_s'))} s{killed}{what}; "
                  f"score {loop.get('score')}")
    if summary["ours_scores_identical_across_configs"] is not None:
        print(f"  our scores identical across configurations: {summary['ours_scores_identical_across_configs']}")
    for peer, agreement in summary["agreement"].items():
        print(f"  score agreement with {peer}: {agreement['same']}/{agreement['of']} within 0.5 points")
        by_source: dict[str, list[str]] = {}
        for student, (ours_score, theirs) in agreement["differ"].items():
            source = manifest.get(student, {}).get("source", "?")
            by_source.setdefault(f"{source}: ours {ours_score:g}, theirs {theirs:g}", []).append(student)
        for what, who in by_source.items():
            print(f"    {what} ({len(who)}: {', '.join(who[:4])}{'...' if len(who) > 4 else ''})")


def _part(students: list[Student], m: int) -> list[Student]:
    """The first ``m`` of a class, with its one infinite loop."""
    part = students[:m]
    loop = next((s for s in students if s.kind == "loop"), None)
    if loop is not None and loop not in part and part:
        part[-1] = loop
    return part


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", action="append", help=f"repeatable; default {' and '.join(ASSIGNMENTS)}")
    parser.add_argument("-n", "--size", type=int, action="append", help="class size (repeatable; default 100)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"ours: any of {', '.join(CONFIGS)}")
    parser.add_argument("--memory-n", type=int, default=500, help="also grade a class this big with all cores "
                                                                 "(pool memory against class size; 0: skip)")
    parser.add_argument("--no-peers", action="store_true", help="skip nbgrader and Otter")
    parser.add_argument("--nbgrader-n", type=int, default=100, help="class size for nbgrader (0: skip)")
    parser.add_argument("--nbgrader-lean-n", type=int, default=20,
                        help="also nbgrader on this many notebooks with the skip-grading cells cut out (0: skip)")
    parser.add_argument("--otter-n", type=int, default=10, help="class size for Otter (0: skip)")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "autograder-bench")
    args = parser.parse_args(argv)
    assignments = args.assignment or list(ASSIGNMENTS)
    sizes = args.size or [100]
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}")
    work: Path = args.work.resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    course = Course(ROOT)
    specs = [course.spec(a) for a in assignments]
    machine = {"cpus": _cores(), "python": sys.version.split()[0], "platform": sys.platform,
               "load_avg_at_start": _loadavg()}
    try:
        machine["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        machine["cpu_model"] = next((line.split(":", 1)[1].strip() for line in
                                     Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "")
    except (OSError, ValueError):
        pass
    print(f"bench: {', '.join(assignments)}; sizes {sizes}; memory check N={args.memory_n}; "
          f"{machine['cpus']} CPUs; work {work}", flush=True)
    peers_status = "skipped (--no-peers)"
    venv = None
    if not args.no_peers and (args.nbgrader_n or args.otter_n):
        venv, peers_status = peers_venv(work, torch=any(s.needs_torch for s in specs))
        print(f"peers venv ({work / 'peers-venv'}): {peers_status}", flush=True)
        if venv is None:
            print("nbgrader/Otter could not be installed here: reporting ours alone.", flush=True)
    report: dict[str, Any] = {"seed": SEED, "machine": machine, "peers": peers_status, "assignments": {}}
    printed = []
    for spec in specs:
        results: list[dict[str, Any]] = []
        classes: dict[int, list[Student]] = {}
        for n in sizes:
            class_dir = work / "classes" / f"{spec.id}-{n}"
            classes[n] = make_class(course, spec, n, class_dir)
            print(f"{spec.id} class N={n}: {_mix(classes[n])}", flush=True)
            for config in configs:
                r = ours(config, spec, class_dir, work, n)
                results.append(r)
                print(table([r])[1], flush=True)
        if args.memory_n and args.memory_n not in sizes:
            class_dir = work / "classes" / f"{spec.id}-{args.memory_n}"
            big = make_class(course, spec, args.memory_n, class_dir)
            print(f"{spec.id} class N={args.memory_n}: {_mix(big)}", flush=True)
            r = ours("pool-all", spec, class_dir, work, args.memory_n)
            results.append(r)
            print(table([r])[1], flush=True)
        n = sizes[0]
        if venv is not None:
            tests = peer_tests(spec)
            if args.nbgrader_n:
                m = min(args.nbgrader_n, n)
                students = classes[n][:m]
                if m < n:
                    print(f"nbgrader on the first {m} of the class", flush=True)
                r = nbgrader(venv, spec, course, students, work, tests, spec.limits.cell_timeout_s)
                results.append(r)
                print(table([r])[1], flush=True)
            if args.nbgrader_lean_n:
                r = nbgrader(venv, spec, course, _part(classes[n], args.nbgrader_lean_n), work, tests,
                             spec.limits.cell_timeout_s, strip_skipped=True)
                results.append(r)
                print(table([r])[1], flush=True)
            if args.otter_n:
                r = otter(venv, spec, _part(classes[n], args.otter_n), work, tests, spec.limits.submission_cap_s)
                results.append(r)
                print(table([r])[1], flush=True)
            report.setdefault("peer_tests", {})[spec.id] = {t.name: t.judge for t in tests}
        summary = summarize(results, n)
        manifest = json.loads((work / "classes" / f"{spec.id}-{n}.json").read_text(encoding="utf-8"))
        printed.append((spec, n, classes[n], results, summary, manifest))
        report["assignments"][spec.id] = {"results": results, **summary}
    machine["load_avg_at_end"] = _loadavg()
    print(f"\nsummary ({machine['cpus']} CPUs, {machine.get('cpu_model', '')}, {machine.get('memory_gib', '?')} GiB; "
          f"peers: {peers_status}; batch seed {SEED})")
    for args_ in printed:
        print_assignment(*args_)
    (work / "report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"\nreport: {work / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
