"""Reading submissions as students really hand them in.

A tolerant reader for the grading path: plain ``json`` (no Jupyter stack and
no schema validation, which costs a second per process and rejects notebooks
that run fine), nbformat v4 and v3, Colab metadata and huge stored outputs
ignored, and a ``.py`` file (with ``# %%`` cells or as one cell) accepted.
Anything unusable raises :class:`NotebookError` with a message a student can
act on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_NOTEBOOK_BYTES = 200 * 1024 * 1024


class NotebookError(ValueError):
    """The file is not a notebook we can grade; the message says why and what to do."""


@dataclass
class Cell:
    index: int  # position among all cells of the notebook (markdown included)
    source: str
    tags: list[str] = field(default_factory=list)


@dataclass
class Notebook:
    path: Path
    sha256: str
    code_cells: list[Cell]
    metadata: dict[str, Any]
    note: str = ""  # something worth telling the student (e.g. ".py accepted")

    @property
    def assignment(self) -> str | None:
        meta = self.metadata.get("autograder")
        return meta.get("assignment") if isinstance(meta, dict) else None


def _source(value: Any) -> str:
    if isinstance(value, list):
        return "".join(x for x in value if isinstance(x, str))
    return value if isinstance(value, str) else ""


def _tags(cell: dict[str, Any]) -> list[str]:
    meta = cell.get("metadata")
    tags = meta.get("tags", []) if isinstance(meta, dict) else []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _from_py(text: str) -> list[Cell]:
    parts = re.split(r"^# ?%%.*$", text, flags=re.M)
    return [Cell(i, part.strip("\n")) for i, part in enumerate(parts) if part.strip()]


def file_digest(path: Path) -> str:
    """sha256 of what was handed in: a file's bytes, or a folder's names and contents."""
    digest = hashlib.sha256()
    try:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(str(child.relative_to(path)).encode() + b"\0" + child.read_bytes())
        else:
            digest.update(path.read_bytes())
    except OSError:
        return ""
    return digest.hexdigest()


def load_notebook(path: Path) -> Notebook:
    """Read ``path`` into its code cells; raise :class:`NotebookError` if it cannot be graded."""
    if path.is_dir():
        raise NotebookError("la carpeta de entrega no contiene ningún cuaderno (.ipynb): entrega el cuaderno")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise NotebookError(f"no se puede leer el archivo: {exc.strerror}") from None
    if size == 0:
        raise NotebookError("el archivo está vacío: vuelve a descargar el cuaderno (.ipynb) y entrégalo de nuevo")
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(
            f"el archivo ocupa {size / 2**20:.0f} MiB (máximo {MAX_NOTEBOOK_BYTES // 2**20} MiB): "
            "borra las salidas (Editar > Borrar todas las salidas) y entrégalo de nuevo"
        )
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if path.suffix == ".py":
        text = raw.decode("utf-8", "replace")
        return Notebook(path, digest, _from_py(text), {}, note="se entregó un .py en lugar de un .ipynb; se calificó igualmente")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise NotebookError("no es un cuaderno Jupyter (el archivo no es texto UTF-8): entrega el .ipynb") from None
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"no es un cuaderno Jupyter válido (JSON inválido en la línea {exc.lineno}, columna {exc.colno}): "
            "¿lo editaste a mano? Descárgalo de nuevo desde Jupyter o Colab"
        ) from None
    except RecursionError:
        raise NotebookError("no es un cuaderno Jupyter válido (estructura JSON demasiado anidada)") from None
    if not isinstance(data, dict):
        raise NotebookError("no es un cuaderno Jupyter: el JSON no es un objeto con celdas")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    if isinstance(data.get("cells"), list):  # nbformat 4
        raw_cells = data["cells"]
        cells = [
            Cell(i, _source(c.get("source")), _tags(c))
            for i, c in enumerate(raw_cells)
            if isinstance(c, dict) and c.get("cell_type") == "code"
        ]
    elif isinstance(data.get("worksheets"), list):  # nbformat 3
        raw_cells = [c for ws in data["worksheets"] if isinstance(ws, dict) for c in ws.get("cells", [])]
        cells = [
            Cell(i, _source(c.get("input")), _tags(c))
            for i, c in enumerate(raw_cells)
            if isinstance(c, dict) and c.get("cell_type") == "code"
        ]
    else:
        raise NotebookError("no es un cuaderno Jupyter: no tiene lista de celdas ('cells')")
    return Notebook(path, digest, cells, metadata)
