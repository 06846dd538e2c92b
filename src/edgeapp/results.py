"""Result records and the EdgeBoard JSON envelope (seed document: code, data, msg), with the
headers every JSON answer carries. Both the application (edgeapp.api) and the HTTP server's own
answers (edgeapp.httpd) build on this module, so neither imports the other."""
import json
import math

JSON_TYPE = "application/json; charset=utf-8"
# On every answer: JSON is never to be sniffed as HTML, and results (maybe behind a token) are
# not for caches.
SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")]


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


def error_bytes(err):
    """The failure envelope of an EdgeError as UTF-8 bytes."""
    return dumps(failure(err.code, err.msg)).encode("utf-8")


def retry_after_header(err):
    """err's Retry-After header value (whole seconds, at least 1), or None."""
    retry = getattr(err, "retry_after", None)
    return None if retry is None else str(max(1, int(math.ceil(retry))))
