"""Start-up and shutdown: model bundles → accelerator → Engine → Bottle app, served by edgeapp.httpd.

The port opens first and answers 503 "starting" (JSON) while the models load and warm up, so
/api/health can tell "alive but not ready" from "down". SIGTERM and Ctrl-C stop the server,
then the accelerator, and serve() returns 0. When ready, one banner line (version, board, URLs,
models ready) goes to the log and, if configured, to the console: the first thing a person on
the serial console sees. The pidfile, if configured, exists exactly while the process serves.
"""
import errno
import os
import logging
import signal
import threading
import time

from edgeapp import __version__, budget, config, facedb, memory, model_store, netinfo, pidfile
from edgeapp.api import make_app, starting_app
from edgeapp.bundle import load_bundles
from edgeapp.engine import Engine
from edgeapp.httpd import Limits as HTTPLimits, Server as HTTPServer
from edgeapp.worker import WorkerAccelerator

log = logging.getLogger("edgeapp.server")

SOCKET_TIMEOUT = 10  # seconds a connection may stay silent (slow upload, idle keep-alive)
SHUTDOWN_TIMEOUT = 5  # seconds in-flight requests get to finish on stop


def _make_accelerator(bundles, settings, excluded=None):
    return WorkerAccelerator(bundles, slots=settings.queue_depth, job_timeout=settings.request_timeout,
                             hang_timeout=settings.hang_timeout or None, queue_wait=settings.queue_wait_ms / 1000.0,
                             threads=settings.lite_threads or None, excluded=excluded,
                             cpus=config.cpu_set(settings.worker_cpus) or None,
                             spin_ms=settings.worker_spin_ms if settings.worker_cpus else 0,
                             power_mode=None if settings.lite_power_mode == "default" else settings.lite_power_mode,
                             engine=settings.engine, ort_threads=settings.ort_threads,
                             slot_bytes=settings.slot_bytes)


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


class Front:
    """What the HTTP server calls, from before the models are loaded: the WSGI app (starting_app
    until the models are warm, then the real API) and the two answers the server's selector
    thread may give from a request's head alone (shed and quick, None until the API is up)."""

    def __init__(self):
        self.app = starting_app
        self.api_shed = None
        self.api_quick = None
        self.api_refused = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)

    def shed(self, method, target, waiting=0):
        shed = self.api_shed
        return None if shed is None else shed(method, target, waiting)

    def quick(self, method, target, peer=None):
        quick = self.api_quick
        return None if quick is None else quick(method, target, peer)

    def refused(self, err):
        refused = self.api_refused
        if refused is not None:
            refused(err)

    def serve_api(self, app):
        """From now on: make_app's app, with its own shed and quick answers, told of the refusals."""
        self.app, self.api_shed, self.api_quick, self.api_refused = app, app.shed, app.quick, app.refused


def serve(settings):
    """Run the service until SIGTERM or Ctrl-C. Returns the process exit code."""
    if settings.pidfile:
        try:
            pidfile.write(settings.pidfile)
        except OSError as e:  # serving matters more than the pidfile: say so and go on
            log.warning("cannot write the pidfile %s: %s", settings.pidfile, e)
    try:
        return Service(settings).run()
    finally:
        if settings.pidfile:
            pidfile.remove(settings.pidfile)


def split_cpus(worker_cpus):
    """Keep this process (and every thread it starts from now on) off the CPUs reserved for the
    accelerator worker, so each side keeps its core and its caches. Measured on the 2-core host,
    five alternations, wrk c=4 on the text-direction model: +4 to +26% req/s, median +8% (BENCHMARKS.md)."""
    reserved = config.cpu_set(worker_cpus)
    if not reserved or not hasattr(os, "sched_setaffinity"):
        return None
    available = os.sched_getaffinity(0)
    missing = reserved - available
    if missing:
        raise ValueError("EDGEAPP_WORKER_CPUS=%s: CPU %s is not available here (CPUs: %s)"
                         % (worker_cpus, config.format_cpus(missing), config.format_cpus(available)))
    rest = available - reserved
    if not rest:
        raise ValueError("EDGEAPP_WORKER_CPUS=%s leaves no CPU for the HTTP server (CPUs: %s); name fewer"
                         % (worker_cpus, config.format_cpus(available)))
    # Every thread: numpy's and OpenCV's pools started at import time; later ones inherit it.
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), rest)
        except OSError:
            pass  # a thread that has just ended
    return rest


class Service:
    """One run of the service, in uvicorn's shape: startup() (listen, then load and warm the
    models), main_loop() (serve; reload on SIGHUP) and shutdown() (stop HTTP, then the worker).

    SIGTERM and Ctrl-C during startup abandon the loading at once (the handler raises, as Ctrl-C
    does: loading blocks in Paddle Lite for up to minutes); after it they end the main loop."""

    def __init__(self, settings):
        self.settings = settings
        self.front = Front()
        self.server = self.http = self.accel = self.engine = self.memory = self.gallery = self.app = None
        self.started_at = time.monotonic()
        self.starting = True
        self.stop_asked = threading.Event()
        self.reload_asked = threading.Event()

    def run(self):
        self.started_at = time.monotonic()
        memory.tame_malloc()
        log.info("edgeapp %s starting: %s", __version__, self.settings.describe())
        previous = self._install_signals()
        try:
            code = self.startup()
            if code is None:
                code = self.main_loop()
            return self.shutdown(code)
        except _Interrupted:
            return self.shutdown(0)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _install_signals(self):
        previous = {s: signal.signal(s, self._on_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        return previous

    def _on_hangup(self, signum, frame):
        self.reload_asked.set()  # done by the main loop: a signal handler must not block

    def _on_stop(self, signum, frame):
        name = signal.Signals(signum).name
        log.info("%s received: stopping", name)
        self.stop_asked.set()
        if self.starting:
            raise _Interrupted(name)  # abandon the loading now, as Ctrl-C would

    # -- startup ---------------------------------------------------------------------------
    def startup(self):
        """Listen, then load the models. None when ready to serve, else the exit code."""
        settings = self.settings
        try:
            http_cpus = split_cpus(settings.worker_cpus)
        except ValueError as e:
            log.error("%s", e)
            return 1
        if http_cpus:
            log.info("CPUs: HTTP %s, accelerator worker %s", config.format_cpus(http_cpus), settings.worker_cpus)
        recover_models(settings.model_dir)
        # A broken bundle folder is reported and skipped: the others still serve. (A missing
        # model folder still stops us: BundleError.)
        unreadable = {}
        bundles = load_bundles(settings.model_dir, errors=unreadable)
        for folder, why in sorted(unreadable.items()):
            log.error("skipping the bundle in %s: %s", folder, why)
        if not self._listen():
            return 1
        log.info("listening on %s; loading %d model(s) from %s", netinfo.url(*self.address()), len(bundles),
                 settings.model_dir)
        code = self._load(bundles)
        self.starting = False
        if code is None:
            self._announce_ready(bundles)
        return code

    def _listen(self):
        """The port opens (and answers 503 "starting") before the models load."""
        self.server = make_http_server(self.settings, self.front)
        try:
            self.server.prepare()
        except OSError as e:
            log.error("cannot listen on %s port %d: %s", self.settings.host, self.settings.port, e)
            return False
        self.http = threading.Thread(target=self.server.serve, name="http")
        self.http.daemon = True
        self.http.start()
        return True

    def address(self):
        return self.server.bind_addr[:2]

    def _load(self, bundles):
        """Start the worker and the engine. None on success, else the exit code."""
        settings = self.settings
        try:
            # In the main thread on purpose: the worker process asks the kernel to kill it when the
            # thread that started it ends (PR_SET_PDEATHSIG is per thread), so that thread must live.
            self.accel, self.memory = _start_within_budget(bundles, settings)
            self.gallery = facedb.FaceGallery(settings.face_db, settings.face_max_users, settings.face_max_per_user,
                                              settings.face_threshold)
            self.engine = Engine(bundles, self.accel, reduce=settings.reduced_decode == "on", gallery=self.gallery)
        except budget.OverBudget as e:
            log.error("%s", e)
            return 1
        except Exception as e:
            log.error("loading the models failed: %s", e, exc_info=True)
            return 1
        self.app = make_app(self.engine, self.accel, settings, reload=self.reload)
        self.front.serve_api(self.app)
        return None

    def _announce_ready(self, bundles):
        engine, fig, settings = self.engine, self.memory, self.settings
        ready = ", ".join("%d %s" % (mid, engine.bundles[mid].name) for mid in sorted(engine.models)) or "none"
        failed = "; ".join("%d %s: %s" % (mid, engine.bundles[mid].name, why)
                           for mid, why in sorted(engine.failed.items())) or "none"
        engines_used = sorted({st["engine"] for st in self.accel.model_status().values()
                               if st.get("ready") and st.get("engine")})
        _announce(banner(settings.board, netinfo.service_urls(*self.address()), len(engine.models), len(bundles),
                         engines_used), settings.console)
        log.info("ready in %.1f s; models ready: %s; failed: %s", time.monotonic() - self.started_at, ready, failed)
        log.info("memory: %.0f MB = HTTP %.0f + worker %.0f + slots %.0f + bodies %.0f (budget %s)",
                 fig["total_mb"], fig["http_mb"], fig["worker_mb"], fig["slots_mb"], fig["bodies_mb"],
                 "%d MB" % settings.memory_budget_mb if settings.memory_budget_mb else "not set")
        if not engine.models:
            log.error("no model is ready: /api/health answers 503 until this is fixed")

    # -- main loop and shutdown --------------------------------------------------------------
    def main_loop(self):
        """Serve until asked to stop; returns the exit code."""
        while not self.stop_asked.wait(0.5):
            self.app.history.tick()  # the page's plots: a sample every 2 s
            if self.reload_asked.is_set():
                self.reload_asked.clear()
                try:
                    self.reload()
                except Exception:
                    log.exception("reloading the models failed; the models loaded before still serve")
            if not self.http.is_alive():
                log.error("the HTTP server thread ended unexpectedly")
                return 1
        return 0

    def reload(self):
        return reload_models(self.engine, self.accel, self.settings)

    def shutdown(self, code):
        """Stop HTTP (in-flight requests get SHUTDOWN_TIMEOUT to finish), then the worker."""
        self.starting = False
        if self.server is not None:
            self.server.stop()
        if self.accel is not None:
            try:
                self.accel.stop()
            except Exception:
                log.exception("stopping the accelerator failed")
                code = code or 1
        if self.gallery is not None:
            self.gallery.close()
        log.info("stopped")
        return code


def make_http_server(settings, front):
    """edgeapp's HTTP server, with its defences against slow, idle and hostile clients (edgeapp/httpd/)."""
    return HTTPServer(
        (settings.host, settings.port), front,
        threads=settings.threads,  # threads for requests with a body (each may hold one in memory)
        server_name="edgeapp",  # no version in the Server header (GET /api/health tells it)
        # Listen backlog: connections the kernel holds until the selector thread accepts them (no
        # thread, no buffer of ours). At 16, a burst of 64 clients lost SYNs, and a lost SYN is
        # retried after 1 s, then 3 s: the slowest 503s of the overload benchmark took 2.5-4 s.
        backlog=128,
        # Bounded queue of requests waiting for a thread; when it is full, an immediate JSON 503.
        queue_size=settings.threads * 4,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        shed=front.shed, quick=front.quick,  # both say nothing until the API is up
        refused=front.refused,  # the 503s the server answers itself, for the page's plots
        limits=HTTPLimits(idle_timeout=SOCKET_TIMEOUT),
    )


def recover_models(model_dir):
    """Finish or undo a model push or delete that a power cut interrupted (edgeapp.model_store),
    before the bundles are read. A read-only model folder has nothing to recover."""
    try:
        for line in model_store.recover(model_dir):
            log.warning("model folder %s: %s", model_dir, line)
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.EACCES, errno.ENOENT):
            log.error("model folder %s: recovering an interrupted model push failed: %s", model_dir, e)


def reload_models(engine, accel, settings):
    """Re-read the model folder: load new or changed bundles, drop removed ones, while serving
    (SIGHUP, `S95edgeapp reload`, `systemctl reload edgeapp` or POST /api/models/reload)."""
    errors = {}
    bundles = load_bundles(settings.model_dir, errors=errors)
    done = accel.reload(bundles)
    engine.reload(bundles)
    done["bundle_errors"] = errors
    fig = budget.measure(accel, settings)
    if settings.memory_budget_mb and fig["total_mb"] > settings.memory_budget_mb:
        log.warning("after the reload edgeapp needs %.0f MB, over its budget of %d MB: remove a model "
                    "and reload, or raise EDGEAPP_MEMORY_BUDGET_MB", fig["total_mb"], settings.memory_budget_mb)
    log.info("reload: added %s, replaced %s, removed %s, failed %s, unreadable bundles %s",
             done["added"], done["replaced"], done["removed"], done["failed"], errors or "none")
    return done


class _Interrupted(BaseException):
    """SIGTERM or Ctrl-C while the models load (a BaseException, like KeyboardInterrupt)."""


def banner(board, urls, ready, total, engines_used=()):
    """The one line that says the service is up and where: plain ASCII, for a serial console."""
    return "edgeapp %s ready on %s: %s (%d of %d models ready%s)" % (
        __version__, board or "unknown board", " ".join(urls), ready, total,
        " on " + " and ".join(engines_used) if engines_used else "")


def _announce(line, console):
    log.info("%s", line)
    if not console:
        return
    try:
        # O_NOCTTY: a daemon must not adopt the console as its terminal; O_NONBLOCK: a stuck
        # serial line must not stall the service.
        fd = os.open(console, os.O_WRONLY | os.O_APPEND | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            os.write(fd, (line + "\n").encode("ascii", "replace"))
        finally:
            os.close(fd)
    except OSError as e:
        log.warning("cannot write the banner to %s: %s", console, e)
