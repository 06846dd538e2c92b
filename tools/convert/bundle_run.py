#!/usr/bin/env python3
"""A new bundle as the service runs it, on each engine it has a model file for. Runs under the SERVICE venv.

    PYTHONPATH=src .venv/bin/python tools/convert/bundle_run.py MODEL_DIR [REFERENCE.npz]

MODEL_DIR holds the one bundle (an x86 model.nb, and model.onnx when it has one). For each engine
(edgeapp.engines; ONNX Runtime with one thread): the model type decodes a mid-grey and a noisy image
through the service's own code (Engine + LocalAccelerator), which must not fail. With both engines,
their raw outputs on the same tensors (REFERENCE.npz's inputs, if given, and those two images, made
the bundle's input) are compared output by output: same count and shapes, and the max abs difference, which the
caller holds to its tolerance. tools/bundle.py runs this as its "run" step.
Prints one JSON line: {"memory_mb": {engine: MB after warm-up}, "max_abs_diff", "max_abs"}.
"""
import json
import sys

import numpy as np

import photo_inputs
from edgeapp import engines
from edgeapp.accelerator import LocalAccelerator
from edgeapp.bundle import load_bundles
from edgeapp.engine import Engine


def images():
    rng = np.random.RandomState(0)
    return [np.full((300, 400, 3), 128, np.uint8), rng.randint(0, 255, (480, 360, 3)).astype(np.uint8)]


def settings(name):
    return engines.Settings(name, ort_threads=1)


def decode_on(bundles, name):
    """The model type on both images on one engine; returns the model's memory after warm-up (MB)."""
    e = Engine(bundles, LocalAccelerator(bundles, settings(name)))
    if e.failed:
        raise SystemExit("error: the bundle does not load on %s: %s" % (name, e.failed))
    mid = next(iter(bundles))
    for image in images():
        e.infer(mid, image)
    return e.accel.model_status()[mid]["memory_mb"]


def outputs_on(bundle, name, tensors):
    predictor = engines.open_predictor(bundle, settings(name))
    return [[np.array(o) for o in predictor.run([x])] for x in tensors]


def compare(bundle, reference):
    """Both engines' outputs on the same tensors: (max abs diff, max |Paddle Lite|)."""
    given = np.load(reference)["input"] if reference else []
    tensors = [np.asarray(x, np.float32).reshape(bundle.input_shape) for x in given]
    pre = bundle.spec.get("Preprocess") or {}
    tensors += [photo_inputs.image_tensor(image, bundle.input_shape, pre) for image in images()]
    want, got = (outputs_on(bundle, name, tensors) for name in (engines.PADDLELITE, engines.ONNXRUNTIME))
    diff, scale = 0.0, 0.0
    for w, g in zip(want, got):
        shapes = ([list(o.shape) for o in w], [list(o.shape) for o in g])
        if shapes[0] != shapes[1]:
            raise SystemExit("error: Paddle Lite gives outputs %s, ONNX Runtime %s" % shapes)
        for a, b in zip(w, g):
            diff = max(diff, float(np.abs(a.astype(np.float32) - b.astype(np.float32)).max()) if a.size else 0.0)
            scale = max(scale, float(np.abs(a).max()) if a.size else 0.0)
    return diff, scale


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    model_dir, reference = argv[0], (argv[1:] or [None])[0]
    bundles = load_bundles(model_dir)
    bundle = next(iter(bundles.values()))
    have = [name for name in engines.NAMES if bundle.model_files.get(name)]
    result = {"memory_mb": {name: decode_on(bundles, name) for name in reversed(have)}}
    if len(have) == 2:
        result["max_abs_diff"], result["max_abs"] = compare(bundle, reference)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
