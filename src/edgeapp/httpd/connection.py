"""One client connection: its socket, the input gathered so far, the deadline of what it is
doing, and how it ends (closed, or lingering so the client can read an early answer).

The socket is non-blocking from accept on. The selector thread appends to the Inbox without
waiting; a request thread reads and writes through receive_into()/send(), which take what the
socket has in one system call and otherwise wait (poll) until the current phase's deadline:
  - the head: header_timeout from the request's first byte;
  - the body, then the answer: body_grace, then min_body_rate on average;
  - and no single wait longer than idle_timeout.
A missed deadline is socket.timeout("timed out"): cheroot's parser and the application answer
it with 408, and the connection is not kept (a request cut off half-way cannot be resumed).
"""
import os
import select
import socket
import sys
import time

from edgeapp.httpd import cheroot_adapter

_READ_SIZE = 64 * 1024  # bytes asked of the socket per read when the size is not known


class Connection:
    ssl_env = None  # plain HTTP (cheroot's WSGI gateway reads it)

    def __init__(self, server, sock, addr):
        self.server = server  # the httpd Server: limits, linger(), count_waiting(), view
        self.limits = server.limits
        self.socket = sock
        self.fd = sock.fileno()
        self.remote_addr, self.remote_port = addr[:2] if isinstance(addr, tuple) else ("", 0)
        self.rfile = Inbox(self)
        self._wfile = None  # made when first written: a refused connection never needs one
        self._poll = None
        self.last_used = time.monotonic()
        self.head_started = None  # time.monotonic() of the current request's first byte
        self.lingering = False
        self.linger_until = 0.0
        self.linger_wanted = False  # close() lingers: an answer went out before the request was read
        self.timed_out = False
        self.waiting = False  # a POST the shed let through, counted in Server.waiting until started
        self._clock = None  # (start, grace, rate) of the current transfer phase
        self._moved = 0

    @property
    def wfile(self):
        if self._wfile is None:
            self._wfile = Outbox(self)
        return self._wfile

    # -- deadlines --------------------------------------------------------------------------
    def clock(self, phase):
        """Start the deadline of a phase: "body" (reading it), "answer" (writing it) or None."""
        limits = self.limits
        self._clock = None if phase is None else (time.monotonic(), limits.body_grace, limits.min_body_rate)
        self._moved = 0

    def deadline(self):
        if self.head_started is not None:
            return self.head_started + self.limits.header_timeout
        if self._clock is not None:
            start, grace, rate = self._clock
            return start + grace + self._moved / float(rate)
        return None

    def wait(self, event):
        """Wait (in a request thread) until the socket is ready for event (select.POLLIN or
        POLLOUT), within the deadline; socket.timeout past it."""
        left = self.limits.idle_timeout
        deadline = self.deadline()
        if deadline is not None:
            left = min(left, deadline - time.monotonic())
        if left > 0:
            if self._poll is None:
                self._poll = select.poll()
            self._poll.register(self.fd, event)
            if self._poll.poll(left * 1000.0):
                return
        self.timed_out = True  # after a timeout the request cannot go on: the connection is closed
        raise socket.timeout("timed out")  # the text cheroot's parser answers with 408

    # -- input and output, for a request thread -----------------------------------------------
    def receive_into(self, view):
        """Read into view what the socket has (waiting for some); 0 at the end of the input."""
        n = self._when_ready(os.readv, [view], select.POLLIN)
        self._moved += n
        return n

    def receive(self, size):
        """Up to size bytes the socket has (waiting for some); b"" at the end of the input."""
        data = self._when_ready(os.read, size, select.POLLIN)
        self._moved += len(data)
        return data

    def send(self, data):
        """Send all of data: one system call when the socket buffer takes it."""
        with memoryview(data) as view:
            while view:
                n = self._when_ready(os.write, view, select.POLLOUT)
                self._moved += n
                view = view[n:]

    def _when_ready(self, op, arg, event):
        """op(fd, arg), a read or write on the non-blocking socket: at once if the socket is
        ready (one system call, where a socket with a timeout makes three to five), else after
        waiting for it within the deadline."""
        while True:
            try:
                return op(self.fd, arg)
            except BlockingIOError:
                self.wait(event)

    # -- a request thread's turn, and the end -------------------------------------------------
    def communicate(self):
        """Read one request and answer it; True to keep the connection for another."""
        self.started()
        return cheroot_adapter.communicate(self.server.view, self)

    def started(self):
        """A thread has the request (or it was refused): it no longer waits (Server.waiting)."""
        if self.waiting:
            self.waiting = False
            self.server.count_waiting(-1)

    def close(self):
        """After a request thread's turn: linger if the answer went out before the request was
        read (413, 408, ...), so the client reads it instead of a reset; else close."""
        if self.linger_wanted and not self.lingering:
            self.linger_wanted = False
            return self.server.linger(self)
        self.close_now()

    def close_now(self):
        self.lingering = False
        try:
            self.socket.shutdown(socket.SHUT_RDWR)  # the FIN now, whoever else holds the socket
        except OSError:
            pass  # the client has gone already
        self.socket.close()


class Inbox:
    """A connection's input: the bytes the selector thread gathered (pending), then the socket.
    As much of a binary file as cheroot's parser and the WSGI input use: read(n), readline(n)."""

    def __init__(self, conn):
        self.conn = conn
        self.pending = bytearray()

    def has_data(self):
        return bool(self.pending)

    def read(self, size=-1):
        """size bytes, fewer only at the end of the input (as a buffered file reads)."""
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self.pending))
        if len(self.pending) >= size:
            return self._take(size)
        out = bytearray(size)
        n = len(self.pending)
        out[:n] = self.pending
        self.pending.clear()
        with memoryview(out) as view:
            while n < size:
                got = self.conn.receive_into(view[n:])
                if not got:
                    break
                n += got
        del out[n:]
        return bytes(out)

    def readline(self, size=-1):
        limit = size if size is not None and size >= 0 else sys.maxsize
        while True:
            i = self.pending.find(b"\n", 0, limit)
            if i >= 0:
                return self._take(i + 1)
            if len(self.pending) >= limit or not self._fill():
                return self._take(min(limit, len(self.pending)))

    def close(self):
        pass  # the connection owns the socket

    def _fill(self):
        data = self.conn.receive(_READ_SIZE)
        self.pending += data
        return bool(data)

    def _take(self, n):
        buf = self.pending
        if n >= len(buf):
            out = bytes(buf)
            buf.clear()
            return out
        with memoryview(buf) as view:
            out = view[:n].tobytes()
        del buf[:n]
        return out


class Outbox:
    """A connection's output. Every write goes out at once, except while corked: then writes are
    kept until uncork() or the next uncorked write, so an answer's head and body leave in one send
    (one system call, and one TCP segment for a small answer)."""
    corked = False

    def __init__(self, conn):
        self.conn = conn
        self.held = bytearray()

    def write(self, data):
        if self.corked or self.held:
            self.held += data
            if self.corked:
                return len(data)
            data, self.held = self.held, bytearray()
        self.conn.send(data)
        return len(data)

    def uncork(self):
        self.corked = False
        if self.held:
            data, self.held = self.held, bytearray()
            self.conn.send(data)

    def flush(self):
        pass  # nothing is kept uncorked

    def close(self):
        pass
