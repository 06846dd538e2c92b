"""The benchmark's photo set: real photos taken out of pinned packages, with boxes written by hand.

labels.json (beside this file) names each photo's package (pinned with its sha256 in
models/sources.json), the file inside it, its licence and its objects: COCO class name and box
x1, y1, x2, y2 in the photo's pixels; `"difficult": true` marks an object too small, cut off or
ambiguous to count either way. "left_out" records photos considered and not used, and why.
The packages are downloaded once into the cache and their sha256 checked (tools/packagefiles.py);
nothing of them is kept in the repository.
"""
import json
import os
from pathlib import Path

import cv2

from tools import build_models
from tools.objbench.classes import COCO_NAMES
from tools.packagefiles import CACHE, REPO, fetch_packages, load_checked, read_photo

LABELS = Path(__file__).resolve().with_name("labels.json")


def load(path=LABELS):
    """labels.json, checked (ValueError naming every problem)."""
    return load_checked(path, check)


def check(data):
    """What is wrong with labels.json's images: unknown class names, boxes out of order or out of
    the photo, ids used twice, missing fields. [] when nothing is."""
    problems, seen = [], set()
    for img in data.get("images", []):
        name = img.get("id", "?")
        for key in ("id", "package", "member", "size", "licence", "objects"):
            if key not in img:
                problems.append("%s: no %r" % (name, key))
        if name in seen:
            problems.append("%s: id used twice" % name)
        seen.add(name)
        w, h = img.get("size", (0, 0))
        for obj in img.get("objects", []):
            problems += ["%s: %s" % (name, p) for p in _object_problems(obj, w, h)]
    return problems


def _object_problems(obj, w, h):
    out = []
    if obj.get("label") not in COCO_NAMES:
        out.append("%r is not a COCO class name" % obj.get("label"))
    box = obj.get("box", ())
    if len(box) != 4:
        return out + ["box %r is not x1, y1, x2, y2" % (box,)]
    x1, y1, x2, y2 = box
    if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
        out.append("box %r is out of order or outside the %dx%d photo" % (box, w, h))
    return out


def write_set(folder, cache=CACHE, log=print, labels=LABELS):
    """Every photo of labels.json as PNG in folder/images, and folder/index.json: {"images": [{"id",
    "file", "package", "version", "licence", "size", "objects"}], "left_out"}. Returns the index."""
    data = load(labels)
    paths = fetch_packages([img["package"] for img in data["images"]], cache, log, "labels.json")
    sources = build_models.load_sources(REPO / "models")
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    index = {"images": [], "left_out": data.get("left_out", [])}
    for img in data["images"]:
        try:
            photo = read_photo(paths[img["package"]], img, "labels.json")
        except ValueError as e:
            raise SystemExit(str(e))
        name = "images/%s.png" % img["id"]
        cv2.imwrite(os.path.join(folder, name), photo)
        entry = {k: img[k] for k in ("id", "package", "member", "licence", "size", "objects")}
        entry.update(file=name, version=sources[img["package"]]["version"])
        index["images"].append(entry)
    with open(os.path.join(folder, "index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, ensure_ascii=False, indent=1)
    return index
