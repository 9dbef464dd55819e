"""Every exercise of every chapter and appendix has a worked solution, with a difficulty and a cost.

The chapters' "## Exercises" cell (tagged `exercise`) numbers its exercises "1. **Title.** …"; the
solutions notebook `notebooks/solutions/<prefix>_solutions.ipynb` has one "## Exercise N · Title — ★… ·
cost" heading per exercise, in order, with the same title. nbval executes the solutions (their asserts
check the answers); this test checks that none is missing (README "Course map")."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
COURSE = sorted([*NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"), *NOTEBOOKS.glob("A[0-9]_*.ipynb")])
EXERCISE = re.compile(r"^(\d+)\.\s+\*\*(.+?)\*\*", re.MULTILINE)
HEADING = re.compile(r"^## Exercise (\d+) · (.+?) — (★{1,3}) · (.+)$", re.MULTILINE)


def exercises(notebook: Path) -> list[tuple[int, str]]:
    cells = [c for c in nbformat.read(notebook, as_version=4).cells
             if "exercise" in c.metadata.get("tags", [])]
    return [(int(n), title.rstrip(".?! ")) for c in cells for n, title in EXERCISE.findall(c.source)]


def solutions(notebook: Path) -> list[tuple[int, str, str, str]]:
    path = NOTEBOOKS / "solutions" / f"{notebook.name.split('_')[0]}_solutions.ipynb"
    assert path.exists(), f"{notebook.name} has exercises but no {path.relative_to(NOTEBOOKS.parent)}"
    cells = nbformat.read(path, as_version=4).cells
    return [(int(n), title, stars, cost) for c in cells if c.cell_type == "markdown"
            for n, title, stars, cost in HEADING.findall(c.source)]


def test_the_course_has_chapters_and_appendices():
    names = [p.name for p in COURSE]
    assert "04_multi_scale_fusion.ipynb" in names
    assert any(n.startswith("A1_") for n in names)


WITH_EXERCISES = [p for p in COURSE if not p.name.startswith("00_")]  # 00 is the overview: no exercises


@pytest.mark.parametrize("notebook", WITH_EXERCISES, ids=lambda p: p.stem)
def test_every_exercise_has_a_solution(notebook):
    asked = exercises(notebook)
    assert asked, f"{notebook.name}: no numbered exercise in a cell tagged exercise"
    numbers = [n for n, _ in asked]
    assert numbers == list(range(1, len(asked) + 1)), f"{notebook.name}: exercises not numbered 1..n"
    solved = solutions(notebook)
    solved_numbers = [n for n, *_ in solved]
    assert solved_numbers == numbers, f"{notebook.name}: exercises {numbers}, solutions {solved_numbers}"
    for (n, title), (_, solved_title, _, cost) in zip(asked, solved):
        assert solved_title.rstrip(".?! ") == title, \
            f"{notebook.name} exercise {n}: '{title}' vs '{solved_title}'"
        assert "min" in cost or " h" in cost, f"{notebook.name} exercise {n}: no cost in '{cost}'"


def test_a_heading_without_a_cost_is_caught():
    assert not HEADING.findall("## Exercise 1 · Title")
    found = HEADING.findall("## Exercise 2 · A fixed batch — ★ · ≈ 0.5 min")
    assert found == [("2", "A fixed batch", "★", "≈ 0.5 min")]
