"""The HTTP server: cheroot, made safe to expose to every client on a LAN.

Stock cheroot hands each new connection to a pool thread, which then blocks reading the request.
A few dozen clients that connect and say nothing, or send their headers a byte at a time, would
hold every thread and nobody else would be served. So here:

- a connection waits in cheroot's selector, without a thread, until its request head (request
  line and headers) and the first BODY_PREFETCH bytes of its body have arrived; the selector
  thread reads what has arrived without blocking. They must arrive within HEADER_TIMEOUT of the
  request's first byte (408), and the head must fit in MAX_HEADER_BYTES (414 for the request
  line, 431 for the headers);
- requests without a body (health, status, models) have their own small pool of threads, so slow
  uploads can never make /api/health wait; GET /api/health itself is answered by the selector
  thread from the request head (Server.quick), with no thread hand-over at all;
- a body must keep up MIN_BODY_RATE on average once BODY_GRACE has passed (408 otherwise), and an
  answer must be read by the client at that rate too: a slow client holds a thread for a bounded
  time only;
- when every thread is busy and the accepted queue is full, the answer is an immediate 503;
- the selector thread runs above the other threads (SELECTOR_NICE), so that under a burst of
  uploads it accepts and refuses before the admitted images' decodes, and each of its turns takes
  new connections first and drops at most DRAINS_PER_TURN refused bodies;
- every answer cheroot gives by itself (malformed request, timeouts, limits, busy) is the JSON
  envelope with an edgeapp error code, like the application's answers;
- after an answer sent before the whole request was read (413, 503, 408, ...), the rest of the
  input is read and dropped for a while (no thread needed) before the connection is closed, so
  the client gets to read the answer instead of a connection reset.

This leans on cheroot internals (ConnectionManager's selector, the pool's queue); cheroot is
pinned in requirements.txt and tests/test_load.py and tests/test_hostile.py cover all of it.
"""
import _pyio
import email.utils
import heapq
import http
import logging
import os
import queue
import re
import selectors
import socket
import sys
import threading
import time

from cheroot import errors as cheroot_errors
from cheroot import makefile
from cheroot import server as cheroot_server
from cheroot import wsgi

from edgeapp.errors import BadRequest, Busy, Internal, MethodNotAllowed, RequestTimeout, TooLarge
from edgeapp.results import JSON_TYPE, SECURITY_HEADERS, dumps, failure, retry_after_header

log = logging.getLogger("edgeapp.http")

MAX_HEADER_BYTES = 8 * 1024  # request line + headers; browsers and curl send well under 2 KB
HEADER_TIMEOUT = 10.0        # seconds from a request's first byte to its head and body prefix
BODY_PREFETCH = 64 * 1024    # body bytes gathered before a thread takes the request
BODY_GRACE = 10.0            # seconds a body (or an answer) may take before MIN_BODY_RATE applies
MIN_BODY_RATE = 16 * 1024    # bytes per second, on average, after the grace (128 kbit/s)
LINGER_SECONDS = 10.0        # how long input is read and dropped after an early answer
DRAIN_BURST = 16 * 1024 * 1024  # bytes dropped per turn of one lingering connection
DRAINS_PER_TURN = 4          # lingering connections drained per selector turn (about 0.6 ms each)
SHED_DELAY = 0.03            # seconds a refused inference request waits for its 503 (back-pressure)...
SHED_BURST = 64              # ...once this many were refused at once (a token bucket:
SHED_RATE = 100.0            # ...refilled at this many per second)
LIGHT_THREADS = 2            # threads for requests without a body
LIGHT_QUEUE = 16             # such requests waiting for one of them (then they try the main pool)
ACCEPT_BURST = 64            # connections accepted per selector turn (cheroot takes one)
MAX_PARKED = 256             # connections waiting in the selector; beyond it the longest idle are closed
# recv flags that drop input without copying it (Linux, TCP); elsewhere it lands in a scratch buffer
DROP_FLAGS = getattr(socket, "MSG_TRUNC", 0) if sys.platform.startswith("linux") else 0
KEEP_ALIVE_LIMIT = 128       # idle connections kept open for another request (cheroot's default: 10)
# The selector thread's CPU priority (nice; the other threads keep 0). It accepts, reads heads and
# refuses, a little work each time, but under a burst of uploads it queued behind the admitted
# requests' decodes on the same CPU and new connections waited in the listen backlog. At -5 it
# still waited for that CPU as long as it ran (CFS shares it by weight: -5 against four decoding
# threads is 43%); at -10, 70%. Needs root (the init scripts run the service as root) or
# RLIMIT_NICE (ulimit -e 30); without either it keeps 0, and says so.
SELECTOR_NICE = -10


class Server(wsgi.Server):
    """cheroot's WSGI server with the defences above. Arguments as wsgi.Server's, except that the
    accepted queue never blocks (a full queue is an immediate 503)."""

    max_request_header_size = MAX_HEADER_BYTES
    keep_alive_conn_limit = KEEP_ALIVE_LIMIT

    def __init__(self, bind_addr, wsgi_app, numthreads=8, server_name=None, request_queue_size=16,
                 timeout=10, shutdown_timeout=5, accepted_queue_size=32, light_threads=LIGHT_THREADS):
        super().__init__(bind_addr, wsgi_app, numthreads=numthreads, server_name=server_name,
                         request_queue_size=request_queue_size, timeout=timeout,
                         shutdown_timeout=shutdown_timeout, accepted_queue_size=accepted_queue_size,
                         accepted_queue_timeout=0)  # 0: a full queue raises queue.Full at once
        self.ConnectionClass = _Connection
        self._light = queue.Queue(maxsize=LIGHT_QUEUE)
        self._light_count = light_threads
        self._scratch = bytearray(1024 * 1024)  # the selector thread's: dropped input lands here without DROP_FLAGS
        # shed(method, target, waiting) -> an error to answer at once from the request line, or
        # None; waiting: POSTs handed to the threads that none has started yet. The application
        # sets it (edgeapp.api.shedder: a full accelerator queue). Must never wait.
        self.shed = None
        self._waiting = 0  # those POSTs (a burst of uploads must not all pass before one starts)
        self._waiting_lock = threading.Lock()
        # quick(method, target) -> (status, headers, body) the application answers from the
        # request line alone, in the selector thread (edgeapp.api: GET /api/health), or None.
        # Must never wait. Measured: /api/health p50 2.1 -> 0.9 ms idle, p99 23 -> 12 ms under load.
        self.quick = None
        self._due = []  # (time, n, conn, error): refusals waiting out SHED_DELAY, selector thread only
        self._quick_refusals = TokenBucket(SHED_BURST, SHED_RATE)  # selector thread only
        self._due_n = 0
        self._stopped = threading.Event()

    def prepare(self):
        super().prepare()
        # cheroot's selector thread calls _expire() twice a second to close idle connections
        # silently; a request that stalls half-way gets its 408 first.
        expire = self._connections._expire

        def sweep_then_expire(threshold):
            self._sweep()
            expire(threshold)

        self._connections._expire = sweep_then_expire
        # Every waiting connection, not one per selector turn: under a flood of uploads a turn is
        # slow (dropping refused bodies), and new heads waited in the backlog (measured with 64
        # clients x 4 MB: 45 ms at the median; 33 ms with the burst). Non-blocking listener: an
        # accept with nothing waiting returns None at once (cheroot's timeout was for Windows).
        self.socket.settimeout(0)
        accept = self._connections._from_server_socket

        def accept_burst(server_socket):
            first = accept(server_socket)
            for _ in range(ACCEPT_BURST - 1 if first is not None else 0):
                conn = accept(server_socket)
                if conn is None:
                    break
                self.process_conn(conn)
            return first

        self._connections._from_server_socket = accept_burst
        # Refusals held back for SHED_DELAY are answered from the selector loop: wake it in time.
        selector = self._connections._selector
        select = selector.select

        def select_then_refuse(timeout=None):
            if self._due:
                wait = self._due[0][0] - time.monotonic()
                timeout = max(0.0, wait) if timeout is None else max(0.0, min(timeout, wait))
            # New connections and requests first, then at most DRAINS_PER_TURN refused uploads
            # to drop: under a flood of uploads the drops were most of a turn, and new heads
            # waited behind them. The other lingering connections stay ready for the next turns.
            fresh, drops = [], []
            for item in select(timeout=timeout):
                (drops if getattr(item[1], "lingering", False) else fresh).append(item)
            self._refuse_due()
            return fresh + drops[:DRAINS_PER_TURN]

        selector.select = select_then_refuse
        for i in range(self._light_count):
            threading.Thread(target=self._light_loop, name="http-light-%d" % i, daemon=True).start()

    def serve(self):
        # Run by the thread that becomes the selector thread; the pool threads started earlier.
        # (cheroot's thread for a full queue, started next, inherits it: put_conn leaves it idle.)
        raise_priority(SELECTOR_NICE, "the selector thread")
        super().serve()

    def stop(self):
        self._stopped.set()
        super().stop()
        self._refuse_due(everything=True)

    def error_log(self, msg="", level=logging.INFO, traceback=False):
        # cheroot reports client disconnects and the like at INFO: routine on a LAN, so debug.
        log.log(level if level >= logging.WARNING else logging.DEBUG, "%s", msg, exc_info=traceback)

    # -- the selector thread: never blocks ---------------------------------------------------
    def process_conn(self, conn):
        """A new connection, or one with input: gather its head, then hand it to a thread."""
        if conn.lingering:
            return self._drain(conn)
        if conn.rfile.has_data():  # a pipelined request is already buffered
            return self._dispatch(conn, body=True)
        raw = conn.rfile.raw
        want = _still_wanted(raw.pending)
        if want:
            try:
                # The fd is non-blocking (cheroot gives every connection a timeout), and readable
                # or new: this read takes what is there and returns.
                data = os.read(conn.socket.fileno(), min(want, 65536))
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                if not raw.pending:
                    return conn.close_now()  # closed without a request (or between two)
                want = 0  # half a request, then the end: a thread says what was missing
            elif data:
                if conn.head_started is None:
                    conn.head_started = time.monotonic()
                raw.pending += data
                want = None  # known below, unless the request line alone has it refused
        end = _head_end(raw.pending)
        if end >= 0 and self.shed is not None:
            line = bytes(raw.pending[:raw.pending.find(b"\n")]).split()
            err = self.shed(line[0], line[1], self._waiting) if len(line) == 3 else None
            if err is not None:  # under overload: no thread, no parsing, the body is dropped
                return self._refuse_later(conn, err)
            conn.waiting = line[0] == b"POST"
        if want is None:
            want = _still_wanted(raw.pending)
        if end >= 0 and self.quick is not None and self._answer_quick(conn, end):
            return
        if want:
            if conn.head_started is not None and time.monotonic() - conn.head_started > HEADER_TIMEOUT:
                return self.refuse(conn, _timeout_error())
            return self._park(conn)
        # A head (and body prefix), or a head over the limit: a thread answers 414/431 from what is here.
        self._dispatch(conn, body=end < 0 or _request_info(bytes(raw.pending[:end]))[0] != 0)

    def _answer_quick(self, conn, end):
        """Answer a bodiless HTTP/1.1 GET the application answers quickly (see self.quick) right
        here; False leaves it to a thread (anything else: other methods, bodies, CORS, HTTP/1.0)."""
        raw = conn.rfile.raw
        request = _quick_request(bytes(raw.pending[:end]))
        if request is None:
            return False
        target, close = request
        answer = self.quick(b"GET", target)
        if answer is None:
            return False
        status, headers, body = answer
        headers = list(headers) + [("Date", _http_date()), ("Server", self.server_name)]
        out = _response(status, headers + ([("Connection", "close")] if close else []), body)
        del raw.pending[:end]
        conn.head_started = None
        try:
            sent = os.write(conn.socket.fileno(), out)
        except OSError:
            sent = -1
        if sent != len(out) or close:
            # Short only when the client reads none of its answers (a socket buffer is full).
            conn.close_now()
        elif raw.pending:
            self.process_conn(conn)  # a pipelined request behind it
        else:
            self._park(conn)
        return True

    def _sweep(self):
        """In the selector thread (the only one that takes connections out of the selector):
        408 for requests past their deadline; over MAX_PARKED, close the longest idle."""
        now = time.monotonic()
        selector = self._connections._selector
        parked = [(fd, conn) for fd, conn in list(selector.connections) if conn is not self]
        late = [(fd, conn) for fd, conn in parked if not conn.lingering and conn.head_started is not None
                and now - conn.head_started > HEADER_TIMEOUT]
        for fd, conn in late:
            selector.unregister(fd)
            self.refuse(conn, _timeout_error())
        excess = len(parked) - MAX_PARKED
        if excess > 0:
            answered = {fd for fd, _ in late}
            idle = sorted((p for p in parked if p[0] not in answered), key=lambda p: p[1].last_used)
            for fd, conn in idle[:excess]:
                selector.unregister(fd)
                conn.close_now()

    def _dispatch(self, conn, body):
        if not body:
            conn.waiting = False  # not an upload: not counted (its thread would uncount it)
            try:
                return self._light.put_nowait(conn)
            except queue.Full:
                pass
        if conn.waiting:
            self.count_waiting(1)
        try:
            self.requests.put(conn)  # raises queue.Full at once (accepted_queue_timeout=0)
        except queue.Full:
            conn.started()
            self.refuse(conn, Busy("every HTTP thread is busy; retry in a moment", retry_after=1))

    def count_waiting(self, n):
        with self._waiting_lock:
            self._waiting += n

    def _refuse_later(self, conn, err):
        """Answer err at once while refusals are few (SHED_BURST at once, SHED_RATE a second:
        a burst of uploads gets its 503s in milliseconds), else after SHED_DELAY. Clients that
        retry at once (wrk, naive scripts) otherwise turn a full queue into thousands of
        connect-503-close rounds a second, and those took the CPU that /api/health and the
        accelerator need (measured: 2700 refusals/s, health p99 39 ms). A held connection waits
        without a thread and outside the selector."""
        now = time.monotonic()
        if self._quick_refusals.take(now) or len(self._due) >= MAX_PARKED:
            return self.refuse(conn, err)
        self._due_n += 1
        heapq.heappush(self._due, (now + SHED_DELAY, self._due_n, conn, err))

    def _refuse_due(self, everything=False):
        now = time.monotonic()
        while self._due and (everything or self._due[0][0] <= now):
            _, _, conn, err = heapq.heappop(self._due)
            if everything:  # stopping
                conn.close_now()
            else:
                self.refuse(conn, err)

    def refuse(self, conn, err):
        """Answer err without a thread and close after lingering (the request is never read)."""
        try:
            os.write(conn.socket.fileno(), error_response(err))  # small: fits the socket buffer
        except OSError:
            return conn.close_now()
        self.linger(conn)

    def linger(self, conn):
        """Send FIN, then read and drop input until the client closes (or LINGER_SECONDS)."""
        if not self.ready:
            return conn.close_now()
        try:
            conn.socket.shutdown(socket.SHUT_WR)
            # From here on no read may wait: with a timeout, every recv would poll first.
            conn.socket.settimeout(0)
        except OSError:
            return conn.close_now()
        conn.lingering = True
        conn.linger_until = time.monotonic() + LINGER_SECONDS
        self._park(conn)

    def _drain(self, conn):
        """Drop what has arrived, all of it (up to DRAIN_BURST): a 4 MB upload refused with 503
        is then dropped in a few reads, not 64 trips through the selector, each of which may wait
        for the GIL (measured: 503s to 64 clients sending 4 MB took 0.5 s at the median with
        64 KB per trip). MSG_TRUNC: Linux frees TCP input without copying it out (0.13-0.22 ->
        0.01-0.02 ms of CPU per MB here); new connections wait in the backlog while this runs."""
        sock, got = conn.socket, 0
        while got < DRAIN_BURST:
            try:
                n = sock.recv_into(self._scratch, len(self._scratch), DROP_FLAGS)
            except BlockingIOError:
                break
            except OSError:
                n = 0
            if n == 0:
                return conn.close_now()
            got += n
        if time.monotonic() > conn.linger_until:
            return conn.close_now()
        self._park(conn)

    def _park(self, conn):
        """Wait in the selector for input, with no thread (cheroot closes it after `timeout` idle)."""
        if not self.ready:
            return conn.close_now()
        conn.last_used = time.time()
        # Not ConnectionManager.put(): it hands a connection with buffered input straight back to
        # process_conn, and a lingering connection can have some.
        self._connections._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)

    def put_conn(self, conn):
        """After a kept-alive answer: its next request may already be gathered."""
        if self.ready and conn.rfile.raw.pending:
            return self.process_conn(conn)
        super().put_conn(conn)

    # -- the light pool -----------------------------------------------------------------------
    def _light_loop(self):
        while not self._stopped.is_set():
            try:
                conn = self._light.get(timeout=0.5)
            except queue.Empty:
                continue
            keep = False
            try:
                keep = conn.communicate()
            except Exception:  # communicate() handles its own errors; this is the last resort
                log.exception("a request without a body failed")
            finally:
                if keep:
                    self.put_conn(conn)
                else:
                    conn.close()


class TokenBucket:
    """take() is True for up to `burst` calls at once and `rate` a second on average."""

    def __init__(self, burst, rate):
        self.burst, self.rate = float(burst), float(rate)
        self.tokens, self.t = self.burst, time.monotonic()

    def take(self, now):
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.t) * self.rate)
        self.t = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class _RawReader(socket.SocketIO):
    """The connection's reads: the bytes the selector thread gathered, then the socket, within
    the connection's current deadline."""

    def __init__(self, sock, conn):
        super().__init__(sock, "rb")
        self.conn = conn
        self.pending = bytearray()

    def readinto(self, b):
        if self.pending:
            n = min(len(b), len(self.pending))
            b[:n] = self.pending[:n]
            del self.pending[:n]
            return n
        n = self.conn.at_once(os.readv, [b])
        return n if n is not None else self.conn.transfer(super().readinto, b)


class _RawWriter(socket.SocketIO):
    def __init__(self, sock, conn):
        super().__init__(sock, "wb")
        self.conn = conn

    def write(self, b):
        n = self.conn.at_once(os.write, b)
        return n if n else self.conn.transfer(super().write, b)


class _Reader(makefile.StreamReader):
    def __init__(self, raw, bufsize):
        _pyio.BufferedReader.__init__(self, raw, bufsize)
        self.bytes_read = 0


class _Writer(makefile.StreamWriter):
    """cheroot's writer, which sends every write at once, plus a cork: corked, writes are kept
    until uncork() or the next uncorked write, so an answer's head and body leave in one send."""
    corked = False

    def __init__(self, raw, bufsize):
        makefile.BufferedWriter.__init__(self, raw, bufsize)
        self.bytes_written = 0

    def write(self, b):
        if not self.corked:
            return super().write(b)
        with self._write_lock:
            self._write_buf.extend(b)
        self.bytes_written += len(b)
        return len(b)

    def uncork(self):
        self.corked = False
        with self._write_lock:
            self._flush_unlocked()


class _Connection(cheroot_server.HTTPConnection):
    head_started = None     # time.monotonic() of the current request's first byte
    lingering = False
    linger_until = 0.0
    linger_wanted = False   # close() lingers: an answer went out before the request was read
    timed_out = False
    waiting = False         # a POST the shed let through, counted in Server._waiting until started

    def __init__(self, server, sock, makefile=None):
        # cheroot's __init__, minus its two lru_cache wrappers per connection (for the peer
        # credentials of a UNIX socket) and with the writer made when first used: the selector
        # thread makes one of these for every connection of a burst, and a refused upload never
        # writes through cheroot (with the shared 503 bytes, the selector's CPU per refusal went
        # from 130-170 to 60-90 us).
        self._clock = None  # (start, grace, rate) of the current transfer phase
        self._moved = 0
        self.server = server
        self.socket = sock
        self.rfile = _Reader(_RawReader(sock, self), self.rbufsize)
        self._wfile = None
        self.requests_seen = 0
        self.peercreds_enabled = server.peercreds_enabled
        self.peercreds_resolve_enabled = server.peercreds_resolve_enabled
        self.RequestHandlerClass = _Request

    @property
    def wfile(self):
        if self._wfile is None:
            self._wfile = _Writer(_RawWriter(self.socket, self), self.wbufsize)
        return self._wfile

    @wfile.setter
    def wfile(self, f):  # cheroot replaces it for a protocol upgrade
        self._wfile = f

    def clock(self, phase):
        """Start the deadline of a phase: "body" (reading it), "answer" (writing it) or None."""
        self._clock = None if phase is None else (time.monotonic(), BODY_GRACE, MIN_BODY_RATE)
        self._moved = 0

    def deadline(self):
        if self.head_started is not None:
            return self.head_started + HEADER_TIMEOUT
        if self._clock is not None:
            start, grace, rate = self._clock
            return start + grace + self._moved / float(rate)
        return None

    def at_once(self, op, b):
        """os.readv/os.write on the socket's fd if that needs no waiting (None if it would):
        one system call where a socket with a timeout makes three to five (poll, and two
        ioctls for the deadline's timeout)."""
        if self.socket.gettimeout() is None:
            return None  # a blocking socket (never here: cheroot gives each one a timeout)
        try:
            n = op(self.socket.fileno(), b)
        except BlockingIOError:
            return None
        if n:
            self._moved += n
        return n

    def transfer(self, op, b):
        """op(b) (a socket read or write) with the socket timeout cut to the phase's deadline."""
        deadline = self.deadline()
        if deadline is None:
            n = op(b)
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._too_slow()
            self.socket.settimeout(min(left, self.server.timeout))
            try:
                n = op(b)
            except socket.timeout:
                self.timed_out = True  # after a timeout the socket can no longer be read: close it
                raise
            finally:
                self.socket.settimeout(self.server.timeout)
        if n:
            self._moved += n
        return n

    def _too_slow(self):
        self.timed_out = True
        return socket.timeout("timed out")  # the text cheroot looks for to answer 408

    def communicate(self):
        self.started()
        return super().communicate()

    def started(self):
        """A thread has the request (or it was refused): it no longer waits (Server.shed)."""
        if self.waiting:
            self.waiting = False
            self.server.count_waiting(-1)

    def close(self):
        if self.linger_wanted and not self.lingering:
            self.linger_wanted = False
            return self.server.linger(self)
        self.close_now()

    def close_now(self):
        self.lingering = False
        cheroot_server.HTTPConnection.close(self)


class _Request(cheroot_server.HTTPRequest):
    def parse_request(self):
        conn = self.conn
        if conn.head_started is None:
            conn.head_started = time.monotonic()  # a pipelined request: its head is buffered
        try:
            super().parse_request()
        finally:
            conn.head_started = None

    def respond(self):
        conn = self.conn
        has_body = self.chunked_read or _content_length(self.inheaders) > 0
        if has_body:
            conn.clock("body")
        try:
            super().respond()
            if conn.wfile.corked:  # a head with no body after it
                conn.wfile.uncork()
        finally:
            conn.wfile.corked = False  # after an error cheroot closes the connection
            conn.clock(None)
            if has_body and self.close_connection:
                conn.linger_wanted = True

    def send_headers(self):
        asked_close = any(k.lower() == b"connection" and v.lower() == b"close" for k, v in self.outheaders)
        if asked_close or self.conn.timed_out:
            self.close_connection = True  # and cheroot then does not wait for an unread body
        self.conn.clock("answer")
        self.conn.wfile.corked = True  # the head goes out with the body's first bytes (write())
        super().send_headers()

    def write(self, chunk):
        self.conn.wfile.corked = False
        super().write(chunk)

    def simple_response(self, status, msg=""):
        """cheroot's own answers (bad request line, 408, 414, 431, ...): the JSON envelope."""
        err = _server_error(int(str(status)[:3]), msg)
        self.close_connection = True
        self.conn.linger_wanted = True
        self.conn.clock("answer")
        try:
            self.conn.wfile.write(error_response(err))
        except socket.error as ex:
            if ex.args[0] not in cheroot_errors.socket_errors_to_ignore:
                raise


def raise_priority(nice, who):
    """Give the calling thread (Linux: nice is per thread) a higher CPU priority, or log why not."""
    if nice >= 0 or not sys.platform.startswith("linux") or not hasattr(threading, "get_native_id"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as e:
        log.info("%s keeps its CPU priority (nice %d, not %d): %s; run as root or raise RLIMIT_NICE"
                 " (ulimit -e, systemd LimitNICE=)", who, os.getpriority(os.PRIO_PROCESS, 0), nice,
                 e.strerror)


_ERROR_RESPONSES = {}  # error_response's answers: in a burst of refusals they are all the same 503
_ERROR_RESPONSES_MAX = 64


def error_response(err):
    """A whole HTTP/1.1 response (Connection: close) carrying err's envelope."""
    retry = retry_after_header(err)
    key = (type(err), err.status, err.code, err.msg, retry)
    out = _ERROR_RESPONSES.get(key)
    if out is not None:
        return out
    body = dumps(failure(err.code, err.msg)).encode("utf-8")
    try:
        phrase = http.HTTPStatus(err.status).phrase
    except ValueError:
        phrase = "Error"
    headers = [("Content-Type", JSON_TYPE), ("Connection", "close")] + SECURITY_HEADERS
    if retry is not None:
        headers.append(("Retry-After", retry))
    out = _response(err.status, headers, body, phrase)
    if len(_ERROR_RESPONSES) >= _ERROR_RESPONSES_MAX:
        _ERROR_RESPONSES.clear()
    _ERROR_RESPONSES[key] = out
    return out


def _response(status, headers, body, phrase=None):
    """A whole HTTP/1.1 response as bytes; Content-Length is added here."""
    if phrase is None:
        phrase = http.HTTPStatus(status).phrase
    headers = list(headers) + [("Content-Length", str(len(body)))]
    head = "HTTP/1.1 %d %s\r\n%s\r\n\r\n" % (status, phrase, "\r\n".join("%s: %s" % h for h in headers))
    return head.encode("latin-1") + body


def _timeout_error():
    return RequestTimeout("the request arrived too slowly: its headers and first %d KB must arrive within %d s, "
                          "the rest of a body at %d KB/s or faster"
                          % (BODY_PREFETCH // 1024, HEADER_TIMEOUT, MIN_BODY_RATE // 1024))


def _server_error(status, msg):
    if status == 408:
        return _timeout_error()
    if status == 414:
        err = TooLarge("the request line (URL) is too long: the request line and headers may take "
                       "%d bytes at most" % MAX_HEADER_BYTES)
        err.status = 414
        return err
    if status == 413:  # cheroot says 413 when the headers are over max_request_header_size
        err = TooLarge("the request headers are too large: the request line and headers may take "
                       "%d bytes at most" % MAX_HEADER_BYTES)
        err.status = 431
        return err
    if status == 405:
        return MethodNotAllowed("method not allowed: %s" % (msg or "use GET or POST"))
    if status == 503:
        return Busy("every HTTP thread is busy; retry in a moment", retry_after=1)
    if status >= 500 and status not in (501, 505):
        return Internal("internal error; the details are in the server log")
    # 400 and the protocol refusals (501 unknown Transfer-Encoding, 505 HTTP version): the
    # client sent something malformed, and the envelope says what.
    return BadRequest("malformed HTTP request: %s" % (msg or http.HTTPStatus(status).phrase))


def _head_end(buf):
    """Index just past the blank line that ends a request head, or -1."""
    i = buf.find(b"\r\n\r\n")
    if i >= 0:
        return i + 4
    i = buf.find(b"\n\n")  # not HTTP, but let cheroot say so at once instead of a 408 later
    return i + 2 if i >= 0 else -1


def _request_info(head):
    """(body, prefetch) of a request head: body is 0 (none), a length, or None (chunked or
    malformed: a thread sorts it out); prefetch is how many body bytes to gather first."""
    body, expect = 0, False
    for line in head.split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name, value = name.strip().lower(), value.strip()
        if name == b"transfer-encoding":
            body = None
        elif name == b"content-length" and body is not None:
            body = int(value) if value.isdigit() else None
        elif name == b"expect":
            expect = True  # the client waits for "100 Continue" (a thread sends it) before its body
    prefetch = 0 if (body is None or expect) else min(body, BODY_PREFETCH)
    return body, prefetch


def _quick_request(head):
    """For a request head: None if it is not for Server.quick (not a plain, well-formed HTTP/1.1
    GET with a Host; a body; an Origin that CORS must answer), else (target, whether the client
    asked to close the connection). Anything unusual is left to cheroot, which says what is wrong."""
    if head.count(b"\n") != head.count(b"\r\n"):
        return None
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] != b"GET" or parts[2] != b"HTTP/1.1":
        return None
    close = host = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            return None
        name, value = name.lower(), value.strip().lower()
        if name in (b"content-length", b"transfer-encoding", b"expect", b"origin") and value not in (b"", b"0"):
            return None
        host = host or name == b"host"
        close = close or (name == b"connection" and value == b"close")
    return (parts[1], close) if host else None


_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


_date = [0, ""]


def _http_date():
    """The Date header's value, formatted once a second."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, email.utils.formatdate(now, usegmt=True)]
    return _date[1]


def _still_wanted(pending):
    """How many more bytes the selector should gather before a thread takes the request (0: none)."""
    end = _head_end(pending)
    if end < 0:
        return max(0, MAX_HEADER_BYTES + 1 - len(pending))
    return max(0, end + _request_info(bytes(pending[:end]))[1] - len(pending))


def _content_length(headers):
    try:
        return int(headers.get(b"Content-Length", 0))
    except ValueError:
        return 0
