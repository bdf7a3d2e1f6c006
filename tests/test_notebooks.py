"""The notebooks under notebooks/ run end to end in a real Jupyter kernel, with the checkout's rawcap.

Each notebook is executed by nbclient in a fresh ipykernel whose working directory is
notebooks/, as when a reader opens it there; its set-up cell then puts the checkout on the path
(CI's `pip install -e .` makes it importable anyway). Any cell that raises, an assert in a
notebook included, fails the test. A last cell added here checks which rawcap the kernel used
and removes the temporary directory the training notebooks work in.
The notebooks are committed without outputs, so diffs stay readable.
"""
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["1_lstm_backward.ipynb", "2_attention.ipynb",
                                           "3_train_captioner.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_end_to_end(path):
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(   # which rawcap ran; remove the notebook's files
        "import rawcap, os, shutil\nprint(os.path.dirname(os.path.abspath(rawcap.__file__)))\n"
        "if 'work' in globals():\n    os.chdir('/')\n    shutil.rmtree(work)"))
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    began = time.perf_counter()
    client.execute()                         # raises CellExecutionError naming the failing cell
    print(f"{path.name}: {time.perf_counter() - began:.1f} s")
    used = notebook.cells[-1].outputs[0]["text"].strip()
    assert Path(used) == ROOT / "rawcap"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[1].cell_type == "code" and "RAWCAP_SOURCE" in notebook.cells[1].source
    for k, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{path.name} cell {k} has outputs: clear them before committing"
