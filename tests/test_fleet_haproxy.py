"""Boards behind HAProxy (issue 26): the configuration `edgeapp-fleet haproxy` writes, checked by
HAProxy itself, and three edgeapp instances behind it under a mixed load while one is killed
(SIGKILL, its whole process group), one reloads its models (SIGHUP) and one is paused (SIGSTOP,
then SIGCONT). Every request must get the right model's result or a JSON 503 with a Retry-After.

HAProxy comes from Debian's package (make test-tools installs it); without it these tests skip."""
import base64
import collections
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import cv2
import pytest
import requests

from support import MODEL_DIR, Server, free_port
from tools.launch import Balancer
from textimages import encode
from tools.fleet import haproxy

HAPROXY = shutil.which("haproxy")
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="no haproxy: `make test-tools` installs it (as root)")
BOARD_MODELS = ("face", "doc-orientation")  # mids 4 and 5: small, a few seconds to load and warm
LOAD_SECONDS = 14.0
CLIENTS = 4
BIG_RETRY_BYTES = 4 * 1024 ** 2
EVENTS = ((2.5, "kill"), (4.5, "reload"), (6.5, "pause"), (9.5, "resume"))  # seconds into the load


def config_for(boards, *options):
    args = haproxy.parser().parse_args(list(boards) + list(options))
    return haproxy.config_text(haproxy.board_list(args.boards), args)


# ---- the configuration --------------------------------------------------------------------------

@needs_haproxy
def test_generated_config_passes_haproxy_check(tmp_path):
    (tmp_path / "boards.txt").write_text("# the line's boards\n10.0.0.11:9876\nboard-b.invalid  # not yet in DNS\n")
    cfg = tmp_path / "haproxy.cfg"
    assert haproxy.main(["@%s" % (tmp_path / "boards.txt"), "10.0.0.13", "-o", str(cfg), "--name", "lb one"]) == 0
    text = cfg.read_text()
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Configuration file is valid" in check.stdout + check.stderr
    assert [l.split()[1:] for l in text.splitlines() if l.strip().startswith("server ")] == [
        ["board1", "10.0.0.11:9876"], ["board2", "board-b.invalid:9876"], ["board3", "10.0.0.13:9876"]]
    lines = text.splitlines()
    for i, line in enumerate(lines):  # every directive under its comment (the README explains them)
        if line.startswith("    ") and not line.strip().startswith("#"):
            assert lines[i - 1].strip().startswith("#"), line
    for expected in ("balance leastconn", "retry-on conn-failure empty-response 503", "option redispatch 1",
                     "retries 3", "timeout server 40s", "uri /api/health?balancer=lb-one ",
                     "gt 20971520 }", "bind :9876", "option http-buffer-request"):
        assert expected in text, expected
    assert not list(tmp_path.glob("*.tmp"))  # written aside, then renamed


def test_board_list_and_options():
    assert haproxy.board_list(["a", "b:81", "[fd00::1]:9000"]) == [
        ("board1", "a:9876"), ("board2", "b:81"), ("board3", "[fd00::1]:9000")]
    for bad in ("a:0", "a:99999", "a b", "x:'y"):
        with pytest.raises(ValueError):
            haproxy.board_list([bad])
    text = config_for(["a", "b"], "--request-timeout", "60", "--max-body-bytes", "1048576",
                      "--retry-body-bytes", "4194304", "--bind", "127.0.0.1:8080")
    assert "timeout server 70s" in text and "gt 1048576 }" in text and "retries 2" in text
    assert "tune.bufsize %d" % (4194304 + 8192 + 1024) in text and "bind 127.0.0.1:8080" in text


# ---- three instances behind HAProxy ---------------------------------------------------------------

class Board(Server):
    name = "board"
    own_process_group = True  # the worker is in its group: SIGKILL/SIGSTOP reach the whole service


@pytest.fixture
def fleet(tmp_path):
    """(HAProxy, [three boards]) on 127.0.0.1, each board with mids 4 and 5 only."""
    models = tmp_path / "models"
    models.mkdir()
    for name in BOARD_MODELS:
        os.symlink(os.path.join(str(MODEL_DIR), name), str(models / name))
    boards = [Board(tmp_path, model_dir=models) for _ in range(3)]
    balancer = None
    try:
        for b in boards:
            b.wait_ready()
        port = free_port()
        cfg = tmp_path / "haproxy.cfg"
        # The big upload (2.9 MB) fits the retry buffer: HAProxy holds it whole and can send it to
        # another board (test_a_body_over_the_retry_buffer_... shows what happens to one that does not).
        cfg.write_text(config_for(["127.0.0.1:%d" % b.port for b in boards], "--bind", "127.0.0.1:%d" % port,
                                  "--log", "stderr", "--check-interval", "1", "--name", "test-lb",
                                  "--retry-body-bytes", str(BIG_RETRY_BYTES)))
        balancer = Balancer(cfg, tmp_path / "haproxy.log", port, HAPROXY).wait_ready()
        yield balancer, boards
    finally:
        if balancer is not None:
            balancer.stop()
        for b in boards:
            _signal_group(b, signal.SIGCONT)  # a paused board must be able to stop
            b.stop()


def _signal_group(board, sig):
    try:
        os.killpg(board.proc.pid, sig)
    except ProcessLookupError:
        pass


def request_kinds(photos, text_jpeg):
    """[(name, method kwargs for requests)]: EdgeBoard base64 and binary, DeepStack face and custom,
    and an upload larger than the default retry buffer (1 MiB), within the test's (4 MiB)."""
    face_jpeg = encode(photos["astronaut"], ".jpg")
    big = cv2.resize(photos["astronaut"], (1536, 1536), interpolation=cv2.INTER_CUBIC)
    big_png = encode(big, ".png")
    assert haproxy.RETRY_BODY_BYTES + 100000 < len(big_png) < BIG_RETRY_BYTES
    return [
        ("base64 mid 4", dict(url="/api/model/service/base64?mid=4",
                              json={"image": base64.b64encode(face_jpeg).decode()})),
        ("binary mid 5", dict(url="/api/model/service/binary?mid=5", data=text_jpeg)),
        ("deepstack face", dict(url="/v1/vision/face", files={"image": ("a.jpg", face_jpeg)})),
        ("deepstack custom 5", dict(url="/v1/vision/custom/doc-orientation", files={"image": ("t.jpg", text_jpeg)})),
        ("binary mid 4, big PNG", dict(url="/api/model/service/binary?mid=4", data=big_png)),
    ]


def answer_of(resp):
    """What a correct answer must equal: the result or predictions, floats rounded."""
    doc = resp.json()
    found = doc["data"]["result"] if "data" in doc else doc["predictions"]
    return json.loads(json.dumps(found), parse_float=lambda s: round(float(s), 3))


def post(session, base, kind):
    args = dict(kind[1])
    return session.post(base + args.pop("url"), timeout=45, **args)


def expected_answers(board, kinds):
    """Each kind's answer from one board directly, checked on the images: a face on the astronaut
    (its box on her face), the text page upright."""
    session = requests.Session()
    want = {}
    for kind in kinds:
        resp = post(session, board.url, kind)
        assert resp.status_code == 200, resp.text
        want[kind[0]] = answer_of(resp)
    face = want["base64 mid 4"][0]
    assert face["label"] == "face" and 150 < face["location"]["left"] < 250 and 50 < face["location"]["top"] < 150
    assert [p["label"] for p in want["deepstack face"]] == ["face"]
    assert want["binary mid 5"][0]["label"] == "0" and want["deepstack custom 5"][0]["label"] == "0"
    assert want["binary mid 4, big PNG"][0]["label"] == "face"
    return want


def judge(resp, want):
    """'ok', '503 <code>' or a description of what is wrong."""
    if "json" not in resp.headers.get("Content-Type", ""):
        return "NOT JSON %d %s: %r" % (resp.status_code, resp.headers.get("Content-Type"), resp.text[:120])
    if resp.status_code == 200:
        return "ok" if answer_of(resp) == want else "WRONG RESULT %r" % resp.text[:200]
    retry = resp.headers.get("Retry-After", "")
    if resp.status_code == 503 and retry.isdigit() and int(retry) >= 1:
        return "503 code %s" % resp.json().get("code")
    return "BAD %d Retry-After %r: %r" % (resp.status_code, retry, resp.text[:200])


def client(base, kinds, want, offset, stop_at, outcomes):
    """Requests back to back over one keep-alive session, kinds in turn, until stop_at."""
    session = requests.Session()
    for n in range(10000):  # bounded: stop_at ends it long before
        if time.monotonic() >= stop_at:
            return
        kind = kinds[(n + offset) % len(kinds)]
        try:
            verdict = judge(post(session, base, kind), want[kind[0]])
        except requests.RequestException as e:
            verdict = "CONNECTION %s" % type(e).__name__
            session = requests.Session()
        outcomes.append((kind[0], verdict))


def chaos(boards, start, log):
    """The events of EVENTS on boards 0 (kill), 1 (reload), 2 (pause, resume), at their times."""
    actions = {"kill": lambda: _signal_group(boards[0], signal.SIGKILL),
               "reload": lambda: boards[1].proc.send_signal(signal.SIGHUP),
               "pause": lambda: _signal_group(boards[2], signal.SIGSTOP),
               "resume": lambda: _signal_group(boards[2], signal.SIGCONT)}
    for at, what in EVENTS:
        time.sleep(max(0.0, start + at - time.monotonic()))
        actions[what]()
        log.append((round(time.monotonic() - start, 2), what))


@needs_haproxy
def test_fleet_serves_through_kill_reload_and_pause(fleet, photos, text_jpeg):
    balancer, boards = fleet
    kinds = request_kinds(photos, text_jpeg)
    want = expected_answers(boards[1], kinds)
    base = "http://127.0.0.1:%d" % balancer.port
    outcomes, events = [], []
    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(base, kinds, want, i, start + LOAD_SECONDS, outcomes))
               for i in range(CLIENTS)]
    threads.append(threading.Thread(target=chaos, args=(boards, start, events)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(LOAD_SECONDS + 60)
    counts = collections.Counter(outcomes)
    print("events (s into the load):", events)
    for (kind, verdict), n in sorted(counts.items()):
        print("%5d  %-22s %s" % (n, kind, verdict))
    log = balancer.log()
    print("HAProxy: %d requests sent again to another board; %s" % (
        len(re.findall(r" \d+/\d+/\d+/\d+/\+?[1-9]\d* \d+/\d+ ", log)),
        "; ".join(sorted(set(re.findall(r"Server boards/\w+ is (?:DOWN|UP)", log))))))
    assert not any(t.is_alive() for t in threads)
    assert len(events) == len(EVENTS)
    wrong = {k: n for k, n in counts.items() if not (k[1] == "ok" or k[1].startswith("503 "))}
    assert not wrong, "%s\n%s" % (wrong, balancer.log()[-3000:])
    for kind, _ in kinds:  # the fleet served every kind of request through it all
        assert counts[(kind, "ok")] >= 3, counts
    # The board that only reloaded knows it is in the fleet: the balancer's checks are recorded.
    status = requests.get(boards[1].url + "/api/status", timeout=5).json()["data"]
    [check] = [c for c in status["balancers"] if c["balancer"] == "test-lb"]
    assert check["address"] == "127.0.0.1" and check["status"] == 200 and check["answer"] == "ready"
    assert check["checks"] >= 5 and 0.5 <= check["interval_s"] <= 2.5 and check["last_s_ago"] < 3


# ---- a body over the retry buffer, on a board that dies --------------------------------------------

def stand_in_board(listener, stop, on_post):
    """A stand-in board on listener until stop: its health checks pass, and on_post(conn, head)
    answers each POST (head: the first bytes received)."""
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        with conn:
            conn.settimeout(5)
            head = conn.recv(65536)
            if head.startswith(b"GET"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            else:
                on_post(conn, head)


def dying_board(listener, read_before_dying, stop):
    """A POST is read (read_before_dying bytes of it, or all with None) and its connection is then
    reset, as a killed board's is."""
    def die(conn, head):
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        want, got = min(length, read_before_dying or length), len(head.split(b"\r\n\r\n", 1)[1])
        while got < want:
            data = conn.recv(65536)
            if not data:
                break
            got += len(data)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, as a kill

    stand_in_board(listener, stop, die)


@needs_haproxy
@pytest.mark.parametrize("read_before_dying", [None, 200000])
def test_a_body_over_the_retry_buffer_on_a_board_that_dies(tmp_path, read_before_dying):
    """A 3 MB body (over the default 1 MiB retry buffer) cannot be sent again: if its board dies
    after reading it whole, the client gets HAProxy's 502 as the JSON 503 (code 1007) with a
    Retry-After. If the board dies while HAProxy is still sending the body, HAProxy 2.6 mostly
    closes the client's connection without an answer (logged 'SD--', status -1; 5 of 8 tries, the
    others got the JSON 503): the one case where a client may see no answer. Larger --retry-body-bytes removes it for bodies up to that size (memory: README)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()
    board = threading.Thread(target=dying_board, args=(listener, read_before_dying, stop), daemon=True)
    board.start()
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(config_for(["127.0.0.1:%d" % listener.getsockname()[1]], "--bind", "127.0.0.1:%d" % port,
                              "--log", "stderr", "--check-interval", "1"))
    balancer = Balancer(cfg, tmp_path / "haproxy.log", port, HAPROXY)
    try:
        balancer.wait_ready()
        body = os.urandom(3 * 1024 ** 2)
        url = "http://127.0.0.1:%d/api/model/service/binary?mid=4" % port
        if read_before_dying is None:
            resp = requests.post(url, data=body, timeout=10)
            assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
            assert resp.headers["Content-Type"].startswith("application/json") and resp.json()["code"] == 1007
        else:
            # Usually the connection is closed with no answer (HAProxy logs status -1, 'SD--'); when
            # HAProxy has sent the whole body before the reset, the client gets the JSON 503.
            try:
                resp = requests.post(url, data=body, timeout=10)
            except requests.ConnectionError:
                time.sleep(0.3)
                assert " -1 " in balancer.log() and "SD--" in balancer.log()
                print("\nthe board died after 200 KB of the body: the connection closed, no answer")
            else:
                assert resp.status_code == 503 and resp.json()["code"] == 1007, resp.text
                print("\nthe board died after 200 KB of the body: the JSON 503")
    finally:
        balancer.stop()
        stop.set()
        board.join(5)
        listener.close()


# ---- every board busy ---------------------------------------------------------------------------

BUSY_ANSWER = (b'{"code":1005,"data":null,"msg":"the accelerator queue is full (4 jobs) and the wait for room '
               b'would be about 7 s, longer than this board lets a request wait (queue_wait_ms); retry in 7 s"}')


def busy_board(listener, stop, posts):
    """Every POST answered with the service's busy 503 (code 1005, Retry-After: 7), counted in posts."""
    def busy(conn, head):
        posts.append(1)
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 7\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(BUSY_ANSWER), BUSY_ANSWER))

    stand_in_board(listener, stop, busy)


@needs_haproxy
def test_every_board_busy_passes_the_last_boards_503_and_retry_after(tmp_path):
    """A 503 "busy" is tried on every other board (retry-on 503, redispatch); when all are busy the
    client gets the last board's own answer: its JSON and its Retry-After, not HAProxy's."""
    stop, posts, listeners, threads = threading.Event(), [[], []], [], []
    for counted in posts:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listeners.append(listener)
        threads.append(threading.Thread(target=busy_board, args=(listener, stop, counted), daemon=True))
        threads[-1].start()
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(config_for(["127.0.0.1:%d" % l.getsockname()[1] for l in listeners], "--bind",
                              "127.0.0.1:%d" % port, "--log", "stderr", "--check-interval", "1"))
    balancer = Balancer(cfg, tmp_path / "haproxy.log", port, HAPROXY)
    try:
        balancer.wait_ready()
        resp = requests.post("http://127.0.0.1:%d/api/model/service/binary?mid=4" % port, data=b"x" * 1000,
                             timeout=10)
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "7"
        assert resp.json()["code"] == 1005 and "retry in 7 s" in resp.json()["msg"]
        assert len(posts[0]) >= 1 and len(posts[1]) >= 1 and len(posts[0]) + len(posts[1]) == 3  # 1 + 2 retries
    finally:
        balancer.stop()
        stop.set()
        for t in threads:
            t.join(5)
        for l in listeners:
            l.close()
