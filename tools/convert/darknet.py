#!/usr/bin/env python3
"""A Darknet model (.cfg + .weights) -> ONNX. Runs under the TOOL venv (numpy + onnx).

    build/tool-venv/bin/python tools/convert/darknet.py MODEL.cfg MODEL.weights OUT.onnx --shape 1,3,416,416

Our own reader of the cfg sections YOLOv3-tiny uses: [net], [convolutional] (batch_normalize folded
into the convolution's weights and bias; leaky or linear activation), [maxpool], [route],
[upsample] and [yolo]. The ONNX ends at the raw maps that feed each [yolo] section (Darknet's [yolo]
layer applies its sigmoids and anchors only when it decodes), in cfg order, named yolo0, yolo1, ...;
the service decodes them (src/edgeapp/models/detection.py, decode "yolo"). The anchors and masks
of each [yolo] section are printed as JSON, for the bundle's PostProcess.

How Darknet computes, and how the ONNX follows it:
- a batch-normalised convolution has no bias of its own: y = gamma * (conv - mean) / (sqrt(var) +
  1e-6) + beta (Darknet's epsilon sits outside the square root);
- leaky is max(x, 0.1 x);
- [maxpool] pads by size - 1 (default), all of it on the right and bottom for an even size, and
  pads are never the maximum: an edge Pad (see maxpool) before a MaxPool without pads;
- [upsample] repeats each pixel stride x stride times: a nearest Resize;
- the weights file: int32 major, minor, revision, then the images seen (int64 from version 0.2, else
  int32), then float32 per convolution in cfg order: biases (beta), and with batch_normalize
  gamma, rolling mean, rolling variance; then the weights [filters, channels, size, size].
"""
import argparse
import json
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

OPSET = 11
BN_EPSILON = 1e-6  # Darknet's normalize_cpu: (x - mean) / (sqrt(var) + .000001f)
LEAKY_SLOPE = 0.1


class DarknetError(Exception):
    pass


def parse_cfg(text):
    """The cfg's sections, in order: [(name, {key: value string})]."""
    sections = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sections.append((line.strip("[]").strip(), {}))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1][1][key.strip()] = value.strip()
        else:
            raise DarknetError("cfg line outside a section or without '=': %r" % raw)
    if not sections or sections[0][0] not in ("net", "network"):
        raise DarknetError("a Darknet cfg starts with [net]")
    return sections


def ints(value):
    return [int(v) for v in value.replace(" ", "").split(",") if v]


class WeightReader:
    """The float32 arrays of a .weights file, read in order."""

    def __init__(self, data):
        major, minor, _ = np.frombuffer(data[:12], np.int32)
        start = 20 if major * 10 + minor >= 2 else 16  # 'seen' is int64 from version 0.2
        self.values = np.frombuffer(data[start:], np.float32)
        self.at = 0

    def take(self, n):
        if self.at + n > self.values.size:
            raise DarknetError("the weights file ends early: %d more floats wanted at %d" % (n, self.at))
        out = self.values[self.at:self.at + n]
        self.at += n
        return out

    def check_used_up(self):
        if self.at != self.values.size:
            raise DarknetError("the cfg reads %d floats, the weights file has %d" % (self.at, self.values.size))


class Graph:
    """The ONNX nodes being written, and each Darknet layer's output (name, channels, h, w)."""

    def __init__(self, shape):
        self.nodes, self.inits, self.layers, self.yolos = [], [], [], []
        self.input = ("input", shape[1], shape[2], shape[3])

    def name(self, what):
        return "l%d_%s" % (len(self.layers), what)

    def const(self, what, array):
        tensor = numpy_helper.from_array(np.ascontiguousarray(array), self.name(what))
        self.inits.append(tensor)
        return tensor.name

    def add(self, op, inputs, what, **attrs):
        out = self.name(what)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def last(self):
        return self.layers[-1] if self.layers else self.input


def convolutional(g, opts, weights):
    src, c, h, w = g.last()
    filters, size = int(opts["filters"]), int(opts.get("size", 1))
    stride = int(opts.get("stride", 1))
    pad = size // 2 if int(opts.get("pad", 0)) else int(opts.get("padding", 0))
    if int(opts.get("groups", 1)) != 1:
        raise DarknetError("grouped convolutions are not supported")
    bias = weights.take(filters).copy()
    if int(opts.get("batch_normalize", 0)):
        gamma, mean, var = weights.take(filters), weights.take(filters), weights.take(filters)
        scale = gamma / (np.sqrt(var) + BN_EPSILON)
        bias = bias - mean * scale
    else:
        scale = np.ones(filters, np.float32)
    kernel = weights.take(filters * c * size * size).reshape(filters, c, size, size) * scale[:, None, None, None]
    out = g.add("Conv", [src, g.const("w", kernel.astype(np.float32)), g.const("b", bias.astype(np.float32))],
                "conv", kernel_shape=[size, size], strides=[stride, stride], pads=[pad] * 4)
    act = opts.get("activation", "logistic")
    if act == "leaky":
        out = g.add("LeakyRelu", [out], "leaky", alpha=LEAKY_SLOPE)
    elif act != "linear":
        raise DarknetError("activation %r is not supported (leaky, linear)" % act)
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    return out, filters, oh, ow


def maxpool(g, opts, _weights):
    src, c, h, w = g.last()
    size, stride = int(opts.get("size", opts.get("stride", 1))), int(opts.get("stride", 1))
    padding = int(opts.get("padding", size - 1))
    before = padding // 2  # Darknet offsets the window by -padding/2 (C division): 0 for size 2
    after = padding - before
    if padding > size - 1:
        raise DarknetError("[maxpool] padding %d > size - 1: a window could hold padding only" % padding)
    if padding:
        # x2paddle pads an asymmetric MaxPool with zeros (not -inf): repeat the edge pixels instead.
        # Every window that reaches into the padding also holds the edge pixel it repeats, so its
        # maximum is Darknet's, which skips the padding.
        pads = g.const("pads", np.array([0, 0, before, before, 0, 0, after, after], np.int64))
        src = g.add("Pad", [src, pads], "pad", mode="edge")
    oh, ow = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
    out = g.add("MaxPool", [src], "maxpool", kernel_shape=[size, size], strides=[stride, stride])
    return out, c, oh, ow


def route(g, opts, _weights):
    here = len(g.layers)
    picked = [g.layers[i if i >= 0 else here + i] for i in ints(opts["layers"])]
    if len({(p[2], p[3]) for p in picked}) != 1:
        raise DarknetError("[route] %s joins maps of different sizes" % opts["layers"])
    if len(picked) == 1:
        return picked[0]
    out = g.add("Concat", [p[0] for p in picked], "route", axis=1)
    return out, sum(p[1] for p in picked), picked[0][2], picked[0][3]


def upsample(g, opts, _weights):
    src, c, h, w = g.last()
    s = int(opts.get("stride", 2))
    scales = g.const("scales", np.array([1, 1, s, s], np.float32))
    roi = g.const("roi", np.zeros(0, np.float32))
    out = g.add("Resize", [src, roi, scales], "upsample", mode="nearest",
                coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return out, c, h * s, w * s


def yolo(g, opts, _weights):
    """The map before it is an output; the section's anchors and mask go to the bundle."""
    anchors = ints(opts["anchors"])
    mask = ints(opts.get("mask", ",".join(str(i) for i in range(len(anchors) // 2))))
    classes = int(opts.get("classes", 80))
    src, c, h, w = g.last()
    if c != len(mask) * (5 + classes):
        raise DarknetError("[yolo] wants %d channels, its input has %d" % (len(mask) * (5 + classes), c))
    out = "yolo%d" % len(g.yolos)
    g.nodes.append(helper.make_node("Identity", [src], [out], name=out))
    g.yolos.append({"output": out, "shape": [1, c, h, w], "mask": mask, "classes": classes,
                    "anchors": [anchors[i:i + 2] for i in range(0, len(anchors), 2)]})
    return g.last()


LAYERS = {"convolutional": convolutional, "maxpool": maxpool, "route": route, "upsample": upsample, "yolo": yolo}


def to_onnx(cfg_text, weights_bytes, shape):
    """(onnx.ModelProto, the [yolo] sections) for a fixed input shape [1, C, H, W]."""
    sections = parse_cfg(cfg_text)
    net = sections[0][1]
    if int(net.get("channels", 3)) != shape[1]:
        raise DarknetError("the cfg wants %s channels, the shape gives %d" % (net.get("channels"), shape[1]))
    g, weights = Graph(shape), WeightReader(weights_bytes)
    for kind, opts in sections[1:]:
        if kind not in LAYERS:
            raise DarknetError("cfg section [%s] is not supported (%s)" % (kind, ", ".join(LAYERS)))
        g.layers.append(LAYERS[kind](g, opts, weights))
    weights.check_used_up()
    if not g.yolos:
        raise DarknetError("the cfg has no [yolo] section")
    graph = helper.make_graph(
        g.nodes, "darknet", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(y["output"], TensorProto.FLOAT, y["shape"]) for y in g.yolos], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgeapp darknet.py")
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model, g.yolos


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cfg")
    p.add_argument("weights")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--shape", required=True, help="fixed input shape, e.g. 1,3,416,416")
    args = p.parse_args(argv)
    shape = [int(v) for v in args.shape.split(",")]
    try:
        with open(args.cfg, encoding="utf-8") as f, open(args.weights, "rb") as w:
            model, yolos = to_onnx(f.read(), w.read(), shape)
    except (DarknetError, OSError, KeyError, ValueError) as e:
        print("error: %s" % e, flush=True)
        return 1
    onnx.save(model, args.out)
    print("  darknet -> ONNX: %d nodes, outputs %s" % (len(model.graph.node), json.dumps(yolos)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
