"""Every exercise of every chapter and appendix has a worked solution, with a difficulty and a cost.

The chapters' "## Exercises" cell (tagged `exercise`) numbers its exercises "1. **Title.** …"; the
solutions notebook `notebooks/solutions/<prefix>_solutions.ipynb` has one "## Exercise N · Title — ★… ·
cost" heading per exercise, in order, with the same title. nbval executes the solutions (their asserts
check the answers); this test checks that none is missing (README "Course map")."""

import re
import sys
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


# ---------------------------------------------------------------------------------------------------
# The course map's times are computed (docs/reading_time.py), not guessed, and stay in step.

sys.path.insert(0, str(NOTEBOOKS.parent / "docs"))
import reading_time  # noqa: E402


def readme_course_map() -> dict[str, tuple[int, int]]:
    """{"01": (core, full)} from the README's course map table."""
    text = (NOTEBOOKS.parent / "README.md").read_text()
    section = text.split("## Course map", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w\w) \| [^|]+ \| (\d+) min \| (\d+) min \|", section, re.MULTILINE)
    return {number: (int(core), int(full)) for number, core, full in rows}


@pytest.mark.parametrize("notebook", COURSE, ids=lambda p: p.stem)
def test_stated_times_are_the_measured_ones(notebook):
    core, full = reading_time.reading_time(notebook)
    row = notebook.name[:2]
    assert readme_course_map().get(row) == (core, full), \
        f"README course map row {row}: make it {core} / {full} min (python docs/reading_time.py)"
    opening = next(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")
    stated = f"about {core} min of reading" + ("" if core == full else f" on the core path, {full} with")
    assert f"**Time:** {stated}" in opening, f"{notebook.name}: its Time line should say '{stated}'"


def test_deeper_sections_count_only_towards_the_full_time(tmp_path):
    """A "(deeper)" section runs to the next heading of its level or above; the rest is core."""
    from nbformat.v4 import new_markdown_cell, new_notebook

    cells = ["# T\n\none two", "## 1 · A\n\nthree four", "## 2 · B (deeper)\n\nfive six seven",
             "### 2.1 · C\n\neight nine", "## Recap\n\nten", "## Exercises\n\n1. **X.** not counted"]
    nb = new_notebook(cells=[new_markdown_cell(c) for c in cells])
    nb.cells[-1].metadata["tags"] = ["exercise"]
    path = tmp_path / "99_t.ipynb"
    nbformat.write(nb, path)
    core, deeper = reading_time.words(path)
    assert (core, deeper) == (len("# T one two ## 1 · A three four ## Recap ten".split()),
                              len("## 2 · B (deeper) five six seven ### 2.1 · C eight nine".split()))


# ---------------------------------------------------------------------------------------------------
# Test plumbing stays out of the teaching code: nbval's markers are cell tags, pycocotools' chatter is
# hidden by `notebook_utils.quiet`, figure formats by `notebook_utils.jpeg_figures`.

PLUMBING = re.compile(r"#\s*NBVAL_|redirect_std(out|err)|^\s*%config|\+\s*0\.0(?![\d.])", re.MULTILINE)
EVERY_NOTEBOOK = sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


@pytest.mark.parametrize("notebook", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_no_test_plumbing_in_the_teaching_code(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    found = [(i, m.group(0)) for i, c in enumerate(cells) if c.cell_type == "code"
             for m in [PLUMBING.search(c.source)] if m]
    assert not found, f"{notebook.name}: test plumbing in cells {found} (nbval's markers belong in cell tags)"


def test_the_plumbing_pattern_finds_what_it_should():
    for source in ("# NBVAL_IGNORE_OUTPUT\nx", "with contextlib.redirect_stdout(io.StringIO()):",
                   '%config InlineBackend.figure_formats = ["jpeg"]', "round(r2, 2) + 0.0",
                   "np.round(np.mean(v), 3) + 0.0 for"):
        assert PLUMBING.search(source), source
    assert not PLUMBING.search("targets + 0.05 * noise")
