"""Service load: a server at each concurrency on each endpoint, keep-alive connections, with
/api/health polled during the highest concurrency (edgeapp: binary, base64 and multipart; the
naive server: binary only)."""
import time

from tools.bench.clients import run_py_client
from tools.bench.common import log
from tools.bench.servers import preflight
from tools.bench.watch import HealthPoller
from tools.bench.wrk import run_wrk

ENDPOINTS = ("binary", "base64", "multipart")
NAIVE_ENDPOINTS = ("binary",)  # the naive server has only the binary endpoint's shape


def run_load(args, wrk, url, body_file, ctype, c, seconds):
    """c clients POSTing body_file to url for seconds: wrk if given, else our Python client."""
    if wrk is not None:
        return run_wrk(wrk, url, body_file, ctype, c, seconds, args.max_requests, args.request_timeout)
    return run_py_client(url, body_file, ctype, c, seconds, args.max_requests, args.request_timeout)


def idle_health(args, srv):
    """The floor the saturated /api/health figures compare with: the same poller, no load."""
    poller = HealthPoller(srv.host, srv.port).start()
    time.sleep(min(3.0, args.seconds))
    return poller.stop()


def endpoint_cases(args, srv, bodies, seconds, wrk, run_no):
    """Every model, endpoint and concurrency on this server: the cases' records, in that order."""
    cases = []
    endpoints = [e for e in args.endpoints if srv.name == "edgeapp" or e in NAIVE_ENDPOINTS]
    for mid in args.mids:
        for endpoint in endpoints:
            path, body_file, ctype = bodies[mid][endpoint]
            srv.wait_idle(args.request_timeout + 10)
            preflight(srv, path, body_file, ctype)
            for c in args.concurrency:
                srv.wait_idle(args.request_timeout + 10)
                cases.append(one_case(args, srv, mid, endpoint, c, seconds[mid], path, body_file, ctype, wrk,
                                      run_no))
    return cases


def one_case(args, srv, mid, endpoint, c, seconds, path, body_file, ctype, wrk, run_no):
    use_wrk = endpoint == "binary" and args.client != "py"
    poller = HealthPoller(srv.host, srv.port).start() if c == max(args.concurrency) else None
    t0 = time.monotonic()
    try:
        r = run_load(args, wrk if use_wrk else None, srv.url + path, body_file, ctype, c, seconds)
    finally:
        health = poller.stop() if poller is not None else None
    r.update({"server": srv.name, "mid": mid, "endpoint": endpoint, "concurrency": c, "health": health,
              "peak_mb": srv.sampler.peak(t0, time.monotonic())})
    log("run %d %-7s mid %d %-9s c=%-2d %-3s %7.1f req/s  p50 %7.2f ms  p99 %7.2f ms  503 %d  err %d%s" % (
        run_no, srv.name, mid, endpoint, c, r["client"], r["rps"], r["p50_ms"] or 0, r["p99_ms"] or 0,
        r["busy"], r["errors"], "  health p99 %.1f ms" % health["p99_ms"] if health and health["p99_ms"] else ""))
    return r
