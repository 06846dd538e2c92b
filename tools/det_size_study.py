#!/usr/bin/env python3
"""Which fixed input size should the text detector (ppocr-det) use? Accuracy vs memory, measured.

    .venv/bin/python tools/det_size_study.py [--sizes 480,640,800,960] [--pages 30]
        [--seed 7] [--model-dir build/models/x86] [--out build/det-size-study.md] [--save DIR]

Generates a seeded set of synthetic photo-like pages with known text-line boxes, then for each
square size S runs ppocr-det with input_shape [1,3,S,S] in its own fresh process (a Paddle Lite x86
predictor must never see two input shapes, and its memory never shrinks) and reports line recall
and precision (IoU >= 0.5), recall per text-size class, ms per accelerator run and process RSS.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

# Run as a script (tools/det_size_study.py, and its children): the checkout's root for tools.ocrset.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools import ocrset  # noqa: E402

DET_NAME = "ppocr-det"
# Photo-like page sizes users send (w, h): phone photos both ways round, webcam, small scans.
PAGE_SIZES = [(1920, 1080), (1080, 1920), (1280, 960), (4000, 3000), (3000, 4000), (800, 600)]
FONTS = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN,
         cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC]
WORDS = ("Invoice Total Amount Date Order No. Qty Price EUR 12.50 2024-03-18 Customer Street "
         "Delivery Address Phone +49 171 555 0192 Item Description Warehouse Batch Lot expiry "
         "Please keep this receipt Thank you Station Platform Exit Open daily 08:00-20:00 "
         "Serial SN-48213 Model XK-220 Voltage 230V Made in Germany warning fragile handle "
         "with care gross weight kg net tax VAT 19% subtotal change paid card cash").split()
# Size classes by cap height as a fraction of the page height (name, low, high, share of lines).
# Small text is where a smaller input hurts, so it gets the largest share; "tiny" is body text of
# an A4 page photographed whole (10 pt caps are ~0.8% of the page height). With MIN_CAP below,
# tiny lines only occur on pages at least 1667 px tall.
SIZE_CLASSES = [("tiny", 0.006, 0.010, 0.20), ("small", 0.010, 0.020, 0.35),
                ("medium", 0.020, 0.040, 0.25), ("large", 0.040, 0.080, 0.20)]
CLASS_NAMES = [c[0] for c in SIZE_CLASSES]
MIN_CAP = 10  # px in the original page


# -- synthetic pages ----------------------------------------------------------------------------
def make_page(i, seed):
    """Page i of the set: (JPEG bytes, [(box (l, t, r, b), size class)]). Deterministic per (seed, i)."""
    rng = np.random.RandomState(seed * 1000 + i)
    w, h = PAGE_SIZES[i % len(PAGE_SIZES)]
    # Smooth photo-like colour field: a tiny random image blown up.
    img = cv2.resize(rng.randint(40, 220, (4, 5, 3)).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    area = (0, 0, w, h)
    if i % 3 != 2:  # two pages in three: a sheet of paper in the photo, text on it
        x0, y0 = int(w * rng.uniform(0.02, 0.12)), int(h * rng.uniform(0.02, 0.12))
        x1, y1 = int(w * rng.uniform(0.88, 0.98)), int(h * rng.uniform(0.88, 0.98))
        cv2.rectangle(img, (x0, y0), (x1, y1), tuple(int(c) for c in rng.randint(200, 250, 3)), -1)
        area = (x0, y0, x1, y1)
    # Non-text clutter the detector should ignore.
    for _ in range(rng.randint(2, 6)):
        c = tuple(int(v) for v in rng.randint(0, 256, 3))
        cx, cy, r = rng.randint(0, w), rng.randint(0, h), int(h * rng.uniform(0.02, 0.08))
        if rng.rand() < 0.5:
            cv2.circle(img, (cx, cy), r, c, -1, cv2.LINE_AA)
        else:
            cv2.line(img, (cx - 3 * r, cy), (cx + 3 * r, cy), c, max(1, r // 10), cv2.LINE_AA)

    lines = []
    ax0, ay0, ax1, ay1 = area
    y = ay0 + int(h * rng.uniform(0.02, 0.06))
    while True:
        name, lo, hi, _ = SIZE_CLASSES[rng.choice(len(SIZE_CLASSES), p=[c[3] for c in SIZE_CLASSES])]
        # Text below MIN_CAP px is illegible in the original too: no input size could be blamed.
        lo_px, hi_px = max(h * lo, MIN_CAP), h * hi
        if lo_px >= hi_px:
            continue
        font = FONTS[rng.randint(len(FONTS))]
        scale = rng.uniform(lo_px, hi_px) / cv2.getTextSize("H", font, 1.0, 1)[0][1]
        thick = max(1, int(round(scale * rng.uniform(0.8, 2.2))))
        margin = int(w * rng.uniform(0.02, 0.2))
        words = [WORDS[k] for k in rng.randint(len(WORDS), size=rng.randint(1, 9))]
        (_, th), base = cv2.getTextSize("".join(words), font, scale, thick)
        # Words are placed one by one: Hershey's own space is about twice a printed word gap,
        # which makes the detector split lines into words far more than on real text.
        gap = int(round(th * rng.uniform(0.3, 0.5)))
        widths = [cv2.getTextSize(wd, font, scale, thick)[0][0] for wd in words]
        while len(words) > 1 and ax0 + margin + sum(widths) + gap * (len(words) - 1) > ax1 - w * 0.02:
            words.pop()
            widths.pop()
        tw = sum(widths) + gap * (len(words) - 1)
        if ax0 + margin + tw >= ax1:
            continue
        x = ax0 + margin
        pad = int(th * 0.6)
        if y + th + base + pad > ay1 - h * 0.02:
            break
        baseline = y + th
        light_bg = area != (0, 0, w, h) and rng.rand() < 0.8
        if not light_bg and rng.rand() < 0.6:  # light text on a dark panel (sign, label, screen)
            panel = tuple(int(v) for v in rng.randint(0, 70, 3))
            cv2.rectangle(img, (x - pad, y - pad), (x + tw + pad, baseline + base + pad), panel, -1)
            colour = tuple(int(v) for v in rng.randint(200, 256, 3))
        elif light_bg:
            colour = tuple(int(v) for v in rng.randint(0, 70, 3))
        else:  # straight on the photo: pick whichever of dark/light contrasts with it
            under = img[min(baseline, h - 1), min(x + tw // 2, w - 1)].mean()
            colour = (20, 20, 20) if under > 128 else (240, 240, 240)
        wx = x
        for wd, ww in zip(words, widths):
            cv2.putText(img, wd, (wx, baseline), font, scale, colour, thick, cv2.LINE_AA)
            wx += ww + gap
        lines.append(((x, y, x + tw, baseline + base), name))
        # Gap to the next line: 0.8-2 cap heights, paragraph-like to loosely spaced.
        y = baseline + base + int(th * rng.uniform(0.8, 2.0)) + pad // 2

    # Camera-ish degradations: mild blur, sensor noise, JPEG.
    if rng.rand() < 0.5:
        k = 3 if h < 2000 else 5
        img = cv2.GaussianBlur(img, (k, k), 0)
    if rng.rand() < 0.6:
        img = np.clip(img + rng.normal(0, rng.uniform(2, 8), img.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.randint(70, 95))])
    return buf.tobytes(), lines


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(gt, det, thresh=0.5):
    """Greedy one-to-one matching, best IoU first. Returns the set of matched gt indexes."""
    pairs = ((iou(g, d), gi, di) for gi, g in enumerate(gt) for di, d in enumerate(det))
    return {gi for gi, _ in ocrset.best_pairs(pairs, thresh)}


# -- one size, in its own process -------------------------------------------------------------
def child(size, args):
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles
    from edgeapp.memory import rss_bytes
    from edgeapp.models.db_det import TextDetector

    rss_base = rss_bytes()
    tmp = tempfile.mkdtemp(prefix="det%d-" % size)
    try:
        # A private bundle copy whose only change is the input shape.
        src = os.path.join(args.model_dir, DET_NAME)
        dst = os.path.join(tmp, DET_NAME)
        os.mkdir(dst)
        with open(os.path.join(src, "bundle.json")) as f:
            spec = json.load(f)
        spec["input_shape"] = [1, 3, size, size]
        with open(os.path.join(dst, "bundle.json"), "w") as f:
            json.dump(spec, f)
        shutil.copy(os.path.join(src, spec["model"]), dst)
        bundles = load_bundles(tmp)
        bundle = list(bundles.values())[0]
        accel = LocalAccelerator(bundles)  # warms once at S x S: the memory high-water mark
        rss_warm = rss_bytes()
        det = TextDetector(bundle)

        n_det = 0
        n_gt = dict.fromkeys(CLASS_NAMES, 0)   # lines per size class
        n_hit = dict.fromkeys(CLASS_NAMES, 0)  # of which found
        ms = []
        with open(os.path.join(args.pages_dir, "truth.json")) as f:
            truth = json.load(f)
        for i, lines in enumerate(truth):
            image = cv2.imread(os.path.join(args.pages_dir, "page%02d.jpg" % i))
            tensor, box = det.preprocess(image)
            t0 = time.perf_counter()
            prob = accel.run(bundle.id, [tensor])[0]
            ms.append((time.perf_counter() - t0) * 1000.0)
            found = det.postprocess(prob[0, 0], box, image.shape)
            # Axis-aligned box of each detected quad; the synthetic text is horizontal.
            dets = [(p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()) for p, _ in found]
            gts = [b for b, _ in lines]
            hit = match(gts, dets)
            n_det += len(dets)
            for k, (_, c) in enumerate(lines):
                n_gt[c] += 1
                n_hit[c] += k in hit
            if args.save:
                draw = image.copy()
                t = max(2, image.shape[0] // 400)
                for k, (b, _) in enumerate(lines):
                    cv2.rectangle(draw, tuple(b[:2]), tuple(b[2:]), (0, 200, 0) if k in hit else (0, 0, 255), t)
                for p, _ in found:
                    cv2.polylines(draw, [p.astype(np.int32)], True, (255, 0, 0), t)
                cv2.imwrite(os.path.join(args.save, "page%02d_%d.jpg" % (i, size)), draw)
        hits, n_lines = sum(n_hit.values()), sum(n_gt.values())
        out = {
            "size": size, "pages": len(truth), "lines": n_gt, "detections": n_det,
            "recall": hits / float(max(n_lines, 1)), "precision": hits / float(max(n_det, 1)),
            "class_recall": dict((c, n_hit[c] / float(max(n_gt[c], 1))) for c in CLASS_NAMES),
            "ms": sum(ms) / len(ms), "rss_base": rss_base, "rss_warm": rss_warm, "rss_end": rss_bytes(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out))
    return 0


# -- the study: one subprocess per size -------------------------------------------------------
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="480,640,800,960")
    p.add_argument("--pages", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--model-dir", default=os.path.join("build", "models", "x86"))
    p.add_argument("--out", default=os.path.join("build", "det-size-study.md"))
    p.add_argument("--save", metavar="DIR", help="also write every page with ground truth and detections")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--pages-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.save:
        os.makedirs(args.save, exist_ok=True)
    if args.child:
        return child(args.child, args)

    started = time.monotonic()
    # Pages are made once, here, and read back by each size's process: the same input for every
    # size, and page-making scratch memory stays out of the RSS figures.
    pages_dir = tempfile.mkdtemp(prefix="det-pages-")
    try:
        truth = []
        for i in range(args.pages):
            jpeg, lines = make_page(i, args.seed)
            with open(os.path.join(pages_dir, "page%02d.jpg" % i), "wb") as f:
                f.write(jpeg)
            truth.append(lines)
        with open(os.path.join(pages_dir, "truth.json"), "w") as f:
            json.dump(truth, f)
        print("%d pages made in %.0f s" % (args.pages, time.monotonic() - started), file=sys.stderr)
        rows = []
        for s in [int(x) for x in args.sizes.split(",")]:
            cmd = [sys.executable, os.path.abspath(__file__), "--child", str(s), "--pages-dir", pages_dir,
                   "--model-dir", args.model_dir]
            if args.save:
                cmd += ["--save", args.save]
            t0 = time.monotonic()
            r = subprocess.run(cmd, stdout=subprocess.PIPE, universal_newlines=True, timeout=600)
            if r.returncode != 0:
                print("size %d: child failed (exit %d)" % (s, r.returncode), file=sys.stderr)
                return 1
            row = json.loads(r.stdout.strip().splitlines()[-1])
            row["wall_s"] = time.monotonic() - t0
            rows.append(row)
            print("size %d done in %.0f s" % (s, row["wall_s"]), file=sys.stderr)
    finally:
        shutil.rmtree(pages_dir, ignore_errors=True)

    mb = lambda n: "%.0f" % (n / 1048576.0)
    counts = rows[0]["lines"]
    classes = ", ".join("%d %s (%g-%g%%)" % (counts[c[0]], c[0], c[1] * 100, c[2] * 100) for c in SIZE_CLASSES)
    out = ["# ppocr-det input size study", "",
           "%d synthetic pages (seed %d), %d text lines by cap height as %% of the page height: %s. "
           "A line is found if a detected box has IoU >= 0.5 with it. One fresh process per size; "
           "RSS in MB." % (args.pages, args.seed, sum(counts.values()), classes),
           "",
           "| input | recall | precision | " + " | ".join("%s recall" % c for c in CLASS_NAMES) +
           " | ms/image (accelerator) | RSS before model | RSS after warm-up | RSS at end | wall s |",
           "|---" * (8 + len(CLASS_NAMES)) + "|"]
    for r in rows:
        out.append("| %dx%d | %.3f | %.3f | %s | %.0f | %s | %s | %s | %.0f |" % (
            r["size"], r["size"], r["recall"], r["precision"],
            " | ".join("%.3f" % r["class_recall"][c] for c in CLASS_NAMES), r["ms"],
            mb(r["rss_base"]), mb(r["rss_warm"]), mb(r["rss_end"]), r["wall_s"]))
    given = "".join(" " + a for a in (argv if argv is not None else sys.argv[1:]))
    out += ["", "Total %.0f s. Command: `.venv/bin/python tools/det_size_study.py%s`"
            % (time.monotonic() - started, given)]
    text = "\n".join(out) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
