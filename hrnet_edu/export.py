"""A checkpoint to ONNX, and ONNX Runtime as a drop-in for the network: ``hrnet-edu export``.

Inference on a CPU is faster through ONNX Runtime than through eager PyTorch (the graph is
optimised once, convolutions use its own kernels, no Python per layer). The chain::

    checkpoint ─ load_checkpoint ─▶ HRNet (eval) ─ fold_batchnorm ─▶ HRNet without BN
        ─ torch.onnx.export (torch.export-based "dynamo" exporter, batch axis dynamic) ─▶ ONNX graph
        ─ ONNX Runtime on real crops vs eager PyTorch, max |Δ| ≤ atol ─▶ file written

``OnnxRunner`` then behaves like the model where inference needs it: called on (N, 3, H, W)
float32 crops it returns (N, K, H/4, W/4) heatmaps as a torch tensor, and it answers ``eval()``,
``train()``, ``to("cpu")``, ``parameters()`` and ``cfg``, so ``evaluate.predict_dataset`` and
``predict.predict_image`` run it unchanged (``--runtime onnx`` of ``evaluate`` and ``predict``).

BatchNorm: in evaluation BN is an affine map per channel, y = γ (x − μ) / √(σ² + ε) + β, so it can
be merged into the convolution before it (``fold_batchnorm``). Both of torch's exporters would do
this on their own in eval mode (the graphs have no BatchNormalization node either way); folding
here makes the step explicit, and the exported graph is checked to contain no BN.

``onnx`` and ``onnxruntime`` (the ``deploy`` extra) are imported only by the functions that
need them, so the rest of hrnet-edu works without them.

Shapes: N batch, K joints, H×W the input crop (heatmaps H/4 × W/4).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import warnings

import numpy as np
import torch
from torch import nn

from hrnet_edu.errors import InputError

INPUT_NAME, OUTPUT_NAME = "images", "heatmaps"
DEFAULT_ATOL = 1e-4  # max |heatmap difference| ONNX Runtime vs eager PyTorch accepted by the export


def _require_deploy():
    """(onnx, onnxruntime), or an ImportError that says how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ImportError(f"ONNX export and ONNX Runtime need the 'deploy' extra: pip install -e '.[deploy]' "
                          f"({err})") from None
    return onnx, onnxruntime


# ----------------------------------------------------------------------------- BatchNorm folding
@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A Conv2d computing bn(conv(x)) of an eval-mode BN (running statistics).

    Per output channel c: s_c = γ_c / √(σ²_c + ε), W'_c = s_c W_c, b'_c = s_c (b_c − μ_c) + β_c.
    """
    fused = copy.deepcopy(conv)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.weight.copy_(conv.weight * scale[:, None, None, None])
    fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
    return fused


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm2d merged into its convolution.

    A BatchNorm2d is paired with the Conv2d registered just before it in the same parent module;
    in HRNet (and the baseline) that is the convolution whose output it normalises (``conv1``/
    ``bn1`` … in the residual units and the stem, ``(conv, bn, …)`` in every Sequential). The BN is
    replaced by ``nn.Identity`` so the forward code stays the same. A BN without such a
    convolution is left in place. ``model`` itself is not changed.
    """
    folded = copy.deepcopy(model).eval()
    for parent in folded.modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats
                    and conv.out_channels == bn.num_features):
                setattr(parent, conv_name, fold_conv_bn(conv, bn))
                setattr(parent, bn_name, nn.Identity())
    return folded


# ----------------------------------------------------------------------------- identity
WEIGHTS_KEY = "hrnet_edu_weights_sha256"  # the ONNX metadata entry naming the weights it was made from


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of a model's state dict (names, shapes, dtypes, bytes in name order): the identity an
    exported ONNX file carries, so that a graph of another checkpoint is never run under this one's name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


# ----------------------------------------------------------------------------- export
def sample_crops(cfg, n: int = 8) -> torch.Tensor:
    """(n, 3, H, W) normalised crops of the first persons of ``cfg``'s validation set.

    Raises:
        FileNotFoundError: the validation annotations or images are not there.
    """
    from hrnet_edu.data.coco import CocoKeypoints

    if n < 1:
        raise ValueError(f"the export is checked on n >= 1 validation crops, got {n} (--check-crops)")
    ann, images = cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images)
    if not os.path.isfile(ann):
        raise FileNotFoundError(f"validation annotations not found: {ann} (the export checks the ONNX "
                                "graph on real crops; set data_root=..., e.g. data_samples/synthpose)")
    dataset = CocoKeypoints(ann, images, codec=cfg.codec, spec=cfg.spec, train=False, augment=None)
    return torch.stack([dataset[i]["image"] for i in range(min(n, len(dataset)))])


def max_difference(model: nn.Module, runner: OnnxRunner, crops: torch.Tensor) -> float:
    """max |runner(crops) − model(crops)| over all heatmap values (model in eval mode, PyTorch eager)."""
    was_training = model.training
    try:
        with torch.inference_mode():
            reference = model.eval()(crops).float()
    finally:
        model.train(was_training)
    return float((runner(crops) - reference).abs().max())


def export_onnx(model: nn.Module, path, crops: torch.Tensor, atol: float = DEFAULT_ATOL,
                opset: int = 18) -> float:
    """Export ``model`` to an ONNX file with a dynamic batch axis, checked before it is written.

    Args:
        model: an HRNet (any module (N, 3, H, W) → (N, K, H/4, W/4)); not changed.
        path: the ``.onnx`` file to write.
        crops: (N, 3, H, W) real crops (``sample_crops``): they fix H×W, and ONNX Runtime's output
            on them must equal eager PyTorch's (of the model *before* BN folding) to ``atol``.
            N ≥ 2 also checks that the batch axis is really dynamic (the graph is traced with 2).
        atol: max |heatmap difference| accepted.
        opset: ONNX opset version.

    Returns:
        the max |difference| found.

    Raises:
        ValueError: the outputs differ by more than ``atol``, or BN survived (no file is written).
    """
    onnx, _ = _require_deploy()
    path = os.fspath(path)
    folded = fold_batchnorm(model).float().cpu()
    example = crops[:2].float().cpu()
    batch = torch.export.Dim("batch", min=1, max=4096)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Write next to the target and move into place only once the check passed.
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        tmp_path = os.path.join(tmp, "model.onnx")
        # The torch.export-based exporter (torch ≥ 2.9's default; the TorchScript one is deprecated).
        # Its log lines and deprecation notices (torchvision ops skipped, …) are not the user's concern.
        onnx_log = logging.getLogger("torch.onnx")
        level = onnx_log.level
        onnx_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.onnx.export(folded, (example,), tmp_path, input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},),
                                  opset_version=opset, dynamo=True, external_data=False, verbose=False)
        finally:
            onnx_log.setLevel(level)
        graph = onnx.load(tmp_path)
        if "BatchNormalization" in {node.op_type for node in graph.graph.node}:
            raise ValueError("BatchNorm was not folded: the ONNX graph still has BatchNormalization nodes")
        onnx.helper.set_model_props(graph, {WEIGHTS_KEY: weights_fingerprint(model)})
        onnx.save(graph, tmp_path)
        runner = OnnxRunner(tmp_path, cfg=getattr(model, "cfg", None))
        diff = max_difference(model, runner, crops.float().cpu())
        del runner  # the session holds the file open
        if not diff <= atol:
            raise ValueError(f"ONNX Runtime and PyTorch disagree on the check crops: max |Δ heatmap| = "
                             f"{diff:.2e} > {atol:.0e}; nothing written")
        os.replace(tmp_path, path)
    return diff


# ----------------------------------------------------------------------------- runtime
class OnnxRunner:
    """An ONNX Runtime session (CPU) that stands in for the model at inference.

    ``runner(images)``: (N, 3, H, W) float tensor → (N, K, H/4, W/4) float32 tensor (CPU).
    ``eval()``, ``train(mode)``, ``to(device)`` and ``parameters()`` exist so that code written
    for an ``nn.Module`` in evaluation works: the graph has no training mode and runs on the CPU
    only (``to`` accepts "cpu" and refuses anything else).

    Args:
        path: an exported ``.onnx`` file.
        threads: intra-op threads (default: torch's current number, so eager and ONNX compare
            on the same cores).
        cfg: the HRNetConfig of the network the graph computes, kept as ``.cfg`` (as a model's own).
    """

    training = False

    def __init__(self, path, threads: int | None = None, cfg=None):
        _, ort = _require_deploy()
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX file not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: on shared or busy cores spinning steals
        # the time the other threads need (the same reason as OMP_WAIT_POLICY=PASSIVE for torch).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for a non-ONNX file
            first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            raise InputError(f"not an ONNX model: {path} ({first})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.path, self.cfg = path, cfg

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: x})[0])

    def eval(self) -> OnnxRunner:
        return self

    def train(self, mode: bool = True) -> OnnxRunner:
        if mode:
            raise ValueError("an ONNX Runtime graph cannot be trained; use the PyTorch model")
        return self

    def to(self, device) -> OnnxRunner:
        if torch.device(device).type != "cpu":
            raise ValueError(f"--runtime onnx runs on the CPU only, got device {device}")
        return self

    def parameters(self):
        return iter(())  # no torch parameters: evaluate.model_device reports the CPU


def onnx_runner_for(model: nn.Module, cfg, onnx_path=None, check_crops: int = 8) -> OnnxRunner:
    """The ``--runtime onnx`` path of the commands: an ``OnnxRunner`` for ``model``.

    With ``onnx_path`` an existing file is used as it is; without, ``model`` is exported to a
    temporary file (with the agreement check on ``check_crops`` validation crops) first.
    """
    if onnx_path is not None:
        runner = OnnxRunner(onnx_path, cfg=cfg.model)
        made_from = runner.session.get_modelmeta().custom_metadata_map.get(WEIGHTS_KEY)
        if made_from != weights_fingerprint(model):
            what = "carries no hrnet-edu weights fingerprint" if made_from is None else \
                "was exported from other weights than this checkpoint's"
            raise InputError(f"--onnx {onnx_path} {what}: export it from this checkpoint "
                             "(hrnet-edu export --checkpoint ...), or leave out --onnx")
        return runner
    tmp = tempfile.mkdtemp(prefix="hrnet_edu_onnx_")
    path = os.path.join(tmp, "model.onnx")
    export_onnx(model, path, sample_crops(cfg, check_crops))
    return OnnxRunner(path, cfg=cfg.model)
