"""Both engines, every model, short (`make bench-engines`, `python -m tools.bench engines`): for each
engine one edgeapp server with every bundle of the model folder, and for each single-predictor
model one paired round as the service benchmark takes them (raw loop, edgeapp saturated with
/api/health polled, raw loop): raw ms/run, the service's rate over the raw loop's, /api/health p99
while saturated, the model's memory (memory_mb in /api/models: the worker's RSS growth as it
loaded and warmed the model), the RSS of the raw loop's process (that model alone) and of the
worker with every model.

    python -m tools.bench engines --model-dir build/models/x86 --env WORKER_CPUS=1 --out BENCHMARKS.md

A model whose requests run other models too (the OCR pipeline, mid 3; face recognition, mid 9: its
type has no preprocess of its own) gets its predictor's raw ms on a filled tensor of its input shape
and the service's saturated rate, without a ratio: the two do not time the same work.
"""
import argparse
import datetime
import os
import shlex
import shutil
import sys
import tempfile
import time

from tools.bench.bodies import default_image, write_bodies
from tools.bench.common import f1, hard_cap, log, mb
from tools.bench.meta import display, edgeapp_version, engine_version, git_describe, loadavg, machine
from tools.bench.paired import paired_rounds, saturated
from tools.bench.raw import raw_loop
from tools.bench.report import ENGINE_NAMES, write_section
from tools.bench.servers import start_server
from tools.bench.summary import pooled_health
from tools.bench.watch import tree_rss
from tools.launch import MODEL_DIR

TITLE = "Both engines, every model (make bench-engines, python -m tools.bench engines)"
ENGINES = ("paddlelite", "onnxruntime")


def parser():
    p = argparse.ArgumentParser(prog="python -m tools.bench engines", description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", default=MODEL_DIR)
    p.add_argument("--mid", dest="mids", type=lambda s: [int(x) for x in s.split(",") if x],
                   help="model ids, comma-separated (default: every bundle that runs one predictor of its own)")
    p.add_argument("--engines", type=lambda s: [x for x in s.split(",") if x], default=list(ENGINES))
    p.add_argument("--seconds", type=float, default=3.0, help="seconds of each raw loop and saturated load (default 3)")
    p.add_argument("--min-requests", type=int, default=10,
                   help="each loop lasts at least this many raw runs' time (default 10)")
    p.add_argument("--max-requests", type=int, default=200000)
    p.add_argument("--request-timeout", type=float, default=60.0)
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="an edgeapp setting for the servers and raw loops, e.g. --env WORKER_CPUS=1")
    p.add_argument("--out", help="write the table into this Markdown file, replacing only its own section")
    p.add_argument("--section", default="engines")
    return p


def parse_args(argv):
    from edgeapp import config, engines

    args = parser().parse_args(argv)
    args.model_dir = os.path.abspath(args.model_dir)
    args.settings = {}
    for kv in args.env:
        k, _, v = kv.partition("=")
        k = k.upper()
        args.settings[k if k.startswith("EDGEAPP_") else "EDGEAPP_" + k] = v
    cpus = config.cpu_set(args.settings.get("EDGEAPP_WORKER_CPUS"))
    args.settings["EDGEAPP_ORT_THREADS"] = str(int(args.settings.get("EDGEAPP_ORT_THREADS") or 0)
                                               or engines.ort_threads_default(cpus))
    args.pairs, args.wrk = 1, shutil.which("wrk")
    return args


def model_kinds(model_dir, mids):
    """{mid: True when its requests run its predictor alone (a raw loop on its own preprocessing
    compares), False for a pipeline} for the bundles that run a model of their own."""
    from edgeapp import models
    from edgeapp.bundle import load_bundles

    bundles = load_bundles(model_dir)
    found = {mid: hasattr(models.build(b, bundles), "preprocess") for mid, b in sorted(bundles.items())
             if b.runs_model}
    return {mid: found[mid] for mid in (mids or found) if mid in found}


def main(argv=None):
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    work = tempfile.mkdtemp(prefix="edgeapp-bench-engines-")
    t0 = time.monotonic()
    try:
        args.image_path = os.path.join(work, "text-page.jpg")
        default_image(args.image_path)
        with open(args.image_path, "rb") as f:
            image = f.read()
        kinds = model_kinds(args.model_dir, args.mids)
        head = header(args, argv)
        rows, servers = [], {}
        for engine in args.engines:
            servers[engine] = one_engine(args, engine, kinds, image, work, rows)
        head["loadavg_end"], head["minutes"] = loadavg(), (time.monotonic() - t0) / 60.0
        text = render(head, rows, servers)
        print(text)
        if args.out:
            write_section(args.out, args.section, TITLE, text)
            log("written to %s (section %r)" % (args.out, args.section))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def header(args, argv):
    return {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "git": git_describe(),
            "version": edgeapp_version(), "machine": machine(),
            "versions": {e: engine_version(e) for e in args.engines},
            "command": " ".join(shlex.quote(x) for x in [display(sys.executable), "-m", "tools.bench", "engines"]
                                + list(sys.argv[2:] if argv is None else argv)),
            "settings": ", ".join("%s=%s" % kv for kv in sorted(args.settings.items()))}


def one_engine(args, engine, kinds, image, work, rows):
    """One edgeapp server on this engine with every bundle; one row per model into rows; the
    server's figures."""
    settings = dict(args.settings, EDGEAPP_ENGINE=engine)
    eargs = argparse.Namespace(**dict(vars(args), settings=settings))
    srv = start_server("edgeapp", args.model_dir, work, settings)
    try:
        srv.wait_ready(args.start_timeout)
        time.sleep(1.0)
        rss = tree_rss(srv.proc.pid)
        figures = {"startup_s": srv.startup_s, "http_mb": mb(rss.pop(srv.proc.pid, 0)),
                   "worker_mb": mb(sum(rss.values()))}
        log("%s: ready in %.1f s, worker RSS %.0f MB" % (engine, srv.startup_s, figures["worker_mb"]))
        for mid, single in kinds.items():
            body = write_bodies(work, image, mid)["binary"]
            rows.append(one_model(eargs, srv, engine, mid, single, body))
        return figures
    finally:
        srv.stop()


def one_model(args, srv, engine, mid, single, body):
    """One row: a paired round for a single-predictor model; else the filled raw loop and a
    saturated load."""
    first = raw_loop(args.model_dir, mid, args.image_path, args.seconds, args.min_requests, args.max_requests,
                     args.settings, filled=not single)
    seconds = min(max(args.seconds, args.min_requests * first["ms_per_run"] / 1000.0), hard_cap(args.seconds))
    if single:
        r = paired_rounds(args, srv, mid, body, seconds, args.wrk, 1)[0]
        rps, ratio, health, cpu = r["rps"], r["ratio"], pooled_health([r["health_ms"]]), r["cpu_ms_per_answer"]
        raw_ms = 1000.0 / r["raw_rps"]
    else:
        c = int(srv.get_json("/api/status")["data"].get("queue_capacity") or 4)
        load, _, _, latencies = saturated(args, srv, mid, body, c, seconds, None)
        rps, ratio, health = load["rps"], None, pooled_health([[1000.0 * x for x in latencies]])
        cpu = load["cpu_ms_per_answer"]
        raw_ms = first["ms_per_run"]
    status = next((m for m in srv.get_json("/api/models")["data"] if m.get("id") == mid), {})
    log("%s mid %d: raw %.2f ms, edgeapp %.1f req/s%s, health p99 %s ms" % (
        engine, mid, raw_ms, rps, " = %.2f×" % ratio if ratio else "", f1((health or {}).get("p99_ms"))))
    return {"engine": engine, "mid": mid, "name": first["name"], "input_shape": first["input_shape"],
            "raw_ms": raw_ms, "rps": rps, "ratio": ratio, "health_p99_ms": (health or {}).get("p99_ms"),
            "memory_mb": status.get("memory_mb"), "raw_rss_mb": first["rss_mb"], "single": single, "cpu": cpu}


def render(head, rows, servers):
    m = head["machine"]
    lines = [
        "Measured %s, edgeapp %s (git %s), in %.0f minutes." % (head["date"], head["version"], head["git"],
                                                                  head["minutes"]),
        "",
        "- Machine: %s, %s cores, %s GB RAM, Linux %s; Python %s; %s. Load average %s at the start, %s at the end "
        "(this host is shared: the paired round's raw loops on either side of the load are the reference)." % (
            m["cpu"], m["cores"], m["ram_gb"], m["kernel"], m["python"],
            ", ".join("%s %s" % kv for kv in sorted(head["versions"].items())), m["loadavg"], head["loadavg_end"]),
        "- Command: `%s`. Settings: %s." % (head["command"], head["settings"]),
        "- Per model and engine one round: the raw loop (the engine's Predictor.run back to back in a fresh "
        "process, the worker's threads and CPUs), edgeapp saturated (binary endpoint, as many clients as queue "
        "slots, a generated 640x480 text page; wrk for models under 50 ms a run, else our Python client), the raw "
        "loop again; ÷ raw is edgeapp's rate over the mean of the two raw loops. /api/health polled every 20 ms "
        "meanwhile. memory_mb: /api/models (as /api/status), the worker's RSS growth as it loaded and warmed the "
        "model; raw RSS: the raw loop's process with that model alone. CPU ms per answer: the CPU time of "
        "edgeapp's HTTP process and of its worker during the load, over its 200 answers.",
        "",
        "| mid | model | input | engine | raw ms/run | edgeapp req/s saturated | ÷ raw | /api/health p99 ms "
        "| CPU ms per answer: HTTP / worker | memory_mb | raw process RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(r) for r in sorted(rows, key=lambda r: (r["mid"], r["engine"]))]
    lines += ["", "Every model loaded at once (idle, after start-up): " + "; ".join(
        "%s: worker RSS %.0f MB, HTTP process %.0f MB, ready in %.1f s" % (
            ENGINE_NAMES.get(e), s["worker_mb"], s["http_mb"], s["startup_s"]) for e, s in servers.items()) + ".",
              "", PIPELINE_NOTE]
    return "\n".join(lines) + "\n"


PIPELINE_NOTE = (
    "– (pipeline): the request runs other models too (mid 3: the text detector, the direction classifier, then "
    "this recogniser per line; mid 9: the face detector first, and the recogniser only on a face, which the text "
    "page has none of), so no ratio to the raw loop of this one predictor, which times it on a tensor of its "
    "input shape filled with 0.5.")


def _row(r):
    return "| %d | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
        r["mid"], r["name"], "×".join(str(x) for x in r["input_shape"]), ENGINE_NAMES.get(r["engine"]),
        f1(r["raw_ms"], "%.2f"), f1(r["rps"]), f1(r["ratio"], "%.2f×") if r["single"] else "– (pipeline)",
        f1(r["health_p99_ms"]), f1(r["cpu"]["http"], "%.2f"), f1(r["cpu"]["worker"], "%.2f"),
        f1(r["memory_mb"], "%.0f"), f1(r["raw_rss_mb"], "%.0f"))
