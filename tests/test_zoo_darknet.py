"""Darknet models: our converter (tools/convert/darknet.py) against OpenCV's own Darknet reader, the
service's decode "yolo" on known tensors, and the zoo's YOLOv3-tiny (mid 11, optional) on a photo.

The converter test writes a tiny cfg with every section YOLOv3-tiny uses (batch-normalised leaky
convolutions, the size-2 stride-1 maxpool Darknet pads on the right and bottom, route, upsample,
two [yolo] heads) and seeded weights, converts it in the tool venv, runs the ONNX with onnxruntime
there, and compares the raw head maps with cv2.dnn.readNetFromDarknet on the same cfg and weights:
a second implementation of Darknet's arithmetic that we did not write.
"""
import json
import subprocess

import cv2
import numpy as np
import pytest

from support import REPO, build_zoo_bundle
from test_zoo_tfjs import COCO_CUP, COFFEE_CUP, ZOO_DIR, engine_for
from textimages import iou, loc_box

TOOL_PY = REPO / "build" / "tool-venv" / "bin" / "python"
DARKNET = REPO / "tools" / "convert" / "darknet.py"
ANCHORS = "6,8, 10,12, 14,20, 24,20, 30,36, 40,44"
HEAD = "[convolutional]\nsize=1\nstride=1\npad=1\nfilters=21\nactivation=linear\n\n" \
       "[yolo]\nmask=%s\nanchors=" + ANCHORS + "\nclasses=2\nnum=6\n\n"
TINY_CFG = ("[net]\nwidth=32\nheight=32\nchannels=3\n\n"
            + "".join("[convolutional]\nbatch_normalize=1\nfilters=%d\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n"
                      "[maxpool]\nsize=2\nstride=%d\n\n" % (f, s) for f, s in ((4, 2), (8, 2), (8, 1)))
            + HEAD % "3,4,5"
            + "[route]\nlayers=-4\n\n[convolutional]\nbatch_normalize=1\nfilters=4\nsize=1\nstride=1\npad=1\n"
              "activation=leaky\n\n[upsample]\nstride=2\n\n[route]\nlayers=-1, 2\n\n"
            + HEAD % "0,1,2")
# floats per convolution, in cfg order: (filters, input channels, size, batch_normalize)
TINY_CONVS = [(4, 3, 3, 1), (8, 4, 3, 1), (8, 8, 3, 1), (21, 8, 1, 0), (4, 8, 1, 1), (21, 12, 1, 0)]
RUN_ONNX = ("import sys, numpy as np, onnxruntime as ort; x = np.load(sys.argv[2]); "
            "np.savez(sys.argv[3], *ort.InferenceSession(sys.argv[1]).run(None, {'input': x}))")


def tiny_weights():
    """A Darknet 0.2 weights file for TINY_CFG: header, then each convolution's floats."""
    rng = np.random.default_rng(23)
    parts = [np.array([0, 2, 0], np.int32).tobytes(), np.array([0], np.int64).tobytes()]
    for filters, channels, size, bn in TINY_CONVS:
        per_filter = [rng.normal(0, 0.2, filters)]  # biases (beta)
        if bn:
            per_filter += [rng.uniform(0.5, 1.5, filters), rng.normal(0, 0.2, filters), rng.uniform(0.3, 2.0, filters)]
        per_filter.append(rng.normal(0, 0.4, filters * channels * size * size))
        parts += [p.astype(np.float32).tobytes() for p in per_filter]
    return b"".join(parts)


def run_tool(*args):
    assert TOOL_PY.exists(), "the converter venv is missing: run `make tool-venv` (make test does)"
    return subprocess.run([str(TOOL_PY)] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)


def test_tiny_cfg_converts_as_opencv_reads_darknet(tmp_path):
    cfg, weights = tmp_path / "tiny.cfg", tmp_path / "tiny.weights"
    cfg.write_text(TINY_CFG)
    weights.write_bytes(tiny_weights())
    res = run_tool(DARKNET, cfg, weights, tmp_path / "tiny.onnx", "--shape", "1,3,32,32")
    assert res.returncode == 0, res.stdout
    heads = json.loads(res.stdout.split("outputs ", 1)[1])
    assert [(h["shape"], h["mask"], h["classes"]) for h in heads] == [([1, 21, 8, 8], [3, 4, 5], 2),
                                                                       ([1, 21, 16, 16], [0, 1, 2], 2)]
    x = np.random.default_rng(5).uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    res = run_tool("-c", RUN_ONNX, tmp_path / "tiny.onnx", tmp_path / "x.npy", tmp_path / "out.npz")
    assert res.returncode == 0, res.stdout
    ours = np.load(tmp_path / "out.npz")
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setInput(x)
    theirs = net.forward(["conv_6", "conv_12"])  # the linear convolutions that feed the [yolo] heads
    for i, ref in enumerate(theirs):
        assert ours["arr_%d" % i].shape == ref.shape
        assert np.abs(ours["arr_%d" % i] - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())


def test_weights_that_do_not_fit_the_cfg_are_refused(tmp_path):
    cfg, weights = tmp_path / "tiny.cfg", tmp_path / "tiny.weights"
    cfg.write_text(TINY_CFG)
    for data, says in ((tiny_weights()[:-4], "ends early"), (tiny_weights() + b"\0" * 8, "the weights file has")):
        weights.write_bytes(data)
        res = run_tool(DARKNET, cfg, weights, tmp_path / "tiny.onnx", "--shape", "1,3,32,32")
        assert res.returncode == 1 and says in res.stdout, res.stdout


# ---- decode "yolo" on known tensors (no model) ---------------------------------------------------
def test_yolo_decode_places_anchors_in_cells(tmp_path):
    from edgeapp.bundle import Bundle
    from edgeapp.models.detection import Detector
    from edgeapp.models.fit import Placement

    spec = {"id": 99, "name": "yolo", "type": "detection", "input_shape": [1, 3, 416, 416],
            "PostProcess": {"decode": "yolo", "anchors": [[10, 14], [23, 27], [37, 58], [81, 82], [135, 169],
                                                          [344, 319]],
                            "masks": [[3, 4, 5], [0, 1, 2]], "score_thresh": 0.3, "nms_thresh": 0.45},
            "label_list": ["person", "cat", "cup"]}
    coarse = np.full((1, 3, 8, 13, 13), -20.0, np.float32)  # anchor, (x, y, w, h, obj, 3 classes), cell
    coarse[0, 1, :4, 7, 5] = [0.0, 0.0, 0.0, np.log(2.0)]   # anchor 4 (135 x 169), row 7, column 5
    coarse[0, 1, 4, 7, 5], coarse[0, 1, 5 + 2, 7, 5] = 20.0, 0.0  # objectness ~1, cup 0.5
    fine = np.full((1, 3, 8, 26, 26), -20.0, np.float32)
    fine[0, 2, :4, 3, 20] = [20.0, -20.0, 0.0, 0.0]          # anchor 2 (37 x 58) at the cell's right edge
    fine[0, 2, 4, 3, 20], fine[0, 2, 5 + 1, 3, 20] = 20.0, 20.0  # a sure cat
    got = Detector(Bundle(str(tmp_path), spec)).postprocess(
        [coarse.reshape(1, 24, 13, 13), fine.reshape(1, 24, 26, 26)], Placement(1, 1), (416, 416, 3))
    cx, cy, w, h = 5.5 * 32, 7.5 * 32, 135, 169 * 2
    fx, fy = 21 * 16, 3 * 16
    want = [(1, 1.0, fx - 18.5, fy - 29, fx + 18.5, fy + 29), (2, 0.5, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)]
    assert [(c, round(s, 3)) for c, s, *_ in got] == [(c, s) for c, s, *_ in want]
    assert np.allclose([r[2:] for r in got], [r[2:] for r in want], atol=1e-3), got


# ---- the zoo bundle (mid 11, optional) -----------------------------------------------------------
@pytest.fixture(scope="module")
def yolo():
    build_zoo_bundle(ZOO_DIR, "objects-yolov3-tiny")
    return engine_for(ZOO_DIR, 11)


@pytest.mark.optional_zoo
def test_yolov3_tiny_finds_the_cup(yolo, photos):
    """The cup and nothing else in coffee.png (cup 0.53). YOLOv3-tiny misses the astronaut (person
    0.09) and the cat (0.05): see the object benchmark."""
    found = yolo.infer(11, photos["coffee"])["result"]
    assert [(r["label"], r["index"]) for r in found] == [("cup", COCO_CUP)], found
    assert iou(loc_box(found[0]), COFFEE_CUP) >= 0.7, found[0]["location"]
