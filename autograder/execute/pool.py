"""Warm sandboxed workers: start-up and imports paid once per worker slot, not per submission.

Each worker slot has a :class:`Zygote`: one sandbox (the same bubblewrap
command, uid ``61000 + slot`` and limits as a direct runtime) running
``runtime/zygote.py``, which imports the preloaded modules (numpy, torch) once
and then forks a runtime for every submission. :meth:`Zygote.spawn` returns a
started :class:`~.session.Session`, so :class:`~.notebook_run.NotebookRun`
drives a forked runtime exactly like a freshly started one.

Isolation between submissions comes from the fork (the zygote's memory is
never touched by a student's code) and from the reap that ends every runtime:
the zygote kills every process of its sandbox (``kill(-1)`` in its own PID
namespace) and wipes ``/tmp``, ``$HOME``, ``/dev/shm``, System V IPC and the
uid's keyrings before it serves the next fork. A zygote that does not answer
within a few seconds, dies, or reports that something could not be wiped is
killed with its whole sandbox and started again for the next submission.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from .sandbox import MODE_NONE, SandboxPlan
from .session import STARTUP_TIMEOUT_S, OutputDrain, ProcessHandle, Session, SessionDied, config_message, describe_exit

CONTROL_TIMEOUT_S = 5.0  # a zygote that does not answer a control message in this time is stuck
LAUNCH_ATTEMPTS = 4  # a fork or start refused for a moment (the uid's process limit) is tried again
RETRY_PAUSE_S = 0.25  # doubled after every failed attempt
REAP_TIMEOUT_S = 15.0  # on top of the grace: killing everyone (5 s at most) and wiping the folders
MAX_MESSAGE = 65536
LOST = "se reinició el sandbox del trabajador"


class ZygoteFailed(RuntimeError):
    """The zygote died, hung or answered nonsense; it has been killed with its sandbox."""


class Zygote:
    """The warm worker of one slot: started lazily, restarted when it dies or hangs."""

    def __init__(self, plan: SandboxPlan, preload: list[str] | None = None) -> None:
        if plan.mode == MODE_NONE:
            raise ValueError("the warm pool needs the real sandbox (its own PID namespace)")
        self.plan = plan
        self.preload = list(preload or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.generation = 0  # one per start: a runtime of an earlier generation died with its sandbox
        self.starts = 0
        self.forks = 0
        self.log = OutputDrain(head_limit=16 * 1024)
        self._drain: threading.Thread | None = None
        self._lock = threading.RLock()

    # -- life cycle -------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.proc is not None and self.sock is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the sandbox and wait until the preloaded modules are imported."""
        with self._lock:
            self.stop()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            log_r, log_w = os.pipe()
            try:
                self.proc = subprocess.Popen(
                    self.plan.zygote_command(theirs.fileno()),
                    stdin=subprocess.DEVNULL,
                    stdout=log_w,
                    stderr=log_w,
                    pass_fds=(theirs.fileno(),),
                    env=self.plan.environment(),
                    start_new_session=True,
                    close_fds=True,
                )
            except BaseException:
                ours.close()
                os.close(log_r)
                raise
            finally:
                theirs.close()
                os.close(log_w)
            self.sock = ours
            self.log = OutputDrain(head_limit=16 * 1024)
            self._drain = threading.Thread(target=self._drain_log, args=(log_r, self.log), daemon=True)
            self._drain.start()
            self.generation += 1
            self.starts += 1
            try:
                reply = self._call(dict(config_message(self.plan, self.preload), op="config"), STARTUP_TIMEOUT_S)
            except ZygoteFailed as exc:
                raise SessionDied("crash", f"el trabajador del sandbox no arrancó ({exc}): {self.log.text()[-1500:]}") \
                    from None
            if reply.get("op") != "ready":
                self.stop()
                raise SessionDied("protocol", f"el trabajador del sandbox no arrancó: {reply.get('message', reply)}; "
                                              f"{self.log.text()[-1500:]}")

    def stop(self) -> None:
        """Kill the zygote with its whole sandbox (every runtime in it dies too)."""
        with self._lock:
            if self.proc is not None:
                if self.proc.poll() is None:
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            if self.sock is not None:
                self.sock.close()
            if self._drain is not None:
                self._drain.join(timeout=2)
            self.proc = self.sock = self._drain = None

    def close(self) -> None:
        """Let the zygote end its runtime and exit; kill the sandbox if it does not."""
        with self._lock:
            if self.alive:
                assert self.sock is not None and self.proc is not None
                try:
                    self.sock.send(json.dumps({"op": "exit"}).encode())
                    self.proc.wait(timeout=CONTROL_TIMEOUT_S)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self.stop()

    # -- runtimes ---------------------------------------------------------------
    def spawn(self) -> Session:
        """A started session on a runtime forked from this slot's zygote (started if needed)."""
        session = Session(self.plan, self.preload, launcher=self.launch)
        session.start()
        return session

    def launch(self, req_r: int, resp_w: int, out_w: int) -> ZygoteRuntime:
        """Fork a runtime on these fds (a :data:`~.session.Launcher`).

        A zygote that is dead, stuck or could not clean up is replaced; a start
        or fork refused for a moment (``EAGAIN``: the uid's process limit counts
        every process of that uid on the machine) is tried again after a pause.
        """
        with self._lock:
            problem = ""
            for attempt in range(LAUNCH_ATTEMPTS):
                if attempt:
                    time.sleep(RETRY_PAUSE_S * 2 ** (attempt - 1))
                try:
                    if not self.alive:
                        self.start()
                    reply = self._call({"op": "fork"}, CONTROL_TIMEOUT_S, (req_r, resp_w, out_w))
                except (ZygoteFailed, SessionDied) as exc:
                    problem = str(exc)
                    continue
                if reply.get("op") == "forked" and isinstance(reply.get("pid"), int):
                    self.forks += 1
                    return ZygoteRuntime(self, reply["pid"], self.generation)
                problem = str(reply.get("message", reply))
                if not reply.get("retry"):
                    self.stop()  # it could not clean up: a fresh sandbox
            raise SessionDied("crash", f"el trabajador del sandbox no pudo crear el proceso: {problem}")

    def poll(self, pid: int, generation: int) -> tuple[bool, int | None]:
        """(still running, exit code once it ended) of a runtime of ``generation``."""
        with self._lock:
            if generation != self.generation or not self.alive:
                return False, None
            try:
                reply = self._call({"op": "poll", "pid": pid}, CONTROL_TIMEOUT_S)
            except ZygoteFailed:
                return False, None
            code = reply.get("code")
            return bool(reply.get("running")), code if isinstance(code, int) else None

    def reap(self, pid: int, generation: int, grace_s: float) -> tuple[int | None, bool]:
        """End a runtime and everything it started, wipe what it left; (exit code, sandbox lost)."""
        with self._lock:
            if generation != self.generation or not self.alive:
                return None, True  # its sandbox is gone, and it with it
            try:
                reply = self._call({"op": "reap", "pid": pid, "grace": grace_s}, grace_s + REAP_TIMEOUT_S)
            except ZygoteFailed:
                return None, True
            if reply.get("op") != "reaped" or reply.get("problems"):
                self.stop()  # something survived the wipe: the next runtime gets a fresh sandbox
            code = reply.get("code")
            return (code if isinstance(code, int) else None), False

    # -- the control channel ----------------------------------------------------
    def _call(self, message: dict[str, Any], timeout_s: float, fds: tuple[int, ...] = ()) -> dict[str, Any]:
        sock = self.sock
        if sock is None:
            raise ZygoteFailed("no está en marcha")
        try:
            data = json.dumps(message).encode()
            sock.settimeout(timeout_s)
            if fds:
                socket.send_fds(sock, [data], list(fds))
            else:
                sock.send(data)
            answer = sock.recv(MAX_MESSAGE)
        except TimeoutError:
            self.stop()
            raise ZygoteFailed(f"no respondió en {timeout_s:g} s") from None
        except OSError as exc:
            self.stop()
            raise ZygoteFailed(f"canal roto: {exc}") from None
        if not answer:
            code = self.proc.poll() if self.proc is not None else None
            self.stop()
            raise ZygoteFailed(f"terminó ({describe_exit(code) or 'sin estado'})")
        try:
            reply = json.loads(answer)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self.stop()
            raise ZygoteFailed("respuesta ilegible")
        return reply

    @staticmethod
    def _drain_log(fd: int, drain: OutputDrain) -> None:
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                drain.feed(chunk)
        finally:
            os.close(fd)


class ZygoteRuntime(ProcessHandle):
    """A runtime forked by a zygote, as its :class:`Session` sees it."""

    def __init__(self, zygote: Zygote, pid: int, generation: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.generation = generation
        self.code: int | None = None
        self.lost = False
        self.reaped = False

    def running(self) -> bool:
        if self.reaped or self.code is not None:
            return False
        running, code = self.zygote.poll(self.pid, self.generation)
        self.code = code
        return running

    def terminate(self, grace_s: float = 0.0) -> None:
        if self.reaped:
            return
        code, self.lost = self.zygote.reap(self.pid, self.generation, grace_s)
        if code is not None:
            self.code = code
        self.reaped = True

    def death_detail(self) -> str:
        self.terminate(1.0)
        return describe_exit(self.code) or (LOST if self.lost else "")


class WorkerPool:
    """One :class:`Zygote` per worker slot; close it (or use ``with``) at the end of a batch.

    ``plan_for_slot(slot)`` gives the sandbox plan of a slot (its uid is the
    slot's). Zygotes start on first use, in the thread that uses them: close
    the pool before that thread ends (bubblewrap's ``--die-with-parent``
    follows the thread that started it).
    """

    def __init__(self, plan_for_slot: Callable[[int], SandboxPlan], preload: list[str], size: int) -> None:
        self.workers = [Zygote(plan_for_slot(slot), preload) for slot in range(max(1, size))]

    def worker(self, slot: int) -> Zygote:
        return self.workers[slot]

    def close(self) -> None:
        for worker in self.workers:
            worker.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def starts(self) -> int:
        return sum(w.starts for w in self.workers)

    @property
    def forks(self) -> int:
        return sum(w.forks for w in self.workers)
