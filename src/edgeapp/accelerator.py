"""The accelerator side of every model: run(mid, inputs) -> outputs.

Model types (edgeapp.models.*) only ever call Accelerator.run(); whether the predictors live in this
process (LocalAccelerator: CLI, tests, and the body of the worker process) or behind a queue in
another process is invisible to them.
"""
import collections
import logging
import os
import threading
import time

import numpy as np

from edgeapp import engines
from edgeapp.errors import Timeout, UnknownModel
from edgeapp.memory import mb, rss_bytes
from edgeapp.slots import Reservation

log = logging.getLogger("edgeapp.accelerator")


class Accelerator:
    def __init__(self):
        self._runs = {}  # mid -> RunStats
        self._runs_lock = threading.Lock()

    def run(self, mid, inputs, deadline=None, timing=None, reservation=None):
        """inputs: list of float32 NCHW arrays. Returns the model's outputs as a list of arrays.

        deadline: a time.monotonic() value; work still waiting then is dropped (raises Timeout).
        timing: a dict to which "queue" and "inference" milliseconds of this call are added.
        reservation: the request's reserve(): its room becomes this job's slot (a request's
        later jobs find their room as any unreserved job does).
        """
        raise NotImplementedError

    def refuses_now(self, waiting=0):
        """True when a job now would certainly be refused as Busy, with `waiting` requests ahead
        of it that have not asked yet; never waits (the HTTP server's selector thread asks, to
        answer 503 before a thread or the body is spent on it)."""
        return False

    def reserve(self, deadline=None, renew=None):
        """None if a job now would be refused as Busy (queue full): lets the HTTP layer refuse
        before it decodes. Else a Reservation: the room it holds counts against later requests
        until it is given to run() or to release(). An accelerator with a queue may wait a
        little for room. renew: the request's earlier reservation, kept instead of a second one.
        Here (no queue) there is always room and a reservation holds nothing."""
        return renew if renew is not None else Reservation()

    def release(self, reservation):
        """The request lets go of its reservation (a job it did not run); None is fine."""

    def retry_after(self, waiting=0):
        """Whole seconds (at least 1) until a request arriving now, behind `waiting` more, would
        find room: the Retry-After of a Busy answer. Here (no queue): 1."""
        return 1

    def status(self):
        """Queue and worker figures for /api/status."""
        return {}

    def model_status(self):
        """{mid: {"ready": bool, "reason": str|None, "memory_mb": float|None, "warmup_ms": float|None}}"""
        raise NotImplementedError

    def model_timing(self):
        """{mid: {"accelerator_ms": {"mean", "p50"}, "input_shape": [...]}} over recent runs."""
        with self._runs_lock:
            return {mid: r.summary() for mid, r in self._runs.items()}

    def record_run(self, mid, ms, shape, timing, waited_ms):
        """Book one run of model mid (for model_timing) and add its queue and inference ms to the
        request's timing. For the accelerators, after each run."""
        with self._runs_lock:
            runs = self._runs.get(mid)
            if runs is None:
                runs = self._runs[mid] = RunStats()
            runs.add(ms, shape)
        if timing is not None:
            timing["queue"] = timing.get("queue", 0.0) + waited_ms
            timing["inference"] = timing.get("inference", 0.0) + ms


class RunStats:
    """The accelerator's own time per run of one model (recent runs: bounded) and its last shape."""
    WINDOW = 512

    def __init__(self):
        self.ms = collections.deque(maxlen=self.WINDOW)
        self.total_ms = 0.0
        self.shape = None

    def add(self, ms, shape):
        self.ms.append(ms)
        self.total_ms += ms  # all runs since start: busy time over wall time is the utilisation
        self.shape = [int(x) for x in shape]

    def summary(self):
        ms = sorted(self.ms)
        return {"accelerator_ms": {"mean": round(sum(ms) / len(ms), 3) if ms else None,
                                   "p50": round(ms[len(ms) // 2], 3) if ms else None},
                "accelerator_s_total": round(self.total_ms / 1000.0, 6), "input_shape": self.shape}


class LocalAccelerator(Accelerator):
    """Owns one predictor per bundle, in this process, each on its engine (edgeapp.engines).

    At start every model is checked and run once at its input shape: Paddle Lite keeps its memory
    high-water mark forever, and ONNX Runtime's arena grows to what the first runs need, so warming
    at the fixed shape reaches (and measures) all the memory the model will ever take before
    anything is served. (A restarted worker skips the run for the models measured by its first
    start: `cold`.)
    """

    def __init__(self, bundles, settings=None, warm=True, on_load=None, cold=()):
        """settings: engines.Settings (default: Paddle Lite with its defaults).
        on_load(mid) is called before each model is loaded: Paddle Lite aborts the whole process
        on a corrupt model file, so the worker tells its parent which model it is about to load.
        cold: models loaded and checked but not warmed up: a restarted worker's, whose parent
        knows their figures from the first start (their first job reaches the same memory: its
        tensor has the same, fixed, shape)."""
        super().__init__()
        self._bundles = dict(bundles)
        self._predictors = {}
        self._status = {}
        self.output_bytes = {}  # mid -> bytes of all outputs at the fixed input shape (after warm-up)
        self._lock = threading.Lock()  # a predictor runs one job at a time
        self._settings = settings or engines.Settings()
        self._engines = {}  # name -> engine module, imported (and checked) on first use
        self._warm = warm
        for mid in sorted(bundles):
            self.load(bundles[mid], on_load, warm=warm and mid not in cold)

    def engine(self, name):
        """The engine module, imported and its runtime checked on first use. RuntimeCheckFailed
        (wrong answers are certain) stops everything; EngineMissing fails the models that need it."""
        if name not in self._engines:
            module = engines.module(name)
            module.check()
            self._engines[name] = module
        return self._engines[name]

    def load(self, b, on_load=None, warm=None):
        """Load (or replace) one bundle's predictor, check it and warm it up (warm: default as
        constructed). Failures are recorded in model_status(), never raised, except the runtime
        self-check (nothing can be served)."""
        mid = b.id
        with self._lock:
            self._bundles[mid] = b
            self._predictors.pop(mid, None)
        name = engines.choose(b, self._settings.engine)
        path = b.model_files.get(name)
        why = _missing_file(b, name, path)
        if why:
            return self._fail(mid, why, name)
        if on_load is not None:
            on_load(mid)
        before = rss_bytes()
        t0 = time.monotonic()
        try:
            p = self.engine(name).Predictor(path, b.input_shape, self._settings)
            p.selfcheck()
        except engines.RuntimeCheckFailed:
            raise
        except Exception as e:  # what a runtime reports as an exception fails that model only
            return self._fail(mid, "load failed: %s" % e, name)
        warm = self._warm if warm is None else warm
        if warm and not self._warm_up(p, b, name):
            return
        with self._lock:
            self._predictors[mid] = p
        self._status[mid] = {
            "ready": True, "reason": None, "engine": name, "engine_version": self.engine(name).version(),
            "memory_mb": mb(max(0, rss_bytes() - before)),
            "warmup_ms": round((time.monotonic() - t0) * 1000.0, 1),
        }
        log.info("model %d (%s) ready on %s: %s MB after %s at %s, %.0f ms", mid, b.name, name,
                 self._status[mid]["memory_mb"], "warm-up" if warm else "loading (not warmed)", b.input_shape,
                 self._status[mid]["warmup_ms"])

    def _warm_up(self, p, b, name):
        """Run a model at its input shape, so that it takes all the memory it ever will; False
        (and the model failed) if it cannot run."""
        try:
            # Twice, with different data: a second run still allocated a little (measured).
            for fill in (0.0, 0.5):
                outs = p.run([np.full(b.input_shape, fill, dtype=np.float32)])
            self.output_bytes[b.id] = sum(int(o.nbytes) for o in outs)
        except Exception as e:
            self._fail(b.id, "warm-up run failed: %s" % e, name)
            return False
        return True

    def unload(self, mid):
        """Forget a model. (Paddle Lite may keep some of its memory: the process's high-water mark.)"""
        with self._lock:
            self._predictors.pop(mid, None)
            self._bundles.pop(mid, None)
        self._status.pop(mid, None)
        self.output_bytes.pop(mid, None)

    def _fail(self, mid, reason, engine):
        log.error("model %d (%s) on %s: %s", mid, self._bundles[mid].name, engine, reason)
        self._status[mid] = {"ready": False, "reason": reason, "engine": engine, "memory_mb": None,
                             "warmup_ms": None}

    def run(self, mid, inputs, deadline=None, timing=None, reservation=None):
        p = self._predictors.get(mid)
        if p is None:
            raise UnknownModel("model %d is not loaded" % mid)
        check_shape(self._bundles[mid], inputs[0].shape)
        t0 = time.monotonic()
        with self._lock:
            waited = (time.monotonic() - t0) * 1000.0
            if deadline is not None and time.monotonic() > deadline:
                raise Timeout("the request's deadline passed before model %d ran" % mid)
            outs = p.run(inputs)
            ms = p.last_run_ms
        self.record_run(mid, ms, inputs[0].shape, timing, waited)
        return outs

    def last_run_ms(self, mid):
        """The last run's time of one model (the worker process reports it with each result)."""
        return self._predictors[mid].last_run_ms

    def model_status(self):
        return dict(self._status)


def _missing_file(b, name, path):
    """Why bundle b cannot be loaded on engine `name` (path: its file there), or None."""
    if not b.runs_model:
        return "its bundle.json names no model file (\"model\" or \"onnx_model\")"
    if not path:
        return ("its bundle has no %s file (\"%s\" in bundle.json): rebuild the bundles (make models), or "
                "run it on another engine" % (name, engines.FILE_KEYS[name]))
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        # Checked here: Paddle Lite aborts the process on a missing file.
        return "model file %s is missing or empty (rebuild the bundles: make models)" % path
    return None


def check_shape(bundle, shape):
    """Every tensor has exactly the bundle's input shape.

    Two reasons, both measured: Paddle Lite keeps the memory of the largest shape it ever saw, and
    the x86 build gives garbage, then corrupts its heap, when a predictor's input shape changes.
    """
    if list(shape) != bundle.input_shape:
        raise ValueError("tensor %s is not model %d's input shape %s"
                         % (list(shape), bundle.id, bundle.input_shape))

