"""The top-down COCO keypoint dataset: one sample per person box.

Works on any COCO-format person-keypoints file (COCO ``person_keypoints_{train,val}2017.json``,
SynthPose, CrowdPose, your own) whose keypoint set is described by ``spec`` (``keypoints.py``,
always given): K, the number of joints per person, comes from the spec, and so do the
left/right pairs swapped by the flip augmentation and the upper-body joints of the half-body one.
Each sample is the person's crop warped to the input size (H×W, e.g. 256×192), its Gaussian
target heatmaps at a quarter of that size (both from the ``heatmaps.HeatmapCodec``), and the
metadata (image id, centre, scale, box score)
needed to map predictions back to the image.

Which persons become samples (the reference's ``_load_coco_keypoint_annotation_kernal``)
---------------------------------------------------------------------------------------
* crowd annotations are skipped; persons with no labelled keypoint are skipped — also for
  evaluation with ground-truth boxes, as in the reference (COCOeval ignores them anyway);
* boxes are clipped to the image: x1 = max(0, x), y1 = max(0, y),
  x2 = min(W − 1, x1 + max(0, w − 1)), y2 = min(H − 1, y1 + max(0, h − 1)), box = (x1, y1, x2 − x1,
  y2 − y1), kept if area > 0 and x2 ≥ x1 and y2 ≥ y1. We also drop boxes with w ≤ 0 or h ≤ 0
  (the reference would keep a zero-width box and crop by its height alone); an annotation
  without ``area`` gets 0.53 · w · h of its box where the file is read (``ground_truth``);
* visibility v = min(v, 1): an occluded but labelled joint is a training target.
Everything skipped is counted in ``.num_skipped`` (reason → count). Malformed ground truth (NaN or
non-numeric keypoints, visibility outside {0, 1, 2}, labelled joints far outside the image, unknown
image ids, images without a size) is an error naming the file and the id (``ground_truth``), and
``check_images`` looks at every image file's header before a long run.

For evaluation with a detector, ``boxes`` is a COCO detection results file (a JSON list of
``{"image_id", "category_id", "bbox", "score"}``); person boxes (category 1) with
score ≥ ``box_score_threshold`` become samples, unclipped, as in the reference.

Randomness: each sample draws from ``np.random.default_rng((seed, epoch, index))``, so a run is
reproducible, ``DataLoader`` workers never share a stream, and ``set_epoch`` changes every draw
(the epoch lives in shared memory, so it reaches persistent workers too).
"""

from __future__ import annotations

import json
import math
import os
import sys

import cv2
import numpy as np
import torch

from ..errors import InputError
from ..geometry import PIXEL_STD, box_to_center_scale
from ..heatmaps import HeatmapCodec
from ..keypoints import KeypointSpec, get_spec
from .ground_truth import PERSON_CATEGORY, read_ground_truth
from .transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PAPER_AUGMENT,
    AugmentConfig,
    CropParams,
    crop_matrix,
    denormalize,
    normalize_crop,
    sample_crop,
    source_region,
    transform_joints,
    warp_crop,
)

__all__ = ["CocoKeypoints", "IMAGENET_MEAN", "IMAGENET_STD", "denormalize", "load_image"]

_DECODE_FLAGS = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION


def load_image(path: str, what: str = "", upright: bool = False) -> np.ndarray:
    """Decode an image file → (H, W, 3) uint8 RGB, C-contiguous and writable; EXIF orientation is
    ignored, as the reference's ``IMREAD_IGNORE_ORIENTATION`` (a dataset's annotations are in the
    stored pixels' frame), unless ``upright`` (a photo to predict on: turned as a viewer shows it);
    grey and palette images become RGB, an alpha channel is dropped. Raises FileNotFoundError /
    ValueError naming the file.

    OpenCV decodes (``imdecode`` of the file's bytes, so that any path name works): its libjpeg-turbo
    gives the same pixels as Pillow's with less overhead per image, which matters on small images
    (``benchmarks/bench_data.py`` measures both).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}{what}")
    try:
        flags = cv2.IMREAD_COLOR_RGB if upright else _DECODE_FLAGS  # the former applies EXIF orientation
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flags)
    except cv2.error as err:
        raise ValueError(f"cannot decode image {path}{what}: {err}") from err
    if image is None:
        raise ValueError(f"cannot decode image {path}{what}: not a complete image file OpenCV can read")
    # IMREAD_COLOR_RGB without IMREAD_ANYDEPTH converts 16-bit PNG/TIFF to 8 bit by value >> 8 (so
    # 65535 → 255, tested); anything else would be normalised on the wrong scale, so refuse it
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"cannot use image {path}{what}: decoded to {image.dtype} {image.shape}, "
                         "expected 8-bit RGB")
    return image


def _note(text: str) -> None:
    """One line on stderr for what is counted and reported, not an error (no warning's source line)."""
    print(f"note: {text}", file=sys.stderr)


def image_header(path: str) -> tuple[tuple[int, int] | None, str]:
    """((width, height), "") of an image file from its header alone (no decoding), or (None, reason)."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        return None, "missing"
    try:
        with Image.open(path) as im:  # reads the header only
            size, kind = im.size, im.format
    except (UnidentifiedImageError, OSError, ValueError) as err:
        return None, f"unreadable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    return (size, "") if _has_end_marker(path, kind) else (None, f"truncated ({kind} without its end marker)")


# The last bytes of a complete file: JPEG's end-of-image marker (which entropy-coded data cannot
# hold: there 0xFF is always followed by 0x00 or a restart marker) and PNG's IEND chunk.
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}


def _has_end_marker(path: str, kind: str | None) -> bool:
    """Whether a JPEG or PNG file ends as a complete one (a copy cut short keeps a valid header, and
    OpenCV decodes it to a part-grey picture or fails mid-run); other formats are not checked."""
    marker = _END_MARKERS.get(kind or "")
    if marker is None:
        return True
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 1024))
        return marker in f.read()


def _clean_box(bbox, area: float, width: int, height: int):
    """The reference's box clipping; returns [x, y, w, h] or None for a degenerate box."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if area > 0 and x2 >= x1 and y2 >= y1 and w > 0 and h > 0:
        return [x1, y1, x2 - x1, y2 - y1]
    return None


class CocoKeypoints(torch.utils.data.Dataset):
    """Top-down person crops from a COCO keypoint file.

    Args:
        ann_file: COCO person-keypoints JSON; image_dir: folder of the images' ``file_name``.
        codec: the ``HeatmapCodec``: the crops' input size (H, W), the heatmap stride (4; 8, 16 …
            for a head on a lower-resolution branch, ``HRNetConfig.head_branch``), the targets'
            σ and kind (reference / unbiased). Kept as ``.codec``.
        spec: the file's keypoint set, a KeypointSpec or a built-in name ("coco17",
            "crowdpose14"). Kept as ``.spec``.
        train: apply ``augment`` (evaluation never augments).
        augment: an AugmentConfig, or None for no augmentation.
        boxes: "gt" for annotated boxes, or the path of a COCO person-detection results file.
        box_score_threshold: detections scoring below this are dropped.
        seed: base seed of the augmentation.
        raw: return the un-warped image region and its matrix instead of the finished sample
            (for :class:`hrnet_edu.data.transforms.GpuBatchTransform`, which warps on the device:
            the trainer with ``TrainConfig.warp_on_device``).

    The checked file is ``.ground_truth`` (``data.ground_truth.GroundTruth``; its pycocotools
    index also as ``.coco``).

    A sample (``__getitem__``) is a dict of tensors: ``image`` (3, H, W) float32 normalized,
    ``target`` (K, H/4, W/4) float32, ``target_weight`` (K,), ``joints`` (K, 3) float32 crop
    coordinates + visibility, ``image_id`` int64, ``center`` (2,), ``scale`` (2,), ``rotation``
    (), ``score`` () box score (1 for GT boxes), ``ann_id`` int64 (−1 for detections), ``area``
    () = the crop area (200·s_x)·(200·s_y), which the reference uses for OKS-NMS.
    """

    def __init__(self, ann_file, image_dir, *, codec: HeatmapCodec, spec: KeypointSpec | str, train=True,
                 augment: AugmentConfig | None = PAPER_AUGMENT, boxes="gt", box_score_threshold=0.0,
                 seed=0, raw=False):
        if not isinstance(codec, HeatmapCodec):
            raise TypeError(f"codec must be a heatmaps.HeatmapCodec, got {type(codec).__name__}")
        self.codec, self.input_size = codec, codec.input_size
        h, w = self.input_size
        if not os.path.isfile(ann_file):
            raise FileNotFoundError(f"annotation file not found: {ann_file}")
        self.ann_file, self.image_dir = str(ann_file), str(image_dir)
        self.train, self.augment = bool(train), (augment if train else None)
        self.seed, self.raw = int(seed), bool(raw)
        self.spec = get_spec(spec)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        # checked once here: malformed keypoints, images or ids are an InputError naming the file
        self.ground_truth = read_ground_truth(self.ann_file, self.spec)
        self.coco = self.ground_truth.coco
        self.image_ids = sorted(self.coco.getImgIds())
        self.num_skipped: dict[str, int] = {}
        self.unreadable_image_ids: list[int] = []  # left out by check_images(skip_unreadable=True)
        rows = self._gt_rows() if boxes == "gt" else self._detection_rows(str(boxes), box_score_threshold)
        self._image_id = np.array([r[0] for r in rows], dtype=np.int64)
        self._ann_id = np.array([r[1] for r in rows], dtype=np.int64)
        self._box = np.array([r[2] for r in rows], dtype=np.float64).reshape(-1, 4)
        self._score = np.array([r[3] for r in rows], dtype=np.float32)
        k = self.spec.num_joints
        self._joints = np.array([r[4] for r in rows], dtype=np.float32).reshape(-1, k, 3)
        self._center, self._scale = box_to_center_scale(self._box, w / h)

    # ---- building the sample list -------------------------------------------------------
    def _skip(self, reason: str) -> None:
        self.num_skipped[reason] = self.num_skipped.get(reason, 0) + 1

    def _gt_rows(self) -> list:
        rows = []
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=self.image_ids)):
            aid = ann.get("id")
            if ann.get("category_id") != PERSON_CATEGORY:
                self._skip("not_person")
                continue
            if ann.get("iscrowd", 0):
                self._skip("crowd")
                continue
            # keypoints (3K finite numbers, v in {0, 1, 2}) and bbox were checked by read_ground_truth
            kps, bbox = ann["keypoints"], ann["bbox"]
            img = self.coco.imgs[ann["image_id"]]
            box = _clean_box(bbox, float(ann.get("area", 1.0)), img["width"], img["height"])
            if box is None:
                self._skip("degenerate_box")
                continue
            joints = np.asarray(kps, dtype=np.float64).reshape(self.spec.num_joints, 3)
            if joints.max() == 0:  # the reference: max(keypoints) == 0 → no labelled joint
                self._skip("no_keypoints")
                continue
            # v = min(v, 1): occluded-but-labelled joints are targets too
            joints[:, 2] = np.minimum(joints[:, 2], 1.0)
            # an unlabelled joint has no position (COCO writes 0, 0, 0): whatever numbers it holds
            # are never used, so they must not reach the float32 tables either
            joints[joints[:, 2] == 0] = 0.0
            rows.append((ann["image_id"], aid, box, 1.0, joints))
        return rows

    def _detection_rows(self, path: str, threshold: float) -> list:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"detection results file not found: {path}")
        with open(path) as f:
            dets = json.load(f)
        if not isinstance(dets, list) or not dets:
            raise ValueError(f"{path}: expected a non-empty JSON list of detections "
                             f"{{image_id, category_id, bbox, score}}, got {type(dets).__name__} of "
                             f"length {len(dets) if isinstance(dets, list | dict) else '?'}")
        rows, zero = [], np.zeros((self.spec.num_joints, 3))
        for i, det in enumerate(dets):
            if not isinstance(det, dict) or not {"image_id", "category_id", "bbox", "score"} <= det.keys() \
                    or len(det["bbox"]) != 4:
                raise ValueError(f"{path}: detection #{i} is malformed (need image_id, category_id, "
                                 f"bbox [x, y, w, h], score): {det}")
            if det["image_id"] not in self.coco.imgs:
                raise ValueError(f"{path}: detection #{i} has image_id {det['image_id']}, which is not "
                                 f"an image of {self.ann_file}")
            if det["category_id"] != PERSON_CATEGORY:
                self._skip("not_person")
            elif det["score"] < threshold:
                self._skip("low_score")
            elif not all(isinstance(v, int | float) and math.isfinite(v) for v in det["bbox"]):
                self._skip("non_finite_box")  # NaN / inf: no crop to take (counted, not dropped unseen)
            elif det["bbox"][2] <= 0 or det["bbox"][3] <= 0:
                self._skip("degenerate_box")
            else:
                rows.append((det["image_id"], -1, [float(v) for v in det["bbox"]], float(det["score"]), zero))
        return rows

    def check_images(self, skip_unreadable: bool = False) -> dict[str, int]:
        """Pre-flight check of every image the samples use, from the file headers (fast: no decoding).

        A missing or unreadable image raises InputError naming the first (and how many) — before a
        long run, not when it is reached — unless ``skip_unreadable``: then its samples are dropped
        and counted in ``num_skipped`` ("missing_image", "unreadable_image"). An image whose real
        size differs from its JSON width/height is counted ("size_mismatch") with a warning: boxes
        are clipped to the JSON's size. Returns {"images", "missing", "unreadable", "size_mismatch"}.
        """
        report = {"images": 0, "missing": 0, "unreadable": 0, "size_mismatch": 0}
        bad, first_bad, first_mismatch = set(), None, None
        for image_id in np.unique(self._image_id).tolist():
            info = self.coco.imgs[image_id]
            path = os.path.join(self.image_dir, info["file_name"])
            size, reason = image_header(path)
            report["images"] += 1
            if size is None:
                report["missing" if reason == "missing" else "unreadable"] += 1
                bad.add(image_id)
                first_bad = first_bad or f"{path} (image id {image_id}): {reason}"
            elif size != (info["width"], info["height"]):
                report["size_mismatch"] += 1
                first_mismatch = first_mismatch or (f"{path} is {size[0]}x{size[1]}, the JSON says "
                                                    f"{info['width']}x{info['height']}")
        if report["size_mismatch"]:
            _note(f"{report['size_mismatch']} of {report['images']} images of {self.ann_file} differ "
                  f"in size from their JSON width/height, e.g. {first_mismatch}")
        if bad and not skip_unreadable:
            raise InputError(f"{len(bad)} of {report['images']} images of {self.ann_file} cannot be read, "
                             f"e.g. {first_bad} (--skip-bad-images leaves them out)")
        if bad:
            drop = np.isin(self._image_id, list(bad))
            for image_id in self._image_id[drop].tolist():
                path = os.path.join(self.image_dir, self.coco.imgs[image_id]["file_name"])
                self._skip("missing_image" if not os.path.isfile(path) else "unreadable_image")
            keep = ~drop
            for name in ("_image_id", "_ann_id", "_box", "_score", "_joints", "_center", "_scale"):
                setattr(self, name, getattr(self, name)[keep])
            _note(f"left out {int(drop.sum())} samples of {len(bad)} unreadable images of "
                  f"{self.ann_file}, e.g. {first_bad}")
        self.image_report = report
        self.unreadable_image_ids = sorted(bad) if skip_unreadable else []
        return report

    # ---- samples ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._image_id)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation stream (call once per epoch, before iterating)."""
        self._epoch.fill_(int(epoch))

    def image_path(self, index: int) -> str:
        return os.path.join(self.image_dir, self.coco.imgs[int(self._image_id[index])]["file_name"])

    def record(self, index: int) -> dict:
        """The sample's annotation before any crop (numpy): ``image_id``, ``ann_id``, ``box`` (4,)
        clipped xywh, ``joints`` (K, 3) image coordinates + visibility in {0, 1}, ``center`` (2,),
        ``scale`` (2,) of the box crop, ``score``, and the image ``path``."""
        return {"image_id": int(self._image_id[index]), "ann_id": int(self._ann_id[index]),
                "box": self._box[index].copy(), "joints": self._joints[index].copy(),
                "center": self._center[index].copy(), "scale": self._scale[index].copy(),
                "score": float(self._score[index]), "path": self.image_path(index)}

    def crop_params(self, index: int, image_width: int) -> CropParams:
        """The sample's crop: the box crop, randomly augmented when training."""
        center, scale, joints = self._center[index], self._scale[index], self._joints[index]
        if self.augment is None:
            return CropParams(center, scale)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return sample_crop(rng, center, scale, joints[:, :2], joints[:, 2], image_width,
                           self.input_size[1] / self.input_size[0], self.augment, self.spec.upper_body)

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """The samples of a list of indices; a ``DataLoader`` calls this with each batch's indices
        (also through a ``Subset``) and default-collates the list, so every loader takes this path.

        Per sample: the decode, the augmentation draw, the matrix, the joints, one uint8 warp
        (:func:`warp_crop`) and its normalisation (:func:`normalize_crop`) straight into its row of
        the (N, 3, H, W) image batch. For the whole batch at once: the target heatmaps and the
        metadata tensors — done per sample these are dozens of tiny tensor calls whose overhead
        costs more than their arithmetic. The returned samples are views into the batch tensors;
        collating copies them once, as it copies separately computed samples.
        """
        n, (h, w) = len(indices), self.input_size
        for index in indices:
            if not 0 <= index < len(self):
                raise IndexError(f"sample index {index} out of range for {len(self)} samples")
        idx = np.asarray(indices, dtype=np.int64)
        joints = np.empty((n, self.spec.num_joints, 3), np.float32)
        center, scale, rotation = np.empty((n, 2)), np.empty((n, 2)), np.empty(n)
        if not self.raw:  # each crop is warped into ``crop``, then normalised into its row of ``images``
            crop, images = np.empty((h, w, 3), np.uint8), torch.empty((n, 3, h, w), dtype=torch.float32)
        raw_image, raw_matrix = [], []
        for j, index in enumerate(indices):
            what = f" (image id {self._image_id[index]}, annotation id {self._ann_id[index]})"
            image = load_image(self.image_path(index), what)
            params = self.crop_params(index, image.shape[1])
            matrix = crop_matrix(params, image.shape[1], (w, h))
            joints[j] = transform_joints(self._joints[index], matrix, params.flip, self.input_size,
                                         self.spec.flip_index)
            center[j], scale[j], rotation[j] = params.center, params.scale, params.rotation
            if self.raw:
                (y0, y1, x0, x1), shifted = source_region(matrix, image.shape[:2], (w, h))
                raw_image.append(torch.from_numpy(np.ascontiguousarray(image[y0:y1, x0:x1])))
                raw_matrix.append(torch.from_numpy(shifted))
            else:
                normalize_crop(warp_crop(image, matrix, (w, h), out=crop), out=images[j].numpy())
        batch = {}
        joints_t = torch.from_numpy(joints)
        if not self.raw:
            batch["image"] = images
            batch["target"], batch["target_weight"] = self.codec.encode(joints_t[..., :2], joints_t[..., 2])
        batch.update({
            "joints": joints_t,
            "image_id": torch.from_numpy(self._image_id[idx]),
            "center": torch.from_numpy(center.astype(np.float32)),
            "scale": torch.from_numpy(scale.astype(np.float32)),
            "rotation": torch.from_numpy(rotation.astype(np.float32)),
            "score": torch.from_numpy(self._score[idx]),
            "ann_id": torch.from_numpy(self._ann_id[idx]),
            "area": torch.from_numpy(np.prod(scale * PIXEL_STD, axis=1).astype(np.float32)),
        })
        rows = {key: value.unbind(0) for key, value in batch.items()}
        samples = [{key: rows[key][j] for key in batch} for j in range(n)]
        if self.raw:
            for sample, region, matrix in zip(samples, raw_image, raw_matrix):
                sample["raw_image"], sample["matrix"] = region, matrix
        return samples
