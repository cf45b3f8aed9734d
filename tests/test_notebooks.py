"""Every notebook in notebooks/ runs top to bottom in a fresh kernel, so none goes stale.

The kernel is this interpreter (a kernelspec written for the test, so that a ``python3``
kernel installed elsewhere on the machine cannot stand in for it), with matplotlib's headless
``Agg`` backend, as in CI. The notebooks are stored without outputs; the outputs checked here
are those of this run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
KERNEL = "rxagent-tests"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / KERNEL
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rxagent tests",
        "language": "python",
        "env": {"MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    }))
    return kernels


@pytest.fixture(scope="module", params=PATHS, ids=[path.stem for path in PATHS])
def executed(request: pytest.FixtureRequest, kernel_dir: Path) -> Iterator[tuple[str, Any]]:
    path: Path = request.param
    notebook = nbformat.read(path, as_version=4)
    manager = AsyncKernelManager(
        kernel_name=KERNEL,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]),
    )
    client = nbclient.NotebookClient(
        notebook, km=manager, timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    # Raises CellExecutionError, with the cell and its traceback, on any error. The client
    # shuts the kernel down and closes its sockets when done (it would not, by default, for
    # a kernel manager it was handed).
    client.execute(cleanup_kc=True)
    yield path.name, notebook


def test_the_notebooks_are_there() -> None:
    assert [path.name for path in PATHS] == [
        "01_quickstart.ipynb", "02_operators.ipynb", "03_multi_agent.ipynb",
    ]


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_notebooks_are_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def cell_after(notebook: Any, marker: str) -> Any:
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and marker in c.source]
    return cell


def printed(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def shown(cell: Any, mime: str) -> list[str]:
    return [o.data[mime] for o in cell.outputs
            if o.output_type in ("display_data", "execute_result") and mime in o.data]


def test_every_cell_ran_without_error(executed: tuple[str, Any]) -> None:
    name, notebook = executed
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, f"{name}: a cell did not run"
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
            stderr = [o.text for o in cell.outputs
                      if o.output_type == "stream" and o.name == "stderr"]
            assert not stderr, f"{name}: a cell wrote to stderr: {stderr}"


def test_what_the_notebooks_show(executed: tuple[str, Any]) -> None:
    name, notebook = executed
    if name == "01_quickstart.ipynb":
        seed = printed(cell_after(notebook, 'stream_mode=["updates", "custom"]'))
        assert seed.count("stream_mode: updates") == 3
        assert seed.count("stream_mode: custom") == 2
        assert "step: tools" in printed(cell_after(notebook, 'stream_mode="updates"'))
        live = cell_after(notebook, "timeline = show(")
        (html,) = shown(live, "text/html")
        assert "get_weather" in html and "Looking up data for city: San Francisco" in html
        (text,) = shown(live, "text/plain")
        assert text.endswith("✔ done: 2 model calls, 1 tool call, 10 text chunks")
        assert shown(cell_after(notebook, "timeline.plot()"), "image/png")
        assert "step done: tools" in printed(cell_after(notebook, "def status(part)"))
    elif name == "02_operators.ipynb":
        assert "same text: True" in printed(cell_after(notebook, "def count_and_text"))
        assert "pause   delivered 50 of 50" in printed(cell_after(notebook, "def slow"))
        assert "50 progress events" in printed(cell_after(notebook, "rxo.share()"))
        assert "no second run" in printed(cell_after(notebook, "replayed:"))
        assert shown(cell_after(notebook, "figure.subplots"), "image/png")
    else:
        assert name == "03_multi_agent.ipynb"
        docs = printed(cell_after(notebook, "def call_research_agent"))
        assert "subgraphs=False: 19 supervisor events, 0 from the sub-agent" in docs
        assert "subgraphs=True: 19 supervisor events, 24 from the sub-agent" in docs
        assert "…  researcher It is sunny in SF, 21 degrees, with a light breeze." in docs
        who = printed(cell_after(notebook, "def writer_messages"))
        assert "disable_streaming: ['AIMessage']" in who
        assert "nostream tag:      []" in who
        live = cell_after(notebook, "timeline = show(")
        (text,) = shown(live, "text/plain")
        assert "  ▶ researcher ▸ model · step 1" in text
        assert "  ✓ writer → A bright, mild day" in text
        assert shown(cell_after(notebook, "timeline.plot()"), "image/png")
