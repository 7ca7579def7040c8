"""The warm pool: one zygote per worker slot, and nothing of one submission reaches the next.

Every test runs in the real sandbox. The isolation tests let a first
"student" leave everything it can behind (files, System V IPC, keys, a
daemon, monkeypatched modules) and assert, from what the *next* runtime of
the same zygote reports about itself, that none of it is there.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import textwrap
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from autograder.cli import app
from autograder.execute.pool import WorkerPool, Zygote
from autograder.execute.sandbox import MODE_NONE, SandboxPlan
from autograder.execute.session import Session, SessionDied
from autograder.grade.batch import BatchOptions, grade_batch
from autograder.grade.cases import prepare
from autograder.grade.submission import GradeContext, grade_submission
from autograder.results import Status
from autograder.spec import Limits
from conftest import ROOT, notebook_from_solution, write_notebook

# slots far from the 0..jobs-1 that batches use, so that a concurrent grader's uids do not share our process limit
SLOT = 6
NR = {"x86_64": {"add_key": 248, "keyctl": 250}, "aarch64": {"add_key": 217, "keyctl": 219}}.get(platform.machine(), {})

LEAVE_EVERYTHING_BEHIND = textwrap.dedent(f"""
    import builtins, ctypes, json, os, sys, time
    import numpy as np
    home = os.path.expanduser('~')
    done = {{}}
    for path in ['/tmp/x', home + '/y', '/dev/shm/z']:
        with open(path, 'w') as fh:
            fh.write('secreto de A')
        done[path] = os.path.exists(path)
    os.makedirs('/tmp/cerrada/dentro')
    open('/tmp/cerrada/dentro/f', 'w').write('A')
    os.chmod('/tmp/cerrada/dentro', 0)
    os.chmod('/tmp/cerrada', 0o500)
    os.symlink('/tmp/x', home + '/enlace')
    os.mkfifo('/tmp/fifo')
    libc = ctypes.CDLL(None, use_errno=True)
    IPC_CREAT = 0o1000
    done['shm'] = libc.shmget(0x5EC2E7, 4096, IPC_CREAT | 0o600)
    done['msg'] = libc.msgget(0x5EC2E7, IPC_CREAT | 0o600)
    done['sem'] = libc.semget(0x5EC2E7, 1, IPC_CREAT | 0o600)
    try:
        rt = ctypes.CDLL('librt.so.1', use_errno=True)
        done['mqueue'] = rt.mq_open(b'/fuga', os.O_CREAT | os.O_RDWR, 0o600, None)
    except OSError:
        done['mqueue'] = -1
    nr = {NR!r}
    if nr:
        for keyring in (-3, -4, -5):  # session, user, user-session keyrings
            done[f'key{{keyring}}'] = libc.syscall(nr['add_key'], b'user', b'fuga', b'secreto', 7, keyring)
    if os.fork() == 0:  # a daemon: double fork + setsid, that writes later
        os.setsid()
        if os.fork() == 0:
            time.sleep(1.0)
            for path in ['/tmp/tarde', home + '/tarde', '/dev/shm/tarde']:
                open(path, 'w').write('tarde')
            os._exit(0)
        os._exit(0)
    np.allclose = lambda *a, **k: True
    np.FUGA = 'A'
    builtins.FUGA = 'A'
    sys.modules['fuga'] = np
    os.environ['FUGA'] = 'A'
    print(json.dumps(done))
""")

REPORT_WHAT_IS_LEFT = textwrap.dedent(f"""
    import builtins, ctypes, json, os, sys, time
    import numpy as np
    time.sleep(2.0)  # the daemon would have written by now
    home = os.path.expanduser('~')
    libc = ctypes.CDLL(None, use_errno=True)
    nr = {NR!r}
    keys = []
    if nr:
        for keyring in (-3, -4, -5):
            if libc.syscall(nr['keyctl'], 10, keyring, b'user', b'fuga', 0) >= 0:  # KEYCTL_SEARCH
                keys.append(keyring)
    print(json.dumps({{
        'tmp': sorted(os.listdir('/tmp')), 'home': sorted(os.listdir(home)), 'shm': sorted(os.listdir('/dev/shm')),
        'ipc': {{k: open('/proc/sysvipc/' + k).read().splitlines()[1:] for k in ('shm', 'msg', 'sem')}},
        'allclose': bool(np.allclose(1.0, 2.0)), 'np': hasattr(np, 'FUGA'), 'builtins': hasattr(builtins, 'FUGA'),
        'module': 'fuga' in sys.modules, 'env': 'FUGA' in os.environ, 'keys': keys,
        'procs': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), 'me': os.getpid(), 'parent': os.getppid(),
        'uid': os.getuid(),
    }}))
""")


def plan(mode: str, **limits) -> SandboxPlan:
    return SandboxPlan(mode=mode, limits=Limits(**limits), slot=SLOT)


def bound_under_tmp(sandbox: SandboxPlan) -> list[str]:
    """The top folders of /tmp that hold read-only binds (a checkout under /tmp): never wiped."""
    argv = sandbox.command(0, 1)
    targets = [argv[i + 2] for i, opt in enumerate(argv) if opt == "--ro-bind"]
    return sorted({t.split("/")[2] for t in targets if t.startswith("/tmp/")})


def last_json(session: Session) -> dict:
    return json.loads(session.output.text().strip().splitlines()[-1])


def cell(session: Session, source: str, timeout: float = 20) -> dict:
    return session.request({"op": "cell", "index": 0, "source": source}, timeout)


@pytest.fixture()
def zygote(sandbox_mode):
    z = Zygote(plan(sandbox_mode), ["numpy"])
    yield z
    z.close()


def code_notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells]
    return nb


# -- isolation -------------------------------------------------------------------------

@pytest.mark.parametrize("ending", ["exit", "hang", "crash"])
def test_next_submission_sees_nothing_of_the_previous_one(zygote, ending):
    first = zygote.spawn()
    reply = cell(first, LEAVE_EVERYTHING_BEHIND)
    assert reply["status"] == "ok", reply
    if ending == "hang":
        with pytest.raises(SessionDied):
            cell(first, "while True:\n    pass", timeout=1)
    elif ending == "crash":
        with pytest.raises(SessionDied):
            cell(first, "import os\nos._exit(3)")
    first.close()
    left = json.loads(first.output.text().strip().splitlines()[0])
    # the first student really did leave all of this behind
    assert all(left[p] for p in ("/tmp/x", "/dev/shm/z")) and any(k.endswith("/y") for k in left), left
    assert left["shm"] >= 0 and left["msg"] >= 0 and left["sem"] >= 0, left
    assert left["mqueue"] == -1, "POSIX message queues must be refused (prlimit --msgqueue=0)"
    if NR:
        assert all(left[f"key{k}"] > 0 for k in (-3, -4, -5)), left

    second = zygote.spawn()
    reply = cell(second, REPORT_WHAT_IS_LEFT)
    second.close()
    assert reply["status"] == "ok", reply
    seen = last_json(second)
    assert seen["tmp"] == bound_under_tmp(zygote.plan) and seen["home"] == [] and seen["shm"] == [], seen
    assert seen["ipc"] == {"shm": [], "msg": [], "sem": []}, seen
    assert seen["keys"] == [], seen
    assert not seen["allclose"] and not seen["np"] and not seen["builtins"], seen
    assert not seen["module"] and not seen["env"], seen
    assert seen["procs"] == sorted({1, seen["parent"], seen["me"]}), "a process of the first student survived"
    assert zygote.starts == 1, "isolated by the reap, not by a new sandbox"


def test_fresh_sandboxes_are_isolated_the_same_way(sandbox_mode):
    """The direct mode (--no-pool) passes the same check: keyrings included."""
    with Session(plan(sandbox_mode), ["numpy"]) as first:
        assert cell(first, LEAVE_EVERYTHING_BEHIND)["status"] == "ok"
    with Session(plan(sandbox_mode), ["numpy"]) as second:
        assert cell(second, REPORT_WHAT_IS_LEFT)["status"] == "ok"
    seen = last_json(second)
    assert seen["tmp"] == bound_under_tmp(plan(sandbox_mode)) and seen["home"] == [] and seen["shm"] == [], seen
    assert seen["keys"] == [], seen


def test_runtimes_run_as_the_slot_uid_in_a_session_of_their_own(zygote, sandbox_mode):
    session = zygote.spawn()
    reply = cell(session, "import os, json\nprint(json.dumps([os.getuid(), os.getsid(0), os.getpid(), os.getppid(),"
                          " open('/proc/%d/status' % os.getppid()).read().count('TracerPid:\\t0')]))\n"
                          "try:\n    os.kill(-os.getppid(), 9)\nexcept OSError as e:\n    print('no group', e.errno)")
    session.close()
    assert reply["status"] == "ok", reply
    uid, sid, pid, parent, _ = json.loads(session.output.text().splitlines()[0])
    assert sid == pid and parent != 1
    if sandbox_mode != MODE_NONE and uid != 0:
        assert uid >= 61000
    assert zygote.alive


def test_a_runtime_cannot_read_the_zygote_memory_or_fds(zygote):
    session = zygote.spawn()
    reply = cell(session, textwrap.dedent("""
        import os
        zygote = os.getppid()
        for path in ['/proc/%d/mem' % zygote, '/proc/%d/environ' % zygote]:
            try:
                open(path, 'rb').read(1); print('readable', path)
            except OSError as e:
                print('denied', path)
        try:
            print('fds', os.listdir('/proc/%d/fd' % zygote))
        except OSError:
            print('denied fds')
    """))
    session.close()
    assert reply["status"] == "ok", reply
    assert "readable" not in session.output.text() and "fds [" not in session.output.text()


# -- hangs, crashes, a dead or stuck zygote, fork bombs ----------------------------------

def quick(spec, seed: int, mode: str) -> GradeContext:
    """The real spec and checks with short wall-time limits (2 s a cell or a check)."""
    spec = dataclasses.replace(spec, limits=dataclasses.replace(spec.limits, cell_timeout_s=2, submission_cap_s=30))
    prepared = [dataclasses.replace(p, check=dataclasses.replace(p.check, timeout_s=2))
                for p in prepare(spec.checks, seed)]
    return GradeContext(spec, prepared, mode)


def test_a_hang_costs_only_its_check_and_the_zygote_survives(backprop, sandbox_mode, tmp_path):
    ctx = quick(backprop, 7, sandbox_mode)
    hang = write_notebook(code_notebook(
        "import numpy as np\ndef relu_forward(x):\n    return np.maximum(x, 0)",
        "while True:\n    pass",
        "def relu_backward(dout, x):\n    while True:\n        pass",
        "def softmax(logits):\n    e = np.exp(logits - logits.max(axis=1, keepdims=True))\n    return e / e.sum(axis=1, keepdims=True)",
    ), tmp_path / "h.ipynb")
    solution = write_notebook(notebook_from_solution(backprop), tmp_path / "s.ipynb")
    with WorkerPool(ctx.plan, ctx.preload, 1) as pool:
        worker = pool.worker(0)
        result = grade_submission(ctx, hang, "h", worker=worker)
        assert [c.status for c in result.cells] == ["ok", "timeout", "ok", "ok"]
        status = {c.check: c.status for c in result.checks}
        assert status["relu_forward"] is Status.PASS and status["softmax"] is Status.PASS
        assert status["relu_backward"] is Status.TIMEOUT
        assert worker.starts == 1 and worker.forks >= 3  # restarted by forking, not by a new sandbox
        after = grade_submission(ctx, solution, "s", worker=worker)
    assert after.score == backprop.max_score, [c for c in after.checks if not c.passed]


@pytest.mark.parametrize("attack", ["kill_zygote", "kill_everyone", "stop_zygote"])
def test_a_runtime_that_kills_or_stops_its_zygote_gets_it_replaced(zygote, attack):
    source = {
        "kill_zygote": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(5)",
        "kill_everyone": "import os, signal\nos.kill(-1, signal.SIGKILL)\nimport time\ntime.sleep(5)",
        "stop_zygote": "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)",
    }[attack]
    first = zygote.spawn()
    try:
        cell(first, source, timeout=10)
    except SessionDied:
        pass
    first.close()
    second = zygote.spawn()
    reply = cell(second, "print('sigo aquí')")
    second.close()
    assert reply["status"] == "ok" and "sigo aquí" in second.output.text()
    assert zygote.starts == 2


def test_a_fork_bomb_does_not_keep_the_next_submission_from_starting(sandbox_mode):
    z = Zygote(plan(sandbox_mode, max_processes=32), ["numpy"])
    try:
        bomb = z.spawn()
        with pytest.raises(SessionDied):
            cell(bomb, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", timeout=3)
        bomb.close()
        after = z.spawn()
        reply = cell(after, "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
        after.close()
        assert reply["status"] == "ok", reply
        assert len(eval(after.output.text().strip())) == 3  # bwrap's init, the zygote, this runtime
    finally:
        z.close()


def test_the_pool_needs_the_real_sandbox():
    with pytest.raises(ValueError):
        Zygote(SandboxPlan(mode=MODE_NONE, limits=Limits()), ["numpy"])


# -- same scores with and without the pool, with 1 or 2 jobs -------------------------------

def small_class(backprop, folder: Path) -> Path:
    subs = folder / "entregas"
    write_notebook(notebook_from_solution(backprop), subs / "ana.ipynb")
    write_notebook(notebook_from_solution(backprop, {"db = dout.sum(axis=0)": "db = dout.mean(axis=0)"}),
                   subs / "bruno.ipynb")
    write_notebook(notebook_from_solution(backprop, {"return dout * (x > 0)": "return dout * (x >= 0)"},
                                          extra_cells=["import os\nos._exit(1)"]), subs / "carla.ipynb")
    write_notebook(nbformat.read(ROOT / "assignments/01_backprop/01_backprop.ipynb", as_version=4),
                   subs / "dario.ipynb")
    write_notebook(code_notebook(
        "import numpy as np, os\ndef relu_forward(x):\n    os._exit(0)",
        "def relu_backward(dout, x):\n    return dout * (x > 0)",
        "import builtins\nbuiltins.abs = lambda x: 0\nimport numpy as np\nnp.allclose = lambda *a, **k: True",
    ), subs / "eva.ipynb")
    return subs


def outcomes(summary) -> dict[str, tuple]:
    return {r.student: (round(r.score, 6), tuple((c.check, c.status.value) for c in r.checks)) for r in summary.graded}


def test_scores_are_the_same_with_and_without_the_pool_and_with_any_jobs(backprop, sandbox_mode, tmp_path):
    subs = small_class(backprop, tmp_path)
    pooled = grade_batch(backprop, subs, tmp_path / "pool2", BatchOptions(jobs=2, seed=99))
    one_job = grade_batch(backprop, subs, tmp_path / "pool1", BatchOptions(jobs=1, seed=99))
    direct = grade_batch(backprop, subs, tmp_path / "direct", BatchOptions(jobs=2, seed=99, pool=False))
    assert outcomes(pooled) == outcomes(one_job) == outcomes(direct)
    scores = {r.student: r.score for r in pooled.graded}
    assert scores["ana"] == backprop.max_score and scores["dario"] == 0
    assert 0 < scores["bruno"] < backprop.max_score and 0 < scores["carla"] < backprop.max_score


def test_cli_no_pool_and_quiet_prints_nothing(backprop, sandbox_mode, tmp_path):
    subs = tmp_path / "entregas"
    write_notebook(notebook_from_solution(backprop), subs / "ana.ipynb")
    runner = CliRunner()
    for flags in (["--no-pool"], []):
        out = tmp_path / ("o" + "".join(flags))
        result = runner.invoke(app, ["grade", "01_backprop", str(subs), "--out", str(out), "--quiet", "--jobs", "1",
                                     "--course", str(ROOT), *flags])
        assert result.exit_code == 0, result.output
        assert result.output == ""
        assert "ana" in (out / "grades.csv").read_text()
