"""The HTTP API over real HTTP on 127.0.0.1, with the real Paddle Lite models.

Model 2 (text direction, ~10 ms) carries most parser and leniency tests; model 1 (text detection,
~0.5-1 s) and model 3 (the OCR pipeline, slow) are used sparingly.
"""
import base64
import io
import json
import os
import signal
import socket
import sys
import time
from wsgiref.util import setup_testing_defaults

import cv2
import numpy as np
import pytest
import requests

import textimages

# The API against the small models (mid 2): `make test-arm` runs these on the emulated board too, but the
# ones marked not_arm (they need the OCR models, mids 1 and 3, which the emulated board does not install).
pytestmark = pytest.mark.arm

FAST = 2  # text direction: the model for parser tests


# ---- the EdgeBoard document's three sample clients, verbatim apart from the URL and model id -----
# (The document uses mid 10; the image path stays "image_file/face.jpeg", made in a temp dir.)

def post_image_base64(url):
    headers = {
        'Content-Type':'application/json'
    }
    image_file = "image_file/face.jpeg"
    with open(image_file, "rb") as f:
        image_data = f.read()
    image_base64 = str(base64.b64encode(image_data), encoding = 'utf-8')
    #print(image_base64)
    data = {
        "image":image_base64,
        "show":False
    }
    data_json = json.dumps(data)
    response = requests.post(url, data = data_json, headers = headers)
    result_json = response.json()
    print(json.dumps(result_json, ensure_ascii=False, indent=4))


def post_image_binary(url):
    image_file = "image_file/face.jpeg"
    with open(image_file, "rb") as f:
        image_data = f.read()
    image_len = len(image_data)
    #print(image_len)
    headers = {
        'Content-Type':'image/jpg',
        'Content-Length':image_len
    }
    request_body = image_data
    response = requests.post(url, request_body, headers)
    result_json = response.json()
    print(json.dumps(result_json, ensure_ascii=False, indent=4))


def post_image_multipart(url):
    image_file = "image_file/face.jpeg"

    files = {'file':open(image_file, 'rb')}
    data = {
        "mids":"[2]"  # the document's "[10]": no model 10 here
    }
    response = requests.post(url, files = files, data = data)
    result_json = response.json()
    print(json.dumps(result_json, ensure_ascii=False, indent=4))


@pytest.fixture
def in_sample_dir(tmp_path, monkeypatch, text_jpeg):
    """A working directory holding the samples' image_file/face.jpeg (our drawn page)."""
    (tmp_path / "image_file").mkdir()
    (tmp_path / "image_file" / "face.jpeg").write_bytes(text_jpeg)
    monkeypatch.chdir(tmp_path)


def printed_json(capsys):
    return json.loads(capsys.readouterr().out)


def test_document_sample_base64(url, in_sample_dir, capsys):
    post_image_base64(url + "/api/model/service/base64?mid=%d" % FAST)
    out = printed_json(capsys)
    assert out["code"] == 0 and out["msg"] == "success"
    assert [r["label"] for r in out["data"]["result"]] in (["0"], ["180"])
    assert "image" not in out["data"]


@pytest.mark.not_arm  # names the default model set (mids 1, 3)
def test_document_sample_binary_sends_no_content_type(url, in_sample_dir, capsys):
    # The sample passes its headers positionally: they land in requests' `json` parameter.
    post_image_binary(url + "/api/model/service/binary?mid=1&show=0")
    out = printed_json(capsys)
    assert out["code"] == 0, out
    boxes = out["data"]["result"]
    assert len(boxes) >= 1 and all(r["label"] == "text" for r in boxes)
    assert "image" not in out["data"]


def test_document_sample_multipart(url, in_sample_dir, capsys):
    post_image_multipart(url + "/api/model/service/multipart?show=0")
    out = printed_json(capsys)
    assert out["code"] == 0, out
    assert [d["model_id"] for d in out["data"]] == [FAST]
    assert set(out["data"][0]) == {"model_id", "result"}


# ---- helpers --------------------------------------------------------------------------------

def encode(img, ext=".jpg"):
    return textimages.encode(img, ext)


def b64(data):
    return base64.b64encode(data).decode("ascii")


def ok(resp):
    assert_json_response(resp)
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == 0 and body["msg"] == "success", body
    return body["data"]


def error(resp, status, code):
    """An error: the given status, JSON envelope with that non-zero code, data null, a message."""
    assert_json_response(resp)
    body = resp.json()
    assert (resp.status_code, body["code"]) == (status, code), body
    assert body["data"] is None and body["msg"]
    return body["msg"]


def assert_json_response(resp):
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert int(resp.headers["Content-Length"]) == len(resp.content)
    assert "chunked" not in resp.headers.get("Transfer-Encoding", "")


def base64_post(url, doc, query="?mid=%d" % FAST, **kw):
    return requests.post(url + "/api/model/service/base64" + query, data=json.dumps(doc),
                         headers={"Content-Type": "application/json"}, timeout=60, **kw)


def binary_post(url, data, query="?mid=%d" % FAST, headers=None):
    return requests.post(url + "/api/model/service/binary" + query, data=data, headers=headers or {}, timeout=60)


def multipart_post(url, jpeg, mids, query="", files=None):
    files = files if files is not None else {"file": ("page.jpg", jpeg, "image/jpeg")}
    return requests.post(url + "/api/model/service/multipart" + query, files=files,
                         data={"mids": mids} if mids is not None else {}, timeout=60)


def is_direction_result(data):
    return [r["label"] for r in data["result"]] in (["0"], ["180"])


# ---- results --------------------------------------------------------------------------------

@pytest.mark.not_arm  # names the default model set (mids 1, 3)
def test_show_returns_the_rendered_image_at_the_original_size(url, text_image, text_jpeg):
    data = ok(binary_post(url, text_jpeg, "?mid=1&show=1"))
    rendered = cv2.imdecode(np.frombuffer(base64.b64decode(data["image"]), np.uint8), cv2.IMREAD_COLOR)
    assert rendered is not None and rendered.shape == text_image.shape
    assert base64.b64decode(data["image"])[:2] == b"\xff\xd8"  # JPEG
    h, w = text_image.shape[:2]
    for r in data["result"]:  # boxes in original-image pixels
        loc = r["location"]
        assert set(r) == {"extended", "index", "label", "location", "score"}
        assert all(isinstance(loc[k], float) for k in ("height", "left", "top", "width"))
        assert 0 <= loc["left"] < w and 0 <= loc["top"] < h and loc["left"] + loc["width"] <= w + 1


@pytest.mark.not_arm  # names the default model set (mids 1, 3)
def test_ocr_pipeline_reads_the_page(url, text_jpeg):
    data = ok(base64_post(url, {"image": b64(text_jpeg)}, "?mid=3"))
    assert [r["label"].replace(" ", "") for r in data["result"]] == ["HELLO123"]
    loc = data["result"][0]["location"]
    assert 20 < loc["left"] < 80 and 100 < loc["top"] < 180  # drawn at (40, 180), font height ~45 px


@pytest.mark.not_arm  # names the default model set (mids 1, 3)
def test_multipart_runs_every_mid_in_order(url, text_jpeg):
    data = ok(multipart_post(url, text_jpeg, "[2,1]", "?show=1"))
    assert [d["model_id"] for d in data] == [2, 1]
    assert is_direction_result(data[0]) and all(r["label"] == "text" for r in data[1]["result"])
    assert all(set(d) == {"model_id", "result", "image"} for d in data)


# ---- leniencies -----------------------------------------------------------------------------

def test_base64_path_form(url, text_jpeg):
    assert is_direction_result(ok(base64_post(url, {"image": b64(text_jpeg)}, "/mid=%d" % FAST)))


def test_binary_path_form(url, text_jpeg):
    assert is_direction_result(ok(binary_post(url, text_jpeg, "/mid=%d?show=1" % FAST)))


@pytest.mark.parametrize("query, shown", [
    ("?mid=2?show=1", True),   # the document's typo: a second `?` instead of `&`
    ("?mid=2?show=0", False),
    ("?mid=2&show=1", True),
    ("?mid=2&show=true", True),
    ("?mid=2&show=TRUE", True),
    ("?mid=2&show=0", False),
    ("?mid=2&show=false", False),
    ("?mid=2&show=yes", False),  # the document: any other value means false
    ("?mid=2&show=", False),
    ("?mid=2", False),
])
def test_binary_show_values(url, text_jpeg, query, shown):
    data = ok(binary_post(url, text_jpeg, query))
    assert ("image" in data) is shown


@pytest.mark.parametrize("show, shown", [
    (True, True), (False, False), (1, True), (0, False), ("true", True), ("1", True),
    ("false", False), ("on", False), (None, False), ([1], False),
])
def test_base64_show_values(url, text_jpeg, show, shown):
    data = ok(base64_post(url, {"image": b64(text_jpeg), "show": show}))
    assert ("image" in data) is shown


def test_base64_show_may_come_in_the_query(url, text_jpeg):
    assert "image" in ok(base64_post(url, {"image": b64(text_jpeg)}, "?mid=2&show=1"))


@pytest.mark.parametrize("form", ["plain", "data-url", "data-url-jpg", "newlines", "spaces", "no-padding",
                                  "url-safe"])
def test_base64_forms(url, form):
    for width in range(80, 90):  # a size whose base64 text ends in padding
        data = encode(np.full((60, width, 3), 200, np.uint8), ".png")
        if len(data) % 3:
            break
    text = b64(data)
    assert text.endswith("=")
    text = {
        "plain": text,
        "data-url": "data:image/png;base64," + text,
        "data-url-jpg": "data:image/jpg;base64," + text,
        "newlines": base64.encodebytes(data).decode("ascii"),
        "spaces": " ".join(text[i:i + 10] for i in range(0, len(text), 10)),
        "no-padding": text.rstrip("="),
        "url-safe": base64.urlsafe_b64encode(data).decode("ascii"),
    }[form]
    assert is_direction_result(ok(base64_post(url, {"image": text})))


def test_base64_json_without_content_type(url, text_jpeg):
    resp = requests.post(url + "/api/model/service/base64?mid=2", data=json.dumps({"image": b64(text_jpeg)}),
                         headers={"Content-Type": "text/plain"})
    assert is_direction_result(ok(resp))


@pytest.mark.parametrize("content_type", [None, "image/jpeg", "image/jpg", "application/octet-stream",
                                          "application/x-www-form-urlencoded", "text/plain"])
def test_binary_any_content_type(url, text_jpeg, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    assert is_direction_result(ok(binary_post(url, text_jpeg, headers=headers)))


def test_binary_accepts_a_multipart_file_part(url, text_jpeg):
    resp = requests.post(url + "/api/model/service/binary?mid=2&show=1",
                         files={"file": ("page.jpg", text_jpeg, "image/jpeg")})
    data = ok(resp)
    assert is_direction_result(data) and "image" in data


def test_binary_chunked_upload(url, text_jpeg):
    def chunks():
        yield text_jpeg[:1000]
        yield text_jpeg[1000:]

    assert is_direction_result(ok(binary_post(url, chunks())))


@pytest.mark.parametrize("mids, expected", [
    ("[2]", [2]),
    ("2", [2]),
    ("[ 2 , 2 ]", [2, 2]),
    ("2,2", [2, 2]),
    (["2", "2"], [2, 2]),  # repeated fields
    (["[2]", "2"], [2, 2]),
])
def test_multipart_mids_forms(url, text_jpeg, mids, expected):
    data = ok(multipart_post(url, text_jpeg, mids))
    assert [d["model_id"] for d in data] == expected
    assert all(is_direction_result(d) and "image" not in d for d in data)


def test_multipart_show_query_typo_and_values(url, text_jpeg):
    assert all("image" in d for d in ok(multipart_post(url, text_jpeg, "[2]", "?show=1")))
    assert all("image" not in d for d in ok(multipart_post(url, text_jpeg, "[2]", "?show=abc")))


def test_sloppy_slashes(url, text_jpeg):
    # (A leading `//` cannot be forgiven: cheroot reads `//api/...` as an absolute URI and says 400.)
    resp = requests.post(url + "/api//model/service/binary/?mid=2", data=text_jpeg)
    assert is_direction_result(ok(resp))
    assert ok(requests.get(url + "/api/health/"))["ready"] is True


# ---- errors: 400 ------------------------------------------------------------------------------

def test_bad_json(url):
    resp = requests.post(url + "/api/model/service/base64?mid=2", data="{not json",
                         headers={"Content-Type": "application/json"})
    assert "JSON" in error(resp, 400, 1001)


@pytest.mark.parametrize("doc", [[1, 2], {"show": True}, {"image": 42}, {"image": ""}])
def test_bad_json_documents(url, doc):
    error(base64_post(url, doc), 400, 1001)


@pytest.mark.parametrize("text", ["!!!!not base64!!!!", "abcde", "data:image/png;base64,@@@"])
def test_bad_base64(url, text):
    assert "base64" in error(base64_post(url, {"image": text}), 400, 1001)


def test_base64_of_something_not_an_image(url):
    error(base64_post(url, {"image": b64(b"hello, this is plain text and not a picture")}), 400, 1002)


@pytest.mark.parametrize("body", [b"", b"GIF89a" + b"\0" * 100, os.urandom(2000)])
def test_binary_not_an_image(url, body):
    error(binary_post(url, body), 400, 1002)


def test_truncated_jpeg(url, text_jpeg):
    error(binary_post(url, text_jpeg[:600]), 400, 1002)


@pytest.mark.parametrize("query", ["", "?mid=", "?mid=abc", "?mid=1.5", "?show=1"])
def test_bad_or_missing_mid(url, text_jpeg, query):
    assert "mid" in error(binary_post(url, text_jpeg, query), 400, 1001)


def test_bad_mid_in_path_form(url, text_jpeg):
    error(base64_post(url, {"image": b64(text_jpeg)}, "/mid=two"), 400, 1001)


@pytest.mark.parametrize("mids", ["[a]", "[2,x]", "", None])
def test_bad_or_missing_mids(url, text_jpeg, mids):
    assert "mids" in error(multipart_post(url, text_jpeg, mids), 400, 1001)


def test_too_many_mids(url, text_jpeg):
    assert "limit is 8" in error(multipart_post(url, text_jpeg, json.dumps([2] * 9)), 400, 1001)


def test_multipart_without_a_file(url):
    resp = requests.post(url + "/api/model/service/multipart", files={"mids": (None, "[2]")})
    assert "'file'" in error(resp, 400, 1001)


def test_multipart_that_is_not_multipart(url, text_jpeg):
    resp = requests.post(url + "/api/model/service/multipart?mids=2", data=text_jpeg)
    assert "multipart" in error(resp, 400, 1001)


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_bad_deadline(url, text_jpeg, value):
    resp = binary_post(url, text_jpeg, headers={"X-Edgeapp-Deadline-Ms": value})
    assert "Deadline" in error(resp, 400, 1001)


# ---- errors: 404, 405 -------------------------------------------------------------------------

@pytest.mark.not_arm  # names the default model set (mids 1, 3)
def test_unknown_model_on_each_endpoint(url, text_jpeg):
    assert "99" in error(base64_post(url, {"image": b64(text_jpeg)}, "?mid=99"), 404, 1003)
    assert "99" in error(binary_post(url, text_jpeg, "?mid=99"), 404, 1003)
    msg = error(multipart_post(url, text_jpeg, "[2,99]"), 404, 1003)
    assert "99" in msg and "1, 2, 3" in msg


def test_unknown_path(url):
    assert "/api/nope" in error(requests.get(url + "/api/nope"), 404, 1009)
    error(requests.post(url + "/api/model/service/png?mid=2", data=b"x"), 404, 1009)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/model/service/base64?mid=2"), ("GET", "/api/model/service/binary"),
    ("PUT", "/api/model/service/multipart"), ("POST", "/api/health"), ("DELETE", "/api/models"),
])
def test_wrong_method(url, method, path):
    resp = requests.request(method, url + path, data=b"")
    error(resp, 405, 1010)
    assert resp.headers["Allow"]


# ---- errors: 413, 504 -------------------------------------------------------------------------

def test_body_too_large_is_refused_before_reading(url):
    limit = 20 * 1024 * 1024
    resp = binary_post(url, b"\0" * (limit + 1))
    assert "limit is %d bytes" % limit in error(resp, 413, 1004)


def test_chunked_body_too_large(url):
    def chunks():
        for _ in range(21):
            yield b"\0" * (1024 * 1024)

    error(binary_post(url, chunks()), 413, 1004)


def test_too_many_pixels_is_refused_from_the_header(url):
    bomb = textimages.png_header(50000, 50000)
    assert len(bomb) < 200
    assert "2500000000 pixels" in error(binary_post(url, bomb), 413, 1004)
    error(base64_post(url, {"image": b64(bomb)}), 413, 1004)


def test_deadline_passed_before_the_accelerator(url, text_jpeg):
    resp = binary_post(url, text_jpeg, headers={"X-Edgeapp-Deadline-Ms": "0.001"})
    error(resp, 504, 1006)
    error(binary_post(url, text_jpeg, "?mid=2&deadline_ms=0.001"), 504, 1006)
    ok(binary_post(url, text_jpeg, headers={"X-Edgeapp-Deadline-Ms": "20000"}))


# ---- models, health, status -------------------------------------------------------------------

@pytest.mark.not_arm  # names the default model set (mids 1, 3)
def test_models(url):
    models = ok(requests.get(url + "/api/models"))
    assert [(m["id"], m["name"], m["type"]) for m in models] == [
        (1, "ppocr-det", "db_det"), (2, "text-direction", "classify"), (3, "ppocr", "ocr"),
        (4, "face", "blazeface"), (5, "doc-orientation", "classify"), (7, "face-far", "blazeface"),
        (8, "objects", "detection"), (9, "face-recognition", "face_rec")]
    for m in models:
        assert m["ready"] is True and m["reason"] is None
        assert len(m["input_shape"]) == 4 and isinstance(m["labels"], list)
        assert m["memory_mb"] is not None and m["memory_mb"] >= 0
    assert models[1]["labels"] == ["0", "180"]


@pytest.mark.not_arm  # names the default model set (mids 1, 3)
def test_health_is_ready_and_fast(url):
    requests.get(url + "/api/health")  # a connection warmed up
    t0 = time.monotonic()
    resp = requests.get(url + "/api/health")
    elapsed = time.monotonic() - t0
    data = ok(resp)
    assert data["ready"] is True and data["state"] == "ready"
    assert data["models_ready"] == [1, 2, 3, 4, 5, 7, 8, 9] and data["models_failed"] == []
    assert elapsed < 0.2


def _raw_exchange(url, data):
    """Send data on one connection, read until the server closes it."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_health_from_the_selector_thread_is_the_same_answer(url):
    """GET /api/health is answered without a thread (httpd Server.quick); HEAD, HTTP/1.0 and the
    rest go through Bottle. Both must give the same envelope and headers."""
    quick = requests.get(url + "/api/health")
    slow = _raw_exchange(url, b"GET /api/health HTTP/1.0\r\nHost: x\r\n\r\n")
    head, _, body = slow.partition(b"\r\n\r\n")
    assert quick.status_code == 200 and head.startswith(b"HTTP/1.1 200 OK")
    assert set(json.loads(body.decode())) == set(quick.json()) and quick.json()["data"]["ready"] is True
    for name in ("Content-Type", "X-Content-Type-Options", "Cache-Control", "Server", "Date"):
        assert quick.headers[name]
        assert ("%s: %s" % (name, quick.headers[name])).encode() in head or name == "Date"
    assert requests.head(url + "/api/health").status_code == 200
    # Pipelined: both answered, in order, and the connection is closed as the second one asked.
    two = _raw_exchange(url, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET /api/health?probe=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert two.count(b"HTTP/1.1 200 OK") == 2 and two.count(b"Connection: close") == 1
    # Anything with a body is not for the quick path: the route's own answer (405, GET only).
    resp = requests.post(url + "/api/health", data=b"x")
    assert resp.status_code == 405 and resp.json()["code"] != 0


@pytest.mark.not_arm  # names the default model set (mids 1, 3)
def test_status_counts_requests(url, text_jpeg):
    before = {m["id"]: m for m in ok(requests.get(url + "/api/status"))["models"]}
    ok(binary_post(url, text_jpeg))
    status = ok(requests.get(url + "/api/status"))
    for key in ("version", "uptime_s", "state", "worker_pid", "restarts", "queue_depth", "queue_capacity",
                "requests_in_flight", "models"):
        assert key in status
    models = {m["id"]: m for m in status["models"]}
    assert sorted(models) == [1, 2, 3, 4, 5, 7, 8, 9]
    assert models[2]["requests"] == before[2]["requests"] + 1
    assert set(models[2]["latency_ms"]) == {"p50", "p95", "p99"} and models[2]["latency_ms"]["p50"] > 0


def test_status_has_the_health_word_and_addresses(url):
    status = ok(requests.get(url + "/api/status"))
    assert status["health"] == {"healthy": True, "word": "HEALTHY", "reason": "service ready, every model ready"}
    assert "board" in status and status["urls"] and all(u.startswith("http://") for u in status["urls"])


def test_history_counts_every_run_in_its_period(url, text_jpeg):
    """GET /api/status/history: a sample every 2 s with each model's runs of that period; the runs
    after a sample add up in the samples that follow, exactly (the main loop samples twice a second)."""
    first = ok(requests.get(url + "/api/status/history"))
    assert (first["period_s"], first["keep"]) == (2.0, 300) and first["samples"]
    since = first["samples"][-1]["t"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # a sample after the earlier tests' runs: counting starts at 0
        later = ok(requests.get(url + "/api/status/history?since=%r" % since))["samples"]
        if later:
            since = later[-1]["t"]
            break
        time.sleep(0.2)
    for _ in range(3):
        ok(binary_post(url, text_jpeg))
    deadline, counted, samples = time.monotonic() + 15, 0, []
    while counted < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
        samples = ok(requests.get(url + "/api/status/history?since=%r" % since))["samples"]
        counted = sum(s["models"].get(str(FAST), {}).get("requests", 0) for s in samples)
    assert counted == 3 and all(s["t"] > since for s in samples)
    busy = [s["models"][str(FAST)] for s in samples if str(FAST) in s["models"]]
    assert all(m["errors"] == 0 and 0 < m["p50"] <= m["p95"] for m in busy)
    last = samples[-1]
    assert last["state"] == "ready" and last["queue_capacity"] >= 1 and last["refused"] == 0
    assert set(last["memory"]) >= {"http_mb", "worker_mb", "slots_mb", "bodies_mb", "total_mb", "budget_mb"}
    assert "since" in error(requests.get(url + "/api/status/history?since=yesterday"), 400, 1001)


# ---- settings that need their own server: token, small limits -----------------------------------

@pytest.fixture(scope="module")
def small_server(start_server, fast_model_dir):
    """Only the fast model, an access token and small limits."""
    return start_server(model_dir=fast_model_dir, token="s3cret", max_body_bytes="64K", max_pixels=10000,
                        max_mids=2)


def test_token_required(small_server, text_jpeg):
    u = small_server.url
    resp = binary_post(u, text_jpeg)
    assert "token" in error(resp, 401, 1008)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    error(binary_post(u, text_jpeg, headers={"Authorization": "Bearer wrong"}), 401, 1008)
    error(requests.get(u + "/api/models"), 401, 1008)
    error(requests.get(u + "/api/status"), 401, 1008)
    assert ok(requests.get(u + "/api/health"))["ready"] is True  # health stays open


@pytest.mark.parametrize("how", ["bearer", "header", "query"])
def test_token_accepted(small_server, how):
    img = encode(np.full((60, 90, 3), 128, np.uint8))
    headers = {"bearer": {"Authorization": "Bearer s3cret"}, "header": {"X-Edgeapp-Token": "s3cret"},
               "query": {}}[how]
    query = "?mid=2&token=s3cret" if how == "query" else "?mid=2"
    assert is_direction_result(ok(binary_post(small_server.url, img, query, headers=headers)))


def test_configured_limits(small_server):
    auth = {"Authorization": "Bearer s3cret"}
    u = small_server.url
    big = os.urandom(65 * 1024)
    assert "65536" in error(binary_post(u, big, headers=auth), 413, 1004)
    assert "10000" in error(binary_post(u, encode(np.zeros((101, 100, 3), np.uint8)), headers=auth), 413, 1004)
    small = encode(np.zeros((100, 100, 3), np.uint8))
    resp = requests.post(u + "/api/model/service/multipart", headers=auth,
                         files={"file": ("a.jpg", small)}, data={"mids": "[2,2,2]"})
    assert "limit is 2" in error(resp, 400, 1001)
    assert "no model with id 1" in error(binary_post(u, small, "?mid=1", headers=auth), 404, 1003)


# ---- the server process -----------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(start_server, fast_model_dir, sig):
    s = start_server(model_dir=fast_model_dir)
    assert s.stop(sig) == 0
    log = s.log()
    assert "ready in" in log and "models ready: 2 text-direction" in log
    assert "%s received" % sig.name in log and "stopped" in log and "Traceback" not in log


def test_port_in_use_fails_with_a_message(run_python, fast_model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        res = run_python("-m", "edgeapp", "serve", "--host", "127.0.0.1", "--port", str(port),
                         model_dir=fast_model_dir)
    assert res.returncode == 1 and "cannot listen on 127.0.0.1 port %d" % port in res.stderr


def test_the_api_never_imports_an_engine(run_python):
    code = ("import sys, edgeapp.api, edgeapp.server, edgeapp.engines; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('paddlelite', 'onnxruntime') "
            "or m in ('edgeapp.engines.paddle_lite', 'edgeapp.engines.onnx_runtime')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = run_python("-c", code)
    assert res.returncode == 0, res.stdout + res.stderr


# ---- in-process: what a real server cannot be made to do on purpose ----------------------------

class _Settings:
    max_body_bytes = 1024 * 1024
    max_pixels = 10 ** 6
    max_mids = 8
    request_timeout = 5.0
    token = None


class _BrokenEngine:
    bundles, models, failed = {}, {}, {}
    gallery = None  # no face database

    def model(self, mid):
        return object()

    def decode(self, data, max_pixels, mids, full=False):
        from edgeapp import images
        return images.decode_reduced(data, max_pixels)

    def infer(self, mid, image, show=False, deadline=None, timing=None, size=None, reservation=None):
        raise RuntimeError("secret internal detail")


class _Accel:
    def reserve(self, deadline=None, renew=None):
        return renew or object()

    def release(self, reservation):
        pass

    def status(self):
        return {}


def call_wsgi(app, method, path, body=b"", query=""):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    setup_testing_defaults(environ)
    status = []
    out = b"".join(app(environ, lambda s, headers, exc=None: status.append((s, dict(headers)))))
    return status[0][0], status[0][1], json.loads(out.decode("utf-8"))


def test_unexpected_exception_is_a_generic_500(caplog):
    from edgeapp.api import make_app

    app = make_app(_BrokenEngine(), _Accel(), _Settings())
    img = encode(np.zeros((20, 20, 3), np.uint8), ".png")
    status, headers, body = call_wsgi(app, "POST", "/api/model/service/binary", img, "mid=1")
    assert status.startswith("500") and headers["Content-Type"] == "application/json; charset=utf-8"
    assert body["code"] == 1099 and body["data"] is None and "secret" not in body["msg"]
    assert "secret internal detail" in caplog.text and "Traceback" in caplog.text


def test_starting_app_says_not_ready():
    from edgeapp.api import starting_app

    status, headers, body = call_wsgi(starting_app, "GET", "/api/health")
    assert status.startswith("503") and headers["Retry-After"] == "2"
    assert body["code"] == 1011 and body["data"] is None and "starting" in body["msg"]


# ---- the seams: handlers, plugins and the answer headers, each without a server ---------------

class _Engine(_BrokenEngine):
    bundles = {2: type("Bundle", (), {"name": "face", "input_shape": [1, 3, 8, 8], "folder": "/nonexistent/face"})()}
    models, failed = {2: object()}, {5: "it failed to load"}

    def describe(self):
        return [{"id": 2, "name": "face"}]


def test_api_handlers_are_methods_that_answer_without_http():
    import bottle

    from edgeapp.api import Api
    from edgeapp.errors import BadRequest, NotFound, NotReady

    class Accel(_Accel):
        state = "ready"

        def status(self):
            return {"state": self.state}

    api = Api(_Engine(), Accel(), _Settings())
    assert api.models() == [{"id": 2, "name": "face", "sha256": None}]  # None: its folder cannot be read
    health = api.readiness()
    assert health["ready"] is True and health["models_ready"] == [2] and health["models_failed"] == [5]
    # A load balancer's check: a board with a failed model is out (the other boards serve model 5).
    status, _, body = api.quick(b"GET", b"/api/health?balancer=lb-0", "10.0.0.9")
    assert status == 503 and "a model failed (5: " in json.loads(body)["msg"]
    api.balancers.last.clear()
    with pytest.raises(NotFound):
        api.reload_models()  # this Api was given no reload
    reloaded = Api(_Engine(), Accel(), _Settings(), reload=lambda: {"added": [3], "failed": {4: "bad"}})
    assert reloaded.reload_models() == {"added": [3], "failed": {"4": "bad"}}
    bottle.request.bind({"REQUEST_METHOD": "POST", "PATH_INFO": "/api/model/service/binary",
                         "QUERY_STRING": "mid=two", "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b"")})
    with pytest.raises(BadRequest, match="mid must be a model id"):
        api.service_binary()
    api.accel.state = "restarting"
    with pytest.raises(NotReady) as e:
        api.readiness()
    assert "restarting" in e.value.msg and e.value.retry_after == 2
    status, headers, body = api.quick(b"GET", b"/api/health?verbose=1")  # the selector thread's answer
    assert status == 503 and ("Retry-After", "2") in headers and json.loads(body)["code"] == 1011
    assert api.quick(b"POST", b"/api/health") is None and api.quick(b"GET", b"/api/status") is None
    assert api.balancers.report() == []  # only a balancer's check (?balancer=NAME) is recorded
    api.quick(b"GET", b"/api/health?balancer=lb-1", "10.0.0.2")
    [seen] = api.balancers.report()
    assert (seen["balancer"], seen["address"], seen["status"], seen["checks"]) == ("lb-1", "10.0.0.2", 503, 1)
    assert "restarting" in seen["answer"] and seen["interval_s"] is None
    assert api.shed(b"GET", b"/api/model/service/binary") is None  # only inference POSTs are shed


def test_route_table_names_every_handler_once_per_path():
    from edgeapp.api import INFERENCE, Api

    api = Api(_Engine(), _Accel(), _Settings())
    table = api.routes()
    assert len({(method, path) for method, path, _, _ in table}) == len(table)
    inference = {path for _, path, _, config in table if config is INFERENCE}
    assert inference == {"/api/model/service/base64", "/api/model/service/base64/mid=<path_mid>",
                         "/api/model/service/binary", "/api/model/service/binary/mid=<path_mid>",
                         "/api/model/service/multipart"}
    assert ("POST", "/v1/vision/detection") in {(m, p) for m, p, _, _ in table}  # DeepStack's, on the same Api
    routes = {(r.method, r.rule) for r in api.bottle_app().routes}
    assert routes == {(m, p) for m, p, _, _ in table}


def test_envelope_plugin_wraps_each_route_as_its_config_says():
    import bottle

    from edgeapp.envelope import EnvelopePlugin, InFlight, request_timing
    from edgeapp.metrics import Metrics

    class Settings(_Settings):
        token = "s3cret"

    class Accel(_Accel):
        drops = 0

        def release(self, reservation):
            self.drops += reservation is not None  # the plugin lets go of the one its request made

    def hello():
        return {"hi": 1}

    def infer():
        request_timing()["decode"] = 1.5
        return []

    def own():
        return b'{"own": true}'

    accel, metrics = Accel(), Metrics()
    app = bottle.Bottle()
    app.install(EnvelopePlugin(Settings(), accel, metrics, InFlight()))
    app.route("/open", "GET", hello, answer="envelope", open_access=True)
    app.route("/guarded", "GET", hello, answer="envelope")
    app.route("/infer", "POST", infer, answer="envelope", inference=True, open_access=True)
    app.route("/own", "GET", own)
    status, _, body = call_wsgi(app, "GET", "/open")
    assert status.startswith("200") and body == {"code": 0, "data": {"hi": 1}, "msg": "success"}
    status, headers, body = call_wsgi(app, "GET", "/guarded")
    assert status.startswith("401") and body["code"] == 1008 and headers["Www-Authenticate"].startswith("Bearer")
    status, headers, body = call_wsgi(app, "POST", "/infer")
    assert status.startswith("200") and body["data"] == [] and accel.drops == 1
    assert headers["Server-Timing"].startswith("decode;dur=1.50, total;dur=")
    status, headers, body = call_wsgi(app, "GET", "/own")
    assert body == {"own": True} and "Server-Timing" not in headers
    text = metrics.render([])
    for label in ('code="0",endpoint="hello"', 'code="1008",endpoint="hello"', 'code="0",endpoint="infer"'):
        assert label in text, label
    assert 'endpoint="own"' not in text


def test_deepstack_routes_run_on_the_api_and_keep_their_answer_shape():
    import bottle

    from edgeapp import deepstack
    from edgeapp.api import Api
    from edgeapp.errors import UnknownModel

    ds = deepstack.DeepStack(Api(_Engine(), _Accel(), _Settings()))
    assert ds.by_name("face") == 2 and ds.update_available()["updateAvailable"] is False
    with pytest.raises(UnknownModel):
        ds.by_name("cat")

    def found():
        return {"predictions": []}

    def missing():
        ds.by_name("cat")

    app = bottle.Bottle()
    app.install(deepstack.AnswerPlugin())
    app.route("/found", "POST", found, **deepstack.ROUTE)
    app.route("/missing", "POST", missing, **deepstack.ROUTE)
    status, _, body = call_wsgi(app, "POST", "/found")
    assert status.startswith("200") and body["success"] is True and isinstance(body["duration"], int)
    status, _, body = call_wsgi(app, "POST", "/missing")
    assert status.startswith("404") and body == {"success": False, "code": 1003,
                                                 "error": "no model named 'cat'; see POST /v1/vision/custom/list"}


def test_answer_headers_add_security_headers_and_answer_preflights():
    from edgeapp.headers import AnswerHeaders

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    outer = AnswerHeaders(app, "http://ui.local/, http://other.local")
    status, headers, _ = call_wsgi(outer, "GET", "/", query="")
    assert headers["X-Content-Type-Options"] == "nosniff" and "Access-Control-Allow-Origin" not in headers
    assert outer.cors("http://ui.local") == [("Access-Control-Allow-Origin", "http://ui.local"), ("Vary", "Origin"),
                                              ("Access-Control-Expose-Headers", "Retry-After, Server-Timing")]
    assert outer.cors("http://evil.example") == [] and AnswerHeaders(app).cors("http://ui.local") == []


def test_large_images_are_decoded_one_per_cpu_at_a_time():
    # More large decodes at once than the process has CPUs only share those CPUs (and starve
    # the selector thread); small images are not held back.
    import threading

    from edgeapp import api
    from edgeapp.errors import BadRequest

    class Engine(_BrokenEngine):
        def __init__(self):
            self.now, self.most, self.lock = 0, 0, threading.Lock()

        def decode(self, data, max_pixels, mids, full=False):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(0.1)
            with self.lock:
                self.now -= 1
            raise BadRequest("decoded")  # enough: the point was the decoding

    class Settings(_Settings):
        max_pixels = 10 ** 8

    cpus = api._process_cpus()
    for side, most in ((2000, cpus), (200, 6)):
        engine = Engine()
        app = api.make_app(engine, _Accel(), Settings())
        img = encode(np.zeros((side * 3 // 4, side, 3), np.uint8), ".jpg")
        assert (api._pixels(img) >= api.LARGE_DECODE_PIXELS) == (side == 2000)
        threads = [threading.Thread(target=call_wsgi, args=(app, "POST", "/api/model/service/binary", img, "mid=1"))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert engine.most == most, (side, engine.most, cpus)
