#!/usr/bin/env python3
"""The model.onnx a bundle ships for ONNX Runtime, and the reference it is checked against. TOOL venv only.

    build/tool-venv/bin/python tools/convert/onnx_export.py paddle PREFIX OUT --shape 1,3,H,W [--inputs X.npz]
    build/tool-venv/bin/python tools/convert/onnx_export.py onnx MODEL.onnx OUT --shape 1,3,H,W \
        --reference REF.npz --reference-name NAME

paddle: a Paddle inference model (PREFIX.pdmodel + PREFIX.pdiparams) exported by paddle2onnx (pinned
in requirements.txt); the reference is Paddle Inference (paddlepaddle) running the same model on
the check's inputs: X.npz's real images (photo_inputs.py) and convert.py's seeded noise sample.
onnx: an ONNX the converter pipeline made or was given, before x2paddle's rewrites (convert.py keeps
it as source.onnx), whose reference outputs REF.npz holds ("input", "output<i>": the runtime the
ONNX was made from, e.g. tflite-runtime or TensorFlow).

Either way the model's one input is fixed to the bundle's NCHW shape (an NHWC input gets a Transpose
in front of it), and the outputs stay the model's own, in its order: the order Paddle Lite's .nb
gives them in, which the service's model types read. OUT gets model.onnx, reference.npz ("input",
"output<i>", stacked over the inputs, for ort_check.py) and onnx.json (what was done, versions).
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

import convert


def fix_input(model, shape):
    """The one input fixed to shape (NCHW); NHWC is taken as NCHW through a Transpose. Returns notes."""
    from onnx import helper
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise convert.ConvertError("the ONNX model has %d inputs; bundles take one image tensor" % len(inputs))
    given = [d.dim_value or None for d in inputs[0].type.tensor_type.shape.dim]
    nhwc = [shape[0], shape[2], shape[3], shape[1]]
    fits = lambda want: len(given) == 4 and all(g in (None, w) for g, w in zip(given, want))  # noqa: E731
    notes = []
    if not fits(shape) and fits(nhwc):
        name = inputs[0].name
        inner = name + "__nhwc"
        for node in model.graph.node:
            node.input[:] = [inner if n == name else n for n in node.input]
        model.graph.node.insert(0, helper.make_node("Transpose", [name], [inner], perm=[0, 2, 3, 1],
                                                    name=name + "__to_nhwc"))
        notes.append("NHWC input %s made NCHW (a Transpose in front)" % name)
    elif not fits(shape):
        raise convert.ConvertError("the ONNX input %s is %s, which does not take the shape %s"
                                   % (inputs[0].name, [g or "?" for g in given], shape))
    for d, s in zip(inputs[0].type.tensor_type.shape.dim, shape):
        d.ClearField("dim_param")
        d.dim_value = int(s)
    if given != list(shape):
        notes.append("input %s fixed to %s" % (inputs[0].name, list(shape)))
    del model.graph.value_info[:]  # inferred for the old dims; ONNX Runtime infers them anew
    return notes


def export_paddle(prefix, dst, logfile):
    """paddle2onnx: the Paddle inference model as ONNX (the opset it picks for the ops it meets)."""
    import paddle2onnx
    with convert.quiet(logfile):
        try:
            paddle2onnx.export(prefix + ".pdmodel", prefix + ".pdiparams", dst, opset_version=11,
                               auto_upgrade_opset=True, verbose=False, enable_onnx_checker=True)
        except Exception as e:  # its C++ exporter raises plain RuntimeErrors
            raise convert.ConvertError("paddle2onnx failed: %s (log: %s)" % (e, logfile))
    if not os.path.isfile(dst):
        raise convert.ConvertError("paddle2onnx wrote nothing for %s (log: %s)" % (prefix, logfile))
    return ["paddle2onnx %s" % convert.version("paddle2onnx")]


def from_paddle(args, shape, work, logfile):
    """OUT/model.onnx of a Paddle model; returns (steps, check inputs, reference outputs, reference name)."""
    for ext in (".pdmodel", ".pdiparams"):
        if not os.path.isfile(args.model + ext):
            raise convert.ConvertError("no %s%s" % (args.model, ext))
    src = os.path.join(work, "paddle2onnx.onnx")
    steps = write(src, shape, args.out, export_paddle(args.model, src, logfile))
    samples = (convert.load_samples(args.inputs, shape) if args.inputs else []) + [convert.sample_input(shape)]
    ref = convert.run_samples(lambda x: convert.paddle_run(args.model, x), samples)
    return steps, samples, ref, "paddlepaddle %s (Paddle Inference)" % convert.version("paddlepaddle")


def from_onnx(args, shape):
    """The same for an ONNX whose reference outputs are given (--reference)."""
    if not args.reference:
        raise convert.ConvertError("an ONNX source needs --reference (its source runtime's outputs)")
    steps = write(args.model, shape, args.out, [])
    ref = np.load(args.reference)
    samples = convert.load_samples(args.reference, shape)
    outputs = [ref["output%d" % i] for i in range(len(ref.files) - 1)]
    return steps, samples, outputs, args.reference_name


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("format", choices=("paddle", "onnx"))
    p.add_argument("model", help="a Paddle model's path prefix (no .pdmodel), or an .onnx file")
    p.add_argument("out", help="output folder")
    p.add_argument("--shape", required=True, help="the bundle's NCHW input shape, e.g. 1,3,640,640")
    p.add_argument("--inputs", help="paddle: .npz with the check's real inputs (\"input\": N x shape)")
    p.add_argument("--reference", help="onnx: .npz with the inputs and the source runtime's outputs")
    p.add_argument("--reference-name", default="the source runtime", help="onnx: what made --reference")
    args = p.parse_args(argv)
    shape = [int(x) for x in args.shape.split(",")]
    os.makedirs(args.out, exist_ok=True)
    logfile = os.path.join(args.out, "onnx_export.log")
    work = os.path.join(args.out, ".work")
    os.makedirs(work, exist_ok=True)
    t0 = time.monotonic()
    try:
        if args.format == "paddle":
            steps, samples, ref, ref_name = from_paddle(args, shape, work, logfile)
        else:
            steps, samples, ref, ref_name = from_onnx(args, shape)
    except convert.ConvertError as e:
        print("error: %s" % e, file=sys.stderr)
        if os.path.exists(os.path.join(args.out, "model.onnx")):
            os.remove(os.path.join(args.out, "model.onnx"))
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    np.savez(os.path.join(args.out, "reference.npz"), input=np.stack(samples),
             **{"output%d" % i: np.asarray(o) for i, o in enumerate(ref)})
    record = {"format": args.format, "shape": shape, "steps": steps, "reference": ref_name,
              "check_inputs": len(samples), "seconds": round(time.monotonic() - t0, 1),
              "tools": {k: convert.version(k) for k in ("paddle2onnx", "onnx", "paddlepaddle", "onnxruntime")}}
    with open(os.path.join(args.out, "onnx.json"), "w") as f:
        json.dump(record, f, indent=2)
    return 0


def write(src, shape, out, steps):
    """src with its input fixed, as out/model.onnx; returns steps with the notes of that added."""
    import onnx
    model = onnx.load(src)
    steps = steps + fix_input(model, shape)
    onnx.save(model, os.path.join(out, "model.onnx"))
    for step in steps:
        convert.log("onnx: " + step)
    return steps


if __name__ == "__main__":
    sys.exit(main())
