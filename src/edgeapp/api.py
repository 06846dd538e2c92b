"""The HTTP API: the EdgeBoard document's three inference endpoints plus models, health and status.

Api's methods are the handlers and Api.routes() is the one table of routes. Handlers parse and
check the request (edgeapp.parsing: body size, parameters, image header), hand the decoded image
to the Engine and return the data; envelope.EnvelopePlugin wraps them in the EdgeBoard envelope
(edgeapp.results) as their route's config says, and deepstack.AnswerPlugin wraps DeepStack's
routes in DeepStack's shape. Every response, errors included, is JSON with a Content-Length. This
module never imports Paddle Lite: inference goes through the Engine's accelerator, which may live
in another process.
"""
import json
import os
import re
import threading
import time

import bottle
from bottle import request, response

from edgeapp import (__version__, balancers, budget, callback, deepstack, deepstack_face, images, netinfo, openapi,
                     parsing, verdict)
from edgeapp.bundle_digest import DigestCache
from edgeapp.model_push import ModelPush
from edgeapp.admission import reservation, shed_if_full, shedder
from edgeapp.envelope import EnvelopePlugin, InFlight, JsonErrorApp, error_body, ms, request_timing
from edgeapp.errors import BadRequest, EdgeError, NotFound, NotReady
from edgeapp.gauges import accel_status, gauges
from edgeapp.headers import AnswerHeaders
from edgeapp.history import History
from edgeapp.metrics import Metrics
from edgeapp.parsing import DEADLINE_HEADER, first, short, single, truthy
from edgeapp.results import JSON_TYPE, SECURITY_HEADERS, dumps, error_bytes, retry_after_header, success
from edgeapp.webpage import Webpage

__all__ = ["Api", "make_app", "starting_app"]

ENDPOINTS = ("POST /api/model/service/base64?mid=N, POST /api/model/service/binary?mid=N, "
             "POST /api/model/service/multipart, GET /api/models, POST /api/models, DELETE /api/models/ID, "
             "POST /api/models/reload, GET /api/health, "
             "GET /api/status, GET /metrics, GET /ui/")
LARGE_DECODE_PIXELS = 2000000  # from 1920x1080 up: tens of milliseconds of decoding each

# Route configs (read by EnvelopePlugin; see Api.routes).
ENVELOPE = {"answer": "envelope"}                       # the envelope, behind the token
OPEN = {"answer": "envelope", "open_access": True}      # the envelope, no token needed
INFERENCE = {"answer": "envelope", "inference": True}   # also admission, in-flight count, Server-Timing
OWN = {}                                                # answers in its own format
PUSH = {"answer": "envelope", "body_limit": "max_bundle_bytes"}  # a bundle archive: its own size bound


def make_app(engine, accel, settings, reload=None):
    """The WSGI app serving engine's models (see Api); its .quick is Api.quick, for the HTTP server."""
    return Api(engine, accel, settings, reload).wsgi()


def starting_app(environ, start_response):
    """What every request gets while the models load and warm up (before make_app's app is ready)."""
    err = NotReady("starting: the models are loading and warming up; retry in a few seconds")
    body = error_bytes(err)
    start_response("503 Service Unavailable", [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))),
                                               ("Retry-After", "2")] + SECURITY_HEADERS)
    return [body]


class Api:
    """The routes over engine's models. accel is asked for room (admission) and for its status
    figures; reload() re-reads the model folder (POST /api/models/reload), None when the server has
    none. For the HTTP server: shed (the selector thread's refusals) and quick (GET /api/health)."""

    def __init__(self, engine, accel, settings, reload=None):
        self.engine, self.accel, self.settings, self.reload = engine, accel, settings, reload
        # Bodies up to our own limit stay in memory: bottle would spool anything over MEMFILE_MAX
        # (100 KB by default) to a temporary file while parsing a multipart form.
        bottle.BaseRequest.MEMFILE_MAX = settings.max_body_bytes
        self.started = time.time()
        self.in_flight = InFlight()
        self.metrics = Metrics()
        # Large images are decoded one per CPU of this process at a time: more at once only share
        # the same CPUs, and starve the selector thread that answers /api/health and refusals
        # (measured, 4 admitted 4 MB uploads among 64: 503s within 50 ms 74-97% -> 82-99%).
        self.large_decodes = threading.Semaphore(_process_cpus())
        url = getattr(settings, "callback_url", None)
        self.callbacks = callback.Callbacks(url, token=getattr(settings, "callback_token", None)) if url else None
        self.deepstack = deepstack.DeepStack(self)
        self.faces = deepstack_face.DeepStackFace(self.deepstack)
        self.history = History(self.live_gauges)  # the page's plots: the last minutes, bounded
        engine.on_run = self.history.model_run
        self.shed = shedder(accel)
        self.balancers = balancers.BalancerChecks()  # who checks this board's health (edgeapp-fleet haproxy)
        self.digests = DigestCache()  # each bundle's sha256 for GET /api/models, hashed again only on change
        for b in engine.bundles.values():  # hashed here, before the service is ready: not in the first GET,
            self.digests.of(b.folder)      # which edgeapp-diag must have within 2 s (8 models: ~0.3 s here)
        self.page = Webpage()  # the board's own page (/ui/), read once
        self.pushes = None if reload is None else ModelPush(settings, accel, reload, lambda: engine.failed,
                                                            self.digests)

    def routes(self):
        """Every route: (method, path, handler, route config). The handler's name is its metrics label."""
        return [
            ("POST", "/api/model/service/base64", self.service_base64, INFERENCE),
            ("POST", "/api/model/service/base64/mid=<path_mid>", self.service_base64, INFERENCE),
            ("POST", "/api/model/service/binary", self.service_binary, INFERENCE),
            ("POST", "/api/model/service/binary/mid=<path_mid>", self.service_binary, INFERENCE),
            ("POST", "/api/model/service/multipart", self.service_multipart, INFERENCE),
        ] + self.deepstack.routes() + self.faces.routes() + [  # DeepStack / CodeProject.AI, on the same models
            ("GET", "/api/models", self.models, ENVELOPE),
            ("POST", "/api/models/reload", self.reload_models, ENVELOPE),
            ("POST", "/api/models", self.push_model, PUSH),
            ("DELETE", "/api/models/<mid>", self.delete_model, ENVELOPE),
            ("GET", "/metrics", self.prometheus, OWN),
            ("GET", "/api/openapi.json", self.openapi_document, OWN),
            ("GET", "/", self.root, OPEN),
            ("GET", "/ui", self.ui, OWN),
            ("GET", "/ui/<name>", self.ui, OWN),
            ("GET", "/api/health", self.health, OPEN),
            ("GET", "/api/status", self.status, ENVELOPE),
            ("GET", "/api/status/history", self.status_history, ENVELOPE),
        ]

    def bottle_app(self):
        """The Bottle app: both answer plugins and every route of routes()."""
        app = JsonErrorApp(ENDPOINTS)
        app.add_hook("before_request", forgive_slashes)
        app.install(EnvelopePlugin(self.settings, self.accel, self.metrics, self.in_flight))
        app.install(deepstack.AnswerPlugin())
        for method, path, handler, config in self.routes():
            app.route(path, method, handler, **config)
        return app

    def wsgi(self):
        """The WSGI application: bottle_app() inside the answer headers (security, CORS)."""
        outer = AnswerHeaders(self.bottle_app(), getattr(self.settings, "cors_origins", None),
                              on_status=self.answered)
        outer.quick, outer.shed, outer.refused = self.quick, self.shed, self.refused  # for server.Front
        outer.history = self.history  # the service's main loop ticks it
        return outer

    # ---- the steps the inference handlers (and DeepStack's) share ----

    def deadline(self, query):
        """The request's time.monotonic() deadline: the client's, capped by request_timeout."""
        now = time.monotonic()
        raw = request.get_header(DEADLINE_HEADER) or first(query, "deadline_ms")
        return now + parsing.deadline_seconds(raw, self.settings.request_timeout)

    def check_model(self, mid):
        """UnknownModel unless mid serves; labels the request's metrics with it."""
        self.engine.model(mid)
        request.environ.setdefault("edgeapp.model", str(mid))

    def decode(self, data, mids, show, until):
        """(image, full size): a JPEG decoded as small as the models allow, full size to render.
        First the accelerator's admission: no decoding for a request that would be refused."""
        shed_if_full(self.accel, request.environ, until)
        t0 = time.monotonic()
        large = _pixels(data) >= LARGE_DECODE_PIXELS
        if large:
            self.large_decodes.acquire()
        try:
            return self.engine.decode(data, self.settings.max_pixels, mids, full=show)
        finally:
            if large:
                self.large_decodes.release()
            request_timing()["decode"] = ms(t0)

    def infer(self, mid, decoded, show, until):
        """Model mid's data for a decoded image (and its result callback, if configured)."""
        image, size = decoded
        data = self.engine.infer(mid, image, show, deadline=until, timing=request_timing(), size=size,
                                 reservation=reservation(request.environ))
        if self.callbacks is not None:  # never waits: a full callback queue drops (and counts) it
            self.callbacks.submit(callback.payload(mid, data["result"], size[0], size[1]))
        return data

    # ---- the EdgeBoard document's inference endpoints ----

    def service_base64(self, path_mid=None):
        query = parsing.request_query(path_mid)
        until = self.deadline(query)
        body = parsing.read_body(self.settings.max_body_bytes)
        mid = parsing.model_id(single(query, "mid"))
        self.check_model(mid)  # an unknown id is refused before any decoding
        doc = parsing.json_object(body)
        del body
        show = truthy(doc["show"]) if "show" in doc else truthy(first(query, "show"))
        decoded = self.decode(parsing.base64_image(doc.get("image")), [mid], show, until)
        return self.infer(mid, decoded, show, until)

    def service_binary(self, path_mid=None):
        query = parsing.request_query(path_mid)
        until = self.deadline(query)
        body = parsing.read_body(self.settings.max_body_bytes)
        fields = {}
        if request.content_type.startswith("multipart/"):
            # The document calls this upload "a form" while showing a raw body: take both.
            fields, files = parsing.form(body)
            body = parsing.pick_file(files)
        mid = parsing.model_id(single(query, "mid") or single(fields, "mid"))
        self.check_model(mid)
        show = truthy(first(query, "show") or first(fields, "show"))
        return self.infer(mid, self.decode(body, [mid], show, until), show, until)

    def service_multipart(self):
        query = parsing.request_query()
        until = self.deadline(query)
        body = parsing.read_body(self.settings.max_body_bytes)
        if not request.content_type.startswith("multipart/"):
            raise BadRequest("send multipart/form-data with the image in a 'file' part and the model ids in "
                             "'mids' (e.g. mids=[1,2]); got Content-Type %r" % short(request.content_type))
        fields, files = parsing.form(body)
        del body
        mids = parsing.model_ids(fields.get("mids") or query.get("mids") or fields.get("mid") or query.get("mid")
                                 or [], self.settings.max_mids)
        if not mids:
            raise BadRequest("the form has no 'mids' field: list the model ids, e.g. mids=[1,2] (GET /api/models)")
        for mid in mids:
            self.engine.model(mid)  # one unknown id refuses the whole request, naming it
        request.environ["edgeapp.model"] = str(mids[0]) if len(set(mids)) == 1 else "multi"
        show = truthy(first(query, "show") or first(fields, "show"))
        decoded = self.decode(parsing.pick_file(files), mids, show, until)  # decoded once, run by every model
        done = {}
        out = []
        for mid in mids:
            if mid not in done:
                done[mid] = self.infer(mid, decoded, show, until)
            entry = {"model_id": mid}
            entry.update(done[mid])
            out.append(entry)
        return out

    # ---- models, health, status ----

    def models(self):
        out = self.engine.describe()
        for d in out:  # what the push tool compares with the archive it pushed (edgeapp.bundle_digest)
            d["sha256"] = self.digests.of(self.engine.bundles[d["id"]].folder)
        return out

    def reload_models(self):
        """Re-read the model folder while serving (as SIGHUP does): what was added, replaced, removed."""
        if self.reload is None:
            raise NotFound("this server cannot reload its models")
        return reload_answer(self.reload())

    def push_model(self):
        """Install the bundle archive in the body (edgeapp.model_push), then reload."""
        if self.pushes is None:
            raise NotFound("this server cannot install models")
        limit = self.settings.max_bundle_bytes
        done = self.pushes.push(lambda out: parsing.copy_body(out, limit, "EDGEAPP_MAX_BUNDLE_BYTES"))
        return dict(done, reload=reload_answer(done["reload"]))

    def delete_model(self, mid):
        if self.pushes is None:
            raise NotFound("this server cannot remove models")
        done = self.pushes.delete(parsing.model_id(mid))
        return dict(done, reload=reload_answer(done["reload"]))

    def health(self):
        """GET /api/health when the selector thread did not answer it (Api.quick): the same answer."""
        return self.readiness(every_model="balancer" in request.query)

    def readiness(self, every_model=False):
        """Ready or NotReady. State only: no accelerator round trip, so this answers while
        inference is saturated. every_model (a load balancer's check): a board with any model
        failed is not ready either, so the balancer sends that model's requests to the boards
        that serve it instead of to one that answers 404."""
        state = accel_status(self.accel)["state"]
        if state != "ready":
            raise _not_ready("not ready: the accelerator is %s" % state)
        engine = self.engine
        failed = "; ".join("%d: %s" % (mid, why) for mid, why in sorted(engine.failed.items()))
        if not engine.models:
            raise _not_ready("not ready: no model is ready (%s)" % (failed or "none installed"))
        if every_model and failed:
            raise _not_ready("not ready for a load balancer: a model failed (%s)" % failed)
        return {"ready": True, "state": state, "version": __version__,
                "uptime_s": round(time.time() - self.started, 1),
                "models_ready": sorted(engine.models), "models_failed": sorted(engine.failed)}

    def quick(self, method, target, peer=None):
        """The HTTP server's selector thread answers GET /api/health with this, without a thread
        (edgeapp.httpd.Server.quick): (status, headers, body) or None for everything else. A
        balancer's check (?balancer=NAME) from address peer is recorded for /api/status."""
        if method != b"GET" or target.split(b"?", 1)[0] != b"/api/health":
            return None
        t0 = time.monotonic()
        headers = [("Content-Type", JSON_TYPE)] + SECURITY_HEADERS
        name = balancers.balancer_name(target)
        try:
            status, code, body = 200, 0, dumps(success(self.readiness(every_model=name is not None))).encode("utf-8")
            answer = "ready"
        except EdgeError as e:
            status, code, body, answer = e.status, e.code, error_bytes(e), e.msg
            retry = retry_after_header(e)
            if retry is not None:
                headers.append(("Retry-After", retry))
        if name is not None:
            self.balancers.saw(name, peer, status, answer)
        self.metrics.observe("health", "-", code, {"total": ms(t0)})
        return status, headers, body

    def status(self):
        data = {"version": __version__, "uptime_s": round(time.time() - self.started, 1)}
        data.update(accel_status(self.accel))
        data["requests_in_flight"] = self.in_flight.value
        data["memory"] = budget.measure(self.accel, self.settings)  # the README's formula, live
        if self.callbacks is not None:
            data["callbacks"] = self.callbacks.stats()
        status = self.accel.model_status()
        data["models"] = self._model_status(status)
        # {name: version} of the engines that run models
        data["engines"] = {st["engine"]: st.get("engine_version") for st in status.values()
                           if st.get("engine") and st.get("ready")}
        faces = self.faces.status()
        if faces is not None:
            data["faces"] = faces  # people, faces, memory; faces of another model, to register again
        data["balancers"] = self.balancers.report()  # the load balancers checking this board, if any
        data["board"] = getattr(self.settings, "board", None)
        data["urls"] = netinfo.service_urls(self.settings.host, self.settings.port)
        ok, reason = verdict.verdict("READY" if data["state"] == "ready" else data["state"].upper(),
                                     len(self.engine.failed), faces=faces)  # its config was read, or it would not run
        data["health"] = {"healthy": ok, "word": verdict.word(ok), "reason": reason}  # edgeapp-diag's verdict
        return data

    def status_history(self):
        """The last minutes of figures (edgeapp.history), after ?since=T (seconds since the epoch)."""
        return self.history.since(parsing.since_time(first(parsing.request_query(), "since")))

    def live_gauges(self):
        """What each history sample reads at its end."""
        st = accel_status(self.accel)
        return {"state": st["state"], "queue_depth": st["queue_depth"], "queue_capacity": st["queue_capacity"],
                "queue_line": st["queue_line"], "in_flight": self.in_flight.value, "restarts": st["restarts"],
                "memory": budget.measure(self.accel, self.settings)}

    def answered(self, status):
        """Every answer's status line (AnswerHeaders): the 503s are counted for the page's plots."""
        if status.startswith("503"):
            self.history.refused()

    def refused(self, err):
        """An error the HTTP server answered by itself (the shed's Busy, no thread free): the same count."""
        if err.status == 503:
            self.history.refused()

    def _model_status(self, status):
        engine = self.engine
        stats = engine.stats()
        runs = self.accel.model_timing()
        out = []
        for mid in sorted(engine.bundles):
            entry = {"id": mid, "name": engine.bundles[mid].name, "ready": mid in engine.models,
                     "engine": status.get(mid, {}).get("engine")}
            entry.update(stats.get(mid, {}))  # requests, errors, latency_ms {p50, p95, p99}
            run = runs.get(mid, {})
            entry["accelerator_ms"] = run.get("accelerator_ms", {"mean": None, "p50": None})
            entry["accelerator_s_total"] = run.get("accelerator_s_total", 0.0)
            entry["input_shape"] = run.get("input_shape") or engine.bundles[mid].input_shape
            out.append(entry)
        return out

    # ---- answers in their own format ----

    def prometheus(self):
        # The Prometheus text format, not the envelope; behind the token like everything but health.
        try:
            if self.settings.token:
                parsing.check_token(self.settings.token)
        except EdgeError as e:
            return error_body(e)
        response.content_type = "text/plain; version=0.0.4; charset=utf-8"
        return self.metrics.render(gauges(self.engine, self.accel, self.in_flight, self.callbacks)).encode("utf-8")

    def openapi_document(self):
        response.content_type = JSON_TYPE
        return json.dumps(openapi.document()).encode("utf-8")

    def root(self):
        # Browsers go to the try-it page; other clients (e.g. an NVR's alive check) get a 200.
        if "text/html" in request.get_header("Accept", ""):
            bottle.redirect("/ui/")
        return {"name": "edgeapp", "version": __version__, "ui": "/ui/", "health": "/api/health"}

    def ui(self, name="index.html"):
        answer = self.page.answer(name, request.get_header("If-None-Match"))
        if answer is None:  # the page's own files only: no path ever comes from the client
            return error_body(NotFound("no file %s in the page; open /ui/" % short(name)))
        status, headers, body = answer
        response.status = status
        for key, value in headers:
            response.set_header(key, value)
        return body


def reload_answer(done):
    """A reload's result as JSON keys: model ids as strings."""
    return {k: ({str(m): why for m, why in v.items()} if isinstance(v, dict) else v) for k, v in done.items()}


def forgive_slashes():
    """before_request: clients that join URL parts carelessly send `/api//model/...` or a trailing
    slash. (A leading `//` never gets here: cheroot refuses it as an absolute URI.)"""
    path = request.environ["PATH_INFO"]
    if "//" in path or (path.endswith("/") and path != "/"):
        request.environ["PATH_INFO"] = re.sub("/+", "/", path).rstrip("/") or "/"


def _not_ready(msg, retry_after=2):
    err = NotReady(msg)
    err.retry_after = retry_after
    return err


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
