"""Fitting real photos into a bundle's input (edgeapp.models.fit), as every model type does it, and
the model-type registry and base class (edgeapp.models, edgeapp.models.base).

No predictor runs here: a model type's preprocess() is the image -> tensor step, and a tensor is
compared with the tensor of an image resized by hand with OpenCV (a same-size resize is a copy).
"""
import json
import os

import cv2
import numpy as np
import pytest

from edgeapp import models
from edgeapp.bundle import Bundle, BundleError
from edgeapp.models import fit
from edgeapp.models.base import ModelType
from support import MODEL_DIR


def bundle(folder, type=None, **pre):
    """A built bundle of MODEL_DIR (no model file is read), its type and Preprocess changed."""
    folder = os.path.join(MODEL_DIR, folder)
    with open(os.path.join(folder, "bundle.json"), encoding="utf-8") as f:
        spec = json.load(f)
    spec["type"] = type or spec["type"]
    spec["Preprocess"].update(pre)
    return Bundle(folder, spec)


def doc_orientation(**pre):
    """The zoo's doc-orientation bundle (classify, Preprocess.interpolation "lanczos"), Preprocess changed."""
    return bundle("doc-orientation", **pre)


def detector(**pre):
    """A detection bundle 96 high and 64 wide (the layout model is not in MODEL_DIR)."""
    spec = {"id": 60, "name": "det", "type": "detection", "input_shape": [1, 3, 96, 64],
            "Preprocess": dict({"channel_order": "RGB"}, **pre), "PostProcess": {"decode": "nms"}}
    return Bundle(MODEL_DIR, spec)


def tensor(model, image):
    out = model.preprocess(image)
    return out[0] if isinstance(out, tuple) else out


def fitted_size(model, image):
    """The size the model's fit resizes `image` to, before any padding or crop."""
    place = model.fit(image)[1]
    h, w = image.shape[:2]
    return int(round(place.sx * w)), int(round(place.sy * h))


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_classify_resizes_with_the_bundles_interpolation(photos, resize):
    photo = photos["coffee"]                       # 600 x 400
    h, w = 224, 224
    size = (w, h) if resize == "stretch" else (224, int(round(400 * 224 / 600.0)))
    model = models.build(doc_orientation(resize=resize), {})
    got = tensor(model, photo)
    lanczos = tensor(model, cv2.resize(photo, size, interpolation=cv2.INTER_LANCZOS4))
    linear = tensor(model, cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR))
    assert np.array_equal(got, lanczos)
    assert np.abs(got - linear).max() > 0.1  # a real difference: the interpolation was not ignored


# Every model type that resizes, each way it resizes, on bundles of MODEL_DIR and a drawn one.
FITTED = [
    pytest.param(lambda **pre: bundle("ppocr-det", **pre), id="db_det-letterbox"),
    pytest.param(lambda **pre: bundle("text-direction", **pre), id="classify-text_line"),
    pytest.param(lambda **pre: doc_orientation(**pre), id="classify-resize_short"),
    pytest.param(lambda **pre: doc_orientation(resize="stretch", **pre), id="classify-stretch"),
    pytest.param(lambda **pre: bundle("ppocr", "ctc_rec", **pre), id="ctc_rec-text_line"),
    pytest.param(lambda **pre: bundle("face", **pre), id="blazeface-letterbox"),
    pytest.param(lambda **pre: bundle("face-far", resize="stretch", **pre), id="blazeface-stretch"),
    pytest.param(lambda **pre: detector(**pre), id="detection-stretch"),
    pytest.param(lambda **pre: detector(resize="letterbox", **pre), id="detection-letterbox"),
]


@pytest.mark.parametrize("make", FITTED)
def test_every_type_resizes_with_the_bundles_interpolation(photos, make):
    photo = photos["astronaut"][100:400, 40:480]   # 440 x 300: every model scales it down
    model = models.build(make(interpolation="cubic"), {})
    size = fitted_size(model, photo)
    cubic = tensor(model, cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC))
    assert np.array_equal(tensor(model, photo), cubic)
    assert not np.array_equal(tensor(model, cv2.resize(photo, size, interpolation=cv2.INTER_NEAREST)), cubic)


@pytest.mark.parametrize("make,flag", [
    (lambda: detector(), cv2.INTER_AREA),                      # automatic: area when scaled down
    (lambda: bundle("face"), cv2.INTER_AREA),
    (lambda: doc_orientation(resize="letterbox"), cv2.INTER_LINEAR),  # as PaddleClas
    (lambda: bundle("ppocr", "ctc_rec"), cv2.INTER_LINEAR),     # as PaddleOCR
], ids=["detection", "blazeface", "classify", "ctc_rec"])
def test_without_interpolation_each_type_takes_its_default(photos, make, flag):
    b = make()
    b.pre.pop("interpolation", None)
    model = models.build(b, {})
    photo = photos["coffee"]
    size = fitted_size(model, photo)
    assert np.array_equal(tensor(model, photo), tensor(model, cv2.resize(photo, size, interpolation=flag)))


def test_automatic_interpolation_is_linear_when_scaling_up(photos):
    model = models.build(detector(), {})
    small = photos["coffee"][:40, :30]
    assert np.array_equal(tensor(model, small), tensor(model, cv2.resize(small, (64, 96), interpolation=cv2.INTER_LINEAR)))


@pytest.mark.parametrize("make,pre", [
    (detector, {"resize": "resize_short"}),
    (lambda **pre: bundle("face", **pre), {"resize": "text_line"}),
    (doc_orientation, {"resize": "sideways"}),
    (doc_orientation, {"interpolation": "smooth"}),
    (detector, {"interpolation": 9}),
])
def test_a_resize_the_type_does_not_take_fails_the_build(make, pre):
    with pytest.raises(ValueError, match="Preprocess"):
        models.build(make(**pre), {})


def test_letterbox_placement_maps_back_to_the_original(photos):
    photo = photos["coffee"]                       # 600 x 400 into 96 x 64: scale 64 / 600
    img, place = fit.letterbox(photo, 96, 64)
    assert img.shape[:2] == (43, 64) and (place.width, place.height) == (64, 43)
    assert place.scale == pytest.approx(64 / 600.0)
    assert place.to_original(64, 43) == pytest.approx((600, 400))


def test_resize_short_crops_the_centre(photos):
    img, place = fit.resize_short_crop(photos["coffee"], 224, 224, 256)
    assert img.shape[:2] == (224, 224)
    assert place.to_original(0, 0) == pytest.approx(((384 - 224) // 2 * 600 / 384.0, (256 - 224) // 2 * 400 / 256.0))


# ---- the registry and the base class -----------------------------------------------------------
def test_every_registered_type_is_a_model_type():
    for name in models.TYPES:
        assert issubclass(models.type_class(name), ModelType), name


def test_a_bundle_of_an_unregistered_type_is_refused():
    spec = {"id": 61, "name": "x", "type": "segmentation", "input_shape": [1, 3, 8, 8]}
    with pytest.raises(BundleError, match="unknown model type 'segmentation' .*classify"):
        Bundle(MODEL_DIR, spec)


def test_reading_bundles_imports_no_model_type(run_python):
    # The worker process and edgeapp-diag read bundles: they must not pay for OpenCV.
    res = run_python("-c", "import sys; from edgeapp.bundle import load_bundles; load_bundles(sys.argv[1]); "
                     "print(sorted(m for m in sys.modules if m == 'cv2' or m.startswith('edgeapp.models.')))",
                     MODEL_DIR)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", res.stdout


def test_defaults_of_the_base_class():
    b = detector()
    plain = ModelType(b)
    assert plain.needs() == [60] and plain.reduction(4000, 3000) == 1
    assert plain.label(0) == "0"
    with pytest.raises(NotImplementedError):
        plain.infer(None, None)
    # A type with a fit decodes JPEGs smaller when its resize allows: 4000 x 3000 -> 64 x 96 stretch.
    assert models.build(b, {}).reduction(4000, 3000) == 8


def test_the_ocr_pipeline_needs_its_stages_and_every_pixel():
    from edgeapp.bundle import load_bundles
    bundles = load_bundles(MODEL_DIR)
    ocr = models.build(bundles[3], bundles)
    assert sorted(ocr.needs()) == [1, 2, 3]
    assert ocr.reduction(4000, 3000) == 1
