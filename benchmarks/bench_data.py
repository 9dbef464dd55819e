"""Samples per second of the top-down training pipeline (``CocoKeypoints``) against the same
computation done the reference implementation's way, the cost of each stage, and the CPU/GPU loaders.

    .venv/bin/python benchmarks/bench_data.py                 # SynthPose, 256×192, workers 0 and 2
    .venv/bin/python benchmarks/bench_data.py --workers       # only the paired run and the stages
    .venv/bin/python benchmarks/bench_data.py --workers 0 2 8 --samples 512
    .venv/bin/python benchmarks/bench_data.py --ann coco/annotations/person_keypoints_train2017.json \\
        --images coco/train2017                                # real COCO (larger JPEGs)

1. Paired, in one process on one intra-op thread, 0 workers, batch ``--batch``, default collate,
   the paper's augmentation and σ = 2 targets, the same annotations; ``--batches`` batches of each,
   alternating one batch of each side, so that a loaded machine slows both alike — compare the
   ratio, not the absolute numbers. Rates are given per second of the process's CPU time (what one
   core delivers) and per second of wall time:

   * ``ours``: ``CocoKeypoints`` (per sample an OpenCV decode, uint8 warp and normalisation into
     the batch; targets and metadata once per batch, in ``__getitems__``);
   * ``reference way``: :class:`ReferenceWay` — what the reference's ``JointsDataset`` does for a
     sample: its record deep-copied, ``cv2.imread``, augmentation with ``np.random`` draws, the pixels
     mirrored for a flip, a three-point ``cv2.getAffineTransform``, ``cv2.warpAffine`` of the
     whole image, the joints mapped one by one, ToTensor + Normalize, and a Gaussian patch pasted
     per joint (written here from its description; a sanity line checks it yields our samples).

2. Stages, ms per sample (best of interleaved repetitions on one sample): two decoders, the
   three warps (with the max difference against grid_sample away from the border), torch's
   normalisation per sample and per batch against OpenCV's per crop, targets per sample and per batch.

3. For each ``--workers``: ``CocoKeypoints`` in a DataLoader, and the raw + batch-transform path
   (``CocoKeypoints(raw=True)``, ``gpu_collate``, ``GpuBatchTransform`` on ``--device``; without a
   GPU it runs on the CPU in the main process, which shows the split but is not the point of it).
   Throughput excludes the first batch (worker start-up); workers use one intra-op thread each.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import cv2
import numpy as np
import torch
from PIL import Image

from hrnet_edu.data.coco import CocoKeypoints, load_image
from hrnet_edu.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PAPER_AUGMENT,
    GpuBatchTransform,
    crop_inverse,
    crop_matrix,
    gpu_collate,
    half_body_box,
    normalize,
    normalize_crop,
    source_region,
    transform_joints,
    warp_crop,
    warp_image,
)
from hrnet_edu.geometry import PIXEL_STD, transform_points
from hrnet_edu.heatmaps import HeatmapCodec, encode_heatmaps
from hrnet_edu.keypoints import COCO17

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data_samples", "synthpose")


# ---------------------------------------------------------------------------- the reference's way
def three_point_affine(center, scale, rotation: float, output_size) -> np.ndarray:
    """The image → crop matrix from three point pairs (centre, a point half a crop width above it,
    and the third corner of a right angle), solved by ``cv2.getAffineTransform`` in float32."""
    w, h = output_size
    theta = np.deg2rad(rotation)
    cos, sin = np.cos(theta), np.sin(theta)
    up = np.array([0.0, -0.5 * PIXEL_STD * scale[0]])
    up = np.array([up[0] * cos - up[1] * sin, up[0] * sin + up[1] * cos])

    def third(a, b):  # b + (a − b) turned by 90°
        d = a - b
        return b + np.array([-d[1], d[0]])

    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0], src[1] = center, center + up
    dst[0], dst[1] = [w * 0.5, h * 0.5], [w * 0.5, h * 0.5 - 0.5 * w]
    src[2], dst[2] = third(src[0], src[1]), third(dst[0], dst[1])
    return cv2.getAffineTransform(src, dst)


class ReferenceWay(torch.utils.data.Dataset):
    """``ours``' samples (same annotations, crops, augmentation ranges, σ) computed per sample and
    per joint, as the reference's ``JointsDataset.__getitem__`` does; same keys as ours."""

    def __init__(self, ours: CocoKeypoints, augment=True, seed=0):
        self.ours, self.augment = ours, augment
        # the reference keeps one dict per person and deep-copies it for every sample
        self.db = [{"image": ours.image_path(i), "center": ours._center[i], "scale": ours._scale[i],
                    "joints_3d": ours._joints[i], "filename": "", "imgnum": 0, "score": float(ours._score[i])}
                   for i in range(len(ours))]
        self.rng = np.random.RandomState(seed)  # noqa: NPY002 (the reference's np.random draws)
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.ours)

    def targets(self, joints, visible):
        """Per joint: the (6σ+1)² Gaussian patch around μ = int(x/4 + ½), pasted where on the map."""
        h, w = self.ours.input_size
        hh, hw, sigma = h // 4, w // 4, self.ours.codec.sigma
        weight = visible.astype(np.float32).copy()
        target = np.zeros((len(joints), hh, hw), np.float32)
        radius = int(3 * sigma)
        size = 2 * radius + 1
        x = np.arange(0, size, 1, np.float32)
        y = x[:, None]
        for k in range(len(joints)):
            mx, my = int(joints[k, 0] / 4 + 0.5), int(joints[k, 1] / 4 + 0.5)
            ul, br = (mx - radius, my - radius), (mx + radius + 1, my + radius + 1)
            if ul[0] >= hw or ul[1] >= hh or br[0] < 0 or br[1] < 0:
                weight[k] = 0
                continue
            g = np.exp(-((x - radius) ** 2 + (y - radius) ** 2) / (2 * sigma**2))
            gx, gy = (max(0, -ul[0]), min(br[0], hw) - ul[0]), (max(0, -ul[1]), min(br[1], hh) - ul[1])
            ix, iy = (max(0, ul[0]), min(br[0], hw)), (max(0, ul[1]), min(br[1], hh))
            if weight[k] > 0.5:
                target[k, iy[0]:iy[1], ix[0]:ix[1]] = g[gy[0]:gy[1], gx[0]:gx[1]]
        return target, weight

    def __getitem__(self, index: int) -> dict:
        ds, rng, rec = self.ours, self.rng, copy.deepcopy(self.db[index])
        h, w = ds.input_size
        image = cv2.imread(rec["image"], cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        joints = rec["joints_3d"][:, :2].astype(np.float64)
        visible = rec["joints_3d"][:, 2].copy()
        c, s, r = rec["center"], rec["scale"], 0.0
        if self.augment:
            a = PAPER_AUGMENT
            if (visible > 0).sum() > a.half_body_min_joints and rng.rand() < a.half_body_prob:
                box = half_body_box(joints, visible, w / h, upper=rng.randn() < 0.5,
                                    upper_body=ds.spec.upper_body)
                if box is not None:
                    c, s = box
            f = a.scale_factor
            s = s * np.clip(rng.randn() * f + 1, 1 - f, 1 + f)
            r = float(np.clip(rng.randn() * a.rotation_factor, -2 * a.rotation_factor, 2 * a.rotation_factor))
            r = r if rng.rand() <= a.rotation_prob else 0.0
            if rng.rand() <= a.flip_prob:
                image = image[:, ::-1]  # the mirrored pixels (OpenCV copies the view)
                joints[:, 0] = image.shape[1] - joints[:, 0] - 1
                for p, q in ds.spec.flip_pairs:
                    joints[[p, q]], visible[[p, q]] = joints[[q, p]], visible[[q, p]]
                joints *= (visible > 0)[:, None]
                c = np.array([image.shape[1] - c[0] - 1, c[1]])
        trans = three_point_affine(c, s, r, (w, h))
        crop = cv2.warpAffine(image, trans, (w, h), flags=cv2.INTER_LINEAR)
        for k in range(len(joints)):
            if visible[k] > 0:
                joints[k] = np.dot(trans, np.array([joints[k, 0], joints[k, 1], 1.0]))
        # torchvision's ToTensor then Normalize
        x = torch.from_numpy(crop).permute(2, 0, 1).contiguous().float().div(255)
        x = x.clone().sub_(self.mean).div_(self.std)
        target, weight = self.targets(joints, visible)
        return {"image": x, "target": torch.from_numpy(target), "target_weight": torch.from_numpy(weight),
                "joints": np.concatenate([joints, visible[:, None]], 1).astype(np.float32),
                "image_id": int(ds._image_id[index]), "center": c.astype(np.float32),
                "scale": s.astype(np.float32), "rotation": r, "score": rec["score"],
                "ann_id": int(ds._ann_id[index]), "area": float(np.prod(s * PIXEL_STD))}


# ---------------------------------------------------------------------------- measuring
def throughput(loader, samples: int, finish=None, device=None) -> float:
    """Samples per second over ``samples`` samples after the first batch (cycling the loader)."""
    seen, start, it, epoch = 0, None, iter(loader), 0
    while seen < samples:
        try:
            batch = next(it)
        except StopIteration:
            epoch += 1
            if hasattr(loader.dataset, "set_epoch"):
                loader.dataset.set_epoch(epoch)
            it = iter(loader)
            continue
        if finish is not None:
            out = finish(batch)
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize(device)
            batch = out
        if start is None:  # the first batch pays for worker start-up
            start = time.perf_counter()
            continue
        seen += len(batch["image"])
    return seen / (time.perf_counter() - start)


def loader(dataset, batch: int, workers: int = 0, **kw):
    extra = {"persistent_workers": True} if workers else {}
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                                       drop_last=True, generator=torch.Generator().manual_seed(0),
                                       **extra, **kw)


def paired(ours: CocoKeypoints, ref: ReferenceWay, batch: int, batches: int) -> None:
    """Alternate one batch of each pipeline (the order alternates too; both loaders draw the same
    indices), so that the other load of a shared machine falls on both alike. Prints samples per
    second of this process's CPU time (``time.process_time``: what one core delivers, the time the
    process waits for a core left out) and of wall-clock time, and their ratios."""
    sides = {"ours": loader(ours, batch), "reference way": loader(ref, batch)}
    iters = {name: iter(dl) for name, dl in sides.items()}
    for it in iters.values():  # one warm-up batch each
        next(it)
    cpu, wall = ({name: [] for name in sides} for _ in range(2))
    for b in range(batches):
        for name in (list(sides) if b % 2 == 0 else list(sides)[::-1]):
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                next(iters[name])
            except StopIteration:
                iters[name] = iter(sides[name])
                next(iters[name])
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    print(f"paired, 0 workers, batch {batch}, {batches} alternating batches each (samples/s)")
    print(f"  {'':14} {'CPU time':>9} {'wall':>9}")
    for name in sides:
        print(f"  {name:14} {batch * batches / sum(cpu[name]):9.1f} {batch * batches / sum(wall[name]):9.1f}")
    for what, t in (("CPU time", cpu), ("wall", wall)):
        per_batch = np.array(t["reference way"]) / np.array(t["ours"])
        print(f"  ours / reference way, {what:8}: {sum(t['reference way']) / sum(t['ours']):.2f}x "
              f"(per batch: median {np.median(per_batch):.2f}x, quartiles "
              f"{np.percentile(per_batch, 25):.2f}–{np.percentile(per_batch, 75):.2f})")


def sanity(ours_eval: CocoKeypoints, n: int = 8) -> None:
    """Without augmentation both ways must give the same sample: same targets and weights, images
    within the warps' fixed-point rounding."""
    ref = ReferenceWay(ours_eval, augment=False)
    levels, same_targets = 0.0, True
    for i in range(n):
        a, b = ours_eval[i], ref[i]
        levels = max(levels, float(((a["image"] - b["image"]).abs() * ref.std * 255).max()))
        same_targets &= bool(torch.equal(a["target_weight"], b["target_weight"]))
        same_targets &= bool((a["target"] - b["target"]).abs().max() < 1e-5)
    print(f"sanity, {n} unaugmented samples: targets and weights equal: {same_targets}; "
          f"max |Δ image| {levels:.1f} levels of 255 (the float32 three-point matrix and rounding)")


def per_sample_ms(fns: dict, reps: int) -> dict:
    """Best ms of each function over ``reps`` interleaved repetitions: on a shared machine the
    minimum is the cost without the others' load (a median would penalise the longer batch calls,
    which are preempted more often)."""
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: 1e3 * min(v) for k, v in times.items()}


def pillow_affine(image: Image.Image, matrix: np.ndarray, output_size) -> np.ndarray:
    """Pillow's ``Image.transform(AFFINE, BILINEAR)`` with our matrix.

    Pillow wants the crop → image map in coordinates whose pixel centres sit at +½: it evaluates
    x_P = A⁻¹ (u + ½, v + ½) + c at crop pixel (u, v), then samples at index x_P − ½. We need
    index = A⁻¹ (u, v) + t⁻¹ (integer centres), so c = t⁻¹ − A⁻¹ (½, ½) + (½, ½). Its border is
    not grid_sample's: zero where x_P leaves [0, W), edge pixels repeated just inside.
    """
    inv = crop_inverse(matrix)
    lin, offset = inv[:, :2], inv[:, 2] - inv[:, :2] @ np.array([0.5, 0.5]) + 0.5
    coeffs = (lin[0, 0], lin[0, 1], offset[0], lin[1, 0], lin[1, 1], offset[1])
    return np.asarray(image.transform(tuple(output_size), Image.AFFINE, coeffs, resample=Image.BILINEAR))


def pillow_decode(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def stages(ds: CocoKeypoints, batch: int, reps: int) -> None:
    h, w = ds.input_size
    path = ds.image_path(0)
    image = load_image(path)
    params = ds.crop_params(0, image.shape[1])
    matrix = crop_matrix(params, image.shape[1], (w, h))
    (y0, y1, x0, x1), shifted = source_region(matrix, image.shape[:2], (w, h))
    region, pil = np.ascontiguousarray(image[y0:y1, x0:x1]), Image.fromarray(image)
    joints = transform_joints(ds._joints[0], matrix, params.flip, (h, w), ds.spec.flip_index)
    crop = warp_crop(image, matrix, (w, h))
    crops = torch.from_numpy(np.repeat(crop[None], batch, 0))
    row = np.empty((3, h, w), np.float32)
    jb = torch.from_numpy(np.repeat(joints[None], batch, 0))
    jt = torch.from_numpy(joints)
    sigma = ds.codec.sigma

    # the warps against grid_sample where the whole bilinear support is inside the image
    ref = warp_image(image, matrix, (w, h)).permute(1, 2, 0).numpy()
    v, u = np.mgrid[0:h, 0:w]
    src = transform_points(np.stack([u.ravel(), v.ravel()], 1), crop_inverse(matrix)).reshape(h, w, 2)
    inside = np.all((src >= 0) & (src <= np.array([image.shape[1], image.shape[0]]) - 1), axis=-1)
    diff = {name: float(np.abs(out.astype(np.float64) - ref)[inside].max())
            for name, out in [("cv2", crop), ("pillow", pillow_affine(pil, matrix, (w, h)))]}

    ms = per_sample_ms({
        "decode: Pillow open + convert": lambda: pillow_decode(path),
        "decode: OpenCV (load_image)": lambda: load_image(path),
        "warp: grid_sample (float)": lambda: warp_image(region, shifted, (w, h)),
        "warp: Pillow AFFINE (uint8)": lambda: pillow_affine(pil, matrix, (w, h)),
        "warp: OpenCV warp_crop (uint8)": lambda: warp_crop(image, matrix, (w, h)),
        "normalize: torch, per sample": lambda: normalize(crops[0].permute(2, 0, 1)),
        f"normalize: torch, batch of {batch} (/N)": lambda: normalize(crops.permute(0, 3, 1, 2)),
        "normalize: OpenCV normalize_crop": lambda: normalize_crop(crop, out=row),
        "targets: per sample": lambda: encode_heatmaps(jt[:, :2] / 4, jt[:, 2], (h // 4, w // 4), sigma),
        f"targets: batch of {batch} (/N)": lambda: encode_heatmaps(jb[..., :2] / 4, jb[..., 2],
                                                                   (h // 4, w // 4), sigma),
    }, reps)
    print(f"stages on one {image.shape[1]}×{image.shape[0]} image, ms per sample (best of {reps}):")
    for name, t in ms.items():
        t = t / batch if "(/N)" in name else t
        which = "pillow" if "Pillow AFFINE" in name else "cv2" if "OpenCV warp" in name else None
        note = f"   max |Δ| vs grid_sample inside: {diff[which]:.2f} levels" if which else ""
        print(f"  {name:36} {t:7.3f}{note}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ann", default=os.path.join(ROOT, "annotations", "person_keypoints_train.json"))
    p.add_argument("--images", default=os.path.join(ROOT, "images"))
    p.add_argument("--input", default="256x192", help="H x W of the crop")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--samples", type=int, default=256, help="samples timed per loader row")
    p.add_argument("--batches", type=int, default=48, help="batches of each side in the paired run")
    p.add_argument("--reps", type=int, default=30, help="repetitions of each stage")
    p.add_argument("--workers", type=int, nargs="*", default=[0, 2], help="loader rows (none: skip)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads of the main process")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)  # both sides warp with OpenCV: the same core budget
    size = tuple(int(v) for v in args.input.lower().split("x"))
    device = torch.device(args.device)
    codec = HeatmapCodec(size)  # the reference's targets: σ = 2 at stride 4

    ours = CocoKeypoints(args.ann, args.images, codec=codec, spec=COCO17, train=True, seed=0)
    print(f"{len(ours)} persons from {args.ann}; input {size[0]}×{size[1]}, {os.cpu_count()} CPUs, "
          f"main-process threads {args.threads}; absolute rates depend on the machine's load, ratios less")
    sanity(CocoKeypoints(args.ann, args.images, codec=codec, spec=COCO17, train=False))
    paired(ours, ReferenceWay(ours), args.batch, args.batches)
    stages(ours, args.batch, args.reps)
    if not args.workers:
        return

    raw_ds = CocoKeypoints(args.ann, args.images, codec=codec, spec=COCO17, train=True, seed=0, raw=True)
    finish = GpuBatchTransform(codec, device=device)
    print(f"loaders, batch {args.batch}, batch device {device}")
    print(f"  {'pipeline':34} {'workers':>7} {'samples/s':>10}")
    for workers in args.workers:
        cpu = throughput(loader(ours, args.batch, workers), args.samples)
        print(f"  {'cpu (full sample in workers)':34} {workers:7d} {cpu:10.1f}", flush=True)
        raw_loader = loader(raw_ds, args.batch, workers, collate_fn=gpu_collate,
                            pin_memory=device.type == "cuda")
        feed = throughput(raw_loader, args.samples, finish=lambda b: {"image": b["raw_image"]})
        print(f"  {'raw only (decode + augment + cut)':34} {workers:7d} {feed:10.1f}", flush=True)
        both = throughput(raw_loader, args.samples, finish=finish, device=device)
        print(f"  {'raw + batch transform on ' + device.type:34} {workers:7d} {both:10.1f}", flush=True)


if __name__ == "__main__":
    main()
