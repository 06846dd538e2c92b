"""Start-up and shutdown: model bundles → accelerator → Engine → Bottle app, served by cheroot.

The port opens first and answers 503 "starting" (JSON) while the models load and warm up, so
/api/health can tell "alive but not ready" from "down". SIGTERM and Ctrl-C stop the server,
then the accelerator, and serve() returns 0.
"""
import logging
import signal
import socket
import threading
import time

from cheroot import wsgi

from edgeapp import __version__, budget, memory
from edgeapp.api import make_app, starting_app
from edgeapp.bundle import load_bundles
from edgeapp.engine import Engine
from edgeapp.worker import WorkerAccelerator

log = logging.getLogger("edgeapp.server")

SOCKET_TIMEOUT = 10  # seconds a connection may stay silent (slow upload, idle keep-alive)
SHUTDOWN_TIMEOUT = 5  # seconds in-flight requests get to finish on stop


def _make_accelerator(bundles, settings, excluded=None):
    return WorkerAccelerator(bundles, slots=settings.queue_depth, job_timeout=settings.request_timeout,
                             excluded=excluded)


def _start_within_budget(bundles, settings):
    """Start the worker; apply the memory budget. Returns the accelerator, or raises OverBudget."""
    accel = _make_accelerator(bundles, settings)
    try:
        accel.start()  # blocks until every model is loaded and warmed at its input shape
        fig = budget.measure(accel, settings)
        why = budget.over_budget(settings.memory_budget_mb, fig, accel.model_status(), bundles)
    except BaseException:  # including a signal during warm-up: leave no worker behind
        accel.stop()
        raise
    if why is None:
        return accel, fig
    if settings.memory_policy != "drop":
        accel.stop()
        raise budget.OverBudget(why)
    drop = budget.models_to_drop(settings.memory_budget_mb, fig, accel.model_status())
    log.warning("%s Policy 'drop': starting without model(s) %s.", why, ", ".join(map(str, drop)))
    reason = "left out: it does not fit the memory budget of %d MB" % settings.memory_budget_mb
    accel.stop()
    accel = _make_accelerator(bundles, settings, excluded={mid: reason for mid in drop})
    accel.start()
    return accel, budget.measure(accel, settings)


class _Switch:
    """The WSGI app cheroot calls: starting_app until the models are warm, then the real API."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def serve(settings):
    """Run the service until SIGTERM or Ctrl-C. Returns the process exit code."""
    t0 = time.monotonic()
    memory.tame_malloc()
    log.info("edgeapp %s starting: %s", __version__, settings.describe())
    bundles = load_bundles(settings.model_dir)  # a broken bundle stops us here (BundleError)

    switch = _Switch(starting_app)
    server = wsgi.Server(
        (settings.host, settings.port), switch,
        numthreads=settings.threads,
        server_name="edgeapp/" + __version__,
        request_queue_size=max(16, settings.threads * 2),  # listen backlog
        # Bounded queue of accepted connections waiting for a thread (cheroot's default has no
        # bound); when it is full, cheroot answers 503 itself.
        accepted_queue_size=settings.threads * 4,
        accepted_queue_timeout=1,
        timeout=SOCKET_TIMEOUT,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    try:
        server.prepare()
    except OSError as e:
        log.error("cannot listen on %s port %d: %s", settings.host, settings.port, e)
        return 1
    host, port = server.bind_addr[:2]
    http = threading.Thread(target=server.serve, name="http")
    http.daemon = True
    http.start()
    log.info("listening on %s; loading %d model(s) from %s", _url(host, port), len(bundles), settings.model_dir)

    stop = threading.Event()
    loading = [True]

    def on_signal(signum, frame):
        name = signal.Signals(signum).name
        log.info("%s received: stopping", name)
        stop.set()
        if loading[0]:
            raise _Interrupted(name)  # abandon the loading now, as Ctrl-C would

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    accel = None
    try:
        try:
            # In the main thread on purpose: the worker process asks the kernel to kill it when the
            # thread that started it ends (PR_SET_PDEATHSIG is per thread), so that thread must live.
            accel, fig = _start_within_budget(bundles, settings)
            engine = Engine(bundles, accel)
        except _Interrupted:
            loading[0] = False
            return _shutdown(server, accel, 0)
        except budget.OverBudget as e:
            loading[0] = False
            log.error("%s", e)
            return _shutdown(server, None, 1)
        except Exception as e:
            loading[0] = False
            log.error("loading the models failed: %s", e, exc_info=True)
            return _shutdown(server, accel, 1)
        loading[0] = False
        switch.app = make_app(engine, accel, settings)
        ready = ", ".join("%d %s" % (mid, engine.bundles[mid].name) for mid in sorted(engine.models)) or "none"
        failed = "; ".join("%d %s: %s" % (mid, engine.bundles[mid].name, why)
                           for mid, why in sorted(engine.failed.items())) or "none"
        log.info("edgeapp %s ready in %.1f s on %s; models ready: %s; failed: %s",
                 __version__, time.monotonic() - t0, _urls(host, port), ready, failed)
        log.info("memory: %.0f MB = HTTP %.0f + worker %.0f + slots %.0f + bodies %.0f (budget %s)",
                 fig["total_mb"], fig["http_mb"], fig["worker_mb"], fig["slots_mb"], fig["bodies_mb"],
                 "%d MB" % settings.memory_budget_mb if settings.memory_budget_mb else "not set")
        if not engine.models:
            log.error("no model is ready: /api/health answers 503 until this is fixed")
        while not stop.wait(1.0):
            if not http.is_alive():
                log.error("the HTTP server thread ended unexpectedly")
                return _shutdown(server, accel, 1)
        return _shutdown(server, accel, 0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Interrupted(BaseException):
    """SIGTERM or Ctrl-C while the models load (a BaseException, like KeyboardInterrupt)."""


def _shutdown(server, accel, code):
    server.stop()  # closes the listener, lets in-flight requests finish (SHUTDOWN_TIMEOUT)
    if accel is not None and hasattr(accel, "stop"):
        try:
            accel.stop()
        except Exception:
            log.exception("stopping the accelerator failed")
            code = code or 1
    log.info("stopped")
    return code


def _url(host, port):
    if ":" in host:
        host = "[%s]" % host
    return "http://%s:%d" % (host, port)


def _urls(host, port):
    """The listening URL, and for a wildcard address also the one a LAN client would use."""
    url = _url(host, port)
    if host not in ("0.0.0.0", "::"):
        return url
    return "%s (e.g. %s)" % (url, _url(_lan_address(), port))


def _lan_address():
    # Connecting a UDP socket sends nothing; it only picks the interface a packet would leave by.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()
