"""The object benchmark's pure parts: matching detections to hand-written boxes, the counts behind
precision and recall, the labelled set's checks and the report's tables. No model, no download."""
import json

from tools.objbench import classes, photos, report, score
from tools.objbench.photos import REPO


def det(label, box, s=0.9):
    return {"label": label, "score": s, "box": box}


def obj(label, box, difficult=False):
    return dict({"label": label, "box": box}, **({"difficult": True} if difficult else {}))


def test_iou_of_boxes():
    assert score.iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert score.iou([0, 0, 10, 10], [5, 0, 15, 10]) == 50 / 150.0
    assert score.iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching edges do not overlap
    assert score.iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0


def test_one_detection_per_object_best_iou_first():
    truth = [obj("person", [0, 0, 100, 200]), obj("person", [150, 0, 250, 200])]
    found = [det("person", [5, 0, 100, 200]), det("person", [0, 0, 110, 190]), det("person", [150, 10, 250, 200])]
    hits, kinds = score.match(truth, found)
    assert hits == [0, 2]  # found[0] overlaps truth[0] best; found[1] is a duplicate
    assert kinds == ["tp", "fp", "tp"]


def test_the_stronger_detection_keeps_the_object():
    # the biden photo: a 0.56 tie overlapping the tie at IoU 0.63, a 0.32 one at 0.65
    truth = [obj("tie", [505, 611, 630, 985])]
    found = [det("tie", [500.8, 618.7, 627.0, 863.3], 0.56), det("tie", [500.6, 624.6, 615.0, 1092.8], 0.32)]
    assert score.match(truth, found) == ([0], ["tp", "fp"])


def test_wrong_class_or_low_overlap_is_a_false_positive_and_a_miss():
    truth = [obj("cat", [0, 0, 100, 100])]
    hits, kinds = score.match(truth, [det("dog", [0, 0, 100, 100]), det("cat", [60, 60, 160, 160])])
    assert hits == [None] and kinds == ["fp", "fp"]


def test_difficult_objects_count_neither_way():
    truth = [obj("airplane", [0, 0, 50, 100], difficult=True), obj("person", [100, 0, 200, 200])]
    found = [det("airplane", [0, 0, 50, 100]), det("person", [100, 0, 200, 200]),
             det("airplane", [0, 5, 50, 100], 0.5)]
    assert score.match(truth, found) == ([0, 1], ["ignored", "tp", "ignored"])  # both on the difficult one
    c = score.count([(truth, found)])
    assert c["all"] == {"truth": 1, "tp": 1, "fp": 0, "fn": 0}
    c = score.count([(truth, [])])  # the difficult one missed too: only the person is a miss
    assert c["all"] == {"truth": 1, "tp": 0, "fp": 0, "fn": 1}


def test_counts_per_group():
    photo1 = ([obj("person", [0, 0, 10, 20]), obj("car", [20, 0, 60, 20]), obj("cup", [70, 0, 80, 10])],
              [det("person", [0, 0, 10, 20]), det("truck", [20, 0, 60, 20]), det("cup", [70, 0, 80, 10])])
    photo2 = ([obj("cat", [0, 0, 50, 50])], [det("face", [0, 0, 20, 20])])
    c = score.count([photo1, photo2])
    assert c[classes.PEOPLE] == {"truth": 1, "tp": 1, "fp": 0, "fn": 0}
    assert c[classes.VEHICLES] == {"truth": 1, "tp": 0, "fp": 1, "fn": 1}  # a truck where a car is
    assert c[classes.ANIMALS] == {"truth": 1, "tp": 0, "fp": 0, "fn": 1}
    assert c[classes.EVERYDAY] == {"truth": 1, "tp": 1, "fp": 0, "fn": 0}
    assert c[classes.OTHER] == {"truth": 0, "tp": 0, "fp": 1, "fn": 0}  # "face" is no COCO class
    assert c["all"] == {"truth": 4, "tp": 2, "fp": 2, "fn": 2}
    assert score.precision(c["all"]) == 0.5 and score.recall(c["all"]) == 0.5
    assert score.precision(c[classes.ANIMALS]) is None and score.recall({"truth": 0, "tp": 0}) is None


def test_best_score_of_a_missed_object():
    truth = [obj("cat", [0, 0, 100, 100]), obj("cup", [200, 200, 220, 220])]
    floor = [det("cat", [0, 0, 90, 100], 0.24), det("cat", [5, 5, 100, 100], 0.31), det("dog", [0, 0, 100, 100], 0.6)]
    assert score.best_scores(truth, floor) == [0.31, None]
    assert score.above(floor, 0.3) == [floor[1], floor[2]]


def test_group_of_every_coco_class():
    assert len(classes.COCO_NAMES) == 80 == len(set(classes.COCO_NAMES))
    assert classes.group_of("person") == classes.PEOPLE
    assert classes.group_of("motorcycle") == classes.VEHICLES
    assert classes.group_of("giraffe") == classes.ANIMALS
    assert classes.group_of("dining table") == classes.EVERYDAY
    assert classes.group_of("face") == classes.OTHER


def test_the_labelled_set_is_valid_and_its_packages_pinned():
    data = photos.load()
    with open(str(REPO / "models" / "sources.json"), encoding="utf-8") as f:
        sources = json.load(f)
    assert len(data["images"]) >= 9
    for img in data["images"]:
        assert img["package"] in sources and img["licence"]
    counted = [o for img in data["images"] for o in img["objects"] if not o.get("difficult")]
    assert len(counted) >= 9
    negatives = [img["id"] for img in data["images"] if not any(not o.get("difficult") for o in img["objects"])]
    assert negatives == ["clock", "rocket", "raccoon"]  # photos where any detection is a false positive


def test_bad_labels_are_reported():
    data = {"images": [{"id": "a", "package": "p", "member": "m", "size": [100, 50], "licence": "CC0",
                        "objects": [obj("kitten", [0, 0, 10, 10]), obj("cat", [0, 0, 120, 10]),
                                    obj("cat", [5, 5, 2, 9])]},
                       {"id": "a", "package": "p", "member": "m", "size": [10, 10], "objects": []}]}
    problems = photos.check(data)
    assert "a: 'kitten' is not a COCO class name" in problems
    assert "a: box [0, 0, 120, 10] is out of order or outside the 100x50 photo" in problems
    assert "a: box [5, 5, 2, 9] is out of order or outside the 100x50 photo" in problems
    assert "a: id used twice" in problems and "a: no 'licence'" in problems


def fake_run(found, floor, ms=100.0):
    bundle = {"name": "x", "id": 8, "type": "detection", "input_shape": [1, 3, 416, 416], "score_thresh": 0.4,
              "description": "", "memory_mb": 50.0}
    return {"bundle": bundle, "peak_rss_mb": 150.0, "accelerator_ms": {"mean": 90.0, "p50": 80.0},
            "photos": [{"id": "p", "ms": ms, "found": found, "found_floor": floor}]}


def test_report_tables():
    index = {"images": [{"id": "p", "package": "scikit-image", "version": "0.25.2", "licence": "CC0",
                         "objects": [obj("cat", [0, 0, 100, 100]), obj("cup", [200, 200, 220, 220])]}]}
    good = det("cat", [0, 0, 100, 100], 0.8)
    results = {"objects": fake_run([good], [good, det("cup", [200, 200, 221, 220], 0.25)]),
               "objects-centernet": dict(fake_run([], []), error="load failed: boom")}
    table = report.main_table(index, results)
    assert "| objects (mid 8) | 416x416 | 0.4 | — / — (TP 0, FP 0, FN 0) | — / — (TP 0, FP 0, FN 0) " \
           "| 1.00 / 1.00 (TP 1, FP 0, FN 0) | — / 0.00 (TP 0, FP 0, FN 1) | 1.00 / 0.50 (TP 1, FP 0, FN 1) " \
           "| 100 | 80 | 50 | 150 |" in table
    assert "failed: load failed: boom" in table
    assert "| objects | 1.00 / 1.00 | 1.00 / 0.50 |" in report.sweep_table(index, results)
    assert "| p | cat, cup | cat 0.80; missed: cup (best 0.25) |" in report.photo_table(index, results)
