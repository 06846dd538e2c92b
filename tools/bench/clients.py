"""Our Python load clients (`python -m tools.bench load ...`, a process of their own so that they
do not share a GIL with the health poller), and run_py_client, which starts one and reads its
figures. Standard library only: the overload's client processes must start within a second.

py_load     threads of keep-alive http.client connections POSTing one body back to back;
early_load  a new raw-socket connection per request whose answer is read as soon as it comes,
            even while the body is still being sent (as curl does); or bursts of one request
            per client, all at once, every gap seconds.
"""
import argparse
import http.client
import itertools
import json
import os
import platform
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

from tools.bench.common import MODE_CWD, OVERLOAD_GAP, mode_command, ms, percentile
from tools.bench.timing import server_timing, steady_busy, steady_rate, timing_ms
from tools.launch import child_env

# Linux's SO_TIMESTAMPNS (SCM_TIMESTAMPNS in the answer, a timespec of longs): when an answer's first
# bytes reached the client's socket, apart from when the client process got the CPU to read them.
RX_STAMP = 35 if sys.platform.startswith("linux") and platform.machine() not in ("alpha", "sparc64", "parisc") else None
STAMP_SIZE = struct.calcsize("@ll")


def main(argv):
    p = argparse.ArgumentParser(prog="python -m tools.bench load")
    p.add_argument("--url", required=True)
    p.add_argument("--body", required=True, help="file with the request body")
    p.add_argument("--content-type", required=True)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--max-requests", type=int, default=100000)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument("--early", action="store_true",
                   help="raw sockets, one request per connection, the answer read while the body is still being "
                        "sent (as curl does): the time to an early 503 is the server's, not the upload's")
    p.add_argument("--rounds", type=int, default=0,
                   help="with --early: instead of back to back, one request per client in each of N rounds, all "
                        "clients at once, from --start-at (epoch seconds) every --gap seconds")
    p.add_argument("--gap", type=float, default=OVERLOAD_GAP)
    p.add_argument("--start-at", type=float, default=None)
    p.add_argument("--cpus", default="", help="CPUs this client runs on, as EDGEAPP_WORKER_CPUS (default: any)")
    args = p.parse_args(argv)
    if args.cpus:
        from edgeapp import config

        os.sched_setaffinity(0, config.cpu_set(args.cpus))  # the same CPU lists as EDGEAPP_WORKER_CPUS
    with open(args.body, "rb") as f:
        body = f.read()
    if args.early:
        out = early_load(args.url, body, args.content_type, args.concurrency, args.seconds, args.max_requests,
                         args.timeout, rounds=args.rounds, gap=args.gap, start_at=args.start_at)
    else:
        out = py_load(args.url, body, args.content_type, args.concurrency, args.seconds, args.max_requests,
                      args.timeout)
    print(json.dumps(out))
    return 0


def run_py_client(url, body_file, content_type, concurrency, seconds, max_requests, timeout):
    """py_load in a process of its own; its figures."""
    cmd = mode_command("load", "--url", url, "--body", body_file, "--content-type", content_type,
                       "--concurrency", concurrency, "--seconds", seconds, "--max-requests", max_requests,
                       "--timeout", timeout)
    out = subprocess.run(cmd, env=child_env(), cwd=MODE_CWD, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=seconds + timeout + 60)
    if out.returncode != 0:
        raise RuntimeError("the load client failed:\n%s%s" % (out.stdout, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- early_load: a new connection per request, the answer read as soon as it comes ---------------

def early_load(url, body, content_type, concurrency, seconds, max_requests, timeout, rounds=0, gap=OVERLOAD_GAP,
               start_at=None):
    """Like py_load, but each request on a new connection whose answer is read as soon as it comes:
    an answer before the whole body was sent ends the upload (the connection is closed).
    rounds > 0: a burst instead: every client sends one request at start_at (epoch seconds), and
    again every gap seconds, rounds times."""
    u = urlsplit(url)
    warm_up_resolver(u.hostname, u.port)
    path = u.path + ("?" + u.query if u.query else "")
    head = ("POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (path, u.hostname, u.port, content_type, len(body))).encode("ascii")
    tickets = itertools.count()
    start = time.perf_counter()
    stop_at = start + seconds
    results = [None] * concurrency

    def worker(i):
        turns = (_bursts(rounds, start_at, gap) if rounds else _back_to_back(tickets, max_requests, stop_at))
        results[i] = _early_client(turns, lambda: early_request(u.hostname, u.port, head, body, timeout))

    out = run_clients(worker, results, start, "early")
    out["ok_ms_all"] = [ms(x) for x in sorted(x for r in results for x in r[0])]
    out["busy_ms_all"] = [ms(x) for x in sorted(x for r in results for x in r[1])]
    arrived = [x for r in results for x in r[4]]
    out["busy_arrived_ms_all"] = ([ms(x) for x in sorted(arrived)]
                                  if arrived and all(x is not None for x in arrived) else None)
    return out


def _back_to_back(tickets, max_requests, stop_at):
    """A client's turns: one after another, until the shared request cap or stop_at."""
    while next(tickets) < max_requests and time.perf_counter() < stop_at:
        yield


def _bursts(rounds, start_at, gap):
    """A client's turns: at start_at (epoch seconds), then every gap seconds, rounds times."""
    for r in range(rounds):
        time.sleep(max(0.0, (start_at or time.time()) + r * gap - time.time()))
        yield


def _early_client(turns, request):
    """One client's (ok, busy, other, errors, busy_arrived): request() at each of its turns."""
    ok, busy, other, errors, busy_arrived = [], [], 0, {}, []
    for _ in turns:
        try:
            status, t0, arrived = request()
        except OSError as e:
            status, t0, arrived = type(e).__name__, None, None
        took = time.perf_counter() - t0 if t0 is not None else None
        if status == 200:
            ok.append(took)
        elif status == 503:
            busy.append(took)
            busy_arrived.append(arrived)
        else:
            other += 1
            errors[str(status)] = errors.get(str(status), 0) + 1
    return ok, busy, other, errors, busy_arrived


def early_request(host, port, head, body, timeout):
    """One request on a new connection: (status, or "timeout" or "no answer"; its perf_counter
    start; seconds from then to the answer's first bytes in the socket by the kernel's stamp, or
    None without one)."""
    t0, wall0 = time.perf_counter(), time.time()
    sock = socket.create_connection((host, port), timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stamps = _stamp_arrivals(sock)
        sock.sendall(head)
        sock.setblocking(False)
        data, arrived = _send_and_read(sock, body, t0 + timeout, stamps, wall0)
        if data is None:
            return "timeout", t0, arrived
        return (int(data[9:12]) if data[:5] == b"HTTP/" and len(data) >= 12 else "no answer"), t0, arrived
    finally:
        sock.close()


def _stamp_arrivals(sock):
    """Ask the kernel to stamp what arrives on sock (SO_TIMESTAMPNS); False where it cannot."""
    if RX_STAMP is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, RX_STAMP, 1)
    except OSError:
        return False
    return True


def _send_and_read(sock, body, end, stamps, wall0):
    """Send body on the non-blocking sock while reading the answer, until the answer is whole or
    the server closes: (the answer's bytes, or None at end; the arrival of its first bytes)."""
    data, sent, view, arrived = bytearray(), 0, memoryview(body), None
    while True:
        left = end - time.perf_counter()
        if left <= 0:
            return None, arrived
        r, w, _ = select.select([sock], [sock] if sent < len(body) else [], [], left)
        if r:
            chunk, ancillary = _receive(sock, stamps)
            if arrived is None and stamps:
                arrived = _arrival(ancillary, wall0)
            if chunk == b"":
                return data, arrived
            if chunk:
                data += chunk
                if _complete(data):
                    return data, arrived
        if w and sent < len(body):
            try:
                sent += sock.send(view[sent:sent + 262144])
            except BlockingIOError:
                pass
            except OSError:
                sent = len(body)  # the server closed its side: read what it answered


def _receive(sock, stamps):
    """(bytes read or None when none were ready, recvmsg's ancillary data)."""
    try:
        if stamps:
            chunk, ancillary, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(STAMP_SIZE))
            return chunk, ancillary
        return sock.recv(65536), []
    except BlockingIOError:
        return None, []


def _arrival(ancillary, wall0):
    """Seconds from wall0 (time.time()) to the kernel's receive stamp in recvmsg's ancillary data,
    or None without one."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == RX_STAMP and len(data) >= STAMP_SIZE:
            sec, nsec = struct.unpack("@ll", data[:STAMP_SIZE])
            return sec + nsec / 1e9 - wall0
    return None


def _complete(data):
    """True when data holds a whole HTTP answer (head and Content-Length bytes of body)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in bytes(data[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    return len(data) >= end + 4 + length


def warm_up_resolver(host, port):
    """A process's first getaddrinfo imports the idna codec, holding the GIL (7.7 ms here): done
    before any clock starts. Measured: in the first of the bursts every client thread waited up
    to 31 ms for it, between taking its start time and sending its head, and that burst alone
    missed the 50 ms mark (15 of 60 within it; with this, 58-60 of 60 in every burst)."""
    socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)


def run_clients(worker, results, start, client):
    """Run worker(i) for every slot of results (each fills its (ok, busy, other, errors, ...)
    tuple); the figures every client reports. Requests still in flight at the deadline are
    waited for: the elapsed time includes them."""
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat = sorted(x for r in results for x in r[0])
    busy = sorted(x for r in results for x in r[1])
    errors = {}
    for r in results:
        for k, v in r[3].items():
            errors[k] = errors.get(k, 0) + v
    return {
        "client": client, "seconds": elapsed, "ok": len(lat), "busy": len(busy),
        "busy_p50_ms": ms(percentile(busy, 50)), "busy_p99_ms": ms(percentile(busy, 99)),
        "busy_max_ms": ms(busy[-1] if busy else None), "busy_within_50ms": sum(1 for x in busy if x <= 0.05),
        "errors": sum(r[2] for r in results), "error_kinds": errors,
        "rps": len(lat) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": ms(percentile(lat, 50)), "p95_ms": ms(percentile(lat, 95)), "p99_ms": ms(percentile(lat, 99)),
        "latency_of": "200 only",
    }


# ---- py_load: keep-alive connections, back to back -----------------------------------------------

def py_load(url, body, content_type, concurrency, seconds, max_requests, timeout):
    """concurrency threads, each one keep-alive connection, POSTing body until seconds or
    max_requests (whichever first). Latencies are of successful (200) answers only."""
    u = urlsplit(url)
    warm_up_resolver(u.hostname, u.port)
    path = u.path + ("?" + u.query if u.query else "")
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    tickets = itertools.count()  # next() is atomic under the GIL: the request cap without a lock
    start = time.perf_counter()
    stop_at = start + seconds
    results = [None] * concurrency

    def worker(i):
        ok, busy, other, errors, timings, done = [], [], 0, {}, [], []
        conn = None
        while next(tickets) < max_requests and time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            conn, status, timing = _keep_alive_post(conn, u, path, body, headers, timeout)
            if status == 200:
                timings.append(timing)
                ok.append(time.perf_counter() - t0)
                done.append(t0 + ok[-1] - start)
            elif status == 503:
                busy.append(time.perf_counter() - t0)
            else:
                other += 1
                errors[str(status)] = errors.get(str(status), 0) + 1
        if conn is not None:
            conn.close()
        results[i] = (ok, busy, other, errors, timings, done)

    out = run_clients(worker, results, start, "py")
    out["server_timing"] = server_timing([h for r in results for h in r[4]])
    out["steady_rps"] = steady_rate(x for r in results for x in r[5])
    out["steady_busy"] = steady_busy([(t, timing_ms(h, "inference")) for r in results for t, h in zip(r[5], r[4])])
    return out


def _keep_alive_post(conn, u, path, body, headers, timeout):
    """One POST on conn (a new connection when None): (the connection to use next or None, the
    status or the exception's name, the Server-Timing header of a 200)."""
    try:
        if conn is None:
            conn = connect(u.hostname, u.port, timeout)
        conn.request("POST", path, body, headers)
        resp = conn.getresponse()
        resp.read()
        timing = resp.getheader("Server-Timing") if resp.status == 200 else None
        if resp.will_close:
            conn.close()
            conn = None
        return conn, resp.status, timing
    except (OSError, http.client.HTTPException) as e:
        if conn is not None:
            conn.close()
        return None, type(e).__name__, None


def connect(host, port, timeout):
    """A connection with TCP_NODELAY, as urllib3/requests and wrk make them: http.client sends the
    headers and the body in two writes, and without it Nagle holds the body back until the server's
    delayed ACK (up to 40 ms on Linux), which measured the client, not the server."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn
