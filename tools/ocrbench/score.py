"""Scores of one reader's results against the set's ground truth, per group.

Lines (crops given, recogniser alone): character error rate over the group (edit distances summed,
divided by the reference characters summed; spaces ignored), word-gap errors apart.
Pages: detected lines are paired one to one with the true lines at IoU >= 0.5 (greedy, best IoU
first) for recall and precision. The text of a true line is what the reader found in the boxes
that lie mostly (>= half their area) inside it, joined along the line, so a line the detector cut
in two is still read right; a true line with no such box counts all its characters as deleted.
"""
import collections

import numpy as np

from tools import ocrset

IOU_MATCH = 0.5


def score_lines(index, result):
    """{group: {"lines", "chars", "errors", "space_errors", "exact", "ms"}} over the line set."""
    groups = collections.OrderedDict()
    for item, got in zip(index["lines"], result["lines"]):
        g = groups.setdefault(item["group"], _zero(lines=0, exact=0))
        g["lines"] += 1
        g["exact"] += ocrset.cer(item["text"], got["text"]) == 0
        _add_text(g, item["text"], got["text"])
        g["ms"].append(got["ms"])
    return groups


def score_pages(index, result):
    """{group: {"pages", "truth", "found", "matched", "chars", "errors", "space_errors", "ms"}}."""
    groups = collections.OrderedDict()
    for item, got in zip(index["pages"], result["pages"]):
        g = groups.setdefault(item["group"], _zero(pages=0, truth=0, found=0, matched=0))
        truth = [(t["text"], np.array(t["quad"], np.float32)) for t in item["truth"]]
        found = [(f["text"], np.array(f["quad"], np.float32)) for f in got["lines"]]
        g["pages"] += 1
        g["truth"] += len(truth)
        g["found"] += len(found)
        g["matched"] += len(match(truth, found))
        for (ref, _), hyp in zip(truth, texts_inside(truth, found)):
            _add_text(g, ref, hyp)
        g["ms"].append(got["ms"])
    return groups


def _zero(**counts):
    return dict(counts, chars=0, errors=0, space_errors=0, ms=[])


def _add_text(g, ref, hyp):
    g["chars"] += len(ocrset.normal(ref))
    g["errors"] += ocrset.edit_distance(ocrset.normal(ref), ocrset.normal(hyp))
    g["space_errors"] += ocrset.space_errors(ref, hyp)


def match(truth, found):
    """One-to-one pairs (i, j) of truth[i] and found[j] with IoU >= IOU_MATCH, best first."""
    return ocrset.best_pairs(((ocrset.quad_iou(t[1], f[1]), i, j) for i, t in enumerate(truth)
                              for j, f in enumerate(found)), IOU_MATCH)


def texts_inside(truth, found):
    """For each true line: the found texts whose boxes lie mostly inside it, in reading order
    (along the true line's top edge), joined with spaces."""
    parts = [[] for _ in truth]
    for text, quad in found:
        best, share = None, 0.5
        for i, (_, tq) in enumerate(truth):
            inter, _, area = ocrset.quad_areas(tq, quad)
            if area > 0 and inter / area >= share:
                best, share = i, inter / area
        if best is not None:
            along = truth[best][1][1] - truth[best][1][0]
            parts[best].append((float(np.dot(quad.mean(axis=0), along)), text))
    return [" ".join(t for _, t in sorted(p)) for p in parts]


def totals(groups, keys):
    """One row summing the counts of every group (ms lists joined)."""
    out = {k: 0 for k in keys}
    out["ms"] = []
    for g in groups.values():
        for k in keys:
            out[k] += g[k]
        out["ms"] += g["ms"]
    return out
