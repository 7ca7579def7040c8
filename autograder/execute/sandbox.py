"""How a student's process is started: the OS isolation around it.

Three modes, chosen by :func:`detect_mode`:

``bwrap+setpriv`` (the grader runs as root, e.g. CI or a grading server)
    bubblewrap builds a fresh mount, PID, network, IPC and UTS namespace
    with only the interpreter, numpy and our runtime visible, read-only;
    then ``setpriv`` drops to an unprivileged uid of its own for this worker
    slot, with no capabilities and ``no_new_privs``. Root ignores
    RLIMIT_NPROC, an unprivileged uid does not: so the process limit holds.
``bwrap-userns`` (the grader runs as an ordinary user)
    the same namespaces, inside an unprivileged user namespace; the process
    limit then counts the grading user's own processes too.
``none`` (only with ``--insecure-no-sandbox``)
    a plain subprocess with resource limits and nothing else: for a
    student's own machine (the self-check) or a quick local try. Every report
    produced this way carries a warning.

Resource limits (``prlimit``) apply in every mode: address space, CPU
seconds, processes, open files, file size, no core dumps. Wall time is
enforced by the grader, which kills the whole process group.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import sys
import sysconfig
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..spec import Limits

RUNTIME_DIR = Path(__file__).with_name("runtime")
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SANDBOX_RUNTIME = "/opt/autograder-runtime"
SANDBOX_DATA = "/opt/autograder-data"
SANDBOX_HOME = "/home/estudiante"
UID_BASE = 61000  # sandbox uids are leased from here up, one per worker slot and grading process

MODE_ROOT = "bwrap+setpriv"
MODE_USERNS = "bwrap-userns"
MODE_NONE = "none"
INSECURE_WARNING = (
    "AVISO: calificado SIN aislamiento (--insecure-no-sandbox): el código de los estudiantes "
    "pudo leer archivos del calificador. No uses estas notas como definitivas."
)


_SET_UP_BEFORE_BINDS = {"/", "/tmp", "/dev", "/proc", SANDBOX_HOME}


def _parent_dirs(mounts: list[str]) -> list[str]:
    """``--dir`` options (mode 0755) for every missing ancestor of the mount points.

    bwrap would create them mode 0700, which the unprivileged uid cannot cross.
    """
    targets = [mounts[i + 2] for i, opt in enumerate(mounts) if opt in ("--ro-bind", "--bind", "--symlink")]
    targets += [mounts[i + 1] for i, opt in enumerate(mounts) if opt == "--tmpfs"]
    mounted = set(targets)
    parents: list[str] = []
    for target in targets:
        for parent in reversed(Path(target).parents):
            p = str(parent)
            if p not in _SET_UP_BEFORE_BINDS and p not in mounted and p not in parents and not p.startswith("/usr"):
                parents.append(p)
    out: list[str] = []
    for p in parents:
        out += ["--perms", "0755", "--dir", p]
    return out


class SandboxUnavailable(RuntimeError):
    """The real sandbox cannot run here, and the insecure fallback was not asked for."""


UID_LOCKS = Path(os.environ.get("AUTOGRADER_UID_LOCKS", "/tmp/autograder-uid-locks"))
_leases: dict[int, tuple[int, IO[str]]] = {}
_leases_lock = threading.Lock()


@atexit.register
def _release_uid_leases() -> None:
    with _leases_lock:
        for _, handle in _leases.values():
            handle.close()
        _leases.clear()


def uid_for_slot(slot: int) -> int:
    """This grading process's uid for worker ``slot``, leased for the life of the process.

    Every grader on the machine leases its uids with ``flock`` on files in :data:`UID_LOCKS`,
    so two graders never share one: a fork bomb fills only its own uid's process limit.
    """
    with _leases_lock:
        if slot not in _leases:
            UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
            mine = {uid for uid, _ in _leases.values()}
            for uid in range(UID_BASE, UID_BASE + 4096):
                if uid in mine:
                    continue
                handle = open(UID_LOCKS / f"{uid}.lock", "w")  # noqa: SIM115 (held until exit)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                _leases[slot] = (uid, handle)
                break
            else:
                raise SandboxUnavailable(f"no queda ningún uid libre para el aislamiento en {UID_LOCKS}")
        return _leases[slot][0]


def detect_mode(insecure: bool = False) -> str:
    """The strongest isolation available, or raise with what to install."""
    if insecure:
        return MODE_NONE
    missing = [tool for tool in ("bwrap", "prlimit") if shutil.which(tool) is None]
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        missing.append("setpriv")
    if missing:
        raise SandboxUnavailable(
            f"no encuentro {', '.join(missing)}: el aislamiento necesita bubblewrap y util-linux "
            "(Debian/Ubuntu: `apt-get install bubblewrap util-linux`). Para calificar sin aislamiento "
            "(inseguro, sólo pruebas locales) usa --insecure-no-sandbox."
        )
    return MODE_ROOT if os.geteuid() == 0 else MODE_USERNS


@dataclass
class SandboxPlan:
    """Everything needed to start one sandboxed runtime process."""

    mode: str
    limits: Limits
    slot: int = 0
    forbidden_modules: list[str] = field(default_factory=list)
    readonly_dirs: list[Path] = field(default_factory=list)  # extra public folders (data), at their own path
    gpu: bool = False

    def command(self, req_fd: int, resp_fd: int) -> list[str]:
        """The argv that starts the runtime with its protocol on ``req_fd``/``resp_fd``."""
        return self._wrap("runner.py", str(req_fd), str(resp_fd))

    def zygote_command(self, control_fd: int) -> list[str]:
        """The argv that starts the slot's warm worker (``zygote.py``) on its control socket.

        Same sandbox, uid and limits as :meth:`command`; the runtimes it forks inherit them.
        """
        return self._wrap("zygote.py", str(control_fd))

    def _wrap(self, script: str, *args: str) -> list[str]:
        runtime = SANDBOX_RUNTIME if self.mode != MODE_NONE else str(RUNTIME_DIR)
        inner = [sys.executable, "-I", "-X", "faulthandler", f"{runtime}/{script}", *args]
        return self._prlimit() + (self._bwrap() + inner if self.mode != MODE_NONE else inner)

    def environment(self) -> dict[str, str]:
        """The scrubbed environment of the student's process."""
        home = SANDBOX_HOME if self.mode != MODE_NONE else os.environ.get("TMPDIR", "/tmp")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": "/tmp/matplotlib",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "AUTOGRADER_SHIM_DATA": SANDBOX_DATA if self.mode != MODE_NONE else str(DATA_DIR.parent),
        }
        if self.mode == MODE_NONE:
            env["PYTHONPATH"] = str(RUNTIME_DIR / "shim")
        if self.gpu:
            env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
        return env

    def _prlimit(self) -> list[str]:
        lim = self.limits
        mem = lim.memory_mb * 1024 * 1024
        args = [
            "prlimit",
            f"--cpu={lim.cpu_s}",
            f"--nofile={lim.max_open_files}",
            f"--fsize={lim.max_file_mb * 1024 * 1024}",
            "--core=0",
            "--msgqueue=0",  # no POSIX message queues: they would outlive the process in the IPC namespace
        ]
        if not self.gpu:  # the CUDA driver maps far more address space than it uses
            args.append(f"--as={mem}")
        if self.mode != MODE_USERNS:  # in userns mode it would count the grading user's own processes
            args.append(f"--nproc={lim.max_processes}")
        return args + ["--"]

    def _bwrap(self) -> list[str]:
        args = [
            "bwrap",
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname", "sandbox",
            "--clearenv",
        ]
        if self.mode == MODE_USERNS:
            args += ["--unshare-user"]
        mounts: list[str] = ["--ro-bind", "/usr", "/usr"]
        for top in ("bin", "lib", "lib32", "lib64", "sbin"):
            host = Path("/") / top
            if host.is_symlink():
                mounts += ["--symlink", os.readlink(host), f"/{top}"]
            elif host.is_dir():
                mounts += ["--ro-bind", str(host), f"/{top}"]
        for etc in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group", "nsswitch.conf"):
            if (Path("/etc") / etc).exists():
                mounts += ["--ro-bind", f"/etc/{etc}", f"/etc/{etc}"]
        for path in self._python_dirs():
            mounts += ["--ro-bind", path, path]
        for path in self._masked_dirs():
            mounts += ["--tmpfs", path, "--remount-ro", path]
        mounts += ["--ro-bind", str(RUNTIME_DIR), SANDBOX_RUNTIME]
        if DATA_DIR.is_dir():
            mounts += ["--ro-bind", str(DATA_DIR), f"{SANDBOX_DATA}/data"]
        for extra in self.readonly_dirs:
            mounts += ["--ro-bind", str(extra), str(extra)]
        args += ["--proc", "/proc"]
        if self.gpu:
            args += ["--dev-bind", "/dev", "/dev", "--ro-bind-try", "/sys", "/sys"]
        else:
            args += ["--dev", "/dev"]
        # The private /tmp comes before the binds: the interpreter or the data may live under the
        # host's /tmp (a fresh clone in CI), and a later tmpfs would hide them.
        args += [
            "--size", str(self.limits.tmp_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", "/tmp",
            "--size", str(self.limits.tmp_mb * 1024 * 1024), "--perms", "0777", "--tmpfs", SANDBOX_HOME,
            # a private /dev/shm (shm_open, torch's DataLoader workers); with the GPU, never the host's
            "--size", str(self.limits.tmp_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", "/dev/shm",
        ]
        args += _parent_dirs(mounts) + mounts
        args += ["--chdir", SANDBOX_HOME]
        for key, value in self.environment().items():
            args += ["--setenv", key, value]
        if self.mode == MODE_ROOT:
            uid = str(uid_for_slot(self.slot))
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", "setpriv",
                     f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                     "--bounding-set=-all", "--no-new-privs"]
        else:
            args += ["--"]
        return args

    def _python_dirs(self) -> list[str]:
        """The interpreter and its packages, outside /usr (pyenv, a venv...)."""
        dirs = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            dirs.add(sysconfig.get_paths()[key])
        keep = sorted(d for d in dirs if d and os.path.isdir(d) and not d.startswith("/usr/"))
        # drop folders already inside another kept folder
        return [d for d in keep if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in keep)]

    def _masked_dirs(self) -> list[str]:
        """Installed packages the student must not reach: the grader itself, forbidden modules."""
        site = sysconfig.get_paths()["purelib"]
        names = ["autograder", "reference_impl", "solutions", *self.forbidden_modules]
        return [os.path.join(site, n) for n in names if os.path.isdir(os.path.join(site, n))]
