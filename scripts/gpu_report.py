"""Every assignment's solution, stub and examples graded on CPU and on CUDA, side by side.

Run from the course root on a machine with an NVIDIA GPU::

    .venv/bin/python scripts/gpu_report.py --out docs/GPU.md

It prints (and writes, with ``--out``) the machine (GPU model, driver,
Python, torch, CUDA), the command, and one table per assignment: each
bundled submission's expected and obtained score on ``cpu`` and on ``cuda``
(the spec's ``[examples.expected_cuda]`` where a device bug makes them
differ). It exits 1 when any submission does not grade as its spec expects
on a device, and says so without a GPU (CPU column only).
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.course import Course  # noqa: E402
from autograder.devices import cuda_available  # noqa: E402
from autograder.validate import validate  # noqa: E402


def machine() -> list[str]:
    lines = [f"- Python {platform.python_version()} on {platform.platform()}"]
    try:
        import torch
    except ImportError:
        return lines + ["- torch: not installed"]
    lines.append(f"- torch {torch.__version__} (CUDA {torch.version.cuda or 'none'})")
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        lines.append(f"- GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
                     f"compute capability {props.major}.{props.minor}")
    else:
        lines.append("- GPU: none visible to torch")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", action="append", help="repeatable (default: every torch assignment)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None, help="the batch seed (default: a new one)")
    parser.add_argument("--out", type=Path, help="also write the report here (Markdown)")
    args = parser.parse_args(argv)

    course = Course(ROOT)
    wanted = args.assignment or [a for a in course.assignment_ids() if course.spec(a).needs_torch]
    devices = ["cpu", "cuda"] if cuda_available() else ["cpu"]
    report = ["# Grading on CPU and CUDA", "", *machine(), "",
              f"Command: `{' '.join(['python', 'scripts/gpu_report.py', *(argv or sys.argv[1:])])}`", ""]
    failures = 0
    for assignment in wanted:
        spec = course.spec(assignment)
        verdicts = {d: {v.name: v for v in validate(spec, ROOT, device=d, jobs=args.jobs, seed=args.seed)}
                    for d in devices}
        header = " | ".join(f"{d} expected | {d} got" for d in devices)
        report += [f"## {assignment}", "", f"| submission | {header} |",
                   "|---|" + "---|---|" * len(devices)]
        for name in verdicts["cpu"]:
            cells = []
            for d in devices:
                v = verdicts[d][name]
                failures += not v.ok
                got = f"{v.result.score:g}" + ("" if v.ok else " **≠**")
                cells += [f"{v.expected.score:g}", got]
            report.append(f"| {name} | " + " | ".join(cells) + " |")
        report.append("")
    if devices == ["cpu"]:
        report.append("No CUDA GPU here: only the CPU column was graded.")
    report.append(f"Submissions that did not grade as expected: {failures}.")
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
