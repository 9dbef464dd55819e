"""The ``hrnet-edu`` command: ``synth``, ``train``, ``evaluate``, ``predict``, ``export``, ``weights``,
``demo``.

The whole command line is here, and only here: one ``argparse`` parser with a subcommand each.
A subcommand is two functions below, ``_NAME_arguments(parser)`` (its options) and
``_NAME(args, parser)`` (what it runs): the second turns the options into plain Python arguments of
one library function (``data.synthpose.generate``, ``train.train``, ``commands.checkpoint_ap``, …)
and prints what it returns. Each imports what it needs inside its own body, and only the chosen
subcommand's options are built, so that ``hrnet-edu synth`` never imports torch.

This is also the one place where errors become messages: an expected failure (bad arguments,
files, checkpoints, configuration values — ``ValueError``, ``OSError``, ``ImportError``, a diverged
run) prints ``hrnet-edu COMMAND: error: <one line>`` and exits with status 2 (Ctrl-C: "interrupted",
status 130); ``--debug``
(anywhere on the command line) or ``HRNET_EDU_DEBUG=1`` shows the traceback instead. Anything
else is a bug and keeps its traceback. Malformed options (argparse's own errors) exit with status
2 and the usage line.
"""

from __future__ import annotations

import argparse
import os
import sys

from hrnet_edu.errors import one_line

# What a user can cause with their input; FloatingPointError is train.TrainingDiverged.
EXPECTED_ERRORS = (ValueError, OSError, ImportError, FloatingPointError)


def debug_requested(argv: list[str] | None = None) -> bool:
    return os.environ.get("HRNET_EDU_DEBUG", "") not in ("", "0") or "--debug" in (argv or [])


def run_command(prog: str, body, debug: bool = False) -> int:
    """``body()`` with expected errors turned into one line on stderr and status 2."""
    try:
        return int(body() or 0)
    except EXPECTED_ERRORS as err:
        if debug:
            raise
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        # Ctrl-C is the user's choice, not a bug: one line, the shell's status for SIGINT (128 + 2);
        # a training run resumes from its last checkpoint with --resume
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _config_names() -> str:
    from hrnet_edu.configs import PRESETS

    return ", ".join(PRESETS)


def _add_runtime(parser: argparse.ArgumentParser, help_torch: str) -> None:
    parser.add_argument("--runtime", choices=("torch", "onnx"), default="torch", help=help_torch)
    parser.add_argument("--onnx", help="with --runtime onnx: an already exported .onnx of this checkpoint")


# ----------------------------------------------------------------------------- synth
def _synth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--train", type=int, required=True, help="number of training images")
    parser.add_argument("--val", type=int, required=True, help="number of validation images")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--layout", choices=("coco17", "crowdpose14"), default="coco17",
                        help="the keypoints labelled: COCO's 17 (default) or CrowdPose's 14 (12 body joints, "
                        "head top, neck; no area, as CrowdPose's files); train with keypoints=crowdpose14")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a dataset already in --out (its images and annotation files)")


def _synth(args, parser) -> int:
    """``hrnet-edu synth --out DIR --train N --val M --seed S [--size 256] [--workers W] [--layout L]``."""
    from hrnet_edu.data.synthpose import check_arguments, generate

    try:
        check_arguments(args.out, args.train, args.val, args.seed, args.size, args.workers)
    except ValueError as err:
        parser.error(str(err))  # exits with status 2 and the message
    existing = [p for p in ("synthpose.json", "annotations/person_keypoints_train.json",
                            "annotations/person_keypoints_val.json")
                if os.path.isfile(os.path.join(args.out, p))]
    if existing and not args.overwrite:
        # generate() rewrites the annotation files and deletes images the new JSON does not list
        raise FileExistsError(f"{args.out} already holds a dataset ({existing[0]}); --overwrite replaces "
                              "its images and annotations, or choose another --out")
    summary = generate(args.out, args.train, args.val, args.seed, args.size, args.workers, args.layout)
    layout = "" if args.layout == "coco17" else f", {args.layout} layout"
    print(f"SynthPose: {summary['n_train']} train images ({summary['n_persons_train']} persons), "
          f"{summary['n_val']} val images ({summary['n_persons_val']} persons){layout} "
          f"→ {summary['out_dir']}")  # fmt: skip
    return 0


# ----------------------------------------------------------------------------- train
def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="one of: " + _config_names())
    parser.add_argument("--out", default=None, help="output folder (default runs/<config>)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt, with its config")
    parser.add_argument("--overwrite", action="store_true", help="start afresh in a folder holding a run")
    parser.add_argument("--apply-changes", action="store_true",
                        help="with --resume: apply overrides that change the run's config (logged)")
    parser.add_argument("--skip-bad-images", action="store_true",
                        help="leave out missing / unreadable images (counted) instead of stopping")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. epochs=3 model.width=8 lr_steps=2,3")


def _train(args, parser) -> int:
    """``hrnet-edu train --config NAME [--out DIR] [--resume | --overwrite] [key=value ...]``."""
    import json

    from hrnet_edu.configs import get_config
    from hrnet_edu.overrides import apply_overrides
    from hrnet_edu.train import resumed_config, train

    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite exclude each other: continue the run, or replace it")
    try:
        base = get_config(args.config)
    except ValueError as e:
        parser.error(str(e))
    out_dir = args.out or os.path.join("runs", base.name)
    if args.resume:
        # a resumed run continues with its own config; overrides change it only with --apply-changes
        base = resumed_config(out_dir, base.name)
    try:
        cfg = apply_overrides(base, args.overrides)
    except ValueError as e:
        parser.error(str(e))
    summary = train(cfg, out_dir, resume=args.resume, progress=False if args.no_progress else None,
                    overwrite=args.overwrite, apply_changes=args.apply_changes,
                    skip_bad_images=args.skip_bad_images)  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("history", "model")}, indent=1))
    return 0


# ----------------------------------------------------------------------------- evaluate
def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("example (paper, COCO val2017): hrnet-edu evaluate --config coco_w32_256x192 "
                     "--checkpoint pose_hrnet_w32_256x192.pth "
                     "--boxes COCO_val2017_detections_AP_H_56_person.json data_root=/data/coco")
    parser.add_argument("--config", help="preset (" + _config_names() + "); default: the checkpoint's")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", help="our .pt checkpoint, a reference .pth state dict, mmpose's "
                      "published file, or a weights catalogue name (hrnet-edu weights list)")
    what.add_argument("--results", help="evaluate an existing COCO results JSON instead of a model (with "
                      "--ann, or --config for its val_ann)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip test")
    parser.add_argument("--decode", choices=("argmax", "shift", "dark"), default=None,
                        help="heatmap decoding; default: the checkpoint's own (its codec)")
    parser.add_argument("--boxes", default="gt", help="'gt' or a COCO person-detection results JSON")
    parser.add_argument("--ann", help="ground-truth COCO keypoint file to evaluate on (e.g. COCO's "
                        "person_keypoints_val2017.json); default: the config's val_ann")
    parser.add_argument("--keypoints", help="with --results: the keypoint set of the ground truth (coco17, "
                        "crowdpose14); default: the config's, else coco17 (a checkpoint records its own)")
    parser.add_argument("--images", help="folder of --ann's images (e.g. COCO's val2017/); default: the "
                        "config's val_images")
    parser.add_argument("--skip-bad-images", action="store_true",
                        help="leave out missing / unreadable images (counted) instead of stopping")
    parser.add_argument("--out", help="write the COCO results JSON here")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--nms-threshold", type=float, default=0.9)
    _add_runtime(parser, "torch: eager PyTorch (the reference); onnx: ONNX Runtime on the CPU (the "
                 "checkpoint is exported and checked first, or see --onnx; needs the deploy extra)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", help="config key=value, e.g. data_root=/data/coco")


def _evaluate(args, parser) -> int:
    """``hrnet-edu evaluate``: the ten COCO keypoint numbers of a checkpoint (or of a results file)."""
    from hrnet_edu import commands

    if args.batch_size < 1 or args.workers < 0:
        parser.error("--batch-size must be >= 1 and --workers >= 0")
    if args.keypoints and not args.results:
        parser.error("--keypoints goes with --results: a checkpoint records its own keypoint set")
    if args.results:
        stats, settings = commands.results_file_ap(args.results, ann=args.ann, config=args.config,
                                                   overrides=args.overrides, out=args.out,
                                                   keypoints=args.keypoints)
    else:
        stats, settings = commands.checkpoint_ap(
            args.checkpoint, config=args.config, overrides=args.overrides, ann=args.ann, images=args.images,
            boxes=args.boxes, flip=args.flip, decode=args.decode, nms_threshold=args.nms_threshold,
            results_path=args.out, batch_size=args.batch_size, device=args.device, workers=args.workers,
            runtime=args.runtime, onnx_path=args.onnx, skip_bad_images=args.skip_bad_images,
            progress=not args.no_progress and sys.stderr.isatty())
    print(settings)
    print(stats)
    return 0


# ----------------------------------------------------------------------------- predict
def _box(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
        raise argparse.ArgumentTypeError(f"--box must be x,y,w,h with w, h > 0 (image pixels), got {text!r}")
    return box


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    from hrnet_edu.detect import MIN_SCORE

    parser.add_argument("image", help="an image file (JPEG, PNG, ...), turned upright by its EXIF tag")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--box", type=_box, action="append", help="person box x,y,w,h in the upright image "
                       "(repeatable; default: the persons torchvision's detector finds, extra [detect])")
    where.add_argument("--whole-image", action="store_true", help="the whole image is one person's box "
                       "(a picture cropped to one person)")
    parser.add_argument("--detect-score", type=float, default=MIN_SCORE,
                        help="the detector's score a person box needs (without --box)")
    parser.add_argument("--checkpoint", required=True, help="our .pt checkpoint, a reference .pth, mmpose's "
                        "published file, or a weights catalogue name (hrnet-edu weights list)")
    parser.add_argument("--config", help="preset naming the architecture (needed for published files not "
                        "named like a catalogue model)")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip test")
    parser.add_argument("--decode", choices=("argmax", "shift", "dark"), default=None,
                        help="heatmap decoding; default: the checkpoint's own (its codec)")
    parser.add_argument("--threshold", type=float, default=0.2, help="draw keypoints above this confidence")
    parser.add_argument("--device", default="auto")
    _add_runtime(parser, "torch: eager PyTorch (the reference); onnx: ONNX Runtime on the CPU")


def _predict(args, parser) -> int:
    """``hrnet-edu predict IMAGE [--box x,y,w,h ... | --whole-image] --checkpoint PATH [--config NAME]
    --out FILE.png``."""
    from hrnet_edu.detect import detect_persons
    from hrnet_edu.predict import predict_file, whole_image

    boxes = args.box or (whole_image if args.whole_image else
                         lambda image: detect_persons(image, min_score=args.detect_score)[0])
    poses, boxes = predict_file(args.image, args.checkpoint, args.out, boxes=boxes, config=args.config,
                                flip=args.flip, decode=args.decode, threshold=args.threshold,
                                device=args.device, runtime=args.runtime, onnx_path=args.onnx)
    for i, ((keypoints, conf), box) in enumerate(zip(poses, boxes)):
        shown = conf > args.threshold
        print(f"person {i}: {shown.sum()} of {len(conf)} keypoints above {args.threshold} "
              f"(box {','.join(f'{v:.0f}' for v in box)}, mean confidence {conf.mean():.2f}, mean position "
              f"({keypoints[:, 0].mean():.1f}, {keypoints[:, 1].mean():.1f}))")
    print(f"wrote {args.out}")
    return 0


# ----------------------------------------------------------------------------- export
def _export_arguments(parser: argparse.ArgumentParser) -> None:
    from hrnet_edu.export import DEFAULT_ATOL

    parser.add_argument("--checkpoint", required=True, help="our .pt checkpoint, a reference .pth, mmpose's "
                        "published file, or a weights catalogue name (hrnet-edu weights list)")
    parser.add_argument("--config", help="preset naming the architecture (needed for published files not "
                        "named like a catalogue model)")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="max |heatmap difference| accepted")
    parser.add_argument("--check-crops", type=int, default=8, help="validation crops used for the check")
    parser.add_argument("overrides", nargs="*", help="config key=value, e.g. data_root=/data/coco")


def _export(args, parser) -> int:
    """``hrnet-edu export --checkpoint PATH [--config NAME] --out model.onnx [key=value ...]``."""
    from hrnet_edu.checkpoints import load_checkpoint
    from hrnet_edu.export import export_onnx, sample_crops

    model, cfg = load_checkpoint(args.checkpoint, args.config, overrides=args.overrides)
    crops = sample_crops(cfg, args.check_crops)  # from the config's validation set
    diff = export_onnx(model, args.out, crops, atol=args.atol)
    print(f"wrote {args.out}: {cfg.name}, input (N, 3, {cfg.input_size[0]}, {cfg.input_size[1]}), "
          f"max |ONNX Runtime − PyTorch| = {diff:.1e} on {len(crops)} validation crops")
    return 0


# ----------------------------------------------------------------------------- weights
def _weights_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("examples: hrnet-edu weights list; hrnet-edu weights get hrnet_w32_coco_256x192; then "
                     "hrnet-edu predict IMAGE --checkpoint hrnet_w32_coco_256x192 --box x,y,w,h "
                     "--out pose.png")
    parser.add_argument("action", choices=("list", "get"), help="list: the catalogue; get: download (if not "
                        "cached), verify, print the local path")
    parser.add_argument("name", nargs="?", help="with get: a catalogue name or a URL")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _weights(args, parser) -> int:
    """``hrnet-edu weights list`` / ``hrnet-edu weights get NAME|URL`` (cache: $HRNET_EDU_CACHE)."""
    from hrnet_edu import weights

    if args.action == "get":
        if not args.name:
            parser.error("weights get needs a catalogue name or a URL (hrnet-edu weights list shows the "
                         "names)")
        print(weights.get(args.name, progress=not args.no_progress))
        return 0
    if args.name:
        parser.error("weights list takes no name")
    rows = [("name", "kind", "input", "AP", "size", "cached")]
    for w in weights.catalogue():
        path = weights.cached(w.name)
        size = os.path.getsize(path) if path else w.size
        rows.append((w.name, w.kind, "{}x{}".format(*w.input_size) if w.input_size else "-",
                     f"{w.ap:.3f}" if w.ap is not None else "-", f"{size / 1e6:.1f} MB" if size else "?",
                     path or "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(n) for v, n in zip(r, widths)).rstrip())
    print(f"AP: COCO val2017 as mmpose publishes it (detected persons, flip test); "
          f"cache: {weights.cache_dir()}; server: {weights.base_url()}")
    return 0


# ----------------------------------------------------------------------------- demo
def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    from hrnet_edu.demo import DEMO_CONFIG

    parser.add_argument("--out", default="runs/demo", help="report folder (default runs/demo)")
    parser.add_argument("--config", default=DEMO_CONFIG)
    parser.add_argument("--export", default=None, help="also save the weights + a JSON record here")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. epochs=5")


def _demo(args, parser) -> int:
    """``hrnet-edu demo [--out runs/demo] [--config NAME] [--export PATH.pt] [key=value ...]``."""
    from hrnet_edu.configs import get_config
    from hrnet_edu.demo import ap_table, run_demo
    from hrnet_edu.overrides import apply_overrides

    try:
        apply_overrides(get_config(args.config), args.overrides)
    except ValueError as e:
        parser.error(str(e))
    result = run_demo(args.out, args.overrides, args.config, args.export,
                      progress=False if args.no_progress else None, command=args.command_line)
    print(ap_table({"untrained": result["untrained"], "trained": result["trained"]}))
    print(f"report: {os.path.join(args.out, 'report.md')} ({result['total_seconds']:.0f} s)")
    return 0


# ----------------------------------------------------------------------------- the parser
# subcommand → (one-line help, its options, what it runs)
COMMANDS = {
    "synth": ("generate a SynthPose dataset in COCO keypoint format", _synth_arguments, _synth),
    "train": ("train HRNet from a named configuration", _train_arguments, _train),
    "evaluate": ("COCO keypoint AP of a checkpoint", _evaluate_arguments, _evaluate),
    "predict": ("draw predicted keypoints on one image", _predict_arguments, _predict),
    "export": ("a checkpoint to ONNX (for --runtime onnx), checked against PyTorch", _export_arguments,
               _export),
    "weights": ("list or download the published HRNet weights (verified, cached)", _weights_arguments,
                _weights),
    "demo": ("the README's main job: train on SynthPose on CPU, evaluate, report", _demo_arguments, _demo),
}


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, dict]:
    """The ``hrnet-edu`` parser and its subparsers by name.

    ``command``: build only that subcommand's options (the others keep their name and help), so that
    parsing ``synth`` imports nothing heavy; None: every subcommand's options.
    """
    parser = argparse.ArgumentParser(
        prog="hrnet-edu", description="HRNet pose estimation, written to be read.",
        epilog="hrnet-edu COMMAND --help lists the options of COMMAND")  # fmt: skip
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (also anywhere "
                        "after COMMAND, or HRNET_EDU_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers = {}
    for name, (help_, add_arguments, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_, description=help_)
        if command is None or command == name:
            add_arguments(sub)
        sub.set_defaults(run=run)
        subparsers[name] = sub
    return parser, subparsers


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    name = argv[0] if argv and argv[0] in COMMANDS else None
    parser, subparsers = build_parser(name)
    if name is None:
        if argv and argv[0] not in ("-h", "--help"):
            parser.print_usage(sys.stderr)
            print(f"hrnet-edu: unknown command {argv[0]!r} (one of: {', '.join(COMMANDS)})", file=sys.stderr)
            return 2
        parser.print_help()
        return 0 if argv else 2
    sub = subparsers[name]
    args = sub.parse_intermixed_args(argv[1:])  # options may follow the key=value overrides too
    args.command_line = " ".join(["hrnet-edu", *argv])
    return run_command(f"hrnet-edu {name}", lambda: args.run(args, sub), debug)


if __name__ == "__main__":
    sys.exit(main())
