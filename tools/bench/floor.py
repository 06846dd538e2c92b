"""Concurrency 1's floor, beside the raw loop: whole requests through edgeapp's own code in one
process, with neither HTTP nor the worker (time_requests, run by the raw process after its first
loop), and a bodiless GET /api/health at c=1 with wrk over keep-alive (health_c1)."""
import statistics
import time

from tools.bench.common import percentile, timed_loop
from tools.bench.wrk import run_wrk


def time_requests(b, image_path, settings, seconds, min_runs, max_runs):
    """One request after another through the service's own code, with neither HTTP nor the worker
    process: Engine.decode and Engine.infer (preprocess, run, postprocess) on a LocalAccelerator,
    from the image file's bytes, as the binary endpoint gets them. Concurrency 1's floor.
    settings: engines.Settings, as the raw loop's."""
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.engine import Engine

    with open(image_path, "rb") as f:
        data = f.read()
    engine = Engine({b.id: b}, LocalAccelerator({b.id: b}, settings))
    phases = {}

    def request():
        timing = {}
        t0 = time.monotonic()
        image, size = engine.decode(data, 10 ** 9, [b.id])
        timing["decode"] = (time.monotonic() - t0) * 1000.0
        engine.infer(b.id, image, timing=timing, size=size)
        for k, v in timing.items():
            phases.setdefault(k, []).append(v)

    times, _ = timed_loop(request, seconds, min_runs, max_runs)
    return {"n": len(times), "p50_ms": 1000.0 * percentile(times, 50),
            "phases_ms": {k: statistics.median(v) for k, v in phases.items() if k != "queue"}}


def health_c1(args, srv, wrk):
    """The HTTP stack's floor at concurrency 1: a bodiless request over keep-alive (wrk's figures;
    None without wrk)."""
    if wrk is None:
        return None
    return run_wrk(wrk, srv.url + "/api/health", "-", "-", 1, min(2.0, args.seconds), args.max_requests,
                   args.request_timeout, method="GET")
