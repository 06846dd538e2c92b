"""Result records and the EdgeBoard JSON envelope (seed document: code, data, msg)."""
import json


def result(label, index, score, left, top, width, height, extended=None):
    """One entry of data.result: location in original-image pixels, floats, as the document shows."""
    return {
        "extended": extended if extended is not None else {},
        "index": int(index),
        "label": str(label),
        "location": {
            "height": float(height),
            "left": float(left),
            "top": float(top),
            "width": float(width),
        },
        "score": float(score),
    }


def box_result(label, index, score, points, extended=None):
    """A result whose location is the axis-aligned box around a polygon (points: Nx2 pixels)."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    left, top = min(xs), min(ys)
    return result(label, index, score, left, top, max(xs) - left, max(ys) - top, extended)


def rescale(results, sx, sy):
    """Results of a scaled-down image mapped to the full image's pixels: locations, and the
    points (db_det, OCR) and keypoints (blazeface) in "extended". Changes results in place."""
    for r in results:
        loc = r["location"]
        loc["left"] *= sx
        loc["width"] *= sx
        loc["top"] *= sy
        loc["height"] *= sy
        ext = r.get("extended") or {}
        if "points" in ext:
            ext["points"] = [[round(x * sx, 2), round(y * sy, 2)] for x, y in ext["points"]]
        if "keypoints" in ext:
            ext["keypoints"] = {k: [round(x * sx, 2), round(y * sy, 2)] for k, (x, y) in ext["keypoints"].items()}
    return results


def success(data):
    return {"code": 0, "data": data, "msg": "success"}


def failure(code, msg):
    return {"code": int(code), "data": None, "msg": msg}


def dumps(envelope):
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
