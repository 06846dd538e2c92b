#!/usr/bin/env python3
"""A TF.js graph model -> ONNX, and TensorFlow's own outputs for the check. Runs under the TFJS venv
only (build/tool-venv-tfjs: tensorflow-cpu + tf2onnx, `make tool-venv-tfjs`).

    build/tool-venv-tfjs/bin/python tools/convert/tfjs.py MODEL.json OUT --shape 1,3,H,W \
        --outputs NAME[,NAME...] [--inputs INPUTS.npz]

MODEL.json is a TF.js graph model (its weight files beside it). Two gaps of tf2onnx 1.16.1's TF.js
reader are patched in a copy of the graph first: `_FusedConv2D` and `FusedDepthwiseConv2dNative`
nodes get the `TArgs` attribute TensorFlow's op definitions ask for, `TopKV2` its default
`index_type`. Then tf2onnx --tfjs writes OUT/model.onnx at opset 11 (x2paddle 1.6.0 fails on
opset 13's Squeeze), with an NCHW input (--inputs-as-nchw when the graph takes NHWC) and exactly
the --outputs, in that order: the order the bundle's model type reads them in.

The reference is TensorFlow running the same graph (weights dequantised as TF.js does), not
tf2onnx's ONNX: OUT/source.npz holds its outputs ("output<i>", stacked) for every input of
INPUTS.npz ("input": N x 1x3xHxW, real photos; default: one seeded sample), and convert.py compares
onnxruntime with them. TF.js' FusedDepthwiseConv2dNative has no TensorFlow CPU kernel: the
reference graph writes it as DepthwiseConv2dNative + BiasAdd + its activation. OUT/tfjs.json
records what was done.
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # plain kernels: the reference should not vary

import numpy as np  # noqa: E402

OPSET = 11
FUSED_WITH_ARGS = ("_FusedConv2D", "FusedDepthwiseConv2dNative")


class TfjsError(Exception):
    pass


def read_model(path):
    """model.json and its weights, dequantised as TF.js loads them: (json, {name: array})."""
    with open(path, encoding="utf-8") as f:
        model = json.load(f)
    if model.get("format") != "graph-model":
        raise TfjsError("%s is not a TF.js graph model (format %r)" % (path, model.get("format")))
    manifest = model["weightsManifest"]
    blob = b"".join(_read(os.path.join(os.path.dirname(path), p)) for group in manifest for p in group["paths"])
    weights, offset = {}, 0
    for spec in (w for group in manifest for w in group["weights"]):
        count = int(np.prod(spec["shape"], dtype=np.int64))
        quant = spec.get("quantization")
        stored = np.dtype(quant["dtype"] if quant else spec["dtype"])
        data = np.frombuffer(blob, stored, count, offset)
        offset += data.nbytes
        if quant and "scale" in quant:  # uint8/uint16 affine quantisation; float16 needs no scale
            data = data.astype(np.float32) * quant["scale"] + quant["min"]
        weights[spec["name"]] = data.astype(spec["dtype"]).reshape(spec["shape"])
    if offset != len(blob):
        raise TfjsError("%s: the weight files hold %d bytes, the manifest names %d" % (path, len(blob), offset))
    return model, weights


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TfjsError("weight file missing: %s" % e)


def patch_graph(model):
    """The attributes tf2onnx's reader needs and the TF.js converter dropped. Returns the notes."""
    counts = {}
    for node in model["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        if node["op"] in FUSED_WITH_ARGS and "TArgs" not in attr:
            n_args = int(attr.get("num_args", {}).get("i", 0))
            attr["TArgs"] = {"list": {"type": [attr["T"]["type"]] * n_args}}
            counts["TArgs"] = counts.get("TArgs", 0) + 1
        if node["op"] == "TopKV2" and "index_type" not in attr:
            attr["index_type"] = {"type": "DT_INT32"}
            counts["index_type"] = counts.get("index_type", 0) + 1
    return ["%d nodes given %s" % (n, name) for name, n in sorted(counts.items())]


def graph_input(model, shape):
    """(placeholder name, True when it is NHWC) for the bundle's NCHW shape."""
    holders = [n for n in model["modelTopology"]["node"] if n["op"] == "Placeholder"]
    if len(holders) != 1:
        raise TfjsError("the graph has %d inputs; bundles take one image tensor" % len(holders))
    dims = [int(d["size"]) for d in holders[0]["attr"]["shape"]["shape"]["dim"]]
    n, c, h, w = shape
    fits = lambda want: len(dims) == 4 and all(d < 0 or d == x for d, x in zip(dims, want))  # noqa: E731
    if fits([n, c, h, w]):
        return holders[0]["name"], False
    if fits([n, h, w, c]):
        return holders[0]["name"], True
    raise TfjsError("the graph's input %s is %s, which does not take the shape %s" % (holders[0]["name"], dims, shape))


def to_onnx(model_path, model, out, input_name, nhwc, outputs, logfile):
    """The patched graph next to a copy of its weights, then tf2onnx --tfjs."""
    folder = os.path.join(out, "patched")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.json"), "w", encoding="utf-8") as f:
        json.dump(model, f)
    for group in model["weightsManifest"]:
        for p in group["paths"]:
            shutil.copy(os.path.join(os.path.dirname(model_path), p), os.path.join(folder, p))
    onnx_path = os.path.join(out, "model.onnx")
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--tfjs", os.path.join(folder, "model.json"),
           "--output", onnx_path, "--opset", str(OPSET), "--outputs", ",".join(outputs)]
    if nhwc:
        cmd += ["--inputs-as-nchw", input_name + ":0"]
    with open(logfile, "ab") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0 or not os.path.isfile(onnx_path):
        raise TfjsError("tf2onnx --tfjs failed (exit %d): see %s" % (proc.returncode, logfile))
    return onnx_path


def _unfused_depthwise(node):
    """FusedDepthwiseConv2dNative (TF.js only) as the TensorFlow ops it stands for."""
    attr = node["attr"]
    ops = [base64.b64decode(s).decode() for s in attr["fused_ops"]["list"].get("s", [])]
    if not ops or ops[0] != "BiasAdd" or len(ops) > 2 or int(attr["num_args"]["i"]) != 1:
        raise TfjsError("%s: fused ops %s are not BiasAdd [+ activation]" % (node["name"], ops))
    name, t = node["name"], attr["T"]
    conv = {"name": name + "/conv", "op": "DepthwiseConv2dNative", "input": node["input"][:2],
            "attr": {k: attr[k] for k in ("T", "strides", "padding", "data_format", "dilations") if k in attr}}
    bias = {"name": name + ("/bias" if len(ops) == 2 else ""), "op": "BiasAdd",
            "input": [conv["name"], node["input"][2]], "attr": {"T": t, "data_format": attr["data_format"]}}
    act = [{"name": name, "op": ops[1], "input": [bias["name"]], "attr": {"T": t}}] if len(ops) == 2 else []
    return [conv, bias] + act


def tf_reference(model, weights, input_name, nhwc, outputs, samples):
    """TensorFlow's outputs for every sample (NCHW in; transposed for an NHWC graph)."""
    import tensorflow as tf
    from google.protobuf.json_format import ParseDict
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef()
    for node in model["modelTopology"]["node"]:
        node = json.loads(json.dumps(node))
        if node["op"] == "Const":
            node["attr"]["value"] = {"tensor": {}}
        for part in (_unfused_depthwise(node) if node["op"] == "FusedDepthwiseConv2dNative" else [node]):
            made = ParseDict(part, graph_def.node.add())
        if node["op"] == "Const":
            dtype = tf.dtypes.as_dtype(made.attr["dtype"].type).as_numpy_dtype  # int64 stored as int32
            made.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node["name"]].astype(dtype)))
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    fetch = [o if ":" in o else o + ":0" for o in outputs]
    results = []
    with tf.compat.v1.Session(graph=graph) as sess:
        for x in samples:
            feed = x.transpose(0, 2, 3, 1) if nhwc else x
            results.append(sess.run(fetch, {input_name + ":0": feed}))
    return [np.stack([np.asarray(r[i], np.float32) for r in results]) for i in range(len(fetch))]


def check_outputs(model, outputs):
    known = {v["name"] for v in model.get("signature", {}).get("outputs", {}).values()}
    nodes = {n["name"] for n in model["modelTopology"]["node"]}
    for name in outputs:
        if name not in known and name.split(":")[0] not in nodes:
            raise TfjsError("output %r is not in the graph (signature outputs: %s)" % (name, ", ".join(sorted(known))))


def samples_from(path, shape):
    if not path:
        return [np.random.RandomState(20240527).uniform(0.0, 1.0, size=shape).astype(np.float32)]
    x = np.load(path)["input"].astype(np.float32)
    return [x] if x.ndim == 4 else list(x)


def version(dist):
    from importlib.metadata import PackageNotFoundError, version as v
    try:
        return v(dist)
    except PackageNotFoundError:
        return "unknown"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="the TF.js model.json (weight files beside it)")
    p.add_argument("out", help="output folder")
    p.add_argument("--shape", required=True, help="the bundle's NCHW input shape, e.g. 1,3,224,224")
    p.add_argument("--outputs", required=True, help="graph outputs, in the order the bundle reads them")
    p.add_argument("--inputs", help=".npz whose \"input\" holds the check's NCHW inputs (N x shape)")
    args = p.parse_args(argv)
    shape = [int(x) for x in args.shape.split(",")]
    outputs = [o for o in args.outputs.split(",") if o]
    os.makedirs(args.out, exist_ok=True)
    logfile = os.path.join(args.out, "tfjs.log")
    t0 = time.monotonic()
    try:
        model, weights = read_model(args.model)
        check_outputs(model, outputs)
        input_name, nhwc = graph_input(model, shape)
        notes = patch_graph(model)
        print("  tf2onnx --tfjs (opset %d%s): %s" % (OPSET, ", NHWC input made NCHW" if nhwc else "",
                                                     "; ".join(notes) or "no graph patch needed"), flush=True)
        to_onnx(args.model, model, args.out, input_name, nhwc, outputs, logfile)
        outs = tf_reference(model, weights, input_name, nhwc, outputs, samples_from(args.inputs, shape))
    except TfjsError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    np.savez(os.path.join(args.out, "source.npz"), **{"output%d" % i: o for i, o in enumerate(outs)})
    record = {"steps": notes + ["tf2onnx --tfjs opset %d" % OPSET] + (["NHWC input made NCHW"] if nhwc else []),
              "outputs": outputs, "reference": "tensorflow-cpu %s" % version("tensorflow-cpu"),
              "tools": {k: version(k) for k in ("tensorflow-cpu", "tf2onnx", "onnx")},
              "seconds": round(time.monotonic() - t0, 1)}
    with open(os.path.join(args.out, "tfjs.json"), "w") as f:
        json.dump(record, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
