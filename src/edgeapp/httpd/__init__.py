"""The HTTP server, made safe to expose to every client on a LAN.

A thread-per-connection server hands each new connection to a thread, which then blocks reading
the request. A few dozen clients that connect and say nothing, or send their headers a byte at a
time, would hold every thread and nobody else would be served. So here (Limits names each figure):

- a connection waits in the selector, without a thread, until its request head (request line and
  headers) and the first body_prefetch bytes of its body have arrived; the selector thread reads
  what has arrived without blocking. They must arrive within header_timeout of the request's
  first byte (408), and the head must fit in max_header_bytes (414 for the request line, 431 for
  the headers);
- requests without a body (health, status, models) have their own small pool of threads, so slow
  uploads can never make /api/health wait; GET /api/health itself is answered by the selector
  thread from the request head (Server's quick), with no thread hand-over at all;
- a body must keep up min_body_rate on average once body_grace has passed (408 otherwise), and an
  answer must be read by the client at that rate too: a slow client holds a thread for a bounded
  time only;
- when every thread is busy and the queue of gathered requests is full, the answer is an
  immediate 503; under overload (Server's shed) an upload is refused from its request line, a
  burst of refusals shares one answer's bytes, and clients that retry at once are held back;
- the selector thread runs above the other threads (selector_nice), so that under a burst of
  uploads it accepts and refuses before the admitted images' decodes, and each of its turns takes
  new connections first and drops at most drains_per_turn refused bodies;
- every answer the server gives by itself (malformed request, timeouts, limits, busy) is the JSON
  envelope with an edgeapp error code, like the application's answers;
- after an answer sent before the whole request was read (413, 503, 408, ...), the rest of the
  input is read and dropped for a while (no thread needed) before the connection is closed, so
  the client gets to read the answer instead of a connection reset.

The rooms: server.py (Server: the listener and the threads put together), poller.py (the
selector thread and its reapers), refusals.py (pacing the refusals), connection.py (a
connection, its deadlines, its input and output), workers.py (the request threads), heads.py
(what the selector reads from a head), answers.py (the server's own answers as bytes), limits.py
(every timeout and limit), and cheroot_adapter.py: the one place that uses cheroot (its public
request parser and WSGI gateway), checked against the installed cheroot by
tests/test_cheroot_adapter.py. tests/test_hostile.py, tests/test_load.py and tests/test_httpd.py
cover all of it.
"""
from edgeapp.httpd.answers import error_response
from edgeapp.httpd.limits import Limits
from edgeapp.httpd.refusals import TokenBucket
from edgeapp.httpd.server import Server

__all__ = ["Limits", "Server", "TokenBucket", "error_response"]
