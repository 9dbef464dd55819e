"""Published HRNet weights by name: a small catalogue, a cache folder, verified downloads.

Two kinds of files are listed (``CATALOGUE``):

* ``coco-topdown`` — mmpose's top-down COCO models, HRNet-W32 and W48 at 256×192 and 384×288
  (``configs/body_2d_keypoint/topdown_heatmap/coco/hrnet_coco.md`` in mmpose; AP on COCO val2017
  with the paper's person detector of AP 56.4 and the flip test, as mmpose publishes it). They load
  strictly into our network after ``checkpoints.published_state_dict`` renames their keys.
* ``imagenet-backbone`` — the ImageNet-classification HRNets that mmpose's COCO configs start from
  (``pretrain_models/hrnet_w32-36af842e.pth``): the starting point of the paper's training (its
  Table 1: W32 256×192, AP 73.4 from scratch, 74.4 from ImageNet), used by ``TrainConfig.pretrained``
  through ``checkpoints.load_pretrained_backbone``.

mmpose names its files ``NAME-1234abcd_DATE.pth`` (or ``NAME-1234abcd.pth``): the 8 hex digits are
the start of the file's sha256. ``get`` checks them after every download — also for a URL given
directly — and refuses (deletes) a file that does not match. Nothing is downloaded unless ``get``
is called; ``cached`` only looks.

Where files go: ``cache_dir()`` (``$HRNET_EDU_CACHE``; else ``~/.cache/hrnet-edu``, or
``%LOCALAPPDATA%\\hrnet-edu`` on Windows). Where they come from: ``base_url()``
(``$HRNET_EDU_WEIGHTS_URL`` replaces mmpose's download server: a mirror, or the tests' local server).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass

from hrnet_edu.errors import InputError

BASE_URL = "https://download.openmmlab.com/mmpose/"
_COCO = "v1/body_2d_keypoint/topdown_heatmap/coco/"
# mmpose's convention: NAME-<first 8 hex digits of the sha256>[_DATE].pth
_SHA_IN_NAME = re.compile(r"^(?P<stem>.+)-(?P<sha>[0-9a-f]{8})(?:_\d{8})?\.pth$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Weights:
    """One published file.

    Attributes:
        name: our name for it (``hrnet-edu weights get NAME``).
        path: where it lies below the base URL; the file name is its last part.
        sha256_prefix: the 8 hex digits in the file name, the start of its sha256.
        kind: "coco-topdown" (a whole pose network) or "imagenet-backbone" (a classification network
            whose stem, stage 1, transitions and stages 2–4 initialize ours).
        width: C, 32 or 48.
        input_size: (H, W) the pose network was trained on; None for a backbone.
        ap: COCO val2017 AP as published (detected boxes, flip test); None for a backbone.
        size: bytes, where known.
    """

    name: str
    path: str
    sha256_prefix: str
    kind: str
    width: int
    input_size: tuple[int, int] | None = None
    ap: float | None = None
    size: int | None = None

    @property
    def file(self) -> str:
        return self.path.rsplit("/", 1)[-1]


CATALOGUE = (
    Weights("hrnet_w32_coco_256x192", _COCO + "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth",
            "81c58e40", "coco-topdown", 32, (256, 192), 0.749),
    Weights("hrnet_w32_coco_384x288", _COCO + "td-hm_hrnet-w32_8xb64-210e_coco-384x288-ca5956af_20220909.pth",
            "ca5956af", "coco-topdown", 32, (384, 288), 0.761),
    Weights("hrnet_w48_coco_256x192", _COCO + "td-hm_hrnet-w48_8xb32-210e_coco-256x192-0e67c616_20220913.pth",
            "0e67c616", "coco-topdown", 48, (256, 192), 0.756),
    Weights("hrnet_w48_coco_384x288", _COCO + "td-hm_hrnet-w48_8xb32-210e_coco-384x288-c161b7de_20220915.pth",
            "c161b7de", "coco-topdown", 48, (384, 288), 0.767),
    Weights("hrnet_w32_imagenet", "pretrain_models/hrnet_w32-36af842e.pth", "36af842e", "imagenet-backbone",
            32),
    Weights("hrnet_w48_imagenet", "pretrain_models/hrnet_w48-8ef0771d.pth", "8ef0771d", "imagenet-backbone",
            48),
)


def catalogue() -> tuple[Weights, ...]:
    """Every published file we know, in the order ``hrnet-edu weights list`` shows them."""
    return CATALOGUE


def entry(name: str) -> Weights:
    """The catalogue entry called ``name``; InputError listing the names otherwise."""
    for w in CATALOGUE:
        if w.name == name:
            return w
    raise InputError(f"unknown weights {name!r}; known: {', '.join(w.name for w in CATALOGUE)} "
                     "(or give a URL or a file path)")


def cache_dir() -> str:
    """Where downloads go: ``$HRNET_EDU_CACHE``, else the user's cache folder + ``hrnet-edu``."""
    if os.environ.get("HRNET_EDU_CACHE"):
        return os.environ["HRNET_EDU_CACHE"]
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return os.path.join(os.environ["LOCALAPPDATA"], "hrnet-edu")
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "hrnet-edu")


def base_url() -> str:
    """The server the catalogue's paths are relative to: ``$HRNET_EDU_WEIGHTS_URL`` or mmpose's."""
    url = os.environ.get("HRNET_EDU_WEIGHTS_URL") or BASE_URL
    return url if url.endswith("/") else url + "/"


def sha256_prefix_of_name(file_name: str) -> str | None:
    """The 8 hex digits of mmpose's ``NAME-1234abcd_DATE.pth`` / ``NAME-1234abcd.pth``, else None."""
    match = _SHA_IN_NAME.match(os.path.basename(file_name))
    return match["sha"] if match else None


def _source(name_or_url: str) -> tuple[str, str, str | None]:
    """(URL, file name in the cache, expected sha256 prefix or None) of a catalogue name or a URL."""
    if "://" in name_or_url:
        file = os.path.basename(urllib.parse.urlparse(name_or_url).path)
        if not file:
            raise InputError(f"{name_or_url}: the URL does not end in a file name")
        return name_or_url, file, sha256_prefix_of_name(file)
    w = entry(name_or_url)
    return base_url() + w.path, w.file, w.sha256_prefix


def cached(name: str) -> str | None:
    """The cached file of a catalogue name or URL; None when not downloaded (this never downloads)."""
    try:
        _, file, _ = _source(name)
    except InputError:
        return None
    path = os.path.join(cache_dir(), file)
    return path if os.path.isfile(path) else None


def get(name_or_url: str, progress: bool = True) -> str:
    """The local path of a catalogue name or URL, downloaded into ``cache_dir()`` if not there yet.

    The download goes to ``FILE.part``; a ``.part`` left by an interrupted download is resumed with
    an HTTP Range request (also within one call: up to 3 tries), and the file gets its final name
    only once complete and verified. A file name that carries mmpose's sha256 prefix is checked
    against it: a mismatch deletes the file and raises InputError naming the file, the expected and
    the actual prefix. Without a prefix a warning says the file was not verified.
    """
    url, file, expected = _source(name_or_url)
    path = os.path.join(cache_dir(), file)
    if os.path.isfile(path):
        return path
    os.makedirs(cache_dir(), exist_ok=True)
    part = path + ".part"
    for attempt in range(3):
        try:
            if _download(url, part, progress):
                break
        except (urllib.error.URLError, OSError) as err:
            if isinstance(err, urllib.error.HTTPError) or attempt == 2:
                reason = getattr(err, "reason", None) or err
                raise InputError(f"could not download {file} from {url} ({reason}); put the file at {path} "
                                 "or set HRNET_EDU_WEIGHTS_URL to a mirror") from None
    else:
        raise InputError(f"download of {file} from {url} was cut off 3 times; run the command again to "
                         "resume it")
    actual = sha256_file(part)
    if expected is None:
        warnings.warn(f"{file}: its name carries no sha256 prefix, so the download was not verified",
                      stacklevel=2)
    elif not actual.startswith(expected):
        os.remove(part)
        raise InputError(f"{file}: sha256 starts with {actual[:8]}, expected {expected} (from its name); "
                         "the download was deleted")
    os.replace(part, path)
    return path


def _download(url: str, part: str, progress: bool) -> bool:
    """Append ``url``'s bytes to ``part`` from where it stops; True once the whole file is there."""
    from tqdm.auto import tqdm

    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the range starts at or past the end: start afresh
            os.remove(part)
            return False
        raise
    with response:
        resumed = response.status == 206  # a server without Range support answers 200: the whole file
        length = response.headers.get("Content-Length")
        total = int(length) + (have if resumed else 0) if length is not None else None
        done = have if resumed else 0
        with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=done, unit="B", unit_scale=True, desc=os.path.basename(part)[:-5],
                disable=not progress) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.IncompleteRead):
                pass  # a dropped connection: keep what arrived, the next try resumes from there
    return total is None or done >= total


def sha256_file(path: str) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(name_or_path: str, progress: bool = True) -> str:
    """A checkpoint argument as a file path: a catalogue name or URL is fetched (``get``), a path kept."""
    text = os.fspath(name_or_path)
    if "://" in text or (not os.path.exists(text) and any(w.name == text for w in CATALOGUE)):
        return get(text, progress)
    return text


def entry_for_file(path: str) -> Weights | None:
    """The catalogue entry whose file name ``path`` carries, up to the sha256 prefix and the date.

    mmpose's name says which model a file is (``td-hm_hrnet-w32_8xb64-210e_coco-256x192``); the sha256
    prefix only which build of it. So a file named like a catalogue model (a mirror's, another
    release) is read as that model; the strict load then checks its shapes.
    """
    name = os.path.basename(path)
    match = _SHA_IN_NAME.match(name)
    stem = match["stem"] if match else os.path.splitext(name)[0]
    for w in CATALOGUE:
        if w.file == name or _SHA_IN_NAME.match(w.file)["stem"] == stem:
            return w
    return None


def published_config(entry_or_name):
    """The ``TrainConfig`` of a catalogue pose model: its width, input size and σ (mmpose's MSRAHeatmap:
    σ = 2 at 256×192, σ = 3 at 384×288, as the reference), on the COCO presets' settings."""
    from hrnet_edu import model as hrnet_model
    from hrnet_edu.configs import coco_w32_256x192

    w = entry(entry_or_name) if isinstance(entry_or_name, str) else entry_or_name
    if w.kind != "coco-topdown":
        raise InputError(f"{w.name} is an ImageNet backbone, not a pose network: use it as "
                         f"pretrained={w.name}")
    return dataclasses.replace(
        coco_w32_256x192(), name=w.name, model=hrnet_model.W32 if w.width == 32 else hrnet_model.W48,
        input_size=w.input_size, sigma=2.0 if w.input_size == (256, 192) else 3.0, pretrained=None)
