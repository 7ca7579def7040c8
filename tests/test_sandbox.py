"""The sandbox really isolates: what the student's process can and cannot see or do.

Every test runs code in the real sandbox (bubblewrap, plus setpriv when the
grader is root) and asserts on what came back.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from autograder.execute.sandbox import MODE_ROOT, UID_BASE, SandboxPlan, uid_for_slot
from autograder.execute.session import Session, SessionDied
from autograder.spec import Limits

ROOT = Path(__file__).resolve().parents[1]


def run_cell(mode: str, source: str, *, limits: Limits | None = None, timeout: float = 20, slot: int = 0,
             forbidden: list[str] | None = None) -> dict:
    plan = SandboxPlan(mode=mode, limits=limits or Limits(), slot=slot, forbidden_modules=forbidden or [])
    with Session(plan, preload=["numpy"]) as session:
        reply = session.request({"op": "cell", "index": 0, "source": textwrap.dedent(source)}, timeout)
    reply["output"] = session.output.text()  # complete once the session is closed
    return reply


def printed(reply: dict) -> str:
    assert reply["status"] == "ok", reply
    return reply["output"]


def test_runs_as_an_unprivileged_uid_of_its_slot(sandbox_mode):
    out = printed(run_cell(sandbox_mode, "import os; print(os.getuid(), os.geteuid())", slot=1))
    uid, euid = map(int, out.split())
    assert uid != 0 and euid != 0
    if sandbox_mode == MODE_ROOT:
        assert uid == uid_for_slot(1) >= UID_BASE


@pytest.mark.parametrize("secret", ["solutions/01_backprop/tests.py", "reference_impl/backprop.py", "pyproject.toml"])
def test_course_files_are_absent(sandbox_mode, secret):
    path = ROOT / secret
    assert path.exists()
    out = printed(run_cell(sandbox_mode, f"import os; print(os.path.exists({str(path)!r}))"))
    assert out.strip() == "False"


def test_filesystem_view_is_minimal(sandbox_mode):
    out = printed(run_cell(sandbox_mode, """
        import os
        print(sorted(os.listdir('/')))
        for p in ['/root', '/work', '/home/estudiante', '/etc/shadow', '/proc/1/environ']:
            try:
                os.listdir(p) if os.path.isdir(p) else open(p).read()
                print(p, 'readable')
            except OSError as e:
                print(p, 'denied', type(e).__name__)
    """))
    top = eval(out.splitlines()[0])
    assert "solutions" not in top and "reference_impl" not in top
    assert set(top) <= {"bin", "dev", "etc", "home", "lib", "lib32", "lib64", "opt", "proc", "root", "sbin", "tmp",
                        "usr", "work", "var", "mnt"} | {p for p in str(ROOT).split("/") if p}
    assert "/etc/shadow readable" not in out


def test_grader_sources_cannot_be_imported(sandbox_mode):
    out = printed(run_cell(sandbox_mode, """
        import importlib.util
        for name in ['reference_impl', 'autograder.grade', 'autograder.spec', 'autograder.store']:
            try:
                print(name, importlib.util.find_spec(name) is not None)
            except Exception as e:
                print(name, False)
    """))
    assert "True" not in out, out


def test_no_network(sandbox_mode):
    out = printed(run_cell(sandbox_mode, """
        import socket
        for addr in [('1.1.1.1', 80), ('127.0.0.1', 22)]:
            try:
                socket.create_connection(addr, timeout=2); print('connected')
            except OSError as e:
                print('blocked', e.errno)
    """))
    assert "connected" not in out


def test_environment_is_scrubbed(sandbox_mode, monkeypatch):
    monkeypatch.setenv("GRADEBOOK_PASSWORD", "s3cret")
    out = printed(run_cell(sandbox_mode, "import os; print(sorted(os.environ))"))
    assert "GRADEBOOK_PASSWORD" not in out and "s3cret" not in out
    assert "HOME" in out


def test_process_limit_holds(sandbox_mode):
    if sandbox_mode != MODE_ROOT:
        pytest.skip("per-uid process limits are enforced in root mode")
    out = printed(run_cell(sandbox_mode, """
        import os, time
        ok = 0
        for _ in range(200):
            try:
                if os.fork() == 0:
                    time.sleep(3); os._exit(0)
                ok += 1
            except OSError:
                break
        print(ok)
    """, limits=Limits(max_processes=16)))
    assert int(out.strip()) < 16


def test_memory_limit_holds(sandbox_mode):
    reply = run_cell(sandbox_mode, """
        try:
            block = bytearray(3 * 1024**3)
            print('allocated')
        except MemoryError:
            print('MemoryError')
    """, limits=Limits(memory_mb=1024))
    assert "allocated" not in reply["output"]


def test_private_tmp_per_session(sandbox_mode):
    printed(run_cell(sandbox_mode, "open('/tmp/leak.txt', 'w').write('from student A')"))
    out = printed(run_cell(sandbox_mode, "import os; print(os.path.exists('/tmp/leak.txt'))"))
    assert out.strip() == "False"
    assert not Path("/tmp/leak.txt").exists()


def test_read_only_folders_under_the_hosts_tmp_stay_visible(sandbox_mode, tmp_path):
    """A checkout (interpreter, data) under /tmp must not vanish behind the sandbox's private /tmp."""
    shared = tmp_path / "datos"
    shared.mkdir()
    (shared / "x.txt").write_text("público")
    for folder in [shared, *shared.parents]:
        if folder == Path("/tmp"):
            break
        folder.chmod(0o755)
    plan = SandboxPlan(mode=sandbox_mode, limits=Limits(), readonly_dirs=[shared])
    with Session(plan, preload=["numpy"]) as session:
        reply = session.request({"op": "cell", "index": 0, "source": textwrap.dedent(f"""
            print(open({str(shared / 'x.txt')!r}).read())
            try:
                open({str(shared / 'y.txt')!r}, 'w')
            except OSError as exc:
                import errno
                print(errno.errorcode[exc.errno])
        """)}, 20)
    assert reply["status"] == "ok", reply
    content, refusal = session.output.text().split()
    assert content == "público" and refusal in ("EROFS", "EACCES")
    assert not (shared / "y.txt").exists()


def test_disk_is_bounded(sandbox_mode):
    reply = run_cell(sandbox_mode, """
        written = 0
        try:
            with open('/tmp/big', 'wb') as fh:
                for _ in range(400):
                    fh.write(b'x' * 2**20); written += 1
        except OSError as e:
            print('stopped at', written, 'MiB:', type(e).__name__)
    """, limits=Limits(tmp_mb=32, max_file_mb=64))
    assert "stopped at" in reply["output"]


def test_cannot_signal_the_grader(sandbox_mode):
    out = printed(run_cell(sandbox_mode, f"""
        import os, signal
        try:
            os.kill({os.getpid()}, signal.SIGKILL); print('sent')
        except OSError as e:
            print('refused', e.errno)
        print(os.getppid())
    """))
    assert "sent" not in out
    # the grader (this process) is alive to read the answer


def test_hang_is_killed_and_signal_handlers_do_not_help(sandbox_mode):
    plan = SandboxPlan(mode=sandbox_mode, limits=Limits())
    with Session(plan) as session:
        with pytest.raises(SessionDied) as died:
            session.request({"op": "cell", "index": 0, "source": (
                "import signal\n"
                "for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT):\n"
                "    signal.signal(s, signal.SIG_IGN)\n"
                "while True:\n    pass\n")}, 1.0)
        assert died.value.reason == "timeout"
        assert not session.alive


def test_exit_is_reported_as_a_crash(sandbox_mode):
    plan = SandboxPlan(mode=sandbox_mode, limits=Limits())
    with Session(plan) as session:
        with pytest.raises(SessionDied) as died:
            session.request({"op": "cell", "index": 0, "source": "import os\nos._exit(0)"}, 10)
        assert died.value.reason == "crash"


def test_huge_output_is_drained_and_bounded(sandbox_mode):
    reply = run_cell(sandbox_mode, "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 100000)\nprint('end')",
                     limits=Limits(output_kb=16))
    assert reply["status"] == "ok"
    assert len(reply["output"]) < 32 * 1024
    assert "omitidos" in reply["output"] and reply["output"].rstrip().endswith("end")


def test_forbidden_module_cannot_be_imported(sandbox_mode):
    reply = run_cell(sandbox_mode, "import torch", forbidden=["torch"])
    assert reply["status"] == "error"
    assert "torch" in reply["error"]["message"]


def test_concurrent_graders_lease_different_uids(tmp_path):
    import subprocess
    import sys

    code = ("from autograder.execute.sandbox import uid_for_slot; import time; "
            "print(uid_for_slot(0), flush=True); time.sleep(5)")
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        theirs = int(other.stdout.readline())
        assert theirs != uid_for_slot(0)
        assert uid_for_slot(0) != uid_for_slot(1)
    finally:
        other.kill()
        other.wait()
        other.stdout.close()
