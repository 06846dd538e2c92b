"""Helpers for tests that start edgeapp in a child process: a free port, its environment, a server."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = os.environ.get("EDGEAPP_MODEL_DIR") or str(REPO / "build" / "models" / "x86")
START_TIMEOUT = 90.0  # seconds for loading and warming every model


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(model_dir=MODEL_DIR, **settings):
    """The environment of a server subprocess: src/ on the path, our model dir, and only the
    EDGEAPP_* settings given here (a developer's own EDGEAPP_TOKEN must not leak into tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEAPP_")}
    env["PYTHONPATH"] = str(REPO / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["EDGEAPP_MODEL_DIR"] = str(model_dir)
    for name, value in settings.items():
        env["EDGEAPP_" + name.upper()] = str(value)
    return env


class Server:
    """`python -m edgeapp serve` in a subprocess on 127.0.0.1, its output in a log file."""

    def __init__(self, log_dir, model_dir=MODEL_DIR, args=(), **settings):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = Path(log_dir) / ("server-%d.log" % self.port)
        cmd = [sys.executable, "-m", "edgeapp", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(str(self.log_path), "wb") as log:
            self.proc = subprocess.Popen(cmd + list(args), env=server_env(model_dir, **settings),
                                         stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))

    def log(self):
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout=START_TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s before it was ready:\n%s" % (self.proc.returncode, self.log()))
            try:
                if requests.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server not ready after %.0f s:\n%s" % (timeout, self.log()))

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Signal the server and wait for it; returns its exit code (killed if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
