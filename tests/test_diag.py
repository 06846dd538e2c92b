"""edgeapp-diag as a person on the serial console meets it: installed, under an 80-column
pseudo-terminal, with the service up, hung and down, answering within 2 seconds."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from boardimage import ANSI, Image, image_shell, make_install
from face_standin import gallery_after_a_model_change
from support import MODEL_DIR, free_port

from edgeapp import config, facedb, netinfo, server
from edgeapp.diag.client import Answer, ServiceClient
from edgeapp.diag.facts import BoardFacts, Facts, ProcessFacts, ServiceAnswers, gather, service_state
from edgeapp.diag.summary import summary_lines

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
    assert re.search(r"engines   : paddlelite [0-9a-z.]+: 2\n", plain), plain  # which engine runs which model
    assert re.search(r"paddlelite ok, onnxruntime (ok|not installed)", plain), plain
    for label in ("addresses :", "queue     :", "memory    :", "temp      :", "disk      :", "log       :"):
        assert label in plain
    # Only text-direction is installed: the face database is open, no face model uses it.
    assert "faces : no face model serves; %s holds 0 people, 0 faces" % (
        running.root / "var/lib/edgeapp/faces.db") in " ".join(plain.split())
    # "no job yet" or the time per job, never "no job yet per job".
    assert re.search(r"jobs in flight, \d+ in line, (no job yet|\d+ ms per job), worker pid", " ".join(plain.split())), plain
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


# ---- the diag package's seams, without an installed image ------------------------------------

class StandIn:
    """Something on 127.0.0.1 that answers GETs with the JSON given per path, and remembers the
    Authorization header of each request (a stranger on the port, or a service of another version)."""

    def __init__(self, answers):
        seen = self.seen = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                seen[self.path] = self.headers.get("Authorization")
                body = json.dumps(answers.get(self.path, {"code": 404, "msg": "no"})).encode()
                self.send_response(200 if self.path in answers else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_client_sends_the_token_except_to_health():
    stand_in = StandIn({"/api/health": {"code": 0, "msg": "ready"}, "/api/status": {"code": 0, "data": {}}})
    try:
        client = ServiceClient("127.0.0.1", stand_in.port, token="s3cret")
        health, status = client.health(), client.get("/api/status", 2)
    finally:
        stand_in.close()
    assert health.status == 200 and health.msg == "ready" and health.error is None
    assert status.status == 200 and status.data == {}
    assert stand_in.seen == {"/api/health": None, "/api/status": "Bearer s3cret"}


def test_client_turns_refusals_and_silence_into_answers():
    refused = ServiceClient("127.0.0.1", free_port()).health()
    assert refused.status is None and refused.error and not refused.timed_out
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        t0 = time.monotonic()
        hung = ServiceClient("127.0.0.1", silent.getsockname()[1]).health(0.3)
    assert hung.status is None and hung.timed_out and time.monotonic() - t0 < 1.5


def _settings(tmp_path, port):
    return config.load(None, environ={"EDGEAPP_HOST": "127.0.0.1", "EDGEAPP_PORT": str(port),
                                      "EDGEAPP_MODEL_DIR": MODEL_DIR, "EDGEAPP_PIDFILE": str(tmp_path / "edgeapp.pid"),
                                      "EDGEAPP_LOG": str(tmp_path / "edgeapp.log")})


def test_summary_lists_the_installed_models_when_the_answer_is_no_model_list(tmp_path):
    """Before, a 200 from /api/models whose data was not a list printed 'models    : ERROR None'."""
    stand_in = StandIn({"/api/health": {"code": 0, "msg": "ready"}, "/api/status": {"code": 0, "data": []},
                        "/api/models": {"code": 0, "data": {"models": "elsewhere"}}})
    try:
        facts = gather(_settings(tmp_path, stand_in.port), None, time.monotonic() + 1.7)
    finally:
        stand_in.close()
    lines, ok = summary_lines(facts)
    text = "\n".join(lines)
    assert facts.state == "READY" and facts.listening and isinstance(facts.installed, dict)
    assert "ERROR None" not in text and "%d installed in" % len(facts.installed) in text
    assert "queue" not in text  # /api/status's data was not a dict: no queue line
    assert ok and all(len(l) <= 80 for l in lines)


def _facts(tmp_path, models, status=None, config_error=None):
    settings = _settings(tmp_path, 9876)
    answers = ServiceAnswers(Answer(200, {"code": 0}), Answer(200, {"data": status}), Answer(200, {"data": models}))
    return Facts(settings, config_error, config.service_files(settings), ProcessFacts(pid=41, alive=True),
                 True, answers, "READY", "", None, ["2024-05-01 10:00:00,123 edgeapp.server INFO started"],
                 BoardFacts(memory_mb=(2048.0, 1024.0), python="Python 3.8.10", modules=[("numpy", True)]))


def test_summary_lines_from_facts(tmp_path):
    models = [{"id": 2, "name": "text-direction", "ready": True, "memory_mb": 15.8},
              {"id": 1, "name": "ppocr-det", "ready": False, "reason": "cannot open ppocr-det/model.nb: " + "x" * 80}]
    status = {"queue_depth": 1, "queue_capacity": 4, "service_ms": 12.4, "worker_pid": 42, "restarts": 0,
              "requests_in_flight": 1, "models": [{"id": 2, "requests": 7, "errors": 1,
                                                   "latency_ms": {"p50": 11.6, "p95": 30.2}}]}
    lines, ok = summary_lines(_facts(tmp_path, models, status))
    text = "\n".join(lines)
    assert not ok and lines[-1] == "UNHEALTHY: 1 model(s) failed to load"
    assert all(len(l) <= 80 for l in lines), lines
    assert "models    : 1 ready, 1 failed" in text
    assert "    2 text-direction   ready    16 MB      7 req    1 err  p50 12 p95 30 ms" in text
    assert "    1 ppocr-det        FAILED cannot open" in text
    assert "queue     : 1 of 4 jobs in flight, 0 in line, 12 ms per job, worker pid 42" in text
    assert "system 1024 MB available of 2048 MB" in text and "10:00:00 INFO started" in text
    assert "service   : READY, pid 41, port 9876 listening" in text

    models[0]["engine"], models[1]["engine"] = "onnxruntime", "paddlelite"
    status["engines"] = {"onnxruntime": "1.19.2"}
    text = "\n".join(summary_lines(_facts(tmp_path, models, status))[0])
    assert "engines   : onnxruntime 1.19.2: 2\n" in text  # the failed model runs on nothing

    lines, ok = summary_lines(_facts(tmp_path, models[:1], config_error="EDGEAPP_PORT='http' is not a number"))
    assert not ok and lines[-1] == "UNHEALTHY: the config has an error"
    assert "config    : ERROR EDGEAPP_PORT='http' is not a number (showing defaults)" in lines


def test_service_state_explains_what_it_sees():
    alive = ProcessFacts(pid=41, alive=True, state="S")
    assert service_state(alive, False, None, 9876, "/run/edgeapp/edgeapp.pid") == (
        "STARTING", "pid 41 runs but does not listen on port 9876 yet")
    starting = Answer(503, {"code": 1, "msg": "starting: loading the models"})
    assert service_state(alive, True, starting, 9876, "-")[0] == "STARTING"
    assert service_state(alive, True, Answer(503, {"msg": "worker down"}), 9876, "-") == ("NOT-READY", "worker down")
    restarting = ProcessFacts(pid=41, supervisor=40, supervisor_alive=True)
    assert service_state(restarting, False, None, 9876, "-") == (
        "DOWN", "the pidfile names pid 41, which is not running: the service died; the supervisor (pid 40) "
                "restarts it, see the log")


def _face_facts(tmp_path, faces):
    """Facts of a ready service whose /api/status reports the face database `faces`."""
    models = [{"id": 9, "name": "face-recognition", "ready": True, "memory_mb": 97.0}]
    return _facts(tmp_path, models, {"models": [], "faces": faces})


def test_summary_faces_line_after_a_model_change(tmp_path):
    gallery = gallery_after_a_model_change(str(tmp_path / "faces.db"))
    try:
        status = gallery.status()
    finally:
        gallery.close()
    lines, ok = summary_lines(_face_facts(tmp_path, status))
    text = "\n".join(lines)
    flat = " ".join(text.split())
    print(text)
    assert all(len(l) <= 80 for l in lines), lines
    assert text.count("faces     : ") == 1 and "faces     : " in lines[lines.index("models    : 1 ready, 0 failed") + 2]
    squeezed = "".join(text.split())  # a long path is cut where the line ends
    assert "".join(("faces : 1 person (at most 100), 1 face (4 KB in memory) in %s; model standin==2"
                    % (tmp_path / "faces.db")).split()) in squeezed
    assert "WARNING 1 person to register again (3 faces of other models kept, never matched): bob" in flat
    assert ok and " ".join(lines[-2:]).endswith(
        "HEALTHY: service ready, every model ready; WARNING 1 person to register again")


def test_summary_face_database_that_cannot_be_opened(tmp_path):
    (tmp_path / "state").write_text("a file where the folder should be")
    gallery = facedb.FaceGallery(str(tmp_path / "state" / "faces.db"), 100, 10)
    unused = summary_lines(_face_facts(tmp_path, gallery.status()))  # no face model yet: not used
    assert unused[1] and unused[0][-1] == "HEALTHY: service ready, every model ready"
    with pytest.raises(facedb.FaceDbUnavailable):
        gallery.use_model("standin@1", 8)  # a face model serves: now it matters
    status = gallery.status()
    lines, ok = summary_lines(_face_facts(tmp_path, status))
    squeezed = "".join("".join(lines).split())
    assert all(len(l) <= 80 for l in lines), lines
    assert status["error"].startswith("cannot open the face database %s: [Errno 17] File exists"
                                      % (tmp_path / "state" / "faces.db"))
    assert "".join(("faces : ERROR " + status["error"]).split()) in squeezed
    assert not ok and lines[-1] == "UNHEALTHY: the face database cannot be opened"


def test_summary_faces_line_is_left_out_without_a_face_database(tmp_path):
    lines, ok = summary_lines(_face_facts(tmp_path, None))  # a service without a gallery, or older
    assert ok and not [l for l in lines if l.startswith("faces")]
    assert lines[-1] == "HEALTHY: service ready, every model ready"


def test_summary_fleet_line_says_whether_a_balancer_sends_requests(tmp_path):
    """The health checks of `edgeapp-fleet haproxy` (recorded by the service, /api/status) as one
    line: in the fleet, out of it (and why), or never checked; nothing from an older service."""
    models = [{"id": 2, "name": "text-direction", "ready": True, "memory_mb": 15.8}]
    check = {"balancer": "lb1", "address": "10.0.0.2", "last_s_ago": 1.2, "interval_s": 2.0, "status": 200,
             "answer": "ready", "checks": 40}
    told = dict(check, balancer="lb2", address="10.0.0.3", status=503, answer="not ready: the accelerator is restarting")
    gone = dict(check, last_s_ago=64.0)

    def fleet_lines(balancers):
        status = {"models": []} if balancers is None else {"models": [], "balancers": balancers}
        lines, ok = summary_lines(_facts(tmp_path, models, status))
        assert ok and all(len(l) <= 80 for l in lines), lines
        start = next((i for i, l in enumerate(lines) if l.startswith("fleet")), None)
        if start is None:
            return []
        end = start + 1
        while lines[end].startswith(" "):
            end += 1
        return lines[start:end]

    assert fleet_lines([check]) == ["fleet     : in (checked by lb1 at 10.0.0.2 every 2 s, last 1 s ago: ready)"]
    assert fleet_lines([check, told]) == [
        "fleet     : in (checked by lb1 at 10.0.0.2 every 2 s, last 1 s ago: ready)",
        "            out: lb2 at 10.0.0.3 was told 503 not ready: the accelerator is",
        "            restarting (every 2 s, last 1 s ago)"]
    assert fleet_lines([gone]) == [
        "fleet     : out? lb1 at 10.0.0.2 last checked 64 s ago (every 2 s): it stopped",
        "            checking or cannot reach this board"]
    assert fleet_lines([]) == ["fleet     : no balancer has checked this board"]
    assert fleet_lines(None) == []  # a service from before the record: no line
