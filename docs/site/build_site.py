"""Builds the course website (``make site``): the committed, executed notebooks rendered by Sphinx with
myst-nb into a static site that works from ``file://`` or any static host.

Nothing is re-executed: the site shows the outputs stored in ``notebooks/*.ipynb``. This script lays
out a staging folder (``build/site/src``) that mirrors the repository's layout, so that relative links
between the notebooks and ``docs/*.md`` resolve as they do on disk, then runs Sphinx on it:

- ``index.md``: the course map, generated from the README's notebook table and its opening paragraph;
- ``notebooks/NN_name.ipynb``: copies of the notebooks, each with a box under its title (its time if
  the notebook states one, a link to its source file, the one command that runs it locally), and each
  widget output replaced by its static view (the controls' saved values and what the explorer drew),
  read from the widget state that nbconvert saved in the notebook's metadata;
- ``docs/glossary.md`` and ``docs/instructor_guide.md`` when they exist;
- ``_static/mathjax``: MathJax, copied from a local install (no CDN at view time);
- ``_extra/notebooks``: the original notebooks and their jupytext pairs, published beside the pages.

Usage: ``python docs/site/build_site.py --mathjax PATH/TO/mathjax/es5 --out site``.
"""

import argparse
import copy
import html
import json
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# The course's pages beyond the notebooks, in the order the table of contents lists them.
EXTRA_DOCS = (("docs/glossary.md", "Glossary"), ("docs/instructor_guide.md", "Instructor's guide"),
              ("README.md", "The README: set-up, commands, measurements"))
# A relative Markdown link: [text](target) or [text](target#anchor), target not a URL.
RELATIVE_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#|/)(?P<target>[^)#\s]+)(?:#[^)\s]*)?\)",
                           re.IGNORECASE)
# What MathJax needs at view time: the TeX → SVG bundle (SVG needs no web fonts, which file:// pages
# may not be allowed to load) and the parts it loads on demand (TeX extensions, menu, accessibility).
MATHJAX_PARTS = ("tex-svg.js", "input", "output/svg.js", "output/svg", "ui", "a11y", "sre", "adaptors")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# A line of a notebook's opening cell that states its time, e.g. "**Time:** about 45 min" or "⏱ 45 min".
TIME_LINE = re.compile(r"^\s*(?:\*\*|_)?(?:(?:time|duration|reading time)\s*(?:\*\*|_)?\s*[:—-]|⏱\ufe0f?)"
                       r"\s*(?:\*\*|_)?\s*(?P<time>[^*_\s][^\n]*?)\s*(?:\*\*|_)?\s*$",
                       re.IGNORECASE | re.MULTILINE)


def course_notebooks(repo: Path) -> list[Path]:
    """The numbered notebooks in course order, then the appendices (``appendix_*``, ``A1_*``)."""
    folder = repo / "notebooks"
    numbered = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    appendices = sorted(set(folder.glob("appendix_*.ipynb")) | set(folder.glob("A[0-9]*_*.ipynb")))
    return numbered + appendices


# ---------------------------------------------------------------------------------------------------
# The README: its opening paragraph and its notebook table


def readme_intro(readme: str) -> str:
    """The README's text between its title and its first section."""
    body = readme.split("\n", 1)[1] if readme.startswith("# ") else readme
    return body.split("\n## ", 1)[0].strip()


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def readme_notebook_table(readme: str) -> tuple[list[str], dict[str, list[str]]]:
    """(header, {notebook file name: its row}) of the first table under the README's "## The notebooks"."""
    section = readme.split("\n## The notebooks", 1)
    if len(section) < 2:
        return [], {}
    lines = section[1].split("\n## ", 1)[0].splitlines()
    rows = [line for line in lines if line.lstrip().startswith("|")]
    if len(rows) < 2:
        return [], {}
    header, by_name = _cells(rows[0]), {}
    for row in rows[2:]:  # rows[1] is the |---| line
        cells = _cells(row)
        name = re.search(r"[\w.-]+\.ipynb", cells[0])
        if name:
            by_name[name.group(0)] = cells
    return header, by_name


def _time_column(header: list[str]) -> int | None:
    return next((i for i, h in enumerate(header) if re.search(r"time|minutes|duration", h, re.I)), None)


# ---------------------------------------------------------------------------------------------------
# One notebook's page


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def notebook_title(nb: dict, path: Path) -> str:
    first = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    match = re.search(r"^#\s+(.+)$", _source(first), re.MULTILINE) if first else None
    return match.group(1).strip() if match else path.stem.replace("_", " ")


def notebook_time(nb: dict, readme_row: list[str] | None, time_column: int | None) -> str | None:
    """The notebook's time as the README's table or the notebook's opening cell states it, else None."""
    if readme_row and time_column is not None and time_column < len(readme_row) and readme_row[time_column]:
        return readme_row[time_column]
    first = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    match = TIME_LINE.search(_source(first)) if first else None
    return short_time(match.group("time")) if match else None


def short_time(stated: str) -> str:
    """The time of a **Time:** line without what follows it on the line (its notes, **Needs:**…):
    "about 35 min of reading on the core path, 45 with …" → "35 min (45 with the deeper sections)"."""
    core_full = re.match(r"about (\d+) min(?: of reading)?(?: on the core path, (\d+) with)?", stated)
    if core_full:
        core, full = core_full.groups()
        return f"{core} min" + (f" ({full} with the deeper sections)" if full else "")
    return re.split(r" · | \(", stated, maxsplit=1)[0].strip()


def page_box(path: Path, time_stated: str | None, has_widgets: bool) -> str:
    """The box under a notebook page's title: its time, its source files, how to run it."""
    rel = f"notebooks/{path.name}"
    pair = path.with_suffix(".py")
    sources = f'<a href="{path.name}"><code>{rel}</code></a>'
    if pair.exists():
        sources += f' (its jupytext pair: <a href="{pair.name}"><code>notebooks/{pair.name}</code></a>)'
    lines = ['<div class="admonition tip course-page-box">',
             '<p class="admonition-title">Run this notebook</p>']
    if time_stated:
        lines.append(f"<p><strong>Time:</strong> {html.escape(time_stated)}</p>")
    lines += [f"<p><strong>Source:</strong> {sources}</p>",
              "<p><strong>Run it locally</strong> (from the repository's root; the first run sets up "
              f"<code>.venv/</code>): <code>make lab NB={rel}</code></p>"]
    if has_widgets:
        lines.append("<p>This page shows the notebook's interactive explorers as static views (the "
                     "controls' saved values and what they drew): run the notebook to move them.</p>")
    lines.append("</div>")
    return "\n".join(lines)


def _descendants(state: dict, model_id: str) -> list[dict]:
    """The widget model and every model nested in it (``children``), depth first."""
    model = state.get(model_id)
    if model is None:
        return []
    found = [model]
    for child in model["state"].get("children", []):
        found += _descendants(state, child.removeprefix("IPY_MODEL_"))
    return found


def _control_value(widget: dict) -> str | None:
    s = widget["state"]
    if "_options_labels" in s and s.get("index") is not None:
        index = s["index"]
        labels = s["_options_labels"]
        return ", ".join(labels[i] for i in index) if isinstance(index, list) else labels[index]
    if "value" in s and not isinstance(s["value"], (dict, list)):
        return str(s["value"])
    return None


def widget_static_outputs(output: dict, state: dict, name: str) -> list[dict]:
    """A widget output's static view: a note naming its controls' saved values, then every output that
    its Output widgets hold (the figure or text the explorer drew when the notebook was executed)."""
    models = _descendants(state, output["data"][WIDGET_VIEW]["model_id"])
    controls = [(m["state"].get("description") or m["model_name"].removesuffix("Model"), _control_value(m))
                for m in models if m["model_name"] != "OutputModel"]
    shown = ", ".join(f"{html.escape(d)} = <code>{html.escape(v)}</code>"
                      for d, v in controls if v is not None)
    note = ('<div class="admonition note widget-static-view"><p class="admonition-title">Interactive '
            'explorer (static view)</p><p>' + (f"Controls at their saved values: {shown}. " if shown else "")
            + "What follows is what the explorer showed when the notebook was executed. To move the "
            f"controls, run the notebook: <code>make lab NB=notebooks/{html.escape(name)}</code>.</p></div>")
    outputs = [{"output_type": "display_data", "metadata": {}, "data": {"text/html": note}}]
    for model in models:
        if model["model_name"] == "OutputModel":
            outputs += copy.deepcopy(model["state"].get("outputs", []))
    return outputs


def staged_notebook(path: Path, time_stated: str | None) -> dict:
    """The notebook as its page shows it: the box under the title, static widget views. Cells and
    outputs are otherwise the committed ones (nothing is executed)."""
    nb = json.loads(path.read_text())
    state = nb.get("metadata", {}).pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    has_widgets = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                has_widgets = True
                outputs += widget_static_outputs(output, state, path.name)
            else:
                outputs.append(output)
        cell["outputs"] = outputs
    box = {"cell_type": "markdown", "id": "course-page-box", "metadata": {},
           "source": page_box(path, time_stated, has_widgets)}
    first_md = next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"), None)
    titled = first_md is not None and re.match(r"\s*#\s", _source(nb["cells"][first_md]))
    nb["cells"].insert(first_md + 1 if titled else 0, box)
    return nb


# ---------------------------------------------------------------------------------------------------
# The whole site


def index_page(readme: str, pages: list[tuple[str, str, str | None]], extras: list[tuple[str, str]]) -> str:
    """The landing page: the README's opening, the course map (README's table, linked), the toctree.
    ``pages``: (document name, title, time) of each notebook; ``extras``: (document name, title)."""
    header, rows = readme_notebook_table(readme)
    time_col = _time_column(header)
    show_time = any(t for _, _, t in pages)
    table = ["| | notebook | " + " | ".join(header[1:] if header else ["teaches"]) + (
        " | time |" if show_time and time_col is None else " |")]
    table.append("|---" * (len(table[0].split("|")) - 2) + "|")
    for doc, title, time_stated in pages:
        row = rows.get(Path(doc).name + ".ipynb")
        number = title.split("·")[0].strip() if "·" in title else ""
        name = title.split("·", 1)[-1].strip()
        cells = row[1:] if row else [""] * max(len(header) - 1, 1)
        extra = [time_stated or ""] if show_time and time_col is None else []
        table.append(f"| {number} | [{name}]({doc}.ipynb) | " + " | ".join(cells + extra) + " |")
    # a toctree label is plain text: Markdown's backticks would show as they are
    toc = [(f"{title} · {t}" if t else title).replace("`", "") for _, title, t in pages]
    toctree = ["```{toctree}", ":hidden:", ":caption: The course", ""]
    toctree += [f"{label} <{doc}>" for label, (doc, _, _) in zip(toc, pages, strict=True)]
    toctree.append("```")
    parts = ["# hrnet-edu: the course", "", readme_intro(readme), "", "## The course map", "",
             "Each notebook teaches one idea by importing the library's real code; read them in order.",
             "", *table, "", "## Run it yourself", "",
             "Every page shows the outputs stored in its notebook, executed on the course's development "
             "machine. To run one, clone the repository and, from its root, run `make lab "
             "NB=notebooks/<name>.ipynb` (the first run installs `.venv/`); `make lab` opens them all, "
             "`make test` re-runs every notebook and compares its outputs.", "", *toctree]
    if extras:
        parts += ["", "```{toctree}", ":hidden:", ":caption: For reference", "",
                  *[f"{title} <{doc}>" for doc, title in extras], "```", "",
                  "Also here: " + ", ".join(f"[{title}]({doc}.md)" for doc, title in extras) + "."]
    return "\n".join(parts) + "\n"


def _copy_mathjax(mathjax: Path, dest: Path) -> None:
    if not (mathjax / "tex-svg.js").is_file():
        raise SystemExit(f"error: {mathjax} holds no tex-svg.js (MathJax 3's es5 folder; "
                         "`make site` installs it)")
    for part in MATHJAX_PARTS:
        src = mathjax / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        elif src.is_file():
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)


def _stage_linked_files(repo: Path, src: Path, rel: str) -> None:
    """Copies the repository files that a Markdown page links to (code, data, not pages) into the
    staging folder at the same place, where Sphinx publishes them as downloads: the link then works
    on the site too."""
    for match in RELATIVE_LINK.finditer((repo / rel).read_text()):
        target = (repo / rel).parent / match.group("target")
        try:
            inside = target.resolve().relative_to(repo.resolve())
        except ValueError:  # outside the repository
            continue
        if target.is_file() and target.suffix not in (".md", ".ipynb") and not (src / inside).exists():
            (src / inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(target, src / inside)


def stage(repo: Path, src: Path, mathjax: Path) -> list[str]:
    """Lays out the staging folder; returns the document names in table-of-contents order."""
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    (src / "_extra" / "notebooks").mkdir(parents=True)
    shutil.copy2(HERE / "conf.py", src / "conf.py")
    shutil.copytree(HERE / "_static", src / "_static")
    _copy_mathjax(mathjax, src / "_static" / "mathjax")
    readme = (repo / "README.md").read_text()
    header, rows = readme_notebook_table(readme)
    pages = []
    for path in course_notebooks(repo):
        nb = json.loads(path.read_text())
        time_stated = notebook_time(nb, rows.get(path.name), _time_column(header))
        (src / "notebooks" / path.name).write_text(json.dumps(staged_notebook(path, time_stated), indent=1))
        for original in (path, path.with_suffix(".py")):
            if original.exists():
                shutil.copy2(original, src / "_extra" / "notebooks" / original.name)
        pages.append((f"notebooks/{path.stem}", notebook_title(nb, path), time_stated))
    extras = []
    for rel, title in EXTRA_DOCS:
        if (repo / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, src / rel)
            extras.append((rel.removesuffix(".md"), title))
            _stage_linked_files(repo, src, rel)
    (src / "index.md").write_text(index_page(readme, pages, extras))
    return ["index"] + [doc for doc, _, _ in pages] + [doc for doc, _ in extras]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mathjax", type=Path, required=True, help="MathJax 3's es5 folder")
    parser.add_argument("--out", type=Path, default=REPO / "site")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "site",
                        help="Sphinx's folders: staged sources (src/), caches, the HTML before it moves")
    parser.add_argument("--jobs", default="auto", help="Sphinx's -j (parallel reading)")
    args = parser.parse_args(argv)
    from sphinx.cmd.build import build_main

    # the committed notebooks predate cell ids (nbformat 4.4): nothing to fix for a read-only render
    warnings.filterwarnings("ignore", message="Cell is missing an id field")
    started = time.monotonic()
    src, html_dir = args.work / "src", args.work / "html"
    docs = stage(REPO, src, args.mathjax)
    # Sphinx writes into build/site/html (myst-nb puts its image files beside that folder, in
    # build/site/jupyter_execute), then the finished site moves to --out.
    shutil.rmtree(html_dir, ignore_errors=True)
    # -E: read every page afresh; -q: warnings and errors only
    code = build_main(["-b", "html", "-E", "-q", "-j", args.jobs, "-d", str(args.work / "doctrees"),
                       str(src), str(html_dir)])
    if code == 0:
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.move(html_dir, args.out)
        print(f"site: {len(docs)} pages in {args.out}/ ({time.monotonic() - started:.0f} s); "
              f"open {args.out}/index.html")
    return code


if __name__ == "__main__":
    sys.exit(main())
