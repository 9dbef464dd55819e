# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · The whole game: one photo, every step
#
# **Time:** about 35 min of reading (the exercises extra; their solutions say what each costs) · **Needs:** Python and NumPy; nothing else of the course · course map and glossary: section 10, README, `docs/glossary.md`.
#
# HRNet (Sun et al., CVPR 2019) estimates a person's pose **top-down**: first find the person (a
# box), cut the box out and resize it to the network's input (the crop), run the network, which
# answers one **heatmap** per joint, read each joint off its heatmap (the keypoints) and map them back
# to the photo, where they are joined into a skeleton. This notebook takes one real photograph
# through all of it, with the library's own functions, and says which later notebook explains each
# step.
#
# **What you will learn**
# - the six steps of top-down pose estimation — box, crop, network, heatmaps, keypoints, skeleton —
#   each as one library call on a real photo;
# - what the network actually outputs (17 heatmaps of a quarter of the input size) and how a
#   keypoint and its confidence are read from them;
# - what happens when a network meets images it was never trained on, measured;
# - where the course explains each step (the map at the end).
#
# **Time**: about 20 minutes to read; the notebook runs in well under a minute on a CPU.
# **Prerequisites**: none (Python and a first idea of a convolutional network help).
#
# Notation: K = 17 joints (COCO's), H×W input size, heatmaps of H/4 × W/4; points are (x, y) in
# pixels.

# %%
# %matplotlib inline
import matplotlib
import numpy as np
import torch
from matplotlib import cbook
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from hrnet_edu import viz
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.data.coco import CocoKeypoints, load_image
from hrnet_edu.data.transforms import denormalize, normalize, warp_image
from hrnet_edu.geometry import box_to_center_scale, crop_transform, transform_points
from hrnet_edu.heatmaps import heatmap_to_image
from hrnet_edu.predict import draw_predictions, predict_image
from hrnet_edu.weights import cached  # the catalogue of published checkpoints: a cached file or None

torch.manual_seed(0)
torch.set_num_threads(2)
matplotlib.rcParams["figure.dpi"] = 100

CHECKPOINT = "../data_samples/checkpoints/synthpose_w16_128x96_cpu.pt"  # committed, trained on CPU
W32_NAME = "hrnet_w32_coco_256x192"  # mmpose's published COCO HRNet-W32

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The photo
#
# A portrait of Grace Hopper that ships with matplotlib (`matplotlib.cbook.get_sample_data`), read as
# `hrnet-edu predict` reads a photo: `load_image(path, upright=True)` gives (H, W, 3) uint8 RGB, turned
# as a viewer sees it if the file carries an EXIF orientation (a camera's portrait shots do).

# %%
PHOTO = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
photo = load_image(PHOTO, upright=True)  # (600, 512, 3) uint8
print("photo:", photo.shape, photo.dtype)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · The box
#
# A top-down method sees one person at a time, inside a box `[x, y, w, h]` (COCO's format: the top-left
# corner, width and height, in pixels). In the paper the boxes come from a separate person detector;
# `hrnet-edu predict photo.jpg` without `--box` does the same with torchvision's COCO-trained Faster
# R-CNN (`hrnet_edu.detect.detect_persons`, the optional extra `pip install -e '.[detect]'`, whose
# weights torchvision downloads once). This notebook runs offline, so the box is given by hand, as
# `--box` does: from the top of the cap to the bottom of the photo.

# %%
BOX = np.array([20.0, 20.0, 492.0, 580.0])  # x, y, w, h: by eye, around the whole visible person

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · The crop
#
# The network takes a fixed input size, here 128×96 (H×W, the committed CPU model's; the paper's
# models take 256×192 or 384×288). The box is first **grown** to the input's aspect ratio W/H = 0.75
# (only ever grown, so nothing of the person is cut), then padded by 1.25 for context
# (`box_to_center_scale`: a centre and a scale in units of 200 px, the reference's convention). An
# affine map sends that region onto the 128×96 crop (`crop_transform`), and the photo is resampled
# through it (`warp_image`, bilinear; outside the photo is black).

# %%
model, cfg = load_checkpoint(CHECKPOINT)  # the network of section 4 fixes the input size
H_in, W_in = cfg.input_size  # (128, 96)
center, scale = box_to_center_scale(BOX, aspect_ratio=W_in / H_in)
matrix = crop_transform(center, scale, output_size=(W_in, H_in))  # (2, 3): photo → crop
crop = warp_image(photo, matrix, (W_in, H_in))  # (3, 128, 96) float32 in [0, 255]
crop_u8 = crop.permute(1, 2, 0).round().clamp(0, 255).byte().numpy()  # (128, 96, 3) for drawing
print("centre", center.round(1), "| scale", scale.round(3), "→ the crop reads a region of",
      (scale * 200).round(1), "px")
# a check: the crop's corners, mapped back with the inverse transform, span that region
corners = np.array([[-0.5, -0.5], [W_in - 0.5, -0.5], [W_in - 0.5, H_in - 0.5], [-0.5, H_in - 0.5]])
region = transform_points(corners, crop_transform(center, scale, (W_in, H_in), inverse=True))
print("region read, width × height:", np.ptp(region, axis=0).round(1))

# %%
fig = Figure(figsize=(8.4, 4.6), layout="constrained")
ax_photo, ax_crop = fig.subplots(1, 2, width_ratios=[1.5, 1])
ax_photo.imshow(photo)
ax_photo.add_patch(Rectangle(BOX[:2], *BOX[2:], fill=False, edgecolor="white", linestyle="--", lw=1.5))
ax_photo.add_patch(Polygon(region, fill=False, edgecolor="orange", lw=1.5))
ax_photo.set_xlim(region[:, 0].min() - 10, region[:, 0].max() + 10)
ax_photo.set_ylim(region[:, 1].max() + 10, region[:, 1].min() - 10)
ax_photo.set_title("the photo: box (white), region the crop reads (orange)", fontsize=9)
ax_crop.imshow(crop_u8)
ax_crop.set_title(f"the crop: {H_in}×{W_in}, the network's input", fontsize=9)
fig

# %% [markdown]
# The orange region is larger than the photo: its left, right and bottom parts are black in the crop.
#
# ## 4 · The network
#
# The committed checkpoint is HRNet with width C = 16 (the paper's smallest is 32), trained on a CPU
# for 15 epochs on **SynthPose**, this project's generated dataset of drawn figures in COCO's exact
# keypoint format (notebook 07). The crop is normalised with ImageNet's mean and standard deviation
# (`normalize`), as in training, and goes through the network as a batch of one: (N, 3, H, W) →
# (N, K, H/4, W/4).

# %%
x = normalize(crop)[None]  # (1, 3, 128, 96)
with torch.no_grad():
    heatmaps = model(x)  # (1, 17, 32, 24)
print(f"{cfg.name}: {sum(p.numel() for p in model.parameters()):,} parameters")
print("input", tuple(x.shape), "→ heatmaps", tuple(heatmaps.shape))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · The heatmaps
#
# One map per joint, a quarter of the input's size: trained to be a Gaussian bump (peak 1) where the
# joint is and 0 elsewhere. Here over the crop, on one colour scale from 0 to 1, for the joints a
# viewer can see in this portrait (the face and the shoulders) and one that is outside it (the left
# wrist). "left" is the person's left: on the right of the picture.

# %%
spec = cfg.spec  # the keypoint set: names, skeleton, flip pairs (COCO-17)
SEEN = [spec.names.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                                      "left_shoulder", "right_shoulder")]
viz.overlay_heatmaps(crop_u8, heatmaps[0], joints=[*SEEN, spec.names.index("left_wrist")], ncols=4,
                     spec=spec, title="the committed network's heatmaps on the photo")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · The keypoints
#
# Each joint is read off its heatmap where the map peaks, refined to a fraction of a heatmap pixel,
# and the peak's value is the joint's **confidence**. How a network's heatmaps are made and read is
# one object, its **codec** (`cfg.codec`, a `HeatmapCodec`, stored in the checkpoint): the committed
# network was trained on Gaussians centred on the exact keypoint, and its codec decodes with DARK
# (a second-order step from the peak; the reference instead moves the peak a quarter pixel towards
# the higher neighbour, notebook 01). The heatmap point is mapped back to the photo by the inverse of
# the crop's affine map, built for the heatmap's size so that the ×4 is part of it
# (`heatmap_to_image`).

# %%
codec = cfg.codec
print("codec:", codec.describe())
coords_hm, conf = codec.decode(heatmaps)  # (1, 17, 2) heatmap px, (1, 17)
keypoints = heatmap_to_image(coords_hm.numpy(), center[None], scale[None], tuple(heatmaps.shape[-2:]))[0]
conf = conf[0].numpy()
print(f"{'joint':15} {'x':>6} {'y':>6} {'confidence':>10}")
for k, name in enumerate(spec.names):
    print(f"{name:15} {keypoints[k, 0]:6.1f} {keypoints[k, 1]:6.1f} {conf[k]:10.2f}")

# %% [markdown]
# `hrnet_edu.predict.predict_image` is all of sections 3 to 6 in one call (what `hrnet-edu predict`
# runs for each box); by default it adds the **flip test** (the mirrored crop too, its heatmaps
# flipped back and averaged; notebooks 01 and 08). Without it, it gives exactly the keypoints above:

# %%
kp_lib, conf_lib = predict_image(model, photo, BOX, codec, spec, flip=False)
print("predict_image (no flip test) = the steps above:",
      np.allclose(kp_lib, keypoints, atol=1e-6) and np.allclose(conf_lib, conf, atol=1e-6))
kp_flip, conf_flip = predict_image(model, photo, BOX, codec, spec)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · The skeleton
#
# The keypoints whose confidence exceeds 0.2 (the reference's drawing threshold), joined by COCO's
# skeleton (`draw_predictions`, as `hrnet-edu predict` draws; with the flip test):

# %%
draw_predictions(photo, [(kp_flip, conf_flip)], spec, boxes=[BOX], threshold=0.2)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8 · What happened, measured
#
# The committed network has only ever seen SynthPose's drawn figures (see one below): flat-coloured
# limbs on generated backgrounds, whole bodies, no faces, no cloth, no photographs. Three measures
# of what it did on a real person:
#
# 1. **Where**: the distance from each predicted joint to where it is on the photo. For this notebook
#    the seven joints one can see were marked by eye (`MARKED`, good to about ±15 px; the ears are
#    under the hair), and the distances are given in pixels and in eye distances.
# 2. **How sure**: the heatmap peaks (confidences) of those seven joints, against the same peaks for
#    the labelled, visible joints of 64 SynthPose validation persons (their ground-truth boxes, the
#    same steps, `CocoKeypoints`) — all without the flip test.
# 3. **What is not there**: the confidences of the ten joints that are outside this portrait
#    (elbows, wrists, hips, knees, ankles).

# %%
MARKED = {"nose": (262, 250), "left_eye": (305, 197), "right_eye": (222, 200), "left_ear": (362, 232),
          "right_ear": (165, 235), "left_shoulder": (440, 400), "right_shoulder": (75, 420)}  # by eye
marked = np.array([MARKED[spec.names[k]] for k in SEEN], dtype=np.float64)  # (7, 2)
eye_distance = np.linalg.norm(marked[1] - marked[2])


def distances(kp):  # (K, 2) prediction → (7,) px from the marked joints
    return np.linalg.norm(kp[SEEN] - marked, axis=1)


error = distances(keypoints)
print(f"{'joint':15} {'error px':>9} {'eye distances':>14}")
for k, e in zip(SEEN, error):
    print(f"{spec.names[k]:15} {e:9.0f} {e / eye_distance:14.1f}")
print(f"median: {np.median(error):.0f} px = {np.median(error) / eye_distance:.1f} eye distances "
      f"({eye_distance:.0f} px)")

# %%
val = CocoKeypoints(cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images), codec=codec, spec=spec,
                    train=False, augment=None)
samples = [val[i] for i in range(64)]
with torch.no_grad():
    val_heatmaps = model(torch.stack([s["image"] for s in samples]))  # (64, 17, 32, 24)
val_peaks = val_heatmaps.amax(dim=(2, 3))  # (64, 17) confidences
val_visible = torch.stack([s["joints"][:, 2] for s in samples]) > 0  # (64, 17) labelled, visible
val_conf = val_peaks[val_visible].numpy()
photo_conf = conf[SEEN]
absent = [k for k in range(len(spec.names)) if k not in SEEN]  # not in the portrait
rows = [("photo: the 7 joints one can see", photo_conf), ("photo: the 10 joints not in it", conf[absent]),
        (f"SynthPose val: {len(val_conf)} visible joints", val_conf)]
print(f"{'confidence':36} {'median':>7} {'above 0.2':>10}")
for name, c in rows:
    print(f"{name:36} {np.median(c):7.2f} {np.mean(c > 0.2):10.0%}")

# %%
print(f"the photo's visible joints: median confidence {np.median(val_conf) / np.median(photo_conf):.1f} "
      "times lower than SynthPose's")
print("joints that are not in the photo, drawn anyway (confidence above 0.2):",
      [spec.names[k] for k in absent if conf[k] > 0.2])
print("every visible joint more than one eye distance from where it is:", bool((error > eye_distance).all()))

# %%
j = 0  # a SynthPose validation person through the same chain
val_kp, val_c = codec.decode(val_heatmaps[j:j + 1])
fig = Figure(figsize=(7.2, 4.0), layout="constrained")
axes = fig.subplots(1, 3, width_ratios=[1, 1, 1])
for ax, image, kps, c, title in ((axes[0], denormalize(samples[j]["image"]), val_kp[0] * 4, val_c[0],
                                  "SynthPose val crop"),
                                 (axes[1], crop_u8, coords_hm[0] * 4, torch.from_numpy(conf), "the photo's crop")):
    ax.imshow(image)
    viz.draw_pose(ax, kps.numpy(), (c > 0.2).numpy(), radius=2, linewidth=1.5, spec=spec)
    ax.set_title(f"{title}\n{int((c > 0.2).sum())} of 17 joints above 0.2", fontsize=9)
    ax.set_axis_off()
axes[2].hist(val_conf, bins=20, range=(0, 1), alpha=0.6, density=True, label="SynthPose val, visible")
axes[2].hist(photo_conf, bins=20, range=(0, 1), alpha=0.6, density=True, label="photo, 7 visible")
axes[2].set_xlabel("heatmap peak (confidence)", fontsize=9)
axes[2].legend(fontsize=7)
axes[2].set_title("confidences", fontsize=9)
fig

# %% [markdown]
# What the numbers say: on its own kind of image the network's peaks are close to the targets' 1; on
# the photograph they are lower, it draws a whole small figure — arms, hips, knees and ankles that
# are not in the picture — into the head and chest, and the joints one can see are far from where
# they are. Nothing in its training data looks like a face, a uniform or a photograph, and every
# SynthPose figure has a whole body, so it finds one. A network is bounded by its training data: the
# same architecture trained on COCO's real photographs (the published weights, next section) is
# what the paper measures. HRNet's design is the subject of this course; SynthPose is what lets the
# whole course run, and train, on a laptop's CPU.
#
# ## 9 · The published HRNet-W32 on the same photo (when it is in the cache) (deeper)
#
# `hrnet-edu weights get hrnet_w32_coco_256x192` downloads mmpose's published COCO
# HRNet-W32 (256×192) once into the cache; when it is there, the cells below run the same chain with
# it. Offline (and in the tests) they print one line. Their outputs are not compared by the
# notebook tests, since they depend on what the cache holds.

# %% tags=["nbval-ignore-output"]
w32_path = cached(W32_NAME)
if w32_path is None:
    print(f"{W32_NAME} is not in the cache (hrnet-edu weights get {W32_NAME}): section 9 skipped")
else:
    w32, w32_cfg = load_checkpoint(w32_path)
    kp32, conf32 = predict_image(w32, photo, BOX, w32_cfg.codec, w32_cfg.spec)
    print(f"{'joint':15} {'confidence W16 / W32':>21} {'error px W16 / W32':>19}  (flip test)")
    for k, e16, e32 in zip(SEEN, distances(kp_flip), distances(kp32)):
        print(f"{spec.names[k]:15} {conf_flip[k]:10.2f} / {conf32[k]:.2f} {e16:11.0f} / {e32:.0f}")
    display(draw_predictions(photo, [(kp32, conf32)], w32_cfg.spec, boxes=[BOX], threshold=0.2))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 10 · The map of the course
#
# | step | here | explained in |
# |---|---|---|
# | the box | `BOX` by hand; a detector (`detect.detect_persons`) | 06 (COCO boxes → crops), 08 (ground-truth vs detected boxes) |
# | the crop | `box_to_center_scale`, `crop_transform`, `warp_image`, `normalize` | 06 (the affine warp, augmentation) |
# | the network | `HRNet`: parallel branches, exchange units | 03 (branches), 04 (multi-scale fusion), 05 (the whole network), 09 (inside it) |
# | the heatmaps | (1, 17, 32, 24), Gaussian targets | 01 (targets, σ), 07 (the loss and training) |
# | the keypoints | the codec (`cfg.codec.decode`), `heatmap_to_image`, the flip test | 01 (decoding), 08 (flip test, back to the image) |
# | the skeleton | `draw_predictions`, the keypoint spec | 10 (another keypoint set) |
# | how good it is | confidences here; OKS and AP on a dataset | 02 (OKS, AP), 08 (evaluation) |
#
# ## Recap
#
# - Top-down pose estimation is a chain: box → crop (an affine warp to the input size) → network →
#   one heatmap per joint → peaks → keypoints mapped back to the photo → skeleton.
# - The network never outputs coordinates: it outputs heatmaps, and a peak's height is the joint's
#   confidence.
# - A network trained only on drawn figures is unsure on a photograph (measured in section 8): what it
#   learns is bounded by its training data.

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **Move the box** (easy, 2 min). Shrink `BOX` to the face only, e.g. `[150, 20, 230, 300]`, and
#    rerun sections 3–7. What does the crop show now, and what happens to the shoulders' confidences?
# 2. **The flip test** (easy, 2 min). Compare `conf` (no flip test) with `conf_flip`: which joints
#    gain, which lose? Notebook 08 explains the one-column shift inside it.
# 3. **Turn the photo** (medium, 5 min). Run the chain on `np.rot90(photo)` with the box turned to
#    match. Does the network still find the face? Notebook 06 shows the rotations used in training.
