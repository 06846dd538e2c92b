"""The selector thread: accepts connections, gathers each request head without a thread, answers
what it can right there (GET /api/health, refusals), hands the rest to the request threads, drops
the input of refused requests, and reaps connections past their deadlines. It never blocks.

Its own selectors loop on public APIs, as gunicorn's gthread worker runs its poller: connections
wait registered in the selector, data=the Connection; the listening socket is registered with
data=None. Request threads put connections back (keep-alive, lingering) by registering them too:
register/unregister and walks of the map hold `lock`; select() runs without it.
"""
import errno
import logging
import os
import selectors
import socket
import threading
import time

from edgeapp.httpd import heads
from edgeapp.httpd.answers import error_response, http_date, response_bytes, timeout_error
from edgeapp.httpd.connection import Connection
from edgeapp.httpd.refusals import HeldRefusals

log = logging.getLogger("edgeapp.http")


class Poller:
    """The selector thread's state and loop (run); stop() ends it from another thread."""

    def __init__(self, server, listener):
        self.server = server  # the httpd Server: dispatch(), shed, quick, waiting, server_name
        self.limits = server.limits
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener.fileno(), selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.closed = False  # under lock: nothing is parked any more (stopping)
        self.stopping = False
        self.started = False  # run() has begun
        self.done = threading.Event()  # run() has ended and closed everything
        self.scratch = bytearray(1024 * 1024)  # dropped input lands here where limits.drop_flags is 0
        self.refusals = HeldRefusals(self.limits)
        self._accept_error_logged = 0.0

    # -- the loop -----------------------------------------------------------------------------
    def run(self):
        self.started = True
        next_sweep = time.monotonic() + self.limits.sweep_interval
        try:
            while not self.stopping:
                now = time.monotonic()
                timeout = max(0.0, min(next_sweep, self.refusals.next_due(next_sweep)) - now)
                turn = self.select(timeout)
                self.refuse_due(time.monotonic())
                for conn in turn:
                    if conn is None:
                        self.accept_burst()
                    else:
                        self.handle(conn)
                now = time.monotonic()
                if now >= next_sweep:
                    self.sweep(now)
                    next_sweep = now + self.limits.sweep_interval
        finally:
            self.close_all()

    def stop(self, timeout=2.0):
        """Ends run() within a turn (at most sweep_interval); closes everything if it never ran."""
        self.stopping = True
        if not self.started or not self.done.wait(timeout):
            self.close_all()

    def select(self, timeout):
        """This turn's connections (None: the listener): new connections and requests first, then at
        most drains_per_turn lingering ones to drop input from. Under a flood of uploads the drops
        were most of a turn and new heads waited behind them; the other lingering connections stay
        registered, ready for the next turns."""
        fresh, drops = [], []
        for key, _ in self.selector.select(timeout):
            conn = key.data
            (drops if conn is not None and conn.lingering else fresh).append(conn)
        turn = fresh + drops[:self.limits.drains_per_turn]
        with self.lock:
            for conn in turn:
                if conn is not None:
                    self.selector.unregister(conn.fd)
        return turn

    def accept_burst(self):
        """Every waiting connection up to accept_burst, not one per turn: under a flood of uploads
        a turn is slow (dropping refused bodies), and new heads waited in the backlog (measured
        with 64 clients x 4 MB: 45 ms at the median; 33 ms with the burst)."""
        for _ in range(self.limits.accept_burst):
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno not in (errno.ECONNABORTED, errno.EPROTO):
                    self._accept_failed(e)
                    return
                continue
            sock.setblocking(False)
            self.handle(Connection(self.server, sock, addr))

    def _accept_failed(self, e):
        now = time.monotonic()
        if now - self._accept_error_logged > 10.0:  # EMFILE repeats every turn until fds free up
            self._accept_error_logged = now
            log.warning("cannot accept a connection: %s", e)

    # -- a connection with input: gather, answer here, or hand over ---------------------------
    def handle(self, conn):
        """A new connection, or one with input (or a kept one with a request already buffered):
        gather its head and first body bytes without waiting, then answer it here (quick path,
        refusal) or hand it to a thread."""
        if conn.lingering:
            return self.drain(conn)
        pending = conn.rfile.pending
        want = self._gather(conn)
        if want is None:
            return  # closed
        end = heads.head_end(pending)
        if end >= 0 and self.server.shed is not None and not self._admit(conn):
            return
        if end >= 0 and self.server.quick is not None and self._answer_quick(conn, end):
            return
        if want:
            if conn.head_started is not None and time.monotonic() - conn.head_started > self.limits.header_timeout:
                return self.refuse(conn, timeout_error(self.limits))
            return self.park(conn)
        # A head (and body prefix), or a head over the limit: a thread answers 414/431 from what is here.
        body = end < 0 or heads.request_info(bytes(pending[:end]), self.limits.body_prefetch)[0] != 0
        self.server.dispatch(conn, body)

    def _gather(self, conn):
        """Read what has arrived of the head and body prefix; how many more bytes are wanted
        (0: none, or the input ended with half a request: a thread says what was missing), or
        None if the connection was closed without a request."""
        pending = conn.rfile.pending
        want = heads.still_wanted(pending, self.limits)
        if not want:
            return 0
        try:
            data = os.read(conn.fd, min(want, 65536))  # non-blocking: what is there
        except BlockingIOError:
            return want
        except OSError:
            data = b""
        if not data:
            if not pending:
                conn.close_now()  # closed without a request (or between two)
                return None
            return 0
        if conn.head_started is None:
            conn.head_started = time.monotonic()
        pending += data
        return heads.still_wanted(pending, self.limits)

    def _admit(self, conn):
        """Ask the shed about a request from its request line alone; False if it was refused
        (under overload: no thread, no parsing, the body is dropped)."""
        line = heads.request_line(conn.rfile.pending)
        err = self.server.shed(line[0], line[1], self.server.waiting) if line else None
        if err is not None:
            self.refuse_later(conn, err)
            return False
        conn.waiting = line is not None and line[0] == b"POST"
        return True

    def _answer_quick(self, conn, end):
        """Answer a bodiless HTTP/1.1 GET the application answers quickly (Server.quick) right
        here; False leaves it to a thread (anything else: other methods, bodies, CORS, HTTP/1.0)."""
        pending = conn.rfile.pending
        request = heads.quick_request(bytes(pending[:end]))
        if request is None:
            return False
        target, close = request
        answer = self.server.quick(b"GET", target, conn.remote_addr)
        if answer is None:
            return False
        status, headers, body = answer
        headers = list(headers) + [("Date", http_date()), ("Server", self.server.server_name)]
        out = response_bytes(status, headers + ([("Connection", "close")] if close else []), body)
        del pending[:end]
        conn.head_started = None
        try:
            sent = os.write(conn.fd, out)
        except OSError:
            sent = -1
        if sent != len(out) or close:
            conn.close_now()  # short only when the client reads none of its answers (a full buffer)
        elif pending:
            self.handle(conn)  # a pipelined request behind it
        else:
            self.park(conn)
        return True

    # -- waiting in the selector ----------------------------------------------------------------
    def park(self, conn):
        """Wait in the selector for input, without a thread."""
        conn.last_used = time.monotonic()
        with self.lock:
            if not self.closed:
                self.selector.register(conn.fd, selectors.EVENT_READ, conn)
                return
        conn.close_now()

    def put_back(self, conn):
        """A request thread is done with a kept connection: its next request may be buffered already."""
        if conn.rfile.pending:
            self.handle(conn)
        else:
            self.park(conn)

    def parked(self):
        """The number of connections waiting in the selector."""
        mapping = self.selector.get_map()
        return len(mapping) - 1 if mapping is not None else 0

    def close_all(self):
        with self.lock:
            self.closed = True
            mapping = self.selector.get_map()
            conns = [key.data for key in mapping.values() if key.data is not None] if mapping else []
            self.selector.close()
        for conn in conns + self.refusals.take_all():
            conn.close_now()
        self.listener.close()
        self.done.set()

    # -- refusals and lingering -----------------------------------------------------------------
    def refuse(self, conn, err):
        """Answer err without a thread and close after lingering (the request is never read)."""
        if self.server.refused is not None:
            self.server.refused(err)
        try:
            os.write(conn.fd, error_response(err))  # small: fits the socket buffer
        except OSError:
            return conn.close_now()
        self.linger(conn)

    def refuse_later(self, conn, err):
        """Refuse at once while refusals are few, else after shed_delay (HeldRefusals says why);
        a held connection waits without a thread and outside the selector."""
        if not self.refusals.hold(conn, err, time.monotonic()):
            self.refuse(conn, err)

    def refuse_due(self, now):
        for conn, err in self.refusals.due(now):
            self.refuse(conn, err)

    def linger(self, conn):
        """Send FIN, then read and drop input until the client closes (or linger_seconds)."""
        try:
            conn.socket.shutdown(socket.SHUT_WR)
        except OSError:
            return conn.close_now()
        conn.lingering = True
        conn.linger_until = time.monotonic() + self.limits.linger_seconds
        self.park(conn)

    def drain(self, conn):
        """Drop what has arrived, all of it (up to drain_burst): a 4 MB upload refused with 503
        is then dropped in a few reads, not 64 trips through the selector, each of which may wait
        for the GIL (measured: 503s to 64 clients sending 4 MB took 0.5 s at the median with
        64 KB per trip). MSG_TRUNC: Linux frees TCP input without copying it out (0.13-0.22 ->
        0.01-0.02 ms of CPU per MB here); new connections wait in the backlog while this runs."""
        got, flags = 0, self.limits.drop_flags
        while got < self.limits.drain_burst:
            try:
                n = conn.socket.recv_into(self.scratch, len(self.scratch), flags)
            except BlockingIOError:
                break
            except OSError:
                n = 0
            if n == 0:
                return conn.close_now()
            got += n
        if time.monotonic() > conn.linger_until:
            return conn.close_now()
        self.park(conn)

    # -- the reapers ----------------------------------------------------------------------------
    def sweep(self, now):
        """Twice a second: 408 for requests whose head is late; close what idled or lingered too
        long; and beyond max_parked, the longest idle."""
        limits = self.limits
        with self.lock:
            mapping = self.selector.get_map()
            parked = [key.data for key in mapping.values() if key.data is not None]
        late = [c for c in parked if not c.lingering and c.head_started is not None
                and now - c.head_started > limits.header_timeout]
        rest = [c for c in parked if c.lingering or c.head_started is None
                or now - c.head_started <= limits.header_timeout]
        expired = [c for c in rest if now - c.last_used > limits.idle_timeout
                   or (c.lingering and now > c.linger_until)]
        kept = sorted((c for c in rest if c not in expired), key=lambda c: c.last_used)
        excess = kept[:max(0, len(parked) - limits.max_parked)]
        self._unpark(late + expired + excess)
        for conn in late:
            self.refuse(conn, timeout_error(limits))
        for conn in expired + excess:
            conn.close_now()

    def _unpark(self, conns):
        with self.lock:
            for conn in conns:
                self.selector.unregister(conn.fd)
