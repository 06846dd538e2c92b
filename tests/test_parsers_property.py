"""Property-based tests of every request parser in edgeapp.parsing, of images.image_size, and of
the DeepStack face routes' fields (facedb.check_userid, deepstack.min_confidence).

Two properties each: on any input a parser returns a value of the right kind or raises the one
documented EdgeError (never another exception, which would be a 500), and what a well-behaved
client sends comes back exactly.
"""
import base64
import io
import json
import os
import sqlite3
import string
from urllib.parse import urlencode

import bottle
import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from edgeapp import deepstack, facedb, images, parsing
from edgeapp.errors import BadImage, BadRequest, EdgeError, TooLarge

# Pure parsing: `make test-arm` runs these on the emulated board too.
pytestmark = pytest.mark.arm

# No example database in the work tree; no deadline (2 cores shared with other test runs). Fewer
# examples where Python runs 5-50x slower (EDGEAPP_TEST_EXAMPLES: `make test-arm` under emulation).
EXAMPLES = int(os.environ.get("EDGEAPP_TEST_EXAMPLES") or 300)
settings.register_profile("edgeapp", database=None, deadline=None, max_examples=EXAMPLES,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("edgeapp")

MAX_ID = 999999999
ids = st.integers(min_value=0, max_value=MAX_ID)
any_text = st.text(max_size=200)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


def raises_only(fn, *args, errors=(BadRequest,)):
    """fn(*args), or None if it raised one of errors (any other exception fails the test)."""
    try:
        return fn(*args)
    except errors:
        return None


# ---- mid, mids -------------------------------------------------------------------------------

@given(st.one_of(st.none(), any_text, st.integers()))
@example("-1")
@example("²")
@example("١")  # an Arabic-Indic digit: str.isdigit() says yes
@example("9" * 50)
def test_mid_is_an_id_or_a_bad_request(text):
    mid = raises_only(parsing.model_id, text)
    assert mid is None or (type(mid) is int and 0 <= mid <= MAX_ID)


@given(ids, st.sampled_from(["%d", " %d ", "+%d", "'%d'", '"%d"', "\t%d\n"]))
def test_mid_round_trip(n, form):
    assert parsing.model_id(form % n) == n


@given(st.lists(any_text, max_size=5), st.integers(min_value=1, max_value=64))
def test_mids_are_ids_within_the_limit_or_a_bad_request(values, limit):
    mids = raises_only(parsing.model_ids, values, limit)
    assert mids is None or (len(mids) <= limit and all(type(m) is int and 0 <= m <= MAX_ID for m in mids))


@given(st.lists(ids, min_size=1, max_size=8), st.sampled_from(["json", "comma", "space", "fields", "semicolon"]))
def test_mids_round_trip(mids, form):
    values = {"json": [json.dumps(mids)], "comma": [",".join(map(str, mids))],
              "space": [" ".join(map(str, mids))], "fields": [str(m) for m in mids],
              "semicolon": [";".join(map(str, mids))]}[form]
    assert parsing.model_ids(values, 8) == mids


@given(st.integers(min_value=9, max_value=100000))
def test_mids_over_the_limit_stop_early(n):
    with pytest.raises(BadRequest) as e:
        parsing.model_ids([",".join(["1"] * n)], 8)
    assert "limit is 8" in e.value.msg


# ---- show ------------------------------------------------------------------------------------

@given(json_values)
def test_truthy_is_a_bool_and_true_only_for_the_documented_values(value):
    t = parsing.truthy(value)
    assert type(t) is bool
    documented = value is True or (type(value) in (int, float) and value == 1) or (
        isinstance(value, str) and value.strip().lower() in ("1", "true"))
    assert t == documented


@given(st.sampled_from(["1", "true", "TRUE", " True ", "tRuE"]))
def test_truthy_strings(text):
    assert parsing.truthy(text) is True


# ---- base64 and JSON -------------------------------------------------------------------------

@given(st.one_of(st.none(), st.text(max_size=300), st.integers(), st.lists(st.text(max_size=5), max_size=3)))
@example("data:image/png;base64,")
@example("=" * 9)
@example("A")
def test_base64_image_is_bytes_or_a_bad_request(text):
    data = raises_only(parsing.base64_image, text)
    assert data is None or (type(data) is bytes and len(data) > 0)


@given(st.binary(min_size=1, max_size=300),
       st.sampled_from(["plain", "data-url", "newlines", "spaces", "no-padding", "url-safe", "crlf"]))
def test_base64_round_trip(data, form):
    text = base64.b64encode(data).decode("ascii")
    text = {
        "plain": text,
        "data-url": "data:image/png;base64," + text,
        "newlines": base64.encodebytes(data).decode("ascii"),
        "spaces": " ".join(text[i:i + 7] for i in range(0, len(text), 7)),
        "no-padding": text.rstrip("="),
        "url-safe": base64.urlsafe_b64encode(data).decode("ascii"),
        "crlf": "\r\n".join(text[i:i + 76] for i in range(0, len(text), 76)),
    }[form]
    assert parsing.base64_image(text) == data


@given(st.binary(max_size=300))
@example(b"[" * 100000)
@example(b'{"a": ' + b"1" * 10000 + b"}")
@example(b"\xef\xbb\xbf{}")
def test_json_object_is_a_dict_or_a_bad_request(body):
    doc = raises_only(parsing.json_object, body)
    assert doc is None or type(doc) is dict


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_json_object_round_trip(doc):
    assert parsing.json_object(json.dumps(doc).encode("utf-8")) == doc


@given(st.integers(min_value=2, max_value=200000))
def test_json_nesting_of_any_depth(depth):
    body = ("[" * depth + "]" * depth).encode()
    assert raises_only(parsing.json_object, body) is None  # an array is no object; and no crash


# ---- the query string, the deadline ----------------------------------------------------------

@given(any_text, st.one_of(st.none(), st.text(alphabet=string.digits + "abc=&", max_size=10)))
def test_query_is_a_dict_of_lists(qs, path_mid):
    out = parsing.parse_query(qs, path_mid)
    assert all(isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
               for k, v in out.items())
    if path_mid is not None and "&" not in path_mid and "=" not in path_mid and "?" not in path_mid:
        assert out["mid"][0] == path_mid


@given(st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=10)), max_size=6))
def test_query_round_trip(pairs):
    expected = {}
    for k, v in pairs:
        expected.setdefault(k, []).append(v)
    assert parsing.parse_query(urlencode(pairs)) == expected


@given(st.one_of(st.none(), any_text, st.floats().map(repr), st.integers().map(str)),
       st.floats(min_value=0.1, max_value=3600))
@example("nan", 30.0)
@example("1e309", 30.0)
@example("-0", 30.0)
@example("1_000", 30.0)
@example("1e-320", 30.0)
def test_deadline_is_within_the_cap_or_a_bad_request(raw, cap):
    s = raises_only(parsing.deadline_seconds, raw, cap)
    assert s is None or 0 < s <= cap


@given(st.floats(min_value=0.001, max_value=10 ** 7, allow_nan=False))
def test_deadline_round_trip(ms):
    assert parsing.deadline_seconds(repr(ms), 3600.0) == pytest.approx(min(ms / 1000.0, 3600.0))


@given(any_text)
def test_history_since_is_a_time_or_a_bad_request(raw):
    t = raises_only(parsing.since_time, raw)
    assert t is None or 0 <= t < float("inf")


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_history_since_round_trip(t):
    assert parsing.since_time(repr(t)) == t


def test_single_value_params():
    assert parsing.single({"mid": ["2", " 2"]}, "mid") == "2"
    assert parsing.single({}, "mid") is None
    with pytest.raises(BadRequest):
        parsing.single({"mid": ["2", "3"]}, "mid")


# ---- the body and the form (through bottle's request, as the server runs them) ----------------

def bind(body, content_type=None, content_length="auto"):
    """Bind bottle's request to a POST of body; content_length None: no Content-Length header."""
    env = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "wsgi.input": io.BytesIO(body)}
    if content_length is not None:
        env["CONTENT_LENGTH"] = str(len(body)) if content_length == "auto" else content_length
    if content_type is not None:
        env["CONTENT_TYPE"] = content_type
    bottle.request.bind(env)
    return env


@given(st.binary(max_size=200), st.one_of(st.none(), st.text(max_size=12), st.integers(-5, 400).map(str)),
       st.integers(min_value=1, max_value=300))
def test_body_is_read_within_its_length_and_limit(body, length, limit):
    bind(body, content_length=length)

    def read():
        parsing.check_length(limit)
        return parsing.read_body(limit)

    got = raises_only(read, errors=(BadRequest, TooLarge))
    if got is not None:
        n = int(length) if length and length.strip() else 0
        assert got == body[:n] and len(got) <= limit


@given(st.binary(max_size=400), st.text(alphabet=string.ascii_letters + string.digits + "'()+_,-./:=? ",
                                        min_size=1, max_size=30))
@example(b"--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nxx\r\n--x--\r\n", "x")
@example(b"--x\r\nContent-Disposition: form-data; name=\"m\"\r\n\r\n\xff\r\n--x--\r\n", "x")
def test_form_is_fields_and_files_or_a_bad_request(body, boundary):
    bind(body, "multipart/form-data; boundary=" + boundary)
    out = raises_only(parsing.form, body)
    if out is not None:
        fields, files = out
        assert all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in fields.values())
        assert all(isinstance(v, bytes) for v in files.values())


form_names = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=8)


@given(st.dictionaries(form_names, st.text(alphabet=string.printable.strip() + " ", max_size=20), max_size=4),
       st.dictionaries(form_names, st.binary(max_size=200), max_size=3))
def test_form_round_trip(fields, files):
    assume(not set(fields) & set(files))
    boundary = "edgeapp-boundary-7f3a"
    parts = []
    for name, value in fields.items():
        parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                     % (boundary.encode(), name.encode(), value.encode()))
    for name, data in files.items():
        parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="f.bin"\r\n'
                     b"Content-Type: application/octet-stream\r\n\r\n%s\r\n" % (boundary.encode(), name.encode(), data))
    body = b"".join(parts) + b"--%s--\r\n" % boundary.encode()
    bind(body, "multipart/form-data; boundary=" + boundary)
    got_fields, got_files = parsing.form(body)
    assert got_fields == {k: [v] for k, v in fields.items()}
    assert got_files == files


# ---- image headers -----------------------------------------------------------------------------

@given(st.binary(max_size=200))
def test_image_size_is_a_size_or_bad_image(data):
    out = raises_only(images.image_size, data, errors=(BadImage,))
    if out is not None:
        fmt, w, h = out
        assert fmt in ("jpeg", "png", "bmp", "webp") and type(w) is int and type(h) is int and w >= 0 and h >= 0


@given(st.sampled_from([b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\xff\xd8\xff\xe0", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
                        b"RIFF\x00\x00\x00\x00WEBPVP8L", b"RIFF\x00\x00\x00\x00WEBPVP8X", b"\xff\xd8"]),
       st.binary(max_size=300))
def test_image_size_behind_a_real_signature(signature, tail):
    # Random data behind each format's signature reaches deeper into the header parsers.
    out = raises_only(images.image_size, signature + tail, errors=(BadImage,))
    assert out is None or (out[1] >= 0 and out[2] >= 0)


@given(st.sampled_from([b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\xff\xd8\xff\xe0", b"BM",
                        b"RIFF\x00\x00\x00\x00WEBPVP8 "]), st.binary(max_size=300))
def test_decode_is_an_image_or_an_edge_error(signature, tail):
    try:
        img = images.decode(signature + tail, 10 ** 5)
    except EdgeError as e:
        assert isinstance(e, (BadImage, TooLarge))
    else:
        assert img.ndim == 3 and img.shape[2] == 3


@given(st.integers(1, 300), st.integers(1, 300), st.sampled_from([".png", ".jpg", ".bmp", ".webp"]),
       st.sampled_from(["gray", "color"]))
@settings(max_examples=min(60, EXAMPLES))
def test_image_size_matches_the_real_size(w, h, ext, kind):
    img = np.random.default_rng(w * h).integers(0, 255, (h, w, 3) if kind == "color" else (h, w)).astype(np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assume(ok)
    fmt, got_w, got_h = images.image_size(buf.tobytes())
    assert (got_w, got_h) == (w, h)
    assert images.decode(buf.tobytes(), w * h).shape == (h, w, 3)


# ---- DeepStack's face fields ---------------------------------------------------------------------

@given(st.one_of(st.none(), any_text, st.integers()))
@example("unknown")
@example(" unknown\t")
@example("\ud800")  # a lone surrogate: SQLite could not store it
@example("a\x00b")
@example("x" * 101)
def test_userid_is_a_storable_name_or_a_bad_request(userid):
    out = raises_only(facedb.check_userid, userid)
    if out is None:
        return
    assert type(out) is str and out == out.strip() and 0 < len(out) <= facedb.MAX_USERID_CHARS
    assert out != facedb.UNKNOWN
    db = sqlite3.connect(":memory:")  # what the gallery stores comes back unchanged
    db.execute("CREATE TABLE users (userid TEXT PRIMARY KEY)")
    db.execute("INSERT INTO users VALUES (?)", (out,))
    assert db.execute("SELECT userid FROM users").fetchone()[0] == out


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=100))
@example("Zoë Ünal")
@example("张伟")
def test_userid_round_trip(name):
    assume(name.strip() == name and name and name != facedb.UNKNOWN)
    assert facedb.check_userid(name) == name
    assert facedb.check_userid(" %s \t" % name) == name


@given(st.one_of(st.none(), any_text, st.floats().map(repr)))
@example("nan")
@example("1e999")
@example("1_0")
def test_min_confidence_is_from_0_to_1_or_a_bad_request(text):
    out = raises_only(deepstack.min_confidence, text, None)
    assert out is None or (type(out) is float and 0.0 <= out <= 1.0)


@given(st.floats(0.0, 1.0), st.sampled_from(["%r", " %r ", "%.17g"]))
def test_min_confidence_round_trip(x, form):
    assert deepstack.min_confidence(form % x, None) == x
    assert deepstack.min_confidence("", 0.4) == 0.4 and deepstack.min_confidence(None, 0.4) == 0.4
