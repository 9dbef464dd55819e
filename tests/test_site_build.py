"""The course website's staging step (docs/site/build_site.py), without Sphinx or a browser: the course
map covers every notebook, a notebook's page keeps its committed cells and outputs and replaces each
widget output by exactly what its Output widgets saved, and a stated time is read. The built site is
tested in Chromium by tests/browser/test_site.py (make test-site)."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_site", REPO / "docs" / "site" / "build_site.py")
build_site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_site)

WIDGET_VIEW = build_site.WIDGET_VIEW
NOTEBOOKS = build_site.course_notebooks(REPO)
README = (REPO / "README.md").read_text()


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_course_notebooks_in_order():
    numbered = [p.name for p in NOTEBOOKS if p.name[:2].isdigit()]
    assert numbered == sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert "04_multi_scale_fusion.ipynb" in numbered


def test_course_map_lists_every_notebook():
    """The README's notebook table, from which the site's course map is generated, has a row for every
    numbered notebook (a notebook missing there would be missing from the course map)."""
    header, rows = build_site.readme_notebook_table(README)
    assert header[0] == "notebook", header
    missing = [p.name for p in NOTEBOOKS if p.name[:2].isdigit() and p.name not in rows]
    assert not missing, f"README.md's notebook table has no row for {missing}"


def test_index_page_links_every_notebook_in_order():
    pages = [(f"notebooks/{p.stem}", build_site.notebook_title(_load(p), p), None) for p in NOTEBOOKS]
    index = build_site.index_page(README, pages, [])
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0]
    listed = [line.rsplit("<", 1)[1].rstrip(">") for line in toctree.splitlines() if line.endswith(">")]
    assert listed == [doc for doc, _, _ in pages]
    for doc, _, _ in pages:
        assert f"]({doc}.ipynb)" in index, f"the course map does not link {doc}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_staged_notebook_keeps_cells_and_outputs(path):
    """Staged = committed notebook + one box cell under the title; code without nbval's markers; every
    non-widget output unchanged and in order; each widget output → a note + its Output widgets' outputs."""
    original = _load(path)
    staged = build_site.staged_notebook(path, None)
    assert len(staged["cells"]) == len(original["cells"]) + 1
    box = staged["cells"][1]
    assert "course-page-box" in box["source"] and f"make lab NB=notebooks/{path.name}" in box["source"]
    assert "widgets" not in staged["metadata"]
    state = original["metadata"].get("widgets", {}).get(build_site.WIDGET_STATE, {}).get("state", {})
    for before, after in zip(original["cells"], staged["cells"][:1] + staged["cells"][2:], strict=True):
        if before["cell_type"] != "code":
            assert after == before
            continue
        assert _source(after) == _source(before)
        expected = []
        for output in before.get("outputs", []):
            if WIDGET_VIEW not in output.get("data", {}):
                expected.append(output)
                continue
            models = build_site._descendants(state, output["data"][WIDGET_VIEW]["model_id"])
            saved = [o for m in models if m["model_name"] == "OutputModel" for o in m["state"]["outputs"]]
            assert saved, f"{path.name}: a widget output whose Output widgets saved nothing"
            expected += [None] + saved  # None: the note
        outputs = after["outputs"]
        assert len(outputs) == len(expected)
        for got, want in zip(outputs, expected, strict=True):
            if want is None:
                assert "widget-static-view" in got["data"]["text/html"]
            else:
                assert got == want


def test_static_view_names_the_saved_control_values():
    path = REPO / "notebooks" / "01_heatmaps.ipynb"
    staged = build_site.staged_notebook(path, None)
    notes = [o["data"]["text/html"] for c in staged["cells"] for o in c.get("outputs", [])
             if "widget-static-view" in o.get("data", {}).get("text/html", "")]
    assert len(notes) == 1
    # the explorer's saved state (metadata.widgets): sigma 2.0, decode method "dark"
    assert "sigma = <code>2.0</code>" in notes[0] and "method = <code>dark</code>" in notes[0], notes[0]


@pytest.mark.parametrize("line, time", [
    ("**Time:** about 45 min", "about 45 min"), ("⏱ 30 min", "30 min"), ("Time: 1 h", "1 h"),
    ("**Time** — about 50 min", "about 50 min"), ("Time steps are what a sequence model counts", None),
    ("We fine-tune for about a minute.", None),
])
def test_time_line(line, time):
    found = build_site.TIME_LINE.search(f"# 01 · Title\n\nIntro.\n{line}\n")
    assert (found.group("time") if found else None) == time


@pytest.mark.parametrize("stated, short", [
    ("about 35 min of reading on the core path, 45 with the sections marked *(deeper)* (the exercises "
     "extra) · **Needs:** notebook 00", "35 min (45 with the deeper sections)"),
    ("about 25 min of reading (the exercises extra) · **Needs:** notebook 07", "25 min"),
    ("1 h · **Needs:** nothing", "1 h"), ("45 min", "45 min")])
def test_a_time_line_is_shortened_to_its_time(stated, short):
    assert build_site.short_time(stated) == short


def test_table_of_contents_labels_are_plain_text():
    pages = [("notebooks/A1_x", "A1 · Speed: `torch.compile`", "30 min")]
    assert "A1 · Speed: torch.compile · 30 min <notebooks/A1_x>" in build_site.index_page(README, pages, [])


def test_time_from_readme_column_first():
    nb = {"cells": [{"cell_type": "markdown", "source": "# 01 · T\n\n**Time:** 20 min\n"}]}
    assert build_site.notebook_time(nb, ["`01_x.ipynb`", "teaches", "45 min"], 2) == "45 min"
    assert build_site.notebook_time(nb, ["`01_x.ipynb`", "teaches"], None) == "20 min"
    assert build_site.notebook_time({"cells": []}, None, None) is None


def test_index_page_shows_stated_times():
    """A notebook's stated time reaches its table-of-contents label and the course map."""
    pages = [(f"notebooks/{p.stem}", build_site.notebook_title(_load(p), p), "45 min" if i == 0 else None)
             for i, p in enumerate(NOTEBOOKS)]
    index = build_site.index_page(README, pages, [])
    assert f"{pages[0][1]} · 45 min <{pages[0][0]}>" in index
    assert f"{pages[1][1]} <{pages[1][0]}>" in index
    header_line = next(line for line in index.splitlines() if line.startswith("| | notebook"))
    assert header_line.endswith("| time |")
    row = next(line for line in index.splitlines()
               if f"({pages[0][0]}.ipynb)" in line and line.startswith("|"))
    assert row.endswith("| 45 min |"), row
