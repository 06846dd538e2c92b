"""What runs beside a case, in threads of the benchmark's process: the /api/health poller and the
RSS sampler of a server and its children."""
import http.client
import os
import threading
import time

from tools.bench.clients import connect
from tools.bench.common import mb, ms, percentile


def rss_of(pid):
    from edgeapp.memory import rss_bytes  # the service's own reading, so both count alike
    return rss_bytes(pid)


def cpu_seconds(pid):
    """CPU time (user + system, seconds) a process has used, 0.0 once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def tree_cpu(root):
    """{pid: CPU seconds} of root and its descendants."""
    return {pid: cpu_seconds(pid) for pid in process_tree(root)}


def process_tree(root):
    """root and all its descendants, from /proc/<pid>/task/<tid>/children (cheap: no /proc scan)."""
    pids, i = [root], 0
    while i < len(pids):
        pid = pids[i]
        i += 1
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    pids.extend(int(x) for x in f.read().split())
            except (OSError, ValueError):
                pass
    return pids


def tree_rss(root):
    """{pid: RSS bytes} of root and its descendants."""
    return {pid: rss_of(pid) for pid in process_tree(root)}


class Watcher:
    """A daemon thread running self._loop until _halt() (the loop waits on self._stop)."""

    def __init__(self, name):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _loop(self):
        raise NotImplementedError

    def _halt(self, timeout):
        self._stop.set()
        self._thread.join(timeout)


class HealthPoller(Watcher):
    """GET /api/health every `every` seconds on a fresh connection (as a monitor or a probe
    would), from a thread of this process, which is otherwise idle while a case runs."""

    def __init__(self, host, port, every=0.02, max_samples=20000):
        super().__init__("health-poller")
        self.host, self.port, self.every, self.max_samples = host, port, every, max_samples
        self.latencies, self.failures = [], 0

    def _loop(self):
        while not self._stop.is_set() and len(self.latencies) + self.failures < self.max_samples:
            t0 = time.perf_counter()
            try:
                conn = connect(self.host, self.port, 10)
                conn.request("GET", "/api/health")
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status == 200:
                    self.latencies.append(time.perf_counter() - t0)
                else:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
            self._stop.wait(max(0.0, self.every - (time.perf_counter() - t0)))

    def stop(self):
        self._halt(15)
        lat = sorted(self.latencies)
        return {"n": len(lat), "failures": self.failures, "p50_ms": ms(percentile(lat, 50)),
                "p99_ms": ms(percentile(lat, 99)), "max_ms": ms(lat[-1] if lat else None)}


class RssSampler(Watcher):
    """Sum of VmRSS over a server and its children, sampled every `every` seconds."""

    def __init__(self, pid, every=0.1, max_samples=200000):
        super().__init__("rss-sampler")
        self.pid, self.every, self.max_samples = pid, every, max_samples
        self.samples = []  # (time.monotonic(), total bytes)

    def _loop(self):
        while not self._stop.is_set() and len(self.samples) < self.max_samples:
            self.samples.append((time.monotonic(), sum(tree_rss(self.pid).values())))
            self._stop.wait(self.every)

    def peak(self, t0=None, t1=None):
        vals = [v for t, v in list(self.samples) if (t0 is None or t >= t0) and (t1 is None or t <= t1)]
        return mb(max(vals)) if vals else None

    def stop(self):
        self._halt(5)
