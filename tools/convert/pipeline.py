"""The converter pipeline as the service venv drives it (standard library only).

    tflite / onnx / Paddle-with-extra-inputs --(tool venv: convert.py)--> Paddle inference model
        --(paddle_lite_opt, service venv)--> model.nb --(lite_check.py)--> max abs diff vs reference

Used by tools/build_models.py (the zoo bundles) and tools/bundle.py (the user's own models). The
converters live in their own venv (build/tool-venv, `make tool-venv`); the service venv only runs
them as a subprocess. Converted Paddle models are cached under <cache>/paddle/<key>/, keyed by the
source file's sha256, the input shape, the options, and the converter's own files (requirements.txt,
convert.py), so a second build skips the conversion.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_TOOL_VENV = REPO / "build" / "tool-venv"
CONVERT = HERE / "convert.py"
LITE_CHECK = HERE / "lite_check.py"
REQUIREMENTS = HERE / "requirements.txt"
FORMATS = ("paddle", "onnx", "tflite")
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


def converter_key():
    """Changes when the converter venv's pins or the conversion code change."""
    digest = hashlib.sha256()
    for p in (REQUIREMENTS, CONVERT):
        digest.update(p.read_bytes())
    return digest.hexdigest()[:16]


def tool_python(tool_venv=None):
    """The tool venv's python, or a ConvertFailed that says how to make it."""
    venv = Path(tool_venv or os.environ.get("EDGEAPP_TOOL_VENV") or DEFAULT_TOOL_VENV)
    py = venv / "bin" / "python"
    if not py.exists():
        raise ConvertFailed(
            "the converter venv is missing: %s not found. Create it with `make tool-venv` (pinned "
            "tflite2onnx, x2paddle, paddlepaddle, onnx, onnxruntime; about a minute), or pass "
            "--tool-venv PATH." % py)
    return str(py)


def to_paddle(fmt, model, shape, cache, log, tool_venv=None, params=None, keep_nms=False):
    """Convert a tflite/onnx model (or fold a Paddle one) for one fixed input shape.

    Returns (folder with model.pdmodel/model.pdiparams/reference.npz, the convert.json record)."""
    if fmt not in FORMATS:
        raise ConvertFailed("unknown model format %r (known: %s)" % (fmt, ", ".join(FORMATS)))
    digest = hashlib.sha256()
    for part in (fmt, sha256_file(model), sha256_file(params) if params else "", ",".join(map(str, shape)),
                 "keep_nms" if keep_nms else "", converter_key()):
        digest.update(part.encode() + b"\0")
    folder = Path(cache) / "paddle" / digest.hexdigest()[:20]
    record_path = folder / "convert.json"
    if record_path.is_file() and (folder / "model.pdmodel").is_file():
        log("converted model cached: %s" % show(folder))
        return folder, json.loads(record_path.read_text())
    py = tool_python(tool_venv)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        src = str(model)
        if fmt == "paddle" and src.endswith(".pdmodel"):
            src = src[:-len(".pdmodel")]
        cmd = [py, str(CONVERT), fmt, src, str(staging), "--shape", ",".join(map(str, shape))]
        if params:
            cmd += ["--params", str(params)]
        if keep_nms:
            cmd.append("--keep-nms")
        log("converting %s (%s) in the tool venv ..." % (Path(model).name, fmt))
        env = dict(os.environ, PYTHONNOUSERSITE="1", GLOG_minloglevel="2", FLAGS_call_stack_level="0")
        env.pop("PYTHONPATH", None)  # the tool venv must not see the service's packages
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=env, timeout=CONVERT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise ConvertFailed("conversion of %s took over %d s" % (model, CONVERT_TIMEOUT))
        lines = [l for l in proc.stdout.splitlines() if l.startswith("  ") or l.startswith("error")]
        for line in lines:
            if not line.startswith("error"):
                log(line.strip())
        if proc.returncode != 0 or not (staging / "convert.json").is_file():
            errors = [l for l in proc.stdout.splitlines() if l.startswith("error")]
            detail = "\n".join(errors) or "\n".join(proc.stdout.splitlines()[-20:])
            raise ConvertFailed("converting %s failed:\n%s" % (Path(model).name, detail))
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder, json.loads(record_path.read_text())


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
    tolerance = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    try:
        proc = subprocess.run([sys.executable, str(LITE_CHECK), str(nb), str(reference), "--runs", str(runs)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ConvertFailed("the Paddle Lite check of %s took over %d s" % (nb, CHECK_TIMEOUT))
    try:
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ConvertFailed("the Paddle Lite check of %s failed (exit %s):\n%s"
                            % (nb, proc.returncode, "\n".join(proc.stderr.splitlines()[-15:])))
    if "error" in res:
        raise ConvertFailed("Paddle Lite check of %s: %s" % (show(nb), res["error"]))
    res["tolerance"] = tolerance
    limit = tolerance * max(1.0, res.get("reference_max_abs", 1.0))
    if res["max_abs_diff"] > limit:
        raise ConvertFailed("Paddle Lite's outputs differ from the reference by %.3g (allowed %.3g): the "
                            "conversion is wrong for this target; the bundle was not written"
                            % (res["max_abs_diff"], limit))
    return res


def show(path):
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
