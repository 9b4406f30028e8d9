"""notebooks/train.ipynb runs top to bottom on the synthetic MPI-INF-3DHP (CI), with its
parameters overridden as papermill would: a cell placed after the "parameters" cell."""

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from mdm.data.synthetic import mpi_writer

pytestmark = pytest.mark.slow  # the notebook runs in a kernel process and trains

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "train.ipynb"


def _with_parameters(notebook, values):
    tagged = [i for i, cell in enumerate(notebook.cells)
              if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    notebook.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(source))
    return notebook


def test_notebook_defines_no_functions_or_classes():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            assert not any(line.lstrip().startswith(("def ", "class ")) for line in lines)


def test_notebook_runs_on_the_synthetic_set(tmp_path, monkeypatch):
    train_npz, test_npz = mpi_writer.write_synthetic_npz(
        str(tmp_path / "mpi"), frames_per_sequence=12, seed=5, subsample=2)
    train_dir = tmp_path / "train"
    notebook = _with_parameters(nbformat.read(NOTEBOOK, as_version=4), {
        "TRAIN_NPZ": train_npz, "TEST_NPZ": test_npz, "TRAIN_DIR": str(train_dir),
        "SYNTHETIC_IF_MISSING": False, "EPOCHS": 2, "BATCH_SIZE": 64, "LINEAR_SIZE": 32,
        "NUM_LAYERS": 1, "JIT_COMPILE": False, "NUM_FIGURES": 2})
    # The kernel imports mdm from the repository root, as a user's PYTHONPATH=$PWD would.
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO / "notebooks")}})
    try:
        client.execute()
    except Exception as err:  # show the failing cell's traceback, not nbclient's wrapper
        pytest.fail(f"notebook failed: {err}")
    outputs = "".join(output.get("text", "") for cell in notebook.cells
                      if cell.cell_type == "code" for output in cell.get("outputs", []))
    for scene in ("GS", "noGS", "Outdoor", "All"):
        assert scene in outputs
    images = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]
    assert len(images) == 1 + 2  # the training curve and two hypothesis figures
    assert (train_dir / "training_curve.png").is_file()
    assert len(list((train_dir / "samples").glob("*.png"))) == 2
