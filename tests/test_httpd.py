"""edgeapp.httpd on its own: a Server in this process around a small WSGI app, real HTTP on
127.0.0.1. (The whole service against hostile and overloading clients: test_hostile.py,
test_load.py; cheroot's part: test_cheroot_adapter.py.)"""
import contextlib
import os
import resource
import sys
import threading
import time

import pytest
import requests

from edgeapp import httpd
from edgeapp.errors import Busy
from edgeapp.httpd import Limits
from rawhttp import connect, read_reply, request_bytes


def echo_app(environ, start_response):
    """200 and the length of the body it read."""
    out = b"ok:%d" % len(environ["wsgi.input"].read())
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


def never_app(environ, start_response):
    raise AssertionError("a refused request never reaches the application")


def refuse_posts(retry_after=1):
    return lambda method, target, waiting: Busy("full; retry", retry_after=retry_after) if method == b"POST" else None


@contextlib.contextmanager
def serving(app, select=None, **kw):
    """A Server with two request threads on a free port, its selector loop in a thread; yields
    (server, base URL, the selector thread). select wraps Poller.select (counting turns)."""
    kw.setdefault("threads", 2)
    srv = httpd.Server(("127.0.0.1", 0), app, **kw)
    srv.prepare()
    if select is not None:
        srv.poller.select = select(srv.poller.select)
    selector = threading.Thread(target=srv.serve, daemon=True)
    selector.start()
    try:
        yield srv, "http://127.0.0.1:%d" % srv.bind_addr[1], selector
    finally:
        srv.stop()


def test_refusals_are_quick_in_a_burst_then_held_back():
    # httpd answers the first shed_burst refusals at once and shed_rate a second after that;
    # beyond, each waits shed_delay (clients that retry at once).
    from edgeapp.httpd import TokenBucket

    bucket = TokenBucket(burst=64, rate=100.0)
    t = bucket.t
    assert all(bucket.take(t) for _ in range(64))
    assert not bucket.take(t)
    assert bucket.take(t + 0.011) and not bucket.take(t + 0.011)  # 100 a second: one per 10 ms
    assert sum(bucket.take(t + 10.0) for _ in range(100)) == 64    # never more than the burst


def test_uploads_waiting_for_a_thread_are_counted_until_one_starts():
    # httpd hands the shed the POSTs no thread has started yet; every path (bodiless POSTs, which
    # the light threads take, included) must bring that count back to zero.
    seen = []
    with serving(echo_app, shed=lambda method, target, waiting: seen.append(waiting)) as (srv, base, _):
        for body in (b"", b"x" * 10, b"", b"y" * 100000, b""):
            assert requests.post(base + "/api/model/service/binary", data=body, timeout=10).status_code == 200
        assert srv.waiting == 0 and seen and min(seen) == 0, (srv.waiting, seen)


def test_an_answer_leaves_in_one_write_head_and_body(monkeypatch):
    # One system call per answer (and one TCP segment for a small one), not one for the head and
    # one for the body; an answer with no body still goes out.
    def app(environ, start_response):
        environ["wsgi.input"].read()
        body = b"" if environ["PATH_INFO"] == "/empty" else b'{"code": 0}'
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body] if body else []

    writes, real_write = [], os.write

    def counting_write(fd, data):
        writes.append(bytes(data))
        return real_write(fd, data)

    with serving(app) as (srv, base, _):
        monkeypatch.setattr(os, "write", counting_write)
        with requests.Session() as s:
            for _ in range(3):
                r = s.post(base + "/api/model/service/binary?mid=2", data=b"x" * 50000, timeout=10)
                assert r.status_code == 200 and r.json() == {"code": 0}
            r = s.post(base + "/empty", data=b"y", timeout=10)
            assert r.status_code == 200 and r.content == b""
        monkeypatch.undo()
    answers = [w for w in writes if w.startswith(b"HTTP/1.1 ")]
    assert len(answers) == 4, writes
    assert all(w.endswith(b'\r\n\r\n{"code": 0}') for w in answers[:3])
    assert answers[3].endswith(b"\r\n\r\n")


def test_a_refused_upload_is_dropped_without_being_copied():
    # The selector thread drops a refused upload's body while lingering; on Linux the kernel frees
    # it without copying it out (MSG_TRUNC), so the scratch buffer stays as it was. The client,
    # which reads only after sending everything (as requests does), still gets its JSON 503.
    with serving(never_app, shed=refuse_posts()) as (srv, base, _):
        for _ in range(2):
            r = requests.post(base + "/api/model/service/binary?mid=1", data=b"\xff" * (4 * 1024 * 1024), timeout=30)
            assert r.status_code == 503 and r.json()["code"] != 0 and r.headers["Retry-After"] == "1"
        if sys.platform.startswith("linux"):
            assert srv.limits.drop_flags and not any(srv.poller.scratch)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice is Linux's")
def test_the_selector_thread_runs_above_the_request_threads(monkeypatch, caplog):
    # Under a burst of uploads the selector thread (accepting, refusing) must not queue behind the
    # decodes of the admitted requests on the same CPU: it alone gets a higher priority where the
    # service may (root, RLIMIT_NICE), and says why where it may not.
    nice_wanted = Limits().selector_nice
    with serving(echo_app) as (srv, base, selector):
        assert requests.get(base + "/", timeout=10).text == "ok:0"  # it is serving
        nice = {t.native_id: os.getpriority(os.PRIO_PROCESS, t.native_id) for t in threading.enumerate()}
        others = [t.native_id for t in srv.workers.threads + srv.light.threads] + [threading.get_native_id()]
        assert all(nice[tid] == 0 for tid in others), nice
        allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_NICE)[0] >= 20 - nice_wanted
        assert nice[selector.native_id] == (nice_wanted if allowed else 0), nice

    def refused(which, who, nice):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refused)
    with caplog.at_level("INFO", logger="edgeapp.http"):
        with serving(echo_app) as (srv, base, selector):
            assert requests.get(base + "/", timeout=10).text == "ok:0"
            assert os.getpriority(os.PRIO_PROCESS, selector.native_id) == 0
    assert "the selector thread keeps its CPU priority" in caplog.text and "RLIMIT_NICE" in caplog.text


def test_a_selector_turn_drops_few_refused_bodies_and_every_upload_still_gets_its_503():
    # New connections are taken first in a selector turn, and only drains_per_turn refused uploads
    # are dropped in it (new heads waited behind the drops); the others wait for later turns, and
    # every client, which reads only after sending all (as requests does), still gets its 503.
    drains = []

    def counting(select):
        def counting_select(timeout):
            turn = select(timeout)
            drains.append(sum(1 for conn in turn if conn is not None and conn.lingering))
            return turn
        return counting_select

    answers, body = [], b"\xff" * (16 * 1024 * 1024)  # more than the socket buffers hold: drops needed
    with serving(never_app, select=counting, shed=refuse_posts(), limits=Limits(drains_per_turn=1)) as (_, base, _s):
        def upload():
            r = requests.post(base + "/api/model/service/binary?mid=1", data=body, timeout=30)
            answers.append((r.status_code, r.json()["code"]))

        clients = [threading.Thread(target=upload) for _ in range(6)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(60)
    assert len(answers) == 6 and all(status == 503 and code != 0 for status, code in answers), answers
    assert max(drains) == 1 and sum(drains) >= 6, drains


def test_a_refusal_costs_the_selector_no_writer_and_shares_its_answer_bytes(monkeypatch):
    # Under a burst the selector thread refuses dozens of uploads in a row: each must stay cheap.
    # A refused connection never gets a writer (it is made when a thread first answers through
    # it), and equal refusals share one built answer; every client still reads its 503.
    from edgeapp.httpd import connection

    writers = []

    class CountingOutbox(connection.Outbox):
        def __init__(self, conn):
            writers.append(conn)
            super().__init__(conn)

    monkeypatch.setattr(connection, "Outbox", CountingOutbox)
    with serving(echo_app, shed=refuse_posts(retry_after=3)) as (_, base, _s):
        for _ in range(3):
            r = requests.post(base + "/api/model/service/binary?mid=1", data=b"\xff" * 100000, timeout=10)
            assert r.status_code == 503 and r.json()["code"] != 0 and r.headers["Retry-After"] == "3", r.text
        assert writers == []
        assert requests.get(base + "/", timeout=10).text == "ok:0" and len(writers) == 1  # a thread's answer

    first = httpd.error_response(Busy("full; retry", retry_after=3))
    assert httpd.error_response(Busy("full; retry", retry_after=3)) is first
    other = httpd.error_response(Busy("full; retry", retry_after=7))
    assert b"Retry-After: 7\r\n" in other and b"Retry-After: 3\r\n" in first and other != first


# ---- the limits are the constructor's -----------------------------------------------------------

def test_limits_given_to_the_constructor_apply():
    # A short header_timeout: a head that stalls gets its JSON 408 in about that time, and the
    # message names the limits; a small max_header_bytes: 431 above it.
    limits = Limits(header_timeout=0.5, max_header_bytes=1024, sweep_interval=0.1)
    with serving(echo_app, limits=limits) as (srv, base, _):
        with connect(srv.bind_addr[1]) as s:
            t0 = time.monotonic()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            reply = read_reply(s)
            took = time.monotonic() - t0
        assert reply.status == 408 and reply.json()["code"] == 1012 and "within 0 s" not in reply.json()["msg"]
        assert 0.4 < took < 3.0, took
        reply = read_reply_of(srv, request_bytes("GET", "/", [("X-Big", "b" * 1500)]))
        assert reply.status == 431 and "1024 bytes" in reply.json()["msg"]
        assert requests.get(base + "/", timeout=5).text == "ok:0"


def test_an_idle_kept_connection_is_closed_after_idle_timeout():
    with serving(echo_app, limits=Limits(idle_timeout=0.5, sweep_interval=0.1)) as (srv, _, _s):
        with connect(srv.bind_addr[1]) as s:
            s.sendall(request_bytes("GET", "/"))
            assert read_reply(s).status == 200  # kept
            t0 = time.monotonic()
            assert s.recv(1) == b""  # then closed by the server, without a word
            assert 0.3 < time.monotonic() - t0 < 3.0


def test_keep_alive_stops_at_keep_alive_limit():
    # Connections kept for another request count against keep_alive_limit: at 0, none is kept.
    with serving(echo_app, limits=Limits(keep_alive_limit=0)) as (srv, _, _s):
        with connect(srv.bind_addr[1]) as s:
            s.sendall(request_bytes("GET", "/"))
            reply = read_reply(s)
            assert reply.status == 200 and reply.headers["connection"] == "close"
            assert s.recv(1) == b""
    with serving(echo_app) as (srv, _, _s):
        with connect(srv.bind_addr[1]) as s:
            for _ in range(3):
                s.sendall(request_bytes("GET", "/"))
                reply = read_reply(s)
                assert reply.status == 200 and "connection" not in reply.headers


def test_shed_and_quick_are_the_constructor_s():
    quick_answers = []

    def quick(method, target, peer):
        if target != b"/fast":
            return None
        quick_answers.append(target)
        assert peer == "127.0.0.1"
        return 200, [("Content-Type", "text/plain")], b"quick"

    with serving(echo_app, quick=quick, shed=refuse_posts()) as (_, base, _s):
        assert requests.get(base + "/fast", timeout=5).text == "quick" and quick_answers == [b"/fast"]
        assert requests.get(base + "/slow", timeout=5).text == "ok:0"
        assert requests.post(base + "/slow", data=b"x", timeout=5).status_code == 503


def read_reply_of(srv, data):
    with connect(srv.bind_addr[1]) as s:
        s.sendall(data)
        return read_reply(s)
