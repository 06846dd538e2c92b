"""Paired rounds, the ratios the targets are judged on: edgeapp saturated between two raw loops as
long, back to back; and for slow models the same rounds with a second raw process in edgeapp's
place (raw_against_raw), how far this host's noise alone moves that ratio."""
import time

from tools.bench.common import f1, log, ms
from tools.bench.raw import RawServer, raw_loop
from tools.bench.service import run_load
from tools.bench.watch import HealthPoller, tree_cpu

STEADY_MS = 50.0  # paired rounds of models slower than this per run: the rate from first to last answer


def paired_rounds(args, srv, mid, body, seconds, wrk, run_no):
    """args.pairs rounds of edgeapp saturated between two raw loops as long, back to back (raw,
    edgeapp, raw, edgeapp, ..., raw: a raw loop ends one round and starts the next). This host's
    speed drifts by tens of percent within minutes: a round's reference is the mean of the raw
    loops on either side of it, so a drift that is steady over the round cancels, and the median
    of the rounds is the figure for the targets.
    Saturated: as many clients as the accelerator queue has slots (every slot kept full, none
    refused), the binary endpoint; /api/health is polled meanwhile. Models slower than STEADY_MS
    a run: our Python client, and the rate between its first and last answer (py_load's
    steady_rps), as the raw loop's. Utilisation: the accelerator's busy seconds
    (accelerator_s_total) over the wall time, both read around the load."""
    status = srv.get_json("/api/status")["data"]
    c = int(status.get("queue_capacity") or 4)
    rounds = []

    def raw_rate():
        return raw_loop(args.model_dir, mid, args.image_path, seconds, args.min_requests, args.max_requests,
                        args.settings)

    after = raw_rate()
    for i in range(args.pairs):
        before = after
        steady = before["ms_per_run"] > STEADY_MS
        r, util, health, latencies = saturated(args, srv, mid, body, c, seconds, None if steady else wrk)
        cpu = r.pop("cpu_ms_per_answer")
        rps = r["steady_rps"] if steady and r.get("steady_rps") else r["rps"]
        after = raw_rate()
        raw_rps = (before["runs_per_s"] + after["runs_per_s"]) / 2.0
        rounds.append({"raw_rps": raw_rps, "raw_before_after": [before["runs_per_s"], after["runs_per_s"]],
                       "rps": rps, "window_rps": r["rps"], "ratio": rps / raw_rps,
                       "busy": r["busy"], "utilisation": util, "steady_busy": r.get("steady_busy") if steady else None,
                       "concurrency": c, "client": r["client"], "cpu_ms_per_answer": cpu,
                       "rate": "first to last answer" if steady else "whole window", "health": health,
                       "health_ms": [round(ms(x), 3) for x in sorted(latencies)]})
        log("run %d pair %d  mid %d: raw %.1f runs/s (%.1f before, %.1f after), edgeapp c=%d %.1f req/s = %.2f× "
            "(503: %d, accelerator busy %s%s, health p99 %s ms, CPU ms per answer: HTTP %s, worker %s)" % (
                run_no, i + 1, mid, raw_rps, before["runs_per_s"], after["runs_per_s"], c, rps, rps / raw_rps,
                r["busy"], "%.0f%%" % (100 * util) if util is not None else "?",
                ", %.1f%% first to last answer" % (100 * r["steady_busy"]) if steady and r.get("steady_busy") else "",
                f1(health["p99_ms"]), f1(cpu["http"], "%.2f"), f1(cpu["worker"], "%.2f")))
    return rounds


def saturated(args, srv, mid, body, c, seconds, wrk):
    """One round's load: c clients on the binary endpoint (wrk if given), /api/health polled
    meanwhile. (the load's figures with cpu_ms_per_answer, the CPU time the server's HTTP process
    and its worker spent per 200 answer; the accelerator's utilisation or None; the health
    figures; the health latencies in seconds)."""
    path, body_file, ctype = body
    srv.wait_idle(args.request_timeout + 10)
    st0, t_before = model_status(srv, mid), time.monotonic()
    cpu0 = tree_cpu(srv.proc.pid)
    poller = HealthPoller(srv.host, srv.port).start()
    try:
        r = run_load(args, wrk, srv.url + path, body_file, ctype, c, seconds)
    finally:
        health = poller.stop()
    cpu1 = tree_cpu(srv.proc.pid)
    st1, t_after = model_status(srv, mid), time.monotonic()
    r["cpu_ms_per_answer"] = cpu_per_answer(srv.proc.pid, cpu0, cpu1, r["ok"])
    busy = [m.get("accelerator_s_total") for m in (st0, st1) if m]
    util = (busy[1] - busy[0]) / (t_after - t_before) if len(busy) == 2 and None not in busy else None
    return r, util, health, poller.latencies


def cpu_per_answer(http_pid, before, after, answers):
    """{"http": ms, "worker": ms}: CPU time per answer of the HTTP process and of its children
    (the accelerator worker) between two tree_cpu readings (the /api/status readings and the
    poller's health checks included, a few ms in all). Where a server falls short of the raw
    loop, this says which side ran out of CPU."""
    def spent(pids):
        return sum(after[p] - before.get(p, 0.0) for p in pids)
    if not answers:
        return {"http": None, "worker": None}
    children = [p for p in after if p != http_pid]
    return {"http": 1000.0 * spent([http_pid]) / answers, "worker": 1000.0 * spent(children) / answers}


def raw_against_raw(args, mid, seconds, raw_ms, run_no):
    """The paired rounds again, with a second raw process in edgeapp's place, loaded once as the
    worker is (RawServer): args.pairs rounds as long as edgeapp's, each between two fresh raw
    loops. Its ratio should be 1.0; how far it strays is what this host alone does to the ratio."""
    runs = max(args.min_requests, int(round(seconds * 1000.0 / raw_ms)))
    other = RawServer(args.model_dir, mid, args.image_path, args.settings)

    def raw_rate():
        return raw_loop(args.model_dir, mid, args.image_path, seconds, args.min_requests, args.max_requests,
                        args.settings)["runs_per_s"]

    ratios = []
    try:
        after = raw_rate()
        for i in range(args.pairs):
            before = after
            rate = other.runs(runs)["runs_per_s"]
            after = raw_rate()
            ratios.append(rate / ((before + after) / 2.0))
            log("run %d raw against raw %d  mid %d: %.2f runs/s between %.2f and %.2f = %.2f×" % (
                run_no, i + 1, mid, rate, before, after, ratios[-1]))
    finally:
        other.close()
    return ratios


def model_status(srv, mid):
    """The model's record in /api/status, None when it is not there."""
    doc = srv.get_json("/api/status")
    models = (doc or {}).get("data", {}).get("models", [])
    return next((m for m in models if m.get("id") == mid), None)
