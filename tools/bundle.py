#!/usr/bin/env python3
"""Bring your own model: turn what Paddle users export into an edgeapp bundle for the board's target.

    .venv/bin/python tools/bundle.py SOURCE --id N [--name NAME] [--out build/models/x86]
        [--target x86|arm] [--config FILE] [--input-size WxH] [--labels FILE] [--keep-nms] [--force]
        [--engine paddlelite|onnxruntime]

SOURCE is a folder or a file:
- a PaddleDetection export (model.pdmodel + model.pdiparams + infer_cfg.yml): PicoDet, PP-YOLOE,
  YOLOv3, SSD... with NMS inside ([N, 6], with or without the box-count output) or without it
  (PicoDet exported with NMS off). Its im_shape/scale_factor inputs are folded into constants for
  the bundle's one input shape and its NMS is cut off (OpenCV does it, on fixed-size outputs);
  --keep-nms keeps the model's own NMS instead;
- a PaddleClas export (inference.pdmodel + inference.pdiparams + inference_cls.yaml);
- an EdgeBoard model folder (config.json + label_list.txt + the combined fluid `model` + `params`);
- a Paddle inference model, an ONNX or a TFLite file, or a Paddle Lite .nb, with an edgeapp spec
  (--config FILE, or a .json next to the model with the same stem): the bundle.json keys type,
  input_shape, Preprocess, PostProcess, label_list (README, "Model zoo and your own models").
Encrypted EdgeBoard models, PPNC (DK-1A NPU) bundles and other frameworks' files are refused with a
message that says what they are.

Steps (one progress line each): inspect the source; write the spec; convert to a Paddle inference
model in the tool venv (build/tool-venv, `make tool-venv`) with its reference outputs; paddle_lite_opt
for the target; check Paddle Lite x86 against the reference runtime (max abs diff); export model.onnx
for ONNX Runtime (paddle2onnx of that same folded Paddle model, or the ONNX/TFLite source's ONNX before
x2paddle's rewrites: tools/convert/onnx_export.py, as tools/build_models.py does); check it under ONNX
Runtime against the same reference on the same input; run the model type on each engine on two images
and compare the engines' outputs on the same tensors; write <out>/<name>/ atomically. The service
picks the folder up at its next start (or reload); its id must be unused in the model dir.

model.onnx is written where it can be: a bare .nb has none, and a model paddle2onnx cannot export (or
whose ONNX fails a check) is bundled with model.nb only, with a warning that says why; such a bundle
runs on Paddle Lite only. --engine onnxruntime makes model.onnx required and pins the bundle to ONNX
Runtime ("engine" in bundle.json); --engine paddlelite pins it to Paddle Lite and makes no ONNX.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS / "convert"))
sys.path.insert(0, str(TOOLS))
import pipeline  # noqa: E402
import build_models  # noqa: E402
from edgeapp.engines import NAMES as ENGINES, ONNXRUNTIME, PADDLELITE  # noqa: E402

MODEL_NAME = "model.nb"
ONNX_NAME = build_models.ONNX_NAME
STEPS = 9

# Files that are models of something Paddle Lite cannot read: refused by name, with the way out.
FOREIGN = [
    (re.compile(r"\.(pt|pth|torchscript|ptl)$", re.I), "a PyTorch model",
     "export it to ONNX (torch.onnx.export) and bundle the .onnx with a spec"),
    (re.compile(r"\.(pb|h5|keras)$|^saved_model\.pb$", re.I), "a TensorFlow/Keras model",
     "convert it to TFLite or ONNX (tf2onnx) and bundle that with a spec"),
    (re.compile(r"\.(caffemodel|prototxt)$", re.I), "a Caffe model",
     "convert it with `x2paddle --framework=caffe` and bundle the Paddle model"),
    (re.compile(r"\.(engine|trt|plan)$", re.I), "a TensorRT engine", "bring the ONNX it was built from"),
    (re.compile(r"\.rknn$", re.I), "an RKNN (Rockchip NPU) model", "bring the ONNX it was built from"),
    (re.compile(r"\.om$", re.I), "an Ascend OM model", "bring the ONNX it was built from"),
    (re.compile(r"\.kmodel$", re.I), "a Kendryte kmodel", "bring the TFLite/ONNX it was built from"),
    (re.compile(r"\.(mnn|mlmodel|param)$", re.I), "an MNN/CoreML/ncnn model", "bring the ONNX it was built from"),
]


class BundleFailed(Exception):
    pass


class Progress:
    def __init__(self, quiet=False):
        self.step = 0
        self.quiet = quiet

    def __call__(self, msg):
        self.step += 1
        print("[%d/%d] %s" % (self.step, STEPS, msg), flush=True)

    def detail(self, msg):
        if not self.quiet:
            print("      %s" % msg, flush=True)


# ---- inspecting the source ----------------------------------------------------------------------
def refuse_unreadable(files):
    """Encrypted EdgeBoard models, PPNC bundles and other frameworks' files: say what they are."""
    for f in files:
        name = f.name.lower()
        if name.endswith(".encrypted") or "encrypt" in name:
            raise BundleFailed(
                "%s is an encrypted EdgeBoard model (EasyDL/BML encrypted export). Only the EdgeBoard "
                "SDK runtime with its licence can decrypt it; edgeapp cannot read it. Export the model "
                "unencrypted (Paddle inference model, or a Paddle Lite .nb) and bundle that." % f)
        if name.endswith((".ppnc", ".pnnc")) or name.startswith("ppnc") or name == "model.pnnc.json":
            raise BundleFailed(
                "%s belongs to a PPNC bundle: a model compiled for the EdgeBoard DK-1A's NPU runtime "
                "(PPNC), which is not Paddle Lite; edgeapp cannot run it. Bundle the Paddle inference "
                "model (.pdmodel + .pdiparams) it was compiled from." % f)
    for f in files:
        for pattern, what, fix in FOREIGN:
            if pattern.search(f.name):
                raise BundleFailed("%s is %s, which Paddle Lite cannot run: %s." % (f, what, fix))


def _one(folder, patterns):
    for pat in patterns:
        hits = sorted(folder.glob(pat))
        if hits:
            return hits[0]
    return None


def inspect(source, config):
    """What the source is: dict(kind, model, params, fmt, cfg (path), folder)."""
    source = Path(source)
    if not source.exists():
        raise BundleFailed("%s: no such file or folder" % source)
    folder = source if source.is_dir() else source.parent
    files = sorted(p for p in folder.iterdir() if p.is_file()) if source.is_dir() else [source]
    if source.is_dir() and any(p.is_dir() and p.name.lower().startswith("ppnc") for p in folder.iterdir()):
        raise BundleFailed("%s holds a PPNC bundle (EdgeBoard DK-1A NPU); not Paddle Lite: bring the Paddle "
                           "inference model it was compiled from." % source)
    refuse_unreadable(files)
    src = {"folder": folder, "params": None}
    if config:
        src["cfg"] = Path(config)
    if source.is_file():
        suffix = source.suffix.lower()
        src["model"] = source
        if suffix == ".nb":
            src.update(kind="spec", fmt="nb")
        elif suffix == ".onnx":
            src.update(kind="spec", fmt="onnx")
        elif suffix == ".tflite":
            src.update(kind="spec", fmt="tflite")
        elif suffix in (".pdmodel", ".json") or source.name in ("__model__", "model"):
            params = source.with_suffix(".pdiparams") if suffix == ".pdmodel" else folder / "params"
            src.update(kind="spec", fmt="paddle", params=params if params.is_file() else None)
        else:
            raise BundleFailed("%s: not a model file edgeapp knows (.pdmodel, .onnx, .tflite, .nb)" % source)
        if "cfg" not in src:
            side = source.with_suffix(".json") if suffix != ".json" else None
            if side and side.is_file():
                src["cfg"] = side
            else:
                raise BundleFailed("%s alone does not say what the model does: give --config SPEC.json (type, "
                                   "input_shape, Preprocess, PostProcess, label_list) or put %s next to it"
                                   % (source, source.with_suffix(".json").name))
        return src
    # A folder: which exporter wrote it?
    infer_cfg = _one(folder, ["infer_cfg.yml", "infer_cfg.yaml"])
    cls_cfg = _one(folder, ["inference_cls.yaml", "inference_cls.yml"])
    eb_cfg = folder / "config.json"
    if infer_cfg or cls_cfg:
        model = _one(folder, ["model.pdmodel", "inference.pdmodel", "*.pdmodel"])
        if model is None:
            raise BundleFailed("%s has %s but no .pdmodel file" % (folder, (infer_cfg or cls_cfg).name))
        params = model.with_suffix(".pdiparams")
        if not params.is_file():
            raise BundleFailed("%s has no %s next to %s" % (folder, params.name, model.name))
        src.update(kind="paddledet" if infer_cfg else "paddleclas", fmt="paddle", model=model, params=params,
                   cfg=src.get("cfg") or infer_cfg or cls_cfg)
        return src
    if eb_cfg.is_file():
        cfg = _read_json(eb_cfg)
        if "input_width" in cfg or "network_type" in cfg or "model_file_fpga" in cfg:
            return _edgeboard_files(folder, cfg, src, eb_cfg)
    for stem_cfg in sorted(folder.glob("*.json")):
        for ext in (".nb", ".onnx", ".tflite", ".pdmodel"):
            if stem_cfg.with_suffix(ext).is_file():
                return inspect(stem_cfg.with_suffix(ext), config or stem_cfg)
    raise BundleFailed(
        "%s: not an export edgeapp knows. Expected infer_cfg.yml (PaddleDetection), inference_cls.yaml "
        "(PaddleClas), config.json + model + params (EdgeBoard), or a model file with a spec JSON." % folder)


def _edgeboard_files(folder, cfg, src, eb_cfg):
    model = folder / str(cfg.get("model_file_fpga") or cfg.get("model") or "model")
    params = folder / str(cfg.get("params_file_fpga") or cfg.get("params") or "params")
    if model.is_dir():  # "model": "../models/ssd" style: the folder holding model + params
        model, params = model / "model", model / "params"
    if not model.is_file():
        raise BundleFailed("%s names model file %s, which is not there" % (eb_cfg, model.name))
    if cfg.get("combined_model") is False or not params.is_file():
        raise BundleFailed("%s: only combined models (one `model` and one `params` file) are supported; "
                           "save it with params_filename set" % eb_cfg)
    src.update(kind="edgeboard", fmt="paddle", model=model, params=params, cfg=eb_cfg)
    return src


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise BundleFailed("cannot read %s: %s" % (path, e))


def read_yaml(path, tool_venv):
    try:
        py = pipeline.tool_python(tool_venv)
    except pipeline.ConvertFailed as e:
        raise BundleFailed("reading %s needs PyYAML from the converter venv: %s" % (path.name, e))
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([py, str(pipeline.CONVERT), "yaml", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    if proc.returncode != 0:
        raise BundleFailed("cannot read %s: %s" % (path, proc.stderr.strip().splitlines()[-1:] or "?"))
    return json.loads(proc.stdout)


# ---- the spec (bundle.json keys) from each exporter's config ------------------------------------
def _size_arg(text):
    m = re.match(r"^(\d+)x(\d+)$", text or "")
    if not m:
        raise BundleFailed("--input-size %r: give WIDTHxHEIGHT, e.g. 320x320" % text)
    return int(m.group(2)), int(m.group(1))


def _labels_file(path):
    """label_list.txt (one per line) or PaddleClas's class id map ("id name" per line)."""
    labels = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            parts = line.split(None, 1)
            labels.append(parts[1] if len(parts) == 2 and parts[0].isdigit() else line)
    return labels


def spec_paddledet(cfg):
    """PaddleDetection infer_cfg.yml -> spec (the decode is settled after conversion)."""
    pre = {"channel_order": "RGB", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    size = None
    for step in cfg.get("Preprocess") or []:
        t = step.get("type")
        if t == "Resize":
            ts = step.get("target_size")
            size = (int(ts[0]), int(ts[1])) if isinstance(ts, (list, tuple)) else (int(ts), int(ts))
            pre["resize"] = "letterbox" if step.get("keep_ratio") else "stretch"
            if "interp" in step:
                pre["interpolation"] = int(step["interp"])
        elif t == "NormalizeImage":
            mean, std = step.get("mean", [0, 0, 0]), step.get("std", [1, 1, 1])
            is_scale = step.get("is_scale", True)
            if step.get("norm_type") == "none":
                mean, std = [0.0] * 3, [1.0] * 3
            if is_scale:
                pre["mean"], pre["std"] = [float(m) for m in mean], [float(s) for s in std]
            else:  # mean/std in pixel units
                pre["mean"] = [float(m) / 255.0 for m in mean]
                pre["std"] = [float(s) / 255.0 for s in std]
        elif t in ("Permute", "PadStride", None):
            continue
        elif t in ("LetterBoxResize",):
            ts = step.get("target_size")
            size = (int(ts[0]), int(ts[1]))
            pre["resize"] = "letterbox"
        else:
            raise BundleFailed("infer_cfg.yml: preprocessing step %r is not supported (Resize, LetterBoxResize, "
                               "NormalizeImage, Permute, PadStride are)" % t)
    post = {"score_thresh": float(cfg.get("draw_threshold", 0.5))}
    nms = cfg.get("NMS") or {}
    for k_from, k_to in (("nms_threshold", "nms_thresh"), ("nms_top_k", "nms_top_k"), ("keep_top_k", "keep_top_k")):
        if k_from in nms:
            post[k_to] = nms[k_from]
    if cfg.get("fpn_stride"):
        post["strides"] = [int(s) for s in cfg["fpn_stride"]]
    spec = {"type": "detection", "Preprocess": pre, "PostProcess": post,
            "label_list": [str(x) for x in cfg.get("label_list") or []],
            "description": "PaddleDetection %s export" % cfg.get("arch", "")}
    return spec, size


def spec_paddleclas(cfg):
    pre = {"channel_order": "RGB", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "resize": "stretch"}
    size = None
    ops = ((cfg.get("PreProcess") or {}).get("transform_ops")) or []
    for op in ops:
        (name, args), = op.items() if isinstance(op, dict) else ((op, {}),)
        args = args or {}
        if name == "ResizeImage":
            if "resize_short" in args:
                pre["resize"], pre["resize_short"] = "resize_short", int(args["resize_short"])
            elif "size" in args:
                s = args["size"]
                size = (int(s[1]), int(s[0])) if isinstance(s, (list, tuple)) else (int(s), int(s))
            if "interpolation" in args:
                pre["interpolation"] = {"bilinear": "linear", "bicubic": "cubic", "lanczos": "lanczos",
                                        "nearest": "nearest", "area": "area"}.get(str(args["interpolation"]), "linear")
        elif name == "CropImage":
            s = args.get("size", 224)
            size = (int(s[1]), int(s[0])) if isinstance(s, (list, tuple)) else (int(s), int(s))
        elif name == "NormalizeImage":
            scale = args.get("scale", 1.0 / 255.0)
            if isinstance(scale, str):
                scale = 1.0 / 255.0 if "255" in scale else float(scale)
            k = 255.0 * float(scale)
            pre["mean"] = [float(m) / k for m in args.get("mean", [0, 0, 0])]
            pre["std"] = [float(s) / k for s in args.get("std", [1, 1, 1])]
        elif name == "DecodeImage":
            pre["channel_order"] = "RGB" if args.get("to_rgb", True) else "BGR"
        elif name in ("ToCHWImage",):
            continue
        else:
            raise BundleFailed("inference_cls.yaml: transform %r is not supported (ResizeImage, CropImage, "
                               "NormalizeImage, ToCHWImage are)" % name)
    topk = ((cfg.get("PostProcess") or {}).get("Topk")) or {}
    spec = {"type": "classify", "Preprocess": pre, "PostProcess": {"topk": int(topk.get("topk", 1))},
            "label_list": [], "description": "PaddleClas export"}
    return spec, size, topk.get("class_id_map_file")


def spec_edgeboard(cfg, folder):
    h, w = int(cfg.get("input_height", 0)), int(cfg.get("input_width", 0))
    mean = [float(m) for m in cfg.get("mean", [0, 0, 0])]
    scale = cfg.get("scale", [1, 1, 1])
    scale = [float(scale)] * 3 if not isinstance(scale, list) else [float(s) for s in scale]
    # EdgeBoard: (pixel - mean) * scale  ==  (pixel/255 - mean/255) / (1 / (255 * scale))
    pre = {"resize": "stretch", "mean": [m / 255.0 for m in mean], "std": [1.0 / (255.0 * s) for s in scale],
           "channel_order": str(cfg.get("format", "BGR")).upper()}
    labels = []
    lf = cfg.get("labels") or cfg.get("label_list") or "label_list.txt"
    if isinstance(lf, list):
        labels = [str(x) for x in lf]
    elif (folder / lf).is_file():
        labels = _labels_file(folder / lf)
    net = str(cfg.get("network_type", "")).upper()
    kind = "classify" if net in ("CLASSIFICATION", "CLS", "CLASSIFY") else "detection"
    post = {"score_thresh": float(cfg.get("threshold", 0.5))}
    if kind == "classify":
        post = {"topk": 1}
    spec = {"type": kind, "Preprocess": pre, "PostProcess": post, "label_list": labels,
            "description": "EdgeBoard %s model" % (cfg.get("network_type") or kind)}
    return spec, ((h, w) if h and w else None)


def finish_detection(spec, record):
    """Settle PostProcess.decode from what the conversion found (NMS cut, kept, or none)."""
    post = spec["PostProcess"]
    nms = record.get("nms") or {}
    shapes = record.get("output_shapes") or []
    if nms.get("kept"):
        post["decode"] = "nms"
        post.setdefault("normalized", False)
        return
    if nms:
        post["decode"] = "boxes_scores"
        post["nms_thresh"] = round(float(nms.get("nms_threshold", post.get("nms_thresh", 0.5))), 4)
        post.setdefault("nms_top_k", int(nms.get("nms_top_k", 1000)) if int(nms.get("nms_top_k", -1)) > 0 else 1000)
        if int(nms.get("keep_top_k", -1)) > 0:
            post["keep_top_k"] = int(nms["keep_top_k"])
        post["background_label"] = int(nms.get("background_label", -1))
        post["normalized"] = bool(nms.get("normalized", False))
        return
    strides = post.get("strides") or []
    if strides and len(shapes) == 2 * len(strides):
        post["decode"] = "gfl"
    elif len(shapes) == 2 and len(shapes[0]) == 3 and shapes[0][-1] == 4:
        post["decode"] = "boxes_scores"
    elif shapes and shapes[0][-1] == 6:
        post["decode"] = "nms"
    else:
        raise BundleFailed("cannot tell how to decode the detector's outputs %s (expected [N,6] rows, boxes "
                           "[1,M,4] + scores [1,C,M], or PicoDet heads matching fpn_stride)" % shapes)


# ---- the build ---------------------------------------------------------------------------------
def make_spec(src, args):
    kind = src["kind"]
    size, class_map = None, None
    if kind == "paddledet":
        spec, size = spec_paddledet(read_yaml(src["cfg"], args.tool_venv))
    elif kind == "paddleclas":
        spec, size, class_map = spec_paddleclas(read_yaml(src["cfg"], args.tool_venv))
    elif kind == "edgeboard":
        spec, size = spec_edgeboard(_read_json(src["cfg"]), src["folder"])
    else:
        spec = _read_json(src["cfg"])
        for key in ("id", "name", "model", "target", "built", "source"):
            spec.pop(key, None)
        if "type" not in spec or "input_shape" not in spec:
            raise BundleFailed("%s: a spec needs at least type and input_shape" % src["cfg"])
        size = tuple(spec["input_shape"][2:4])
    if args.input_size:
        size = _size_arg(args.input_size)
    if not size:
        raise BundleFailed("the export does not fix an input size (e.g. keep_ratio with a range): give "
                           "--input-size WxH")
    spec["input_shape"] = [1, 3, int(size[0]), int(size[1])]
    if args.labels:
        spec["label_list"] = _labels_file(Path(args.labels))
    elif class_map:
        path = src["folder"] / Path(class_map).name
        if path.is_file():
            spec["label_list"] = _labels_file(path)
    if args.description:
        spec["description"] = args.description
    return spec


def existing_ids(out, name):
    ids = {}
    if out.is_dir():
        for p in out.glob("*/bundle.json"):
            try:
                ids[int(json.loads(p.read_text())["id"])] = p.parent.name
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return ids


def run_engines(folder, reference):
    """tools/convert/bundle_run.py on the probe bundle: the model type on each engine it has a file for,
    and both engines' outputs on the same tensors. Returns its JSON record."""
    cmd = [sys.executable, str(TOOLS / "convert" / "bundle_run.py"), str(folder)] + ([str(reference)] if reference else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    if proc.returncode != 0:
        raise BundleFailed("the bundle does not run: %s" % "\n".join(proc.stderr.strip().splitlines()[-6:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def brief(error):
    """A converter's error in one line: what failed, and the last line of why (not the whole traceback)."""
    lines = [l.strip() for l in str(error).strip().splitlines() if l.strip()]
    return " ".join(lines[:1] + lines[-1:] if len(lines) > 1 else lines)


def without_onnx(reason, args, warn=True):
    """The progress text for a bundle left without model.onnx (a warning on stderr when something failed),
    or BundleFailed when --engine onnxruntime needs the file."""
    reason = brief(reason)
    if args.engine == ONNXRUNTIME:
        raise BundleFailed("no %s: %s. --engine onnxruntime needs it (without --engine the bundle is written for "
                           "Paddle Lite only)" % (ONNX_NAME, reason))
    if warn:
        print("warning: no %s: %s. The bundle will run on Paddle Lite only; --engine onnxruntime makes this "
              "an error." % (ONNX_NAME, reason), file=sys.stderr, flush=True)
    return "no %s (%s): the bundle will run on Paddle Lite only" % (ONNX_NAME, reason)


def export_onnx(src, spec, folder, args, say):
    """Step 6: the model as ONNX for ONNX Runtime, from the Paddle model the .nb was made from (paddle2onnx;
    im_shape/scale_factor folded and NMS cut as for the .nb) or the ONNX before x2paddle's rewrites
    (onnx_export.py, cached). Returns (that folder, None) or (None, why there is none)."""
    if src["fmt"] == "nb":
        why = "a Paddle Lite .nb cannot be turned into ONNX; bundle the model it was made from for that"
        say("onnx: %s" % without_onnx(why, args, warn=False))
        return None, why
    if args.engine == PADDLELITE:
        say("onnx: skipped (--engine paddlelite: the bundle runs on Paddle Lite only)")
        return None, "--engine paddlelite"
    try:
        if src["fmt"] == "paddle":
            onnx_folder, record = pipeline.paddle_to_onnx(folder / "model", spec["input_shape"], args.cache,
                                                          say.detail, args.tool_venv)
        else:
            onnx_folder, record = pipeline.converted_onnx(folder, spec["input_shape"], args.cache, say.detail,
                                                          args.tool_venv)
    except pipeline.ConvertFailed as e:
        say("onnx: %s" % without_onnx(e, args))
        return None, brief(e)
    say("onnx: %s by %s (%s)" % (ONNX_NAME, build_models.ONNX_TOOLS[src["fmt"]],
                                 "; ".join(record["steps"]) or "as converted"))
    return onnx_folder, None


def check_onnx(onnx_folder, staging, args, say):
    """Step 7: ONNX Runtime on model.onnx against the reference, on the same input as the .nb's check; the
    file goes into staging when it passes. Returns (the built.onnx_check record or None, why not)."""
    if onnx_folder is None:
        say("ONNX check: skipped (no %s)" % ONNX_NAME)
        return None, None
    try:
        check, summary = pipeline.checked_onnx(onnx_folder, staging / ONNX_NAME, args.tolerance)
    except pipeline.ConvertFailed as e:
        say("ONNX check: %s" % without_onnx(e, args))
        return None, brief(e)
    say("ONNX check: %s" % summary)
    return check, None


def run_step(spec, staging, x86_nb, reference, args, say):
    """Step 8: the model type on each engine (an x86 .nb, model.onnx), and both engines' outputs on the same
    tensors held to the check's tolerance. Returns why model.onnx was dropped, or None."""
    if x86_nb is None:
        say("run: skipped (an %s .nb does not run here)" % args.target)
        return None
    probe = staging.parent / "probe" / spec["name"]
    probe.mkdir(parents=True)
    shutil.copy(x86_nb, probe / MODEL_NAME)
    if (staging / ONNX_NAME).is_file():
        shutil.copy(staging / ONNX_NAME, probe / ONNX_NAME)
    build_models.write_json(probe / "bundle.json", {k: v for k, v in spec.items() if k != "engine"})
    res = run_engines(probe.parent, reference)
    mem = res["memory_mb"]
    ran = "Paddle Lite x86 (%s MB after warm-up)" % mem[PADDLELITE]
    if ONNXRUNTIME not in mem:
        say("run: the %s type decodes its outputs on %s" % (spec["type"], ran))
        return None
    tolerance = pipeline.DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    limit = tolerance * max(1.0, res["max_abs"])
    if res["max_abs_diff"] > limit:
        why = ("ONNX Runtime's outputs differ from Paddle Lite's by %.3g on the same tensors (allowed %.3g)"
               % (res["max_abs_diff"], limit))
        (staging / ONNX_NAME).unlink()
        say("run: the %s type decodes its outputs on %s; %s" % (spec["type"], ran, without_onnx(why, args)))
        return why
    say("run: the %s type decodes its outputs on %s and ONNX Runtime (%s MB); on the same tensors their outputs "
        "differ by at most %.3g" % (spec["type"], ran, mem[ONNXRUNTIME], res["max_abs_diff"]))
    return None


def convert_step(src, spec, args, say):
    """Step 3: the Paddle inference model (folded, checked against the reference) and its record."""
    if src["fmt"] == "nb":
        say("convert: none needed (already a Paddle Lite model; not checked against a reference)")
        if args.target != spec.get("target", args.target):
            raise BundleFailed("the .nb is for %s, not %s" % (spec.get("target"), args.target))
        return None, {}
    keep = args.keep_nms or (src["kind"] == "spec" and spec["type"] == "detection"
                             and spec.get("PostProcess", {}).get("decode", "nms") == "nms")
    try:
        folder, record = pipeline.to_paddle(src["fmt"], src["model"], spec["input_shape"], Path(args.cache),
                                            say.detail, tool_venv=args.tool_venv,
                                            params=src.get("params") if src["fmt"] == "paddle" else None,
                                            keep_nms=keep)
    except pipeline.ConvertFailed as e:
        raise BundleFailed(str(e))
    say("convert: Paddle inference model (%s); Paddle vs %s max abs diff %.3g"
        % ("; ".join(record.get("steps") or ["as exported"]), record["reference"], record["paddle_max_abs_diff"]))
    if spec["type"] == "detection" and src["kind"] != "spec":
        finish_detection(spec, record)
    return folder, record


def opt_step(src, folder, staging, args, say):
    """Step 4: model.nb for the target; returns the x86 .nb the checks run (None for an ARM .nb as given)."""
    if src["fmt"] == "nb":
        shutil.copy(src["model"], staging / MODEL_NAME)
        say("paddle_lite_opt: skipped (.nb copied)")
        return staging / MODEL_NAME if args.target == "x86" else None
    opt = build_models.find_opt_tool()
    nb = pipeline.run_opt(opt, folder / "model.pdmodel", folder / "model.pdiparams", staging / "model", args.target)
    x86_nb = nb if args.target == "x86" else pipeline.run_opt(
        opt, folder / "model.pdmodel", folder / "model.pdiparams", staging.parent / "check", "x86")
    say("paddle_lite_opt: %s for %s (%.1f MB)" % (MODEL_NAME, args.target, nb.stat().st_size / 1e6))
    return x86_nb


def lite_check_step(folder, record, x86_nb, args, say):
    """Step 5: Paddle Lite x86 against the reference runtime; returns the built.check record (None for a .nb)."""
    if folder is None:
        say("check: skipped (no reference for a .nb)")
        return None
    try:
        res = pipeline.lite_check(x86_nb, folder / "reference.npz", args.tolerance)
    except pipeline.ConvertFailed as e:
        raise BundleFailed(str(e))
    say("check: Paddle Lite x86 vs %s: max abs diff %.3g, %.1f ms/run, peak RSS %.0f MB"
        % (record["reference"], res["max_abs_diff"], res["ms_per_run"], res["peak_rss_mb"]))
    return {"reference": record["reference"], "steps": record.get("steps", []),
            "paddle_max_abs_diff": record["paddle_max_abs_diff"], "lite_max_abs_diff": res["max_abs_diff"],
            "lite_x86_ms_per_run": res["ms_per_run"], "lite_x86_peak_rss_mb": res["peak_rss_mb"]}


def inspect_step(args, say):
    """Step 1: what the source is, the bundle's name, and the refusals that need no work."""
    src = inspect(args.source, args.config)
    name = args.name or re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(args.source).resolve().stem if Path(
        args.source).is_file() else Path(args.source).resolve().name).strip("-.") or "model"
    if "/" in name or name.startswith(".") or not name:
        raise BundleFailed("--name %r: a plain folder name, please" % name)
    what = {"paddledet": "PaddleDetection export", "paddleclas": "PaddleClas export", "edgeboard": "EdgeBoard model",
            "spec": "%s model with an edgeapp spec" % src["fmt"]}[src["kind"]]
    say("inspect: %s is a %s (%s)" % (pipeline.show(args.source), what, src["model"].name))
    if src["fmt"] == "nb" and args.engine == ONNXRUNTIME:
        raise BundleFailed("--engine onnxruntime needs %s, and a Paddle Lite .nb cannot be turned into ONNX: "
                           "bundle the model it was made from (Paddle inference model, ONNX or TFLite)" % ONNX_NAME)
    out = Path(args.out)
    ids = existing_ids(out, name)
    if args.id in ids and ids[args.id] != name:
        raise BundleFailed("model id %d is already used by %s in %s; pick another --id"
                           % (args.id, ids[args.id], pipeline.show(out)))
    if (out / name).exists() and not args.force:
        raise BundleFailed("%s already exists; --force replaces it" % pipeline.show(out / name))
    return src, name, what


def built_record(src, what, record, check, onnx_check, no_onnx):
    built = {"tool": "tools/bundle.py", "from": what, "source_file": src["model"].name,
             "sha256": pipeline.sha256_file(src["model"]), "paddlelite": build_models.paddlelite_version()}
    if record.get("tools"):
        built["converters"] = {k: v for k, v in record["tools"].items() if v != "unknown"}
    if check:
        built["check"] = check
    if onnx_check:
        built.update(onnx_tool=build_models.ONNX_TOOLS[src["fmt"]], onnx_check=onnx_check)
    elif no_onnx:
        built["no_onnx"] = no_onnx
    return built


def write_step(staging, out, name, args, say):
    """Step 9: <out>/<name>/ replaced atomically by the staged files."""
    out.mkdir(parents=True, exist_ok=True)
    final = Path(tempfile.mkdtemp(dir=out, prefix=".%s.tmp-" % name))
    os.chmod(final, 0o755)
    for f in staging.iterdir():
        shutil.copy(f, final / f.name)
    build_models.replace_dir(final, out / name)
    files = " + ".join(f.name for f in sorted(staging.iterdir()) if f.name != "bundle.json")
    say("wrote %s (id %d; %s): the service loads it at its next start or reload"
        % (pipeline.show(out / name), args.id, files))


def run(args):
    say = Progress()
    src, name, what = inspect_step(args, say)  # 1
    spec = make_spec(src, args)  # 2
    if spec.get("type") not in KNOWN_TYPES:
        raise BundleFailed("type %r is not a model type edgeapp has (%s)" % (spec.get("type"), ", ".join(KNOWN_TYPES)))
    say("spec: type %s, input %s, %d labels" % (spec["type"], spec["input_shape"], len(spec.get("label_list", []))))
    work = Path(tempfile.mkdtemp(prefix="edgeapp-bundle-"))
    try:
        folder, record = convert_step(src, spec, args, say)  # 3
        staging = work / name
        staging.mkdir()
        x86_nb = opt_step(src, folder, staging, args, say)  # 4
        check = lite_check_step(folder, record, x86_nb, args, say)  # 5
        onnx_folder, no_onnx = export_onnx(src, spec, folder, args, say)  # 6
        onnx_check, failed = check_onnx(onnx_folder, staging, args, say)  # 7
        spec.update({"id": args.id, "name": name, "model": MODEL_NAME, "target": args.target})
        if onnx_check:
            spec["onnx_model"] = ONNX_NAME
        if args.engine:
            spec["engine"] = args.engine
        dropped = run_step(spec, staging, x86_nb, folder and folder / "reference.npz", args, say)  # 8
        failed = failed or dropped
        if failed:
            onnx_check, no_onnx = None, failed
            spec.pop("onnx_model", None)
        spec["built"] = built_record(src, what, record, check, onnx_check, no_onnx)
        ordered = {k: spec[k] for k in ("id", "name", "type", "description", "input_shape", "Preprocess",
                                        "PostProcess", "label_list") if k in spec}
        ordered.update({k: v for k, v in spec.items() if k not in ordered})
        build_models.write_json(staging / "bundle.json", ordered)
        write_step(staging, Path(args.out), name, args, say)  # 9
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _known_types():
    from edgeapp.models import TYPES  # the installed package (make setup)
    return tuple(TYPES)


KNOWN_TYPES = _known_types()


def parse_args(argv):
    p = argparse.ArgumentParser(description="Turn an exported model into an edgeapp bundle (model.nb, model.onnx "
                                            "where it can be made, bundle.json).",
                                epilog="Formats: PaddleDetection (infer_cfg.yml), PaddleClas (inference_cls.yaml), "
                                       "EdgeBoard (config.json), or .pdmodel/.onnx/.tflite/.nb + a spec JSON.")
    p.add_argument("source", help="export folder, or a model file")
    p.add_argument("--id", type=int, required=True, help="model id (mid) the service will use; must be unused")
    p.add_argument("--name", help="bundle folder name (default: from the source)")
    p.add_argument("--target", default=os.environ.get("LITE_TARGET", "x86"),
                   help="Paddle Lite target: %s (default x86)" % ", ".join(build_models.TARGETS))
    p.add_argument("--out", help="model dir to write into (default: $EDGEAPP_MODEL_DIR or build/models/<target>)")
    p.add_argument("--config", help="edgeapp spec JSON, or the exporter's config if it has another name")
    p.add_argument("--input-size", metavar="WxH", help="the bundle's fixed input size (default: from the export)")
    p.add_argument("--labels", help="label file (one per line, or PaddleClas 'id name')")
    p.add_argument("--description")
    p.add_argument("--keep-nms", action="store_true",
                   help="keep a detector's own NMS ([N,6] output) instead of cutting it off for OpenCV's")
    p.add_argument("--tolerance", type=float,
                   help="allowed |Paddle Lite - reference|, |ONNX Runtime - reference| and |ONNX Runtime - "
                        "Paddle Lite|, relative to the largest output (default %g)"
                        % pipeline.DEFAULT_TOLERANCE)
    p.add_argument("--tool-venv", help="converter venv (default build/tool-venv; make tool-venv)")
    p.add_argument("--cache", default=str(REPO / "build" / "cache"), help="conversion cache (default build/cache)")
    p.add_argument("--force", action="store_true", help="replace a bundle of the same name")
    p.add_argument("--engine", choices=ENGINES,
                   help="pin the bundle to one engine (bundle.json \"engine\"). onnxruntime: model.onnx is "
                        "required, and its export or check failing is an error (a bare .nb is refused). "
                        "paddlelite: no model.onnx is made. Default: model.nb, plus model.onnx where the model "
                        "can be exported and passes its check (else a warning), the engine left to the board "
                        "(EDGEAPP_ENGINE)")
    args = p.parse_args(argv)
    if args.target not in build_models.TARGETS:
        p.error("unknown target %r; accepted targets: %s" % (args.target, ", ".join(build_models.TARGETS)))
    if args.id < 0:
        p.error("--id must be 0 or more")
    if args.out is None:
        args.out = os.environ.get("EDGEAPP_MODEL_DIR") or str(REPO / "build" / "models" / args.target)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (BundleFailed, build_models.BuildError, pipeline.ConvertFailed) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
