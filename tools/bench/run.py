"""The benchmark's command line and one whole run: the raw loops, then each server (its cases,
and for edgeapp the paired rounds and the overload), then the raw loops again."""
import argparse
import datetime
import json
import os
import shlex
import shutil
import sys
import tempfile

from tools.bench.bodies import default_image, image_info, write_bodies
from tools.bench.common import OVERLOAD_GAP, hard_cap, log
from tools.bench.floor import health_c1
from tools.bench.meta import display, edgeapp_version, engine_version, git_describe, loadavg, machine, peer_versions
from tools.bench.overload import overload_case
from tools.bench.paired import STEADY_MS, paired_rounds, raw_against_raw
from tools.bench.raw import raw_loop
from tools.bench.report import render, title, write_section
from tools.bench.servers import BASELINES, PEER_LIB, start_server
from tools.bench.service import ENDPOINTS, endpoint_cases, idle_health
from tools.bench.summary import summarize
from tools.bench.wrk import wrk_version
from tools.launch import MODEL_DIR


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args, wrk = parse_args(argv)
    work = tempfile.mkdtemp(prefix="edgeapp-bench-")
    try:
        image = read_image(args, work)
        bodies = {mid: write_bodies(work, image, mid) for mid in args.mids}
        meta = run_meta(args, argv, image, wrk)
        runs = []
        for i in range(args.runs):
            runs.append(one_run(args, i + 1, work, bodies, wrk))
        meta["loadavg_end"] = loadavg()
        summary = summarize(runs, args.mids)
        if args.json or args.chart:
            write_results(args, meta, summary, runs, work)
        report = render(summary, meta)
        print(report)
        if args.out:
            write_section(args.out, args.section, title(args.engine), report)
            log("written to %s (section %r)" % (args.out, args.section))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def parser():
    p = argparse.ArgumentParser(prog="python -m tools.bench",
                                description="edgeapp against the raw engine loop and the server a user would "
                                            "run instead (see tools/bench/__init__.py)")
    p.add_argument("--mid", "--model", dest="mids", type=lambda s: [x for x in s.replace(" ", ",").split(",") if x],
                   default=["2", "1"], help="model ids or bundle names, comma-separated (default 2,1: the fast "
                                            "text-direction model, then the text detector)")
    p.add_argument("--model-dir", default=MODEL_DIR)
    p.add_argument("--image", help="image file to send (default: a generated 640x480 text page, JPEG)")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per case and for the raw loop (default 5)")
    p.add_argument("--concurrency", type=int_list, default=[1, 2, 4, 8, 16], help="default 1,2,4,8,16")
    p.add_argument("--endpoints", type=lambda s: [x for x in s.split(",") if x], default=list(ENDPOINTS),
                   help="any of binary,base64,multipart (default all)")
    p.add_argument("--runs", type=int, default=1, help="repeat everything N times and report medians")
    p.add_argument("--client", choices=("auto", "py", "wrk"), default="auto",
                   help="binary endpoint load: wrk if installed (auto), always our Python client (py), or wrk")
    p.add_argument("--no-naive", "--no-peer", dest="no_baseline", action="store_true",
                   help="skip the baseline server (Paddle Lite: tools/naive_server.py; ONNX Runtime: the FastAPI "
                        "peer, tools/peer/server.py)")
    p.add_argument("--peer-lib", default=PEER_LIB, help="FastAPI and uvicorn for the peer (make peer-lib; default "
                                                        "build/peer-lib)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="an edgeapp setting for the server, e.g. --env QUEUE_DEPTH=8 (else defaults; "
                        "EDGEAPP_* from the caller's environment are not passed on)")
    p.add_argument("--min-requests", type=int, default=20,
                   help="a case lasts at least this many raw-loop runs' time (default 20: a 0.65 s model gets 13 s "
                        "cases); the raw loop, at least this many runs")
    p.add_argument("--max-requests", type=int, default=200000, help="request cap per case (default 200000)")
    p.add_argument("--request-timeout", type=float, default=60.0, help="seconds per request (default 60)")
    p.add_argument("--start-timeout", type=float, default=300.0, help="seconds a server may take to be ready")
    p.add_argument("--pairs", type=int, default=3,
                   help="rounds of edgeapp saturated between two raw loops (raw, edgeapp, raw, ...), back to "
                        "back, per model and run: the ratios the targets are judged on (default 3; 0 skips them)")
    p.add_argument("--overload-clients", type=int, default=64,
                   help="clients of the overload case (default 64; 0: skip it)")
    p.add_argument("--overload-mb", type=float, default=4.0, help="size of its JPEG, MB (default 4)")
    p.add_argument("--burst-clients", type=int, default=6,
                   help="clients of the overload case's burst the board can finish, all at once (default 6: the "
                        "queue of 4 and two in line; 0: skip it)")
    p.add_argument("--overload-rounds", type=int, default=5,
                   help="bursts of the overload case: every client at once, %.1f s apart (default 5; 0: only "
                        "the back-to-back load)" % OVERLOAD_GAP)
    p.add_argument("--out", help="write the report into this Markdown file (e.g. BENCHMARKS.md), replacing "
                                 "only its own section")
    p.add_argument("--section", help="section name in --out (default 'service' on Paddle Lite, "
                                     "'service-onnxruntime' on ONNX Runtime: one section per engine)")
    p.add_argument("--json", help="also write every figure, per run, as JSON here")
    p.add_argument("--chart", help="PNG chart here (needs matplotlib; skipped without it)")
    return p


def parse_args(argv):
    """(the checked arguments, with the model ids resolved and args.settings the --env settings as
    EDGEAPP_* names; the wrk to use or None)."""
    p = parser()
    args = p.parse_args(argv)
    bad = [e for e in args.endpoints if e not in ENDPOINTS]
    if bad or not args.endpoints:
        p.error("--endpoints: unknown %s; use any of %s" % (", ".join(bad), ",".join(ENDPOINTS)))
    if args.runs < 1 or args.seconds <= 0 or not args.concurrency or min(args.concurrency) < 1 or not args.mids:
        p.error("--runs, --seconds, --concurrency and --mid must be positive")
    args.model_dir = os.path.abspath(args.model_dir)
    args.mids = resolve_mids(args.mids, args.model_dir)
    args.settings = {}
    for kv in args.env:
        k, sep, v = kv.partition("=")
        if not sep:
            p.error("--env wants KEY=VALUE, got %r" % kv)
        k = k.upper()
        args.settings[k if k.startswith("EDGEAPP_") else "EDGEAPP_" + k] = v
    engine_setting(p, args)
    wrk = shutil.which("wrk")
    if args.client == "wrk" and not wrk:
        p.error("--client wrk: wrk is not installed (Debian: apt-get install wrk)")
    if args.client == "py" or "binary" not in args.endpoints:
        wrk = None
    return args, wrk


def engine_setting(p, args):
    """args.engine from EDGEAPP_ENGINE (default paddlelite); on ONNX Runtime EDGEAPP_ORT_THREADS
    resolved here as the worker resolves 0, so the raw loop, edgeapp's worker and the peer run the
    same number of threads; args.section from the engine unless given."""
    from edgeapp import config, engines

    args.engine = args.settings.get("EDGEAPP_ENGINE") or engines.PADDLELITE
    if args.engine not in engines.NAMES:
        p.error("--env ENGINE: one of %s, not %r" % (", ".join(engines.NAMES), args.engine))
    if args.engine == engines.ONNXRUNTIME:
        cpus = config.cpu_set(args.settings.get("EDGEAPP_WORKER_CPUS"))
        threads = int(args.settings.get("EDGEAPP_ORT_THREADS") or 0) or engines.ort_threads_default(cpus)
        args.settings["EDGEAPP_ORT_THREADS"] = str(threads)
    if args.section is None:
        args.section = "service" if args.engine == engines.PADDLELITE else "service-" + args.engine


def int_list(text):
    return [int(x) for x in text.replace(" ", ",").split(",") if x]


def resolve_mids(tokens, model_dir):
    """Model ids from ids or bundle names ("2", "text-direction")."""
    from edgeapp.bundle import load_bundles

    bundles = load_bundles(model_dir)
    by_name = {b.name: mid for mid, b in bundles.items()}
    mids = []
    for t in tokens:
        mid = int(t) if t.lstrip("-").isdigit() else by_name.get(t)
        if mid not in bundles:
            raise SystemExit("tools.bench: no model %r in %s; models: %s" % (t, model_dir, ", ".join(
                "%d %s" % (m, b.name) for m, b in sorted(bundles.items()))))
        mids.append(mid)
    return mids


def read_image(args, work):
    """The image every case sends (args.image_path: --image, or a generated text page); its bytes."""
    if args.image:
        args.image_path = os.path.abspath(args.image)
    else:
        args.image_path = os.path.join(work, "text-page.jpg")
        default_image(args.image_path)
    with open(args.image_path, "rb") as f:
        return f.read()


def run_meta(args, argv, image, wrk):
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine(), "git": git_describe(), "runs": args.runs, "seconds": args.seconds,
        "command": " ".join(shlex.quote(x) for x in [display(sys.executable), "-m", "tools.bench"] + argv),
        "image": ("%s (%s)" % (args.image, image_info(image)) if args.image
                  else "generated text page, %s" % image_info(image)),
        "settings": ", ".join("%s=%s" % kv for kv in sorted(args.settings.items())),
        "wrk": wrk_version(wrk) if wrk else None,
        "version": edgeapp_version(),
        "engine": args.engine, "engine_version": engine_version(args.engine), "baseline": BASELINES[args.engine],
        "peer": peer_versions(args.peer_lib) if BASELINES[args.engine] == "peer" else None,
    }


def write_results(args, meta, summary, runs, work):
    """Every figure as JSON (--json, else a temporary file), and the chart from it (--chart)."""
    results_json = args.json or os.path.join(work, "results.json")
    with open(results_json, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "summary": summary, "runs": runs}, f, indent=1)
    if args.chart:
        from tools.bench.chart import draw_chart

        if draw_chart(results_json, args.chart):
            base = os.path.dirname(os.path.abspath(args.out)) if args.out else os.getcwd()
            meta["chart"] = os.path.relpath(os.path.abspath(args.chart), base)


# ---- one whole run ---------------------------------------------------------------------------------

def one_run(args, run_no, work, bodies, wrk):
    run = {"raw": {}, "servers": {}, "cases": []}
    run["case_seconds"] = raw_first(args, run, run_no)
    for kind in ["edgeapp"] + ([] if args.no_baseline else [BASELINES[args.engine]]):
        measure_server(args, kind, run, run_no, work, bodies, wrk)
    raw_again(args, run, run_no)
    if args.pairs:  # the noise floor of the slower models' paired ratio, where the target is tight
        run["raw_against_raw"] = {mid: raw_against_raw(args, mid, run["case_seconds"][mid],
                                                       run["raw"][mid]["ms_per_run"], run_no)
                                  for mid in args.mids if run["raw"][mid]["ms_per_run"] > STEADY_MS}
    return run


def raw_first(args, run, run_no):
    """The raw loops (and concurrency 1's floor) before the servers; the seconds of each model's cases."""
    seconds = {}
    for mid in args.mids:
        run["raw"][mid] = r = raw_loop(args.model_dir, mid, args.image_path, args.seconds, args.min_requests,
                                       args.max_requests, args.settings, requests=True)
        # A slow model gets longer cases, so that each has at least --min-requests answers' worth.
        seconds[mid] = min(max(args.seconds, args.min_requests * r["ms_per_run"] / 1000.0), hard_cap(args.seconds))
        log("run %d raw    mid %d: %.1f runs/s, %.2f ms/run; %.1f s per case" % (
            run_no, mid, r["runs_per_s"], r["ms_per_run"], seconds[mid]))
    return seconds


def measure_server(args, kind, run, run_no, work, bodies, wrk):
    """One server's start-up, idle figures and cases; for edgeapp also the paired rounds and the
    overload. Into run."""
    seconds = run["case_seconds"]
    srv = start_server(kind, args.model_dir, work, args.settings, args.peer_lib)
    try:
        srv.wait_ready(args.start_timeout)
        log("run %d %-7s ready in %.1f s, idle RSS %.0f MB" % (run_no, kind, srv.startup_s, srv.idle["total_mb"]))
        idle = idle_health(args, srv)
        c1 = health_c1(args, srv, wrk) if kind == "edgeapp" else None
        run["cases"] += endpoint_cases(args, srv, bodies, seconds, wrk, run_no)
        if kind == "edgeapp" and args.pairs:
            run["pairs"] = {mid: paired_rounds(args, srv, mid, bodies[mid]["binary"], seconds[mid], wrk, run_no)
                            for mid in args.mids}
        if kind == "edgeapp" and args.overload_clients:
            slowest = max(args.mids, key=lambda m: run["raw"][m]["ms_per_run"])
            srv.wait_idle(args.request_timeout + 10)
            run["overload"] = overload_case(args, srv, slowest, work, max(seconds[slowest], 2 * args.seconds), run_no)
        status = srv.get_json("/api/status") if kind == "edgeapp" else None
        run["servers"][kind] = {"startup_s": srv.startup_s, "idle": srv.idle, "peak_mb": srv.sampler.peak(),
                                "status": status, "idle_health": idle, "health_c1": c1}
    finally:
        srv.stop()


def raw_again(args, run, run_no):
    """This machine's speed drifts by minutes (shared host): the raw loop runs again after the
    servers, and the faster of the two is the reference, so no ratio flatters the service."""
    for mid in args.mids:
        again = raw_loop(args.model_dir, mid, args.image_path, args.seconds, args.min_requests, args.max_requests,
                         args.settings)
        first = run["raw"][mid]
        log("run %d raw    mid %d again: %.1f runs/s (before: %.1f); the faster is the reference" % (
            run_no, mid, again["runs_per_s"], first["runs_per_s"]))
        best = dict(again if again["runs_per_s"] > first["runs_per_s"] else first)
        best["requests"] = first.get("requests")
        best["runs_per_s_before_after"] = [first["runs_per_s"], again["runs_per_s"]]
        run["raw"][mid] = best
