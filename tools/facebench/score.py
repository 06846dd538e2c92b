"""Face verification scores: which face found is which person, every pair of faces, the
same-person and different-person similarity distributions, the threshold chosen from them and the
error rates at it. Numbers in, numbers out: no model here.

A pair is accepted as the same person when its similarity is >= the threshold. False accept:
a different-person pair accepted; false reject: a same-person pair refused.
"""
import itertools

import numpy as np

from tools.det_size_study import iou
from tools.ocrset import best_pairs

MIN_IOU = 0.3  # people.json's boxes are rough: a found face is the labelled one at this overlap


def name_faces(found_boxes, labelled):
    """[(labelled index, found index)]: each labelled face (a person and a rough box) is the found
    face that overlaps it best, at IoU >= MIN_IOU, one to one."""
    scored = ((iou(face["box"], box), li, fi) for li, face in enumerate(labelled)
              for fi, box in enumerate(found_boxes))
    return best_pairs(scored, MIN_IOU)


def pairs(faces):
    """faces: [{"image", "shot", "person", "vector"}] (unit vectors). Every pair once, as
    (similarity, image a, image b), sorted by similarity, in one of three lists: "same" person,
    "different" people, and "same_shot": two faces of one photograph (a crop and its photo), which
    say nothing about two photos of a person and are left out of the distributions."""
    out = {"same": [], "different": [], "same_shot": []}
    for a, b in itertools.combinations(faces, 2):
        sim = float(np.dot(a["vector"], b["vector"]))
        if a["shot"] == b["shot"]:
            kind = "same_shot"
        else:
            kind = "same" if a["person"] == b["person"] else "different"
        out[kind].append((sim, a["image"], b["image"]))
    for kind in out:
        out[kind].sort()
    return out


def summary(values):
    """{"count", "min", "q1", "median", "q3", "max"} of values (quartiles by linear interpolation);
    just {"count": 0} when there are none."""
    if not len(values):
        return {"count": 0}
    q = np.percentile(np.asarray(values, dtype=np.float64), [0, 25, 50, 75, 100])
    return dict(count=len(values), **{k: float(v) for k, v in zip(("min", "q1", "median", "q3", "max"), q)})


def rates(same, different, threshold):
    """(false-accept rate, false-reject rate) at threshold; None for a rate with no pairs."""
    far = sum(1 for s in different if s >= threshold) / float(len(different)) if different else None
    frr = sum(1 for s in same if s < threshold) / float(len(same)) if same else None
    return far, frr


def choose_threshold(same, different):
    """(threshold, rule). When every same-person similarity is above every different-person one,
    the midpoint of that gap ("gap"). Else the equal-error point ("equal error"): of the thresholds
    halfway between neighbouring similarities, those where the two error rates are closest, then
    lowest in total, and the middle one of them."""
    if not same or not different:
        raise ValueError("a threshold needs same-person and different-person pairs")
    if min(same) > max(different):
        return (min(same) + max(different)) / 2.0, "gap"
    values = sorted(set(same) | set(different))
    candidates = [(a + b) / 2.0 for a, b in zip(values, values[1:])]

    def cost(t):
        far, frr = rates(same, different, t)
        return round(abs(far - frr), 12), round(far + frr, 12)
    best = min(cost(t) for t in candidates)
    tied = [t for t in candidates if cost(t) == best]
    return tied[len(tied) // 2], "equal error"


def margin(same, different):
    """The lowest same-person similarity minus the highest different-person one: > 0 when a
    threshold separates them all, and by how much."""
    return min(same) - max(different) if same and different else None


def held_out(faces):
    """The threshold rule judged on pairs it did not see: for each photograph, the threshold is
    chosen from the pairs without it and applied to the pairs with it. Returns {"false_accepts",
    "different", "false_rejects", "same"}: errors and pairs tested (a pair is tested once for each
    of its two photographs)."""
    shot_of = {f["image"]: f["shot"] for f in faces}
    every = pairs(faces)
    out = {"false_accepts": 0, "different": 0, "false_rejects": 0, "same": 0}
    for shot in sorted(set(shot_of.values())):
        seen = pairs([f for f in faces if f["shot"] != shot])
        if not seen["same"] or not seen["different"]:
            continue
        t, _ = choose_threshold([x[0] for x in seen["same"]], [x[0] for x in seen["different"]])
        for kind, errors, wrong in (("same", "false_rejects", lambda sim: sim < t),
                                    ("different", "false_accepts", lambda sim: sim >= t)):
            tested = [sim for sim, a, b in every[kind] if shot in (shot_of[a], shot_of[b])]
            out[kind] += len(tested)
            out[errors] += sum(1 for sim in tested if wrong(sim))
    return out


def scale_scores(faces):
    """Everything the report says about one crop scale's faces: the pairs, both distributions,
    the margin, the threshold, its rule and the error rates at it."""
    p = pairs(faces)
    same, diff = [s for s, _, _ in p["same"]], [s for s, _, _ in p["different"]]
    out = {"pairs": p, "same": summary(same), "different": summary(diff), "margin": margin(same, diff)}
    if same and diff:
        t, rule = choose_threshold(same, diff)
        far, frr = rates(same, diff, t)
        out.update(threshold=t, rule=rule, far=far, frr=frr,
                   false_accepts=sum(1 for s in diff if s >= t), false_rejects=sum(1 for s in same if s < t),
                   held_out=held_out(faces))
    return out


def best_scale(scored):
    """The crop scale whose same-person and different-person similarities are furthest apart
    (largest margin; then the larger gap between the two medians). scored: {scale: scale_scores}."""
    def key(scale):
        s = scored[scale]
        if s["margin"] is None:
            return (float("-inf"), float("-inf"))
        return (round(s["margin"], 6), s["same"]["median"] - s["different"]["median"])
    return max(scored, key=key)
