"""Each notebook has one source of truth: notebooks/NN_name.ipynb and its jupytext pair
notebooks/NN_name.py (py:percent, paired by notebooks/jupytext.toml) hold the same cells.

The .ipynb keeps the executed outputs that nbval compares; the .py is the text a contributor
diffs and reviews. Either may be edited; ``jupytext --sync`` then copies the more recent one
onto the other. These tests fail when a pair has drifted apart."""

import shutil
from pathlib import Path

import jupytext
import pytest
from jupytext.config import load_jupytext_config
from nbformat.v4 import new_code_cell

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# the chapters, and the solutions of their exercises in notebooks/solutions/ (paired the same way)
NOTEBOOK_PATHS = sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
PAIRING = "ipynb,py:percent"


def _cells(path: Path) -> list[tuple[str, str]]:
    """(cell type, source) of every cell, read through jupytext (outputs and cell metadata aside)."""
    return [(cell.cell_type, cell.source) for cell in jupytext.read(path).cells]


def _first_line_that_differs(a: str, b: str) -> str:
    a_lines, b_lines = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(a_lines, b_lines)):
        if x != y:
            return f"line {i + 1}: {x!r} vs {y!r}"
    return f"{len(a_lines)} lines vs {len(b_lines)} lines"


def pair_differences(ipynb: Path) -> list[str]:
    """What differs between a notebook and its paired .py file; [] when they hold the same cells
    (types and sources, in order) and the same kernelspec."""
    py = ipynb.with_suffix(".py")
    if not py.exists():
        return [f"{py.name} is missing"]
    nb_cells, py_cells = _cells(ipynb), _cells(py)
    found = []
    if len(nb_cells) != len(py_cells):
        found.append(f"{len(nb_cells)} cells in {ipynb.name}, {len(py_cells)} in {py.name}")
    for i, ((nb_type, nb_src), (py_type, py_src)) in enumerate(zip(nb_cells, py_cells)):
        if nb_type != py_type:
            found.append(f"cell {i}: {nb_type} in {ipynb.name}, {py_type} in {py.name}")
        elif nb_src != py_src:
            found.append(f"cell {i} ({nb_type}) differs, {_first_line_that_differs(nb_src, py_src)}")
    nb_kernel = jupytext.read(ipynb).metadata.get("kernelspec")
    py_kernel = jupytext.read(py).metadata.get("kernelspec")
    if nb_kernel != py_kernel:
        found.append(f"kernelspec {nb_kernel} in {ipynb.name}, {py_kernel} in {py.name}")
    return found


def test_every_notebook_has_a_pair_and_every_pair_a_notebook():
    assert len(NOTEBOOK_PATHS) >= 9, f"the notebooks are missing from {NOTEBOOKS}"
    unpaired = [p.name for p in NOTEBOOK_PATHS if not p.with_suffix(".py").exists()]
    assert not unpaired, (
        f"no paired .py for {unpaired}: run .venv/bin/jupytext --sync notebooks/<name>.ipynb "
        "(notebooks/jupytext.toml pairs it)"
    )
    orphans = [p.name for p in NOTEBOOKS.rglob("*.py") if not p.with_suffix(".ipynb").exists()]
    assert not orphans, f"{orphans} in notebooks/ have no .ipynb: a notebook's pair, or a stray file?"


@pytest.mark.parametrize("ipynb", NOTEBOOK_PATHS, ids=lambda p: str(p.relative_to(NOTEBOOKS).with_suffix("")))
def test_pairing_is_configured_as_py_percent(ipynb):
    assert load_jupytext_config(ipynb).default_formats(ipynb) == PAIRING
    meta = jupytext.read(ipynb.with_suffix(".py")).metadata["jupytext"]["text_representation"]
    assert (meta["extension"], meta["format_name"]) == (".py", "percent")


@pytest.mark.parametrize("ipynb", NOTEBOOK_PATHS, ids=lambda p: str(p.relative_to(NOTEBOOKS).with_suffix("")))
def test_notebook_and_its_py_hold_the_same_cells(ipynb):
    found = pair_differences(ipynb)
    assert not found, (
        f"notebooks/{ipynb.name} and notebooks/{ipynb.with_suffix('.py').name} are out of sync:\n  "
        + "\n  ".join(found)
        + f"\nFix: .venv/bin/jupytext --sync notebooks/{ipynb.name} (the more recently modified file wins),"
        " then re-execute the notebook so that the outputs nbval compares are current (README: Editing a"
        " notebook)."
    )


@pytest.fixture
def pair(tmp_path):
    """A copy of the smallest notebook and its pair, to break on purpose."""
    ipynb = min(NOTEBOOK_PATHS, key=lambda p: p.stat().st_size)
    for path in (ipynb, ipynb.with_suffix(".py")):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / ipynb.name


def test_the_check_passes_an_untouched_copy(pair):
    assert pair_differences(pair) == []


def test_the_check_reports_an_edited_code_cell(pair):
    py = pair.with_suffix(".py")
    text = py.read_text()
    marker = "\n# %%\n"  # the first code cell
    assert marker in text
    py.write_text(text.replace(marker, marker + "x = 1  # edited in the .py only\n", 1))
    found = pair_differences(pair)
    assert len(found) == 1 and "(code) differs" in found[0] and "edited in the .py only" in found[0], found


def test_the_check_reports_an_edited_markdown_cell_and_a_deleted_cell(pair):
    nb = jupytext.read(pair)
    nb.cells[0].source += "\n\nA sentence added in JupyterLab."
    del nb.cells[-1]
    jupytext.write(nb, pair)
    found = pair_differences(pair)
    assert any(f.startswith("cell 0 (markdown) differs") for f in found), found
    assert any("cells in" in f for f in found), found


def test_the_check_reports_a_changed_cell_type(pair):
    nb = jupytext.read(pair)
    i = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown")
    nb.cells[i] = new_code_cell(nb.cells[i].source)
    jupytext.write(nb, pair)
    assert any(f.startswith(f"cell {i}: code in") for f in pair_differences(pair))


def test_the_check_reports_a_missing_py(pair):
    pair.with_suffix(".py").unlink()
    assert pair_differences(pair) == [f"{pair.with_suffix('.py').name} is missing"]
