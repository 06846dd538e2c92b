"""Real inference through Paddle Lite (in-process) on images the tests draw themselves."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgeapp.errors import UnknownModel
from support import server_env
from textimages import iou, loc_box, page, text_line


LINES = [("HELLO WORLD", (60, 120)), ("EdgeBoard 2026", (60, 300))]


@pytest.fixture(scope="module")
def engine(local_engine):
    return local_engine


@pytest.fixture(scope="module")
def text_page():
    return page(LINES)


def test_models_are_the_documented_ones(engine):
    names = {mid: b.name for mid, b in engine.bundles.items()}
    assert names == {1: "ppocr-det", 2: "text-direction", 3: "ppocr", 4: "face", 5: "doc-orientation", 7: "face-far",
                     8: "objects", 9: "face-recognition"}
    assert sorted(engine.models) == [1, 2, 3, 4, 5, 7, 8, 9] and engine.failed == {}


def test_warm_up_reports_memory_per_model(engine):
    status = engine.accel.model_status()
    for mid in (1, 2, 3):
        assert status[mid]["ready"] is True
        assert status[mid]["memory_mb"] is not None and status[mid]["memory_mb"] >= 0


def test_detector_finds_each_rendered_line(engine, text_page):
    image, known = text_page
    results = engine.infer(1, image)["result"]
    assert len(results) == len(known)
    for r, box in zip(results, known):
        assert r["label"] == "text" and r["index"] == 0 and 0.5 < r["score"] <= 1.0
        assert iou(loc_box(r), box) >= 0.5, (r["location"], box)
        pts = r["extended"]["points"]
        assert len(pts) == 4 and all(len(p) == 2 for p in pts)


def test_detector_boxes_are_in_original_pixels(engine, text_page):
    # The same page at 3x its size: the boxes scale with it (the letterbox is undone).
    image, known = text_page
    big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR)
    results = engine.infer(1, big)["result"]
    assert len(results) == len(known)
    for r, (l, t, rt, b) in zip(results, known):
        assert iou(loc_box(r), (3 * l, 3 * t, 3 * rt, 3 * b)) >= 0.5


def test_ocr_reads_the_rendered_words(engine, text_page):
    image, known = text_page
    results = engine.infer(3, image)["result"]
    assert [r["label"] for r in results] == [t for t, _ in LINES]
    for r, box in zip(results, known):
        assert r["score"] > 0.8
        assert iou(loc_box(r), box) >= 0.5
        assert r["extended"]["direction"] == "0"
        assert len(r["extended"]["points"]) == 4


def test_ocr_reads_an_upside_down_page(engine, text_page):
    image, _ = text_page
    results = engine.infer(3, cv2.rotate(image, cv2.ROTATE_180))["result"]
    assert sorted(r["label"] for r in results) == sorted(t for t, _ in LINES)
    assert all(r["extended"]["direction"] == "180" for r in results)


@pytest.mark.arm
def test_direction_upright_and_rotated(engine):
    line = text_line("HELLO WORLD")
    up = engine.infer(2, line)["result"]
    down = engine.infer(2, cv2.rotate(line, cv2.ROTATE_180))["result"]
    assert [r["label"] for r in up] == ["0"] and up[0]["index"] == 0
    assert [r["label"] for r in down] == ["180"] and down[0]["index"] == 1
    h, w = line.shape[:2]
    assert down[0]["location"] == {"height": float(h), "left": 0.0, "top": 0.0, "width": float(w)}
    assert down[0]["score"] > 0.9


@pytest.mark.parametrize("mid", [1, 3])
def test_blank_image_gives_no_results(engine, mid):
    blank = np.full((300, 400, 3), 255, np.uint8)
    assert engine.infer(mid, blank) == {"result": []}


def test_show_returns_the_rendered_image(engine, text_page):
    image, _ = text_page
    data = engine.infer(1, image, show=True)
    import base64
    jpeg = base64.b64decode(data["image"])
    drawn = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == image.shape
    assert np.abs(drawn.astype(int) - image.astype(int)).max() > 100  # boxes were drawn


def test_tensor_shape_never_exceeds_the_bundle(engine):
    # A 4000x3000 upload becomes exactly the bundle's input shape for every model type.
    huge = np.full((3000, 4000, 3), 255, np.uint8)
    det = engine.models[1]
    tensor, _ = det.preprocess(huge)
    assert list(tensor.shape) == engine.bundles[1].input_shape
    assert list(engine.models[2].preprocess(huge).shape) == engine.bundles[2].input_shape
    shapes = []

    class Recording:  # the recogniser reads a wide line in windows: every one has the input shape
        def run(self, mid, inputs):
            shapes.append(list(inputs[0].shape))
            return engine.accel.run(mid, inputs)

    for line in (huge, np.full((60, 6000, 3), 255, np.uint8)):
        engine.models[3].recognizer.recognize(line, Recording())
    assert len(shapes) > 2 and all(s == engine.bundles[3].input_shape for s in shapes)


@pytest.mark.arm
def test_unknown_model_is_refused(engine):
    with pytest.raises(UnknownModel) as e:
        engine.infer(42, np.zeros((10, 10, 3), np.uint8))
    assert "42" in e.value.msg and e.value.status == 404


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgeapp"] + list(args), env=server_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)


def test_cli_infer_prints_the_api_envelope(tmp_path, text_page):
    image, _ = text_page
    src, out = tmp_path / "page.png", tmp_path / "out.jpg"
    cv2.imwrite(str(src), image)
    p = _cli("infer", "--mid", "3", str(src), "--show", str(out))
    assert p.returncode == 0, p.stderr
    env = json.loads(p.stdout)
    assert env["code"] == 0 and env["msg"] == "success"
    assert [r["label"] for r in env["data"]["result"]] == [t for t, _ in LINES]
    assert cv2.imread(str(out)).shape == image.shape


def test_cli_infer_bad_image_prints_an_error_envelope(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not an image at all")
    p = _cli("infer", "--mid", "1", str(bad))
    assert p.returncode == 1
    env = json.loads(p.stdout)
    assert env["code"] != 0 and env["data"] is None and "image" in env["msg"]


def test_cli_models_lists_ids_names_types(tmp_path):
    p = _cli("models")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].split()[:4] == ["id", "name", "type", "input"]
    assert lines[1].split()[:4] == ["1", "ppocr-det", "db_det", "640x640"]
    assert lines[2].split()[:4] == ["2", "text-direction", "classify", "192x48"]
    assert lines[3].split()[:4] == ["3", "ppocr", "ocr", "320x48"]
