"""HTTP at the byte level, for what requests will not send: lying lengths, oversized heads, garbage."""
import http.client
import json
import socket
import weakref


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "Reply(%s, %r)" % (self.status, self.body[:200])


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


_readers = weakref.WeakKeyDictionary()  # one buffered reader per socket: it reads ahead


def read_reply(sock, method="GET"):
    """The next HTTP response on sock (raises on a reset, or on a close without a response)."""
    fp = _readers.get(sock)
    if fp is None:
        fp = _readers[sock] = sock.makefile("rb")
    line = fp.readline(65537)
    if not line:
        raise http.client.RemoteDisconnected("closed without a response")
    status = int(line.split(b" ", 2)[1])
    headers = {}
    while True:
        h = fp.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    n = 0 if method == "HEAD" else int(headers.get("content-length", 0))
    body = fp.read(n)
    if len(body) < n:
        raise http.client.IncompleteRead(body, n - len(body))
    return Reply(status, headers, body)


def exchange(port, data, timeout=10, half_close=False, method="GET"):
    """Send data (bytes) on a new connection, read one response, close."""
    with connect(port, timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return read_reply(s, method)


def request_bytes(method, target, headers=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1"] + ["%s: %s" % h for h in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
