"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

Small and dependency-free on purpose: the board image carries no prometheus_client. Counters and
histograms live in memory with a fixed set of label values (endpoints, model ids, codes and phases
are all bounded), so the memory they take is bounded too.
"""
import threading

# Seconds; spans a 2 ms classifier to a multi-second OCR page on a slow board.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PHASES = ("queue", "decode", "preprocess", "inference", "postprocess", "render", "total")


class Histogram:
    __slots__ = ("counts", "sum", "count")

    def __init__(self):
        self.counts = [0] * len(BUCKETS)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds):
        self.sum += seconds
        self.count += 1
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                break


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._requests = {}   # (endpoint, model, code) -> count
        self._latency = {}    # (endpoint, phase) -> Histogram

    def observe(self, endpoint, model, code, timing_ms):
        """One finished request: its envelope code and its Server-Timing phases (milliseconds)."""
        with self._lock:
            key = (endpoint, str(model), str(code))
            self._requests[key] = self._requests.get(key, 0) + 1
            for phase in PHASES:
                if phase in timing_ms:
                    h = self._latency.get((endpoint, phase))
                    if h is None:
                        h = self._latency[(endpoint, phase)] = Histogram()
                    h.observe(timing_ms[phase] / 1000.0)

    def render(self, gauges):
        """The exposition text. gauges: [(name, help, type, [(labels dict, value), ...]), ...]
        for figures read at scrape time (queue depth, memory, restarts...)."""
        out = []
        with self._lock:
            _family(out, "edgeapp_requests_total", "Requests answered, by endpoint, model id and envelope code.",
                    "counter", [({"endpoint": e, "model": m, "code": c}, n)
                                for (e, m, c), n in sorted(self._requests.items())])
            name = "edgeapp_request_phase_seconds"
            out.append("# HELP %s Where request time went (queue wait, decode, preprocess, inference, "
                       "postprocess, render, total)." % name)
            out.append("# TYPE %s histogram" % name)
            for (endpoint, phase), h in sorted(self._latency.items()):
                labels = {"endpoint": endpoint, "phase": phase}
                cumulative = 0
                for bound, n in zip(BUCKETS, h.counts):
                    cumulative += n
                    out.append("%s_bucket%s %d" % (name, _labels(dict(labels, le=_num(bound))), cumulative))
                out.append("%s_bucket%s %d" % (name, _labels(dict(labels, le="+Inf")), h.count))
                out.append("%s_sum%s %s" % (name, _labels(labels), _num(h.sum)))
                out.append("%s_count%s %d" % (name, _labels(labels), h.count))
        for g in gauges:
            _family(out, *g)
        return "\n".join(out) + "\n"


def _family(out, name, help_text, kind, samples):
    out.append("# HELP %s %s" % (name, help_text))
    out.append("# TYPE %s %s" % (name, kind))
    for labels, value in samples:
        if value is not None:
            out.append("%s%s %s" % (name, _labels(labels), _num(value)))


def _labels(labels):
    if not labels:
        return ""
    return "{%s}" % ",".join('%s="%s"' % (k, _escape(v)) for k, v in sorted(labels.items()))


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(x):
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, int):
        return str(x)
    return repr(float(x))
