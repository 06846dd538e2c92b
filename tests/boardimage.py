"""Helpers for the image tests: `make install` into a staging root, the init script under the
image's shell, edgeapp-diag under a pseudo-terminal."""
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

import requests

from support import REPO, free_port

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def make_install(dest, board="host-x86", **variables):
    """`make install DESTDIR=dest BOARD=board VAR=value...`; returns make's output."""
    argv = ["make", "--no-print-directory", "install", "DESTDIR=%s" % dest, "BOARD=%s" % board]
    argv += ["%s=%s" % kv for kv in variables.items()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEAPP_", "MAKE"))}
    res = subprocess.run(argv, cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=600)
    assert res.returncode == 0, res.stdout
    return res.stdout


def set_config(root, **values):
    """Change (or add) KEY=value lines of the installed /etc/default/edgeapp."""
    path = Path(root) / "etc" / "default" / "edgeapp"
    lines = path.read_text().splitlines()
    for key, value in values.items():
        name = "EDGEAPP_" + key.upper()
        lines = [l for l in lines if not l.startswith(name + "=")] + ["%s=%s" % (name, value)]
    path.write_text("\n".join(lines) + "\n")


def image_shell(tmp):
    """(shell, PATH) like a BusyBox image: BusyBox's ash with its applets first on PATH when
    busybox is installed (make test installs it), else dash, else /bin/sh."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    busybox = shutil.which("busybox")
    if busybox:
        bindir = Path(tmp) / "busybox-bin"
        if not bindir.is_dir():
            bindir.mkdir()
            subprocess.run([busybox, "--install", "-s", str(bindir)], check=True, timeout=30)
        return str(bindir / "sh"), "%s:%s" % (bindir, path)
    print("busybox not installed: testing the init script under dash or /bin/sh instead")
    return shutil.which("dash") or "/bin/sh", path


class Image:
    """An installed tree driven as the board would: the init script, the pidfiles, the console."""

    def __init__(self, root, shell, path):
        self.root = Path(root)
        self.shell, self.path = shell, path
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        # Only loopback in tests; the console is a file the banner is appended to.
        set_config(root, host="127.0.0.1", port=self.port)
        (self.root / "dev").mkdir(exist_ok=True)
        (self.root / "dev" / "console").touch()

    def env(self, **extra):
        env = {"PATH": self.path, "EDGEAPP_ROOT": str(self.root), "EDGEAPP_SHELL": self.shell, "HOME": "/"}
        env.update(extra)
        return env

    def init(self, action, timeout=60):
        return subprocess.run([self.shell, str(self.root / "etc/init.d/S95edgeapp"), action], env=self.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=timeout)

    def run_dir(self):
        return self.root / "run" / "edgeapp"

    def pid(self):
        try:
            text = (self.run_dir() / "edgeapp.pid").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def supervisor(self):
        try:
            return int((self.run_dir() / "supervise.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def log(self):
        try:
            return (self.run_dir() / "edgeapp.log").read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout=90.0, not_pid=None):
        """Seconds until /api/health says ready (from a pid other than not_pid, if given)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            pid = self.pid()
            if pid and pid != not_pid:
                try:
                    if requests.get(self.url + "/api/health", timeout=2).status_code == 200:
                        return time.monotonic() - t0
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        raise AssertionError("not ready after %.0f s; log:\n%s" % (timeout, self.log()[-4000:]))

    def tool(self, name, *args, **kw):
        """Run an installed command (usr/bin/NAME) with a plain pipe for output."""
        t0 = time.monotonic()
        res = subprocess.run([str(self.root / "usr" / "bin" / name)] + list(args), env=self.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                             timeout=kw.get("timeout", 120))
        return res.stdout, res.returncode, time.monotonic() - t0

    def tool_in_pty(self, name, *args, columns=80, timeout=30.0):
        """Run an installed command on a pseudo-terminal `columns` wide: (output, exit code, seconds)."""
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        t0 = time.monotonic()
        proc = subprocess.Popen([str(self.root / "usr" / "bin" / name)] + list(args),
                                env=self.env(TERM="vt100", COLUMNS=str(columns)),
                                stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        chunks = []
        try:
            while time.monotonic() - t0 < timeout:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the terminal's other side is closed
                        break
                    if not data:
                        break
                    chunks.append(data)
                elif proc.poll() is not None:
                    break
            code = proc.wait(max(0.1, timeout - (time.monotonic() - t0)))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        elapsed = time.monotonic() - t0
        return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n"), code, elapsed

    def processes(self):
        """Pids of every live process of this image: its root in the command line or environment."""
        mark = str(self.root).encode()
        found = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    cmd = f.read()
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read()
                with open("/proc/%s/stat" % d) as f:
                    zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except (OSError, IndexError):
                continue
            if not zombie and (mark in cmd or b"EDGEAPP_ROOT=" + mark + b"\0" in env):
                found.append(int(d))
        return found

    def kill_all(self):
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
