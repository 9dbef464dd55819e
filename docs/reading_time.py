"""How long a notebook of the course takes to read: the course map's times, computed, not guessed.

The measure (README "Course map"): the words a reader reads — the markdown cells and the comments of
the code cells — at 40 words a minute (reading code and figures with the text), rounded to 5 minutes.
Left out: the exercises (their solutions state their own cost), the cells that only show the
library's source (collapsed on the page), jupytext's and nbval's plumbing, the **Time:** line itself.
A section whose heading ends with "(deeper)" — and everything under it up to the next heading of its
level or above — counts
only towards the notebook's *full* time: the core path skips it on a first reading.

    python docs/reading_time.py            # a table: notebook, core minutes, full minutes, words
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

WORDS_PER_MINUTE = 40
DEEPER = "(deeper)"
HEADING = re.compile(r"^(#{2,3})\s+(.*)$", re.MULTILINE)
NOT_READ = re.compile(r"^\s*#\s*(%%|%|NBVAL_)")  # cell markers, magics, test markers


def _cell_words(cell) -> int:
    if cell.cell_type == "markdown":
        return len(cell.source.split())
    comments = [line.split("#", 1)[1] for line in cell.source.splitlines()
                if line.lstrip().startswith("#") and not NOT_READ.match(line)]
    return sum(len(c.split()) for c in comments)


def _skipped(cell) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    shows_source = cell.cell_type == "code" and "show_source(" in cell.source  # collapsed on the page
    return "exercise" in tags or "solution" in tags or shows_source


def words(path: Path) -> tuple[int, int]:
    """(core words, deeper words) of a notebook."""
    counts = {"core": 0, "deeper": 0}
    deeper_level = None  # the heading level (2 or 3) of the deeper section we are in, if any
    for cell in nbformat.read(path, as_version=4).cells:
        if _skipped(cell):
            continue
        if cell.cell_type != "markdown":
            counts["core" if deeper_level is None else "deeper"] += _cell_words(cell)
            continue
        for line in cell.source.splitlines():  # a heading may open a section mid-cell
            if line.startswith("**Time:**"):  # the stated time itself is not read (and would feed back)
                continue
            match = HEADING.match(line)
            if match:
                level = len(match.group(1))
                if deeper_level is not None and level <= deeper_level:
                    deeper_level = None
                if deeper_level is None and match.group(2).rstrip().endswith(DEEPER):
                    deeper_level = level
            counts["core" if deeper_level is None else "deeper"] += len(line.split())
    return counts["core"], counts["deeper"]


def minutes(n_words: int) -> int:
    """Reading minutes, rounded to 5 (at least 5)."""
    return max(5, 5 * round(n_words / WORDS_PER_MINUTE / 5))


def reading_time(path: Path) -> tuple[int, int]:
    """(core minutes, full minutes) of a notebook."""
    core, deeper = words(path)
    return minutes(core), minutes(core + deeper)


def course(repo: Path) -> list[Path]:
    folder = repo / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb")) + sorted(folder.glob("A[0-9]_*.ipynb"))


def main() -> None:
    repo = Path(__file__).resolve().parents[1]
    total_core = total_full = 0
    print(f"{'notebook':40} {'core min':>8} {'full min':>8} {'core words':>10} {'deeper words':>12}")
    for path in course(repo):
        core, deeper = words(path)
        c, f = reading_time(path)
        if path.name[:2].isdigit():
            total_core, total_full = total_core + c, total_full + f
        print(f"{path.name:40} {c:8d} {f:8d} {core:10d} {deeper:12d}")
    hours = f"({total_core / 60:.1f} h / {total_full / 60:.1f} h)"
    print(f"{'chapters 00-10':40} {total_core:8d} {total_full:8d}  {hours}")


if __name__ == "__main__":
    sys.exit(main())
