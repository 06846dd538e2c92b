"""Hostile input over real HTTP: every case is a JSON error with its documented code and a 4xx
status, the server stays alive, and no request is left without an answer.

One server (the fast text-direction model only) takes the whole matrix; after every test it
must still answer /api/health, and at the end nothing may be in flight and no traceback logged.
"""
import base64
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest
import requests

from edgeapp import images
from rawhttp import connect, exchange, read_reply, request_bytes
from support import REPO, free_port, server_env
from textimages import encode, page

# Every hostile request, against the text-direction model: `make test-arm` runs these on the emulated board too.
pytestmark = pytest.mark.arm

FAST = 2
BAD_REQUEST, BAD_IMAGE, UNKNOWN_MODEL, TOO_LARGE = 1001, 1002, 1003, 1004
NO_ENDPOINT, NO_METHOD, REQUEST_TIMEOUT = 1009, 1010, 1012
JSON_TYPE = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def hostile(start_server, fast_model_dir):
    return start_server(model_dir=fast_model_dir)


@pytest.fixture(autouse=True)
def still_alive(request):
    """After each test: the server it used still answers /api/health."""
    yield
    if "hostile" in request.fixturenames:
        server = request.getfixturevalue("hostile")
        assert server.proc.poll() is None, server.log()
        assert requests.get(server.url + "/api/health", timeout=5).status_code == 200


def check_error(reply, status, code):
    """reply: a requests.Response or a rawhttp.Reply. The envelope, the code, a 4xx, JSON."""
    headers = {k.lower(): v for k, v in reply.headers.items()}
    body = reply.json()
    got = getattr(reply, "status_code", None) or reply.status
    assert (got, body["code"]) == (status, code), body
    assert 400 <= got < 500 and body["data"] is None and body["msg"]
    assert headers["content-type"] == JSON_TYPE
    assert headers["x-content-type-options"] == "nosniff"
    return body["msg"]


def post(server, path, **kw):
    kw.setdefault("timeout", 30)
    return requests.post(server.url + path, **kw)


def binary(server, data, query="?mid=%d" % FAST, **kw):
    return post(server, "/api/model/service/binary" + query, data=data, **kw)


def b64json(server, doc, query="?mid=%d" % FAST):
    body = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
    return post(server, "/api/model/service/base64" + query, data=body, headers={"Content-Type": "application/json"})


def multipart(server, files, data=None, query=""):
    return post(server, "/api/model/service/multipart" + query, files=files, data=data or {})


@pytest.fixture(scope="module")
def jpeg():
    return encode(page([("HELLO", (60, 120))])[0], ".jpg")


# ---- images: empty, garbage, truncated --------------------------------------------------------

def _samples():
    img = page([("HELLO WORLD", (60, 120))])[0]
    return {ext: encode(img, ext) for ext in (".jpg", ".png", ".bmp", ".webp")}


@pytest.mark.parametrize("how", ["empty", "garbage", "text", "gif", "header-only"])
def test_not_an_image(hostile, how):
    data = {"empty": b"", "garbage": np.random.default_rng(7).bytes(5000), "text": b"hello " * 100,
            "gif": b"GIF89a" + b"\x00" * 200, "header-only": b"\x89PNG\r\n\x1a\n"}[how]
    check_error(binary(hostile, data), 400, BAD_IMAGE)
    check_error(b64json(hostile, {"image": base64.b64encode(data).decode() or "AAAA"}), 400, BAD_IMAGE)
    check_error(multipart(hostile, {"file": ("x.jpg", data)}, {"mids": "[2]"}), 400, BAD_IMAGE)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp"])
@pytest.mark.parametrize("keep", [0.02, 0.3, 0.9, 0.995])
def test_truncated_image(hostile, ext, keep):
    data = _samples()[ext]
    check_error(binary(hostile, data[:max(1, int(len(data) * keep))]), 400, BAD_IMAGE)


@pytest.mark.parametrize("ext", [".tiff", ".ppm", ".sr", "ppm-bomb"])
def test_formats_outside_the_four_are_refused_before_decoding(hostile, ext):
    # OpenCV decodes these, but we can only check the size of JPEG, PNG, BMP and WebP up front.
    if ext == "ppm-bomb":
        data = b"P6\n50000 50000\n255\n" + b"\x80" * 3000
    else:
        ok, buf = cv2.imencode(ext, np.zeros((8, 8, 3), np.uint8))
        assert ok
        data = buf.tobytes()
    assert "JPEG, PNG, BMP, WebP" in check_error(binary(hostile, data), 400, BAD_IMAGE)


# ---- images that declare 50000 x 50000 in a few KB ----------------------------------------------

def _jpeg_declaring(w, h):
    data = bytearray(encode(np.full((64, 64, 3), 90, np.uint8), ".jpg"))
    i = 2
    while not (0xC0 <= data[i + 1] <= 0xCF and data[i + 1] not in (0xC4, 0xC8, 0xCC)):
        i += 2 + struct.unpack(">H", bytes(data[i + 2:i + 4]))[0]
    struct.pack_into(">HH", data, i + 5, h, w)
    return bytes(data)


def _png_declaring(w, h):
    data = bytearray(encode(np.full((64, 64, 3), 90, np.uint8), ".png"))
    struct.pack_into(">II", data, 16, w, h)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)  # a valid IHDR
    return bytes(data)


def _bmp_declaring(w, h):
    data = bytearray(encode(np.full((40, 40, 3), 90, np.uint8), ".bmp"))
    struct.pack_into("<ii", data, 18, w, -h)  # top-down: the sign must not fool the check
    return bytes(data)


def _webp_declaring(w, h, lossless=False):
    params = [cv2.IMWRITE_WEBP_QUALITY, 101 if lossless else 80]
    data = bytearray(encode_with(np.full((64, 64, 3), 90, np.uint8), ".webp", params))
    if lossless:  # VP8L: 14-bit width-1 and height-1 after the signature byte
        bits = (w - 1) | ((h - 1) << 14) | (struct.unpack("<I", bytes(data[21:25]))[0] & ~0xFFFFFFF)
        struct.pack_into("<I", data, 21, bits & 0xFFFFFFFF)
    else:  # VP8: 14-bit width and height in the key frame header
        struct.pack_into("<HH", data, 26, w, h)
    return bytes(data)


def encode_with(img, ext, params):
    ok, buf = cv2.imencode(ext, img, params)
    assert ok
    return buf.tobytes()


BOMBS = {
    "jpeg": lambda: _jpeg_declaring(50000, 50000),
    "png": lambda: _png_declaring(50000, 50000),
    "bmp": lambda: _bmp_declaring(50000, 50000),
    "webp-lossy": lambda: _webp_declaring(16383, 16383),  # WebP's largest: 14 bits a side
    "webp-lossless": lambda: _webp_declaring(16384, 16384, lossless=True),
}


def _rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024.0


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_pixel_bomb_is_refused_from_its_header(hostile, kind):
    bomb = BOMBS[kind]()
    fmt, w, h = images.image_size(bomb)
    assert len(bomb) < 20000 and w * h > 200 * 10 ** 6, (fmt, w, h)
    before = _rss_mb(hostile.proc.pid)
    t0 = time.monotonic()
    msg = check_error(binary(hostile, bomb), 413, TOO_LARGE)
    assert "%dx%d" % (w, h) in msg
    check_error(b64json(hostile, {"image": base64.b64encode(bomb).decode()}), 413, TOO_LARGE)
    check_error(multipart(hostile, {"file": ("b", bomb)}, {"mids": "[2]"}), 413, TOO_LARGE)
    elapsed = time.monotonic() - t0
    # Decoding any of these would take gigabytes and seconds; refused from the header it is neither.
    assert _rss_mb(hostile.proc.pid) < before + 50
    assert elapsed < 10, elapsed


# ---- JSON: wrong types, missing fields, huge strings, deep nesting ---------------------------------

@pytest.mark.parametrize("doc", [
    [1, 2], "just a string", 42, None, True, {}, {"show": True}, {"img": "AAAA"},
    {"image": 42}, {"image": 4.2}, {"image": None}, {"image": True}, {"image": ["AAAA"]}, {"image": {"a": 1}},
    {"image": ""}, {"image": "   "},
])
def test_json_of_the_wrong_shape(hostile, doc):
    check_error(b64json(hostile, doc), 400, BAD_REQUEST)


@pytest.mark.parametrize("body", [
    b"", b"   ", b"{", b"{\"image\": \"AAAA\"", b"\xff\xfe\x00garbage", b"{'image': 'AAAA'}", b"\x00" * 100,
    b'{"image": "AAAA", "show": ' + b"9" * 5000 + b"}",  # int() of a huge number is quadratic
])
def test_malformed_json(hostile, body):
    check_error(b64json(hostile, body), 400, BAD_REQUEST)


def test_deeply_nested_json(hostile):
    for depth in (1000, 100000):
        body = '{"image": ' + "[" * depth + "]" * depth + "}"
        check_error(b64json(hostile, body), 400, BAD_REQUEST)
        check_error(b64json(hostile, '{"a":' * depth + "1" + "}" * depth), 400, BAD_REQUEST)


def test_huge_strings(hostile):
    # 15 MB of valid base64 letters decode to zeros: not an image. 15 MB of junk: not base64.
    check_error(b64json(hostile, {"image": "A" * (15 * 1024 * 1024)}), 400, BAD_IMAGE)
    check_error(b64json(hostile, {"image": "#" * (15 * 1024 * 1024)}), 400, BAD_REQUEST)
    check_error(b64json(hostile, {"image": "AAAA", "junk": "x" * (15 * 1024 * 1024)}), 400, BAD_IMAGE)


# ---- base64 and data: URIs --------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "!!!!", "abcde", "AAAA=AAAA", "AA==AA", "ÄÖÜ1", "AAAA\x00", "data:,", "data:image/png;base64,",
    "data:image/png;base64,@@@@", "data:image/png;base64", "data:" + "x" * 300 + ",AAAA", "=====",
])
def test_invalid_base64(hostile, text):
    # (Valid base64 of something that is not an image is a 1002, tested above.)
    r = b64json(hostile, {"image": text})
    if text == "data:" + "x" * 300 + ",AAAA":  # too long for a data: prefix: read as (bad) base64
        check_error(r, 400, BAD_REQUEST)
    else:
        assert "image" in check_error(r, 400, BAD_REQUEST)


@pytest.mark.parametrize("prefix", ["data:image/png;base64,", "data:image/jpeg;base64,", " data:;base64,",
                                    "data:application/octet-stream;base64,"])
def test_data_uri_prefixes_are_taken(hostile, jpeg, prefix):
    r = b64json(hostile, {"image": prefix + base64.b64encode(jpeg).decode()})
    assert r.status_code == 200 and r.json()["code"] == 0


# ---- mid and mids -----------------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "", "?mid=", "?mid=-1", "?mid=-2", "?mid=1.5", "?mid=2.0", "?mid=abc", "?mid=1e3", "?mid=0x2", "?mid=99999999999",
    "?mid=%C2%B2", "?mid=[2]", "?mid=2&mid=3", "?mid=..%2F..%2Fetc%2Fpasswd", "?mid=/etc/passwd", "?show=1",
])
def test_bad_mid(hostile, jpeg, query):
    assert "mid" in check_error(binary(hostile, jpeg, query), 400, BAD_REQUEST)


def test_mid_forms_that_are_fine_or_unknown(hostile, jpeg):
    assert binary(hostile, jpeg, "?mid=2&mid=2").status_code == 200   # the same id twice: no conflict
    assert binary(hostile, jpeg, "?mid=+2").status_code == 200
    assert binary(hostile, jpeg, "?mid=%202%20").status_code == 200
    check_error(binary(hostile, jpeg, "?mid=0"), 404, UNKNOWN_MODEL)
    check_error(binary(hostile, jpeg, "?mid=999999999"), 404, UNKNOWN_MODEL)
    check_error(b64json(hostile, {"image": base64.b64encode(jpeg).decode()}, "/mid=3?mid=2"), 400, BAD_REQUEST)
    # Model ids come from the registry, never from the file system.
    check_error(binary(hostile, jpeg, "/mid=..%2F..%2Fetc"), 400, BAD_REQUEST)


@pytest.mark.parametrize("mids", ["", "[]", "[ ]", ",,,", "{\"a\": 1}", "[[2]]", "[2,-1]", "[2,x]", "null",
                                  "[2.5]", "[\"2\"]x"])
def test_bad_mids(hostile, jpeg, mids):
    check_error(multipart(hostile, {"file": ("a.jpg", jpeg)}, {"mids": mids}), 400, BAD_REQUEST)


def test_ten_thousand_mids(hostile, jpeg):
    for mids in (json.dumps([2] * 10000), ",".join(["2"] * 10000), "[" + "2 " * 5000000 + "]"):
        t0 = time.monotonic()
        msg = check_error(multipart(hostile, {"file": ("a.jpg", jpeg)}, {"mids": mids}), 400, BAD_REQUEST)
        assert "limit is 8" in msg and time.monotonic() - t0 < 10
    many = [("mids", "2")] * 10000
    check_error(post(hostile, "/api/model/service/multipart", files={"file": ("a.jpg", jpeg)}, data=many),
                400, BAD_REQUEST)


# ---- multipart --------------------------------------------------------------------------------

def test_multipart_without_a_file(hostile):
    check_error(multipart(hostile, {"mids": (None, "[2]")}), 400, BAD_REQUEST)
    check_error(multipart(hostile, {"file": (None, "not a file part")}, {"mids": "[2]"}), 400, BAD_REQUEST)


def test_multipart_with_two_files(hostile, jpeg):
    two_named_file = [("file", ("a.jpg", jpeg)), ("file", ("b.jpg", jpeg))]
    assert "more than one" in check_error(multipart(hostile, two_named_file, {"mids": "[2]"}), 400, BAD_REQUEST)
    other_names = [("a", ("a.jpg", jpeg)), ("b", ("b.jpg", jpeg))]
    assert "(it has: a, b)" in check_error(multipart(hostile, other_names, {"mids": "[2]"}), 400, BAD_REQUEST)
    # One named `file` next to another: `file` is the image, as documented.
    r = multipart(hostile, [("file", ("a.jpg", jpeg)), ("thumbnail", ("b.jpg", b"junk"))], {"mids": "[2]"})
    assert r.status_code == 200


def test_multipart_with_a_non_image(hostile):
    check_error(multipart(hostile, {"file": ("notes.txt", b"just some text " * 50)}, {"mids": "[2]"}), 400, BAD_IMAGE)
    r = post(hostile, "/api/model/service/binary?mid=2", files={"file": ("x.bin", os.urandom(3000))})
    check_error(r, 400, BAD_IMAGE)


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data", b"--x\r\n\r\n--x--\r\n"),                         # no boundary parameter
    ("multipart/form-data; boundary=x", b"no boundary in here at all"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n"),
    ("multipart/form-data; boundary=x", b"--x\r\nNo-Colon-Header\r\n\r\ndata\r\n--x--\r\n"),
    ("multipart/form-data; boundary=x", b"--x\r\n\r\ndata\r\n--x--\r\n"),   # no Content-Disposition
    ("multipart/form-data; boundary=" + "b" * 7000, b"--x--"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"mids\"\r\n\r\n\xff\xfe\r\n--x--\r\n"),
])
def test_malformed_multipart(hostile, content_type, body):
    r = post(hostile, "/api/model/service/multipart", data=body, headers={"Content-Type": content_type})
    check_error(r, 400, BAD_REQUEST)


# ---- Content-Length that lies, bodies over the limit --------------------------------------------

def test_content_length_longer_than_the_body(hostile, jpeg):
    # The client stops sending (half-close): the body ended early.
    req = request_bytes("POST", "/api/model/service/binary?mid=2", [("Content-Length", len(jpeg) + 1000)], jpeg)
    msg = check_error(exchange(hostile.port, req, half_close=True), 400, BAD_REQUEST)
    assert "ended after %d of its %d bytes" % (len(jpeg), len(jpeg) + 1000) in msg


def test_content_length_longer_than_the_body_and_silence(hostile, jpeg):
    # The client keeps the connection open and sends nothing more: 408 once the body stalls.
    req = request_bytes("POST", "/api/model/service/binary?mid=2", [("Content-Length", len(jpeg) + 1000)], jpeg)
    t0 = time.monotonic()
    reply = exchange(hostile.port, req, timeout=40)
    check_error(reply, 408, REQUEST_TIMEOUT)
    assert reply.headers["connection"] == "close"
    assert time.monotonic() - t0 < 30


def test_content_length_shorter_than_the_body(hostile, jpeg):
    # The first 100 bytes are the request (a truncated JPEG); the rest is read as the next request.
    req = request_bytes("POST", "/api/model/service/binary?mid=2", [("Content-Length", 100)], jpeg)
    with connect(hostile.port) as s:
        s.sendall(req)
        check_error(read_reply(s), 400, BAD_IMAGE)
        check_error(read_reply(s), 400, BAD_REQUEST)  # the JPEG's remains are no request line
        assert s.recv(100) == b""  # and then the connection is closed


@pytest.mark.parametrize("value", ["-5", "abc", "1e3", "5, 6", "0x10", "99999999999999999999999"])
def test_content_length_malformed(hostile, jpeg, value):
    req = request_bytes("POST", "/api/model/service/binary?mid=2", [("Content-Length", value)], jpeg[:10])
    reply = exchange(hostile.port, req, half_close=True)
    code = TOO_LARGE if value.startswith("999") else BAD_REQUEST
    check_error(reply, 413 if code == TOO_LARGE else 400, code)


def test_body_over_the_limit_refused_before_it_is_read(hostile):
    # Only the head is sent: the answer must come without waiting for 25 MB.
    req = request_bytes("POST", "/api/model/service/binary?mid=2", [("Content-Length", 25 * 1024 * 1024)])
    t0 = time.monotonic()
    with connect(hostile.port) as s:
        s.sendall(req + b"\xff\xd8" + b"\x00" * 65536)
        reply = read_reply(s)
    check_error(reply, 413, TOO_LARGE)
    assert time.monotonic() - t0 < 5


def test_body_over_the_limit_the_client_still_reads_the_answer(hostile):
    # A client that sends all of its 21 MB before reading gets the 413, not a connection reset:
    # the server drops the rest of the input before closing.
    r = binary(hostile, b"\x00" * (21 * 1024 * 1024))
    check_error(r, 413, TOO_LARGE)
    for endpoint in ("base64", "multipart"):
        r = post(hostile, "/api/model/service/%s?mid=2" % endpoint, data=b"{" * (21 * 1024 * 1024))
        check_error(r, 413, TOO_LARGE)


def test_chunked_bodies(hostile, jpeg):
    bad_size = request_bytes("POST", "/api/model/service/binary?mid=2", [("Transfer-Encoding", "chunked")],
                             b"zz\r\nabc\r\n0\r\n\r\n")
    check_error(exchange(hostile.port, bad_size), 400, BAD_REQUEST)
    unknown = request_bytes("POST", "/api/model/service/binary?mid=2", [("Transfer-Encoding", "gzip")], b"x")
    check_error(exchange(hostile.port, unknown), 400, BAD_REQUEST)
    cut = request_bytes("POST", "/api/model/service/binary?mid=2", [("Transfer-Encoding", "chunked")],
                        b"%x\r\n" % len(jpeg) + jpeg[:500])
    check_error(exchange(hostile.port, cut, half_close=True), 400, BAD_REQUEST)


# ---- paths, methods, the request line and headers ---------------------------------------------

@pytest.mark.parametrize("method, path, status, code", [
    ("GET", "/nope", 404, NO_ENDPOINT), ("GET", "/api", 404, NO_ENDPOINT), ("GET", "/api/nope", 404, NO_ENDPOINT),
    ("POST", "/api/model/service/png?mid=2", 404, NO_ENDPOINT), ("GET", "/api/models/x/y", 404, NO_ENDPOINT),
    ("GET", "/api/models/x", 405, NO_METHOD),
    ("GET", "/%00%ff", 404, NO_ENDPOINT), ("GET", "/api/model/service/binary", 405, NO_METHOD),
    ("PUT", "/api/model/service/base64", 405, NO_METHOD), ("DELETE", "/api/models", 405, NO_METHOD),
    ("PATCH", "/api/status", 405, NO_METHOD), ("OPTIONS", "/api/health", 405, NO_METHOD),
    ("BREW", "/api/health", 405, NO_METHOD), ("TRACE", "/api/health", 405, NO_METHOD),
])
def test_unknown_paths_and_methods(hostile, method, path, status, code):
    check_error(requests.request(method, hostile.url + path, timeout=10), status, code)


def test_dot_segments_are_not_resolved(hostile):
    # (requests would resolve them before sending.)
    for target in ("/api/health/../models", "/api/model/service/../../models", "/../../etc/passwd"):
        check_error(exchange(hostile.port, request_bytes("GET", target)), 404, NO_ENDPOINT)


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET /api/health HTTP/2.0\r\n\r\n", b"GET /api/health FTP/1.1\r\n\r\n",
    b"get /api/health HTTP/1.1\r\n\r\n", b"GET /api/health HTTP/1.1\n\n", b"GET //api/health HTTP/1.1\r\n\r\n",
    b"GET http://evil.example/api/health HTTP/1.1\r\n\r\n", b"GET /api/health#x HTTP/1.1\r\n\r\n",
    b"GET /api/health HTTP/1.1\r\nNo colon here\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    b"GET api/health HTTP/1.1\r\n\r\n", b"CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n",
])
def test_malformed_requests_get_json(hostile, raw):
    reply = exchange(hostile.port, raw)
    body = reply.json()
    assert 400 <= reply.status < 500 and body["code"] in (BAD_REQUEST, NO_METHOD) and body["data"] is None
    assert reply.headers["content-type"] == JSON_TYPE


def test_request_line_and_headers_are_capped(hostile):
    near = exchange(hostile.port, request_bytes("GET", "/api/health?" + "a" * 7000))
    assert near.status == 200  # 7 KB of URL is fine
    check_error(exchange(hostile.port, request_bytes("GET", "/api/health?" + "a" * 9000)), 414, TOO_LARGE)
    check_error(exchange(hostile.port, request_bytes("GET", "/api/health", [("X-Big", "b" * 9000)])), 431, TOO_LARGE)
    many = [("X-H%d" % i, "v" * 60) for i in range(200)]
    check_error(exchange(hostile.port, request_bytes("GET", "/api/health", many)), 431, TOO_LARGE)
    # A megabyte of request line, sent at once: answered from the first 8 KB, not read whole.
    with connect(hostile.port) as s:
        try:
            s.sendall(b"GET /" + b"a" * (1024 * 1024) + b" HTTP/1.1\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may have closed after answering
        check_error(read_reply(s), 414, TOO_LARGE)


# ---- response headers, CORS, the token -------------------------------------------------------

def test_response_headers(hostile, jpeg):
    for r in (requests.get(hostile.url + "/api/health"), binary(hostile, jpeg), requests.get(hostile.url + "/x")):
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Cache-Control"] == "no-store"
        assert r.headers["Server"] == "edgeapp"  # no version: GET /api/health tells it to those who ask
        assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_is_off_by_default(hostile):
    r = requests.get(hostile.url + "/api/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    pre = requests.options(hostile.url + "/api/model/service/base64", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    check_error(pre, 405, NO_METHOD)


@pytest.fixture(scope="module")
def cors_server(start_server, fast_model_dir):
    return start_server(model_dir=fast_model_dir, token="t0ken", cors_origins="http://ui.local, http://ui2.local:8080")


def test_cors_when_configured(cors_server, jpeg):
    u = cors_server.url
    pre = requests.options(u + "/api/model/service/binary?mid=2", headers={
        "Origin": "http://ui.local", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 204  # a preflight carries no token, and needs none
    assert pre.headers["Access-Control-Allow-Origin"] == "http://ui.local"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    r = binary(cors_server, jpeg, headers={"Origin": "http://ui2.local:8080", "Authorization": "Bearer t0ken"})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "http://ui2.local:8080"
    assert "Server-Timing" in r.headers["Access-Control-Expose-Headers"]
    r = binary(cors_server, jpeg, headers={"Origin": "http://ui.local"})  # CORS does not replace the token
    check_error(r, 401, 1008)
    other = requests.get(u + "/api/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_token_is_compared_in_constant_time(monkeypatch):
    import bottle

    from edgeapp import parsing
    from edgeapp.errors import Unauthorized

    calls = []
    real = parsing.hmac.compare_digest
    monkeypatch.setattr(parsing.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    bottle.request.bind({"HTTP_AUTHORIZATION": "Bearer guess", "QUERY_STRING": ""})
    with pytest.raises(Unauthorized):
        parsing.check_token("s3cret")
    bottle.request.bind({"HTTP_X_EDGEAPP_TOKEN": "s3cret", "QUERY_STRING": ""})
    parsing.check_token("s3cret")
    assert calls == [(b"guess", b"s3cret"), (b"s3cret", b"s3cret")]


# ---- the log never holds image data -----------------------------------------------------------

def test_request_logs_hold_no_image_data(tmp_path, fast_model_dir):
    # A verbose server (one log line per request), fed images every way, well-formed or not.
    port = free_port()
    log_path = tmp_path / "verbose.log"
    with open(str(log_path), "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "edgeapp", "-v", "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], env=server_env(fast_model_dir), cwd=str(REPO),
                                stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if requests.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        rng = np.random.default_rng(5)
        img = encode(rng.integers(0, 255, (64, 64, 3)).astype(np.uint8), ".png")
        text = base64.b64encode(img).decode()
        b = url + "/api/model/service/"
        sent = [
            requests.post(b + "binary?mid=2", data=img), requests.post(b + "binary?mid=2&show=1", data=img),
            requests.post(b + "binary?mid=99", data=img), requests.post(b + "binary?mid=2", data=img[:300]),
            requests.post(b + "base64?mid=2", json={"image": text}), requests.post(b + "base64?mid=2", json={"image": text[:-7]}),
            requests.post(b + "base64?mid=2", data='{"image": "%s"' % text), requests.post(b + "base64?mid=2", json={"image": text + "!"}),
            requests.post(b + "base64?mid=2", json={"image": [text]}), requests.post(b + "base64?mid=x", json={"image": text}),
            requests.post(b + "multipart", files={"file": ("a.png", img)}, data={"mids": "[2]"}),
            requests.post(b + "multipart", data={"mids": "[2]", "file": text}),  # the image as a text field
            requests.post(b + "multipart", files=[("file", ("a", img)), ("file", ("b", img))], data={"mids": "2"}),
            requests.post(b + "multipart", files={"pic": (None, text)}, data={"mids": "2"}),
            requests.post(b + "binary?mid=2", data=b"GIF89a" + img),
        ]
        assert all(r.headers["Content-Type"] == JSON_TYPE for r in sent)
    finally:
        proc.terminate()
        proc.wait(20)
    logged = log_path.read_bytes()
    assert b" -> 200 " in logged and b" -> 400 " in logged  # the per-request lines are there
    for i in range(0, len(text) - 16, 8):
        assert text[i:i + 16].encode() not in logged, "base64 image data in the log"
    for i in range(0, len(img) - 16, 16):
        assert img[i:i + 16] not in logged, "raw image bytes in the log"


# ---- at the end: nothing in flight, nothing crashed ------------------------------------------

def test_zz_nothing_left_in_flight_and_no_traceback(hostile):
    status = requests.get(hostile.url + "/api/status", timeout=5).json()["data"]
    assert status["requests_in_flight"] == 0 and status["queue_depth"] == 0
    assert status["restarts"] == 0 and status["state"] == "ready"
    log = hostile.log()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
