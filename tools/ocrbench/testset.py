"""The benchmark's test set on disk: tools/ocrset.py's images as PNG (lossless: the photographed
pages keep their JPEG artefacts exactly) and index.json with the ground truth."""
import json
import os

import cv2

from tools import ocrset

QUICK_PAGES = ("page en", "turned 90")


def write_set(folder, seed=0, quick=False):
    """Generate the set into folder (replacing what was there); returns the index:
    {"seed", "pages": [{"file", "group", "truth": [{"text", "quad"}]}], "lines": [{"file", "group", "text"}]}.
    quick: one line per group and QUICK_PAGES only (for the tests)."""
    for sub in ("pages", "lines"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
        for name in os.listdir(os.path.join(folder, sub)):
            os.remove(os.path.join(folder, sub, name))
    lines = ocrset.line_set(seed, per_group=1 if quick else ocrset.LINES_PER_GROUP)
    pages = ocrset.page_set(seed, groups=QUICK_PAGES if quick else ocrset.PAGE_GROUPS)
    if quick:
        pages = pages[:1] + [p for p in pages if p[0] != pages[0][0]][:1]
    index = {"seed": seed, "quick": quick, "pages": [], "lines": []}
    for i, (group, img, truth) in enumerate(pages):
        name = "pages/%03d.png" % i
        cv2.imwrite(os.path.join(folder, name), img)
        index["pages"].append({"file": name, "group": group, "size": [img.shape[1], img.shape[0]],
                               "truth": [{"text": t, "quad": q.round(1).tolist()} for t, q in truth]})
    for i, (group, img, text) in enumerate(lines):
        name = "lines/%03d.png" % i
        cv2.imwrite(os.path.join(folder, name), img)
        index["lines"].append({"file": name, "group": group, "text": text,
                               "size": [img.shape[1], img.shape[0]]})
    with open(os.path.join(folder, "index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, ensure_ascii=False)
    return index
