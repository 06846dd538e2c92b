"""One candidate detector over the photo set, in a process of its own (its memory is its own):
`python -m tools.objbench.runner --bundle FOLDER --set DIR --out JSON`.

The bundle is loaded alone with LocalAccelerator (warmed up at its input shape, as the service's
worker does) and run through Engine.infer, as a request would be: its detections at the bundle's
own score threshold, and the wall time of each call. Each photo is also decoded once more at a low
score floor (the same model object with PostProcess.score_thresh lowered, an extra accelerator
run that is not timed), so the report can show what other thresholds would give.
"""
import argparse
import copy
import json
import os
import time

import cv2

from edgeapp import models
from edgeapp.accelerator import LocalAccelerator
from edgeapp.bundle import Bundle
from edgeapp.engine import Engine
from tools.ocrbench.runner import peak_rss_mb

FLOOR = 0.05


def load_bundle(folder, score_thresh=None):
    """The built bundle in folder; with score_thresh, a copy whose PostProcess uses it."""
    with open(os.path.join(folder, "bundle.json"), encoding="utf-8") as f:
        spec = json.load(f)
    if score_thresh is not None:
        spec = copy.deepcopy(spec)
        spec.setdefault("PostProcess", {})["score_thresh"] = score_thresh
    return Bundle(folder, spec)


def detections(results):
    """Engine results -> [{"label", "score", "box": [x1, y1, x2, y2]}] (rounded for JSON)."""
    out = []
    for r in results:
        loc = r["location"]
        box = [loc["left"], loc["top"], loc["left"] + loc["width"], loc["top"] + loc["height"]]
        out.append({"label": r["label"], "score": round(float(r["score"]), 4),
                    "box": [round(float(v), 1) for v in box]})
    return out


def about(bundle, status):
    return {"name": bundle.name, "id": bundle.id, "type": bundle.type, "input_shape": bundle.input_shape,
            "score_thresh": float(bundle.post.get("score_thresh", 0.5)), "classes": len(bundle.labels),
            "description": bundle.description, "built": bundle.spec.get("built", {}),
            "memory_mb": status.get("memory_mb"), "warmup_ms": status.get("warmup_ms")}


def run(folder, set_dir, floor=FLOOR):
    """The candidate's results over the set: {"bundle", "photos": [{"id", "ms", "found", "found_floor"}],
    "floor", "loaded_peak_rss_mb", "peak_rss_mb", "accelerator_ms"} or {"bundle", "error"}."""
    bundle = load_bundle(folder)
    accel = LocalAccelerator({bundle.id: bundle}, warm=True)
    status = accel.model_status().get(bundle.id, {})
    result = {"bundle": about(bundle, status), "floor": floor, "loaded_peak_rss_mb": peak_rss_mb()}
    if not status.get("ready"):
        result["error"] = status.get("reason") or "not loaded"
        return result
    engine = Engine({bundle.id: bundle}, accel)
    low = models.build(load_bundle(folder, floor), {})
    with open(os.path.join(set_dir, "index.json"), encoding="utf-8") as f:
        photos = json.load(f)["images"]
    images = [cv2.imread(os.path.join(set_dir, p["file"]), cv2.IMREAD_COLOR) for p in photos]
    engine.infer(bundle.id, images[0])  # first-run allocations are not a per-photo cost
    result["photos"] = []
    for p, img in zip(photos, images):
        t0 = time.perf_counter()
        found = engine.infer(bundle.id, img)["result"]
        ms = (time.perf_counter() - t0) * 1000.0
        result["photos"].append({"id": p["id"], "ms": round(ms, 1), "found": detections(found),
                                 "found_floor": detections(low.infer(img, accel))})
    result["peak_rss_mb"] = peak_rss_mb()
    result["accelerator_ms"] = accel.model_timing().get(bundle.id, {}).get("accelerator_ms")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description="one detector bundle over the object benchmark's photo set")
    p.add_argument("--bundle", required=True, help="a built bundle folder (bundle.json + model.nb)")
    p.add_argument("--set", required=True, help="the photo set folder (index.json and images/)")
    p.add_argument("--out", required=True, help="JSON file for the results")
    p.add_argument("--floor", type=float, default=FLOOR, help="the low score floor (default %(default)s)")
    args = p.parse_args(argv)
    result = run(args.bundle, args.set, args.floor)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
