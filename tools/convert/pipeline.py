"""The converter pipeline as the service venv drives it (standard library only).

    tflite / onnx / Paddle-with-extra-inputs --(tool venv: convert.py)--> Paddle inference model
        --(paddle_lite_opt, service venv)--> model.nb --(lite_check.py)--> max abs diff vs reference
    TF.js graph --(TF.js venv: tfjs.py)--> ONNX + TensorFlow's outputs --> as onnx, checked against both
    Darknet .cfg + .weights --(tool venv: darknet.py)--> ONNX --> as onnx

Used by tools/build_models.py (the zoo bundles) and tools/bundle.py (the user's own models). The
converters live in their own venvs (build/tool-venv, `make tool-venv`; build/tool-venv-tfjs, `make
tool-venv-tfjs`); the service venv only runs them as subprocesses. Converted Paddle models are
cached under <cache>/paddle/<key>/, keyed by the source files' sha256, the input shape, the options,
the check's inputs, and the converters' own files (requirements, code), so a second build skips the
conversion.
"""
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_TOOL_VENV = REPO / "build" / "tool-venv"
DEFAULT_TFJS_VENV = REPO / "build" / "tool-venv-tfjs"
CONVERT = HERE / "convert.py"
TFJS = HERE / "tfjs.py"
DARKNET = HERE / "darknet.py"
LITE_CHECK = HERE / "lite_check.py"
ORT_CHECK = HERE / "ort_check.py"
ONNX_EXPORT = HERE / "onnx_export.py"
PHOTO_INPUTS = HERE / "photo_inputs.py"
REQUIREMENTS = HERE / "requirements.txt"  # paddle2onnx's pin among them
# What each format's conversion runs: a change to any of these files is a new converter.
CONVERTER_FILES = [REQUIREMENTS, CONVERT, HERE / "onnx_fixes.py", PHOTO_INPUTS,  # the check's inputs too
                   ONNX_EXPORT]  # model.onnx: every format's, the Paddle ones' through paddle2onnx
TFJS_FILES = [HERE / "requirements-tfjs.txt", TFJS]
FORMAT_FILES = {"tfjs": TFJS_FILES, "darknet": [DARKNET]}
FORMATS = ("paddle", "onnx", "tflite", "tfjs", "darknet")
DEFAULT_TOLERANCE = 1e-3  # |lite - reference| <= tol * max(1, |reference|max)
CONVERT_TIMEOUT = 900
CHECK_TIMEOUT = 300


class ConvertFailed(Exception):
    """A conversion step failed; the message says which and why."""


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converter_key(fmt=None):
    """Changes when the converter venvs' pins or the conversion code that fmt runs change."""
    digest = hashlib.sha256()
    for p in CONVERTER_FILES + FORMAT_FILES.get(fmt, []):
        digest.update(p.read_bytes())
    return digest.hexdigest()[:16]


def tool_python(tool_venv=None):
    """The tool venv's python, or a ConvertFailed that says how to make it."""
    return _venv_python(tool_venv, "EDGEAPP_TOOL_VENV", DEFAULT_TOOL_VENV,
                        "the converter venv is missing: %s not found. Create it with `make tool-venv` (pinned "
                        "tflite2onnx, x2paddle, paddlepaddle, onnx, onnxruntime; about a minute), or pass "
                        "--tool-venv PATH.")


def tfjs_python(tfjs_venv=None):
    """The TF.js venv's python, or a ConvertFailed that says how to make it."""
    return _venv_python(tfjs_venv, "EDGEAPP_TFJS_VENV", DEFAULT_TFJS_VENV,
                        "the TF.js converter venv is missing: %s not found. Create it with `make tool-venv-tfjs` "
                        "(pinned tensorflow-cpu and tf2onnx, ~1 GB; under a minute with a fast link), or pass "
                        "--tfjs-venv PATH.")


def _venv_python(given, env_name, default, missing):
    py = Path(given or os.environ.get(env_name) or default) / "bin" / "python"
    if not py.exists():
        raise ConvertFailed(missing % py)
    return str(py)


def tfjs_weight_files(model_json):
    """The weight files a TF.js model.json names (its weightsManifest), beside it."""
    try:
        with open(model_json, encoding="utf-8") as f:
            manifest = json.load(f)["weightsManifest"]
        return [Path(model_json).parent / p for group in manifest for p in group["paths"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConvertFailed("%s is not a TF.js graph model.json: %s" % (model_json, e))


def _cache_key(fmt, model, shape, params, keep_nms, outputs, inputs):
    sources = [model] + (tfjs_weight_files(model) if fmt == "tfjs" else []) + ([params] if params else [])
    digest = hashlib.sha256()
    for part in [fmt] + [sha256_file(p) for p in sources] + [
            ",".join(map(str, shape)), "keep_nms" if keep_nms else "", ",".join(outputs or []),
            _npz_digest(inputs) if inputs else "", converter_key(fmt)]:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:20]


def _npz_digest(path):
    """The arrays of an .npz, not its bytes: np.savez stamps the time into the zip."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as zf:
        for name in sorted(zf.namelist()):
            digest.update(name.encode() + b"\0" + zf.read(name))
    return digest.hexdigest()


def to_paddle(fmt, model, shape, cache, log, tool_venv=None, params=None, keep_nms=False, tfjs_venv=None,
              outputs=None, inputs=None, tolerance=None):
    """Convert a tflite/onnx/TF.js/Darknet model (or fold a Paddle one) for one fixed input shape.
    The folder also keeps the ONNX before x2paddle's rewrites (source.onnx, with its source runtime's
    outputs in source_reference.npz): converted_onnx() makes the bundle's model.onnx of it.

    outputs: a TF.js graph's output tensors, in the order the bundle reads them. inputs: an .npz of
    real input tensors for the checks (photo_inputs.py), else a seeded sample. params: the Paddle
    model's params file, or a Darknet model's .weights (model is then its .cfg). A TF.js conversion whose
    ONNX differs from TensorFlow beyond tolerance is refused (and not cached).
    Returns (folder with model.pdmodel/model.pdiparams/reference.npz, the convert.json record)."""
    if fmt not in FORMATS:
        raise ConvertFailed("unknown model format %r (known: %s)" % (fmt, ", ".join(FORMATS)))
    folder = Path(cache) / "paddle" / _cache_key(fmt, model, shape, params, keep_nms, outputs, inputs)
    record_path = folder / "convert.json"
    if record_path.is_file() and (folder / "model.pdmodel").is_file():
        log("converted model cached: %s" % show(folder))
        return folder, json.loads(record_path.read_text())
    py = tool_python(tool_venv)
    tfjs_py = tfjs_python(tfjs_venv) if fmt == "tfjs" else None
    with _staged(folder) as staging:
        src, extra = str(model), (["--inputs", str(inputs)] if inputs else [])
        if fmt == "paddle" and src.endswith(".pdmodel"):
            src = src[:-len(".pdmodel")]
        if fmt == "tfjs":
            src, extra = _tfjs_to_onnx(tfjs_py, model, staging / "tfjs", shape, outputs, inputs, log)
            extra += ["--inputs", str(inputs)] if inputs else []
        if fmt == "darknet":
            src = _darknet_to_onnx(py, model, params, staging / "model.onnx", shape, log)
            params = None
        cmd = [py, str(CONVERT), "onnx" if fmt in ("tfjs", "darknet") else fmt, src, str(staging), "--shape",
               ",".join(map(str, shape))] + extra
        cmd += (["--params", str(params)] if params else []) + (["--keep-nms"] if keep_nms else [])
        _run_tool(cmd, "converting %s (%s) in the tool venv ..." % (Path(model).name, fmt), model, log)
        if not (staging / "convert.json").is_file():
            raise ConvertFailed("converting %s wrote no convert.json" % Path(model).name)
        record = json.loads((staging / "convert.json").read_text())
        _check_source(record, tolerance, model)
        shutil.rmtree(staging / "tfjs", ignore_errors=True)
    return folder, record


@contextlib.contextmanager
def _staged(folder):
    """A temp folder beside folder, renamed to it when the block ends well, removed when it fails:
    a cache folder is whole or absent."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        yield staging
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def paddle_to_onnx(prefix, shape, cache, log, tool_venv=None, inputs=None):
    """A Paddle inference model (prefix.pdmodel + prefix.pdiparams) as the bundle's model.onnx, by
    paddle2onnx, with Paddle Inference's outputs on inputs (an .npz of real images) and the seeded
    noise sample. Returns (folder with model.onnx, reference.npz, onnx.json; the onnx.json record)."""
    prefix = Path(prefix)
    parts = ["paddle", sha256_file(prefix.with_suffix(".pdmodel")), sha256_file(prefix.with_suffix(".pdiparams")),
             ",".join(map(str, shape)), _npz_digest(inputs) if inputs else "", converter_key("paddle")]
    extra = ["--inputs", str(inputs)] if inputs else []
    return _export_onnx(["paddle", str(prefix)] + extra, parts, shape, cache, log, tool_venv,
                        "paddle2onnx %s in the tool venv ..." % prefix.name)


def converted_onnx(folder, shape, cache, log, tool_venv=None):
    """The ONNX a to_paddle() folder kept (source.onnx), with its input fixed, as the bundle's model.onnx;
    its reference is the runtime it was made from (source_reference.npz). Returns as paddle_to_onnx."""
    folder = Path(folder)
    record = json.loads((folder / "convert.json").read_text())
    if not (folder / "source.onnx").is_file() or "onnx_source" not in record:
        raise ConvertFailed("%s has no source.onnx: convert it again" % show(folder))
    args = ["onnx", str(folder / "source.onnx"), "--reference", str(folder / "source_reference.npz"),
            "--reference-name", record["onnx_source"]["reference"]]
    return _export_onnx(args, ["onnx", folder.name, ",".join(map(str, shape)), converter_key()], shape, cache,
                        log, tool_venv, "ONNX for ONNX Runtime from %s ..." % show(folder / "source.onnx"))


def _export_onnx(args, key_parts, shape, cache, log, tool_venv, what):
    """onnx_export.py ARGS in the tool venv into <cache>/onnx/<key of key_parts>/, unless it is there."""
    digest = hashlib.sha256()
    for part in key_parts:
        digest.update(part.encode() + b"\0")
    folder = Path(cache) / "onnx" / digest.hexdigest()[:20]
    if (folder / "onnx.json").is_file() and (folder / "model.onnx").is_file():
        log("ONNX model cached: %s" % show(folder))
        return folder, json.loads((folder / "onnx.json").read_text())
    py = tool_python(tool_venv)
    with _staged(folder) as staging:
        cmd = [py, str(ONNX_EXPORT), args[0], args[1], str(staging), "--shape", ",".join(map(str, shape))] + args[2:]
        _run_tool(cmd, what, args[1], log)
        if not (staging / "onnx.json").is_file():
            raise ConvertFailed("the ONNX export of %s wrote no onnx.json" % args[1])
    return folder, json.loads((folder / "onnx.json").read_text())


def _tfjs_to_onnx(tfjs_py, model, out, shape, outputs, inputs, log):
    """tfjs.py in the TF.js venv: returns (the ONNX file, convert.py's options to compare with TF)."""
    if not outputs:
        raise ConvertFailed("a TF.js source needs its output tensors listed (source.outputs), in the order "
                            "the model type reads them")
    cmd = [tfjs_py, str(TFJS), str(model), str(out), "--shape", ",".join(map(str, shape)),
           "--outputs", ",".join(outputs)] + (["--inputs", str(inputs)] if inputs else [])
    _run_tool(cmd, "TF.js -> ONNX (tf2onnx) and TensorFlow's outputs, in the TF.js venv ...", model, log)
    record = json.loads((out / "tfjs.json").read_text())
    return str(out / "model.onnx"), ["--source-outputs", str(out / "source.npz"),
                                     "--source-name", "%s (the TF.js graph)" % record["reference"]]


def _darknet_to_onnx(py, cfg, weights, out, shape, log):
    """darknet.py in the tool venv: the .cfg + .weights as an ONNX file (out) ending at the raw [yolo] maps."""
    if not weights:
        raise ConvertFailed("a Darknet source needs its .weights file (source.params_file) beside its .cfg")
    cmd = [py, str(DARKNET), str(cfg), str(weights), str(out), "--shape", ",".join(map(str, shape))]
    _run_tool(cmd, "Darknet -> ONNX (darknet.py) in the tool venv ...", cfg, log)
    return str(out)


def _run_tool(cmd, what, model, log):
    """One converter run in its venv, its progress lines logged; ConvertFailed with its errors."""
    log(what)
    env = dict(os.environ, PYTHONNOUSERSITE="1", GLOG_minloglevel="2", FLAGS_call_stack_level="0")
    env.pop("PYTHONPATH", None)  # the tool venvs must not see the service's packages
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env, timeout=CONVERT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ConvertFailed("conversion of %s took over %d s" % (model, CONVERT_TIMEOUT))
    for line in proc.stdout.splitlines():
        if line.startswith("  "):
            log(line.strip())
    if proc.returncode != 0:
        errors = [l for l in proc.stdout.splitlines() if l.startswith("error")]
        detail = "\n".join(errors) or "\n".join(proc.stdout.splitlines()[-20:])
        raise ConvertFailed("converting %s failed:\n%s" % (Path(model).name, detail))


def _check_source(record, tolerance, model):
    """The ONNX made from another runtime's model (TF.js) must agree with that runtime."""
    if "source_max_abs_diff" not in record:
        return
    tolerance = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    limit = tolerance * max(1.0, record.get("source_max_abs", 1.0))
    if record["source_max_abs_diff"] > limit:
        raise ConvertFailed("%s: the ONNX differs from %s by %.3g (allowed %.3g): the conversion is wrong; "
                            "nothing was written" % (Path(model).name, record["source"],
                                                     record["source_max_abs_diff"], limit))


def photo_inputs(photos, shape, preprocess, out):
    """Real photos as input tensors for the checks (photo_inputs.py, service venv): out (.npz)."""
    cmd = [sys.executable, str(PHOTO_INPUTS), str(out)] + [str(p) for p in photos] + [
        "--shape", ",".join(map(str, shape)), "--preprocess", json.dumps(preprocess or {})]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=CHECK_TIMEOUT)
    if proc.returncode != 0 or not Path(out).is_file():
        raise ConvertFailed("could not make the check's photo inputs:\n%s" % proc.stdout[-2000:])
    return Path(out)


def run_opt(opt_tool, model_file, params_file, out_prefix, target):
    """paddle_lite_opt for the target; returns the .nb path."""
    cmd = [opt_tool, "--model_file", str(model_file), "--param_file", str(params_file),
           "--optimize_out", str(out_prefix), "--valid_targets", target]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    nb = Path(str(out_prefix) + ".nb")
    # The opt wrapper can exit 0 without writing anything, so check the file too.
    if proc.returncode != 0 or not nb.is_file() or nb.stat().st_size == 0:
        tail = "\n".join(proc.stdout.splitlines()[-30:])
        raise ConvertFailed("paddle_lite_opt failed (exit %s) for %s:\n%s" % (proc.returncode, model_file, tail))
    return nb


def lite_check(nb, reference, tolerance=None, runs=3):
    """Run the .nb under Paddle Lite (x86) on the reference input; refuse it when it drifts.

    Returns {"max_abs_diff", "tolerance", "ms_per_run", "peak_rss_mb", "output_shapes"}."""
    cmd = [sys.executable, str(LITE_CHECK), str(nb), str(reference), "--runs", str(runs)]
    return _run_check(cmd, "Paddle Lite", nb, tolerance)


def ort_check(model, reference, tolerance=None, runs=3):
    """Run model.onnx under the service's ONNX Runtime, with its engine's session options, on the
    reference input; refuse it when it drifts. Returns lite_check's figures plus "output_names" and
    "threads"."""
    cmd = [sys.executable, str(ORT_CHECK), str(model), str(reference), "--runs", str(runs)]
    return _run_check(cmd, "ONNX Runtime", model, tolerance)


def checked_onnx(folder, dest, tolerance=None):
    """folder's model.onnx (onnx_export.py) copied to dest (a bundle's model.onnx), after ONNX Runtime has
    run it against its reference (the runtime it was made from) on the check's inputs.
    Returns (the record for bundle.json's built.onnx_check, a one-line summary of the check)."""
    res = ort_check(Path(folder) / "model.onnx", Path(folder) / "reference.npz", tolerance)
    record = json.loads((Path(folder) / "onnx.json").read_text())
    shutil.copyfile(Path(folder) / "model.onnx", dest)
    os.chmod(dest, 0o644)
    summary = "ONNX Runtime x86 vs %s: max abs diff %.3g, %.1f ms/run (%d threads), peak RSS %.0f MB" % (
        record["reference"], res["max_abs_diff"], res["ms_per_run"], res["threads"], res["peak_rss_mb"])
    return {"reference": record["reference"], "steps": record["steps"], "onnxruntime": record["tools"]["onnxruntime"],
            "onnx_max_abs_diff": res["max_abs_diff"], "ort_x86_threads": res["threads"],
            "ort_x86_ms_per_run": res["ms_per_run"], "ort_x86_peak_rss_mb": res["peak_rss_mb"]}, summary


def _run_check(cmd, runtime, model, tolerance):
    """One check script's JSON line, its max abs diff held to tolerance * max(1, |reference|max)."""
    tolerance = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    env = dict(os.environ, PYTHONNOUSERSITE="1")
    if Path(cmd[0]).resolve() != Path(sys.executable).resolve():
        env.pop("PYTHONPATH", None)  # a tool venv must not see the service's packages
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ConvertFailed("the %s check of %s took over %d s" % (runtime, model, CHECK_TIMEOUT))
    try:
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ConvertFailed("the %s check of %s failed (exit %s):\n%s"
                            % (runtime, model, proc.returncode, "\n".join(proc.stderr.splitlines()[-15:])))
    if "error" in res:
        raise ConvertFailed("%s check of %s: %s" % (runtime, show(model), res["error"]))
    res["tolerance"] = tolerance
    limit = tolerance * max(1.0, res.get("reference_max_abs", 1.0))
    if res["max_abs_diff"] > limit:
        raise ConvertFailed("%s's outputs differ from the reference by %.3g (allowed %.3g): the "
                            "conversion is wrong; the bundle was not written" % (runtime, res["max_abs_diff"], limit))
    return res


def show(path):
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
