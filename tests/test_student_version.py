"""`make student` writes the chapters without their solutions: cells tagged `solution` removed, the
outputs of cells tagged `exercise` cleared, notebooks/solutions/ left out (Makefile, README "Course map").

The target runs nbconvert's own TagRemovePreprocessor; these tests run the target itself (into a
temporary folder) on the real chapters and on a small notebook made to exercise every rule."""

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
CHAPTERS = sorted([*NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"), *NOTEBOOKS.glob("A[0-9]_*.ipynb")])

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_student(out: Path, notebooks: Path = NOTEBOOKS) -> Path:
    command = ["make", "-s", "-C", str(REPO), "student", f"STUDENT_DIR={out}",
               f"STUDENT_NOTEBOOKS={notebooks}"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return out / "notebooks"


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    return make_student(tmp_path_factory.mktemp("student"))


def test_every_chapter_and_nothing_else(student):
    assert len(CHAPTERS) >= 10
    assert sorted(p.name for p in student.iterdir()) == [p.name for p in CHAPTERS]
    assert (student.parent / "data_samples" / "synthpose").is_dir()  # the chapters' ../data_samples resolves


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_student_chapter(student, chapter):
    original = nbformat.read(chapter, as_version=4)
    written = nbformat.read(student / chapter.name, as_version=4)
    nbformat.validate(written)
    assert not any("solution" in tags(c) for c in written.cells)
    exercises = [c for c in written.cells if "exercise" in tags(c)]
    assert exercises, f"{chapter.name} has no cell tagged exercise (its '## Exercises' cell)"
    assert all(not c.get("outputs") for c in exercises)
    # everything else is the chapter itself: same cells, same sources, same outputs
    kept = [c for c in original.cells if "solution" not in tags(c)]
    assert [c.source for c in written.cells] == [c.source for c in kept]
    for before, after in zip(kept, written.cells):
        if before.cell_type == "code" and "exercise" not in tags(before):
            assert after.outputs == before.outputs


def test_the_rules_on_a_made_notebook(tmp_path):
    """A code cell tagged exercise with an output, a solution cell, and an ordinary cell."""
    source = tmp_path / "src"
    source.mkdir()
    nb = new_notebook(cells=[
        new_markdown_cell("# 99 · A made chapter"),
        new_code_cell("x = 1\nx", execution_count=1, metadata={"tags": ["exercise"]},
                      outputs=[new_output("execute_result", {"text/plain": "1"}, execution_count=1)]),
        new_code_cell("print('the answer')", metadata={"tags": ["solution"]},
                      outputs=[new_output("stream", name="stdout", text="the answer\n")]),
        new_code_cell("y = 2\ny", execution_count=3,
                      outputs=[new_output("execute_result", {"text/plain": "2"}, execution_count=3)]),
    ])
    nbformat.write(nb, source / "99_made.ipynb")
    (source / "solutions").mkdir()
    nbformat.write(nb, source / "solutions" / "99_solutions.ipynb")
    out = make_student(tmp_path / "student", source)
    assert [p.name for p in out.iterdir()] == ["99_made.ipynb"]
    written = nbformat.read(out / "99_made.ipynb", as_version=4)
    nbformat.validate(written)
    assert [c.source for c in written.cells] == ["# 99 · A made chapter", "x = 1\nx", "y = 2\ny"]
    assert written.cells[1].outputs == []
    assert written.cells[2].outputs[0]["data"]["text/plain"] == "2"
