"""``autograder release --bundle OUT``: what students get, and nothing else.

``OUT`` gets, for every assignment, a folder and a zip of it::

    OUT/<id>/<id>.ipynb                              the stub (with its install cell)
    OUT/<id>/public_tests.json                       the public fixtures
    OUT/<id>/autograder_alumno-<v>-py3-none-any.whl  the self-check client
    OUT/<id>/LEEME.txt                               how to start, in Jupyter and in Colab
    OUT/<id>.zip                                     the folder, zipped
    OUT/all.zip                                      every assignment's folder
    OUT/autograder_alumno-<v>-py3-none-any.whl       the client, once more

The client is a wheel built here, without pip or a build backend (a wheel is
a zip with a fixed layout), from an explicit list of student-side modules of
this package: the self-check, the fixtures reader, the pure comparison and
hints, the checks' dataclasses, the probe runner and its wire format, the data
generators and the messages. It installs offline in a fresh Jupyter or Colab
runtime with one cell (``%pip install -q autograder_alumno-*.whl``), needs only
numpy, and is imported as ``autograder``, so the notebooks' ``from autograder
import check`` works unchanged. The grader, the gradebook, spec loading, hidden
tests, the reference and the solutions are not in it (a test scans every file
of the bundle and of the wheel).

The wheel is deterministic (sorted entries, fixed timestamps), like the stub.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import zipfile
from pathlib import Path

from . import __version__
from .course import Course

STUDENT_FILES = ("*.ipynb", "public_tests.json", "*.csv", "*.txt", "data/*")

DIST_NAME = "autograder-alumno"
WHEEL_NAME = f"autograder_alumno-{__version__}-py3-none-any.whl"
PACKAGE = Path(__file__).resolve().parent

# The student-side modules, relative to the package; nothing else goes into the wheel.
STUDENT_MODULES = (
    "__init__.py",
    "checks.py",  # the dataclasses of checks, probes and bug patterns (pure)
    "fixtures.py",  # reads public_tests.json
    "i18n.py",
    "results.py",
    "selfcheck.py",
    "compare/__init__.py",
    "compare/core.py",
    "compare/hints.py",
    "compare/judge.py",
    "compare/report.py",
    "execute/__init__.py",
    "execute/runtime/__init__.py",
    "execute/runtime/runner.py",  # run_probe: calls the student's functions with the fixtures' inputs
    "execute/runtime/wire.py",
    "execute/runtime/functions.py",
    "execute/runtime/ops.py",
    "data/*.py",  # the assignments' data generators
)

_EPOCH = (1980, 1, 1, 0, 0, 0)

README = """\
{aid} · cómo empezar
===================

Esta carpeta tiene todo lo que necesitas para la tarea:

  {aid}.ipynb         el cuaderno que rellenas y entregas
  public_tests.json   las pruebas públicas de la autocomprobación
  {wheel}
                      el cliente de autocomprobación (se instala desde el cuaderno)

Jupyter: abre {aid}.ipynb desde esta carpeta y ejecuta sus celdas en orden.
Google Colab: abre el cuaderno (Archivo > Subir cuaderno) y sube public_tests.json
y el .whl con el panel Archivos (el icono de la carpeta, a la izquierda). Colab los
borra al reiniciar el entorno: si desaparecen, súbelos otra vez.

La primera celda de código instala el cliente (%pip install) y check("q1") ejecuta
las pruebas públicas de una pregunta. Se entrega solo el cuaderno {aid}.ipynb.

English: open {aid}.ipynb from this folder (in Colab, upload public_tests.json and the
.whl with the Files panel), run the install cell, then check("q1"), ... Hand in only
{aid}.ipynb.
"""


def student_module_files(package: Path = PACKAGE) -> list[tuple[str, Path]]:
    """``(path inside the wheel, source file)`` of every student-side module, sorted."""
    files: dict[str, Path] = {}
    for pattern in STUDENT_MODULES:
        found = sorted(p for p in package.glob(pattern) if p.is_file())
        if not found:
            raise FileNotFoundError(f"falta el módulo del cliente del estudiante {pattern!r} en {package}")
        for path in found:
            files[f"autograder/{path.relative_to(package).as_posix()}"] = path
    return sorted(files.items())


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build_student_wheel(out_dir: Path, package: Path = PACKAGE) -> Path:
    """Write ``autograder_alumno-<version>-py3-none-any.whl`` into ``out_dir``; return its path."""
    dist_info = f"autograder_alumno-{__version__}.dist-info"
    entries = [(name, source.read_bytes()) for name, source in student_module_files(package)]
    entries += [
        (f"{dist_info}/METADATA", (
            "Metadata-Version: 2.1\n"
            f"Name: {DIST_NAME}\n"
            f"Version: {__version__}\n"
            "Summary: Autocomprobación de las tareas del curso: pruebas públicas en tu cuaderno "
            "(cliente del estudiante; sin soluciones ni pruebas ocultas)\n"
            "License: MIT\n"
            "Requires-Python: >=3.10\n"
            "Requires-Dist: numpy\n"
        ).encode()),
        (f"{dist_info}/WHEEL", (
            "Wheel-Version: 1.0\n"
            f"Generator: autograder-release ({__version__})\n"
            "Root-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ).encode()),
        (f"{dist_info}/top_level.txt", b"autograder\n"),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / WHEEL_NAME
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, data in entries:
            _write(zf, name, data)
        _write(zf, f"{dist_info}/RECORD", record.encode())
    tmp.replace(wheel)
    return wheel


def _zip_folder(zf: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        _write(zf, f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())


def build_bundle(course: Course, assignments: list[str], out: Path) -> list[Path]:
    """Copy each released ``assignments/<id>/`` into ``out/<id>/`` with the client's wheel, zip
    each as ``out/<id>.zip`` and all of them as ``out/all.zip``; return what was written."""
    out.mkdir(parents=True, exist_ok=True)
    wheel = build_student_wheel(out)
    written = [wheel]
    for aid in assignments:
        source = course.root / "assignments" / aid
        if not source.is_dir():
            raise FileNotFoundError(f"{source} no existe: ejecuta antes `autograder release {aid}`")
        target = out / aid
        if target.exists():
            shutil.rmtree(target)
        files = sorted({p for pattern in STUDENT_FILES for p in source.glob(pattern) if p.is_file()})
        for path in files:
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        shutil.copy2(wheel, target / wheel.name)
        (target / "LEEME.txt").write_text(README.format(aid=aid, wheel=wheel.name), encoding="utf-8")
        archive = out / f"{aid}.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            _zip_folder(zf, target, aid)
        written += [target, archive]
    everything = out / "all.zip"
    with zipfile.ZipFile(everything, "w") as zf:
        for aid in assignments:
            _zip_folder(zf, out / aid, aid)
    written.append(everything)
    return written
