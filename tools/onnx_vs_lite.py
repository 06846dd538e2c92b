#!/usr/bin/env python3
"""Both engines on the same real tensors: each built bundle's model.onnx (ONNX Runtime) against its
model.nb (Paddle Lite), output by output.

    PYTHONPATH=src .venv/bin/python tools/onnx_vs_lite.py [--model-dir build/models/x86] [--only NAME,...]

Runs under the SERVICE venv (paddlelite and onnxruntime 1.19.2), through the service's own engine
modules (edgeapp.engines: the session settings the worker uses). The tensors are the conversion
check's photos (build/cache/check-photos, from the pinned scikit-image wheel) and the bundle's own
sample image, each made the bundle's input by the service's code (tools/convert/photo_inputs.py).
Prints, per bundle and output, both engines' output names and shapes and the max abs difference;
exits 1 when the outputs do not line up (count, order of shapes) or differ by more than the build's
tolerance (1e-3 x max(1, |Lite|max), or the bundle's source.tolerance).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "convert"))
import photo_inputs  # noqa: E402

from edgeapp import engines  # noqa: E402
from edgeapp.bundle import Bundle  # noqa: E402

REPO = HERE.parent
PHOTOS = sorted((REPO / "build" / "cache" / "check-photos").glob("*.png"))
DEFAULT_TOLERANCE = 1e-3


def real_tensors(bundle, folder):
    """The check photos and the bundle's sample image as its input tensors: (names, tensors)."""
    sample = (bundle.get("sample") or {}).get("image")
    paths = PHOTOS + ([folder / sample] if sample else [])
    return ([p.name for p in paths],
            [photo_inputs.photo_tensor(str(p), bundle["input_shape"], bundle.get("Preprocess") or {}) for p in paths])


def compare_bundle(folder, threads):
    """[(output index, Lite name, ONNX name, Lite shape, ONNX shape, max abs diff, max |Lite|)] over the tensors."""
    bundle = json.loads((folder / "bundle.json").read_text())
    names, tensors = real_tensors(bundle, folder)
    b = Bundle(str(folder), bundle)
    lite = engines.open_predictor(b, engines.Settings(engines.PADDLELITE))
    want = [lite.run([x]) for x in tensors]  # the engine returns copies
    lite_names = lite.output_names
    del lite
    ort = engines.open_predictor(b, engines.Settings(engines.ONNXRUNTIME, ort_threads=threads))
    got = [ort.run([x]) for x in tensors]
    onnx_names = ort.output_names
    rows = []
    for i in range(max(len(lite_names), len(onnx_names))):
        if i >= len(lite_names) or i >= len(onnx_names):
            rows.append((i, lite_names[i:i + 1], onnx_names[i:i + 1], None, None, float("inf"), 0.0))
            continue
        shapes = (list(want[0][i].shape), list(got[0][i].shape))
        same = shapes[0] == shapes[1]
        diff = max(float(np.abs(w[i] - g[i]).max()) if same else float("inf") for w, g in zip(want, got))
        rows.append((i, lite_names[i], onnx_names[i], shapes[0], shapes[1], diff,
                     max(float(np.abs(w[i]).max()) for w in want)))
    return bundle, names, rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", default=str(REPO / "build" / "models" / "x86"))
    p.add_argument("--only", help="bundle names, comma-separated")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    failed = 0
    for bundle_json in sorted(Path(args.model_dir).glob("*/bundle.json")):
        folder = bundle_json.parent
        if only and folder.name not in only:
            continue
        bundle, names, rows = compare_bundle(folder, args.threads)
        tolerance = float(bundle["source"].get("tolerance") or DEFAULT_TOLERANCE)
        print("%s (%s; inputs: %s)" % (folder.name, bundle["input_shape"], ", ".join(names)))
        for i, lite_name, onnx_name, lite_shape, onnx_shape, diff, scale in rows:
            ok = diff <= tolerance * max(1.0, scale)
            failed += not ok
            print("  output %d: Lite %s %s | ONNX %s %s | max abs diff %.3g (|Lite| max %.3g)%s"
                  % (i, lite_name, lite_shape, onnx_name, onnx_shape, diff, scale, "" if ok else "  DIFFERS"))
    print("%s" % ("every output agrees" if not failed else "%d outputs differ" % failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
