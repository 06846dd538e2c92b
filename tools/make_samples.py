#!/usr/bin/env python3
"""Draw the selftest sample images of the bundled models (models/<name>/sample.png).

    .venv/bin/python tools/make_samples.py

Our own images, drawn with OpenCV's Hershey font, grey-scale PNGs of a few KB. Each bundle.json
names its sample and the result expected from it ("sample": {"image": ..., "expect": [...]});
`edgeapp-diag selftest` runs them on the board. Run this again only to change a sample, then
check the expectations with `edgeapp-diag selftest` (or tests/test_diag.py).
"""
from pathlib import Path

import cv2
import numpy as np

MODELS = Path(__file__).resolve().parent.parent / "models"
FONT = cv2.FONT_HERSHEY_SIMPLEX


def page(lines, size, scale=1.6, thickness=3):
    img = np.full(size, 255, np.uint8)
    for text, org in lines:
        cv2.putText(img, text, org, FONT, scale, 0, thickness, cv2.LINE_AA)
    return img


def text_line(text, scale=1.4, thickness=3, pad=16):
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    img = np.full((h + base + 2 * pad, w + 2 * pad), 255, np.uint8)
    cv2.putText(img, text, (pad, pad + h), FONT, scale, 0, thickness, cv2.LINE_AA)
    return img


def save(name, img):
    path = MODELS / name / "sample.png"
    cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print("%s: %dx%d, %d bytes" % (path.relative_to(MODELS.parent), img.shape[1], img.shape[0], path.stat().st_size))


def main():
    # Detector: two separate lines of text -> two "text" regions.
    save("ppocr-det", page([("EDGEBOARD", (40, 110)), ("PADDLE LITE", (40, 250))], (360, 480)))
    # Direction: a line turned upside down -> "180" (the less likely answer, so a broken model shows).
    save("text-direction", cv2.rotate(text_line("SELF TEST 42"), cv2.ROTATE_180))
    # OCR pipeline: one line read back exactly.
    save("ppocr", page([("HELLO 123", (40, 120))], (220, 480)))


if __name__ == "__main__":
    main()
