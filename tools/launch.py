"""Start edgeapp as a user would, `python -m edgeapp serve`, on a free 127.0.0.1 port.

The one launcher of the tests (tests/support.py), the benchmark (tools.bench) and the soak
(tools.soak): a free port, the child's environment, and a Server that is started, waited for
and stopped the same way everywhere.
"""
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = os.environ.get("EDGEAPP_MODEL_DIR") or str(REPO / "build" / "models" / "x86")
START_TIMEOUT = 90.0  # seconds for loading and warming every model
# The engine the tests' servers run on when they do not name one: `make test-arm` sets it to the
# engine the emulated board has (the service's own default, paddlelite, may not be there).
TEST_ENGINE = os.environ.get("EDGEAPP_TEST_ENGINE") or None


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(extra=None):
    """The environment of a child process: the caller's without its EDGEAPP_* settings (a
    developer's EDGEAPP_TOKEN or THREADS would silently change what runs), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEAPP_")}
    env.update(extra or {})
    return env


def server_env(model_dir=MODEL_DIR, **settings):
    """The environment of a server: child_env, our model dir, and only the EDGEAPP_* settings
    given here (token="x" is EDGEAPP_TOKEN=x)."""
    extra = {"EDGEAPP_MODEL_DIR": str(model_dir)}
    if TEST_ENGINE:
        settings.setdefault("engine", TEST_ENGINE)
    extra.update(("EDGEAPP_" + name.upper(), str(value)) for name, value in settings.items())
    return child_env(extra)


class Server:
    """`python -m edgeapp serve` in a subprocess on 127.0.0.1, its output in a log file named
    after `name` and the port in log_dir. Subclasses may run another command (command())."""

    name = "server"
    # Start it in a session (and process group) of its own: the accelerator worker it starts is in
    # that group too, so a test can kill the whole service at once, as a power cut does.
    own_process_group = False

    def __init__(self, log_dir, model_dir=MODEL_DIR, args=(), **settings):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.url = "http://%s:%d" % (self.host, self.port)
        self.log_path = Path(log_dir) / ("%s-%d.log" % (self.name, self.port))
        # A face database of its own beside its log: never the checkout's build/faces.db, which
        # one server at a time may hold (facedb locks it), and which is a person's, not a test's.
        settings.setdefault("face_db", str(Path(log_dir) / ("%s-%d-faces.db" % (self.name, self.port))))
        self.startup_s = None  # seconds from the start to the first healthy answer (wait_ready)
        self.asked = None  # the signal ask_to_stop sent
        self.started = time.monotonic()
        with open(str(self.log_path), "wb") as log:
            self.proc = subprocess.Popen(self.command(str(model_dir)) + list(args),
                                         env=server_env(model_dir, **settings), cwd=str(REPO), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=self.own_process_group)

    def command(self, model_dir):
        """The command line (the model dir is in the environment too)."""
        return [sys.executable, "-m", "edgeapp", "serve", "--host", self.host, "--port", str(self.port)]

    def log(self):
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def health(self):
        """The status of GET /api/health, None while nothing answers."""
        return health_status(self.host, self.port)

    def wait_ready(self, timeout=START_TIMEOUT):
        """Until /api/health answers 200 (returns self); RuntimeError with the log if the server
        exits first or is not ready in time (then it is stopped)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s before it was ready:\n%s"
                                   % (self.name, self.proc.returncode, self.log()))
            if self.health() == 200:
                self.startup_s = time.monotonic() - self.started
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s not ready after %.0f s:\n%s" % (self.name, timeout, self.log()))

    def ask_to_stop(self, sig=signal.SIGTERM):
        """Signal the server without waiting (stop() waits): servers drain side by side."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.asked = sig

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Signal the server (unless ask_to_stop already did) and wait for it; returns its exit
        code (killed if it hangs)."""
        if self.proc.poll() is None:
            if sig != self.asked:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def health_status(host, port):
    """The status of GET /api/health at host:port, None while nothing answers."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        try:
            conn.request("GET", "/api/health")
            return conn.getresponse().status
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return None


class Balancer:
    """HAProxy in the foreground (an unprivileged child) with the configuration at config_path,
    listening on 127.0.0.1:port, its log in log_path: the fleet's test and benchmark."""

    def __init__(self, config_path, log_path, port, haproxy="haproxy"):
        self.port, self.log_path = port, Path(log_path)
        self.url = "http://127.0.0.1:%d" % port
        with open(str(log_path), "wb") as log:
            self.proc = subprocess.Popen([haproxy, "-f", str(config_path), "-db"], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout=20.0):
        """Until /api/health through it answers 200 (a board is up behind it); returns self.
        RuntimeError with its log if it exits or nothing is up in time."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if health_status("127.0.0.1", self.port) == 200:
                return self
            time.sleep(0.1)
        raise RuntimeError("haproxy not serving after %.0f s:\n%s" % (timeout, self.log()))

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
