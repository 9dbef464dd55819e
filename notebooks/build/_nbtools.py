"""Tiny helpers shared by the notebook builders: collect cells, write the notebook."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


class Builder:
    """Collect markdown/code cells in order, then write them as a notebook next to notebooks/build/."""

    def __init__(self):
        self.cells: list[tuple[str, str]] = []

    def md(self, text: str) -> None:
        self.cells.append(("md", text.strip("\n")))

    def code(self, text: str) -> None:
        self.cells.append(("code", text.strip("\n")))

    def write(self, name: str) -> Path:
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [new_markdown_cell(s) if kind == "md" else new_code_cell(s) for kind, s in self.cells]
        out = Path(__file__).resolve().parents[1] / name
        nbformat.write(nb, out)
        print(f"wrote {out}")
        return out
