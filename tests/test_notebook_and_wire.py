"""Reading notebooks as students hand them in; static analysis; the wire format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autograder.execute.runtime import wire
from autograder.grade.discover import discover, student_name
from autograder.notebook.analysis import analyse, to_python
from autograder.notebook.load import NotebookError, load_notebook


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_v4_with_colab_metadata_tags_and_list_sources(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 0, "metadata": {"colab": {"provenance": []}, "accelerator": "GPU"},
          "cells": [{"cell_type": "markdown", "source": ["# hola"]},
                    {"cell_type": "code", "source": ["x = 1\n", "y = 2"], "metadata": {"tags": ["skip-grading"]},
                     "outputs": [{"output_type": "stream", "text": "x" * 1000}]}]}
    loaded = load_notebook(write(tmp_path, "a.ipynb", json.dumps(nb)))
    assert [(c.index, c.source, c.tags) for c in loaded.code_cells] == [(1, "x = 1\ny = 2", ["skip-grading"])]


def test_v3_notebooks_are_read(tmp_path):
    nb = {"nbformat": 3, "worksheets": [{"cells": [{"cell_type": "code", "input": ["def f():\n", "    return 1"]}]}]}
    assert load_notebook(write(tmp_path, "v3.ipynb", json.dumps(nb))).code_cells[0].source == "def f():\n    return 1"


def test_py_files_are_split_on_percent_cells(tmp_path):
    loaded = load_notebook(write(tmp_path, "tarea.py", "import numpy as np\n# %%\ndef f():\n    return 1\n"))
    assert len(loaded.code_cells) == 2 and ".py" in loaded.note


@pytest.mark.parametrize("content, words", [
    (b"", "vacío"),
    (b"\x89PNG\x00\xff\xfe", "UTF-8"),
    ("{\"cells\": [", "JSON inválido"),
    ("[1, 2]", "objeto"),
    ("{\"metadata\": {}}", "celdas"),
])
def test_broken_files_get_a_message_a_student_can_act_on(tmp_path, content, words):
    with pytest.raises(NotebookError, match=words):
        load_notebook(write(tmp_path, "x.ipynb", content))


def test_a_notebook_with_a_huge_output_cell_is_read(tmp_path):
    nb = {"nbformat": 4, "metadata": {}, "cells": [
        {"cell_type": "code", "source": "print(1)", "outputs": [{"output_type": "stream", "text": "y" * 50_000_000}]}]}
    assert load_notebook(write(tmp_path, "big.ipynb", json.dumps(nb))).code_cells[0].source == "print(1)"


def test_magics_and_shell_escapes_become_python():
    code = to_python("%matplotlib inline\n!pip install torch\nx = 1\n")
    assert "get_ipython().run_line_magic('matplotlib', 'inline')" in code
    assert "get_ipython().system('pip install torch')" in code
    compile(code, "<celda>", "exec")


@pytest.mark.parametrize("source", [
    "import torch\ndef f(x):\n    return torch.tensor(x)",
    "import torch as T\ndef f(x):\n    return T.zeros(1)",
    "from torch import nn\ndef f(x):\n    return nn.Linear(1, 1)",
    "def f(x):\n    import torch.nn.functional as F\n    return F.relu(x)",
    "def f(x):\n    return __import__('torch').zeros(1)",
])
def test_forbidden_module_use_is_found_however_imported(source):
    facts = analyse([(0, source)], ["torch"])
    assert facts.forbidden_in(["f"]) == ("f", "torch")


def test_forbidden_use_through_a_helper_and_clean_functions():
    facts = analyse([(0, "import torch\ndef helper(x):\n    return torch.relu(x)"),
                     (1, "def f(x):\n    return helper(x)\ndef g(x):\n    return x  # torch is not used here")],
                    ["torch"])
    assert facts.forbidden_in(["f"]) == ("helper", "torch")
    assert facts.forbidden_in(["g"]) is None
    assert facts.callees("f") == {"helper"}


def test_student_names_from_files():
    assert student_name("Copia de Ana Pérez") == "Ana Pérez"
    assert student_name("Copy of bob") == "bob"


def test_discovery_picks_the_released_notebook_and_reports_candidates(tmp_path):
    folder = tmp_path / "ana"
    folder.mkdir()
    write(folder, "borrador.ipynb", json.dumps({"cells": [], "metadata": {}}))
    write(folder, "final.ipynb", json.dumps({"cells": [], "metadata": {"autograder": {"assignment": "01_backprop"}}}))
    (folder / ".ipynb_checkpoints").mkdir()
    write(folder / ".ipynb_checkpoints", "final-checkpoint.ipynb", "{}")
    (sub,) = discover(tmp_path, "01_backprop")
    assert sub.path.name == "final.ipynb"
    assert sorted(sub.picked_from) == ["borrador.ipynb", "final.ipynb"]


def test_wire_roundtrip_of_nested_answers():
    value = (np.arange(6, dtype=np.float32).reshape(2, 3), {"W1": np.eye(2), "n": 3, "loss": float("nan")},
             [True, None, "txt", np.int64(7)], 2**70)
    back = wire.decode(wire.encode(value))
    assert back[0].dtype == np.float32 and np.array_equal(back[0], value[0])
    assert np.array_equal(back[1]["W1"], np.eye(2)) and back[1]["n"] == 3 and np.isnan(back[1]["loss"])
    assert back[2][:3] == [True, None, "txt"] and back[2][3] == 7 and back[3] == 2**70


def test_wire_turns_unknown_objects_into_unsupported():
    back = wire.decode(wire.encode({"x": object(), "y": np.array([object()], dtype=object)}))
    assert isinstance(back["x"], wire.Unsupported) and isinstance(back["y"], wire.Unsupported)


def test_wire_array_subclasses_cannot_lie():
    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

    back = wire.decode(wire.encode(np.zeros(3).view(Liar)))
    assert type(back) is np.ndarray and not np.array_equal(back, np.ones(3))


@pytest.mark.parametrize("header", [
    {"__nd__": ["|O", [1], 0, 8]},  # object dtype: never
    {"__nd__": ["<f8", [1000], 0, 8]},  # shape larger than its bytes
    {"__nd__": ["<f8", [-1], 0, 8]},
    {"__pickle__": "..."},
    {"__nd__": ["<f8", [1], 0, 8], "extra": 1},
])
def test_wire_decoder_rejects_hostile_frames(header):
    raw = json.dumps(header).encode()
    body = len(raw).to_bytes(4, "big") + raw + b"\x00" * 8
    with pytest.raises(wire.WireError):
        wire.decode_body(body)


def test_wire_decoder_rejects_truncation_and_deep_nesting():
    frame = wire.encode([1, 2, 3])
    with pytest.raises(wire.WireError):
        wire.decode(frame[:-1])
    deep = "[" * 5000 + "]" * 5000
    body = len(deep).to_bytes(4, "big") + deep.encode()
    with pytest.raises(wire.WireError):
        wire.decode_body(body)
