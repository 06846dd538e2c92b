"""What the selector thread reads from a request head before any thread takes it: where the head
ends, whether a body follows and how much of it to gather, and whether the quick path may answer.
Only what it needs to decide; the full parsing (and saying what is wrong) is cheroot's, in a thread."""
import re

_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def head_end(buf):
    """Index just past the blank line that ends a request head, or -1."""
    i = buf.find(b"\r\n\r\n")
    if i >= 0:
        return i + 4
    i = buf.find(b"\n\n")  # not HTTP, but let the parser say so at once instead of a 408 later
    return i + 2 if i >= 0 else -1


def request_info(head, body_prefetch):
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
    prefetch = 0 if (body is None or expect) else min(body, body_prefetch)
    return body, prefetch


def still_wanted(pending, limits):
    """How many more bytes the selector should gather before a thread takes the request (0: none)."""
    end = head_end(pending)
    if end < 0:
        return max(0, limits.max_header_bytes + 1 - len(pending))
    return max(0, end + request_info(bytes(pending[:end]), limits.body_prefetch)[1] - len(pending))


def request_line(pending):
    """(method, target) of the request line at the start of pending, or None if it is malformed."""
    line = bytes(pending[:pending.find(b"\n")]).split()
    return (line[0], line[1]) if len(line) == 3 else None


def quick_request(head):
    """For a request head: None if it is not for the quick path (not a plain, well-formed HTTP/1.1
    GET with a Host; a body; an Origin that CORS must answer), else (target, whether the client
    asked to close the connection). Anything unusual is left to the parser, which says what is wrong."""
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
