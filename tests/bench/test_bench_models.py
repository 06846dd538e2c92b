"""pytest-benchmark: the hot functions around the accelerator (no timed asserts here).

`make bench` runs these with timing; `make test` runs each once as a plain test.
"""
import base64

import cv2
import numpy as np
import pytest

from edgeapp import images, render
from edgeapp.models import line_pieces
from edgeapp.models.ocr import crop_region
from edgeapp.results import dumps, success
from textimages import encode, page, text_line



@pytest.fixture(scope="module")
def engine(local_engine):
    return local_engine


@pytest.fixture(scope="module")
def photo():
    """A 1280x960 page with text, like a phone photo of a document."""
    img, _ = page([("HELLO WORLD", (80, 200)), ("EdgeBoard 2026", (80, 500)), ("Invoice 12345", (80, 800))],
                  size=(960, 1280), scale=2.5, thickness=5)
    return img


@pytest.fixture(scope="module")
def det_outputs(engine, photo):
    det = engine.models[1]
    tensor, box = det.preprocess(photo)
    return engine.accel.run(1, [tensor])[0][0, 0], box


def test_bench_base64_decode(benchmark, photo):
    text = base64.b64encode(encode(photo, ".jpg")).decode()
    benchmark(base64.b64decode, text)


def test_bench_image_decode_jpeg(benchmark, photo):
    data = encode(photo, ".jpg")
    assert benchmark(images.decode, data, 40 * 10 ** 6).shape == photo.shape


def test_bench_det_preprocess(benchmark, engine, photo):
    tensor, _ = benchmark(engine.models[1].preprocess, photo)
    assert list(tensor.shape) == engine.bundles[1].input_shape


def test_bench_det_postprocess(benchmark, engine, photo, det_outputs):
    prob, box = det_outputs
    boxes = benchmark(engine.models[1].postprocess, prob, box, photo.shape)
    assert len(boxes) == 3


def test_bench_cls_preprocess(benchmark, engine):
    line = text_line("HELLO WORLD")
    assert list(benchmark(engine.models[2].preprocess, line).shape) == engine.bundles[2].input_shape


def test_bench_cls_postprocess(benchmark, engine):
    assert benchmark(engine.models[2].postprocess, np.array([[0.1, 0.9]], np.float32))[1] == "180"


def test_bench_rec_preprocess(benchmark, engine):
    rec = engine.models[3].recognizer
    tensors, windows = benchmark(rec.preprocess, text_line("EdgeBoard 2026"))
    assert [list(t.shape) for t in tensors] == [engine.bundles[3].input_shape] * len(windows)


def test_bench_rec_postprocess(benchmark, engine):
    rec = engine.models[3].recognizer
    tensors, windows = rec.preprocess(text_line("EdgeBoard 2026"))
    probs = engine.accel.run(3, [tensors[0]])[0][0].copy()

    def postprocess():
        kept = line_pieces.keep_own(line_pieces.placed(line_pieces.decode(probs, rec.chars), windows[0]), windows[0])
        return line_pieces.join(line_pieces.stitch([kept], windows))

    assert benchmark(postprocess)[0] == "EdgeBoard 2026"


def test_bench_ocr_crop(benchmark, engine, photo, det_outputs):
    prob, box = det_outputs
    pts = engine.models[1].postprocess(prob, box, photo.shape)[0][0]
    assert benchmark(crop_region, photo, pts).shape[0] > 10


def test_bench_render_and_jpeg(benchmark, engine, photo):
    results = engine.infer(1, photo)["result"]
    jpeg = benchmark(lambda: render.to_jpeg(render.draw(photo, results)))
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1).shape == photo.shape


def test_bench_response_json(benchmark, engine, photo):
    data = engine.infer(3, photo)
    assert benchmark(dumps, success(data)).startswith('{"code":0')
