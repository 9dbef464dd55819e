"""Small helpers for the notebooks: show the library's real source next to the explanation."""

from __future__ import annotations

import inspect


def show_source(obj) -> object:
    """Render the source code of a library function, class or module in a notebook.

    Returns an IPython Markdown object (so the notebook shows highlighted code); outside
    IPython it returns the plain source string.
    """
    source = inspect.getsource(obj)
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - IPython ships with the dev extras
        return source
    where = f"{inspect.getmodule(obj).__name__}"
    return Markdown(f"`{where}` — the real implementation:\n\n```python\n{source}\n```")
