"""THE ADAPTER TO CHEROOT: every name of cheroot that edgeapp uses is in this module, and only here.

edgeapp runs its own accept/select loop, connections and request threads (poller.py,
connection.py, workers.py). cheroot parses each request and runs the WSGI application, through
its public classes only: server.HTTPRequest (subclassed below, so that its reads and writes keep
the connection's deadlines and its own answers are edgeapp's JSON envelope) and wsgi.Gateway_10.
A cheroot request reads a few settings from its "server"; CherootView is that server, with
exactly those. No private name of cheroot is used.

tests/test_cheroot_adapter.py checks the names, signatures and settings relied on here and fails
loudly, saying what moved, on a cheroot that differs (this was written against TESTED_WITH).
"""
import logging
import socket
import time

from cheroot import errors as cheroot_errors
from cheroot import server as cheroot_server
from cheroot import wsgi as cheroot_wsgi

from edgeapp.httpd.answers import error_response, server_error

log = logging.getLogger("edgeapp.http")

TESTED_WITH = "11.1.2"
# What HTTPRequest and Gateway_10 read from their server (CherootView provides each one).
SERVER_SETTINGS = ("protocol", "ssl_adapter", "max_request_header_size", "max_request_body_size", "gateway",
                   "wsgi_app", "server_name", "software", "bind_addr", "timeout", "can_add_keepalive_connection")


class CherootView:
    """The server as cheroot's request and WSGI gateway see it."""
    protocol = "HTTP/1.1"
    ssl_adapter = None
    max_request_body_size = 0  # no limit here: the application checks (EDGEAPP_MAX_BODY_BYTES)
    gateway = cheroot_wsgi.Gateway_10

    def __init__(self, server):
        self.httpd = server
        self.limits = server.limits
        self.wsgi_app = server.app
        self.server_name = self.software = server.server_name
        self.max_request_header_size = server.limits.max_header_bytes
        self.timeout = int(round(server.limits.idle_timeout))  # "Keep-Alive: timeout=N" to HTTP/1.0 clients

    @property
    def bind_addr(self):
        return self.httpd.bind_addr

    @property
    def can_add_keepalive_connection(self):
        return self.httpd.can_keep_alive()

    def __getattr__(self, name):
        raise AttributeError("cheroot's request asked its server for %r, which edgeapp's adapter "
                             "(edgeapp/httpd/cheroot_adapter.py) does not provide: it was written against "
                             "cheroot %s, and this cheroot's internals differ" % (name, TESTED_WITH))


def communicate(view, conn):
    """One request on conn, parsed and answered by a Request; True to keep the connection.
    (cheroot's HTTPConnection.communicate does this for its own connections.)"""
    req = None
    try:
        req = Request(view, conn)
        req.parse_request()
        if not req.ready:
            return False  # malformed: answered by simple_response, and the connection closes
        req.respond()
        return not req.close_connection
    except socket.timeout:
        _answer_error(req, "408 Request Timeout")
    except OSError as e:
        if e.args[0] not in cheroot_errors.socket_errors_to_ignore:
            log.warning("socket error %r", e.args[0], exc_info=True)
            _answer_error(req, "500 Internal Server Error")
    except Exception as e:
        log.error("%r", e, exc_info=True)
        _answer_error(req, "500 Internal Server Error")
    return False


def _answer_error(req, status):
    """An error answer, unless the answer had already begun (then the connection just closes)."""
    if req is None or req.sent_headers:
        return
    try:
        req.simple_response(status)
    except OSError:
        pass  # the client has gone


class Request(cheroot_server.HTTPRequest):
    """cheroot's request, on edgeapp's connection: the head, body and answer each within their
    deadline (Connection.clock), the answer's head and body in one send, and the answers cheroot
    gives by itself as edgeapp's JSON envelope."""

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
            conn.wfile.corked = False  # after an error the connection closes
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
        err = server_error(int(str(status)[:3]), msg, self.server.limits)
        self.close_connection = True
        self.conn.linger_wanted = True
        self.conn.clock("answer")
        try:
            self.conn.wfile.write(error_response(err))
        except OSError as ex:
            if ex.args[0] not in cheroot_errors.socket_errors_to_ignore:
                raise


def _content_length(headers):
    try:
        return int(headers.get(b"Content-Length", 0))
    except ValueError:
        return 0
