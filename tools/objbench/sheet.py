"""A contact sheet of the set: every photo with its hand-written boxes (green; difficult ones grey)
and, when given, each candidate's detections (one colour per candidate), for checking the labels
and the results by eye. A PNG under build/, never in git."""
import os

import cv2
import numpy as np

TILE = 480  # the longer side of a photo on the sheet
TRUTH, DIFFICULT = (0, 200, 0), (160, 160, 160)
CANDIDATE_COLOURS = ((0, 0, 255), (255, 0, 0), (0, 165, 255), (255, 0, 255))


def _box(img, box, colour, text, scale, thick=2):
    x1, y1, x2, y2 = [int(round(v * scale)) for v in box]
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick)
    cv2.putText(img, text, (x1 + 3, max(12, y1 + 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)


def tile(photo, objects, found_by, names):
    """One photo scaled to TILE, truth and detections drawn, its id and the legend under it."""
    h, w = photo.shape[:2]
    scale = TILE / float(max(h, w))
    img = cv2.resize(photo, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    for o in objects:
        _box(img, o["box"], DIFFICULT if o.get("difficult") else TRUTH, o["label"], scale)
    for n, name in enumerate(names):
        for d in found_by.get(name, []):
            _box(img, d["box"], CANDIDATE_COLOURS[n % len(CANDIDATE_COLOURS)], "%s %.2f" % (d["label"], d["score"]),
                 scale, 1)
    canvas = np.full((TILE + 24, TILE, 3), 255, np.uint8)
    canvas[:img.shape[0], :img.shape[1]] = img
    return canvas


def write(path, set_dir, index, results=None, columns=3):
    """The sheet of every photo of index (results: {name: runner JSON}) as one PNG at path."""
    results = results or {}
    names = [n for n, r in results.items() if "photos" in r]
    found = {n: {p["id"]: p["found"] for p in results[n]["photos"]} for n in names}
    tiles = []
    for img in index["images"]:
        photo = cv2.imread(os.path.join(set_dir, img["file"]), cv2.IMREAD_COLOR)
        t = tile(photo, img["objects"], {n: found[n].get(img["id"], []) for n in names}, names)
        cv2.putText(t, img["id"], (4, TILE + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(t)
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    legend = np.full((28, rows[0].shape[1], 3), 255, np.uint8)
    x = 4
    for text, colour in [("truth", TRUTH), ("difficult", DIFFICULT)] + \
            [(n, CANDIDATE_COLOURS[i % len(CANDIDATE_COLOURS)]) for i, n in enumerate(names)]:
        cv2.putText(legend, text, (x, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2, cv2.LINE_AA)
        x += 16 + 12 * len(text)
    cv2.imwrite(path, np.vstack([legend] + rows))
    return path
