"""Exact ONNX rewrites for what x2paddle 1.6.0 gets wrong or cannot read. Runs under the TOOL venv.

convert.py applies them to every ONNX model before x2paddle (and checks the rewritten model against
the original under onnxruntime); each one changes nothing in a graph without its pattern:
- fold_constants: nodes whose inputs are all constants (tf2onnx leaves e.g. a ScatterND shape
  calculation from TF's SparseToDense) become initializers, so x2paddle sees constant shapes;
- merge_pad_into_maxpool: a Pad with -inf before a MaxPool (how TF pads a pool by hand) becomes the
  MaxPool's own pads: x2paddle turns the -inf Pad into a 0 pad, which changes every negative max;
- resize_modes: a linear Resize with coordinate mode half_pixel becomes pytorch_half_pixel (the
  same when every output size is above 1), the one half-pixel mode x2paddle converts as such.
x2paddle converts a linear Resize in any other mode but pytorch_half_pixel with align_corners=True:
fix_interp_modes then corrects the Paddle program it wrote (align_corners off, align_mode 1 =
asymmetric), and refuses a model that mixes that mode with real align_corners Resizes.
"""
import numpy as np

NO_FOLD = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial")
MAX_FOLDED = 1 << 20  # elements: a folded tensor is stored in the model; keep large ones computed


def _constant_nodes(graph):
    """Nodes computable from initializers alone, in graph order."""
    known = {i.name for i in graph.initializer} | {""}
    found = []
    for node in graph.node:
        if node.op_type in NO_FOLD or any(a.g.node or a.graphs for a in node.attribute):
            continue
        if all(i in known for i in node.input):
            found.append(node)
            known.update(node.output)
    return found


def fold_constants(model):
    """Evaluate the constant part of the graph once (onnxruntime) and store it as initializers."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    graph = model.graph
    const = _constant_nodes(graph)
    if not const:
        return []
    const_out = {o for n in const for o in n.output}
    used = {i for n in graph.node if n not in const for i in n.input} | {o.name for o in graph.output}
    wanted = sorted(const_out & used)
    needed = {i for n in const for i in n.input}
    probe = helper.make_model(
        helper.make_graph(const, "constants", [], [helper.make_empty_tensor_value_info(n) for n in wanted],
                          initializer=[t for t in graph.initializer if t.name in needed]),
        opset_imports=model.opset_import)
    probe.ir_version = model.ir_version
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    values = dict(zip(wanted, sess.run(wanted, {})))
    if any(v.size > MAX_FOLDED for v in values.values()):
        return []  # a large constant would be stored in the model: fold nothing, x2paddle computes it
    keep = [n for n in graph.node if n not in const]
    del graph.node[:]
    graph.node.extend(keep)
    graph.initializer.extend(numpy_helper.from_array(np.asarray(values[n]), n) for n in wanted)
    _drop_unused_initializers(graph)
    onnx.checker.check_model(model)
    return ["%d constant nodes (%s) folded into %d initializers"
            % (len(const), ", ".join(sorted({n.op_type for n in const})), len(wanted))]


def _drop_unused_initializers(graph):
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _initializer(graph, name):
    from onnx import numpy_helper
    for t in graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    return None


def merge_pad_into_maxpool(model):
    """Pad(x, pads, -inf) -> MaxPool  becomes  MaxPool(x, pads) when only MaxPools read the Pad."""
    from onnx import helper

    graph = model.graph
    readers = {}
    for node in graph.node:
        for i in node.input:
            readers.setdefault(i, []).append(node)
    merged, drop = 0, []
    for pad in graph.node:
        if pad.op_type != "Pad" or len(pad.input) < 3:
            continue
        mode = [a.s for a in pad.attribute if a.name == "mode"]
        pads, value = _initializer(graph, pad.input[1]), _initializer(graph, pad.input[2])
        if (mode and mode[0] != b"constant") or pads is None or value is None or value.size != 1:
            continue
        pads = [int(p) for p in pads.reshape(-1)]
        if not (np.isneginf(value.reshape(-1)[0]) and len(pads) == 8 and pads[0:2] == [0, 0] and pads[4:6] == [0, 0]
                and min(pads) >= 0):
            continue
        pools = readers.get(pad.output[0], [])
        if not pools or any(p.op_type != "MaxPool" or _has_padding(p) for p in pools) \
                or pad.output[0] in {o.name for o in graph.output}:
            continue
        for pool in pools:
            pool.input[0] = pad.input[0]
            pool.attribute.extend([helper.make_attribute("pads", [pads[2], pads[3], pads[6], pads[7]])])
        drop.append(pad)
        merged += 1
    for pad in drop:
        graph.node.remove(pad)
    _drop_unused_initializers(graph)
    return ["%d Pad(-inf) merged into the next MaxPool's pads" % merged] if merged else []


def _has_padding(pool):
    for a in pool.attribute:
        if a.name == "pads" and any(a.ints):
            return True
        if a.name == "auto_pad" and a.s not in (b"", b"NOTSET", b"VALID"):
            return True
    return False


def _linear_resizes(graph):
    for node in graph.node:
        mode = {a.name: a.s for a in node.attribute}
        if node.op_type == "Resize" and mode.get("mode") == b"linear":
            yield node, mode.get("coordinate_transformation_mode", b"half_pixel")


def resize_modes(model):
    """half_pixel -> pytorch_half_pixel for linear Resizes whose every output size is above 1; an
    asymmetric one given output sizes gets the equivalent scales (x2paddle only knows it as scales)."""
    import onnx
    from onnx import helper

    shapes = _shapes(onnx.shape_inference.infer_shapes(model))
    changed = as_scales = 0
    for node, mode in _linear_resizes(model.graph):
        out = shapes.get(node.output[0])
        if mode == b"asymmetric" and len(node.input) == 4 and node.input[3]:
            as_scales += _sizes_to_scales(model.graph, node, shapes.get(node.input[0]), out)
        if mode != b"half_pixel" or not out or any(d is None or d <= 1 for d in out[2:]):
            continue
        keep = [a for a in node.attribute if a.name != "coordinate_transformation_mode"]
        del node.attribute[:]
        node.attribute.extend(keep + [helper.make_attribute("coordinate_transformation_mode", "pytorch_half_pixel")])
        changed += 1
    notes = ["%d linear Resize half_pixel -> pytorch_half_pixel (output sizes > 1: the same)" % changed] if changed else []
    return notes + (["%d asymmetric linear Resize given as scales instead of sizes" % as_scales] if as_scales else [])


def _sizes_to_scales(graph, node, in_shape, out_shape):
    """Resize(x, roi, "", sizes) -> Resize(x, roi, scales) with scales = sizes / input shape."""
    from onnx import numpy_helper
    sizes = _initializer(graph, node.input[3])
    if sizes is None or not in_shape or None in in_shape or len(sizes) != len(in_shape):
        return 0
    name = node.output[0] + "__scales"
    graph.initializer.append(numpy_helper.from_array(
        np.asarray([float(o) / float(i) for o, i in zip(sizes, in_shape)], np.float32), name))
    node.input[2] = name
    del node.input[3]
    return 1


def _shapes(model):
    out = {}
    for v in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input):
        dims = v.type.tensor_type.shape.dim
        out[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return out


def asymmetric_resizes(model):
    """How many linear Resizes x2paddle will write with align_corners=True although they are
    asymmetric (TF's ResizeBilinear without align_corners or half_pixel_centers)."""
    modes = [mode for _, mode in _linear_resizes(model.graph)]
    bad = [m for m in modes if m not in (b"pytorch_half_pixel", b"align_corners", b"asymmetric")]
    if bad:
        raise ValueError("linear Resize with coordinate mode %s: x2paddle cannot convert it" % bad[0].decode())
    n = modes.count(b"asymmetric")
    if n and b"align_corners" in modes:
        raise ValueError("the model mixes asymmetric and align_corners linear Resizes: x2paddle writes both "
                         "as align_corners and they cannot be told apart afterwards")
    return n


def fix_interp_modes(pdmodel, expected):
    """In the Paddle program x2paddle wrote: every bilinear interp with align_corners=True becomes
    align_corners=False, align_mode=1 (asymmetric). expected: how many asymmetric_resizes() found;
    with none, the program is left alone (its align_corners interps are real ones: asymmetric_resizes
    refuses a model that mixes the two)."""
    if expected == 0:
        return []
    from paddle.base.proto import framework_pb2

    prog = framework_pb2.ProgramDesc()
    with open(pdmodel, "rb") as f:
        prog.ParseFromString(f.read())
    fixed = 0
    for block in prog.blocks:
        for op in block.ops:
            if op.type not in ("bilinear_interp_v2", "bilinear_interp"):
                continue
            attrs = {a.name: a for a in op.attrs}
            if "align_corners" in attrs and attrs["align_corners"].b:
                attrs["align_corners"].b = False
                attrs["align_mode"].i = 1
                fixed += 1
    if fixed != expected:
        raise ValueError("expected %d align_corners interpolations in the Paddle program, found %d" % (expected, fixed))
    with open(pdmodel, "wb") as f:
        f.write(prog.SerializeToString())
    return ["%d bilinear interp align_corners -> asymmetric (align_mode 1) in the Paddle program" % fixed] if fixed else []


def apply(model):
    """Every ONNX-side rewrite, in order; returns the notes of those that changed something."""
    notes = []
    for fix in (fold_constants, merge_pad_into_maxpool, resize_modes):
        notes += fix(model)
    return notes
