"""Draw results on a copy of the image (boxes or polygons, label, score) and encode it as JPEG."""
import cv2
import numpy as np

_COLOURS = [(0, 200, 0), (0, 128, 255), (255, 64, 64), (200, 0, 200), (0, 200, 200), (255, 200, 0)]


def draw(image, results):
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(1, int(round(max(h, w) / 500.0)))
    font = 0.4 + max(h, w) / 2000.0
    for r in results:
        colour = _COLOURS[r["index"] % len(_COLOURS)]
        loc = r["location"]
        x, y = int(round(loc["left"])), int(round(loc["top"]))
        points = r.get("extended", {}).get("points")
        if points:
            cv2.polylines(out, [np.asarray(points, dtype=np.int32)], True, colour, thick)
        else:
            cv2.rectangle(out, (x, y), (int(round(x + loc["width"])), int(round(y + loc["height"]))), colour, thick)
        caption = "%s %.2f" % (_ascii(r["label"]), r["score"])
        (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        ty = y - 2 if y - th - base - 2 >= 0 else y + th + 2
        cv2.rectangle(out, (x, ty - th - base), (x + tw, ty + base), colour, -1)
        cv2.putText(out, caption, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def to_jpeg(image, quality=85):
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _ascii(text):
    # OpenCV's Hershey fonts have ASCII only; the exact text is in the JSON result.
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
