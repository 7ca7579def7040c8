"""Measure the hints on mutants: buggy submissions generated from each assignment's solution.

Run from the course root (needs the sandbox, like grading)::

    .venv/bin/python scripts/mutants.py                   # every assignment
    .venv/bin/python scripts/mutants.py 01_backprop -v    # one, listing every mutant
    .venv/bin/python scripts/mutants.py --misses          # only the mutants without the right hint

For each assignment it generates the mutants (``autograder/mutants.py``: generic operators and the
assignment's own ``solutions/<id>/mutants.py``), grades them with the real grader on a fresh seed,
and prints how many fail at least one check and how many of those get a hint that names the planted
bug, per assignment, overall and per kind of bug. ``docs/MUTANTS.md`` quotes its output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.course import Course  # noqa: E402
from autograder.mutants import by_bug, grade_mutants, mutants_of, summarize, table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="ids (default: every assignment)")
    parser.add_argument("--course", type=Path, default=ROOT)
    parser.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=None, help="the batch seed (default: a new one)")
    parser.add_argument("--function", action="append", help="only mutants of this function or class")
    parser.add_argument("--operator", action="append", help="only this operator (see autograder.mutants.OPERATORS)")
    parser.add_argument("--all-checks", action="store_true", help="grade every check, not only those that can fail")
    parser.add_argument("--misses", action="store_true", help="list the mutants without the right hint")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every mutant")
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument("--insecure-no-sandbox", action="store_true")
    args = parser.parse_args(argv)

    course = Course(args.course)
    ids = args.assignments or course.assignment_ids()
    summaries, everything, details = [], [], []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        for aid in ids:
            spec = course.spec(aid)
            mutants = mutants_of(spec, operators=args.operator, functions=args.function)
            print(f"{aid}: {len(mutants)} mutantes", file=sys.stderr, flush=True)
            results = grade_mutants(spec, mutants, Path(tmp) / aid, jobs=args.jobs, seed=args.seed,
                                    all_checks=args.all_checks, insecure=args.insecure_no_sandbox)
            summaries.append(summarize(aid, results))
            everything += results
            for r in results:
                mark = "✔" if r.right_hint else ("✘" if r.killed else "·")
                line = f"{mark} {aid} {r.mutant.id} [{r.mutant.bug}] {r.mutant.what}"
                if args.verbose or (args.misses and not r.right_hint):
                    details.append(line)
                    if not r.killed:
                        details.append(f"      sobrevive ({r.checks} pruebas)")
                    elif not r.right_hint:
                        details.append(f"      fallan: {', '.join(r.failed)}")
                        details += [f"      pista: {e[:300]}" for e in r.explanations[:3]] or ["      sin pista"]
    if len(ids) > 1:
        summaries.append(summarize("todas", everything))
    print(table(summaries))
    print()
    print(by_bug(everything))
    if details:
        print()
        print("\n".join(details))
    print(f"\n{len(everything)} mutantes en {time.monotonic() - start:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps([{
            "assignment": r.mutant.assignment, "id": r.mutant.id, "bug": r.mutant.bug, "what": r.mutant.what,
            "checks": r.checks, "failed": r.failed, "explanations": r.explanations, "named_by": r.named_by,
        } for r in everything], ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
