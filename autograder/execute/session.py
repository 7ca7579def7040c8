"""One sandboxed student process, driven from the trusted grader.

The grader talks to :mod:`runtime.runner` over two pipes with deadlines: a
request that is not answered in time gets the whole process group killed,
and the caller decides what to replay in a fresh process. The student's
stdout/stderr are drained by a thread that keeps only a bounded head and
tail, so a huge print can neither block the student nor fill our memory.

How the process is started and stopped is pluggable (:class:`ProcessHandle`):
:class:`DirectProcess` starts a fresh sandbox for the session (the default),
and the warm pool (:mod:`.pool`) forks it from the slot's zygote instead.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .runtime import wire
from .sandbox import MODE_NONE, SandboxPlan

STARTUP_TIMEOUT_S = 60.0


class SessionDied(RuntimeError):
    """The student's process is gone (killed on timeout, crashed, or exited)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(*((reason, detail) if detail else (reason,)))
        self.reason = reason  # "timeout", "crash", "protocol"
        self.detail = detail


@dataclass
class OutputDrain:
    """Bounded capture of a stream: the first ``head_limit`` bytes and the last 4 KiB."""

    head_limit: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.tail = (self.tail + chunk)[-4096:]

    def text(self) -> str:
        if self.total <= len(self.head):
            return self.head.decode("utf-8", "replace")
        return self.head.decode("utf-8", "replace") + f"\n[... {self.total - len(self.head)} bytes omitidos ...]\n" + \
            self.tail.decode("utf-8", "replace")


class ProcessHandle(ABC):
    """The student's runtime process, as a :class:`Session` drives it."""

    @abstractmethod
    def running(self) -> bool:
        """True while the process has not been seen to end."""

    @abstractmethod
    def terminate(self, grace_s: float = 0.0) -> None:
        """Give it ``grace_s`` to exit by itself, then kill it and everything it started; idempotent."""

    @abstractmethod
    def death_detail(self) -> str:
        """After its channel broke: how it ended (waits a moment for it), in words; ends it too."""


def describe_exit(code: int | None) -> str:
    """An exit status in words: a signal (negative), a resource limit, or an exit code."""
    if code is None:
        return ""
    if code < 0:
        if -code in (signal.SIGKILL, signal.SIGXCPU):
            return "límite de recursos del proceso (memoria o CPU)"
        try:
            return f"señal {signal.Signals(-code).name}"
        except ValueError:
            return f"señal {-code}"
    if code in (128 + signal.SIGKILL, 128 + signal.SIGXCPU):
        return "límite de recursos del proceso (memoria o CPU)"
    if code > 128:  # bubblewrap exits 128 + N when the sandboxed process died of signal N
        try:
            return f"señal {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    return f"código de salida {code}"


class DirectProcess(ProcessHandle):
    """A runtime in a sandbox of its own, started for this session (one ``bwrap`` per process)."""

    def __init__(self, plan: SandboxPlan, req_r: int, resp_w: int, out_w: int) -> None:
        self.proc = subprocess.Popen(
            plan.command(req_r, resp_w),
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            pass_fds=(req_r, resp_w),
            env=plan.environment(),
            start_new_session=True,
            close_fds=True,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, grace_s: float = 0.0) -> None:
        if grace_s > 0:
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def death_detail(self) -> str:
        try:
            code = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return ""
        return describe_exit(code)


# (req_r, resp_w, out_w) -> the started process; the Session closes its own copies of the three fds.
Launcher = Callable[[int, int, int], ProcessHandle]


class Session:
    """A running sandboxed runtime; use as a context manager.

    ``launcher`` starts the process on the session's pipes; by default a
    fresh sandbox (:class:`DirectProcess`), in the pool a fork of the slot's
    zygote.
    """

    def __init__(self, plan: SandboxPlan, preload: list[str] | None = None, *,
                 launcher: Launcher | None = None) -> None:
        self.plan = plan
        self.preload = preload or []
        self.launcher: Launcher = launcher or (lambda req_r, resp_w, out_w: DirectProcess(plan, req_r, resp_w, out_w))
        self.proc: ProcessHandle | None = None
        self.output = OutputDrain(head_limit=plan.limits.output_kb * 1024)
        self._req_w = self._resp_r = -1
        self._drain: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------
    def start(self) -> None:
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            self.proc = self.launcher(req_r, resp_w, out_w)
        except BaseException:
            for fd in (self._req_w, self._resp_r, out_r):
                os.close(fd)
            self._req_w = self._resp_r = -1
            raise
        finally:
            for fd in (req_r, resp_w, out_w):
                os.close(fd)
        self._drain = threading.Thread(target=self._drain_output, args=(out_r,), daemon=True)
        self._drain.start()
        try:
            self._send(config_message(self.plan, self.preload))
            reply = self._receive(STARTUP_TIMEOUT_S)
        except (SessionDied, OSError) as died:
            self.kill()
            reason = died.reason if isinstance(died, SessionDied) else "crash"
            detail = died.detail if isinstance(died, SessionDied) else str(died)
            raise SessionDied(reason, f"{detail}; el proceso no arrancó: {self.output.text()[-1500:]}") from None
        if not isinstance(reply, dict) or reply.get("op") != "ready":
            self.kill()
            raise SessionDied("protocol", "el proceso del estudiante no arrancó")

    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Ask the runtime to exit, give it a moment, then make sure it and its children are gone."""
        grace = 0.0
        if self.proc is not None and self._req_w >= 0 and self.proc.running():
            try:
                self._send({"op": "exit"})
                grace = 2.0
            except Exception:
                pass
        self._stop(grace)

    def kill(self) -> None:
        self._stop(0.0)

    def _stop(self, grace_s: float) -> None:
        if self.proc is not None:
            self.proc.terminate(grace_s)
        for fd in (self._req_w, self._resp_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_w = self._resp_r = -1
        if self._drain is not None:
            self._drain.join(timeout=2)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self._resp_r >= 0 and self.proc.running()

    # -- requests ---------------------------------------------------------
    def request(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send ``message`` and wait for its answer; on timeout or death the process is killed."""
        if not self.alive:
            raise SessionDied("crash", self._death_detail())
        try:
            self._send(message)
        except OSError:
            raise SessionDied("crash", self._death_detail()) from None
        reply = self._receive(timeout_s)
        if not isinstance(reply, dict):
            self.kill()
            raise SessionDied("protocol", "respuesta con formato inválido")
        return reply

    def _send(self, message: Any) -> None:
        wire.write_frame(self._req_w, wire.encode(message))

    def _receive(self, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        header = self._read_exact(8, deadline)
        size = int.from_bytes(header, "big")
        if size > wire.MAX_FRAME_BYTES:
            self.kill()
            raise SessionDied("protocol", f"respuesta demasiado grande ({size} bytes)")
        body = self._read_exact(size, deadline)
        try:
            return wire.decode_body(body)
        except wire.WireError as exc:
            self.kill()
            raise SessionDied("protocol", f"respuesta ilegible: {exc}") from None

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise SessionDied("timeout")
            ready, _, _ = select.select([self._resp_r], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._resp_r, min(n, 1 << 20))
            if not chunk:
                detail = self._death_detail()
                self.kill()
                raise SessionDied("crash", detail)
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _death_detail(self) -> str:
        return self.proc.death_detail() if self.proc is not None else ""

    def _drain_output(self, fd: int) -> None:
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.output.feed(chunk)
        finally:
            os.close(fd)


def config_message(plan: SandboxPlan, preload: list[str]) -> dict[str, Any]:
    """The first frame a runtime reads: what to forbid, what to import, where to compute."""
    return {"forbidden_modules": list(plan.forbidden_modules), "preload": list(preload),
            "device": "cuda" if plan.gpu else "cpu", "sandboxed": plan.mode != MODE_NONE}
