"""What edgeapp relies on in cheroot (all of it used in edgeapp/httpd/cheroot_adapter.py) is
still there and still behaves so. On a cheroot whose internals moved these fail first, and say
what moved, before the hostile and load tests fail in ways that are harder to read."""
import inspect
import socket

import cheroot
import pytest
from cheroot import errors as cheroot_errors
from cheroot import server as cheroot_server
from cheroot import wsgi as cheroot_wsgi

from edgeapp.httpd import Limits, cheroot_adapter
from edgeapp.httpd.connection import Connection


def relied_on(ok, what):
    assert ok, ("cheroot %s: %s. edgeapp/httpd/cheroot_adapter.py was written against cheroot %s: "
                "adapt it (or pin cheroot back)" % (cheroot.__version__, what, cheroot_adapter.TESTED_WITH))


def test_the_classes_and_methods_the_adapter_uses_exist():
    relied_on(inspect.isclass(getattr(cheroot_server, "HTTPRequest", None)), "cheroot.server.HTTPRequest is gone")
    request = cheroot_server.HTTPRequest
    for name in ("parse_request", "respond", "send_headers", "write", "simple_response", "ensure_headers_sent",
                 "read_request_line", "read_request_headers"):
        relied_on(callable(getattr(request, name, None)), "HTTPRequest.%s() is gone" % name)
    params = list(inspect.signature(request.__init__).parameters)
    relied_on(params[:3] == ["self", "server", "conn"], "HTTPRequest(server, conn) takes %s now" % params)
    params = list(inspect.signature(request.simple_response).parameters)
    relied_on(params[:3] == ["self", "status", "msg"], "HTTPRequest.simple_response takes %s now" % params)
    gateway = getattr(cheroot_wsgi, "Gateway_10", None)
    relied_on(inspect.isclass(gateway) and gateway.version == (1, 0), "cheroot.wsgi.Gateway_10 (WSGI 1.0) is gone")
    for name in ("get_environ", "respond", "start_response", "write"):
        relied_on(callable(getattr(gateway, name, None)), "Gateway_10.%s() is gone" % name)
    relied_on(isinstance(getattr(cheroot_errors, "socket_errors_to_ignore", None), (list, tuple, set)),
              "cheroot.errors.socket_errors_to_ignore is gone")


class _Server:
    """The little of httpd.Server that a Connection and the adapter's view read."""
    limits = Limits(max_header_bytes=1024)
    server_name = "edgeapp-test"
    bind_addr = ("127.0.0.1", 8080)
    app = None

    def can_keep_alive(self):
        return True


class _RecordingView(cheroot_adapter.CherootView):
    """The adapter's view, noting every setting cheroot's request reads from it."""

    def __init__(self, server, seen):
        super().__init__(server)
        object.__setattr__(self, "seen", seen)

    def __getattribute__(self, name):
        if not name.startswith("__") and name not in ("seen", "httpd", "limits"):
            object.__getattribute__(self, "seen").add(name)
        return object.__getattribute__(self, name)


def _exchange(data, app=None):
    """data sent on a socketpair and answered by the adapter on our Connection: (the request,
    the bytes answered, the settings cheroot read, communicate()'s keep)."""
    server, seen = _Server(), set()
    server.app = app
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        conn = Connection(server, ours, ("127.0.0.1", 50000))
        view = _RecordingView(server, seen)
        theirs.sendall(data)
        theirs.shutdown(socket.SHUT_WR)
        keep = cheroot_adapter.communicate(view, conn)
        theirs.settimeout(5)
        out = b""
        ours.shutdown(socket.SHUT_WR)
        while True:
            chunk = theirs.recv(65536)
            if not chunk:
                break
            out += chunk
    return out, seen, keep


def _app(environ, start_response):
    body = environ["wsgi.input"].read()
    out = ("%s %s %s %s %d" % (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"],
                               environ.get("CONTENT_TYPE"), len(body))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


def test_cheroot_reads_only_the_settings_the_adapter_provides():
    # Every setting the request and the gateway read is one CherootView has (else: a loud
    # AttributeError naming it), and those that carry our limits are still read.
    out, seen, keep = _exchange(b"POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: image/jpeg\r\n"
                                b"Content-Length: 5\r\n\r\nabcde", app=_app)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"POST /a/b x=1 image/jpeg 5"), out
    assert b"Server: edgeapp-test\r\n" in out and keep
    unknown = seen - set(cheroot_adapter.SERVER_SETTINGS)
    relied_on(not unknown, "its request reads the server's %s, which the adapter does not provide" % sorted(unknown))
    for name in ("max_request_header_size", "max_request_body_size", "wsgi_app", "can_add_keepalive_connection"):
        relied_on(name in seen, "its request no longer reads the server's %s: edgeapp's setting is ignored" % name)


@pytest.mark.parametrize("data, status", [
    (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", b"414"),                 # max_header_bytes
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 2000 + b"\r\n\r\n", b"431"),
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nx", b"400"),       # 501 from cheroot
])
def test_cheroot_s_own_answers_become_the_json_envelope(data, status):
    out, _, keep = _exchange(data, app=_app)
    relied_on(out.startswith(b"HTTP/1.1 " + status + b" "), "a request it refuses was answered %r" % out[:80])
    assert b"Content-Type: application/json; charset=utf-8\r\n" in out and b'"code":' in out and not keep


def test_a_chunked_body_and_http_1_0_keep_alive_still_parse():
    out, _, keep = _exchange(b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", app=_app)
    relied_on(out.endswith(b"POST /c  None 5"), "a chunked body read as %r" % out[-40:])
    out, _, keep = _exchange(b"GET /k HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", app=_app)
    relied_on(b"Connection: Keep-Alive\r\n" in out and b"Keep-Alive: timeout=10\r\n" in out and keep,
              "an HTTP/1.0 keep-alive answer is %r" % out[:200])


def test_a_setting_the_adapter_lacks_is_named_loudly():
    view = cheroot_adapter.CherootView(_Server())
    with pytest.raises(AttributeError, match="'keep_alive_conn_limit'.*cheroot_adapter.py.*written against cheroot"):
        view.keep_alive_conn_limit
