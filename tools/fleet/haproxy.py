"""edgeapp-fleet haproxy: the HAProxy 2.6 configuration for a list of boards (issue 26).

    edgeapp-fleet haproxy board1:9876 board2:9876 ... [-o haproxy.cfg]
    edgeapp-fleet haproxy @boards.txt                  (one host:port a line, # comments)

Every line of the configuration is commented: it is meant to be read (README, "Fleet"). What it
does, in short: the boards' readiness (GET /api/health) takes a board out and brings it back;
requests go to the board with the fewest in flight; a request a board could not take (connection
refused or dropped, or its 503 "busy") is tried on another board, provided the balancer holds
the whole request (see RETRY_BODY_BYTES); when every board is busy the last board's 503 with its
Retry-After reaches the client; HAProxy's own errors are the boards' JSON envelope, never HTML.

Standard library only, Python 3.8+: it runs on a person's machine. The boards' defaults come from
edgeapp.config and the error codes from edgeapp.errors (both standard library only).
"""
import argparse
import os
import re
import socket
import sys

from tools.fleet.boards import DEFAULT_PORT, board_name, read_boards  # tools.fleet puts src/ on the path
from edgeapp import errors
from edgeapp.results import dumps, failure

try:
    from edgeapp.config import FIELDS
    REQUEST_TIMEOUT, MAX_BODY_BYTES = FIELDS["request_timeout"][1], FIELDS["max_body_bytes"][1]
except ImportError:  # a copy of tools/fleet without the service: its documented defaults
    REQUEST_TIMEOUT, MAX_BODY_BYTES = 30.0, 20 * 1024 ** 2

# Bodies up to this size are held whole by the balancer (tune.bufsize), so a board's 503 or a
# board dying mid-request sends them to another board; larger ones are streamed, and only a refused
# connection is retried for them. 1 MiB holds a 1080p camera snapshot (200-600 KB, a third more
# as base64). Memory: see the README's "Fleet" section (measured: about one buffer per request in
# flight; HAProxy never uses more than maxconn x 2 buffers).
RETRY_BODY_BYTES = 1024 ** 2
MAXCONN = 256             # connections the balancer holds at once (memory: maxconn x 2 buffers at most)
CHECK_INTERVAL = 2.0      # seconds between two health checks of a board
CHECK_TIMEOUT = 2.0       # a board answers /api/health from its selector thread in milliseconds
MARGIN = 10.0             # seconds the balancer waits beyond the boards' own request timeout
HEAD_TIMEOUT = 10.0       # the boards' own: seconds for a request's head (edgeapp.httpd.limits)
IDLE_TIMEOUT = 10.0       # the boards' own: seconds an idle keep-alive connection stays open
JSON_TYPE = "application/json; charset=utf-8"


def main(argv):
    args = parser().parse_args(argv)
    try:
        boards = board_list(args.boards)
    except (OSError, ValueError) as e:
        sys.stderr.write("edgeapp-fleet haproxy: %s\n" % e)
        return 2
    text = config_text(boards, args)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_aside(args.output, text)
        sys.stderr.write("wrote %s (%d boards); check it with: haproxy -c -f %s\n"
                         % (args.output, len(boards), args.output))
    return 0


def parser():
    p = argparse.ArgumentParser(prog="edgeapp-fleet haproxy",
                                description="The HAProxy 2.6 configuration for these boards.")
    p.add_argument("boards", nargs="+", metavar="BOARD",
                   help="host:port of a board (port %d if left out), or @FILE of them, one a line" % DEFAULT_PORT)
    p.add_argument("-o", "--output", metavar="FILE", help="write it here (aside, then renamed) instead of stdout")
    p.add_argument("--bind", default=":%d" % DEFAULT_PORT, help="[address]:port HAProxy listens on (default %(default)s)")
    p.add_argument("--name", default=_host_name(),
                   help="this balancer's name, sent with each health check (edgeapp-diag shows it; default: host name)")
    p.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT,
                   help="the boards' request_timeout, seconds (default %(default)s)")
    p.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                   help="the boards' max_body_bytes (default %(default)s)")
    p.add_argument("--retry-body-bytes", type=int, default=RETRY_BODY_BYTES,
                   help="bodies up to this size may be retried on another board (tune.bufsize; default %(default)s)")
    p.add_argument("--maxconn", type=int, default=MAXCONN, help="connections at once (default %(default)s)")
    p.add_argument("--check-interval", type=float, default=CHECK_INTERVAL,
                   help="seconds between health checks of a board (default %(default)s)")
    p.add_argument("--log", default="/dev/log", help="HAProxy's log target (default %(default)s; 'stderr' in tests)")
    return p


def board_list(items):
    """[(server name, host:port)] from host:port arguments and @FILEs of them (tools.fleet.boards)."""
    return [("board%d" % (i + 1), board_name(b)) for i, b in enumerate(read_boards(items))]


def _host_name():
    return re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "haproxy"


def write_aside(path, text):
    """Write text to path atomically: a file beside it, flushed and fsynced, then renamed."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---- the configuration: (directive, why) pairs, each why written as a comment above its line ----

def config_text(boards, args):
    """The whole configuration, every directive under its comment."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", args.name)[:40] or "haproxy"
    server_timeout = args.request_timeout + MARGIN
    sections = [
        ("global", global_section(args)),
        ("defaults", defaults_section(args, server_timeout)),
        ("frontend edgeapp", frontend_section(args, server_timeout)),
        ("backend boards", backend_section(boards, args, name)),
    ]
    out = ["# HAProxy 2.6 configuration for %d edgeapp board(s), written by `edgeapp-fleet haproxy`." % len(boards),
           "# Check it: haproxy -c -f FILE. Run it: haproxy -f FILE (or install it as /etc/haproxy/haproxy.cfg).",
           ""]
    for head, lines in sections:
        out.append(head)
        for directive, why in lines:
            out += ["    # " + w for w in _wrap(why)]
            out.append("    " + directive)
        out.append("")
    return "\n".join(out)


def global_section(args):
    return [
        ("log %s format raw local0 info" % args.log,
         "where HAProxy's messages go: a board taken out or brought back, and one line per request"),
        ("maxconn %d" % args.maxconn,
         "connections held at once; with the buffer size below it bounds HAProxy's memory (maxconn x 2 buffers)"),
        ("tune.bufsize %d" % _bufsize(args.retry_body_bytes),
         "one buffer holds a request's head and up to %d body bytes: only a request held whole can be tried "
         "again on another board (HAProxy's rule for retry-on); larger bodies stream through and are not retried "
         "once sent" % args.retry_body_bytes),
        ("tune.maxrewrite 1024",
         "room kept in a buffer for headers HAProxy adds (the default would be half the buffer)"),
    ]


def _bufsize(retry_body_bytes):
    """The buffer for a body of retry_body_bytes: plus the head (the boards take 8 KB at most) and
    maxrewrite, at least HAProxy's default 16 KB."""
    return max(16384, retry_body_bytes + 8192 + 1024)


def defaults_section(args, server_timeout):
    return [
        ("mode http", "HTTP: requests are seen whole, retried and answered by HAProxy when no board can"),
        ("log global", "log where the global section says"),
        ("option httplog", "one line per request, with its retries and the board that answered"),
        ("option dontlognull", "no log line for connections that sent nothing (port probes)"),
        ("timeout connect 2s", "a board on the LAN accepts a connection within milliseconds; after 2 s it is "
         "taken for gone and the request goes to another board"),
        ("timeout client %ds" % server_timeout, "a client may stay silent this long: as long as a board may take "
         "to answer (below)"),
        ("timeout server %ds" % server_timeout, "how long a board may take to answer: its own request timeout "
         "(%gs: after it the board answers 504 itself) plus %gs for the upload and decoding" % (
             args.request_timeout, MARGIN)),
        ("timeout http-request %ds" % (HEAD_TIMEOUT + 10), "the head and the body prefix HAProxy holds must arrive "
         "within this: the board's own %gs for a head, plus 10 s for the held body" % HEAD_TIMEOUT),
        ("timeout http-keep-alive %ds" % IDLE_TIMEOUT, "an idle client connection is closed after this, as a "
         "board closes its own"),
        ("timeout check %ds" % CHECK_TIMEOUT, "a health answer slower than this counts as a failed check "
         "(a board answers /api/health in milliseconds, even under load)"),
    ]


def frontend_section(args, server_timeout):
    limit = args.max_body_bytes
    too_large = failure(errors.TooLarge.code, "the body is over %d bytes, the limit of the boards (max_body_bytes)" % limit)
    return [
        ("bind %s" % args.bind, "where clients send their requests: the EdgeBoard routes (/api/...) and the "
         "DeepStack routes (/v1/vision/...) alike, passed through unchanged"),
        ("http-request deny status 413 content-type %s string %s hdr Cache-Control no-store "
         "hdr X-Content-Type-Options nosniff if { req.hdr_val(content-length) gt %d }" % (_quoted(JSON_TYPE), _quoted(dumps(too_large)), limit),
         "a body over the boards' limit is refused here, before it is uploaded, as a board would (JSON, 413)"),
    ] + error_pages(args, server_timeout) + [
        ("http-after-response set-status 503 if { status 502 }",
         "...and is sent as a 503, the status of code 1007 on a board: the client is told to retry, as for a "
         "busy board (a board itself never answers 502)"),
        ("default_backend boards", "every request goes to the boards below"),
    ]


def error_pages(args, server_timeout):
    """http-error lines: HAProxy's own answers as the boards' JSON envelope with a Retry-After."""
    pages = [
        (400, errors.BadRequest, None, "the balancer could not read the request as HTTP"),
        (408, errors.RequestTimeout, None, "the request did not arrive within %ds" % (HEAD_TIMEOUT + 10)),
        (500, errors.Internal, 2, "the balancer failed"),
        (502, errors.AcceleratorFailed, 1, "the board closed the connection without an answer (it stopped or "
         "restarted) and the request could not be sent to another board: retry"),
        (503, errors.NotReady, 2, "no board is ready: every board is out of the fleet (stopped, restarting or "
         "without a ready model); retry in a few seconds"),
        (504, errors.Timeout, 1, "no board answered within %ds" % server_timeout),
    ]
    out = []
    for status, err, retry, msg in pages:
        line = "http-error status %d content-type %s string %s hdr Cache-Control no-store" % (
            status, _quoted(JSON_TYPE), _quoted(dumps(failure(err.code, msg)))) + " hdr X-Content-Type-Options nosniff"
        if retry:
            line += " hdr Retry-After %d" % retry
        out.append((line, "HAProxy's own %d is the boards' JSON envelope (code %d, %s)%s, never an HTML page" % (
            status, err.code, err.__name__, " with a Retry-After" if retry else "")))
    return out


def backend_section(boards, args, name):
    retries = max(2, len(boards))
    inter = "%gs" % args.check_interval
    return [
        ("balance leastconn", "the board with the fewest requests in flight gets the next one: inference times "
         "vary from milliseconds to seconds between models, so a round robin would queue behind slow ones"),
        ("option http-buffer-request", "hold a request's body (up to the buffer) before choosing a board: a slow "
         "upload does not tie up a board, and the held request can be sent again to another board. Here, not in "
         "the frontend, so that an oversized body is refused before HAProxy asks for it"),
        ("option httpchk", "health checks are HTTP requests (the next two lines say which and what passes)"),
        ("http-check send meth GET uri /api/health?balancer=%s ver HTTP/1.1 hdr Host edgeapp "
         "hdr User-Agent edgeapp-fleet-check/%s" % (name, name),
         "the board's readiness (no token needed): 200 only when its worker runs and a model is ready. The "
         "balancer's name lets edgeapp-diag on the board say who checks it"),
        ("http-check expect status 200", "anything else (503 while the worker restarts or no model is ready, no "
         "answer) counts as a failed check"),
        ("retry-on conn-failure empty-response 503",
         "send a request to another board when its board refused the connection, closed it without an answer "
         "(killed, restarting) or answered 503 (busy, not ready: nothing was done). Not 504 (the board already "
         "spent the request's time) nor other errors (the request itself is at fault)"),
        ("retries %d" % retries, "attempts after the first: one per other board, at least 2"),
        ("option redispatch 1", "every retry goes to another board, not the same one again"),
        ("http-request disable-l7-retry if { path_beg /v1/vision/face/register /v1/vision/face/delete }",
         "a face database write whose answer was lost may have been done: only a refused connection is retried"),
        ("default-server check inter %s fastinter 1s downinter %s fall 2 rise 2 observe layer4 error-limit 3 "
         "on-error mark-down init-addr last,libc,none" % (inter, inter),
         "every board is checked each %s (each 1 s while its state changes); 2 failed checks take it out, 2 passed "
         "bring it back; 3 refused or dropped connections in a row take it out at once. A board name that does not "
         "resolve yet does not stop HAProxy from starting (the board stays out)" % inter),
    ] + [("server %s %s" % (srv, addr), "a board") for srv, addr in boards]


def _quoted(text):
    """text in HAProxy's strong quotes, which allow no quote inside (none of ours has one)."""
    if "'" in text:
        raise ValueError("a single quote cannot be written inside HAProxy's strong quotes: %r" % text)
    return "'%s'" % text


def _wrap(text, width=96):
    """A comment's text as lines of at most width columns."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = "%s %s" % (line, word) if line else word
    return lines + ([line] if line else [])
