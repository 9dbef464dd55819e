"""Small helpers for the notebooks: show the library's real source next to the explanation, print
long lists of names (state-dict keys) without wrapping them mid-word, keep chatty third-party code
quiet, and store photographs as JPEG figures."""

from __future__ import annotations

import contextlib
import html
import inspect
import io
from collections.abc import Iterable, Iterator


def show_source(obj, *, max_height: int = 360, open: bool = False) -> object:
    """Render the source code of a library function, class or module as a bounded, collapsible block.

    A full listing of a class can be 1,000+ pixels tall and pushes the explanation off the screen,
    so the code sits in an HTML ``<details>`` element (collapsed unless ``open``) whose body
    scrolls beyond ``max_height`` pixels. The summary line names the object and its length, so a
    reader knows what is inside without opening it.

    Returns an ``IPython.display.HTML`` object; outside IPython the plain source string.
    """
    source = inspect.getsource(obj)
    try:
        from IPython.display import HTML
    except ImportError:  # pragma: no cover - IPython ships with the dev extras
        return source
    module = inspect.getmodule(obj).__name__
    name = getattr(obj, "__qualname__", None)
    where = f"{module}.{name}" if name and not inspect.ismodule(obj) else module
    n_lines = source.count("\n") + (not source.endswith("\n"))
    try:  # pygments comes with IPython; inline styles so the colours survive without a stylesheet
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        body = highlight(source, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))
    except ImportError:  # pragma: no cover
        body = f"<pre>{html.escape(source)}</pre>"
    return HTML(
        f"<details{' open' if open else ''}><summary><code>{html.escape(where)}</code> — the real "
        f"implementation ({n_lines} lines; click to {'fold' if open else 'unfold'})</summary>"
        f'<div style="max-height: {max_height}px; overflow: auto; border: 1px solid #ccc; '
        f'padding: 0 0.5em; font-size: 90%">{body}</div></details>'
    )


def columns(items: Iterable[str], width: int = 100, max_cell: int = 48, gap: int = 2) -> str:
    """Lay out strings in as many columns as fit in ``width`` characters, filled column by column.

    Long entries are cut to ``max_cell`` characters with a trailing "…" rather than wrapped by the
    notebook in the middle of a word. Returns the text (print it).
    """
    cells = [s if len(s) <= max_cell else s[: max_cell - 1] + "…" for s in map(str, items)]
    if not cells:
        return ""
    cell = max(len(s) for s in cells) + gap
    ncols = max(1, (width + gap) // cell)
    nrows = -(-len(cells) // ncols)  # ceil
    rows = []
    for r in range(nrows):
        row = [cells[c * nrows + r] for c in range(ncols) if c * nrows + r < len(cells)]
        rows.append("".join(s.ljust(cell) for s in row).rstrip())
    return "\n".join(rows)


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Hide what the code inside prints (stdout and stderr); yields the captured text.

    pycocotools prints progress and timings on every call, and a training run may print notes;
    inside a lesson they would bury the one line that matters.
    """
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        yield captured


def jpeg_figures(quality: int = 88) -> None:
    """Store this notebook's inline figures as JPEG instead of PNG (no effect outside IPython).

    Photographs and crops compress several times better as JPEG, which keeps an executed notebook
    small enough to diff and to load quickly; line drawings stay sharper as PNG, hence opt-in.
    """
    if not 1 <= int(quality) <= 95:  # Pillow's useful range; above 95 it only grows the file
        raise ValueError(f"jpeg_figures: quality must be in 1..95, got {quality}")
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.run_line_magic("config", 'InlineBackend.figure_formats = ["jpeg"]')
    kwargs = {"bbox_inches": "tight", "pil_kwargs": {"quality": int(quality)}}
    shell.run_line_magic("config", f"InlineBackend.print_figure_kwargs = {kwargs!r}")
