"""The servers under test, started by the launcher the tests and the soak use (tools.launch):
edgeapp (`python -m edgeapp serve`), and the baseline beside it: on Paddle Lite the naive
one-process server (tools/naive_server.py), on ONNX Runtime the FastAPI + uvicorn peer
(tools/peer/server.py),
with an RSS sampler from their first moment, their idle memory once ready, and a way to wait
until the previous case's requests are done."""
import http.client
import json
import os
import sys
import time

from tools.bench.clients import connect
from tools.bench.common import log, mb
from tools.bench.watch import RssSampler, tree_rss
from tools.launch import REPO, Server

NAIVE = os.path.join(str(REPO), "tools", "naive_server.py")
PEER = os.path.join(str(REPO), "tools", "peer", "server.py")
PEER_LIB = os.path.join(str(REPO), "build", "peer-lib")
# The server beside edgeapp, per engine: what a user would run instead.
BASELINES = {"paddlelite": "naive", "onnxruntime": "peer"}


class ServerUnderTest(Server):
    """A server of the benchmark, in a subprocess on 127.0.0.1; settings are EDGEAPP_* names and
    values. Subclasses say how to ask it what it still works on (in_flight)."""

    def __init__(self, log_dir, model_dir, settings=None):
        super().__init__(log_dir, model_dir, **{k[len("EDGEAPP_"):]: v for k, v in (settings or {}).items()})
        self.sampler = RssSampler(self.proc.pid).start()
        self.idle = None

    def wait_ready(self, timeout):
        super().wait_ready(timeout)
        time.sleep(1.0)  # let the start-up settle before calling the memory "idle"
        rss = tree_rss(self.proc.pid)
        self.idle = {"total_mb": mb(sum(rss.values())), "processes_mb": [mb(rss[p]) for p in sorted(rss)]}
        return self

    def get_json(self, path):
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            conn.request("GET", path)
            body = conn.getresponse().read()
            conn.close()
            return json.loads(body.decode("utf-8"))
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def in_flight(self):
        """Inference requests the server is still working on (None if it does not say).
        wrk drops its connections at the end of a case, but the server still runs what they sent:
        the next case must not start with the previous one's backlog."""
        raise NotImplementedError

    def wait_idle(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.in_flight():
                return True
            time.sleep(0.05)
        log("warning: %s still busy after %.0f s; starting the next case anyway" % (self.name, timeout))
        return False

    def stop(self, *args, **kwargs):
        code = super().stop(*args, **kwargs)
        self.sampler.stop()
        return code


class EdgeappServer(ServerUnderTest):
    """`python -m edgeapp serve`, as the tests and the soak start it."""

    name = "edgeapp"

    def in_flight(self):
        doc = self.get_json("/api/status")
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, dict) or "requests_in_flight" not in data:
            return None
        return int(data.get("requests_in_flight") or 0) + int(data.get("queue_depth") or 0)


class NaiveServer(ServerUnderTest):
    """tools/naive_server.py: decode + preprocess + predictor in the request thread, no settings."""

    name = "naive"

    def __init__(self, log_dir, model_dir):
        super().__init__(log_dir, model_dir)

    def command(self, model_dir):
        return [sys.executable, NAIVE, "--host", self.host, "--port", str(self.port), "--model-dir", model_dir]

    def in_flight(self):
        doc = self.get_json("/api/health")
        data = doc.get("data") if isinstance(doc, dict) else None
        return data.get("in_flight") if isinstance(data, dict) else None


class PeerServer(NaiveServer):
    """tools/peer/server.py: FastAPI + uvicorn calling onnxruntime in its handlers, with the
    worker's ONNX Runtime threads; FastAPI and uvicorn from lib (make peer-lib)."""

    name = "peer"

    def __init__(self, log_dir, model_dir, threads, lib=PEER_LIB):
        self.threads, self.lib = threads, lib
        super().__init__(log_dir, model_dir)

    def command(self, model_dir):
        return [sys.executable, PEER, "--host", self.host, "--port", str(self.port), "--model-dir", model_dir,
                "--threads", str(self.threads), "--lib", self.lib]


def start_server(kind, model_dir, log_dir, settings, peer_lib=PEER_LIB):
    """The server of this kind ("edgeapp", "naive" or "peer"), started (not yet ready). The peer
    gets the ONNX Runtime threads of the settings (EDGEAPP_ORT_THREADS, resolved by the caller)."""
    if kind == "edgeapp":
        return EdgeappServer(log_dir, model_dir, settings)
    if kind == "peer":
        return PeerServer(log_dir, model_dir, int(settings.get("EDGEAPP_ORT_THREADS") or 1), peer_lib)
    return NaiveServer(log_dir, model_dir)


def preflight(srv, path, body_file, ctype, count=3, timeout=120.0):
    """A few requests before a case: the answer must be a success envelope (they also warm up).
    A 503 is waited out (Retry-After), within timeout."""
    with open(body_file, "rb") as f:
        body = f.read()
    end = time.monotonic() + timeout
    conn = connect(srv.host, srv.port, timeout)
    try:
        done = 0
        while done < count:
            conn.request("POST", path, body, {"Content-Type": ctype})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status == 503 and time.monotonic() < end:
                time.sleep(min(5.0, float(resp.getheader("Retry-After") or 1)))
                continue
            try:
                doc = json.loads(data.decode("utf-8"))
            except ValueError:
                doc = None
            if resp.status != 200 or not isinstance(doc, dict) or doc.get("code") != 0:
                raise RuntimeError("%s POST %s answered %d: %s" % (srv.name, path, resp.status, data[:500]))
            done += 1
    finally:
        conn.close()
    return doc
