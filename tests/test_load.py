"""Overload and slow clients against a real server (real Paddle Lite), each bounded in time.

Timings on a shared 2-core machine vary a lot, so the bounds are generous and the measured
figures are printed (pytest -s shows them).
"""
import argparse
import os
import shutil
import threading
import time

import numpy as np
import pytest
import requests

from rawhttp import connect, read_reply, request_bytes
from support import MODEL_DIR, REPO
from textimages import encode, page

from edgeapp.config import FIELDS
from edgeapp.slots import LINE_SLACK

BUSY, REQUEST_TIMEOUT = 1005, 1012
QUEUE_WAIT = FIELDS["queue_wait_ms"][1] / 1000.0  # the default: what a board does


@pytest.fixture(scope="module")
def det_model_dir(tmp_path_factory):
    """Only the text detector (mid 1): the slow model, ~0.5-1 s a job, so the queue fills."""
    d = tmp_path_factory.mktemp("det-model")
    shutil.copytree(os.path.join(MODEL_DIR, "ppocr-det"), str(d / "ppocr-det"))
    return d


@pytest.fixture(scope="module")
def photo():
    return encode(page([("HELLO WORLD", (60, 120)), ("EdgeBoard", (60, 300))])[0], ".jpg")


def _timing(resp, name):
    for part in resp.headers.get("Server-Timing", "").split(","):
        key, _, dur = part.strip().partition(";dur=")
        if key == name:
            return float(dur) / 1000.0
    return None


def _proc_figures(pid):
    with open("/proc/%d/status" % pid) as f:
        threads = int(next(line for line in f if line.startswith("Threads:")).split()[1])
    return {"threads": threads, "fds": len(os.listdir("/proc/%d/fd" % pid))}


def _health_ok(url):
    return requests.get(url + "/api/health", timeout=5).status_code == 200


# ---- overload --------------------------------------------------------------------------------

def _post(session, url, path, body):
    t0 = time.monotonic()
    try:
        r = session.post(url + path, data=body, timeout=60)
        out = (r.status_code, r.json()["code"])
    except (requests.RequestException, ValueError) as e:  # a hang, a reset, not JSON: must not happen
        r, out = None, ("error", repr(e))
    return out, time.monotonic() - t0, r


def _open_loop(url, body, rate, seconds, path="/api/model/service/binary?mid=1"):
    """rate requests per second for seconds, whatever the answers (as independent clients send
    them); each on its own thread. Returns [(outcome, latency, response)]."""
    results, lock = [], threading.Lock()
    local = threading.local()

    def one():
        if not hasattr(local, "session"):
            local.session = requests.Session()
        res = _post(local.session, url, path, body)
        with lock:
            results.append(res)

    threads, t0 = [], time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        t = threading.Thread(target=one, daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(max(1.0, t0 + seconds + 90 - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a client is still waiting: a request hung"
    return results


def _closed_loop(url, body, clients, seconds, path):
    """clients threads, each posting body back to back for seconds."""
    results, lock = [], threading.Lock()
    stop_at = time.monotonic() + seconds

    def client():
        session = requests.Session()
        while time.monotonic() < stop_at:
            res = _post(session, url, path, body)
            with lock:
                results.append(res)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 90)
    assert not any(t.is_alive() for t in threads), "a client is still waiting: a request hung"
    return results


def _count(results):
    outcomes = {}
    for out, _, _ in results:
        outcomes[out] = outcomes.get(out, 0) + 1
    return outcomes


def test_ten_times_the_capacity(start_server, det_model_dir, photo):
    queue_depth = 4
    server = start_server(model_dir=det_model_dir, queue_depth=queue_depth, threads=8)
    url, path = server.url, "/api/model/service/binary?mid=1"
    session = requests.Session()
    # Capacity: one accelerator, so 1 / (time per request) requests a second, measured here and now.
    t0 = time.monotonic()
    for _ in range(3):
        assert _post(session, url, path, photo)[0] == (200, 0)
    per_request = (time.monotonic() - t0) / 3
    rate = 10.0 / per_request
    seconds = float(os.environ.get("EDGEAPP_OVERLOAD_SECONDS", "12"))
    results = _open_loop(url, photo, rate, seconds, path)

    outcomes = _count(results)
    assert set(outcomes) <= {(200, 0), (503, BUSY)}, outcomes  # success or busy, nothing else
    ok = [(lat, r) for out, lat, r in results if out == (200, 0)]
    busy = [(lat, r) for out, lat, r in results if out == (503, BUSY)]
    assert ok and busy, outcomes
    assert all(int(r.headers["Retry-After"]) >= 1 for _, r in busy)

    # An accepted request waits at most its time in line (the queue wait, with the line's slack)
    # and then the queue ahead of it: queue_depth jobs.
    service = max(_timing(r, "inference") for _, r in ok)
    bound = QUEUE_WAIT * LINE_SLACK + queue_depth * service * 1.5 + 3.0
    worst = max(lat for lat, _ in ok)
    print("\noverload %.0f s at %.1f req/s (10 x %.2f req/s): %d ok, %d busy; accepted latency max %.2f s, "
          "median %.2f s; bound %.2f s (line %.0f s + queue %d x service max %.2f s x 1.5 + 3 s); busy latency "
          "max %.3f s"
          % (seconds, rate, 1 / per_request, len(ok), len(busy), worst, sorted(lat for lat, _ in ok)[len(ok) // 2],
             bound, QUEUE_WAIT * LINE_SLACK, queue_depth, service, max(lat for lat, _ in busy)))
    assert worst < bound, (worst, bound)

    status = requests.get(url + "/api/status", timeout=5).json()["data"]
    assert status["queue_depth"] == 0 and status["requests_in_flight"] == 0 and status["restarts"] == 0
    assert "Traceback" not in server.log()


def test_beyond_the_http_queue_503_and_never_a_reset(start_server, fast_model_dir):
    # Two threads and an accepted queue of 8: most of 48 clients are refused by the HTTP layer
    # itself, before a thread reads their request. They still get the JSON 503, never a reset.
    server = start_server(model_dir=fast_model_dir, threads=2)
    body = encode(page([("HI", (20, 60))], size=(600, 900))[0], ".png")  # ~40 KB: the body outlives the answer
    results = _closed_loop(server.url, body, clients=48, seconds=6, path="/api/model/service/binary?mid=2")
    outcomes = _count(results)
    print("\nbeyond the HTTP queue: %s" % outcomes)
    assert set(outcomes) <= {(200, 0), (503, BUSY)}, outcomes
    assert outcomes.get((200, 0)) and outcomes.get((503, BUSY))
    assert _health_ok(server.url)


# ---- slow and idle clients -------------------------------------------------------------------

def test_slow_and_idle_clients_do_not_starve_others(start_server, fast_model_dir, photo):
    server = start_server(model_dir=fast_model_dir)
    port, url = server.port, server.url
    requests.get(url + "/api/health", timeout=5)
    before = _proc_figures(server.proc.pid)

    idle = [connect(port, 30) for _ in range(100)]            # connect, say nothing
    kept = []                                                  # one request, then idle keep-alive
    for _ in range(50):
        s = connect(port, 30)
        s.sendall(request_bytes("GET", "/api/health"))
        assert read_reply(s).status == 200
        kept.append(s)
    heads = [connect(port, 30) for _ in range(40)]             # headers, a byte at a time
    for s in heads:
        s.sendall(b"POST /api/model/service/binary?mid=2 HTTP/1.1\r\nHost: x\r\n")
    bodies = [connect(port, 30) for _ in range(24)]            # a body, a few bytes at a time
    for s in bodies:
        s.sendall(request_bytes("POST", "/api/model/service/binary?mid=2", [("Content-Length", 200000)], b"\xff\xd8"))

    health, inference = [], []
    end = time.monotonic() + 13
    while time.monotonic() < end:
        for s in heads:
            _send_quietly(s, b"X")
        for s in bodies:
            _send_quietly(s, b"\x00" * 8)
        t0 = time.monotonic()
        r = requests.get(url + "/api/health", timeout=10)
        health.append((r.status_code, time.monotonic() - t0))
        if len(health) % 4 == 0:
            t0 = time.monotonic()
            r = requests.post(url + "/api/model/service/binary?mid=2", data=photo, timeout=30)
            inference.append((r.status_code, time.monotonic() - t0))
        time.sleep(0.25)
    during = _proc_figures(server.proc.pid)

    # The dribblers, past 10 s: each got a JSON 408, not silence and not a thread.
    answers = {}
    for s in heads + bodies:
        try:
            reply = read_reply(s)
            key = (reply.status, reply.json()["code"])
        except (OSError, ValueError) as e:
            key = repr(e)
        answers[key] = answers.get(key, 0) + 1
    for s in idle + kept + heads + bodies:
        s.close()

    h = [lat for _, lat in health]
    i = [lat for _, lat in inference]
    print("\nslow clients: health %d answers, max %.3f s, median %.3f s; inference %d answers, max %.3f s; "
          "dribblers: %s; server threads %d -> %d, fds %d -> %d"
          % (len(h), max(h), sorted(h)[len(h) // 2], len(i), max(i), answers,
             before["threads"], during["threads"], before["fds"], during["fds"]))
    assert all(code == 200 for code, _ in health + inference)
    assert max(h) < 2.0 and max(i) < 10.0
    assert answers == {(408, REQUEST_TIMEOUT): len(heads) + len(bodies)}, answers
    assert during["threads"] <= before["threads"] + 2  # the pool does not grow with the clients

    # Afterwards: the connections are gone, so are their file descriptors.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _proc_figures(server.proc.pid)["fds"] > before["fds"] + 4:
        time.sleep(0.5)
    after = _proc_figures(server.proc.pid)
    assert after["fds"] <= before["fds"] + 4 and after["threads"] <= before["threads"] + 2, (before, after)
    assert _health_ok(url)


def _send_quietly(sock, data):
    try:
        sock.send(data)
    except OSError:
        pass  # the server answered and closed: read below


def test_a_silent_connection_costs_no_thread(start_server, fast_model_dir):
    # More silent connections than threads + queue, and more than the 256 the server keeps: a new
    # client is still served at once, and the longest idle connections are closed.
    server = start_server(model_dir=fast_model_dir, threads=2)
    before = _proc_figures(server.proc.pid)
    silent = [connect(server.port, 30) for _ in range(320)]
    try:
        time.sleep(1.5)  # the selector thread closes the excess twice a second
        t0 = time.monotonic()
        assert _health_ok(server.url)
        r = requests.post(server.url + "/api/model/service/binary?mid=2",
                          data=encode(page([("HI", (20, 60))])[0], ".jpg"), timeout=10)
        assert r.status_code == 200 and time.monotonic() - t0 < 3
        during = _proc_figures(server.proc.pid)
        assert during["fds"] <= before["fds"] + 256 + 4, (before, during)
        assert during["threads"] == before["threads"]
        closed = 0
        for s in silent[:80]:  # the oldest: closed by the server, without a word
            s.settimeout(0.5)
            try:
                closed += s.recv(1) == b""
            except OSError:
                pass
        assert closed >= 50, closed
    finally:
        for s in silent:
            s.close()


def test_slow_but_steady_upload_is_served(start_server, fast_model_dir):
    # A ~250 KB upload at ~40 KB/s (a weak Wi-Fi link) takes ~6 s and must not be cut off.
    server = start_server(model_dir=fast_model_dir)
    img = page([("HELLO", (60, 120))])[0]
    img[200:420, 100:500] = np.random.default_rng(3).integers(0, 255, (220, 400, 3))  # noise: a big PNG
    body = encode(img, ".png")
    assert 200 * 1024 < len(body) < 400 * 1024
    with connect(server.port, 30) as s:
        s.sendall(request_bytes("POST", "/api/model/service/binary?mid=2", [("Content-Length", len(body))]))
        for i in range(0, len(body), 4 * 1024):
            s.sendall(body[i:i + 4 * 1024])
            time.sleep(0.1)
        reply = read_reply(s)
    assert reply.status == 200 and reply.json()["code"] == 0


# ---- the worker killed under load (the watchdog and restarts are worker.py's: tests/test_worker.py) ----

def test_worker_killed_under_load_answers_at_once_and_comes_back(start_server, det_model_dir, photo):
    # The clients keep going until one of them is served by the restarted worker (not for a fixed
    # time: a fixed window guessed how long a restart takes on a busy machine, and lost).
    import signal

    server = start_server(model_dir=det_model_dir, queue_depth=4)
    url, path = server.url, "/api/model/service/binary?mid=1"
    st = requests.get(url + "/api/status", timeout=5).json()["data"]
    pid, first_start = st["worker_pid"], st["last_start_s"]
    results, lock = [], threading.Lock()
    came_back = []  # when the worker was seen back
    served_again = threading.Event()

    def client():
        session = requests.Session()
        while not served_again.is_set():
            out, lat, _ = _post(session, url, path, photo)
            with lock:
                results.append((out, time.monotonic(), lat))
                if out == (200, 0) and came_back and time.monotonic() - lat > came_back[0]:
                    served_again.set()  # asked after the restart, and answered
            if out[0] == 503:
                time.sleep(0.1)  # as a client that reads Retry-After would, only sooner

    threads = [threading.Thread(target=client, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(2.5)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    back = None
    while time.monotonic() < killed_at + 15:
        st = requests.get(url + "/api/status", timeout=5).json()["data"]
        if st["restarts"] == 1 and st["state"] == "ready":  # restarted, not merely not noticed yet
            assert requests.get(url + "/api/health", timeout=5).status_code == 200
            back = time.monotonic() - killed_at
            came_back.append(time.monotonic())
            break
        time.sleep(0.05)
    served_again.wait(60 if back is not None else 0)  # a few detector runs; 60 s: something hangs
    served_again.set()
    for t in threads:
        t.join(90)

    outcomes = _count([(out, None, None) for out, _, _ in results])
    died = [end - killed_at for out, end, _ in results if out == (503, 1007)]
    print("\nworker kill -9 under load: %s; in-flight answered %.2f s after the kill at most; healthy again "
          "after %.2f s (worker start %.2f s, restart %.2f s)"
          % (outcomes, max(died) if died else float("nan"), back or float("nan"), first_start, st["last_start_s"]))
    assert set(outcomes) <= {(200, 0), (503, BUSY), (503, 1007)}, outcomes
    assert died and max(died) < 1.0  # every request in flight at the kill: an error within 1 s
    # The issue asks for 5 s; the bound is doubled for a 2-core machine that other test runs share.
    # Measured: 0.4-0.9 s, and 1.5-6.7 s on a machine loaded 8-9; before a restart stopped warming
    # the detector again (tests/test_worker.py checks that it does not): 2-2.5 s, and 8.7-10 s.
    assert back is not None and back < 10.0
    status = requests.get(url + "/api/status", timeout=5).json()["data"]
    assert status["restarts"] == 1 and status["worker_pid"] != pid
    assert any(out == (200, 0) and end > killed_at + back for out, end, _ in results)  # serving again


# ---- tools/soak.py: its verdicts (the long run itself is `make soak`) ----------------------------

def _soak_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("soak", str(REPO / "tools" / "soak.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("case, ok", [("flat", True), ("rss", False), ("fds", False), ("threads", False),
                                      ("unexpected", False)])
def test_soak_verdicts(tmp_path, capsys, case, ok):
    soak = _soak_module()
    samples = []
    for i in range(12):
        grow = i >= 9
        server = (100.0 + (5 if case == "rss" and grow else 0), 20 + (3 if case == "fds" and grow else 0),
                  17 + (1 if case == "threads" and grow else 0))
        samples.append((30.0 + 10 * i, server, (900.0 + (20 if case == "rss" and grow else 0), 6, 3)))
    stats = soak.Stats()
    stats.add("health", 200, 0.01, 200)
    stats.add("binary-fast", 503, 0.01, 200)  # busy: fair at 80% load
    if case == "unexpected":
        stats.add("health", 500, 0.01, 200)
    log = tmp_path / "server.log"
    log.write_text("all fine\n")
    args = argparse.Namespace(max_drift=2.0)
    assert soak.report(args, stats, samples, 150.0, 3, 0, 0, 0, str(log)) == (0 if ok else 1)
    out = capsys.readouterr().out
    assert "drift" in out and ("soak: OK" in out) == ok


def test_full_queue_refuses_a_big_upload_from_its_request_line(start_server, det_model_dir, photo):
    # One slot, held by a detector job: a 4 MB upload gets its JSON 503 after only its headers and
    # 64 KB were sent. No thread waits for (or reads) the rest, and the rest of the body is dropped.
    # Refusals come at once while they are few; a client that keeps retrying at once is held
    # back (~30 ms per refusal once 64 went out at once: httpd's SHED_* settings).
    server = start_server(model_dir=det_model_dir, queue_depth=1, queue_wait_ms=0)  # the door, not the line
    holder = threading.Thread(target=lambda: [requests.post(server.url + "/api/model/service/binary?mid=1",
                                                            data=photo, timeout=60) for _ in range(3)])
    holder.start()
    held = []
    try:
        end = time.monotonic() + 20
        while requests.get(server.url + "/api/status", timeout=5).json()["data"]["queue_depth"] < 1:
            assert time.monotonic() < end
            time.sleep(0.005)
        sock = connect(server.port)
        head = ("POST /api/model/service/binary?mid=1 HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                "Content-Length: %d\r\n\r\n" % (4 * 1024 * 1024)).encode("ascii")
        t0 = time.monotonic()
        sock.sendall(head + b"\xff" * 65536)
        reply = read_reply(sock, "POST")
        took = time.monotonic() - t0
        sock.close()
        retry = ("POST /api/model/service/binary?mid=1 HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                 "Content-Length: 10\r\n\r\n0123456789").encode("ascii")  # a 400 if a slot came free
        for _ in range(150):
            t1 = time.monotonic()
            s = connect(server.port)
            s.sendall(retry)
            again = read_reply(s, "POST")
            s.close()
            if again.status == 503:
                held.append(time.monotonic() - t1)
    finally:
        holder.join(60)
    print("\nrefused from the request line in %.1f ms; then %d refusals, %d of them held 25 ms or more"
          % (took * 1000, len(held), sum(1 for x in held if x >= 0.025)))
    assert reply.status == 503 and reply.json()["code"] == BUSY and reply.headers.get("retry-after")
    assert took < 2.0, took
    assert len(held) >= 100 and any(x >= 0.025 for x in held), held
    assert _health_ok(server.url)
