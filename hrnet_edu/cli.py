"""The ``hrnet-edu`` command: ``synth``, ``train``, ``evaluate``, ``predict``, ``export``, ``demo``.

Each subcommand lives beside the code it runs (``cli_main(argv)`` in that module); this file
only dispatches, importing lazily so that ``hrnet-edu synth`` does not pay for torch.
"""

from __future__ import annotations

import importlib
import sys

# subcommand → (module holding ``cli_main(argv) -> int``, one-line help)
COMMANDS = {
    "synth": ("hrnet_edu.data.synthpose", "generate a SynthPose dataset in COCO keypoint format"),
    "train": ("hrnet_edu.train", "train HRNet from a named configuration"),
    "evaluate": ("hrnet_edu.evaluate", "COCO keypoint AP of a checkpoint"),
    "predict": ("hrnet_edu.predict", "draw predicted keypoints on one image"),
    "export": ("hrnet_edu.export", "a checkpoint to ONNX (for --runtime onnx), checked against PyTorch"),
    "demo": ("hrnet_edu.demo", "the README's main job: train on SynthPose on CPU, evaluate, report"),
}


def _usage() -> str:
    lines = ["usage: hrnet-edu COMMAND [options]   (hrnet-edu COMMAND --help for its options)", ""]
    lines += [f"  {name:10s} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"hrnet-edu: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.cli_main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
