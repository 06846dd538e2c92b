"""The object detection benchmark (`make bench-objects`, `python -m tools.objbench`).

Candidate COCO detector bundles (mid 8 `objects` and the optional zoo ones) over a small set of
real photos taken out of pinned packages, with boxes written by hand: precision and recall at
IoU 0.5 per class group, speed and memory, each candidate in a process of its own.

    labels.json  the set: each photo's package, file, licence and hand-written boxes
    classes.py   COCO's 80 class names and the report's groups
    photos.py    the set on disk: photos out of the sha256-checked packages, index.json
    runner.py    one candidate over the set (Engine + LocalAccelerator), in its own process
    score.py     matching (IoU >= 0.5, one to one) and the counts precision and recall come from
    report.py    the Markdown report and its section in BENCHMARKS.md
    sheet.py     the contact sheet of the set and the detections (a PNG under build/)
"""
