"""Grading a class on CPU and on CUDA, on the same machine: the ratio.

One command::

    .venv/bin/python benchmarks/bench_device.py                 # 100 copies, every torch assignment
    .venv/bin/python benchmarks/bench_device.py -n 40 --assignment 03_cnn --assignment 04_rnn

For each assignment it builds a class of N notebooks from the bundled
examples (the solution and every example, in turn, so correct, buggy and
broken ones are all there), grades it with ``autograder grade --device cpu``
and, where torch sees a GPU, with ``--device cuda``, with the same seed and
the same ``--jobs``, and prints the submissions per minute of each and the
ratio CUDA/CPU, plus whether both devices gave every student the same score.
Without a GPU it measures the CPU alone and says so. Nothing here asserts a
time: it only measures.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.course import Course  # noqa: E402
from autograder.devices import cuda_available  # noqa: E402

SEED = 20240611
DEFAULT_ASSIGNMENTS = ("03_cnn", "04_rnn")


def make_class(course: Course, assignment: str, n: int, dest: Path) -> None:
    """``dest/estNNN.ipynb``: the solution and the bundled examples, round robin."""
    spec = course.spec(assignment)
    sources = [spec.solution_notebook] + [spec.root / ex.file for ex in spec.examples]
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for i in range(n):
        shutil.copyfile(sources[i % len(sources)], dest / f"est{i:03d}.ipynb")


def grade(assignment: str, class_dir: Path, out: Path, device: str, jobs: int) -> tuple[float, dict[str, str]]:
    """Wall seconds of one ``autograder grade`` run, and each student's score."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [str(Path(sys.executable).parent / "autograder"), "grade", assignment, str(class_dir), "--out", str(out),
           "--device", device, "--jobs", str(jobs), "--seed", str(SEED), "--quiet"]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} ended with {done.returncode}:\n{done.stderr[-2000:]}")
    with (out / "grades.csv").open(encoding="utf-8", newline="") as fh:
        scores = {row["student"]: row["score"] for row in csv.DictReader(fh)}
    return wall, scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", action="append", help=f"repeatable (default: {', '.join(DEFAULT_ASSIGNMENTS)})")
    parser.add_argument("-n", "--size", type=int, default=100, help="class size per assignment")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "autograder-bench-device")
    args = parser.parse_args(argv)

    course = Course(ROOT)
    wanted = args.assignment or [a for a in DEFAULT_ASSIGNMENTS if a in course.assignment_ids()]
    devices = ["cpu"] + (["cuda"] if cuda_available() else [])
    if devices == ["cpu"]:
        print("torch no ve ninguna GPU CUDA aquí: sólo se mide la CPU")
    print(f"{'tarea':<12} {'dispositivo':<11} {'N':>4} {'s':>8} {'entregas/min':>13}")
    for assignment in wanted:
        class_dir = args.work / assignment / "clase"
        make_class(course, assignment, args.size, class_dir)
        walls, scores = {}, {}
        for device in devices:
            walls[device], scores[device] = grade(assignment, class_dir, args.work / assignment / device, device,
                                                  args.jobs)
            rate = 60 * args.size / walls[device]
            print(f"{assignment:<12} {device:<11} {args.size:>4} {walls[device]:>8.1f} {rate:>13.1f}")
        if "cuda" in walls:
            same = sum(scores["cpu"][s] == scores["cuda"].get(s) for s in scores["cpu"])
            print(f"{assignment:<12} CUDA/CPU: {walls['cpu'] / walls['cuda']:.2f}x más rápido; "
                  f"misma nota en {same}/{len(scores['cpu'])} entregas")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
