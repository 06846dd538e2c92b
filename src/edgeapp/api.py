"""The HTTP API: the EdgeBoard document's three inference endpoints plus models, health and status.

Routes parse and check the request (body size, parameters, image header), hand the decoded image to
the Engine and answer with the EdgeBoard envelope (edgeapp.results). Every response, errors
included, is JSON with a Content-Length. This module never imports Paddle Lite: inference goes
through the Engine's accelerator, which may live in another process.
"""
import base64
import binascii
import functools
import hmac
import io
import json
import logging
import math
import os
import re
import socket
import threading
import time
from urllib.parse import parse_qsl

import bottle
from bottle import request, response

from edgeapp import __version__, budget, callback, deepstack, images, openapi
from edgeapp.errors import (BadRequest, Busy, EdgeError, Internal, MethodNotAllowed, NotFound, NotReady,
                            RequestTimeout, TooLarge, Unauthorized)
from edgeapp.memory import rss_bytes
from edgeapp.metrics import Metrics
from edgeapp.results import JSON_TYPE, SECURITY_HEADERS, dumps, failure, retry_after_header, success

log = logging.getLogger("edgeapp.api")

DEADLINE_HEADER = "X-Edgeapp-Deadline-Ms"
TOKEN_HEADER = "X-Edgeapp-Token"
ENDPOINTS = ("POST /api/model/service/base64?mid=N, POST /api/model/service/binary?mid=N, "
             "POST /api/model/service/multipart, GET /api/models, POST /api/models/reload, GET /api/health, "
             "GET /api/status, GET /metrics, GET /ui/")
UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui")
UI_FILES = ("index.html", "app.js", "style.css")
_READ_CHUNK = 64 * 1024
_DATA_URL = re.compile(r"^\s*data:[^,]{0,200},")
_MAX_INT_DIGITS = 30  # JSON integers longer than this are refused: int() is quadratic in the digits
CORS_ALLOW_HEADERS = "Authorization, Content-Type, %s, %s" % (TOKEN_HEADER, DEADLINE_HEADER)


class _App(bottle.Bottle):
    """Bottle with the JSON envelope instead of its HTML error pages (404, 405, 413, 500, ...)."""

    def default_error_handler(self, res):
        status = res.status_code
        where = "%s %s" % (request.method, _short(request.path, 200))
        if status == 404:
            err = NotFound("no endpoint %s; the endpoints are: %s" % (where, ENDPOINTS))
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
        return _error_body(err)


def _error_body(err):
    """The failure envelope for err, with its status and headers set on the response."""
    response.status = err.status
    response.content_type = JSON_TYPE
    retry = retry_after_header(err)
    if retry is not None:
        response.set_header("Retry-After", retry)
    if isinstance(err, Unauthorized):
        response.set_header("WWW-Authenticate", 'Bearer realm="edgeapp"')
    return dumps(failure(err.code, err.msg)).encode("utf-8")


def starting_app(environ, start_response):
    """What every request gets while the models load and warm up (before make_app's app is ready)."""
    err = NotReady("starting: the models are loading and warming up; retry in a few seconds")
    body = dumps(failure(err.code, err.msg)).encode("utf-8")
    start_response("503 Service Unavailable", [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))),
                                               ("Retry-After", "2")] + SECURITY_HEADERS)
    return [body]


def make_app(engine, accel, settings, reload=None):
    """The Bottle app serving engine's models; accel is only asked for its status figures.
    reload(): re-read the model folder (POST /api/models/reload); None when the server has none."""
    # Bodies up to our own limit stay in memory: bottle would spool anything over MEMFILE_MAX
    # (100 KB by default) to a temporary file while parsing a multipart form.
    bottle.BaseRequest.MEMFILE_MAX = settings.max_body_bytes
    app = _App()
    started = time.time()
    in_flight = _Counter()
    # Large images are decoded one per CPU of this process at a time: more at once only share
    # the same CPUs, and starve the selector thread that answers /api/health and refusals
    # (measured, 4 admitted 4 MB uploads among 64: 503s within 50 ms 74-97% -> 82-99%).
    large_decodes = threading.Semaphore(_process_cpus())
    metrics = Metrics()
    url = getattr(settings, "callback_url", None)
    callbacks = callback.Callbacks(url, token=getattr(settings, "callback_token", None)) if url else None

    @app.hook("before_request")
    def forgive_slashes():
        # Clients that join URL parts carelessly send `/api//model/...` or a trailing slash.
        # (A leading `//` never gets here: cheroot refuses it as an absolute URI.)
        path = request.environ["PATH_INFO"]
        if "//" in path or (path.endswith("/") and path != "/"):
            request.environ["PATH_INFO"] = re.sub("/+", "/", path).rstrip("/") or "/"

    def endpoint(open_access=False, inference=False):
        """Wraps a route: limits and token first, then the envelope around its data or its error."""

        def wrap(fn):
            @functools.wraps(fn)
            def handler(**url_args):
                t0 = time.monotonic()
                code = 1099
                if inference:
                    in_flight.add(1)
                    request.environ["edgeapp.timing"] = {}
                try:
                    if request.method == "POST":
                        _check_length(settings.max_body_bytes)
                    if settings.token and not open_access:
                        _check_token(settings.token)
                    if inference:
                        # Before the body is read: under overload a 4 MB upload gets its 503 in
                        # milliseconds, and the server drops the rest of it without a thread.
                        _shed_if_full(accel, None)
                    body = dumps(success(fn(**url_args))).encode("utf-8")
                    code = 0
                    response.content_type = JSON_TYPE
                    log.debug("%s %s -> 200 (%.0f ms)", request.method, _log_path(), _ms(t0))
                    return body
                except EdgeError as e:
                    code = e.code
                    log.info("%s %s -> %d code %d: %s (%.0f ms)",
                             request.method, _log_path(), e.status, e.code, e.msg, _ms(t0))
                    return _error_body(e)
                except bottle.HTTPResponse:
                    raise  # bottle's own errors: default_error_handler turns them into JSON
                except Exception:
                    log.exception("%s %s failed", request.method, _log_path())
                    return _error_body(Internal("internal error; the details are in the server log"))
                finally:
                    timing = request.environ.get("edgeapp.timing") or {}
                    if inference:
                        _release(accel)  # a reservation its job did not take (see _shed_if_full)
                        in_flight.add(-1)
                        response.set_header("Server-Timing", _server_timing(timing, t0))
                    timing["total"] = _ms(t0)
                    metrics.observe(fn.__name__, request.environ.get("edgeapp.model", "-"), code, timing)

            return handler

        return wrap

    def deadline(query):
        """The request's time.monotonic() deadline: the client's, capped by request_timeout."""
        now = time.monotonic()
        raw = request.get_header(DEADLINE_HEADER) or _first(query, "deadline_ms")
        return now + _deadline_seconds(raw, settings.request_timeout)

    def model(mid):
        """The model for mid (UnknownModel if none); labels the request's metrics with it."""
        m = engine.model(mid)
        request.environ.setdefault("edgeapp.model", str(mid))
        return m

    def infer(mid, decoded, show, until):
        image, size = decoded
        data = engine.infer(mid, image, show, deadline=until, timing=_timing(), size=size,
                            reservation=request.environ.get(RESERVATION))
        if callbacks is not None:  # never waits: a full callback queue drops (and counts) it
            callbacks.submit(callback.payload(mid, data["result"], size[0], size[1]))
        return data

    def decode(data, mids, show, until):
        """(image, full size): a JPEG decoded as small as the models allow, full size to render."""
        _shed_if_full(accel, until)
        t0 = time.monotonic()
        large = _pixels(data) >= LARGE_DECODE_PIXELS
        if large:
            large_decodes.acquire()
        try:
            return engine.decode(data, settings.max_pixels, mids, full=show)
        finally:
            if large:
                large_decodes.release()
            _timing()["decode"] = _ms(t0)

    @app.post("/api/model/service/base64")
    @app.post("/api/model/service/base64/mid=<path_mid>")
    @endpoint(inference=True)
    def service_base64(path_mid=None):
        query = _query(path_mid)
        until = deadline(query)
        body = _read_body(settings.max_body_bytes)
        mid = _mid(_single(query, "mid"))
        model(mid)  # an unknown id is refused before any decoding
        doc = _json_object(body)
        del body
        show = _truthy(doc["show"]) if "show" in doc else _truthy(_first(query, "show"))
        decoded = decode(_base64_image(doc.get("image")), [mid], show, until)
        return infer(mid, decoded, show, until)

    @app.post("/api/model/service/binary")
    @app.post("/api/model/service/binary/mid=<path_mid>")
    @endpoint(inference=True)
    def service_binary(path_mid=None):
        query = _query(path_mid)
        until = deadline(query)
        body = _read_body(settings.max_body_bytes)
        fields = {}
        if request.content_type.startswith("multipart/"):
            # The document calls this upload "a form" while showing a raw body: take both.
            fields, files = _form(body)
            body = _pick_file(files)
        mid = _mid(_single(query, "mid") or _single(fields, "mid"))
        model(mid)
        show = _truthy(_first(query, "show") or _first(fields, "show"))
        return infer(mid, decode(body, [mid], show, until), show, until)

    @app.post("/api/model/service/multipart")
    @endpoint(inference=True)
    def service_multipart():
        query = _query()
        until = deadline(query)
        body = _read_body(settings.max_body_bytes)
        if not request.content_type.startswith("multipart/"):
            raise BadRequest("send multipart/form-data with the image in a 'file' part and the model ids in "
                             "'mids' (e.g. mids=[1,2]); got Content-Type %r" % _short(request.content_type))
        fields, files = _form(body)
        del body
        mids = _mids(fields.get("mids") or query.get("mids") or fields.get("mid") or query.get("mid") or [],
                     settings.max_mids)
        if not mids:
            raise BadRequest("the form has no 'mids' field: list the model ids, e.g. mids=[1,2] (GET /api/models)")
        for mid in mids:
            engine.model(mid)  # one unknown id refuses the whole request, naming it
        request.environ["edgeapp.model"] = str(mids[0]) if len(set(mids)) == 1 else "multi"
        show = _truthy(_first(query, "show") or _first(fields, "show"))
        decoded = decode(_pick_file(files), mids, show, until)  # decoded once, run by every model
        done = {}
        out = []
        for mid in mids:
            if mid not in done:
                done[mid] = infer(mid, decoded, show, until)
            entry = {"model_id": mid}
            entry.update(done[mid])
            out.append(entry)
        return out

    # DeepStack / CodeProject.AI compatible routes (edgeapp.deepstack), on the same models.
    def ds_read_form():
        _check_length(settings.max_body_bytes)
        body = _read_body(settings.max_body_bytes)
        if not body:
            return {}, {}
        if not request.content_type.startswith("multipart/"):
            raise BadRequest("send multipart/form-data with the picture in a part named 'image'")
        return _form(body)

    def ds_check_token(api_key):
        if not settings.token:
            return
        if api_key and hmac.compare_digest(api_key.encode("utf-8"), settings.token.encode("utf-8")):
            return
        _check_token(settings.token)  # or the usual headers; raises Unauthorized

    def ds_run(mid, data):
        model(mid)
        until = time.monotonic() + settings.request_timeout
        try:
            decoded = decode(data, [mid], False, until)
            out = infer(mid, decoded, False, until)
        finally:
            _release(accel)
        w, h = decoded[1]
        return out["result"], w, h

    deepstack.add_routes(app, engine, settings, ds_read_form, ds_check_token, ds_run)

    @app.get("/api/models")
    @endpoint()
    def models():
        return engine.describe()

    @app.post("/api/models/reload")
    @endpoint()
    def reload_models():
        """Re-read the model folder while serving (as SIGHUP does): what was added, replaced, removed."""
        if reload is None:
            raise NotFound("this server cannot reload its models")
        done = reload()
        return {k: ({str(m): why for m, why in v.items()} if isinstance(v, dict) else v) for k, v in done.items()}

    @app.get("/metrics")
    def prometheus():
        # The Prometheus text format, not the envelope; behind the token like everything but health.
        try:
            if settings.token:
                _check_token(settings.token)
        except EdgeError as e:
            return _error_body(e)
        response.content_type = "text/plain; version=0.0.4; charset=utf-8"
        return metrics.render(_gauges(engine, accel, in_flight, callbacks)).encode("utf-8")

    @app.get("/api/openapi.json")
    def openapi_document():
        response.content_type = JSON_TYPE
        return json.dumps(openapi.document()).encode("utf-8")

    @app.get("/")
    @endpoint(open_access=True)
    def root():
        # Browsers go to the try-it page; other clients (e.g. an NVR's alive check) get a 200.
        if "text/html" in request.get_header("Accept", ""):
            bottle.redirect("/ui/")
        return {"name": "edgeapp", "version": __version__, "ui": "/ui/", "health": "/api/health"}

    @app.get("/ui")
    @app.get("/ui/<name>")
    def ui(name="index.html"):
        if name not in UI_FILES:  # the page's own files only: no path ever comes from the client
            return _error_body(NotFound("no file %s in the page; open /ui/" % _short(name)))
        return bottle.static_file(name, root=UI_DIR)

    def health_data():
        # State only: no accelerator round trip, so this answers while inference is saturated.
        state = _accel_status(accel)["state"]
        if state != "ready":
            raise _not_ready("not ready: the accelerator is %s" % state)
        if not engine.models:
            raise _not_ready("not ready: no model is ready (%s)" % "; ".join(
                "%d: %s" % (mid, why) for mid, why in sorted(engine.failed.items())) or "none installed")
        return {"ready": True, "state": state, "version": __version__,
                "uptime_s": round(time.time() - started, 1),
                "models_ready": sorted(engine.models), "models_failed": sorted(engine.failed)}

    @app.get("/api/health")
    @endpoint(open_access=True)
    def health():
        return health_data()

    def quick(method, target):
        """The HTTP server's selector thread answers GET /api/health with this, without a thread
        (edgeapp.httpd.Server.quick): (status, headers, body) or None for everything else."""
        if method != b"GET" or target.split(b"?", 1)[0] != b"/api/health":
            return None
        t0 = time.monotonic()
        headers = [("Content-Type", JSON_TYPE)] + SECURITY_HEADERS
        try:
            status, code, body = 200, 0, dumps(success(health_data())).encode("utf-8")
        except EdgeError as e:
            status, code, body = e.status, e.code, dumps(failure(e.code, e.msg)).encode("utf-8")
            retry = retry_after_header(e)
            if retry is not None:
                headers.append(("Retry-After", retry))
        metrics.observe("health", "-", code, {"total": _ms(t0)})
        return status, headers, body

    @app.get("/api/status")
    @endpoint()
    def status():
        data = {"version": __version__, "uptime_s": round(time.time() - started, 1)}
        data.update(_accel_status(accel))
        data["requests_in_flight"] = in_flight.value
        data["memory"] = budget.measure(accel, settings)  # the README's formula, live
        if callbacks is not None:
            data["callbacks"] = callbacks.stats()
        stats = engine.stats()
        runs = accel.model_timing()
        data["models"] = []
        for mid in sorted(engine.bundles):
            entry = {"id": mid, "name": engine.bundles[mid].name, "ready": mid in engine.models}
            entry.update(stats.get(mid, {}))  # requests, errors, latency_ms {p50, p95, p99}
            run = runs.get(mid, {})
            entry["accelerator_ms"] = run.get("accelerator_ms", {"mean": None, "p50": None})
            entry["accelerator_s_total"] = run.get("accelerator_s_total", 0.0)
            entry["input_shape"] = run.get("input_shape") or engine.bundles[mid].input_shape
            data["models"].append(entry)
        return data

    wsgi = _outer(app, getattr(settings, "cors_origins", None))
    wsgi.quick = quick  # for edgeapp.httpd.Server.quick
    return wsgi


def _gauges(engine, accel, in_flight, callbacks):
    """Figures read at scrape time, as (name, help, type, samples) for Metrics.render."""
    st = _accel_status(accel)
    mstat = accel.model_status()
    pid = st.get("worker_pid")
    g = [
        ("edgeapp_queue_depth", "Inference jobs in flight on the accelerator.", "gauge", [({}, st["queue_depth"])]),
        ("edgeapp_queue_capacity", "Accelerator slots (the queue bound).", "gauge", [({}, st["queue_capacity"])]),
        ("edgeapp_requests_in_flight", "Inference requests being served.", "gauge", [({}, in_flight.value)]),
        ("edgeapp_worker_restarts_total", "Accelerator worker restarts.", "counter", [({}, st["restarts"])]),
        ("edgeapp_worker_watchdog_kills_total", "Hung workers killed by the watchdog.", "counter",
         [({}, st.get("watchdog_kills", 0))]),
        ("edgeapp_model_ready", "1 if the model serves.", "gauge",
         [({"model": str(m), "name": b.name}, 1 if m in engine.models else 0) for m, b in sorted(engine.bundles.items())]),
        ("edgeapp_model_memory_bytes", "Memory the model pinned after warm-up.", "gauge",
         [({"model": str(m)}, int(s["memory_mb"] * 1048576)) for m, s in sorted(mstat.items())
          if s.get("memory_mb") is not None]),
        ("edgeapp_accelerator_seconds_total", "The accelerator's own time in runs of the model (its rate is the "
         "utilisation).", "counter",
         [({"model": str(m)}, t["accelerator_s_total"]) for m, t in sorted(accel.model_timing().items())]),
        ("edgeapp_process_resident_memory_bytes", "RSS of the edgeapp processes.", "gauge",
         [({"process": "http"}, rss_bytes())] + ([({"process": "worker"}, rss_bytes(pid))] if pid else [])),
    ]
    if callbacks is not None:
        cs = callbacks.stats()
        g.append(("edgeapp_callbacks_total", "Result callbacks by outcome.", "counter",
                  [({"outcome": k}, cs[k]) for k in ("sent", "dropped", "failed")]))
    return g


def _outer(app, cors_origins):
    """app with SECURITY_HEADERS on every answer, and CORS when cors_origins is set (off otherwise:
    a page from another origin cannot read the answers)."""
    allowed = {o.strip().rstrip("/") for o in (cors_origins or "").split(",") if o.strip()}

    def cors(origin):
        if not origin or not allowed:
            return []
        if "*" in allowed:
            out = [("Access-Control-Allow-Origin", "*")]
        elif origin.rstrip("/") in allowed:
            out = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        else:
            return []
        return out + [("Access-Control-Expose-Headers", "Retry-After, Server-Timing")]

    def wsgi(environ, start_response):
        extra = cors(environ.get("HTTP_ORIGIN"))
        if extra and environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            # A browser's preflight carries no credentials: answered here, before the token check.
            start_response("204 No Content", extra + SECURITY_HEADERS + [
                ("Access-Control-Allow-Methods", "GET, POST"), ("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                ("Access-Control-Max-Age", "600"), ("Content-Length", "0")])
            return [b""]

        def start(status, headers, exc_info=None):
            return start_response(status, list(headers) + SECURITY_HEADERS + extra, exc_info)

        return app(environ, start)

    return wsgi


class _Counter:
    def __init__(self):
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n):
        with self._lock:
            self.value += n


# Server-Timing: where a request's time went. "queue" is the wait for the accelerator (slot
# hand-over included); "inference" is the accelerator's own time; the rest is this process.
_TIMING_ORDER = ("queue", "decode", "preprocess", "inference", "postprocess", "render")


def _timing():
    return request.environ.setdefault("edgeapp.timing", {})


def _server_timing(timing, t0):
    parts = ["%s;dur=%.2f" % (name, timing[name]) for name in _TIMING_ORDER if name in timing]
    parts.append("total;dur=%.2f" % _ms(t0))
    return ", ".join(parts)


def _ms(t0):
    return (time.monotonic() - t0) * 1000.0


def _short(text, n=60):
    text = str(text)
    return text if len(text) <= n else text[:n] + "..."


def _log_path():
    """The request path for a log line: cut short, control characters escaped (no forged lines)."""
    path = _short(request.path, 200)
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def _not_ready(msg, retry_after=2):
    err = NotReady(msg)
    err.retry_after = retry_after
    return err


INFERENCE_PATHS = (b"/api/model/service/", b"/v1/vision/")


LARGE_DECODE_PIXELS = 2000000  # from 1920x1080 up: tens of milliseconds of decoding each


def _process_cpus():
    """CPUs this process may run on (EDGEAPP_WORKER_CPUS takes some away from it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pixels(data):
    """Width x height from the image header; 0 for what is not an image (decoding says why)."""
    try:
        _, w, h = images.image_size(data)
    except EdgeError:
        return 0
    return w * h


def shedder(accel):
    """shed(method, target, waiting) for httpd.Server: the 503 an inference request gets at once,
    from its request line alone, when the accelerator queue is full (counting the `waiting`
    requests the server's threads have not started yet); else None. Never waits."""
    def shed(method, target, waiting=0):
        if method == b"POST" and target.startswith(INFERENCE_PATHS) and accel.refuses_now(waiting):
            return _busy(accel)
        return None
    return shed


def _busy(accel):
    st = accel.status() or {}
    capacity, depth = st.get("queue_capacity") or 0, st.get("queue_depth") or 0
    per_job = (st.get("service_ms") or 1000.0) / 1000.0
    return Busy("the accelerator queue is full (%d jobs); retry later" % capacity,
                retry_after=max(1, int(math.ceil(depth * per_job))))


RESERVATION = "edgeapp.reservation"  # the request's accel.reserve(), in its environ


def _shed_if_full(accel, deadline):
    """Busy before decoding when every accelerator slot is taken or reserved by requests admitted
    before this one (after a short wait for one when jobs are short): under overload a request
    would otherwise pay for its decoding and preprocessing only to be refused. On success the
    request holds a reservation (kept in its environ, renewed on a second call) until its first
    job takes a slot or _release()."""
    reservation = accel.reserve(deadline, renew=request.environ.get(RESERVATION))
    if reservation is None:
        raise _busy(accel)
    request.environ[RESERVATION] = reservation


def _release(accel):
    """The request lets go of a reservation its job did not take (an error, or it is done)."""
    accel.release(request.environ.pop(RESERVATION, None))


def _accel_status(accel):
    """accel.status() with every key /api/status documents (an in-process accelerator has no queue)."""
    st = {"state": "ready", "worker_pid": None, "restarts": 0, "queue_depth": 0, "queue_capacity": None}
    st.update(accel.status() or {})
    return st


# ---- request parsing -------------------------------------------------------------------------

def _query(path_mid=None):
    return _parse_query(request.environ.get("QUERY_STRING", ""), path_mid)


def _parse_query(qs, path_mid=None):
    """{name: [values]} of a query string (plus the path form's `mid=N`).

    The document writes `?mid=n?show=0`: a second `?` is read as `&`.
    """
    if path_mid is not None:
        qs = "mid=" + path_mid + "&" + qs
    out = {}
    for key, value in parse_qsl(qs.replace("?", "&"), keep_blank_values=True):
        out.setdefault(key, []).append(value)
    return out


def _first(params, name):
    values = params.get(name)
    return values[0] if values else None


def _single(params, name):
    """The one value of name; the same value repeated is fine, two different ones are refused."""
    values = params.get(name) or []
    if len({v.strip() for v in values}) > 1:
        raise BadRequest("%s is given %d times with different values (%s); give it once"
                         % (name, len(values), ", ".join(repr(_short(v, 20)) for v in values[:4])))
    return values[0] if values else None


def _deadline_seconds(raw, cap):
    """Seconds from now a client allows (header or deadline_ms, in ms), at most cap; cap if none."""
    if raw is None or not raw.strip():
        return cap
    try:
        ms = float(raw)
    except ValueError:
        ms = float("nan")
    if not (0 < ms < float("inf")):
        raise BadRequest("%s / deadline_ms must be a positive number of milliseconds, got %r"
                         % (DEADLINE_HEADER, _short(raw)))
    return min(max(ms / 1000.0, 1e-6), cap)  # 1e-320 ms is positive, but 0.0 s once divided


def _check_length(limit):
    """Refuse a body whose declared length is over the limit, before reading any of it."""
    raw = request.environ.get("CONTENT_LENGTH") or ""
    if raw.strip():
        try:
            n = int(raw)
        except ValueError:
            raise BadRequest("Content-Length %r is not a number" % _short(raw))
        if n < 0:
            raise BadRequest("Content-Length %d is negative" % n)
        if n > limit:
            raise TooLarge("the body is %d bytes; the limit is %d bytes (EDGEAPP_MAX_BODY_BYTES)" % (n, limit))


def _read_body(limit):
    """The whole request body as bytes, never more than limit (also for chunked uploads)."""
    try:
        return _read_body_from(request.environ, limit)
    except socket.timeout:
        # edgeapp.httpd's clock: the body came slower than its minimum rate.
        raise RequestTimeout("the body arrived too slowly; the server does not wait for uploads that stall")
    except OSError as e:  # the client went away mid-body: nobody will read this answer
        raise BadRequest("the body could not be read: %s" % (e.strerror or e))
    except ValueError as e:  # the server's chunked decoder: a malformed chunk
        raise BadRequest("the chunked body is malformed: %s" % _short(e))


def _read_body_from(env, limit):
    stream = env.get("wsgi.input")
    raw = (env.get("CONTENT_LENGTH") or "").strip()
    if stream is None:
        return b""
    if raw:
        want = int(raw)  # _check_length has vetted it
        parts, got = [], 0
        while got < want:
            part = stream.read(min(_READ_CHUNK, want - got))
            if not part:
                raise BadRequest("the body ended after %d of its %d bytes" % (got, want))
            parts.append(part)
            got += len(part)
        return b"".join(parts)
    if env.get("wsgi.input_terminated") or "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower():
        parts, got = [], 0
        while True:
            part = stream.read(_READ_CHUNK)
            if not part:
                return b"".join(parts)
            got += len(part)
            if got > limit:
                raise TooLarge("the body is over the limit of %d bytes (EDGEAPP_MAX_BODY_BYTES)" % limit)
            parts.append(part)
    return b""  # neither a length nor chunked: HTTP says there is no body


def _json_int(text):
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError("a number with more than %d digits" % _MAX_INT_DIGITS)
    return int(text)


def _json_object(body):
    if not body.strip():
        raise BadRequest('the body is empty; send JSON: {"image": "<base64>", "show": false}')
    try:
        doc = json.loads(body, parse_int=_json_int)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest('the body is not valid JSON (%s); send {"image": "<base64>", "show": false}' % _short(e, 120))
    except RecursionError:
        raise BadRequest('the JSON is nested too deeply; send {"image": "<base64>", "show": false}')
    if not isinstance(doc, dict):
        raise BadRequest('the JSON body must be an object: {"image": "<base64>", "show": false}')
    return doc


def _base64_image(text):
    """Image bytes from base64 text, with or without a data: URL prefix, whitespace and padding."""
    if text is None:
        raise BadRequest('the JSON has no "image" field; send {"image": "<base64 of the image file>"}')
    if not isinstance(text, str):
        raise BadRequest('"image" must be a base64 string, not %s' % type(text).__name__)
    text = _DATA_URL.sub("", text, count=1)
    text = "".join(text.split())  # line breaks from `base64` tools and mail-style wrapping
    if "-" in text or "_" in text:  # the URL-safe alphabet
        text = text.replace("-", "+").replace("_", "/")
    text = text.rstrip("=")
    if not text:
        raise BadRequest('"image" is empty')
    if len(text) % 4 == 1:
        raise BadRequest('"image" is not valid base64 (its length does not fit)')
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequest('"image" is not valid base64: %s' % e)


def _form(body):
    """({name: [text values]}, {name: bytes}) of a form body, parsed by bottle from memory."""
    env = request.environ
    env["wsgi.input"] = io.BytesIO(body)
    env["CONTENT_LENGTH"] = str(len(body))
    env.pop("HTTP_TRANSFER_ENCODING", None)  # the body is already de-chunked
    try:
        post = request.POST
    except bottle.HTTPError as e:
        raise BadRequest("the form could not be parsed: %s" % e.body)
    except UnicodeDecodeError:
        raise BadRequest("a form field is not text: send the image as a file part "
                         "(with a filename), e.g. curl -F file=@image.jpg")
    request.body.close()  # bottle's copy of the body: the parts are all we need now
    fields, files = {}, {}
    for name, item in post.allitems():
        if isinstance(item, bottle.FileUpload):
            if name in files:
                raise BadRequest("the form has more than one file part named %r; send one image" % _short(name))
            item.file.seek(0)
            files[name] = item.file.read()
            item.file.close()
        else:
            fields.setdefault(name, []).append(item)
    return fields, files


def _pick_file(files):
    """The image part: `file` as documented, else `image`, else the only file in the form."""
    for name in ("file", "image"):
        if name in files:
            return files[name]
    if len(files) == 1:
        return list(files.values())[0]
    raise BadRequest("the form has no file part named 'file'%s; send the image as file=<image>"
                     % (" (it has: %s)" % ", ".join(_short(n, 40) for n in sorted(files)[:8]) if files else ""))


def _mid(text):
    if text is None or not str(text).strip():
        raise BadRequest("no model id: add ?mid=N to the URL (GET /api/models lists the ids)")
    s = str(text).strip().strip("'\"")
    # ASCII digits only (str.isdigit() would take "²" or Arabic-Indic digits), no minus: ids are >= 0.
    if not re.match(r"^\+?[0-9]{1,9}$", s):
        raise BadRequest("mid must be a model id (a whole number, 0 or more; see GET /api/models), got %r"
                         % _short(text))
    return int(s)


def _mids(values, limit):
    """Model ids from the mids fields: "[0,1]", "0,1", "0 1" or one field per id; at most limit."""
    out = []
    for value in values:
        s = value.strip()
        if s.startswith("[") and s.endswith("]"):
            s = s[1:-1]
        # finditer, not split: a 20 MB field must not become millions of strings first.
        for m in re.finditer(r"[^\s,;]+", s):
            token = m.group()
            try:
                out.append(_mid(token))
            except BadRequest:
                raise BadRequest("mids must list model ids, e.g. [1,2] or 1,2; %r is not one" % _short(token))
            if len(out) > limit:
                raise BadRequest("more than %d model ids in one request; the limit is %d (EDGEAPP_MAX_MIDS)"
                                 % (limit, limit))
    return out


def _truthy(value):
    """`show`: true, 1, "true" or "1" turn the image on; the document says any other value means false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true")
    return False


def _check_token(token):
    auth = request.get_header("Authorization") or ""
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    given = given or request.get_header(TOKEN_HEADER) or _first(_query(), "token")
    if not given:
        raise Unauthorized("this board needs an access token: send 'Authorization: Bearer <token>' "
                           "(or the header %s, or ?token=<token>)" % TOKEN_HEADER)
    if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        raise Unauthorized("the access token is wrong")
