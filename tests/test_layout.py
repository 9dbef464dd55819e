"""The library's layout: one home for each concern, and no module importing a higher layer.

Read from the source (``ast``), so that function-level imports count as much as those at the top.
"""

import ast
import os
import subprocess
import sys

import pytest

LIBRARY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hrnet_edu")

# Lower layers first; a module may import its own layer and those before it, never a later one.
LAYERS = [
    ["errors", "keypoints", "geometry", "runfolder", "notebook_utils", "flops", "data.synth_render"],
    ["heatmaps", "oks", "losses"],
    ["blocks", "fast_cocoeval"],
    ["fusion"],
    ["model", "baseline"],
    ["data", "data.ground_truth", "data.transforms", "data.synthpose", "detect"],
    ["data.coco", "configs", "coco_eval"],
    ["overrides", "analysis", "export", "evidence", "weights", "checkpoints", "cpu_settings"],
    ["train", "evaluate"],
    ["features", "viz", "commands"],
    ["predict", "demo"],
    ["cli"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, str]:
    """{"data.coco": path, ...} for every module of the library ("" is the package itself)."""
    out = {}
    for root, _, files in os.walk(LIBRARY):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, f), LIBRARY)[:-3].replace(os.sep, ".")
                out[rel.removesuffix("__init__").rstrip(".")] = os.path.join(root, f)
    return out


def _imports(name: str, path: str, known: set[str]) -> set[str]:
    """The library modules ``name`` imports anywhere in its source (top level or inside functions)."""
    package = name.split(".")[:-1] if not path.endswith("__init__.py") else name.split(".")
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("hrnet_edu"):
                target = node.module.removeprefix("hrnet_edu").lstrip(".")
            else:
                continue
            for alias in node.names:  # ``from hrnet_edu import evaluate`` imports a module
                sub = f"{target}.{alias.name}".lstrip(".")
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("hrnet_edu").lstrip(".") for a in node.names
                      if a.name.startswith("hrnet_edu")}
    return {m for m in found if m and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items() if name}


def _source(name: str) -> str:
    with open(_modules()[name]) as f:
        return f.read()


def test_every_module_has_a_layer():
    assert set(_graph()) == set(LAYER), "add new modules to LAYERS (and keep them below what imports them)"


def test_no_module_imports_a_higher_layer():
    back = [f"{m} (layer {LAYER[m]}) imports {d} (layer {LAYER[d]})"
            for m, deps in _graph().items() for d in deps if LAYER[d] > LAYER[m]]
    assert not back, back


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, m, d]))
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_the_graph_is_read_correctly():
    graph = _graph()
    assert "configs" in graph["checkpoints"]  # a function-level import (checkpoint → model)
    assert {"errors", "data.ground_truth", "heatmaps"} <= graph["data.coco"]  # relative imports
    assert "evaluate" in graph["train"]  # a function-level import (train.validate)


def test_only_cli_parses_arguments():
    offenders = []
    for name in _graph():
        text = _source(name)
        if name != "cli" and ("argparse" in text or "sys.argv" in text):
            offenders.append(name)
    assert not offenders, f"argparse / sys.argv outside cli.py: {offenders}"
    assert "import argparse" in _source("cli")


def _calls(name: str, module: str, function: str) -> int:
    """How many times the source of ``name`` calls ``module.function(...)`` (docstrings do not count)."""
    return sum(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr == function and isinstance(node.func.value, ast.Name)
               and node.func.value.id == module for node in ast.walk(ast.parse(_source(name))))


def test_torch_save_only_in_the_checkpoint_module():
    for function in ("save", "load"):
        calling = sorted(name for name in _graph() if _calls(name, "torch", function))
        assert calling == ["checkpoints"], (function, calling)


def test_synth_command_does_not_import_torch(tmp_path):
    """``hrnet-edu synth`` (parser included) runs without importing torch: data generation stays light."""
    code = ("import sys; from hrnet_edu.cli import main; "
            f"rc = main(['synth', '--out', {str(tmp_path / 'set')!r}, '--train', '1', '--val', '1', "
            "'--size', '64', '--workers', '1']); "
            "heavy = sorted(m for m in ('torch', 'cv2', 'matplotlib') if m in sys.modules); "
            "print(rc, heavy); sys.exit(rc or bool(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("0 []")
    assert (tmp_path / "set" / "annotations" / "person_keypoints_train.json").is_file()


def test_every_command_has_its_options_and_help():
    from hrnet_edu.cli import COMMANDS, build_parser

    parser, subparsers = build_parser()
    assert set(subparsers) == set(COMMANDS) == {"synth", "train", "evaluate", "predict", "export", "weights",
                                                "demo"}
    options = {name: {o for a in sub._actions for o in a.option_strings} for name, sub in subparsers.items()}
    assert {"--resume", "--overwrite", "--apply-changes", "--skip-bad-images"} <= options["train"]
    assert {"--ann", "--images", "--results", "--runtime", "--onnx", "--skip-bad-images",
            "--boxes"} <= options["evaluate"]
    assert {"--box", "--runtime", "--threshold"} <= options["predict"]
    args = subparsers["train"].parse_intermixed_args(["--config", "x", "epochs=2", "--overwrite", "lr=1"])
    assert args.overrides == ["epochs=2", "lr=1"] and args.overwrite  # options after the overrides too


def test_checkpoints_are_read_and_turned_into_models_in_one_place():
    """``torch.load`` / ``torch.save`` and checkpoint → model live in checkpoints.py alone."""
    def torch_io_calls(name):
        return [n for n in ast.walk(ast.parse(_source(name))) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute) and n.func.attr in ("load", "save")
                and isinstance(n.func.value, ast.Name) and n.func.value.id == "torch"]

    for name in _graph():
        if name != "checkpoints":
            assert not torch_io_calls(name), f"torch.load / torch.save in {name}"
            assert "def load_checkpoint(" not in _source(name), name
    assert torch_io_calls("checkpoints") and "def load_checkpoint(" in _source("checkpoints")


def test_the_ground_truth_travels_as_a_record_not_an_attribute():
    offenders = [name for name in _graph() if "hrnet_edu_checked" in _source(name)]
    assert not offenders, f"attributes added onto pycocotools' COCO object: {offenders}"


def _functions(name: str):
    for node in ast.walk(ast.parse(_source(name))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_no_function_is_longer_than_60_lines():
    long = [f"{name}.{f.name}: {f.end_lineno - f.lineno + 1} lines" for name in _graph()
            for f in _functions(name) if f.end_lineno - f.lineno + 1 > 60]
    assert not long, long


def test_no_dated_measurement_in_the_library():
    """Figures go stale in docstrings: they live in the README's Measured table and benchmarks/results/."""
    import re

    dated = [f"{name}: {m.group(0)}" for name in _graph()
             for m in re.finditer(r"measured[^.\n]{0,40}20\d\d-\d\d-\d\d|measured 20\d\d", _source(name))]
    assert not dated, dated
