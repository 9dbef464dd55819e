"""Published weights: the catalogue, verified and resumed downloads, mmpose's layouts, ImageNet init.

No test touches the network: a local HTTP server on 127.0.0.1 (started here, with Range support)
serves files written in mmpose's published formats from our own randomly initialised networks.
One end-to-end file is a real HRNet-W32 (about 115 MB, in mmpose 1.x's layout); the download
mechanics (a wrong checksum, a cut connection) and the other layouts use the tiny ``model.W8``.
"""

import dataclasses
import hashlib
import http.server
import os
import shutil
import socket
import threading

import numpy as np
import pytest
import torch

from hrnet_edu import weights
from hrnet_edu.checkpoints import (
    PRETRAINED_LAYERS,
    load_checkpoint,
    load_pretrained_backbone,
    load_reference_weights,
    published_state_dict,
    save_checkpoint,
)
from hrnet_edu.cli import main
from hrnet_edu.configs import get_config
from hrnet_edu.errors import InputError
from hrnet_edu.heatmaps import HeatmapCodec
from hrnet_edu.model import W8, HRNet, hrnet_w32

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(REPO, "data_samples", "synthpose", "images", "val_000001.jpg")


# ----------------------------------------------------------------------------- the server
class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /any/path/NAME → the bytes registered as NAME; honours ``Range: bytes=START-``; a name in
    ``cut_once`` gets half of its body and a closed connection the first time it is asked for."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        name = self.path.rsplit("/", 1)[-1]
        server = self.server
        server.requests.append((name, self.headers.get("Range")))
        server.paths.append(self.path)
        data = server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        wanted = self.headers["Range"]
        start = int(wanted.removeprefix("bytes=").split("-")[0]) if wanted else 0
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if name in server.cut_once:  # the connection drops half-way (HTTP/1.0: closed after return)
            server.cut_once.discard(name)
            body = body[: len(body) // 2]
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.paths, httpd.cut_once = {}, [], [], set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HRNET_EDU_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HRNET_EDU_WEIGHTS_URL", raising=False)


# ----------------------------------------------------------------------------- files
def randomized(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``model`` with every tensor drawn at random (He-scaled convolutions, BatchNorm statistics and
    affine parameters away from 1 / 0), so that a tensor loaded under another tensor's name shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.is_floating_point():
                continue
            if value.dim() == 4:
                value.copy_(torch.randn(value.shape, generator=gen) * (2 / value[0].numel()) ** 0.5)
            elif key.endswith(("running_var", ".weight")):
                value.copy_(0.5 + torch.rand(value.shape, generator=gen))
            else:
                value.copy_(0.1 * torch.randn(value.shape, generator=gen))
    return model.eval()


def mmpose_v1(model) -> dict:
    """mmpose 1.x's published layout: ``meta`` (numpy arrays in it, as mmengine writes) + ``state_dict``."""
    state = {("head." if k.startswith("final_layer.") else "backbone.") + k: v
             for k, v in model.state_dict().items()}
    meta = {"mmengine_version": "0.x", "epoch": 210,
            "dataset_meta": {"sigmas": np.full(17, 0.079, np.float32), "flip_indices": list(range(17))}}
    return {"meta": meta, "state_dict": state}


def mmpose_v0(model) -> dict:
    """mmpose 0.x's layout: ``backbone.*`` and ``keypoint_head.final_layer.*``."""
    return {"state_dict": {("keypoint_head." if k.startswith("final_layer.") else "backbone.") + k: v
                           for k, v in model.state_dict().items()}}


def file_bytes(obj, tmp_path) -> bytes:
    path = tmp_path / "written.pth"
    save_checkpoint(obj, str(path))
    data = path.read_bytes()
    path.unlink()
    return data


def sha8(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def outputs(model, x) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(x)


@pytest.fixture(scope="module")
def w8():
    return randomized(HRNet(W8), seed=1)


# ----------------------------------------------------------------------------- the catalogue
def test_the_catalogue_names_mmpose_files_by_their_sha256_prefix_and_nothing_is_downloaded(server):
    names = [w.name for w in weights.catalogue()]
    assert len(set(names)) == len(names) == 6
    for w in weights.catalogue():
        assert weights.sha256_prefix_of_name(w.file) == w.sha256_prefix  # the name carries the checksum
        assert weights.cached(w.name) is None  # an empty cache, and looking never downloads
    assert {w.kind for w in weights.catalogue()} == {"coco-topdown", "imagenet-backbone"}
    # the presets name their ImageNet starting point; building them asks no server anything
    assert get_config("coco_w32_256x192").pretrained == "hrnet_w32_imagenet"
    assert get_config("coco_w48_384x288").pretrained == "hrnet_w48_imagenet"
    assert server.requests == []
    # mmpose's codec: σ 2 at 256×192, σ 3 at 384×288 (MSRAHeatmap in its configs)
    assert (weights.published_config("hrnet_w48_coco_384x288").sigma,
            weights.published_config("hrnet_w32_coco_256x192").sigma) == (3.0, 2.0)
    assert weights.sha256_prefix_of_name("hrnet_w32-36af842e.pth") == "36af842e"
    assert weights.sha256_prefix_of_name("pose_hrnet_w32_256x192.pth") is None
    assert weights.resolve("some/local/file.pth") == "some/local/file.pth"  # a path stays a path


# ----------------------------------------------------------------------------- end to end (W32)
def test_weights_get_then_predict_with_a_w32_in_mmpose_v1_layout(server, tmp_path, capsys):
    torch.manual_seed(0)
    source = randomized(hrnet_w32(), seed=0)
    data = file_bytes(mmpose_v1(source), tmp_path)
    name = f"td-hm_hrnet-w32_8xb64-210e_coco-256x192-{sha8(data)}_20220909.pth"
    server.files[name] = data
    url = server.url + "mirror/" + name

    assert main(["weights", "get", url, "--no-progress"]) == 0
    path = capsys.readouterr().out.strip()
    assert path == os.path.join(os.environ["HRNET_EDU_CACHE"], name)
    assert open(path, "rb").read() == data and not os.path.exists(path + ".part")
    asked = len(server.requests)
    assert weights.get(url) == path and len(server.requests) == asked  # from the cache, not the server

    # loads strictly with the input size and σ of the model its name says, outputs equal the source's
    model, cfg = load_checkpoint(path)
    assert (cfg.input_size, cfg.sigma, cfg.model.width) == ((256, 192), 2.0, 32)
    x = torch.randn(1, 3, 256, 192)
    assert torch.equal(outputs(model, x), outputs(source, x))

    # hrnet-edu predict with that file: the keypoints of the network the file was made from
    from hrnet_edu.data.coco import load_image
    from hrnet_edu.predict import predict_file, predict_image

    box = [40.0, 30.0, 120.0, 200.0]
    poses, _ = predict_file(IMAGE, path, str(tmp_path / "pose.png"), boxes=[box], device="cpu")
    expected, conf = predict_image(source, load_image(IMAGE), box, HeatmapCodec((256, 192)), "coco17",
                                   device="cpu")
    assert np.array_equal(poses[0][0], expected) and np.array_equal(poses[0][1], conf)
    assert main(["predict", IMAGE, "--checkpoint", path, "--box", "40,30,120,200", "--device", "cpu",
                 "--out", str(tmp_path / "cli.png")]) == 0
    mean = expected.mean(axis=0)
    assert f"mean position ({mean[0]:.1f}, {mean[1]:.1f})" in capsys.readouterr().out
    assert os.path.getsize(tmp_path / "cli.png") > 0

    # a catalogue name: its file in the cache (put there by hand here), read without asking the server
    catalogued = weights.entry("hrnet_w32_coco_256x192").file
    shutil.copy(path, os.path.join(os.environ["HRNET_EDU_CACHE"], catalogued))
    asked = len(server.requests)
    model, cfg = load_checkpoint("hrnet_w32_coco_256x192")
    assert cfg.name == "hrnet_w32_coco_256x192" and torch.equal(outputs(model, x), outputs(source, x))
    assert len(server.requests) == asked


# ----------------------------------------------------------------------------- download mechanics (W8)
def test_a_file_whose_sha256_does_not_match_its_name_is_refused_and_deleted(server, w8, tmp_path, capsys,
                                                                           monkeypatch):
    data = file_bytes(mmpose_v1(w8), tmp_path)
    wrong = "00000000" if sha8(data) != "00000000" else "11111111"
    name = f"td-hm_hrnet-w8_coco-64x32-{wrong}_20260101.pth"
    server.files[name] = data
    assert main(["weights", "get", server.url + name, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert name in err and f"expected {wrong}" in err and f"starts with {sha8(data)}" in err
    assert os.listdir(os.environ["HRNET_EDU_CACHE"]) == []  # neither the file nor its .part is kept

    # a catalogue name is checked against the catalogue's prefix, on a mirror too
    monkeypatch.setenv("HRNET_EDU_WEIGHTS_URL", server.url + "mirror")
    server.files["hrnet_w32-36af842e.pth"] = data
    refusal = f"hrnet_w32-36af842e.pth: sha256 starts with {sha8(data)}, expected 36af842e"
    with pytest.raises(InputError, match=refusal):
        weights.get("hrnet_w32_imagenet", progress=False)
    assert server.paths[-1] == "/mirror/pretrain_models/hrnet_w32-36af842e.pth"
    assert os.listdir(os.environ["HRNET_EDU_CACHE"]) == []


def test_a_cut_download_is_resumed_with_a_range_request(server, w8, tmp_path):
    data = file_bytes(mmpose_v1(w8), tmp_path)
    name = f"td-hm_hrnet-w8_coco-64x32-{sha8(data)}.pth"
    server.files[name] = data
    server.cut_once.add(name)
    path = weights.get(server.url + name, progress=False)
    assert open(path, "rb").read() == data
    assert [r for n, r in server.requests if n == name] == [None, f"bytes={len(data) // 2}-"]

    # a .part left by an earlier, killed process is resumed too
    os.remove(path)
    with open(path + ".part", "wb") as f:
        f.write(data[:1000])
    assert open(weights.get(server.url + name, progress=False), "rb").read() == data
    assert [r for n, r in server.requests if n == name][-1] == "bytes=1000-"


def test_a_url_without_a_checksum_in_its_name_is_fetched_but_said_unverified(server, w8, tmp_path):
    data = file_bytes(w8.state_dict(), tmp_path)
    server.files["pose_hrnet_w8.pth"] = data
    with pytest.warns(UserWarning, match="pose_hrnet_w8.pth: .*not verified"):
        path = weights.get(server.url + "pose_hrnet_w8.pth", progress=False)
    assert open(path, "rb").read() == data


def test_offline_a_missing_file_is_one_clear_line(monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HRNET_EDU_WEIGHTS_URL", f"http://127.0.0.1:{port}")
    assert main(["weights", "get", "hrnet_w32_imagenet", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not download hrnet_w32-36af842e.pth" in err
    assert main(["weights", "get", "hrnet_w99", "--no-progress"]) == 2
    assert "unknown weights 'hrnet_w99'" in capsys.readouterr().err


def test_weights_list_shows_what_is_cached(server, tmp_path, capsys):
    asked = len(server.requests)
    os.makedirs(os.environ["HRNET_EDU_CACHE"])
    w = weights.entry("hrnet_w48_imagenet")
    with open(os.path.join(os.environ["HRNET_EDU_CACHE"], w.file), "wb") as f:
        f.write(b"x" * 2_000_000)
    assert main(["weights", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert rows["hrnet_w48_imagenet"].endswith(os.path.join(os.environ["HRNET_EDU_CACHE"], w.file))
    assert "2.0 MB" in rows["hrnet_w48_imagenet"]
    assert rows["hrnet_w32_coco_256x192"].split()[3:] == ["0.749", "?", "no"]
    assert len(server.requests) == asked  # listing downloads nothing


# ----------------------------------------------------------------------------- layouts (W8)
def test_mmpose_v0_v1_and_reference_layouts_become_ours(w8, tmp_path):
    ours = w8.state_dict()
    x = torch.randn(2, 3, 64, 32)
    for layout in (mmpose_v1(w8), mmpose_v0(w8), dict(ours)):
        renamed = published_state_dict(layout)
        assert list(renamed) == list(ours)  # the same names, in the same order
        model = load_reference_weights(HRNet(W8), renamed)  # strict
        assert torch.equal(outputs(model, x), outputs(w8, x))
    # through the command line's loader: a file not named like a catalogue model needs --config
    path = tmp_path / "mystery.pth"
    save_checkpoint(mmpose_v0(w8), str(path))
    with pytest.raises(InputError, match=r"mystery.pth holds an HRNet-W8 .*--config"):
        load_checkpoint(str(path))
    cfg = dataclasses.replace(get_config("coco_w32_256x192"), model=W8, input_size=(64, 32), pretrained=None)
    model, _ = load_checkpoint(str(path), config=cfg)
    assert torch.equal(outputs(model, x), outputs(w8, x))


# ----------------------------------------------------------------------------- ImageNet initialization
def imagenet_file(pose) -> dict:
    """An ImageNet HRNet's layout: ``pose``'s backbone tensors plus a classification head — the
    incre/downsample modules, a final 1×1 to 2048, the 1000-way classifier — and the exchange units
    of the last module's lower-resolution outputs, which the classifier keeps and the pose network not."""
    state = {k: v.clone() for k, v in pose.state_dict().items() if not k.startswith("final_layer.")}
    last = len(pose.stage4) - 1
    state.update({
        "incre_modules.0.0.conv1.weight": torch.randn(32, 8, 1, 1),
        "downsamp_modules.0.0.weight": torch.randn(256, 128, 3, 3),
        "final_layer.0.weight": torch.randn(2048, 1024, 1, 1), "final_layer.0.bias": torch.randn(2048),
        "classifier.weight": torch.randn(1000, 2048), "classifier.bias": torch.randn(1000),
        f"stage4.{last}.fuse_layers.1.0.0.0.weight": torch.randn(16, 8, 3, 3),
        f"stage4.{last}.fuse_layers.1.0.0.1.weight": torch.randn(16),
    })  # fmt: skip
    return state


def test_an_imagenet_backbone_initializes_stem_and_stages_and_skips_the_classifier(w8, tmp_path):
    path = tmp_path / "hrnet_w8.pth"
    save_checkpoint(imagenet_file(w8), str(path))
    torch.manual_seed(5)
    model = HRNet(W8)
    head_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("final_layer.")}
    report = load_pretrained_backbone(model, str(path))
    source, now = w8.state_dict(), model.state_dict()
    backbone = [k for k in source if k.split(".")[0] in PRETRAINED_LAYERS]
    assert len(backbone) == len(source) - 2  # everything but final_layer.{weight,bias}
    assert report["loaded"] == len(backbone) and report["missing"] == 0
    assert report["skipped"] == {"not in PRETRAINED_LAYERS": 6, "not in the pose network": 2}
    assert all(torch.equal(now[k], source[k]) for k in backbone)
    assert all(torch.equal(now[k], v) for k, v in head_before.items())  # the pose head keeps its init

    wide = imagenet_file(w8)
    wide["stage2.0.branches.0.0.conv1.weight"] = torch.randn(16, 16, 3, 3)  # another width
    save_checkpoint(wide, str(path))
    with pytest.raises(InputError, match=r"hrnet_w8.pth: 1 backbone tensors do not fit .*stage2.0.branches"):
        load_pretrained_backbone(HRNet(W8), str(path))


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from hrnet_edu.data.synthpose import generate

    root = tmp_path_factory.mktemp("synthpose")
    generate(str(root), n_train=8, n_val=4, seed=0, image_size=128, workers=1)
    return str(root)


def test_training_starts_from_the_imagenet_backbone_fetched_when_it_starts(server, w8, tiny_root, tmp_path,
                                                                          monkeypatch, capsys):
    from hrnet_edu import train as train_mod
    from hrnet_edu.overrides import apply_overrides

    data = file_bytes(imagenet_file(w8), tmp_path)
    name = f"hrnet_w8-{sha8(data)}.pth"
    server.files[name] = data
    cfg = apply_overrides(get_config("synthpose_w16_128x96_cpu"), [
        f"data_root={tiny_root}", "val_root=none", "input_size=64,32", "sigma=1", "batch_size=4", "epochs=1",
        "val_every=0", "max_train_images=4", "device=cpu", "workers=0", f"pretrained={server.url + name}"])
    cfg = dataclasses.replace(cfg, model=W8)
    seen = {}
    real = train_mod.train_one_epoch

    def spy(model, *args, **kwargs):  # the weights the first epoch starts from
        seen.setdefault("state", {k: v.clone() for k, v in train_mod.unwrap(model).state_dict().items()})
        return real(model, *args, **kwargs)

    monkeypatch.setattr(train_mod, "train_one_epoch", spy)
    summary = train_mod.train(cfg, str(tmp_path / "run"), progress=False)
    source = w8.state_dict()
    backbone = [k for k in source if not k.startswith("final_layer.")]
    assert summary["pretrained"]["loaded"] == len(backbone)
    assert all(torch.equal(seen["state"][k], source[k]) for k in backbone)
    assert f"{len(backbone)} tensors loaded, skipped 6 not in PRETRAINED_LAYERS" in capsys.readouterr().err

    # offline, the coco presets' default (a catalogue name) fails in one line when training starts
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HRNET_EDU_WEIGHTS_URL", f"http://127.0.0.1:{port}/")
    with pytest.raises(InputError, match="could not download hrnet_w32-36af842e.pth"):
        train_mod.train(dataclasses.replace(cfg, pretrained="hrnet_w32_imagenet"), str(tmp_path / "off"),
                        progress=False)

