"""The installed commands, as a person runs them after `make setup`: .venv/bin/edgeapp and
edgeapp-diag from any folder, with no PYTHONPATH and no EDGEAPP_* variable set."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from support import REPO, free_port

from edgeapp import __version__

BIN = Path(sys.executable).parent


def bare_env():
    """The environment of a person's shell: no PYTHONPATH, no EDGEAPP_* settings."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("EDGEAPP_")}


def run(argv, cwd, timeout=120):
    return subprocess.run([str(a) for a in argv], cwd=str(cwd), env=bare_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)


def test_console_scripts_and_import_need_no_environment(tmp_path):
    res = run([BIN / "edgeapp", "--version"], tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == "edgeapp " + __version__
    res = run([BIN / "python", "-c", "import edgeapp; print(edgeapp.__file__)"], tmp_path)
    assert res.returncode == 0 and Path(res.stdout.strip()).resolve() == REPO / "src/edgeapp/__init__.py"
    # The model folder defaults to the checkout's build/models/x86 (what `make setup` builds).
    res = run([BIN / "edgeapp", "models"], tmp_path)
    assert res.returncode == 0 and "text-direction" in res.stdout and "ppocr" in res.stdout, res.stdout
    res = run([BIN / "edgeapp-diag", "--help"], tmp_path)
    assert res.returncode == 0 and "usage" in res.stdout.lower(), res.stdout


def test_serve_needs_no_environment(tmp_path):
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([str(BIN / "edgeapp"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=str(tmp_path), env=bare_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        end, health = time.monotonic() + 120, None
        while time.monotonic() < end and proc.poll() is None:
            try:
                health = requests.get("http://127.0.0.1:%d/api/health" % port, timeout=2)
                if health.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        text = (tmp_path / "serve.log").read_text(errors="replace")
        assert health is not None and health.status_code == 200, text
        assert health.json()["data"]["models_ready"], text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert proc.returncode == 0


def test_reload_signals_the_service(tmp_path):
    """`edgeapp reload` (systemd's ExecReload) once failed with "invalid choice": the sub-command
    was added after the arguments were parsed."""
    flag = tmp_path / "hup"
    child = subprocess.Popen([sys.executable, "-c", (
        "import signal, sys, time\n"
        "def hup(*a):\n    open(%r, 'w').write('hup'); sys.exit(0)\n"
        "signal.signal(signal.SIGHUP, hup)\nprint('ready', flush=True)\ntime.sleep(60)\n") % str(flag)],
        stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        res = run([BIN / "edgeapp", "reload", "--pid", child.pid], tmp_path)
        assert res.returncode == 0, res.stdout
        assert "(pid %d) is reloading its models" % child.pid in res.stdout
        assert child.wait(10) == 0 and flag.read_text() == "hup"
    finally:
        child.kill()
        child.wait()


def test_reload_without_a_service_says_so(tmp_path):
    conf = tmp_path / "edgeapp.conf"
    conf.write_text("EDGEAPP_PIDFILE=%s\n" % (tmp_path / "edgeapp.pid"))
    res = run([BIN / "edgeapp", "reload", "--config", conf], tmp_path)
    assert res.returncode == 7 and "no service pid in %s" % (tmp_path / "edgeapp.pid") in res.stdout, res.stdout
