"""Reading a request: query string, body, form, JSON, base64 image, model ids, flags, deadline, token.

Each reader returns plain values or raises the one EdgeError that says what is wrong (BadRequest,
TooLarge, RequestTimeout, Unauthorized), never another exception, which would be a 500:
tests/test_parsers_property.py checks that on any input. The readers that take no request part as
an argument read bottle's thread-local `request`.
"""
import base64
import binascii
import contextlib
import hmac
import io
import json
import re
import socket
from urllib.parse import parse_qsl

import bottle
from bottle import request

from edgeapp.errors import BadRequest, RequestTimeout, TooLarge, Unauthorized

DEADLINE_HEADER = "X-Edgeapp-Deadline-Ms"
TOKEN_HEADER = "X-Edgeapp-Token"
READ_CHUNK = 64 * 1024
MAX_INT_DIGITS = 30  # JSON integers longer than this are refused: int() is quadratic in the digits
_DATA_URL = re.compile(r"^\s*data:[^,]{0,200},")


def short(text, n=60):
    """text cut to n characters (with "..."), for messages that quote what a client sent."""
    text = str(text)
    return text if len(text) <= n else text[:n] + "..."


# ---- query string ---------------------------------------------------------------------------------

def request_query(path_mid=None):
    """The query of the current request, as parse_query reads it."""
    return parse_query(request.environ.get("QUERY_STRING", ""), path_mid)


def parse_query(qs, path_mid=None):
    """{name: [values]} of a query string (plus the path form's `mid=N`).

    The document writes `?mid=n?show=0`: a second `?` is read as `&`.
    """
    if path_mid is not None:
        qs = "mid=" + path_mid + "&" + qs
    out = {}
    for key, value in parse_qsl(qs.replace("?", "&"), keep_blank_values=True):
        out.setdefault(key, []).append(value)
    return out


def first(params, name):
    """The first value of name in {name: [values]}, or None."""
    values = params.get(name)
    return values[0] if values else None


def single(params, name):
    """The one value of name; the same value repeated is fine, two different ones are refused."""
    values = params.get(name) or []
    if len({v.strip() for v in values}) > 1:
        raise BadRequest("%s is given %d times with different values (%s); give it once"
                         % (name, len(values), ", ".join(repr(short(v, 20)) for v in values[:4])))
    return values[0] if values else None


def deadline_seconds(raw, cap):
    """Seconds from now a client allows (header or deadline_ms, in ms), at most cap; cap if none."""
    if raw is None or not raw.strip():
        return cap
    ms = _number(raw)
    if not (0 < ms < float("inf")):
        raise BadRequest("%s / deadline_ms must be a positive number of milliseconds, got %r"
                         % (DEADLINE_HEADER, short(raw)))
    return min(max(ms / 1000.0, 1e-6), cap)  # 1e-320 ms is positive, but 0.0 s once divided


def since_time(raw):
    """?since=T of GET /api/status/history: seconds since the epoch (a sample's "t"); None if absent."""
    if raw is None or not raw.strip():
        return None
    t = _number(raw)
    if not (0 <= t < float("inf")):
        raise BadRequest("since must be a time in seconds since 1970 (a sample's \"t\"), got %r" % short(raw))
    return t


def _number(raw):
    """float(raw), or NaN for what is not a number (which every range check then refuses)."""
    try:
        return float(raw)
    except ValueError:
        return float("nan")


# ---- body -------------------------------------------------------------------------------------

def check_length(limit, setting="EDGEAPP_MAX_BODY_BYTES"):
    """Refuse a body whose declared length is over the limit (the setting named), before reading any of it."""
    raw = request.environ.get("CONTENT_LENGTH") or ""
    if raw.strip():
        try:
            n = int(raw)
        except ValueError:
            raise BadRequest("Content-Length %r is not a number" % short(raw))
        if n < 0:
            raise BadRequest("Content-Length %d is negative" % n)
        if n > limit:
            raise TooLarge("the body is %d bytes; the limit is %d bytes (%s)" % (n, limit, setting))


def read_body(limit):
    """The whole request body as bytes, never more than limit (also for chunked uploads)."""
    parts = _Parts()
    copy_body(parts, limit, "EDGEAPP_MAX_BODY_BYTES")
    return b"".join(parts)


class _Parts(list):
    """A body's pieces as copy_body writes them, joined once at the end (no growing buffer)."""
    write = list.append


def copy_body(out, limit, setting):
    """Write the request body to out (a binary file, or anything with write(bytes)) as it arrives;
    TooLarge past limit bytes (the setting named); returns the byte count. out's own errors
    (a full disk) pass through as they are."""
    env = request.environ
    stream = env.get("wsgi.input")
    raw = (env.get("CONTENT_LENGTH") or "").strip()
    want = int(raw) if raw else None  # check_length has vetted it
    if stream is None or not (want is not None or env.get("wsgi.input_terminated")
                              or "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower()):
        return 0  # neither a length nor chunked: HTTP says there is no body
    got = 0
    while want is None or got < want:
        with _body_errors():
            part = stream.read(READ_CHUNK if want is None else min(READ_CHUNK, want - got))
        if not part:
            if want is not None:
                raise BadRequest("the body ended after %d of its %d bytes" % (got, want))
            break
        got += len(part)
        if got > limit:
            raise TooLarge("the body is over the limit of %d bytes (%s)" % (limit, setting))
        out.write(part)
    return got


@contextlib.contextmanager
def _body_errors():
    """What can go wrong while a body is read, as the EdgeError that says so."""
    try:
        yield
    except socket.timeout:
        # edgeapp.httpd's clock: the body came slower than its minimum rate.
        raise RequestTimeout("the body arrived too slowly; the server does not wait for uploads that stall")
    except OSError as e:  # the client went away mid-body: nobody will read this answer
        raise BadRequest("the body could not be read: %s" % (e.strerror or e))
    except ValueError as e:  # the server's chunked decoder: a malformed chunk
        raise BadRequest("the chunked body is malformed: %s" % short(e))


def _json_int(text):
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError("a number with more than %d digits" % MAX_INT_DIGITS)
    return int(text)


def json_object(body):
    """The JSON object a body holds (the base64 endpoint's {"image": ..., "show": ...})."""
    if not body.strip():
        raise BadRequest('the body is empty; send JSON: {"image": "<base64>", "show": false}')
    try:
        doc = json.loads(body, parse_int=_json_int)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest('the body is not valid JSON (%s); send {"image": "<base64>", "show": false}' % short(e, 120))
    except RecursionError:
        raise BadRequest('the JSON is nested too deeply; send {"image": "<base64>", "show": false}')
    if not isinstance(doc, dict):
        raise BadRequest('the JSON body must be an object: {"image": "<base64>", "show": false}')
    return doc


def base64_image(text):
    """Image bytes from base64 text, with or without a data: URL prefix, whitespace and padding."""
    if text is None:
        raise BadRequest('the JSON has no "image" field; send {"image": "<base64 of the image file>"}')
    if not isinstance(text, str):
        raise BadRequest('"image" must be a base64 string, not %s' % type(text).__name__)
    text = _DATA_URL.sub("", text, count=1)
    text = "".join(text.split())  # line breaks from `base64` tools and mail-style wrapping
    if "-" in text or "_" in text:  # the URL-safe alphabet
        text = text.replace("-", "+").replace("_", "/")
    text = text.rstrip("=")
    if not text:
        raise BadRequest('"image" is empty')
    if len(text) % 4 == 1:
        raise BadRequest('"image" is not valid base64 (its length does not fit)')
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequest('"image" is not valid base64: %s' % e)


# ---- forms ------------------------------------------------------------------------------------

def form(body):
    """({name: [text values]}, {name: bytes}) of a form body, parsed by bottle from memory."""
    env = request.environ
    env["wsgi.input"] = io.BytesIO(body)
    env["CONTENT_LENGTH"] = str(len(body))
    env.pop("HTTP_TRANSFER_ENCODING", None)  # the body is already de-chunked
    try:
        post = request.POST
    except bottle.HTTPError as e:
        raise BadRequest("the form could not be parsed: %s" % e.body)
    except UnicodeDecodeError:
        raise BadRequest("a form field is not text: send the image as a file part "
                         "(with a filename), e.g. curl -F file=@image.jpg")
    request.body.close()  # bottle's copy of the body: the parts are all we need now
    fields, files = {}, {}
    for name, item in post.allitems():
        if isinstance(item, bottle.FileUpload):
            if name in files:
                raise BadRequest("the form has more than one file part named %r; send one image" % short(name))
            item.file.seek(0)
            files[name] = item.file.read()
            item.file.close()
        else:
            fields.setdefault(name, []).append(item)
    return fields, files


def pick_file(files):
    """The image part: `file` as documented, else `image`, else the only file in the form."""
    for name in ("file", "image"):
        if name in files:
            return files[name]
    if len(files) == 1:
        return list(files.values())[0]
    raise BadRequest("the form has no file part named 'file'%s; send the image as file=<image>"
                     % (" (it has: %s)" % ", ".join(short(n, 40) for n in sorted(files)[:8]) if files else ""))


# ---- values -----------------------------------------------------------------------------------

def model_id(text):
    """The model id in text: a whole number, 0 or more (quotes and a plus sign are forgiven)."""
    if text is None or not str(text).strip():
        raise BadRequest("no model id: add ?mid=N to the URL (GET /api/models lists the ids)")
    s = str(text).strip().strip("'\"")
    # ASCII digits only (str.isdigit() would take "²" or Arabic-Indic digits), no minus: ids are >= 0.
    if not re.match(r"^\+?[0-9]{1,9}$", s):
        raise BadRequest("mid must be a model id (a whole number, 0 or more; see GET /api/models), got %r"
                         % short(text))
    return int(s)


def model_ids(values, limit):
    """Model ids from the mids fields: "[0,1]", "0,1", "0 1" or one field per id; at most limit."""
    out = []
    for value in values:
        s = value.strip()
        if s.startswith("[") and s.endswith("]"):
            s = s[1:-1]
        # finditer, not split: a 20 MB field must not become millions of strings first.
        for m in re.finditer(r"[^\s,;]+", s):
            token = m.group()
            try:
                out.append(model_id(token))
            except BadRequest:
                raise BadRequest("mids must list model ids, e.g. [1,2] or 1,2; %r is not one" % short(token))
            if len(out) > limit:
                raise BadRequest("more than %d model ids in one request; the limit is %d (EDGEAPP_MAX_MIDS)"
                                 % (limit, limit))
    return out


def truthy(value):
    """`show`: true, 1, "true" or "1" turn the image on; the document says any other value means false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true")
    return False


# ---- access token -----------------------------------------------------------------------------

def check_token(token):
    """Unauthorized unless the request carries token (Bearer header, X-Edgeapp-Token or ?token=);
    compared in constant time."""
    auth = request.get_header("Authorization") or ""
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    given = given or request.get_header(TOKEN_HEADER) or first(request_query(), "token")
    if not given:
        raise Unauthorized("this board needs an access token: send 'Authorization: Bearer <token>' "
                           "(or the header %s, or ?token=<token>)" % TOKEN_HEADER)
    if not same_token(given, token):
        raise Unauthorized("the access token is wrong")


def same_token(given, token):
    """given == token, in constant time (no timing tells a guesser how much of it was right)."""
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))
