"""The last minutes of the service's figures, for the page's plots (GET /api/status/history).

One sample every PERIOD_SECONDS, the last KEEP of them (ten minutes), so a page opened now shows
what happened before it was opened. A sample holds what happened during its period (each model's
answered runs, errors and latency percentiles; the 503s) and the gauges read at its end (queue,
line, memory, restarts). Memory is bounded: KEEP samples, and per model and period at most
LATENCIES_KEPT latencies (a uniform sample of them when there are more).
"""
import collections
import logging
import random
import threading
import time

PERIOD_SECONDS = 2.0
KEEP = 300
LATENCIES_KEPT = 256

log = logging.getLogger("edgeapp.history")


class Runs:
    """One model's runs in the current period."""
    __slots__ = ("requests", "errors", "latencies")

    def __init__(self):
        self.requests, self.errors, self.latencies = 0, 0, []

    def add(self, ms, ok, rng):
        self.requests += 1
        if not ok:
            self.errors += 1
            return
        if len(self.latencies) < LATENCIES_KEPT:
            self.latencies.append(ms)
        else:  # reservoir sampling: every latency of the period equally likely to be kept
            i = rng.randrange(self.requests)
            if i < LATENCIES_KEPT:
                self.latencies[i] = ms

    def figures(self):
        lat = sorted(self.latencies)
        return {"requests": self.requests, "errors": self.errors, "p50": _pct(lat, 0.50), "p95": _pct(lat, 0.95)}


def _pct(ordered, p):
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1) if ordered else None


class History:
    """read_gauges() -> a dict of the figures read at a sample's end (Api.live_gauges). The service
    calls tick() often (its main loop, every half second); model_run() and refused() count as
    things happen, from any thread."""

    def __init__(self, read_gauges, period=PERIOD_SECONDS, keep=KEEP, start=None):
        self.read_gauges, self.period, self.keep = read_gauges, period, keep
        self._lock = threading.Lock()
        self._samples = collections.deque(maxlen=keep)
        self._runs = {}
        self._refused = 0
        self._due = (time.time() if start is None else start) + period  # the first sample's time
        self._rng = random.Random(0)
        self._failed = False  # a failed sample was logged

    def model_run(self, mid, seconds, ok):
        with self._lock:
            runs = self._runs.get(mid)
            if runs is None:
                runs = self._runs[mid] = Runs()
            runs.add(seconds * 1000.0, ok, self._rng)

    def refused(self):
        with self._lock:
            self._refused += 1

    def tick(self, now=None):
        """Take the sample when its period is over (once: a late tick does not make up samples)."""
        now = time.time() if now is None else now
        if now < self._due:
            return
        self._due += self.period
        if self._due <= now:  # held up for more than a period (a reload): start again from now
            self._due = now + self.period
        try:
            self.sample(now)
        except Exception:  # the plots lose a sample; the service's main loop must go on
            if not self._failed:
                log.exception("a sample of the page's figures failed (said once; the service goes on)")
            self._failed = True

    def sample(self, now=None):
        gauges = self.read_gauges()  # outside the lock: it reads /proc and the accelerator's status
        with self._lock:
            runs, refused, self._runs, self._refused = self._runs, self._refused, {}, 0
            entry = {"t": round(time.time() if now is None else now, 3),
                     "models": {str(mid): r.figures() for mid, r in sorted(runs.items())}, "refused": refused}
            entry.update(gauges)
            self._samples.append(entry)

    def since(self, t=None):
        """GET /api/status/history's data: the samples taken after t (every kept one when None)."""
        with self._lock:
            samples = [s for s in self._samples if t is None or s["t"] > t]
        return {"period_s": self.period, "keep": self.keep, "now": round(time.time(), 3), "samples": samples}
