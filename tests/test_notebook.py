"""examples/quickstart.ipynb runs top to bottom against the installed focal.

The notebook is stored without outputs; this executes it in a fresh python3
kernel (ipykernel, same interpreter as the tests) with the working directory
in tmp_path, and fails on the first cell that raises.
"""
import json
import os
import sys

import nbformat
from nbclient import NotebookClient

NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples", "quickstart.ipynb")


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    # A kernelspec named python3 that runs this very interpreter, found first
    # on JUPYTER_PATH: no kernel from another environment can stand in for it.
    # Jupyter's and IPython's runtime and history files go under tmp_path too.
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (focal tests)",
        "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), \
        "examples/quickstart.ipynb is stored with outputs; clear them"
    client = NotebookClient(notebook, kernel_name="python3", timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells)
    figures = sum("image/png" in output.get("data", {})
                  for cell in code_cells for output in cell.outputs)
    assert figures == 3, f"expected the notebook's 3 inline figures, got {figures}"
    # the notebook writes no file in its working directory
    assert {p.name for p in tmp_path.iterdir()} <= {"ipython", "jupyter", "runtime"}
