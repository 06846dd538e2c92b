"""Both engines give the same answers: every bundled model on Paddle Lite (model.nb) and on ONNX
Runtime (model.onnx), in this process, on the same real and rendered images. Same labels, boxes
within 1 px, scores within 0.01, OCR text identical; face descriptors nearly the same vector.
Then the real service on ONNX Runtime, over HTTP."""
import cv2
import numpy as np
import pytest
import requests

from edgeapp import engines
from tools import ocrset
from textimages import page

BOX_PX = 1.0
SCORE = 0.01
OCR_LINES = [
    ("订单号A2024-0318的商品已经发货，运费12.50元，客服电话400-820-8820", "WenQuanYiZenHei"),
    ("Invoice No. 48213 EUR 1,245.50 due 2024-03-18 (+49 171 555 0192)", "LiberationSans"),
]


@pytest.fixture(scope="module")
def ort(local_engine):
    """Every bundled model on ONNX Runtime in this process (one thread: the HTTP side keeps a core)."""
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.engine import Engine

    bundles = local_engine.bundles
    accel = LocalAccelerator(bundles, engines.Settings(engines.ONNXRUNTIME, ort_threads=1), warm=False)
    return Engine(bundles, accel)


@pytest.fixture(scope="module")
def lite(local_engine):
    return local_engine


def test_every_model_loads_on_both_engines(lite, ort):
    for engine, name in ((lite, engines.PADDLELITE), (ort, engines.ONNXRUNTIME)):
        status = engine.accel.model_status()
        assert engine.failed == {} and sorted(engine.models) == sorted(engine.bundles)
        assert {mid: st["engine"] for mid, st in status.items()} == {mid: name for mid in status}


def ocr_page(text, font, margin=40):
    line = ocrset.render_line(text, font, 32)
    h, w = line.shape[:2]
    out = np.full((h + 2 * margin, w + 2 * margin, 3), 255, np.uint8)
    out[margin:margin + h, margin:margin + w] = line
    return out


def same_results(a, b):
    """Same count and labels; boxes within BOX_PX, scores within SCORE (ties may swap places, so
    both lists are compared in the order of their boxes)."""
    assert len(a) == len(b), (a, b)
    order = lambda r: (r["label"], round(r["location"]["top"]), round(r["location"]["left"]))
    for x, y in zip(sorted(a, key=order), sorted(b, key=order)):
        assert x["label"] == y["label"], (x, y)
        assert abs(x["score"] - y["score"]) <= SCORE, (x, y)
        for k in ("left", "top", "width", "height"):
            assert abs(x["location"][k] - y["location"][k]) <= BOX_PX, (k, x, y)
        kx, ky = x["extended"].get("keypoints", {}), y["extended"].get("keypoints", {})
        assert sorted(kx) == sorted(ky)
        for name in kx:
            assert np.abs(np.subtract(kx[name], ky[name])).max() <= BOX_PX, (name, kx, ky)


def both(lite, ort, mid, image):
    a, b = lite.infer(mid, image)["result"], ort.infer(mid, image)["result"]
    same_results(a, b)
    return a


def test_text_detector_and_direction(lite, ort):
    image, known = page([("HELLO WORLD", (60, 120)), ("EdgeBoard 2026", (60, 300))])
    assert len(both(lite, ort, 1, image)) == len(known)
    line = ocrset.render_line("Direction of this line", "DejaVuSans", 32)
    assert [r["label"] for r in both(lite, ort, 2, line)] == ["0"]
    assert [r["label"] for r in both(lite, ort, 2, cv2.rotate(line, cv2.ROTATE_180))] == ["180"]


def test_ocr_text_is_identical(lite, ort):
    text, font = OCR_LINES[0]
    texts = [r["label"] for r in both(lite, ort, 3, ocr_page(text, font))]
    assert texts == [text]


@pytest.mark.parametrize("group", ["page en", "turned 180"])  # Chinese: the line above
def test_ocr_test_pages_read_the_same(lite, ort, group):
    """The OCR benchmark's pages (tools/ocrset): the same lines, in the same order, the same text."""
    for _, image, truth in ocrset.page_set(groups=[group])[:1]:
        a, b = lite.infer(3, image)["result"], ort.infer(3, image)["result"]
        assert [r["label"] for r in a] == [r["label"] for r in b]
        same_results(a, b)
        assert len(a) == len(truth)


def test_doc_orientation(lite, ort, photos):
    image = ocr_page(*OCR_LINES[0])
    assert both(lite, ort, 5, image)[0]["label"] == "0"
    assert both(lite, ort, 5, cv2.rotate(image, cv2.ROTATE_180))[0]["label"] == "180"
    both(lite, ort, 5, photos["coffee"])


@pytest.mark.parametrize("mid", [4, 7])
def test_face_detectors(lite, ort, photos, face_photos, mid):
    for image in (photos["astronaut"], face_photos["obama"], photos["coffee"]):
        both(lite, ort, mid, image)
    assert len(both(lite, ort, mid, face_photos["obama"])) == 1


def test_object_detector(lite, ort, photos):
    labels = {name: [r["label"] for r in both(lite, ort, 8, photos[name])] for name in photos}
    assert "person" in labels["astronaut"] and labels["chelsea"][0] == "cat"


def test_face_descriptors(lite, ort, face_photos):
    for name in ("obama", "biden"):
        image = face_photos[name]
        a, b = lite.faces(9, image), ort.faces(9, image)
        assert len(a) == len(b) == 1
        assert np.abs(np.subtract(a[0].box, b[0].box)).max() <= BOX_PX
        assert float(np.dot(a[0].vector, b[0].vector)) >= 0.999  # unit vectors: cosine
        same_results(lite.infer(9, image)["result"], ort.infer(9, image)["result"])


# ---- the real service on ONNX Runtime ----------------------------------------------------------

@pytest.fixture(scope="module")
def ort_server(start_server):
    return start_server(engine="onnxruntime", ort_threads=1)


def test_the_service_runs_every_model_on_onnxruntime(ort_server, photos):
    models = requests.get(ort_server.url + "/api/models", timeout=10).json()["data"]
    assert {m["id"]: (m["ready"], m["engine"]) for m in models} == {
        m["id"]: (True, "onnxruntime") for m in models}
    status = requests.get(ort_server.url + "/api/status", timeout=10).json()["data"]
    assert list(status["engines"]) == ["onnxruntime"]
    ok, data = cv2.imencode(".jpg", photos["chelsea"])
    r = requests.post(ort_server.url + "/api/model/service/binary?mid=8", data=data.tobytes(), timeout=30)
    assert r.status_code == 200 and r.json()["data"]["result"][0]["label"] == "cat"
    metrics = requests.get(ort_server.url + "/metrics", timeout=10).text
    assert 'edgeapp_model_engine{engine="onnxruntime",model="8"} 1' in metrics


def test_a_reload_probes_new_models_on_the_workers_engine(tmp_path):
    # The probe that loads a new model before the worker does must use the worker's engine: a
    # bundle whose model.nb is corrupt but whose model.onnx is fine is added on ONNX Runtime (the
    # emulated arm64 board, which has no Paddle Lite, found this: every reload failed there).
    import json
    import shutil

    from edgeapp.bundle import load_bundles
    from edgeapp.worker import WorkerAccelerator
    from support import MODEL_DIR

    def add(name, mid):
        shutil.copytree(str(MODEL_DIR) + "/text-direction", str(tmp_path / name))
        spec = json.loads((tmp_path / name / "bundle.json").read_text())
        spec.update(id=mid, name=name)
        (tmp_path / name / "bundle.json").write_text(json.dumps(spec))

    add("text-direction", 2)
    acc = WorkerAccelerator(load_bundles(str(tmp_path)), slots=1, engine=engines.ONNXRUNTIME, ort_threads=1)
    acc.start()
    try:
        add("onnx-only", 9)
        (tmp_path / "onnx-only" / "model.nb").write_bytes(b"\x00garbage" * 64)
        done = acc.reload(load_bundles(str(tmp_path)))
        assert done["added"] == [9] and not done["failed"], done
        assert acc.model_status()[9]["engine"] == engines.ONNXRUNTIME
    finally:
        acc.stop()
