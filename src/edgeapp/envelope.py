"""The EdgeBoard envelope on the Bottle side: the plugin around the API's routes, and JSON error pages.

EnvelopePlugin does, for each route whose config says answer="envelope" (see Api.routes), what
every such route shares: body limit and access token first, then the handler, then its data in
the envelope or its error as the failure envelope with the error's status; inference routes
(config inference=True) also pass the accelerator's admission, count as in flight and carry a
Server-Timing header. Every request it wraps is counted in the metrics under the handler's name.
"""
import functools
import logging
import threading
import time

import bottle
from bottle import request, response

from edgeapp import admission
from edgeapp.errors import BadRequest, EdgeError, Internal, MethodNotAllowed, NotFound, TooLarge, Unauthorized
from edgeapp.parsing import check_length, check_token, short
from edgeapp.results import JSON_TYPE, dumps, error_bytes, retry_after_header, success

log = logging.getLogger("edgeapp.api")

# Server-Timing: where a request's time went. "queue" is the wait for the accelerator (slot
# hand-over included); "inference" is the accelerator's own time; the rest is this process.
TIMING_ORDER = ("queue", "decode", "preprocess", "inference", "postprocess", "render")


class EnvelopePlugin:
    """Wraps the routes whose config has answer="envelope"; options: open_access (no token),
    inference (admission, in-flight count, Server-Timing). The metrics label is the handler's name."""
    name = "envelope"
    api = 2

    def __init__(self, settings, accel, metrics, in_flight):
        self.settings, self.accel, self.metrics, self.in_flight = settings, accel, metrics, in_flight

    def apply(self, callback, route):
        if route.config.get("answer") != "envelope":
            return callback
        inference = bool(route.config.get("inference"))
        label = callback.__name__

        @functools.wraps(callback)
        def wrapper(*args, **kwargs):
            t0 = time.monotonic()
            if inference:
                self.in_flight.add(1)
                request.environ["edgeapp.timing"] = {}
            code = 1099  # stays so for bottle's own answers (a redirect) that pass through
            try:
                body, code = self._answer(route, callback, args, kwargs, t0)
                return body
            finally:
                self._finish(label, inference, code, t0)

        return wrapper

    def _admit(self, route):
        """What a request must pass before its handler runs."""
        if request.method == "POST":
            limit = route.config.get("body_limit", "max_body_bytes")  # a setting's name (Api.routes)
            check_length(getattr(self.settings, limit), "EDGEAPP_" + limit.upper())
        if self.settings.token and not route.config.get("open_access"):
            check_token(self.settings.token)
        if route.config.get("inference"):
            # Before the body is read: under overload a 4 MB upload gets its 503 in
            # milliseconds, and the server drops the rest of it without a thread.
            admission.shed_if_full(self.accel, request.environ, None)

    def _answer(self, route, callback, args, kwargs, t0):
        """(body, envelope code): the handler's data in the envelope, or its error's."""
        try:
            self._admit(route)
            body = dumps(success(callback(*args, **kwargs))).encode("utf-8")
        except EdgeError as e:
            log.info("%s %s -> %d code %d: %s (%.0f ms)", request.method, log_path(), e.status, e.code, e.msg, ms(t0))
            return error_body(e), e.code
        except bottle.HTTPResponse:
            raise  # bottle's own errors: JsonErrorApp.default_error_handler turns them into JSON
        except Exception:
            log.exception("%s %s failed", request.method, log_path())
            return error_body(Internal("internal error; the details are in the server log")), 1099
        response.content_type = JSON_TYPE
        log.debug("%s %s -> 200 (%.0f ms)", request.method, log_path(), ms(t0))
        return body, 0

    def _finish(self, label, inference, code, t0):
        timing = request.environ.get("edgeapp.timing") or {}
        if inference:
            admission.release(self.accel, request.environ)  # if its job did not take it
            self.in_flight.add(-1)
            response.set_header("Server-Timing", server_timing(timing, t0))
        timing["total"] = ms(t0)
        self.metrics.observe(label, request.environ.get("edgeapp.model", "-"), code, timing)


class JsonErrorApp(bottle.Bottle):
    """Bottle with the JSON envelope instead of its HTML error pages (404, 405, 413, 500, ...);
    a 404 names the endpoints there are."""

    def __init__(self, endpoints):
        super().__init__()
        self.endpoints = endpoints

    def default_error_handler(self, res):
        status = res.status_code
        where = "%s %s" % (request.method, short(request.path, 200))
        if status == 404:
            err = NotFound("no endpoint %s; the endpoints are: %s" % (where, self.endpoints))
        elif status == 405:
            err = MethodNotAllowed("%s: method not allowed here; use %s"
                                   % (where, res.headers.get("Allow", "another method")))
        elif status == 413:
            err = TooLarge("the request body is too large")
        elif status == 400:
            err = BadRequest("bad request: %s" % res.body)
        elif status >= 500:
            err = Internal("internal error; the details are in the server log")
        else:
            err = EdgeError("%s: %s" % (res.status_line, res.body))
        return error_body(err)


def error_body(err):
    """The failure envelope for err, with its status and headers set on the response."""
    response.status = err.status
    response.content_type = JSON_TYPE
    retry = retry_after_header(err)
    if retry is not None:
        response.set_header("Retry-After", retry)
    if isinstance(err, Unauthorized):
        response.set_header("WWW-Authenticate", 'Bearer realm="edgeapp"')
    return error_bytes(err)


class InFlight:
    """How many inference requests are being served (a gauge; EnvelopePlugin counts them)."""

    def __init__(self):
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n):
        with self._lock:
            self.value += n


def request_timing():
    """The current request's Server-Timing phases {name: ms}, for handlers to fill in."""
    return request.environ.setdefault("edgeapp.timing", {})


def server_timing(timing, t0):
    """The Server-Timing header value: the phases in TIMING_ORDER, then the total since t0."""
    parts = ["%s;dur=%.2f" % (name, timing[name]) for name in TIMING_ORDER if name in timing]
    parts.append("total;dur=%.2f" % ms(t0))
    return ", ".join(parts)


def ms(t0):
    """Milliseconds since the time.monotonic() t0."""
    return (time.monotonic() - t0) * 1000.0


def log_path():
    """The request path for a log line: cut short, control characters escaped (no forged lines)."""
    path = short(request.path, 200)
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
