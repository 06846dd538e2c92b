"""Soak test: a real edgeapp server under ~80% of its capacity for a long time.

Starts `python -m edgeapp serve` on a free 127.0.0.1 port with the built models, measures the
capacity of a mix of requests (every endpoint, good and bad inputs), then sends that mix at
--load (0.8) of it for --seconds. After --warmup it samples, every --sample seconds, the RSS,
file descriptors and threads of the server and of its accelerator worker, and at the end prints
the figures and fails (exit 1) on:

- RSS drift of server + worker over --max-drift (2%) between the end of the warm-up and the end
  (the median of three samples at each end, so one sample's noise does not decide);
- more file descriptors or threads at the end than after the warm-up;
- any answer other than the one expected for its kind (503 "busy" is allowed for inference),
  any connection error, hang or non-JSON answer, any worker restart, a traceback in the log.

Then --overload (60) seconds at 10 times the capacity of the slowest model: every answer must be
a success or a 503, and an accepted request must finish within queue depth x service time + margin.

    make soak                        # 30 minutes
    make soak SOAK_SECONDS=600       # or: python -m tools.soak --seconds 600 (from the repository's root)
"""
import argparse
import base64
import os
import queue
import random
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
import zlib

import cv2
import numpy as np
import requests

from tools.launch import MODEL_DIR, Server

READY_TIMEOUT = 180.0  # seconds for the server to load and warm every model


# ---- the server -----------------------------------------------------------------------------

def proc_figures(pid):
    """(rss MB, fds, threads) of a process."""
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid)), threads


# ---- the mix --------------------------------------------------------------------------------

def page_image(w=800, h=480):
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(img, "HELLO WORLD", (60, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, "EdgeBoard 2026", (60, 300), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3, cv2.LINE_AA)
    return img


def png_bomb(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF) + b"\0" * 64)


def build_mix(ready):
    """[(name, weight, expected status, method, path, kwargs)] for the models that are ready."""
    jpeg = cv2.imencode(".jpg", page_image())[1].tobytes()
    png = cv2.imencode(".png", page_image(400, 240))[1].tobytes()
    b64 = base64.b64encode(jpeg).decode("ascii")
    svc = "/api/model/service/"
    fast = 2 if 2 in ready else min(ready)
    mix = [
        ("binary-fast", 4, 200, "POST", svc + "binary?mid=%d" % fast, {"data": jpeg}),
        ("base64-fast", 2, 200, "POST", svc + "base64?mid=%d" % fast, {"json": {"image": b64}}),
        ("health", 2, 200, "GET", "/api/health", {}),
        ("status", 1, 200, "GET", "/api/status", {}),
        ("models", 1, 200, "GET", "/api/models", {}),
        ("bad-json", 1, 400, "POST", svc + "base64?mid=%d" % fast, {"data": b'{"image": "abc'}),
        ("bad-base64", 1, 400, "POST", svc + "base64?mid=%d" % fast, {"json": {"image": "@@@@not base64"}}),
        ("truncated", 1, 400, "POST", svc + "binary?mid=%d" % fast, {"data": jpeg[:len(jpeg) // 2]}),
        ("bomb", 1, 413, "POST", svc + "binary?mid=%d" % fast, {"data": png_bomb(50000, 50000)}),
        ("unknown-mid", 1, 404, "POST", svc + "binary?mid=99", {"data": png}),
        ("unknown-path", 1, 404, "GET", "/api/nope", {}),
        ("wrong-method", 1, 405, "GET", svc + "binary", {}),
    ]
    if 1 in ready:
        mix.append(("binary-det", 2, 200, "POST", svc + "binary?mid=1", {"data": jpeg}))
        mix.append(("multipart", 1, 200, "POST", svc + "multipart?show=1",
                    {"files": {"file": ("page.png", png)}, "data": {"mids": "[1,%d]" % fast}}))
    if 3 in ready:
        mix.append(("binary-ocr", 1, 200, "POST", svc + "binary?mid=3", {"data": png}))
    return mix


_NEVER_BUSY = ("health", "status", "models", "unknown-path", "wrong-method")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = {}       # (name, status or error) -> n
        self.latency = {}     # name -> [seconds]
        self.unexpected = []  # (name, what)

    def add(self, name, outcome, seconds, expected):
        with self.lock:
            self.count[(name, outcome)] = self.count.get((name, outcome), 0) + 1
            self.latency.setdefault(name, []).append(seconds)
            # 503 "busy" is a fair answer to any inference request at 80% load (bursts happen).
            if outcome != expected and not (outcome == 503 and name not in _NEVER_BUSY):
                if len(self.unexpected) < 50:
                    self.unexpected.append((name, outcome))


def call(session, url, item, stats):
    name, _, expected, method, path, kwargs = item
    t0 = time.monotonic()
    try:
        r = session.request(method, url + path, timeout=120, **kwargs)
        body = r.json()
        outcome = r.status_code
        if (outcome == 200) != (body.get("code") == 0):
            outcome = "envelope %s/%s" % (r.status_code, body.get("code"))
    except (requests.RequestException, ValueError) as e:
        outcome = "error %s" % type(e).__name__
    stats.add(name, outcome, time.monotonic() - t0, expected)


def calibrate(url, mix, seconds, clients=4):
    """Capacity, in requests of the mix per second: what `clients` back-to-back clients get
    answered (503s not counted) in `seconds`. Under load, not one at a time: decoding and
    preprocessing share the CPU with the accelerator."""
    session = requests.Session()
    for item in mix:  # once, uncounted: first-use costs
        call(session, url, item, Stats())
    stats, stop_at = Stats(), time.monotonic() + seconds
    rng = random.Random(7)
    names = [item for item in mix for _ in range(int(item[1] * 2))]

    def client():
        s = requests.Session()
        while time.monotonic() < stop_at:
            call(s, url, rng.choice(names), stats)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 180)
    answered = sum(n for (_, outcome), n in stats.count.items() if outcome != 503)
    return answered / (time.monotonic() - t0)


# ---- the run --------------------------------------------------------------------------------

def run(args):
    work = tempfile.mkdtemp(prefix="edgeapp-soak-")
    server = Server(work, os.path.abspath(args.model_dir or MODEL_DIR))
    code = 1
    try:
        try:
            server.wait_ready(READY_TIMEOUT)
        except RuntimeError as e:
            raise SystemExit("soak: %s" % e)
        code = soak(args, server)
        return code
    finally:
        server.stop(timeout=30)
        if code == 0:
            shutil.rmtree(work, ignore_errors=True)  # the server log is kept only when something failed


def soak(args, server):
    url, log_path = server.url, str(server.log_path)
    models = requests.get(url + "/api/models", timeout=10).json()["data"]
    ready = sorted(m["id"] for m in models if m["ready"])
    mix = build_mix(ready)
    print("soak: %s, models %s, log %s" % (url, ready, log_path))
    capacity = calibrate(url, mix, args.calibrate)
    rate = args.load * capacity
    warmup = args.warmup if args.warmup is not None else max(30.0, min(300.0, 0.1 * args.seconds))
    print("soak: capacity %.2f requests/s of the mix (saturated for %.0f s); sending %.2f/s (%.0f%%) for %.0f s, "
          "warm-up %.0f s" % (capacity, args.calibrate, rate, args.load * 100, args.seconds, warmup))
    sys.stdout.flush()

    stats = Stats()
    work, clients = start_clients(url, stats, args.clients)
    restarts0 = requests.get(url + "/api/status", timeout=10).json()["data"]["restarts"]
    t_start = time.monotonic()
    samples, stop = start_sampler(url, server.proc.pid, t_start, warmup, args.sample)
    sent, late = send_mix(work, mix, rate, args.seconds, t_start, samples)
    stop.set()
    hung = stop_clients(work, clients)
    elapsed = time.monotonic() - t_start
    status = requests.get(url + "/api/status", timeout=10).json()["data"]
    code = report(args, stats, samples, elapsed, sent, late, hung, status["restarts"] - restarts0, log_path)
    if args.overload > 0:
        code = overload(url, args.overload, 1 if 1 in ready else ready[0]) or code
    return code


def start_clients(url, stats, n):
    """n client threads, each with its session, that send the mix items put on the returned
    queue (a None ends one): (the queue, the threads)."""
    work = queue.Queue(maxsize=64)

    def client():
        session = requests.Session()
        while True:
            item = work.get()
            if item is None:
                return
            call(session, url, item, stats)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return work, threads


def stop_clients(work, threads):
    """End the clients once the queue is done; how many still hang after 180 s."""
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join(180)
    return sum(t.is_alive() for t in threads)


def start_sampler(url, pid, t_start, warmup, every):
    """A thread that appends (t, server (rss, fds, threads), worker (rss, fds, threads)) to the
    returned list every `every` seconds after the warm-up, until the returned event is set."""
    samples, stop = [], threading.Event()

    def sampler():
        next_at = time.monotonic() + warmup
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                wpid = requests.get(url + "/api/status", timeout=10).json()["data"]["worker_pid"]
                samples.append((time.monotonic() - t_start, proc_figures(pid), proc_figures(wpid)))
            except (OSError, requests.RequestException, ValueError) as e:
                print("soak: sample failed: %s" % e)
            next_at += every

    threading.Thread(target=sampler, daemon=True).start()
    return samples, stop


def send_mix(work, mix, rate, seconds, t_start, samples):
    """Put a random item of the mix (by weight) on the clients' queue rate times a second for
    seconds from t_start, with a progress line every minute: (sent, late)."""
    rng = random.Random(42)
    names = [item for item in mix for _ in range(int(item[1] * 2))]
    late = sent = 0
    last_report = t_start
    while True:
        now = time.monotonic()
        if now - t_start >= seconds:
            return sent, late
        due = t_start + sent / rate
        if due > now:
            time.sleep(min(due - now, 0.5))
            continue
        try:
            work.put(rng.choice(names), timeout=5)
            sent += 1
        except queue.Full:
            late += 1  # the clients are all busy: the server is slower than calibrated
        if now - last_report >= 60:
            last_report = now
            print("soak: %4.0f s: %d sent, %s" % (now - t_start, sent, _short_figures(samples)))
            sys.stdout.flush()


def overload(url, seconds, mid):
    """10 x the capacity of model mid, open loop, for seconds. Returns 0 or 1 (failed)."""
    path = "/api/model/service/binary?mid=%d" % mid
    body = cv2.imencode(".jpg", page_image())[1].tobytes()
    session = requests.Session()
    t0 = time.monotonic()
    for _ in range(3):
        session.post(url + path, data=body, timeout=120)
    per_request = (time.monotonic() - t0) / 3
    rate = 10.0 / per_request
    depth = requests.get(url + "/api/status", timeout=10).json()["data"]["queue_capacity"] or 1
    print("\nsoak: overload: %.1f requests/s (10 x %.2f/s) on mid %d for %.0f s" % (rate, 1 / per_request, mid, seconds))
    sys.stdout.flush()
    results, late, hung = open_loop(url + path, body, rate, int(rate * seconds))
    ok = [r for r in results if r[:2] == (200, 0)]
    busy = [r for r in results if r[:2] == (503, 1005)]
    other = [r for r in results if r[:2] not in ((200, 0), (503, 1005))]
    service = max([r[2] for r in ok if r[2] is not None] or [per_request])
    bound = depth * service * 1.5 + 3.0
    worst = max([r[3] for r in ok] or [0.0])
    print("soak: overload: %d sent (%d late), %d ok, %d busy, %d other; accepted latency max %.2f s "
          "(bound %d x %.2f s x 1.5 + 3 s = %.2f s), busy latency max %.3f s"
          % (len(results), late, len(ok), len(busy), len(other), worst, depth, service, bound,
             max([r[3] for r in busy] or [0.0])))
    failures = []
    if other:
        failures.append("answers other than success or busy: %s" % other[:10])
    if hung:
        failures.append("%d senders still waiting" % hung)
    if not ok or worst >= bound:
        failures.append("accepted latency %.2f s over the bound %.2f s" % (worst, bound))
    if requests.get(url + "/api/health", timeout=10).status_code != 200:
        failures.append("not healthy after the overload")
    for f in failures:
        print("soak: FAIL: %s" % f)
    print("soak: overload %s" % ("FAILED" if failures else "OK"))
    return 1 if failures else 0


def open_loop(url, body, rate, n):
    """n POSTs of body to url, rate a second whatever the answers (64 senders): ([(status, code,
    inference seconds, latency)], late, senders still waiting at the end)."""
    results, lock = [], threading.Lock()
    work = queue.Queue()
    late = 0

    def sender():
        s = requests.Session()
        while True:
            if work.get() is None:
                return
            t1 = time.monotonic()
            try:
                r = s.post(url, data=body, timeout=120)
                out = (r.status_code, r.json()["code"], _server_timing(r, "inference"))
            except (requests.RequestException, ValueError) as e:
                out = ("error %s" % type(e).__name__, None, None)
            with lock:
                results.append(out + (time.monotonic() - t1,))

    senders = [threading.Thread(target=sender, daemon=True) for _ in range(64)]
    for t in senders:
        t.start()
    start = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        if work.qsize() > 64:
            late += 1  # every sender is waiting on an answer: a slow server, or a hang
        work.put(1)
    for _ in senders:
        work.put(None)
    for t in senders:
        t.join(180)
    return results, late, sum(t.is_alive() for t in senders)


def _server_timing(resp, name):
    for part in resp.headers.get("Server-Timing", "").split(","):
        key, _, dur = part.strip().partition(";dur=")
        if key == name:
            return float(dur) / 1000.0
    return None


def _short_figures(samples):
    if not samples:
        return "warming up"
    _, s, w = samples[-1]
    return "server %.0f MB %d fds %d threads, worker %.0f MB %d fds %d threads" % (s + w)


def _median(values):
    return statistics.median(values) if values else float("nan")


def report(args, stats, samples, elapsed, sent, late, hung, restarts, log_path):
    print("\nsoak: %.0f s, %d requests (%.1f/s), %d late, %d clients hung, %d worker restarts"
          % (elapsed, sent, sent / elapsed, late, hung, restarts))
    print("%-14s %7s  %-28s %8s %8s %8s" % ("request", "count", "answers", "p50 ms", "p95 ms", "max ms"))
    for name in sorted(stats.latency):
        lat = sorted(stats.latency[name])
        answers = ", ".join("%s: %d" % (o, n) for (k, o), n in sorted(stats.count.items(), key=str) if k == name)
        print("%-14s %7d  %-28s %8.0f %8.0f %8.0f" % (name, len(lat), answers, lat[len(lat) // 2] * 1000,
                                                      lat[int(len(lat) * 0.95)] * 1000, lat[-1] * 1000))
    failures = growth_failures(args, samples)
    if stats.unexpected:
        failures.append("unexpected answers: %s" % stats.unexpected[:10])
    if hung:
        failures.append("%d clients still waiting at the end" % hung)
    if restarts:
        failures.append("the worker restarted %d times" % restarts)
    with open(log_path, errors="replace") as f:
        if "Traceback" in f.read():
            failures.append("a traceback in the server log %s" % log_path)
    print()
    if failures:
        for f in failures:
            print("soak: FAIL: %s" % f)
        return 1
    print("soak: OK")
    return 0


def growth_failures(args, samples):
    """Print the figures after the warm-up against those at the end; the failures among them
    (RSS drift, file descriptors or threads that grew, too few samples to tell)."""
    if len(samples) < 6:
        return ["too few samples after the warm-up (%d): run longer" % len(samples)]
    failures = []
    first, last = samples[:3], samples[-3:]

    def med(group, who, what):
        return _median([s[1 + who][what] for s in group])

    rss0 = med(first, 0, 0) + med(first, 1, 0)
    rss1 = med(last, 0, 0) + med(last, 1, 0)
    drift = (rss1 - rss0) / rss0 * 100
    print("\nafter warm-up (t=%.0f s) -> end (t=%.0f s), %d samples:" % (samples[0][0], samples[-1][0], len(samples)))
    for who, label in ((0, "server"), (1, "worker")):
        rss = [s[1 + who][0] for s in samples]
        fds = [s[1 + who][1] for s in samples]
        thr = [s[1 + who][2] for s in samples]
        print("  %-6s RSS %.1f -> %.1f MB (min %.1f, max %.1f); fds %d -> %d (max %d); threads %d -> %d (max %d)"
              % (label, med(first, who, 0), med(last, who, 0), min(rss), max(rss), med(first, who, 1),
                 med(last, who, 1), max(fds), med(first, who, 2), med(last, who, 2), max(thr)))
        # More at the end than at any sample of the warmed start is growth (open connections
        # make the server's count move by a few; the worker's must not move at all).
        if med(last, who, 1) > max(s[1 + who][1] for s in first):
            failures.append("%s file descriptors grew: %s" % (label, [s[1 + who][1] for s in samples]))
        if med(last, who, 2) > max(s[1 + who][2] for s in first):
            failures.append("%s threads grew: %s" % (label, [s[1 + who][2] for s in samples]))
    print("  total  RSS %.1f -> %.1f MB: drift %+.2f%% (limit %.1f%%)" % (rss0, rss1, drift, args.max_drift))
    if drift >= args.max_drift:
        failures.append("RSS drift %.2f%% >= %.1f%%" % (drift, args.max_drift))
    return failures


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS") or 1800),
                   help="how long to send load (default: $SOAK_SECONDS or 1800)")
    p.add_argument("--warmup", type=float, help="seconds before the first sample (default: 10%%, 30-300 s)")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    p.add_argument("--load", type=float, default=0.8, help="share of the measured capacity to send (default 0.8)")
    p.add_argument("--clients", type=int, default=12, help="concurrent client connections (default 12)")
    p.add_argument("--calibrate", type=float, default=30.0, help="seconds of saturated load to measure capacity (30)")
    p.add_argument("--max-drift", type=float, default=2.0, help="RSS drift limit, percent (default 2)")
    p.add_argument("--overload", type=float, default=60.0, help="seconds at 10x capacity at the end (default 60; 0: none)")
    p.add_argument("--model-dir", help="built model bundles (default: $EDGEAPP_MODEL_DIR or build/models/x86)")
    args = p.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
