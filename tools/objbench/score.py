"""Detections against the hand-written boxes: matching at IoU >= 0.5 and the counts precision and
recall come from. Pure functions on plain lists (no OpenCV, no model).

A truth object is {"label", "box": [x1, y1, x2, y2], "difficult"?}; a detection is {"label",
"score", "box"}. Per photo and class, detections are paired with truths one to one, strongest
detection first (match()). A detection on a difficult truth counts neither way (as in PASCAL VOC);
a difficult truth left unpaired is no miss. Every other detection is a true positive (paired) or a
false positive; every other unpaired truth is a false negative.
"""
from tools.objbench.classes import GROUPS, group_of

IOU = 0.5


def iou(a, b):
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / float(union) if union > 0 else 0.0


def match(truth, found, thresh=IOU):
    """One photo: (truth_hits, found_kinds). truth_hits[i] is the index of the detection paired
    with truth i, or None; found_kinds[j] is "tp", "fp" or "ignored" (on a difficult truth).

    Detections go strongest first, each to the unpaired truth of its class it overlaps most at IoU
    >= thresh (a difficult truth only when no other is left, and as often as it is hit), as the
    PASCAL VOC and COCO evaluations do. (Pairing best IoU first, tools.ocrset.best_pairs, would let
    a weak duplicate that happens to fit a little better take the object from a strong detection.)"""
    truth_hits, kinds = [None] * len(truth), ["fp"] * len(found)
    for j in sorted(range(len(found)), key=lambda j: -found[j]["score"]):
        options = []
        for i, t in enumerate(truth):
            overlap = iou(t["box"], found[j]["box"]) if t["label"] == found[j]["label"] else 0.0
            if overlap >= thresh and (t.get("difficult") or truth_hits[i] is None):
                options.append((not t.get("difficult"), overlap, i))
        if not options:
            continue
        i = max(options)[2]
        kinds[j] = "ignored" if truth[i].get("difficult") else "tp"
        if truth_hits[i] is None:
            truth_hits[i] = j
    return truth_hits, kinds


def above(found, min_score):
    """The detections scoring at least min_score."""
    return [d for d in found if d["score"] >= min_score]


def _zero():
    return {"truth": 0, "tp": 0, "fp": 0, "fn": 0}


def count(photos, thresh=IOU):
    """photos: [(truth, found)]. Counts per group (GROUPS, then OTHER when a detector gave a label
    that is not COCO's) and "all": {"truth", "tp", "fp", "fn"}. A false positive is booked to
    the group of the label the detector gave, a miss to the group of the truth's label."""
    out = {g: _zero() for g in GROUPS}
    for truth, found in photos:
        hits, kinds = match(truth, found, thresh)
        for t, hit in zip(truth, hits):
            if t.get("difficult"):
                continue
            c = out[group_of(t["label"])]
            c["truth"] += 1
            c["fn" if hit is None else "tp"] += 1
        for d, kind in zip(found, kinds):
            if kind == "fp":
                out.setdefault(group_of(d["label"]), _zero())["fp"] += 1
    out["all"] = {k: sum(c[k] for g, c in out.items()) for k in ("truth", "tp", "fp", "fn")}
    return out


def precision(c):
    """tp / (tp + fp), None when nothing was found."""
    n = c["tp"] + c["fp"]
    return c["tp"] / float(n) if n else None


def recall(c):
    """tp / truth, None when there was nothing to find."""
    return c["tp"] / float(c["truth"]) if c["truth"] else None


def best_scores(truth, found, thresh=IOU):
    """For each truth object, the highest score of a detection of its class overlapping it at
    IoU >= thresh (paired or not), or None: how near a missed object came to being found."""
    out = []
    for t in truth:
        scores = [d["score"] for d in found if d["label"] == t["label"] and iou(t["box"], d["box"]) >= thresh]
        out.append(max(scores) if scores else None)
    return out

