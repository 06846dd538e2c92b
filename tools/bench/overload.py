"""Overload bursts: many clients, each POSTing a big JPEG to the slowest model, all at once a few
times (the excess must get its 503 quickly), then back to back; the server's memory must stay
within its idle RSS and the queue's budget throughout. Before them, a burst the board can finish
(a few more clients than the queue holds, at once): every one must get its 200, from the line."""
import json
import os
import subprocess
import time

from tools.bench.common import MODE_CWD, OVERLOAD_GAP, f1, log, mb, mode_command, percentile
from tools.bench.watch import tree_rss
from tools.launch import child_env

# burst_fit: a burst the board can finish; burst_shared: the clients on any CPU (overload_case)
OVERLOAD_LOADS = ("burst_fit", "burst", "burst_shared", "sustained")
OVERLOAD_FIELDS = ("ok", "busy", "errors", "busy_p50_ms", "busy_p99_ms", "busy_max_ms", "busy_within_50ms",
                   "arrived_p50_ms", "arrived_p99_ms", "arrived_max_ms", "arrived_within_50ms", "peak_mb",
                   "seconds")


def overload_body(work, min_bytes):
    """A JPEG of noise of at least min_bytes: it barely compresses, so it is big on the wire and
    in the decoder (the worst case for body and image memory)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(6)
    w = 1600
    while True:
        img = rng.integers(0, 256, (w * 3 // 4, w, 3), dtype=np.uint8)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if len(buf) >= min_bytes or w >= 8000:
            break
        w = int(w * 1.25)
    path = os.path.join(work, "overload.jpg")
    with open(path, "wb") as f:
        f.write(buf.tobytes())
    return path, "%dx%d" % (w, w * 3 // 4), len(buf)


def early_clients(url, body_file, content_type, clients, seconds, max_requests, timeout, per_process=8,
                  rounds=0, gap=OVERLOAD_GAP, cpus=""):
    """`clients` early-reading clients in processes of per_process threads each: one Python
    process with 64 threads measured its own GIL more than the server. rounds > 0: bursts (see
    clients.early_load), the first two seconds from now (the processes start first). cpus: the
    CPUs the client processes run on, as EDGEAPP_WORKER_CPUS ("1", "2-3"; default any)."""
    counts = [per_process] * (clients // per_process) + ([clients % per_process] if clients % per_process else [])
    start_at = time.time() + 2.0
    procs = []
    for n in counts:
        cmd = mode_command("load", "--early", "--url", url, "--body", body_file, "--content-type", content_type,
                           "--concurrency", n, "--seconds", seconds,
                           "--max-requests", max(1, max_requests // len(counts)), "--timeout", timeout)
        if rounds:
            cmd += ["--rounds", str(rounds), "--gap", str(gap), "--start-at", "%.3f" % start_at]
        if cpus:
            cmd += ["--cpus", cpus]
        procs.append(subprocess.Popen(cmd, env=child_env(), cwd=MODE_CWD, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, universal_newlines=True))
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=seconds + rounds * (gap + timeout) + timeout + 60)
        if p.returncode != 0:
            raise RuntimeError("an overload client failed:\n%s%s" % (out, err))
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return merge_early(outs)


def merge_early(outs):
    """The figures of all early clients' processes as one client's."""
    ok = sorted(x for o in outs for x in o["ok_ms_all"])
    busy = sorted(x for o in outs for x in o["busy_ms_all"])
    stamped = [o.get("busy_arrived_ms_all") for o in outs]
    arrived = sorted(x for xs in stamped for x in xs) if all(xs is not None for xs in stamped) else None
    elapsed = max(o["seconds"] for o in outs)
    errors = {}
    for o in outs:
        for k, v in o["error_kinds"].items():
            errors[k] = errors.get(k, 0) + v
    out = {"client": "early", "seconds": elapsed, "ok": len(ok), "busy": len(busy),
           "errors": sum(o["errors"] for o in outs), "error_kinds": errors,
           "rps": len(ok) / elapsed if elapsed > 0 else 0.0, "p50_ms": percentile(ok, 50),
           "processes": len(outs)}
    out.update(latency_tail(busy, "busy"))
    out.update(latency_tail(arrived, "arrived"))
    return out


def latency_tail(values, name):
    """name_p50_ms, name_p99_ms, name_max_ms and name_within_50ms (a count) of sorted latencies in
    ms; all None when values is None (not measured)."""
    keys = [name + k for k in ("_p50_ms", "_p99_ms", "_max_ms", "_within_50ms")]
    if values is None:
        return dict.fromkeys(keys)
    return dict(zip(keys, (percentile(values, 50), percentile(values, 99), values[-1] if values else None,
                           sum(1 for x in values if x <= 50.0))))


def overload_case(args, srv, mid, work, seconds, run_no):
    """args.overload_clients clients, each POSTing a >= args.overload_mb JPEG to the slowest model:
    first all at once, args.overload_rounds times (a burst: the excess must get its 503 quickly);
    then back to back for `seconds` (clients that retry at once). Memory must stay within idle +
    the queue's share of the Memory formula (slots + threads x largest body) throughout.
    With EDGEAPP_WORKER_CPUS the bursts' clients run on the worker's CPUs, off the HTTP process's:
    on a board they are on the LAN. Sharing its CPU here, a client read its 503 late whenever the
    HTTP process's work on the burst held that CPU (76-92% of 503s within 50 ms against 99.3-100%,
    two alternations of three burst sets). The bursts run once more with the clients on any CPU
    ("burst_shared"), so that figure is in the report too. The sustained load's clients are on
    any CPU: on the worker's, eight busy client processes would starve the worker."""
    body_file, size, nbytes = overload_body(work, int(args.overload_mb * 1024 * 1024))
    memory = srv.get_json("/api/status")["data"]["memory"]
    idle_mb = mb(sum(tree_rss(srv.proc.pid).values()))
    url = srv.url + "/api/model/service/binary?mid=%d" % mid
    r = {"mid": mid, "clients": args.overload_clients, "image": size, "body_mb": nbytes / 1048576.0,
         "idle_mb": idle_mb, "queue_budget_mb": memory["slots_mb"] + memory["bodies_mb"],
         "rounds": args.overload_rounds, "gap": OVERLOAD_GAP}
    cpus = (args.settings or {}).get("EDGEAPP_WORKER_CPUS") or ""
    r["client_cpus"] = cpus
    r["fit_clients"] = args.burst_clients
    # The next burst the board can finish comes after this one is finished: twice its work apart.
    service_s = (srv.get_json("/api/status")["data"].get("service_ms") or 1000.0) / 1000.0
    fit_gap = OVERLOAD_GAP + 2.0 * args.burst_clients * service_s
    for name in OVERLOAD_LOADS:
        if name.startswith("burst") and not args.overload_rounds or name == "burst_shared" and not cpus:
            continue
        if name == "burst_fit" and not args.burst_clients:
            continue
        t0 = time.monotonic()
        clients = args.burst_clients if name == "burst_fit" else args.overload_clients
        one = early_clients(url, body_file, "image/jpeg", clients, seconds, args.max_requests,
                            args.request_timeout, rounds=args.overload_rounds if name.startswith("burst") else 0,
                            gap=fit_gap if name == "burst_fit" else OVERLOAD_GAP,
                            cpus=cpus if name in ("burst", "burst_fit") else "")
        one["peak_mb"] = srv.sampler.peak(t0, time.monotonic())
        r[name] = {k: one[k] for k in OVERLOAD_FIELDS}
        log_load(run_no, r, name, one, clients)
        srv.wait_idle(args.request_timeout + 10)  # the admitted ones finish before the next load
    return r


def log_load(run_no, r, name, one, clients):
    log("run %d overload mid %d, %s, %d clients x %.1f MB: %d ok, %d 503 (p50 %s, p99 %s, max %s ms; %d within "
        "50 ms; at the clients' sockets p50 %s, p99 %s, max %s ms, %s within 50 ms), peak RSS %.0f MB (idle %.0f "
        "+ queue budget %.0f)" % (
            run_no, r["mid"], name, clients, r["body_mb"], one["ok"], one["busy"], f1(one["busy_p50_ms"]),
            f1(one["busy_p99_ms"]), f1(one["busy_max_ms"]), one["busy_within_50ms"], f1(one["arrived_p50_ms"]),
            f1(one["arrived_p99_ms"]), f1(one["arrived_max_ms"]), f1(one["arrived_within_50ms"], "%d"),
            one["peak_mb"], r["idle_mb"], r["queue_budget_mb"]))
