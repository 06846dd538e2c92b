"""Bring your own model: each export format, bundled with tools/bundle.py, served, and asked.

The models are made in the test set-up by tests/byom_models.py under the tool venv (paddlepaddle,
onnx): tiny real networks that find a saturated colour, so the right answer is known. A red square
filling one cell of the 4 x 4 grid must come back as one "red" box at that cell, in the pixels of
the image as sent (640 x 480 here, resized to the models' 128 x 128 or 96 x 96 inputs). Each bundle
also carries model.onnx where one can be made, and answers the same on ONNX Runtime as on Paddle Lite.
"""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import requests

from support import REPO
from textimages import encode

TOOL = REPO / "tools" / "bundle.py"
TOOL_PY = REPO / "build" / "tool-venv" / "bin" / "python"

# (folder or file made by byom_models.py, id, extra arguments, label of the red square, its index)
FORMATS = [
    ("paddledet", 101, [], "red", 0),                       # PaddleDetection, [N,6] + box count
    ("paddledet-nocount", 102, ["--engine", "paddlelite"], "red", 0),  # [N,6] only; pinned to Lite: no ONNX
    ("picodet-nonms", 103, [], "red", 0),                   # PicoDet exported without NMS
    ("paddledet", 107, ["--keep-nms", "--name", "paddledet-keepnms"], "red", 0),  # the model's own NMS
    ("edgeboard-ssd", 105, [], "red", 1),                   # EdgeBoard config.json, SSD normalised, background 0
]
CLASSIFIERS = [("paddleclas", 104, []), ("onnx/colour.onnx", 106, []), ("colour-lite.nb", 108, [])]
CELL = (2, 1)  # column, row of the red square


CACHE = []  # the conversions of these throw-away models go to a temp folder, not build/cache


def bundle(*args, **kw):
    extra = [] if "--cache" in args or not CACHE else ["--cache", CACHE[0]]
    return subprocess.run([sys.executable, str(TOOL)] + [str(a) for a in args] + extra, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=kw.get("timeout", 300))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    assert TOOL_PY.exists(), "the converter venv is missing: run `make tool-venv` (make test does)"
    out = tmp_path_factory.mktemp("exports")
    CACHE[:] = [str(tmp_path_factory.mktemp("convert-cache"))]
    res = subprocess.run([str(TOOL_PY), str(REPO / "tests" / "byom_models.py"), str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                         env=dict({k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, GLOG_minloglevel="2"))
    assert res.returncode == 0, res.stdout
    return out


@pytest.fixture(scope="module")
def model_dir(exports, tmp_path_factory):
    """Every format bundled into one model dir (the .nb round trip reuses the PaddleClas bundle's .nb)."""
    models = tmp_path_factory.mktemp("byom-models")
    logs = {}
    for src, mid, extra, _, _ in FORMATS:
        res = bundle(exports / src, "--id", mid, "--out", models, *extra)
        assert res.returncode == 0, res.stdout + res.stderr
        logs[mid] = res.stdout + res.stderr
    for src, mid, extra in CLASSIFIERS[:2]:
        res = bundle(exports / src, "--id", mid, "--out", models, *extra)
        assert res.returncode == 0, res.stdout + res.stderr
        logs[mid] = res.stdout + res.stderr
    # A Paddle Lite .nb with a spec beside it (colour-lite.json).
    shutil.copy(str(models / "paddleclas" / "model.nb"), str(exports / "colour-lite.nb"))
    spec = json.loads((models / "paddleclas" / "bundle.json").read_text())
    (exports / "colour-lite.json").write_text(json.dumps(
        {k: spec[k] for k in ("type", "input_shape", "Preprocess", "PostProcess", "label_list")}))
    return models, logs


@pytest.fixture(scope="module")
def served(model_dir, exports, start_server):
    """First a server on the bundles, then one more bundle dropped in and a fresh start."""
    models, logs = model_dir
    first = start_server(model_dir=models)
    ids = [m["id"] for m in requests.get(first.url + "/api/models", timeout=5).json()["data"]]
    first.stop()
    res = bundle(exports / "colour-lite.nb", "--id", 108, "--out", models)
    assert res.returncode == 0, res.stdout + res.stderr
    logs[108] = res.stdout + res.stderr
    return start_server(model_dir=models), ids


def red_square_image():
    img = np.zeros((480, 640, 3), np.uint8)
    c, r = CELL
    cv2.rectangle(img, (c * 160, r * 120), (c * 160 + 159, r * 120 + 119), (0, 0, 255), -1)
    return img, (c * 160.0, r * 120.0, 160.0, 120.0)


def post(url, mid, image):
    r = requests.post(url + "/api/model/service/binary?mid=%d" % mid, data=encode(image), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def test_progress_line_per_step(model_dir):
    _, logs = model_dir
    lines = [l for l in logs[101].splitlines() if l.startswith("[")]
    assert [l.split("]")[0] + "]" for l in lines] == ["[%d/9]" % i for i in range(1, 10)]
    assert "PaddleDetection export" in lines[0] and "multiclass_nms3 cut off" in logs[101]
    assert "check: Paddle Lite x86 vs paddlepaddle" in logs[101]
    assert lines[5].startswith("[6/9] onnx: model.onnx by paddle2onnx")
    assert lines[6].startswith("[7/9] ONNX check: ONNX Runtime x86 vs paddlepaddle")
    assert "and ONNX Runtime" in lines[7] and "model.nb + model.onnx" in lines[8]


def test_new_bundle_is_picked_up_by_a_fresh_start(served):
    server, first_ids = served
    assert 108 not in first_ids and {101, 104, 105} <= set(first_ids)
    models = {m["id"]: m for m in requests.get(server.url + "/api/models", timeout=5).json()["data"]}
    assert set(models) == {101, 102, 103, 104, 105, 106, 107, 108}
    assert all(m["ready"] for m in models.values()), models


@pytest.mark.parametrize("src,mid,extra,label,index", FORMATS)
def test_detector_round_trip(served, src, mid, extra, label, index):
    server, _ = served
    image, (left, top, width, height) = red_square_image()
    results = post(server.url, mid, image)
    assert len(results) == 1, results
    r = results[0]
    assert r["label"] == label and r["index"] == index and r["score"] > 0.9
    loc = r["location"]
    assert abs(loc["left"] - left) <= 2 and abs(loc["top"] - top) <= 2, loc
    assert abs(loc["width"] - width) <= 2 and abs(loc["height"] - height) <= 2, loc
    assert post(server.url, mid, np.zeros((300, 500, 3), np.uint8)) == []


@pytest.mark.parametrize("src,mid,extra", CLASSIFIERS)
def test_classifier_round_trip(served, src, mid, extra):
    server, _ = served
    green = np.zeros((200, 300, 3), np.uint8)
    green[:] = (0, 255, 0)
    results = post(server.url, mid, green)
    assert results[0]["label"] == "green" and results[0]["score"] > 0.9
    assert results[0]["location"] == {"height": 200.0, "left": 0.0, "top": 0.0, "width": 300.0}
    blue = np.zeros((64, 64, 3), np.uint8)
    blue[:] = (255, 0, 0)
    assert post(server.url, mid, blue)[0]["label"] == "blue"


def test_bundles_say_how_they_were_built(model_dir):
    models, _ = model_dir
    spec = {p.parent.name: json.loads(p.read_text()) for p in models.glob("*/bundle.json")}
    det = spec["paddledet"]
    assert det["PostProcess"]["decode"] == "boxes_scores" and det["Preprocess"]["channel_order"] == "RGB"
    assert det["PostProcess"]["nms_thresh"] == pytest.approx(0.45)
    assert det["input_shape"] == [1, 3, 128, 128] and det["label_list"] == ["red", "green"]
    assert spec["paddledet-keepnms"]["PostProcess"]["decode"] == "nms"
    ssd = spec["edgeboard-ssd"]["PostProcess"]
    assert ssd["decode"] == "boxes_scores" and ssd["normalized"] is True and ssd["background_label"] == 0
    assert spec["paddleclas"]["Preprocess"]["resize"] == "resize_short"
    assert spec["paddleclas"]["label_list"] == ["red", "green", "blue"]
    for name, s in spec.items():
        assert s["built"]["tool"] == "tools/bundle.py" and len(s["built"]["sha256"]) == 64
        if name != "colour-lite":
            assert s["built"]["check"]["lite_max_abs_diff"] < 1e-4, name


# ---- model.onnx: ONNX Runtime beside Paddle Lite -------------------------------------------------
NO_ONNX = {"colour-lite": ".nb cannot be turned into ONNX",   # a bare .nb: nothing to export
           "paddledet-nocount": "--engine paddlelite",        # pinned to Paddle Lite: none made
           "paddledet-keepnms": "ONNX Runtime check"}       # paddle2onnx's NMS graph does not load in ORT


def test_bundles_carry_a_checked_model_onnx(model_dir):
    models, logs = model_dir
    for p in models.glob("*/bundle.json"):
        spec, name = json.loads(p.read_text()), p.parent.name
        if name in NO_ONNX:
            assert "onnx_model" not in spec and not (p.parent / "model.onnx").exists(), name
            assert NO_ONNX[name] in spec["built"]["no_onnx"], spec["built"]
            assert spec.get("engine") == ("paddlelite" if name == "paddledet-nocount" else None)
            continue
        assert spec["onnx_model"] == "model.onnx" and (p.parent / "model.onnx").is_file(), name
        check = spec["built"]["onnx_check"]
        assert check["onnx_max_abs_diff"] < 1e-4 and check["onnxruntime"] == "1.19.2", (name, check)
        assert "engine" not in spec  # the board's engine runs it
    assert spec["built"]["onnx_tool"] in ("paddle2onnx", "the source ONNX")
    assert "warning: no model.onnx: the ONNX Runtime check" in logs[107]
    assert "the bundle will run on Paddle Lite only" in logs[107]


@pytest.fixture(scope="module")
def both_engines(model_dir):
    """The bundles in this process on Paddle Lite and on ONNX Runtime (one thread)."""
    from edgeapp import engines
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles
    from edgeapp.engine import Engine
    bundles = load_bundles(str(model_dir[0]))
    lite = Engine(bundles, LocalAccelerator(bundles, warm=False))
    ort = Engine(bundles, LocalAccelerator(bundles, engines.Settings("onnxruntime", ort_threads=1), warm=False))
    return lite, ort


def test_onnx_runtime_runs_the_bundles(both_engines):
    lite, ort = both_engines
    assert not ort.failed and not lite.failed
    status = ort.accel.model_status()
    for mid, b in ort.bundles.items():  # a bundle without model.onnx stays on the engine it has a file for
        assert status[mid]["engine"] == ("paddlelite" if b.name in NO_ONNX else "onnxruntime"), (b.name, status)


@pytest.mark.parametrize("src,mid,extra,label,index", FORMATS)
def test_detectors_answer_the_same_on_both_engines(both_engines, src, mid, extra, label, index):
    from test_engines import same_results
    lite, ort = both_engines
    image, _ = red_square_image()
    a, b = lite.infer(mid, image)["result"], ort.infer(mid, image)["result"]
    assert [r["label"] for r in b] == [label]
    same_results(a, b)


@pytest.mark.parametrize("src,mid,extra", CLASSIFIERS[:2])
def test_classifiers_answer_the_same_on_both_engines(both_engines, src, mid, extra):
    from test_engines import same_results
    lite, ort = both_engines
    for bgr, label in (((0, 255, 0), "green"), ((255, 0, 0), "blue")):
        image = np.zeros((120, 160, 3), np.uint8)
        image[:] = bgr
        a, b = lite.infer(mid, image)["result"], ort.infer(mid, image)["result"]
        assert b[0]["label"] == label and b[0]["score"] > 0.9
        same_results(a, b)


def test_engine_flag_pins_and_requires_onnx(model_dir, exports, tmp_path):
    """--engine onnxruntime: model.onnx required (a failed check or a bare .nb is an error, nothing is
    written) and the bundle pinned to ONNX Runtime, which the service then runs whatever its default."""
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles
    out = tmp_path / "out"
    res = bundle(exports / "paddleclas", "--id", 120, "--name", "pinned", "--out", out, "--engine", "onnxruntime")
    assert res.returncode == 0, res.stdout + res.stderr
    spec = json.loads((out / "pinned" / "bundle.json").read_text())
    assert spec["engine"] == "onnxruntime" and spec["onnx_model"] == "model.onnx"
    bundles = load_bundles(str(out))
    assert LocalAccelerator(bundles, warm=False).model_status()[120]["engine"] == "onnxruntime"
    res = bundle(exports / "paddledet", "--id", 121, "--keep-nms", "--out", out, "--engine", "onnxruntime")
    assert res.returncode == 1 and "no model.onnx" in res.stderr and "--engine onnxruntime needs it" in res.stderr
    res = bundle(exports / "colour-lite.nb", "--id", 122, "--out", out, "--engine", "onnxruntime")
    assert res.returncode == 1 and "a Paddle Lite .nb cannot be turned into ONNX" in res.stderr, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["pinned"]


def test_broken_bundle_is_reported_not_fatal(model_dir, start_server, tmp_path):
    models, _ = model_dir
    mixed = tmp_path / "models"
    shutil.copytree(str(models / "paddleclas"), str(mixed / "paddleclas"))
    shutil.copytree(str(models / "paddledet"), str(mixed / "broken"))
    spec = json.loads((mixed / "broken" / "bundle.json").read_text())
    spec.update(id=199, name="broken")
    (mixed / "broken" / "bundle.json").write_text(json.dumps(spec))
    (mixed / "broken" / "model.nb").write_bytes(b"not a paddle lite model" * 100)
    s = start_server(model_dir=mixed)
    models_ = {m["id"]: m for m in requests.get(s.url + "/api/models", timeout=5).json()["data"]}
    assert models_[104]["ready"] is True
    assert models_[199]["ready"] is False and models_[199]["reason"]
    s.stop()


# ---- refusals ----------------------------------------------------------------------------------
def test_encrypted_model_is_refused(tmp_path):
    (tmp_path / "model.encrypted").write_bytes(b"\x8f" * 64)
    (tmp_path / "config.json").write_text("{}")
    res = bundle(tmp_path, "--id", 150, "--out", tmp_path / "out")
    assert res.returncode == 1 and "encrypted EdgeBoard model" in res.stderr, res.stderr
    assert not (tmp_path / "out").exists()


def test_ppnc_bundle_is_refused(tmp_path):
    (tmp_path / "model.ppnc").write_bytes(b"\0" * 64)
    res = bundle(tmp_path, "--id", 150, "--out", tmp_path / "out")
    assert res.returncode == 1 and "PPNC" in res.stderr and "DK-1A" in res.stderr, res.stderr


@pytest.mark.parametrize("name,what", [("net.pt", "PyTorch"), ("frozen.pb", "TensorFlow"), ("x.rknn", "RKNN")])
def test_other_frameworks_are_named(tmp_path, name, what):
    (tmp_path / name).write_bytes(b"\0" * 16)
    res = bundle(tmp_path / name, "--id", 150, "--out", tmp_path / "out")
    assert res.returncode == 1 and what in res.stderr, res.stderr


def test_model_without_spec_is_refused(exports, tmp_path):
    onnx = tmp_path / "lonely.onnx"
    shutil.copy(str(exports / "onnx" / "colour.onnx"), str(onnx))
    res = bundle(onnx, "--id", 150, "--out", tmp_path / "out")
    assert res.returncode == 1 and "--config" in res.stderr


def test_used_id_is_refused(model_dir, exports):
    models, _ = model_dir
    res = bundle(exports / "paddleclas", "--id", 101, "--name", "other", "--out", models)
    assert res.returncode == 1 and "101" in res.stderr and "paddledet" in res.stderr


def test_missing_tool_venv_is_reported(exports, tmp_path):
    res = bundle(exports / "onnx" / "colour.onnx", "--id", 150, "--out", tmp_path / "out",
                 "--tool-venv", tmp_path / "no-venv", "--cache", tmp_path / "cache")
    assert res.returncode == 1 and "make tool-venv" in res.stderr, res.stderr


def test_broken_bundle_json_can_be_skipped(model_dir, tmp_path):
    """load_bundles(dir, errors): what a reload uses so that one bad folder does not stop the rest."""
    from edgeapp.bundle import BundleError, load_bundles
    models, _ = model_dir
    shutil.copytree(str(models / "colour"), str(tmp_path / "colour"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bundle.json").write_text("{not json")
    (tmp_path / ".half.tmp-1").mkdir()  # a bundle being written: never read
    shutil.copy(str(models / "colour" / "bundle.json"), str(tmp_path / ".half.tmp-1" / "bundle.json"))
    with pytest.raises(BundleError):
        load_bundles(str(tmp_path))
    errors = {}
    assert sorted(load_bundles(str(tmp_path), errors)) == [106]
    assert list(errors) == [str(tmp_path / "bad")] and "not valid JSON" in errors[str(tmp_path / "bad")]
