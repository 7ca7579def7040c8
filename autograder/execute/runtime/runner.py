"""The student-side process: runs notebook cells and probe programs on request.

Started inside the sandbox by the grader as ``python -I runner.py REQ_FD RESP_FD``,
or forked by the slot's warm worker (``zygote.py``), which calls :func:`serve`
on fds it received, with the preloaded modules already imported. It reads
requests from ``REQ_FD`` and answers on ``RESP_FD`` (``wire`` frames); the
student's prints go to stdout/stderr, which the grader drains apart.

Nothing here decides a grade: it executes what it is asked and returns plain
data. A student's code can tamper with this process freely; it can only ever
change what *its own* answers are, which the grader then compares outside.
"""

from __future__ import annotations

import builtins
import importlib.abc
import importlib.util
import os
import sys
import time
import traceback
import types
from typing import Any

if __package__:
    from . import functions, ops, wire
else:  # started as a script inside the sandbox
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim"))
    import functions  # type: ignore[no-redef]
    import ops  # type: ignore[no-redef]
    import wire  # type: ignore[no-redef]

CELL_FILENAME = "<celda {index}>"


class _ForbiddenImports(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` (or any forbidden module) fail with a clear message."""

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in self.names:
            raise ImportError(f"el módulo {fullname!r} no está permitido en esta tarea")
        return None


class _GradingShell:
    """Enough of IPython's ``get_ipython()`` for notebooks to run while grading.

    Magics that only affect display are ignored; ``%time``/``%%capture``
    run their code; shell escapes (``!pip install``) are skipped, never run.
    """

    RUN_BODY = {"time", "timeit", "capture", "prun"}

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.user_ns = namespace
        self.skipped: list[str] = []

    def run_line_magic(self, name: str, line: str, _stack_depth: int = 1) -> Any:
        if name in self.RUN_BODY and line.strip():
            exec(compile(line, "<magia>", "exec"), self.user_ns)
        else:
            self.skipped.append(f"%{name} {line}".strip())
        return None

    def run_cell_magic(self, name: str, line: str, cell: str) -> Any:
        if name in self.RUN_BODY:
            exec(compile(cell, "<magia>", "exec"), self.user_ns)
        else:
            self.skipped.append(f"%%{name}")
        return None

    def system(self, cmd: str) -> None:
        self.skipped.append(f"!{cmd}")

    def getoutput(self, cmd: str, split: bool = True) -> list[str]:
        self.skipped.append(f"!{cmd}")
        return []

    def __getattr__(self, name: str) -> Any:
        # Any other shell API (display hooks, events...) is a harmless no-op.
        return lambda *a, **k: None


def _install_colab_stand_ins() -> None:
    """``from google.colab import drive; drive.mount(...)`` becomes a no-op."""
    def no_op_attribute(name: str) -> Any:
        if name.startswith("__"):  # keep module introspection (inspect, pickle...) truthful
            raise AttributeError(name)
        return lambda *a, **k: None

    colab = types.ModuleType("google.colab")
    for sub in ("drive", "files", "output", "widgets"):
        module = types.ModuleType(f"google.colab.{sub}")
        module.__getattr__ = no_op_attribute  # type: ignore[attr-defined]
        setattr(colab, sub, module)
        sys.modules[f"google.colab.{sub}"] = module
    sys.modules["google.colab"] = colab
    if "google" not in sys.modules and importlib.util.find_spec("google") is None:
        google = types.ModuleType("google")
        google.__path__ = []  # type: ignore[attr-defined]
        sys.modules["google"] = google
    if "google" in sys.modules:
        sys.modules["google"].colab = colab  # type: ignore[attr-defined]


def _error_info(exc: BaseException) -> dict[str, Any]:
    """Type, message and the part of the traceback inside the student's cells."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<celda")]
    tb = "".join(traceback.format_list(frames[-8:]))
    message = str(exc)
    if isinstance(exc, SyntaxError):
        message = f"{exc.msg} (línea {exc.lineno})"
    return {"type": type(exc).__name__, "message": message[:2000], "traceback": tb[-4000:]}


def prepare(config: dict[str, Any]) -> None:
    """Process-wide set-up from the grader's config frame; idempotent.

    Forbidden imports fail, Colab's modules are stand-ins, the preloaded
    modules are imported, the grading device is set. The warm worker runs
    this once before forking; each runtime (forked or started fresh) runs it
    again on its own config, which then only imports what is still missing.
    """
    forbidden = list(config.get("forbidden_modules", []))
    if forbidden and not any(isinstance(f, _ForbiddenImports) for f in sys.meta_path):
        sys.meta_path.insert(0, _ForbiddenImports(forbidden))
    if "google.colab" not in sys.modules:
        _install_colab_stand_ins()
    for module in config.get("preload", []):
        __import__(module)
    ops.DEVICE = config.get("device", "cpu")
    if "torch" in sys.modules:
        _exact_torch(sys.modules["torch"])


def own_keyrings(clear_user: bool) -> None:
    """Give this process a new, empty session keyring; with ``clear_user``, empty the uid's own.

    Kernel keyrings outlive processes: the session keyring is inherited from
    whoever started the sandbox and the user keyrings belong to the uid, so a
    key added by one submission could be read by the next one. The uid's
    keyrings are cleared only in the sandbox (its uid is the slot's, never a
    person's). Best effort: where ``keyctl`` is refused (a seccomp filter)
    nobody can use keyrings.
    """
    try:
        import ctypes
        import platform

        nr = {"x86_64": 250, "aarch64": 219}.get(platform.machine())
        if nr is None:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        keyctl = libc.syscall
        keyctl.restype = ctypes.c_long
        keyctl(nr, 1, None, 0, 0, 0)  # KEYCTL_JOIN_SESSION_KEYRING (anonymous, new)
        for keyring in (-4, -5) if clear_user else ():  # KEY_SPEC_USER_KEYRING, ..._USER_SESSION_KEYRING
            keyctl(nr, 7, keyring, 0, 0, 0)  # KEYCTL_CLEAR
    except Exception:
        pass


class Runner:
    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.shell = _GradingShell(self.namespace)
        self.namespace["get_ipython"] = lambda: self.shell
        self.namespace["display"] = lambda *a, **k: None
        self.defined_in: dict[str, int] = {}
        if config is not None:
            prepare(dict(config, preload=[]))
        self._builtins = dict(vars(builtins))

    def run_cell(self, index: int, source: str) -> dict[str, Any]:
        before = {k: id(v) for k, v in self.namespace.items()}
        start = time.perf_counter()
        status, error = "ok", None
        try:
            exec(compile(source, CELL_FILENAME.format(index=index), "exec"), self.namespace)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are the cell's error too
            status, error = "error", _error_info(exc)
        self.restore_builtins()
        defined = sorted(
            k for k, v in self.namespace.items() if not k.startswith("_") and before.get(k) != id(v)
        )
        for name in defined:
            self.defined_in[name] = index
        return {
            "op": "cell_done",
            "index": index,
            "status": status,
            "error": error,
            "defined": defined,
            "duration": time.perf_counter() - start,
        }

    def restore_builtins(self) -> None:
        """Undo a cell's monkeypatching of builtins (``abs``, ``isinstance``...): it must not
        break this runner, and the student's functions are judged with the real ones."""
        vars(builtins).update(self._builtins)

    def run_probe(self, steps: list[dict[str, Any]], outputs: Any, seed: int | None = None) -> dict[str, Any]:
        self.restore_builtins()
        if seed is not None:
            seed_everything(seed)
        try:
            return run_probe(self.namespace, steps, outputs)
        finally:
            self.restore_builtins()


def seed_everything(seed: int) -> None:
    """Seed the global generators the student's code may use, as the reference is seeded."""
    import random

    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _resolve(node: Any, results: dict[str, Any], call_args: dict[str, list[Any]]) -> Any:
    if isinstance(node, dict) and set(node) == {"__ref__"}:
        step, item, arg = node["__ref__"]
        value = call_args[step][arg] if arg is not None else results[step]
        return value if item is None else value[item]
    if isinstance(node, dict) and set(node) == {"__fn__", "params"}:
        return functions.build(node["__fn__"], node["params"])
    if isinstance(node, dict):
        return {k: _resolve(v, results, call_args) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_resolve(v, results, call_args) for v in node)
    return node


def run_probe(namespace: dict[str, Any], steps: list[dict[str, Any]], outputs: Any) -> dict[str, Any]:
    """Run a probe program against the student's functions in ``namespace``.

    Used by the sandboxed runner and, in the student's own process, by the self-check.
    """
    results: dict[str, Any] = {}
    call_args: dict[str, list[Any]] = {}
    for step in steps:
        fn_name = step["function"]
        fn = ops.OPS.get(fn_name[1:]) if fn_name.startswith("@") else namespace.get(fn_name)
        if not callable(fn):
            return {"op": "probe_done", "ok": False, "step": step["name"], "function": fn_name,
                    "missing": True, "error": None}
        args = list(_resolve(step["args"], results, call_args))
        kwargs = _resolve(step["kwargs"], results, call_args)
        call_args[step["name"]] = args
        try:
            results[step["name"]] = fn(*args, **kwargs)
        except BaseException as exc:
            return {"op": "probe_done", "ok": False, "step": step["name"], "function": fn_name,
                    "missing": False, "error": _error_info(exc)}
    return {"op": "probe_done", "ok": True, "value": _resolve(outputs, results, call_args)}


def _exact_torch(torch: Any) -> None:
    """Comparisons need IEEE float32: no TF32 on matmul/conv, deterministic cuDNN."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def _decode_request(body: bytes) -> Any:
    # Probe arguments arrive as plain data; {"__ref__"}/{"__fn__"} markers stay dicts.
    return wire.decode_body(body, hook=lambda node: node)


def serve(req_fd: int, resp_fd: int) -> None:
    """The request loop on already-open fds: config frame, "ready", then cells and
    probes until "exit" or the end of the request pipe."""
    # Keep our channel away from the student's code: stdin is closed to it.
    os.set_inheritable(req_fd, False)
    os.set_inheritable(resp_fd, False)
    config = _decode_request(wire.read_frame_body(req_fd))
    own_keyrings(clear_user=bool(config.get("sandboxed")))
    prepare(config)
    runner = Runner()
    wire.write_frame(resp_fd, wire.encode({"op": "ready", "pid": os.getpid()}))
    while True:
        try:
            request = _decode_request(wire.read_frame_body(req_fd))
        except EOFError:
            return
        op = request.get("op")
        if op == "cell":
            reply = runner.run_cell(request["index"], request["source"])
        elif op == "probe":
            reply = runner.run_probe(request["steps"], request["outputs"], request.get("seed"))
        elif op == "exit":
            return
        else:
            reply = {"op": "error", "message": f"unknown op {op!r}"}
        try:
            frame = wire.encode(reply)
        except Exception as exc:  # an answer that cannot be sent is the student's error
            frame = wire.encode({"op": reply.get("op"), "ok": False, "missing": False, "step": None,
                                 "function": None, "unsendable": True,
                                 "error": {"type": type(exc).__name__, "message": str(exc)[:500], "traceback": ""}})
        try:  # the student's prints first, so they are drained before the answer is read
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        wire.write_frame(resp_fd, frame)


def main() -> None:
    serve(int(sys.argv[1]), int(sys.argv[2]))


if __name__ == "__main__":
    main()
