"""Fitting real photos into a bundle's input (edgeapp.models.fit), as every model type does it.

No predictor runs here: a model type's preprocess() is the image -> tensor step, and a tensor is
compared with the tensor of an image resized by hand with OpenCV (a same-size resize is a copy).
"""
import json
import os

import cv2
import numpy as np
import pytest

from edgeapp import models
from edgeapp.bundle import Bundle
from support import MODEL_DIR


def doc_orientation(**pre):
    """The zoo's doc-orientation bundle (classify, Preprocess.interpolation "lanczos"), Preprocess changed."""
    folder = os.path.join(MODEL_DIR, "doc-orientation")
    with open(os.path.join(folder, "bundle.json"), encoding="utf-8") as f:
        spec = json.load(f)
    spec["Preprocess"].update(pre)
    return Bundle(folder, spec)


def tensor(model, image):
    out = model.preprocess(image)
    return out[0] if isinstance(out, tuple) else out


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
