"""Running one notebook in the sandbox, surviving its hangs and crashes.

The rule (see the README, "Hangs and crashes"): every cell and every probe
has its own time limit, and the submission a total cap. A cell that hangs or
kills its process is stopped and marked; the process is started again and
the cells that had run are replayed (the broken one is not), so the checks
that do not depend on the broken cell still run. A probe that hangs or
crashes costs that check only, in the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..i18n import tr
from ..results import CellOutcome
from .sandbox import SandboxPlan
from .session import Session, SessionDied


@dataclass
class ProbeOutcome:
    status: str  # "ok", "error", "missing", "unsendable", "timeout", "crash"
    value: Any = None
    function: str = ""
    error: dict[str, str] | None = None
    detail: str = ""
    duration_s: float = 0.0


class CapReached(Exception):
    """The submission's total time cap is spent."""


class NotebookRun:
    """The sandboxed process of one submission, restarted as needed."""

    def __init__(self, plan: SandboxPlan, cells: list[tuple[int, str]], *, cap_s: float,
                 preload: list[str] | None = None, lang: str = "es",
                 spawn: Callable[[], Session] | None = None) -> None:
        self.plan = plan
        self.cells = cells
        self.preload = preload or []
        # where a started session comes from: a fresh sandbox, or the slot's warm worker (pool.Zygote.spawn)
        self.spawn = spawn or self._fresh_session
        self.lang = lang
        self.deadline = time.monotonic() + cap_s
        self.outcomes: dict[int, CellOutcome] = {}
        self.session: Session | None = None
        self.restarts = 0
        self.output_excerpt = ""

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    # -- cells --------------------------------------------------------------
    def run_cells(self) -> list[CellOutcome]:
        """Run every cell once, in order; return how each went."""
        for index, source in self.cells:
            if self.remaining() <= 0:
                self.outcomes[index] = CellOutcome(index, "skipped", "tiempo total agotado")
                continue
            self._ensure_session()
            self.outcomes[index] = self._run_cell(index, source, record=True)
        return [self.outcomes[i] for i, _ in self.cells]

    def _run_cell(self, index: int, source: str, *, record: bool) -> CellOutcome:
        assert self.session is not None
        timeout = min(self.plan.limits.cell_timeout_s, max(self.remaining(), 0.01))
        start = time.monotonic()
        try:
            reply = self.session.request({"op": "cell", "index": index, "source": source}, timeout)
        except SessionDied as died:
            self._collect_output()
            self.session = None
            if died.reason == "timeout":
                return CellOutcome(index, "timeout", tr("cell_timeout", self.lang, seconds=round(timeout, 1)),
                                   time.monotonic() - start)
            return CellOutcome(index, "crash", tr("cell_crash", self.lang, detail=died.detail or died.reason),
                               time.monotonic() - start)
        if not self.session.alive:
            # It answered, but its process (in the warm pool: its whole sandbox, e.g. after the cell
            # killed the zygote) is gone: the cell's crash. Never replayed, it cannot kill the next one.
            detail = self.session._death_detail()
            self._collect_output()
            self.session = None
            return CellOutcome(index, "crash", tr("cell_crash", self.lang, detail=detail or "?"),
                               time.monotonic() - start)
        error = reply.get("error") or {}
        message = f"{error.get('type')}: {error.get('message')}" if error else ""
        return CellOutcome(index, str(reply.get("status")), message, float(reply.get("duration") or 0.0),
                           [str(n) for n in reply.get("defined") or []])

    def _ensure_session(self) -> None:
        """A live process whose namespace holds every cell that ran fine so far."""
        if self.session is not None and self.session.alive:
            return
        if self.remaining() <= 0:
            raise CapReached()
        self.session = self.spawn()
        if self.outcomes:
            self.restarts += 1
        for index, source in self.cells:
            done = self.outcomes.get(index)
            if done is None:
                break
            if done.status not in ("ok", "error"):
                continue
            replay = self._run_cell(index, source, record=False)
            if replay.status in ("timeout", "crash"):  # it behaved differently this time
                self.outcomes[index] = replay
                self._ensure_session()
                return

    def _fresh_session(self) -> Session:
        session = Session(self.plan, self.preload)
        session.start()
        return session

    def defined_names(self) -> dict[str, int]:
        """Name -> the cell that last (re)defined it, over the cells that ran."""
        names: dict[str, int] = {}
        for index, _ in self.cells:
            outcome = self.outcomes.get(index)
            if outcome and outcome.status in ("ok", "error"):
                for name in outcome.defined:
                    names[name] = index
        return names

    # -- probes -------------------------------------------------------------
    def probe(self, message: dict[str, Any], timeout_s: float) -> ProbeOutcome:
        """Run one probe program; a hang or crash is this probe's outcome only."""
        first = message["steps"][0]["function"] if message["steps"] else ""
        if self.remaining() <= 0:
            raise CapReached()
        self._ensure_session()
        assert self.session is not None
        timeout = min(timeout_s, max(self.remaining(), 0.01))
        start = time.monotonic()
        try:
            reply = self.session.request(message, timeout)
        except SessionDied as died:
            self._collect_output()
            self.session = None
            status = "timeout" if died.reason == "timeout" else "crash"
            return ProbeOutcome(status, function=first, detail=died.detail or died.reason,
                                duration_s=time.monotonic() - start)
        duration = time.monotonic() - start
        function = str(reply.get("function") or first)
        if reply.get("ok"):
            return ProbeOutcome("ok", value=reply.get("value"), function=first, duration_s=duration)
        if reply.get("missing"):
            return ProbeOutcome("missing", function=function, duration_s=duration)
        status = "unsendable" if reply.get("unsendable") else "error"
        return ProbeOutcome(status, function=function, error=reply.get("error"), duration_s=duration)

    def _collect_output(self) -> None:
        if self.session is not None:
            self.output_excerpt = self.session.output.text()[-2000:]
            self.session.kill()

    def close(self) -> None:
        if self.session is not None:
            self.output_excerpt = self.session.output.text()[-2000:]
            self.session.close()
            self.session = None
