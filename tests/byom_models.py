#!/usr/bin/env python3
"""Tiny models in the formats users bring, for the bring-your-own-model round trips (tests/test_byom.py).

    build/tool-venv/bin/python tests/byom_models.py OUT

Runs under the TOOL venv (paddlepaddle, onnx). Every model is a real network with known weights
that "detects" or "classifies" by colour, so the tests know the right answer for a drawn image:
- detectors split the input into a 4 x 4 grid of cells; a cell's score for class k is
  sigmoid(SHARP * (mean of colour channel k in the cell - 0.5)), its box is the cell. A saturated
  red square filling a cell is found as "red" with the cell's box, in original-image pixels once
  the service has mapped it back.
- classifiers give softmax(SHARP * channel means): the colour of the image.
Written to OUT/<format>/ with the configs each exporter writes (infer_cfg.yml, inference_cls.yaml,
config.json + label_list.txt, or an edgeapp spec JSON).
"""
import json
import os
import sys

import numpy as np

GRID = 4
SHARP = 12.0
DET_SIZE = 128          # PaddleDetection-style models: 128 x 128 input
SSD_SIZE = 96           # EdgeBoard SSD: 96 x 96, boxes normalised


def _static():
    import paddle
    paddle.enable_static()
    return paddle


def _cells(size, normalised=False):
    step = size / float(GRID)
    boxes = []
    for r in range(GRID):
        for c in range(GRID):
            boxes.append([c * step, r * step, (c + 1) * step, (r + 1) * step])
    b = np.array(boxes, np.float32)
    return b / size if normalised else b


def _identity_conv(paddle, x, name):
    """A 1x1 convolution whose weights (a parameter, saved in the params file) are the identity."""
    w = paddle.static.create_parameter([3, 3, 1, 1], "float32", name=name + "_w",
                                       default_initializer=paddle.nn.initializer.Assign(
                                           np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1)))
    return paddle.nn.functional.conv2d(x, w)


def _cell_scores(paddle, image, size, channels):
    """image [1,3,S,S] normalised to 0..1 per channel -> scores [1, C, 16] for the given channels."""
    pooled = paddle.nn.functional.avg_pool2d(image, kernel_size=size // GRID, stride=size // GRID)  # [1,3,4,4]
    picked = paddle.concat([pooled[:, c:c + 1] for c in channels], axis=1)                       # [1,C,4,4]
    return paddle.nn.functional.sigmoid((picked.reshape([1, len(channels), GRID * GRID]) - 0.5) * SHARP)


def _nms(paddle, boxes, scores, normalized, background, score_threshold=0.3):
    from paddle.base.layer_helper import LayerHelper
    helper = LayerHelper("multiclass_nms3")
    out = helper.create_variable_for_type_inference(dtype=boxes.dtype)
    index = helper.create_variable_for_type_inference(dtype="int32")
    num = helper.create_variable_for_type_inference(dtype="int32")
    helper.append_op(type="multiclass_nms3", inputs={"BBoxes": boxes, "Scores": scores},
                     attrs={"background_label": background, "score_threshold": score_threshold,
                            "nms_top_k": 100, "nms_threshold": 0.45, "keep_top_k": 20,
                            "normalized": normalized, "nms_eta": 1.0},
                     outputs={"Out": out, "Index": index, "NmsRoisNum": num})
    return out, num


def paddledet(out, with_count=True, nms=True):
    """PaddleDetection export: inputs image, im_shape, scale_factor; RGB, Resize 128 (keep_ratio false)."""
    paddle = _static()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        image = paddle.static.data("image", [1, 3, DET_SIZE, DET_SIZE], "float32")
        im_shape = paddle.static.data("im_shape", [1, 2], "float32")
        scale = paddle.static.data("scale_factor", [1, 2], "float32")
        # Undo the ImageNet normalisation: back to 0..1 per channel (RGB order, as PaddleDetection feeds).
        mean = paddle.to_tensor(np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1))
        std = paddle.to_tensor(np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1))
        raw = _identity_conv(paddle, image, "det") * std + mean
        scores = _cell_scores(paddle, raw, DET_SIZE, [0, 1])                      # red, green
        cells = paddle.to_tensor(_cells(DET_SIZE)).reshape([1, GRID * GRID, 4])
        # Boxes in original pixels: input pixels / scale_factor ([sy, sx] -> [sx, sy, sx, sy]).
        sxy = paddle.flip(scale, axis=[1])
        boxes = cells / paddle.tile(sxy, [1, 2]).reshape([1, 1, 4])
        # Exported models take im_shape; this one ignores it (keepdim: Paddle Lite has no 0-D tensors).
        boxes = boxes + paddle.mean(im_shape, axis=1, keepdim=True).reshape([1, 1, 1]) * 0.0
        if nms:
            det, num = _nms(paddle, boxes, scores, normalized=False, background=-1)
            fetch = [det, num] if with_count else [det]
        else:
            fetch = [boxes, scores]
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    os.makedirs(out, exist_ok=True)
    paddle.static.save_inference_model(os.path.join(out, "model"), [image, im_shape, scale], fetch, exe,
                                       program=main)
    cfg = ["mode: paddle", "draw_threshold: 0.5", "metric: COCO", "use_dynamic_shape: false",
           "arch: %s" % ("YOLO" if nms else "PicoDet"), "min_subgraph_size: 3", "Preprocess:",
           "- interp: 2", "  keep_ratio: false", "  target_size:", "  - %d" % DET_SIZE, "  - %d" % DET_SIZE,
           "  type: Resize", "- is_scale: true", "  mean:", "  - 0.485", "  - 0.456", "  - 0.406",
           "  std:", "  - 0.229", "  - 0.224", "  - 0.225", "  type: NormalizeImage", "- type: Permute",
           "label_list:", "- red", "- green"]
    if not nms:
        cfg += ["NMS:", "  keep_top_k: 20", "  name: MultiClassNMS", "  nms_threshold: 0.45",
                "  nms_top_k: 100", "  score_threshold: 0.3", "fpn_stride:", "- 8", "- 16", "- 32", "- 64"]
    with open(os.path.join(out, "infer_cfg.yml"), "w") as f:
        f.write("\n".join(cfg) + "\n")


def paddleclas(out):
    """PaddleClas export: inference.pdmodel + inference_cls.yaml (resize_short 72, crop 64), RGB."""
    paddle = _static()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        x = paddle.static.data("x", [1, 3, 64, 64], "float32")
        mean = paddle.to_tensor(np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1))
        std = paddle.to_tensor(np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1))
        pooled = paddle.mean(_identity_conv(paddle, x, "cls") * std + mean, axis=[2, 3])                           # [1,3] RGB means
        probs = paddle.nn.functional.softmax(pooled * SHARP, axis=1)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    os.makedirs(out, exist_ok=True)
    paddle.static.save_inference_model(os.path.join(out, "inference"), [x], [probs], exe, program=main)
    with open(os.path.join(out, "inference_cls.yaml"), "w") as f:
        f.write("""Global:
  infer_imgs: "./images"
  inference_model_dir: "./models"
  batch_size: 1
  use_gpu: False
PreProcess:
  transform_ops:
    - ResizeImage:
        resize_short: 72
    - CropImage:
        size: 64
    - NormalizeImage:
        scale: 0.00392157
        mean: [0.485, 0.456, 0.406]
        std: [0.229, 0.224, 0.225]
        order: ''
        channel_num: 3
    - ToCHWImage:
PostProcess:
  main_indicator: Topk
  Topk:
    topk: 2
    class_id_map_file: "colour_label_list.txt"
  SavePreLabel:
    save_dir: ./pre_label/
""")
    with open(os.path.join(out, "colour_label_list.txt"), "w") as f:
        f.write("0 red\n1 green\n2 blue\n")


def edgeboard_ssd(out):
    """EdgeBoard FZ sample layout: combined fluid model `model` + `params`, config.json, label_list.txt.
    SSD-style: boxes normalised 0..1, class 0 is the background, NMS inside ([N, 6], no count)."""
    paddle = _static()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        image = paddle.static.data("image", [1, 3, SSD_SIZE, SSD_SIZE], "float32")
        raw = _identity_conv(paddle, image, "ssd") * 0.5 + 0.5            # EdgeBoard mean 127.5, scale 1/127.5: back to 0..1 (BGR)
        fg = _cell_scores(paddle, raw, SSD_SIZE, [2, 1])                   # BGR: red is channel 2
        bg = 1.0 - paddle.max(fg, axis=1, keepdim=True)
        scores = paddle.concat([bg, fg], axis=1)                           # background, red, green
        boxes = paddle.to_tensor(_cells(SSD_SIZE, normalised=True)).reshape([1, GRID * GRID, 4])
        det, _ = _nms(paddle, boxes, scores, normalized=True, background=0)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    tmp = os.path.join(out, "tmp")
    os.makedirs(tmp, exist_ok=True)
    paddle.static.save_inference_model(os.path.join(tmp, "m"), [image], [det], exe, program=main)
    os.rename(os.path.join(tmp, "m.pdmodel"), os.path.join(out, "model"))
    os.rename(os.path.join(tmp, "m.pdiparams"), os.path.join(out, "params"))
    os.rmdir(tmp)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"model": "model", "params": "params", "combined_model": True, "network_type": "SSD",
                   "input_width": SSD_SIZE, "input_height": SSD_SIZE, "mean": [127.5, 127.5, 127.5],
                   "scale": [0.007843137, 0.007843137, 0.007843137], "format": "BGR", "threshold": 0.5,
                   "labels": "label_list.txt"}, f, indent=2)
    with open(os.path.join(out, "label_list.txt"), "w") as f:
        f.write("background\nred\ngreen\n")


def onnx_classifier(out):
    """ONNX: 1x3x32x32 -> GlobalAveragePool -> x SHARP -> Softmax (BGR channels as fed), + edgeapp spec."""
    import onnx
    from onnx import TensorProto, helper
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
             helper.make_node("Mul", ["flat", "k"], ["scaled"]),
             helper.make_node("Softmax", ["scaled"], ["prob"], axis=1)]
    graph = helper.make_graph(nodes, "colour", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor("k", TensorProto.FLOAT, [1], [SHARP])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(out, exist_ok=True)
    onnx.save(model, os.path.join(out, "colour.onnx"))
    with open(os.path.join(out, "colour.json"), "w") as f:
        json.dump({"type": "classify", "input_shape": [1, 3, 32, 32],
                   "Preprocess": {"resize": "stretch", "mean": [0, 0, 0], "std": [1, 1, 1], "channel_order": "BGR"},
                   "PostProcess": {"topk": 1}, "label_list": ["blue", "green", "red"]}, f, indent=2)


def main(out):
    paddledet(os.path.join(out, "paddledet"), with_count=True)
    paddledet(os.path.join(out, "paddledet-nocount"), with_count=False)
    paddledet(os.path.join(out, "picodet-nonms"), nms=False)
    paddleclas(os.path.join(out, "paddleclas"))
    edgeboard_ssd(os.path.join(out, "edgeboard-ssd"))
    onnx_classifier(os.path.join(out, "onnx"))
    print("written to %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
