"""The set's faces through edgeapp's face recognition (Engine + LocalAccelerator, only the
face_rec bundle and its detector, warmed up), once per crop scale.

Each photo goes through model.faces(image, accel): the detector's faces, each levelled by its
eyes, cropped crop_scale times its box and embedded. A found face is the person people.json names
when it overlaps that face's rough box (score.name_faces); a labelled face nobody found is
"missed", a found face no label names is counted as "unlabelled".
"""
import time

from edgeapp.accelerator import LocalAccelerator
from edgeapp.bundle import load_bundles
from edgeapp.engine import Engine
from tools.facebench import score


def recognition_bundles(model_dir, mid):
    """The face_rec bundle mid and the detector its PostProcess names, by id."""
    every = load_bundles(model_dir)
    if mid not in every:
        raise SystemExit("no model %d in %s" % (mid, model_dir))
    ids = {mid}
    detector = every[mid].post.get("detector")
    if detector is not None and int(detector) in every:
        ids.add(int(detector))
    return {i: every[i] for i in ids}


def about_model(bundles, mid, model):
    """What the report says about the model: names, package and version, the bundle's settings."""
    b = bundles[mid]
    built, source = b.spec.get("built", {}), b.spec.get("source", {})
    return {"mid": mid, "name": b.name, "package": source.get("package", "?"), "version": built.get("version", "?"),
            "model_file": source.get("model_file", "?"), "detector": model.detector.bundle.id,
            "detector_name": model.detector.bundle.name, "crop_scale": model.crop_scale,
            "threshold": model.threshold, "min_face_px": model.min_face_px}


def one_scale(model, accel, data, photos, scale):
    """{"faces": [{"image", "shot", "person", "box", "score", "vector"}], "missed": [{"image",
    "person"}], "unlabelled": n, "ms": {image: ms}} for every photo at one crop scale."""
    model.crop_scale = scale
    out = {"faces": [], "missed": [], "unlabelled": 0, "ms": {}}
    for img in data["images"]:
        t0 = time.perf_counter()
        found = model.faces(photos[img["id"]], accel)
        out["ms"][img["id"]] = round((time.perf_counter() - t0) * 1000.0, 1)
        named = dict(score.name_faces([f.box for f in found], img["faces"]))
        out["unlabelled"] += len(found) - len(named)
        for li, face in enumerate(img["faces"]):
            if li not in named:
                out["missed"].append({"image": img["id"], "person": face["person"]})
                continue
            f = found[named[li]]
            out["faces"].append({"image": img["id"], "shot": img["shot"], "person": face["person"],
                                 "box": [int(round(v)) for v in f.box], "score": round(float(f.score), 4),
                                 "vector": f.vector})
    return out


def run(data, photos, model_dir, mid, scales, log=print):
    """{"model": about_model, "scales": {scale: one_scale}}; the bundle's own crop scale is
    restored on the model at the end."""
    bundles = recognition_bundles(model_dir, mid)
    accel = LocalAccelerator(bundles, warm=True)
    model = Engine(bundles, accel).model(mid)
    about = about_model(bundles, mid, model)
    first = data["images"][0]["id"]
    model.faces(photos[first], accel)  # first-run allocations are not a per-photo cost
    result = {"model": about, "scales": {}}
    for scale in scales:
        log("facebench: crop scale %.2f ..." % scale)
        result["scales"][scale] = one_scale(model, accel, data, photos, scale)
    model.crop_scale = about["crop_scale"]
    return result
