"""edgeapp-diag as a person on the serial console meets it: installed, under an 80-column
pseudo-terminal, with the service up, hung and down, answering within 2 seconds."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from boardimage import ANSI, Image, image_shell, make_install
from support import MODEL_DIR

from edgeapp import netinfo, server

LIMIT_S = 2.0


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """host-x86 installed with the fast text-direction model only, run by its init script."""
    models = tmp_path_factory.mktemp("diag-models")
    shutil.copytree(os.path.join(MODEL_DIR, "text-direction"), str(models / "text-direction"))
    root = tmp_path_factory.mktemp("diag-rootfs")
    make_install(root, INSTALL_MODEL_DIR=models)
    shell, path = image_shell(tmp_path_factory.mktemp("diag-shell"))
    img = Image(root, shell, path)
    yield img
    img.init("stop")
    img.kill_all()


@pytest.fixture()
def running(image):
    if image.pid() is None or image.init("status").returncode != 0:
        assert image.init("start").returncode == 0
    image.wait_ready()
    return image


def check_screen(out):
    """Plain ASCII within 80 columns once the colour codes are taken out."""
    plain = ANSI.sub("", out)
    assert all(ord(c) < 128 for c in plain), plain
    too_wide = [l for l in plain.splitlines() if len(l) > 80]
    assert not too_wide, too_wide
    return plain


def test_summary_service_up(running):
    out, code, took = running.tool_in_pty("edgeapp-diag")
    plain = check_screen(out)
    print(plain)
    print("edgeapp-diag, service up: %.2f s" % took)
    assert code == 0 and took < LIMIT_S
    assert "\x1b[32mREADY\x1b[0m" in out  # a terminal gets colour
    assert "edgeapp 0.1.0 - board host-x86" in plain
    assert "READY, pid %d" % running.pid() in plain and "supervisor %d" % running.supervisor() in plain
    assert "port %d listening" % running.port in plain and running.url + "/" in plain
    assert "1 ready, 0 failed" in plain and "text-direction" in plain
    for label in ("addresses :", "queue     :", "memory    :", "temp      :", "disk      :", "log       :"):
        assert label in plain
    assert "HEALTHY: service ready, every model ready" in plain


def test_summary_without_a_terminal_has_no_colour(running):
    out, code, took = running.tool("edgeapp-diag")
    assert code == 0 and took < LIMIT_S and "\x1b[" not in out
    check_screen(out)


def test_summary_service_hung(running):
    pid = running.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        out, code, took = running.tool_in_pty("edgeapp-diag")
    finally:
        os.kill(pid, signal.SIGCONT)
    plain = check_screen(out)
    print(plain)
    print("edgeapp-diag, service hung: %.2f s" % took)
    assert code == 1 and took < LIMIT_S
    assert "HUNG, pid %d" % pid in plain and "process state T: stopped" in plain
    assert "UNHEALTHY: service hung" in plain


def test_selftest_through_the_service(running):
    out, code, took = running.tool_in_pty("edgeapp-diag", "selftest")
    plain = check_screen(out)
    print(plain)
    assert code == 0, plain
    assert "through the service on port %d" % running.port in " ".join(plain.split())
    assert "text-direction   PASS   ['180']" in plain and "PASS: 1 sample(s) checked" in plain


def test_selftest_notices_a_wrong_expectation(running, tmp_path):
    bundle = running.root / "opt/edgeapp/models/text-direction/bundle.json"
    good = bundle.read_text()
    try:
        spec = json.loads(good)
        spec["sample"]["expect"] = ["0"]
        bundle.write_text(json.dumps(spec))
        out, code, _ = running.tool("edgeapp-diag", "selftest")
    finally:
        bundle.write_text(good)
    assert code == 1 and "FAIL   expected ['0'], got ['180']" in out, out


def test_summary_and_selftest_service_down(image):
    image.init("stop")
    out, code, took = image.tool_in_pty("edgeapp-diag")
    plain = check_screen(out)
    print(plain)
    print("edgeapp-diag, service down: %.2f s" % took)
    assert code == 1 and took < LIMIT_S
    assert "DOWN, port %d closed" % image.port in plain and "no pidfile" in plain
    assert "supervisor" in plain  # the last log lines say how it stopped
    assert "1 installed in" in plain and "UNHEALTHY: service down" in plain

    out, code, took = image.tool_in_pty("edgeapp-diag", "selftest")
    plain = check_screen(out)
    assert code == 0 and "in this process (the service is down)" in " ".join(plain.split()), plain
    assert "PASS: 1 sample(s) checked" in plain
    print("selftest in-process: %.2f s" % took)


def test_summary_service_died(image):
    """kill -9 of the supervisor, then the service: the pidfile is left behind, and diag says so."""
    assert image.init("start").returncode == 0
    image.wait_ready()
    pid, supervisor = image.pid(), image.supervisor()
    os.kill(supervisor, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 10
    while image.processes() and time.monotonic() < end:
        time.sleep(0.1)
    out, code, took = image.tool_in_pty("edgeapp-diag")
    plain = check_screen(out)
    print(plain)
    assert code == 1 and took < LIMIT_S
    flat = " ".join(plain.split())  # long lines are wrapped
    assert "the pidfile names pid %d, which is not running: the service died" % pid in flat
    assert "its supervisor (pid %d) is gone too" % supervisor in flat
    assert image.init("status").returncode == 1
    assert image.init("stop").returncode == 0 and image.init("status").returncode == 3


def test_config_errors_are_shown_and_config_lists_sources(image):
    conf = image.root / "etc/default/edgeapp"
    good = conf.read_text()
    try:
        conf.write_text(good + "EDGEAPP_PORT=http\n")
        out, code, took = image.tool_in_pty("edgeapp-diag")
        plain = check_screen(out)
        assert code == 1 and took < LIMIT_S and "ERROR EDGEAPP_PORT='http'" in plain, plain
        out, code, _ = image.tool("edgeapp-diag", "config")
        assert code == 2 and "not a whole number" in out
    finally:
        conf.write_text(good)
    out, code, _ = image.tool("edgeapp-diag", "config")
    flat = " ".join(out.split())  # long paths wrap
    assert code == 0 and "board host-x86 (in %s line" % conf in flat
    assert "token - (default)" in flat


def test_banner_lists_every_non_loopback_ipv4_address():
    urls = netinfo.service_urls("0.0.0.0", 9876)
    ip = shutil.which("ip")
    if ip:  # the kernel's own list, as iproute2 prints it
        out = subprocess.run([ip, "-4", "-o", "addr", "show", "up"], stdout=subprocess.PIPE,
                             universal_newlines=True, timeout=10).stdout
        addrs = [l.split()[3].split("/")[0] for l in out.splitlines() if l.split()[1] != "lo"]
        assert urls == ["http://%s:9876/" % a for a in addrs] or (not addrs and urls == ["http://127.0.0.1:9876/"])
    assert netinfo.service_urls("127.0.0.1", 9876) == ["http://127.0.0.1:9876/"]
    line = server.banner("edgeboard-fz", urls, 2, 3)
    assert line.startswith("edgeapp ") and " ready on edgeboard-fz: http://" in line
    assert line.endswith("(2 of 3 models ready)") and "\n" not in line
