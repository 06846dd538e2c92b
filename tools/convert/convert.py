#!/usr/bin/env python3
"""Model conversions that need the build-time converters. Runs under the TOOL venv only.

    build/tool-venv/bin/python tools/convert/convert.py tflite MODEL.tflite OUT --shape 1,3,128,128
    build/tool-venv/bin/python tools/convert/convert.py onnx   MODEL.onnx   OUT --shape 1,3,224,224
    build/tool-venv/bin/python tools/convert/convert.py paddle PREFIX       OUT --shape 1,3,320,320 [--keep-nms]

tflite: tflite2onnx, then as onnx. onnx: the input shape is fixed to --shape, the rewrites that
x2paddle 1.6.0 needs are applied (IR version above 8 is lowered to 8; HardSwish becomes
x * HardSigmoid(x, 1/6, 0.5), which is its definition; onnx_fixes.py: constant folding, -inf Pad
into MaxPool, Resize coordinate modes), then x2paddle writes a Paddle inference model (and
onnx_fixes corrects the asymmetric Resizes in it). paddle: a Paddle inference model with extra
inputs (PaddleDetection's im_shape and scale_factor) gets them folded into constants for the fixed
shape, so the model has one input; its multiclass NMS is cut off (unless --keep-nms) and the
tensors that fed it become the outputs, so the service runs OpenCV's NMS on fixed-size outputs.
(TF.js graph models reach this as ONNX: tools/convert/tfjs.py makes it, in its own venv.)

OUT gets model.pdmodel + model.pdiparams, reference.npz (the check's inputs: real photos with
--inputs, else a seeded sample; and the reference runtime's outputs for them: TFLite interpreter,
onnxruntime, or Paddle itself) and convert.json (what was done, versions, the Paddle-vs-reference
max abs diff, with --source-outputs onnxruntime vs the model's own runtime, and the NMS settings).
tflite/onnx also keep the ONNX as it was before the rewrites (source.onnx) and the outputs of the
runtime it came from (source_reference.npz): onnx_export.py makes the bundle's model.onnx of them.
The service venv never imports any of this; tools/build_models.py and tools/bundle.py call it.
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import onnx_fixes

SEED = 20240527


class ConvertError(Exception):
    pass


def log(msg):
    print("  " + msg, flush=True)


@contextlib.contextmanager
def quiet(logfile):
    """The converters print hundreds of lines (and call logging); keep them in a log file."""
    out, err = sys.stdout, sys.stderr
    buf = io.StringIO()
    sys.stdout = sys.stderr = buf
    fd_out, fd_err = os.dup(1), os.dup(2)
    with open(logfile, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(fd_out, 1)
        os.dup2(fd_err, 2)
        os.close(fd_out)
        os.close(fd_err)
        sys.stdout, sys.stderr = out, err
        with open(logfile, "a", encoding="utf-8") as f:
            f.write(buf.getvalue())


def version(dist):
    try:
        from importlib.metadata import version as v
        return v(dist)
    except Exception:
        return "unknown"


def sample_input(shape):
    """Seeded input in the range a normalised image takes (about -2.1 .. 2.6)."""
    rng = np.random.RandomState(SEED)
    return rng.uniform(-2.0, 2.0, size=shape).astype(np.float32)


# ---- tflite -> onnx ----------------------------------------------------------------------------
def tflite_to_onnx(src, dst, logfile):
    import tflite2onnx
    with quiet(logfile):
        tflite2onnx.convert(src, dst)
    if not os.path.isfile(dst):
        raise ConvertError("tflite2onnx wrote nothing for %s (log: %s)" % (src, logfile))


def tflite_reference(path, x):
    """Outputs of the TFLite interpreter, in the order of the model's outputs."""
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        raise ConvertError("tflite-runtime is not installed in the tool venv (make tool-venv)")
    it = Interpreter(model_path=path)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    data = x
    if list(inp["shape"]) != list(x.shape):  # TFLite is NHWC, our tensors NCHW
        data = x.transpose(0, 2, 3, 1)
        if list(inp["shape"]) != list(data.shape):
            raise ConvertError("TFLite input is %s, the bundle's shape %s" % (list(inp["shape"]), list(x.shape)))
    it.set_tensor(inp["index"], np.ascontiguousarray(data, dtype=inp["dtype"]))
    it.invoke()
    return [it.get_tensor(o["index"]) for o in it.get_output_details()]


# ---- onnx fixes and onnx -> paddle -------------------------------------------------------------
def fix_onnx(src, dst, shape):
    """Fixed input shape, IR version <= 8, no HardSwish, and onnx_fixes' rewrites: what x2paddle 1.6.0
    reads right. Returns (notes, how many asymmetric Resizes onnx_to_paddle must correct)."""
    import onnx
    from onnx import helper

    model = onnx.load(src)
    notes = []
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ConvertError("the ONNX model has %d inputs (%s); bundles take one image tensor"
                           % (len(inputs), ", ".join(i.name for i in inputs)))
    dims = inputs[0].type.tensor_type.shape.dim
    given = [d.dim_value if d.dim_value > 0 else None for d in dims]
    if len(given) != 4 or any(g is not None and g != s for g, s in zip(given, shape)):
        if len(given) == 4 and given[1] == shape[2] and given[3] == 3:
            raise ConvertError("the ONNX input %s is NHWC %s; convert it with an NCHW input" % (inputs[0].name, given))
        raise ConvertError("the ONNX input %s is %s, which does not take the shape %s"
                           % (inputs[0].name, [g if g else "?" for g in given], shape))
    for d, s in zip(dims, shape):
        d.ClearField("dim_param")
        d.dim_value = int(s)
    if any(g is None for g in given):
        notes.append("input %s fixed to %s" % (inputs[0].name, shape))
    if model.ir_version > 8:
        notes.append("IR version %d lowered to 8" % model.ir_version)
        model.ir_version = 8
    nodes, n_hs = [], 0
    for node in model.graph.node:
        if node.op_type == "HardSwish":
            x, y = node.input[0], node.output[0]
            hs = y + "__hardsigmoid"
            nodes.append(helper.make_node("HardSigmoid", [x], [hs], alpha=1.0 / 6, beta=0.5,
                                          name=(node.name or y) + "_hsig"))
            nodes.append(helper.make_node("Mul", [x, hs], [y], name=(node.name or y) + "_mul"))
            n_hs += 1
        else:
            nodes.append(node)
    if n_hs:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        notes.append("%d HardSwish rewritten as x * HardSigmoid(x)" % n_hs)
    try:
        notes += onnx_fixes.apply(model)
        asymmetric = onnx_fixes.asymmetric_resizes(model)
    except ValueError as e:
        raise ConvertError(str(e))
    onnx.save(model, dst)
    return notes, asymmetric


def onnx_reference(path, x):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def onnx_to_paddle(onnx_path, work, logfile, asymmetric=0):
    """x2paddle; then the asymmetric Resizes it wrote as align_corners are corrected (onnx_fixes).
    Returns (the Paddle model's path prefix, notes)."""
    from x2paddle.convert import onnx2paddle
    with quiet(logfile):
        try:
            onnx2paddle(onnx_path, work, disable_feedback=True, enable_onnx_checker=False)
        except SystemExit:  # x2paddle exits on unsupported operators
            pass
        except Exception as e:
            raise ConvertError("x2paddle failed: %s: %s (log: %s)" % (type(e).__name__, e, logfile))
    prefix = os.path.join(work, "inference_model", "model")
    if not os.path.isfile(prefix + ".pdmodel"):
        tail = _tail(logfile)
        raise ConvertError("x2paddle could not convert %s:\n%s" % (os.path.basename(onnx_path), tail))
    try:
        return prefix, onnx_fixes.fix_interp_modes(prefix + ".pdmodel", asymmetric)
    except ValueError as e:
        raise ConvertError("after x2paddle: %s" % e)


def _tail(logfile, n=15):
    try:
        with open(logfile, encoding="utf-8", errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip() and "float16 not supported" not in l]
        return "\n".join("    " + l for l in lines[-n:])
    except OSError:
        return ""


# ---- paddle inference models -------------------------------------------------------------------
def paddle_run(prefix, x):
    import paddle
    paddle.enable_static()
    exe = paddle.static.Executor(paddle.CPUPlace())
    scope = paddle.static.Scope()
    with paddle.static.scope_guard(scope):
        prog, feeds, fetches = paddle.static.load_inference_model(prefix, exe)
        outs = exe.run(prog, feed={feeds[0]: x}, fetch_list=fetches, return_numpy=False)
    return [np.array(o) for o in outs]


NMS_OPS = ("multiclass_nms3", "multiclass_nms2", "multiclass_nms", "matrix_nms")


def fold_paddle(prefix, out_prefix, shape, keep_nms):
    """One image input: constant im_shape/scale_factor; NMS cut off unless keep_nms.

    Returns (notes, info) with info["nms"] = the NMS settings read from the program."""
    import paddle

    paddle.enable_static()
    exe = paddle.static.Executor(paddle.CPUPlace())
    scope = paddle.static.Scope()
    notes, info = [], {}
    with paddle.static.scope_guard(scope):
        prog, feeds, fetches = paddle.static.load_inference_model(prefix, exe)
        block = prog.global_block()
        image = None
        for name in feeds:
            var = block.var(name)
            vshape = list(var.shape)
            if len(vshape) == 4:
                if image is not None:
                    raise ConvertError("the model has two image inputs (%s, %s)" % (image, name))
                image = name
        if image is None:
            raise ConvertError("no 4-D image input among the model's inputs %s" % feeds)
        h, w = shape[2], shape[3]
        # PaddleDetection: im_shape (the network input's size) and scale_factor (input / original);
        # EdgeBoard YOLOv3: im_size / image_shape (the size boxes are scaled to). With one fixed shape
        # and the service mapping boxes back itself, all are constants.
        consts = {"im_shape": [h, w], "scale_factor": [1, 1], "im_size": [h, w], "image_shape": [h, w]}
        for name in feeds:
            if name == image:
                continue
            if name not in consts:
                raise ConvertError("the model has an input %r that is not an image, im_shape or scale_factor; "
                                   "edgeapp bundles feed one image tensor" % name)
            # Replace the feed op of this input by a constant of the fixed shape's value.
            for i, op in enumerate(block.ops):
                if op.type == "feed" and op.output("Out")[0] == name:
                    block._remove_op(i)
                    break
            var = block.var(name)
            is_int = var.dtype in (paddle.int32, paddle.int64)
            values = {"int32_values": [int(v) for v in consts[name]]} if is_int else \
                {"fp32_values": [float(v) for v in consts[name]]}
            if var.dtype == paddle.int64:
                raise ConvertError("input %s is int64; only float32/int32 constants can be folded" % name)
            block._insert_op(0, type="assign_value", outputs={"Out": [var]},
                             attrs=dict(values, shape=[1, 2], dtype=int(var.dtype)))
            notes.append("input %s folded to %s" % (name, consts[name]))
        prog._sync_with_cpp()
        fetches = _unwrap_fetches(block, fetches)
        nms = [op for op in block.ops if op.type in NMS_OPS]
        if nms and not keep_nms:
            op = nms[0]
            attrs = {k: op.attr(k) for k in ("score_threshold", "nms_threshold", "nms_top_k", "keep_top_k",
                                             "background_label", "normalized", "post_threshold")
                     if op.has_attr(k)}
            boxes, scores = op.input("BBoxes")[0], op.input("Scores")[0]
            info["nms"] = dict(attrs, op=op.type)
            fetches = [block.var(boxes), block.var(scores)]
            notes.append("%s cut off: outputs are its inputs %s %s and %s %s; OpenCV does the NMS"
                         % (op.type, boxes, list(block.var(boxes).shape), scores, list(block.var(scores).shape)))
        elif nms:
            info["nms"] = {"op": nms[0].type, "kept": True}
        info["fetch_names"] = [v.name for v in fetches]
        img_var = block.var(image)
        paddle.static.save_inference_model(out_prefix, [img_var], fetches, exe, program=prog)
    return notes, info


def _unwrap_fetches(block, fetches):
    """A saved model's outputs are `save_infer_model/scale_N` copies, and saving again would create
    the same names: fetch what they copy instead, and drop the copies and the old fetch ops."""
    producers = {}
    for op in block.ops:
        for name in op.output_arg_names:
            producers[name] = op
    out = []
    for var in fetches:
        op = producers.get(var.name)
        if op is not None and op.type == "scale" and var.name.startswith("save_infer_model/"):
            out.append(block.var(op.input("X")[0]))
        else:
            out.append(var)
    for i in range(len(block.ops) - 1, -1, -1):
        op = block.ops[i]
        if op.type == "fetch" or (op.type == "scale" and any(n.startswith("save_infer_model/")
                                                              for n in op.output_arg_names)):
            block._remove_op(i)
    for name in list(block.vars):
        if name.startswith("save_infer_model/"):
            block._remove_var(name)
    block.program._sync_with_cpp()
    return out


# ---- driver ------------------------------------------------------------------------------------
def compare(ref, got):
    if len(ref) != len(got):
        raise ConvertError("reference has %d outputs, Paddle %d" % (len(ref), len(got)))
    diff = 0.0
    for i, (r, g) in enumerate(zip(ref, got)):
        r, g = np.asarray(r, np.float32), np.asarray(g, np.float32)
        if r.size != g.size:
            raise ConvertError("output %d: reference shape %s, Paddle %s" % (i, list(r.shape), list(g.shape)))
        diff = max(diff, float(np.abs(r.reshape(-1) - g.reshape(-1)).max()) if r.size else 0.0)
    return diff


def yaml_to_json(path):
    """tools/bundle.py reads PaddleDetection/PaddleClas YAML through here (PyYAML is a tool-venv package)."""
    import yaml
    with open(path, encoding="utf-8") as f:
        print(json.dumps(yaml.safe_load(f)))
    return 0


def load_samples(path, shape):
    """The check's inputs: an .npz whose "input" is one tensor of the shape or a stack of them
    (real photos, prepared by tools/convert/photo_inputs.py); without one, the seeded sample."""
    if not path:
        return [sample_input(shape)]
    x = np.load(path)["input"].astype(np.float32)
    samples = [x] if x.ndim == 4 else list(x)
    for s in samples:
        if list(s.shape) != list(shape):
            raise ConvertError("check input %s is %s, the model's shape %s" % (path, list(s.shape), shape))
    return samples


def run_samples(fn, samples):
    """fn(x) -> outputs, for every sample; output i of every sample stacked on a new first axis."""
    per = [fn(x) for x in samples]
    return [np.stack([np.asarray(p[i], np.float32) for p in per]) for i in range(len(per[0]))]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["yaml"] and len(argv) == 2:
        return yaml_to_json(argv[1])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("format", choices=("tflite", "onnx", "paddle"))
    p.add_argument("model", help=".tflite / .onnx file, or the path prefix of a Paddle model (no .pdmodel)")
    p.add_argument("out", help="output folder")
    p.add_argument("--shape", required=True, help="fixed input shape, e.g. 1,3,224,224")
    p.add_argument("--keep-nms", action="store_true", help="paddle: keep the model's own NMS")
    p.add_argument("--params", help="paddle: params file if it is not PREFIX.pdiparams")
    p.add_argument("--inputs", help=".npz with the check's inputs (\"input\": N x shape); default: a seeded sample")
    p.add_argument("--source-outputs", help=".npz with the outputs of the model the ONNX was made from, for --inputs "
                                            "(\"output<i>\", stacked like the inputs): compared with onnxruntime's")
    p.add_argument("--source-name", default="the source runtime", help="what made --source-outputs")
    args = p.parse_args(argv)
    shape = [int(x) for x in args.shape.split(",")]
    os.makedirs(args.out, exist_ok=True)
    logfile = os.path.join(args.out, "convert.log")
    open(logfile, "w").close()
    record = {"format": args.format, "shape": shape, "steps": [],
              "tools": {k: version(k) for k in ("tflite2onnx", "x2paddle", "onnx", "onnxruntime",
                                                 "paddlepaddle", "tflite-runtime")}}
    work = tempfile.mkdtemp(prefix="convert-", dir=args.out)
    try:
        samples = load_samples(args.inputs, shape)
        record["check_inputs"] = len(samples) if args.inputs else "seeded sample"
        t0 = time.monotonic()
        if args.format == "paddle":
            prefix, ref, ref_name = _convert_paddle(args, shape, samples, work, record)
        else:
            prefix, ref, ref_name = _convert_onnx(args, shape, samples, work, logfile, record)
        got = run_samples(lambda x: paddle_run(prefix, x), samples)
        record["reference"] = ref_name
        record["paddle_max_abs_diff"] = compare(ref, got)
        record["output_shapes"] = [list(np.asarray(o).shape[1:]) for o in got]
        log("Paddle vs %s: max abs diff %.3g" % (ref_name, record["paddle_max_abs_diff"]))
        shutil.copy(prefix + ".pdmodel", os.path.join(args.out, "model.pdmodel"))
        shutil.copy(prefix + ".pdiparams", os.path.join(args.out, "model.pdiparams"))
        np.savez(os.path.join(args.out, "reference.npz"), input=np.stack(samples),
                 **{"output%d" % i: o for i, o in enumerate(ref)})
        record["seconds"] = round(time.monotonic() - t0, 1)
        with open(os.path.join(args.out, "convert.json"), "w") as f:
            json.dump(record, f, indent=2)
    except ConvertError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _convert_paddle(args, shape, samples, work, record):
    src = _paddle_prefix(args.model, args.params, work)
    log("folding inputs for shape %s%s" % (shape, "" if args.keep_nms else ", cutting off NMS"))
    notes, info = fold_paddle(src, os.path.join(work, "folded"), shape, args.keep_nms)
    record.update(info)
    record["steps"] += notes
    ref = run_samples(lambda x: _paddle_reference(src, x, shape, info["fetch_names"]), samples)
    return os.path.join(work, "folded"), ref, "paddlepaddle %s (the model as exported, extra inputs fed)" % version(
        "paddlepaddle")


def _convert_onnx(args, shape, samples, work, logfile, record):
    """tflite/onnx -> fixed ONNX -> x2paddle. Returns (Paddle prefix, reference outputs, reference name)."""
    onnx_in, ref = args.model, None
    if args.format == "tflite":
        log("tflite2onnx %s" % os.path.basename(args.model))
        onnx_in = os.path.join(work, "model.onnx")
        tflite_to_onnx(args.model, onnx_in, logfile)
        record["steps"].append("tflite2onnx")
        ref = run_samples(lambda x: tflite_reference(args.model, x), samples)
        ref_name = "tflite-runtime %s" % version("tflite-runtime")
    source_ref = ref
    fixed = os.path.join(work, "fixed.onnx")
    notes, asymmetric = fix_onnx(onnx_in, fixed, shape)
    record["steps"] += notes
    for n in notes:
        log("onnx: " + n)
    if ref is None:
        ref = run_samples(lambda x: onnx_reference(fixed, x), samples)
        ref0 = run_samples(lambda x: onnx_reference(args.model, x), samples)
        record["rewrite_max_abs_diff"] = compare(ref0, ref)
        log("onnxruntime: rewritten vs original model, max abs diff %.3g" % record["rewrite_max_abs_diff"])
        ref_name = "onnxruntime %s" % version("onnxruntime")
        source_ref = ref0
    source_name = "%s (the ONNX as given)" % ref_name if args.format == "onnx" else ref_name
    if args.source_outputs:
        src = np.load(args.source_outputs)
        source_ref = [src["output%d" % i] for i in range(len(src.files))]
        record["source"] = source_name = args.source_name
        record["source_max_abs_diff"] = compare(source_ref, ref)
        record["source_max_abs"] = max(float(np.abs(src[k]).max()) for k in src.files)
        log("onnxruntime vs %s: max abs diff %.3g" % (args.source_name, record["source_max_abs_diff"]))
    keep_source_onnx(onnx_in, args.out, samples, source_ref, source_name, record)
    log("x2paddle (onnx -> Paddle inference model)")
    prefix, notes = onnx_to_paddle(fixed, os.path.join(work, "x2paddle"), logfile, asymmetric)
    record["steps"] += ["x2paddle onnx2paddle"] + notes
    for n in notes:
        log("paddle: " + n)
    return prefix, ref, ref_name


def keep_source_onnx(onnx_in, out, samples, outputs, name, record):
    """The ONNX before the x2paddle rewrites (OUT/source.onnx), with the outputs of the runtime it was made
    from for the check's inputs (OUT/source_reference.npz): what onnx_export.py turns into the bundle's
    model.onnx for ONNX Runtime, which needs none of those rewrites."""
    shutil.copy(onnx_in, os.path.join(out, "source.onnx"))
    np.savez(os.path.join(out, "source_reference.npz"), input=np.stack(samples),
             **{"output%d" % i: np.asarray(o) for i, o in enumerate(outputs)})
    record["onnx_source"] = {"reference": name}


def _paddle_prefix(model, params, work):
    """Paddle's loader wants PREFIX.pdmodel + PREFIX.pdiparams: link other names into place."""
    if model.endswith(".pdmodel"):
        model = model[:-len(".pdmodel")]
    mfile = model + ".pdmodel" if os.path.isfile(model + ".pdmodel") else model
    pfile = params or model + ".pdiparams"
    if not os.path.isfile(mfile):
        raise ConvertError("no model file %s(.pdmodel)" % model)
    if not os.path.isfile(pfile):
        raise ConvertError("no params file %s" % pfile)
    prefix = os.path.join(work, "src")
    shutil.copy(mfile, prefix + ".pdmodel")
    shutil.copy(pfile, prefix + ".pdiparams")
    return prefix


def _paddle_reference(src, x, shape, names):
    """The exported model run as PaddleDetection runs it (im_shape, scale_factor fed), cut at the same
    tensors as the folded one, so the two can be compared output by output."""
    import paddle
    paddle.enable_static()
    exe = paddle.static.Executor(paddle.CPUPlace())
    scope = paddle.static.Scope()
    with paddle.static.scope_guard(scope):
        prog, feeds, _ = paddle.static.load_inference_model(src, exe)
        block = prog.global_block()
        feed = {}
        for name in feeds:
            if len(block.var(name).shape) == 4:
                feed[name] = x
            else:
                dtype = np.int32 if block.var(name).dtype == paddle.int32 else np.float32
                value = [1, 1] if name == "scale_factor" else [shape[2], shape[3]]
                feed[name] = np.array([value], dtype)
        outs = exe.run(prog, feed=feed, fetch_list=[block.var(n) for n in names], return_numpy=False)
    return [np.array(o) for o in outs]


if __name__ == "__main__":
    sys.exit(main())
