"""The loop both readers share: every image of the set read once, timed, into one JSON file.

Runs in either venv (edgeapp's .venv or the tool venv): stdlib, numpy and OpenCV only.
A reader is two functions: read_page(image) -> [{"text", "quad", "score"}] and
read_line(image) -> (text, score). The first page is read once untimed before the timed pass
(first-run allocations are not a per-page cost).
"""
import argparse
import json
import os
import resource
import time

import cv2


def peak_rss_mb():
    """This process's peak resident set so far: VmHWM. (getrusage's ru_maxrss is kept across
    execve, so a reader started by a big parent would report the parent's peak.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--set", required=True, help="the test set folder (index.json and its images)")
    p.add_argument("--out", required=True, help="JSON file for the results")
    return p


def _image(set_dir, item):
    img = cv2.imread(os.path.join(set_dir, item["file"]), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit("cannot read %s" % item["file"])
    return img


def _timed(fn, img):
    t0 = time.perf_counter()
    got = fn(img)
    return got, round((time.perf_counter() - t0) * 1000.0, 1)


def run(set_dir, out_path, read_page, read_line, about=None):
    """Read every page, then every line of set_dir; write {"pages", "lines", RSS figures, about()}."""
    with open(os.path.join(set_dir, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    result = {"loaded_peak_rss_mb": peak_rss_mb()}
    if index["pages"]:
        read_page(_image(set_dir, index["pages"][0]))
    pages = []
    for item in index["pages"]:
        found, ms = _timed(read_page, _image(set_dir, item))
        pages.append({"lines": found, "ms": ms})
    result.update(pages=pages, pages_peak_rss_mb=peak_rss_mb())
    lines = []
    for item in index["lines"]:
        (text, score), ms = _timed(read_line, _image(set_dir, item))
        lines.append({"text": text, "score": round(float(score), 4), "ms": ms})
    result.update(lines=lines, lines_peak_rss_mb=peak_rss_mb())
    result.update(about() if about else {})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)


def quad_list(points):
    """A quad as [[x, y]] * 4 of plain floats (JSON)."""
    return [[round(float(x), 1), round(float(y), 1)] for x, y in points]
