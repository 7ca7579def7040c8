"""The warm worker of one grading slot (a "zygote"), inside the sandbox.

The grader (``autograder/execute/pool.py``) starts it in the same sandbox as
a runtime (bubblewrap, the slot's own uid, the same rlimits) as
``python -I zygote.py CONTROL_FD``. It imports the preloaded modules once and
then serves its control socket (a Unix ``SOCK_SEQPACKET`` socket, one JSON
message per packet):

``{"op": "config", ...}``
    first message: the runtime config (forbidden modules, preload, device);
    answered ``{"op": "ready"}`` once the modules are imported.
``{"op": "fork"}`` with three fds: request read end, response write end, output write end
    fork a runtime for one submission: stdout and stderr on the output fd,
    ``runner.serve`` on the other two. Answered with the runtime's pid.
``{"op": "poll", "pid": N}``
    whether that runtime still runs, and how it ended if not.
``{"op": "reap", "pid": N, "grace": S}``
    wait up to S seconds for it to exit, then SIGKILL it and every other
    process of the sandbox, wait for all of them, and wipe what a process
    could leave for the next submission: the contents of ``/tmp``, ``$HOME``
    and ``/dev/shm`` (with what was made unwritable made writable again),
    System V IPC objects, the uid's keyrings. Answered with the exit status
    and the problems found (the grader then throws this sandbox away and
    starts a fresh one).
``{"op": "exit"}``

One runtime exists at a time: a fork is served only after the previous
runtime is reaped. The zygote never runs a student's code; it is not
dumpable, so a runtime (same uid) cannot ptrace it or read its memory or fds
through ``/proc``; each runtime starts in a session of its own with the
zygote's signal dispositions undone. A runtime that kills or stops the zygote
only gets its sandbox replaced (the grader notices).
"""

from __future__ import annotations

import ctypes
import errno
import gc
import json
import os
import platform
import re
import signal
import socket
import stat
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "shim"))
import runner  # noqa: E402

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
IPC_RMID = 0
KEYCTL_CLEAR = 7
KEYRINGS = (-3, -4, -5)  # session, user, user-session
KILL_DEADLINE_S = 5.0
MAX_MESSAGE = 65536
# signals a runtime could use to stop the zygote; a runtime gets them back as they were
SHIELDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
            signal.SIGALRM, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGPIPE, signal.SIGXFSZ)

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0)


def _exit_code(wait_status: int) -> int:
    return os.waitstatus_to_exitcode(wait_status)


class Zygote:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.child: int | None = None
        self.child_code: int | None = None  # exit code (negative: signal) once it ended
        self.handlers: dict[int, object] = {}
        self.wipe_dirs: dict[str, int] = {}  # folder -> its mode at start
        self.kept: dict[str, bool] = {}  # binds inside the wiped folders (True) and their parents (False)
        self.pid_namespace = False

    # -- start ----------------------------------------------------------------
    def setup(self, config: dict) -> None:
        # kill(-1) is only ever safe in a PID namespace of our own: bwrap's init is 1, we are 2
        self.pid_namespace = bool(config.get("sandboxed")) and os.getpid() == 2 and os.getppid() == 1
        if not self.pid_namespace:
            raise RuntimeError("el zigoto sólo funciona dentro del sandbox (espacio de PID propio)")
        _prctl(PR_SET_DUMPABLE, 0)
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans (daemons) come back to us, to be reaped
        for sig in SHIELDED:
            self.handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, signal.SIG_IGN)
        runner.own_keyrings(clear_user=True)
        runner.prepare(config)
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()  # its first call imports what seeding needs (60 ms)
        home = os.environ.get("HOME", "")
        for folder in ("/tmp", home, "/dev/shm"):
            if folder and os.path.isdir(folder) and not os.path.islink(folder):
                self.wipe_dirs[folder] = stat.S_IMODE(os.stat(folder).st_mode)
        # the interpreter or the data can be bound under /tmp (a checkout there): never wipe those
        binds = [m for m in _mount_points() if any(m.startswith(f.rstrip("/") + "/") for f in self.wipe_dirs)]
        self.kept = {parent: False for m in binds for parent in _parents(m)} | dict.fromkeys(binds, True)
        problems = self.clean()  # every runtime finds the same empty folders, the first one too
        if problems:
            raise RuntimeError("; ".join(problems))
        gc.collect()
        gc.freeze()  # keep the imported modules' pages shared with the forked runtimes

    # -- the loop -------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.control, MAX_MESSAGE, 3)
            except InterruptedError:
                continue
            if not data:
                return
            try:
                message = json.loads(data)
                op = message.get("op")
                if op == "fork":
                    reply = self.fork(fds)  # the runtime has its copies; ours are closed below
                elif op == "poll":
                    reply = self.poll(int(message["pid"]))
                elif op == "reap":
                    reply = self.reap(int(message["pid"]), float(message.get("grace", 0.0)))
                elif op == "exit":
                    if self.child is not None:
                        self.reap(self.child, 0.0)
                    return
                else:
                    reply = {"op": "error", "message": f"operación desconocida {op!r}"}
            finally:
                for fd in fds:
                    os.close(fd)
            self.control.send(json.dumps(reply).encode())

    def fork(self, fds: list[int]) -> dict:
        if len(fds) != 3:
            return {"op": "error", "message": f"se esperaban 3 descriptores, llegaron {len(fds)}"}
        if self.child is not None:  # the grader always reaps first; never two runtimes at once
            reaped = self.reap(self.child, 0.0)
            if reaped["problems"]:
                return {"op": "error", "message": "; ".join(reaped["problems"])}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        try:
            pid = os.fork()
        except OSError as exc:  # EAGAIN: the uid's process limit, also counting other sandboxes of this uid
            return {"op": "error", "message": f"fork: {exc}", "retry": exc.errno == errno.EAGAIN}
        if pid == 0:
            self._become_runtime(*fds)  # never returns
        self.child, self.child_code = pid, None
        return {"op": "forked", "pid": pid}

    def _become_runtime(self, req: int, resp: int, out: int) -> None:
        code = 1
        try:
            os.setsid()  # a process group of its own: killpg(0) in the student's code spares us
            for sig, handler in self.handlers.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
            _prctl(PR_SET_DUMPABLE, 1)  # as a freshly started runtime
            self.control.detach()  # the socket object must never close a reused fd number
            os.dup2(out, 1)
            os.dup2(out, 2)
            low = 3  # close everything else: the control socket, the output fd's original, stray fds
            for fd in sorted({req, resp}):
                os.closerange(low, fd)
                low = fd + 1
            os.closerange(low, max(os.sysconf("SC_OPEN_MAX"), low))
            os.chdir(os.environ.get("HOME", "/"))
            sys.argv = [os.path.join(HERE, "runner.py"), str(req), str(resp)]
            if "numpy" in sys.modules:  # a fresh process seeds numpy's global generator from the OS
                sys.modules["numpy"].random.seed()
            runner.serve(req, resp)
            code = 0
        except BaseException:
            try:
                traceback.print_exc()
            except BaseException:
                pass
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    # -- ending a runtime -----------------------------------------------------
    def _collect(self) -> None:
        """Reap every ended child (the runtime, and orphans that came to us)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            if pid == self.child and self.child_code is None:
                self.child_code = _exit_code(status)

    def poll(self, pid: int) -> dict:
        if pid != self.child:
            return {"op": "status", "running": False, "code": None}
        self._collect()
        return {"op": "status", "running": self.child_code is None, "code": self.child_code}

    def reap(self, pid: int, grace: float) -> dict:
        deadline = time.monotonic() + max(0.0, grace)
        if pid == self.child:
            while True:
                self._collect()
                if self.child_code is not None or time.monotonic() >= deadline:
                    break
                time.sleep(0.002)
        problems = self.kill_everyone()
        code = self.child_code if pid == self.child else None
        problems += self.clean()
        self.child, self.child_code = None, None
        return {"op": "reaped", "code": code, "problems": problems}

    def kill_everyone(self) -> list[str]:
        """SIGKILL every process of the sandbox but bwrap's init and us, and wait until they are gone."""
        deadline = time.monotonic() + KILL_DEADLINE_S
        me = str(os.getpid())
        while True:
            try:
                os.kill(-1, signal.SIGKILL)  # all we may signal in this PID namespace, except init and us
            except ProcessLookupError:
                pass
            self._collect()
            left = [p for p in os.listdir("/proc") if p.isdigit() and p not in ("1", me)]
            if not left:
                return []
            if time.monotonic() > deadline:
                return [f"quedan procesos tras SIGKILL: {left[:10]}"]
            time.sleep(0.001)

    def clean(self) -> list[str]:
        """Wipe what a process could leave for the next one; list what could not be wiped."""
        problems: list[str] = []
        for folder, mode in self.wipe_dirs.items():
            problems += _empty_folder(folder, self.kept)
            try:
                if os.stat(folder).st_uid == os.getuid():
                    os.chmod(folder, mode)
            except OSError as exc:
                problems.append(f"{folder}: {exc}")
        problems += _remove_sysv_ipc()
        for keyring in KEYRINGS:
            _keyctl(KEYCTL_CLEAR, keyring)
        return problems


def _mount_points() -> list[str]:
    """Every mount point this process sees (``/proc/self/mountinfo``, octal escapes decoded)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        fields = [line.split() for line in fh]
    decode = re.compile(r"\\([0-7]{3})")
    return [decode.sub(lambda m: chr(int(m.group(1), 8)), f[4]) for f in fields if len(f) > 4]


def _parents(path: str) -> list[str]:
    out = []
    while (parent := os.path.dirname(path)) != path:
        out.append(parent)
        path = parent
    return out


def _remove(path: str, kept: dict[str, bool]) -> None:
    if path in kept:  # a bind is left alone; a folder on the way to one is emptied of the rest
        if kept[path]:
            return
        for name in os.listdir(path):
            _remove(os.path.join(path, name), kept)
        return
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
            os.chmod(path, 0o700)  # made unreadable or unwritable by the runtime
        for name in os.listdir(path):
            _remove(os.path.join(path, name), kept)
        os.rmdir(path)
    else:
        os.unlink(path)  # files, symlinks (never followed), fifos, sockets


def _empty_folder(folder: str, kept: dict[str, bool]) -> list[str]:
    problems = []
    try:
        names = os.listdir(folder)
    except OSError as exc:
        return [f"{folder}: {exc}"]
    for name in names:
        try:
            _remove(os.path.join(folder, name), kept)
        except (OSError, RecursionError) as exc:
            problems.append(f"{os.path.join(folder, name)}: {type(exc).__name__}: {exc}")
    if not problems and any(os.path.join(folder, n) not in kept for n in os.listdir(folder)):
        problems.append(f"{folder} no quedó vacío")
    return problems


def _remove_sysv_ipc() -> list[str]:
    """IPC_RMID every System V shared memory segment, message queue and semaphore set."""
    removers = {
        "shm": lambda ident: _libc.shmctl(ident, IPC_RMID, None),
        "msg": lambda ident: _libc.msgctl(ident, IPC_RMID, None),
        "sem": lambda ident: _libc.semctl(ident, 0, IPC_RMID),
    }
    problems = []
    for kind, remove in removers.items():
        for ident in _sysv_ids(kind):
            if remove(ident) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.EIDRM):
                problems.append(f"IPC {kind} {ident}: {os.strerror(ctypes.get_errno())}")
        left = _sysv_ids(kind)
        if left and not problems:
            problems.append(f"IPC {kind}: quedan {left[:10]}")
    return problems


def _sysv_ids(kind: str) -> list[int]:
    try:
        with open(f"/proc/sysvipc/{kind}") as fh:
            lines = fh.read().splitlines()[1:]
    except OSError:
        return []
    return [int(line.split()[1]) for line in lines if line.split()]


def _keyctl(operation: int, keyring: int) -> None:
    nr = {"x86_64": 250, "aarch64": 219}.get(platform.machine())
    if nr is not None:
        _libc.syscall(nr, operation, keyring, 0, 0, 0)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    os.set_inheritable(control.fileno(), False)
    try:
        config = json.loads(control.recv(MAX_MESSAGE) or b"{}")
        zygote = Zygote(control)
        zygote.setup(config)
    except BaseException as exc:
        traceback.print_exc()
        try:
            control.send(json.dumps({"op": "error", "message": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            os._exit(1)
    control.send(json.dumps({"op": "ready", "pid": os.getpid()}).encode())
    zygote.serve()


if __name__ == "__main__":
    main()
