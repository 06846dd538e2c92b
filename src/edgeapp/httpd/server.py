"""The HTTP server: the listening socket, the selector thread (poller.py) and the two pools of
request threads (workers.py), put together; see the package's docstring for what it defends."""
import logging
import os
import socket
import sys
import threading

from edgeapp.httpd.answers import busy_error
from edgeapp.httpd.cheroot_adapter import CherootView
from edgeapp.httpd.limits import Limits
from edgeapp.httpd.poller import Poller
from edgeapp.httpd.workers import Workers

log = logging.getLogger("edgeapp.http")


class Server:
    """A WSGI server. prepare() listens and starts the request threads; serve() runs the selector
    loop in the calling thread until stop().

    threads: request threads for requests with a body; queue_size: gathered requests waiting for
    one of them (beyond: an immediate 503); backlog: connections the kernel holds until accepted.
    shed(method, target, waiting) -> an error to answer at once from the request line, or None;
    waiting: POSTs handed to the threads that none has started yet (a burst of uploads must not
    all pass before one starts). quick(method, target, peer) -> (status, headers, body) the
    application answers from the request line alone (peer: the client's address), in the selector
    thread, or None. Neither may ever wait. refused(err): told of each error the server answers by
    itself, without a thread (shed's, no thread free, a timeout), in the selector thread.
    (Measured with quick for GET /api/health: p50 2.1 -> 0.9 ms idle, p99 23 -> 12 ms under load.)
    limits: a Limits (timeouts, sizes, the selector's priority)."""

    def __init__(self, bind_addr, app, threads=8, queue_size=32, backlog=128, server_name="edgeapp",
                 shutdown_timeout=5.0, shed=None, quick=None, limits=None, refused=None):
        self.limits = limits or Limits()
        self.app = app
        self.server_name = server_name
        self.shed = shed
        self.quick = quick
        self.refused = refused
        self.backlog = backlog
        self.shutdown_timeout = shutdown_timeout
        self._bind_addr = bind_addr
        self.view = CherootView(self)
        self.workers = Workers("http", threads, queue_size, self.finish)
        self.light = Workers("http-light", self.limits.light_threads, self.limits.light_queue, self.finish)
        self.poller = None
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    @property
    def bind_addr(self):
        """(host, port) listened on: the real port once prepare() bound port 0."""
        if self.poller is not None:
            return self.poller.listener.getsockname()[:2]
        return self._bind_addr

    @property
    def waiting(self):
        return self._waiting

    def prepare(self):
        """Listen, and start the request threads (at the caller's CPU priority)."""
        self.poller = Poller(self, listen(self._bind_addr, self.backlog))
        self.workers.start()
        self.light.start()

    def serve(self):
        """The selector loop, in the calling thread, until stop()."""
        raise_priority(self.limits.selector_nice, "the selector thread")
        self.poller.run()

    def stop(self):
        """Stop accepting, close the waiting connections, let requests in progress finish
        (shutdown_timeout)."""
        if self.poller is not None:
            self.poller.stop()
        self.light.stop(self.shutdown_timeout)
        self.workers.stop(self.shutdown_timeout)

    # -- for the poller and the connections ----------------------------------------------------
    def dispatch(self, conn, body):
        """Hand a gathered request to a thread: one without a body to the light pool while it has
        room (slow uploads never make /api/health wait); no room anywhere is an immediate 503."""
        if not body:
            conn.waiting = False  # not an upload: not counted (its thread would uncount it)
            if self.light.offer(conn):
                return
        if conn.waiting:
            self.count_waiting(1)
        if not self.workers.offer(conn):
            conn.started()
            self.poller.refuse(conn, busy_error())

    def finish(self, conn, keep):
        """A request thread is done with conn."""
        if keep:
            self.poller.put_back(conn)
        else:
            conn.close()

    def linger(self, conn):
        self.poller.linger(conn)

    def count_waiting(self, n):
        with self._waiting_lock:
            self._waiting += n

    def can_keep_alive(self):
        return self.poller.parked() < self.limits.keep_alive_limit


def listen(bind_addr, backlog):
    """A non-blocking listening TCP socket on bind_addr ((host, port); "::" takes IPv4 too)."""
    host, port = bind_addr[:2]
    family, _, _, _, addr = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                               socket.AI_PASSIVE)[0]
    dual = family == socket.AF_INET6 and host in ("::", "::0") and socket.has_dualstack_ipv6()
    sock = socket.create_server(addr, family=family, backlog=backlog, dualstack_ipv6=dual)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    sock.setblocking(False)
    return sock


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
