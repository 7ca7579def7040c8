"""A notebook handed in exactly as Colab downloads it (File > Download .ipynb) is graded as it is.

Colab writes nbformat 4.0 without cell ids (they go to the cell's metadata, with ``outputId`` and the
``colab`` display hints), its own notebook metadata (``colab``, ``accelerator``) and the state of every
widget the run displayed (``metadata.widgets``: tqdm's progress bars are widgets there), and it keeps every
output: check tables, plots, progress bars (widget views), an old error. Students also leave in cells that
only make sense in Colab: ``drive.mount``, ``%cd`` into Drive, ``!pip install``. None of it may cost a point.
"""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
from typer.testing import CliRunner

from autograder.cli import app
from autograder.course import Course
from autograder.mutants import strip_markers
from conftest import ROOT

COURSE = Course(ROOT)

TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\n"
COLAB_SETUP = ("from google.colab import drive\n"
               "drive.mount('/content/drive')\n"
               "%cd /content/drive/MyDrive/curso\n"
               "!pip install -q autograder_alumno-0.1.0-py3-none-any.whl")


def _id(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _widget(model_id: str, bar: str) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": model_id, "version_major": 2,
                                                                  "version_minor": 0},
                     "text/plain": bar}}


def _widget_state(model_id: str) -> dict:
    """What Colab saves for one tqdm bar: an HBox of an HTML label, a progress bar and an HTML counter."""
    ids = [_id(model_id + part) for part in ("label", "bar", "count")]
    state = {model_id: {"model_module": "@jupyter-widgets/controls", "model_name": "HBoxModel",
                        "model_module_version": "1.5.0", "state": {"children": [f"IPY_MODEL_{i}" for i in ids]}}}
    for i, name in zip(ids, ("HTMLModel", "FloatProgressModel", "HTMLModel"), strict=True):
        state[i] = {"model_module": "@jupyter-widgets/controls", "model_name": name, "model_module_version": "1.5.0",
                    "state": {"value": 100 if name == "FloatProgressModel" else "épocas: 100%"}}
    return state


def as_downloaded_from_colab(spec) -> dict:
    """The solved notebook, filled in and run in Colab, then downloaded."""
    nb = json.loads(spec.solution_notebook.read_text(encoding="utf-8"))
    widgets: dict = {}
    cells = [{"cell_type": "code", "source": COLAB_SETUP, "metadata": {}, "execution_count": None, "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "Mounted at /content/drive\n/content/drive/MyDrive/curso\n"}]}]
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        new = {"cell_type": cell["cell_type"], "metadata": {}, "source": source}
        if "tags" in cell.get("metadata", {}):
            new["metadata"]["tags"] = cell["metadata"]["tags"]
        if cell["cell_type"] == "code":
            new["source"] = strip_markers(source)
            new["execution_count"], new["outputs"] = None, []
            if source.lstrip().startswith("check"):
                new["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {
                    "text/html": "<div><table><tr><td>✔ q1</td></tr></table></div>",
                    "text/plain": "Autocomprobación · Pruebas públicas superadas: 2 / 2"}}]
            elif "plt." in source:
                new["outputs"] = [{"output_type": "display_data", "metadata": {},
                                   "data": {"image/png": TINY_PNG, "text/plain": "<Figure size 1100x400 with 2 Axes>"}}]
            elif "tqdm" in source or "train" in source:
                model_id = _id(source)
                widgets.update(_widget_state(model_id))
                new["outputs"] = [_widget(model_id, "épocas: 100%|██████████| 8/8 [00:12<00:00,  1.52s/it]")]
        cells.append(new)
    cells.insert(2, {"cell_type": "code", "source": "resultado = 1 / 0  # una prueba que falló y se quedó ahí",
                     "metadata": {}, "execution_count": None, "outputs": [
                         {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
                          "traceback": ["\u001b[0;31mZeroDivisionError\u001b[0m: division by zero"]}]})
    count = 0
    for cell in cells:
        cell["metadata"]["id"] = _id(cell["source"])
        if cell["cell_type"] == "code":
            count += 1
            cell["execution_count"] = count
            if cell["outputs"]:
                cell["metadata"]["outputId"] = _id(cell["metadata"]["id"])
                cell["metadata"]["colab"] = {"base_uri": "https://localhost:8080/", "height": 300}
    return {
        "nbformat": 4, "nbformat_minor": 0,
        "metadata": {
            "accelerator": "GPU",
            "autograder": {"assignment": spec.id, "version": spec.version},
            "colab": {"gpuType": "T4", "name": f"Copia de {spec.stub_name}", "provenance": [], "toc_visible": True},
            "kernelspec": {"display_name": "Python 3", "name": "python3"},
            "language_info": {"name": "python"},
            "widgets": {"application/vnd.jupyter.widget-state+json": widgets},
        },
        "cells": cells,
    }


@pytest.mark.slow
@pytest.mark.parametrize("assignment", COURSE.assignment_ids())
def test_a_solved_notebook_downloaded_from_colab_gets_full_marks(assignment, sandbox_mode, tmp_path):
    spec = COURSE.spec(assignment)
    submissions = tmp_path / "entregas"
    submissions.mkdir()
    notebook = as_downloaded_from_colab(spec)
    assert notebook["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"], "no progress bar was shown"
    path = submissions / f"Copia de {spec.stub_name}"  # an LMS download of Colab's copy, in a flat folder
    path.write_text(json.dumps(notebook, ensure_ascii=False, indent=2), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["grade", assignment, str(submissions), "--out", str(out), "--course", str(ROOT),
                                      "--jobs", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    with (out / "grades.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["status"] == "graded", rows
    assert float(rows[0]["score"]) == pytest.approx(spec.max_score), rows[0]
