"""Test images made by the tests themselves: text rendered with OpenCV at known places."""
import struct
import zlib

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX


def text_box(text, org, scale, thickness):
    """The pixel box (left, top, right, bottom) that cv2.putText fills for this text."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = org
    return (x, y - h, x + w, y + base)


def page(lines, size=(480, 800), scale=1.6, thickness=3):
    """White page with black text lines: lines = [(text, (x, baseline_y)), ...].

    Returns (image, [known boxes]).
    """
    img = np.full(size + (3,), 255, np.uint8)
    boxes = []
    for text, org in lines:
        cv2.putText(img, text, org, FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)
        boxes.append(text_box(text, org, scale, thickness))
    return img, boxes


def text_line(text, scale=1.4, thickness=3, pad=16):
    """A single tight text line, as a detector crop would look."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    img = np.full((h + base + 2 * pad, w + 2 * pad, 3), 255, np.uint8)
    cv2.putText(img, text, (pad, pad + h), FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return img


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / float(union) if union else 0.0


def loc_box(result):
    """(left, top, right, bottom) of an EdgeBoard result's location."""
    loc = result["location"]
    return (loc["left"], loc["top"], loc["left"] + loc["width"], loc["top"] + loc["height"])


def encode(image, ext=".png"):
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def png_header(width, height):
    """A tiny PNG whose header declares width x height: a decompression bomb's front page."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF) + b"\0" * 64)
