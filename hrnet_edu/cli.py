"""The ``hrnet-edu`` command: ``synth``, ``train``, ``evaluate``, ``predict``, ``export``, ``demo``.

Each subcommand lives beside the code it runs (``cli_main(argv)`` in that module); this file
dispatches, importing lazily so that ``hrnet-edu synth`` does not pay for torch, and is the one
place where errors become messages: an expected failure (bad arguments, files, checkpoints,
configuration values — ``ValueError``, ``OSError``, ``ImportError``, a diverged run) prints
``hrnet-edu COMMAND: error: <one line>`` and exits with status 2; ``--debug`` (anywhere on the
command line) or ``HRNET_EDU_DEBUG=1`` shows the traceback instead. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys

from hrnet_edu.errors import one_line

# subcommand → (module holding ``cli_main(argv) -> int``, one-line help)
COMMANDS = {
    "synth": ("hrnet_edu.data.synthpose", "generate a SynthPose dataset in COCO keypoint format"),
    "train": ("hrnet_edu.train", "train HRNet from a named configuration"),
    "evaluate": ("hrnet_edu.evaluate", "COCO keypoint AP of a checkpoint"),
    "predict": ("hrnet_edu.predict", "draw predicted keypoints on one image"),
    "export": ("hrnet_edu.export", "a checkpoint to ONNX (for --runtime onnx), checked against PyTorch"),
    "demo": ("hrnet_edu.demo", "the README's main job: train on SynthPose on CPU, evaluate, report"),
}

# What a user can cause with their input; FloatingPointError is train.TrainingDiverged.
EXPECTED_ERRORS = (ValueError, OSError, ImportError, FloatingPointError)


def debug_requested(argv: list[str] | None = None) -> bool:
    return os.environ.get("HRNET_EDU_DEBUG", "") not in ("", "0") or "--debug" in (argv or [])


def run_command(prog: str, body, argv: list[str]) -> int:
    """``body(argv)`` with expected errors turned into one line on stderr and status 2."""
    debug = debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    try:
        return int(body(argv) or 0)
    except EXPECTED_ERRORS as err:
        if debug:
            raise
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return 2


def command(prog: str):
    """Decorator for a module's ``cli_main(argv)``: the error handling of :func:`run_command`."""

    def wrap(body):
        @functools.wraps(body)
        def cli_main(argv: list[str] | None = None) -> int:
            return run_command(prog, body, list(sys.argv[1:] if argv is None else argv))

        cli_main.handles_errors = True
        return cli_main

    return wrap


def _usage() -> str:
    lines = ["usage: hrnet-edu [--debug] COMMAND [options]   (hrnet-edu COMMAND --help for its options)", ""]
    lines += [f"  {name:10s} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(argv) and argv[0] == "--debug"
    argv = argv[1:] if debug else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:] + (["--debug"] if debug else [])
    if name not in COMMANDS:
        print(f"hrnet-edu: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    if getattr(module.cli_main, "handles_errors", False):  # wrapped by ``command``
        return int(module.cli_main(rest) or 0)
    return run_command(f"hrnet-edu {name}", module.cli_main, rest)


if __name__ == "__main__":
    sys.exit(main())
