"""`make bench-fleet`: edgeapp instances behind HAProxy (the configuration of `edgeapp-fleet
haproxy`), on this machine.

Throughput with 1, 2 and 3 instances behind HAProxy, as a ratio to one instance served directly;
the instances share this machine's cores, so the ratios show the balancer's overhead, not scaling
(on real boards each instance has its own). Then the latency HAProxy adds per request at
concurrency 1: the same instance directly and through HAProxy, in alternating rounds of one run.
The load is tools.bench's Python client (keep-alive connections, a process of its own).

    python -m tools.bench.fleet [--seconds 8] [--rounds 2] [--mid 4]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bench.bodies import default_image, write_bodies
from tools.bench.clients import run_py_client
from tools.bench.common import log, median
from tools.bench.meta import git_describe, machine
from tools.fleet import haproxy
from tools.launch import MODEL_DIR, Balancer, Server, free_port

INSTANCES = 3
PER_INSTANCE = 4  # clients per instance: its queue depth, so that a board's own 503s stay out of the figures


def parser():
    p = argparse.ArgumentParser(prog="python -m tools.bench.fleet", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=8.0, help="seconds per throughput case and round")
    p.add_argument("--rounds", type=int, default=2, help="rounds of every case, alternating (default 2)")
    p.add_argument("--latency-seconds", type=float, default=4.0, help="seconds per concurrency-1 round")
    p.add_argument("--mid", type=int, default=4, help="the model (default 4: face, ~5 ms: the overhead shows)")
    p.add_argument("--model", default="face", help="its bundle folder in the model dir")
    p.add_argument("--per-instance", type=int, default=PER_INSTANCE,
                   help="clients per instance behind the balancer (default %(default)s, the queue depth)")
    return p


def start_balancer(boards, work, name):
    """HAProxy on a free port with the generated configuration for boards, every board up behind it."""
    port = free_port()
    cfg = Path(work) / ("haproxy-%s.cfg" % name)
    args = haproxy.parser().parse_args(["127.0.0.1:%d" % b.port for b in boards] + [
        "--bind", "127.0.0.1:%d" % port, "--log", "stderr", "--check-interval", "1"])
    cfg.write_text(haproxy.config_text(haproxy.board_list(args.boards), args))
    b = Balancer(cfg, Path(work) / ("haproxy-%s.log" % name), port).wait_ready()
    time.sleep(2.5)  # rise 2 at 1 s: every board up, not only the first
    return b


def load(url, body, args, concurrency, seconds):
    path, body_file, content_type = body
    return run_py_client(url + path, body_file, content_type, concurrency, seconds, 1000000, 60)


def throughput(boards, body, args, work):
    """{case: [(rps, 503s) per round]}: one instance directly, then 1, 2, 3 behind HAProxy."""
    rps = {}
    balancers = {n: start_balancer(boards[:n], work, "%d" % n) for n in range(1, INSTANCES + 1)}
    try:
        for r in range(args.rounds):
            for case, url in [("direct", boards[0].url)] + [(n, b.url) for n, b in sorted(balancers.items())]:
                clients = args.per_instance * (1 if case == "direct" else case)
                out = load(url, body, args, clients, args.seconds)
                rps.setdefault(case, []).append((out["rps"], out["busy"]))
                log("round %d %-6s %6.1f req/s  p50 %.1f ms  503s %d  errors %d" % (
                    r + 1, case, out["rps"], out["p50_ms"] or 0, out["busy"], out["errors"]))
        return rps, balancers[1]
    finally:
        for n in (2, 3):
            balancers[n].stop()


def added_latency(board, balancer, body, args):
    """{direct|haproxy: [p50 ms per round], mean...}: concurrency 1, alternating rounds."""
    out = {}
    for r in range(args.rounds + 1):
        for case, url in (("direct", board.url), ("haproxy", balancer.url)):
            res = load(url, body, args, 1, args.latency_seconds)
            out.setdefault(case, []).append(res["p50_ms"])
            log("c=1 round %d %-7s p50 %.2f ms p99 %.2f ms" % (r + 1, case, res["p50_ms"], res["p99_ms"]))
    return out


def main(argv=None):
    args = parser().parse_args(argv)
    if shutil.which("haproxy") is None:
        log("no haproxy: make test-tools installs it (Debian's package)")
        return 2
    work = tempfile.mkdtemp(prefix="edgeapp-bench-fleet-")
    models = Path(work) / "models"
    models.mkdir()
    os.symlink(os.path.join(str(MODEL_DIR), args.model), str(models / args.model))
    image = Path(work) / "page.jpg"
    default_image(str(image))
    body = write_bodies(work, image.read_bytes(), args.mid)["binary"]
    boards = [Server(work, model_dir=models) for _ in range(INSTANCES)]
    try:
        for b in boards:
            b.wait_ready()
        rps, one = throughput(boards, body, args, work)
        try:
            lat = added_latency(boards[0], one, body, args)
        finally:
            one.stop()
    finally:
        for b in boards:
            b.stop()
    report(args, rps, lat)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def report(args, rps, lat):
    base = median([r for r, _ in rps["direct"]])
    m = machine()
    print("edgeapp behind HAProxy %s on %s (%s cores), commit %s, load average %s before" % (
        _haproxy_version(), m["cpu"], m["cores"], git_describe(), m["loadavg"]))
    print("mid %d (%s), binary upload of a 640x480 JPEG, %d clients per instance, %d rounds of %.0f s, median of "
          "rounds:" % (args.mid, args.model, args.per_instance, args.rounds, args.seconds))
    print("| instances | through | clients | req/s (200) | ratio to one direct | 503s |")
    print("|---|---|---|---|---|---|")
    print("| 1 | direct | %d | %.1f | 1.00 | %d |" % (args.per_instance, base, sum(b for _, b in rps["direct"])))
    for n in range(1, INSTANCES + 1):
        r = median([x for x, _ in rps[n]])
        print("| %d | HAProxy | %d | %.1f | %.2f | %d |" % (n, n * args.per_instance, r, r / base,
                                                          sum(b for _, b in rps[n])))
    d, h = median(lat["direct"]), median(lat["haproxy"])
    print("concurrency 1, p50 per request (median of %d rounds): direct %.2f ms, through HAProxy %.2f ms: "
          "+%.2f ms added by the balancer" % (len(lat["direct"]), d, h, h - d))
    print(json.dumps({"rps": {str(k): v for k, v in rps.items()}, "latency_p50_ms": lat}))


def _haproxy_version():
    out = subprocess.run(["haproxy", "-v"], stdout=subprocess.PIPE, universal_newlines=True, timeout=10).stdout
    return out.split()[2] if len(out.split()) > 2 else "?"


if __name__ == "__main__":
    sys.exit(main())
