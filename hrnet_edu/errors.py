"""The project's error type for bad input, and how the commands turn errors into one line.

``InputError`` is raised wherever a user's file, folder, argument or configuration value is
wrong (a malformed annotation, a run folder in use, an impossible box, ...); its message is one
line naming the problem and the file (and annotation id where there is one). It is a
``ValueError``, so code that caught ValueError before still catches it.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input (file, folder, argument, configuration value), described in one line."""


def one_line(err: BaseException) -> str:
    """The one line a user needs from ``err``.

    A ``DataLoader`` re-raises a worker's exception with a message of the form "Caught
    FileNotFoundError in DataLoader worker process 0. Original Traceback ...: <type>: <message>";
    the line the worker's exception carried is the last one. Other multi-line messages (a list
    of mismatching state-dict keys) keep their first line, which summarises them.
    """
    text = str(err).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if "Original Traceback" in text:
        last = lines[-1]
        name = type(err).__name__
        return last[len(name) + 2:] if last.startswith(name + ": ") else last
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        # "[Errno 2] No such file or directory: 'x'" → "No such file or directory: x"
        return f"{err.strerror}: {err.filename}"
    extra = f" ({len(lines) - 1} more lines with --debug)" if len(lines) > 1 else ""
    return lines[0] + extra
