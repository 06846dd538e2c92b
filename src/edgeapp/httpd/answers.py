"""Whole HTTP responses as bytes, for the answers the server gives by itself (refusals, the
quick path, what a malformed request gets): the JSON envelope with an edgeapp error code, like
the application's answers."""
import email.utils
import http
import time

from edgeapp.errors import BadRequest, Busy, Internal, MethodNotAllowed, RequestTimeout, TooLarge
from edgeapp.results import JSON_TYPE, SECURITY_HEADERS, error_bytes, retry_after_header

_ERROR_RESPONSES = {}  # error_response's answers: in a burst of refusals they are all the same 503
_ERROR_RESPONSES_MAX = 64


def error_response(err):
    """A whole HTTP/1.1 response (Connection: close) carrying err's envelope; equal errors share
    one bytes object (the selector thread refuses dozens in a row under a burst)."""
    retry = retry_after_header(err)
    key = (type(err), err.status, err.code, err.msg, retry)
    out = _ERROR_RESPONSES.get(key)
    if out is not None:
        return out
    try:
        phrase = http.HTTPStatus(err.status).phrase
    except ValueError:
        phrase = "Error"
    headers = [("Content-Type", JSON_TYPE), ("Connection", "close")] + SECURITY_HEADERS
    if retry is not None:
        headers.append(("Retry-After", retry))
    out = response_bytes(err.status, headers, error_bytes(err), phrase)
    if len(_ERROR_RESPONSES) >= _ERROR_RESPONSES_MAX:
        _ERROR_RESPONSES.clear()
    _ERROR_RESPONSES[key] = out
    return out


def response_bytes(status, headers, body, phrase=None):
    """A whole HTTP/1.1 response as bytes; Content-Length is added here."""
    if phrase is None:
        phrase = http.HTTPStatus(status).phrase
    headers = list(headers) + [("Content-Length", str(len(body)))]
    head = "HTTP/1.1 %d %s\r\n%s\r\n\r\n" % (status, phrase, "\r\n".join("%s: %s" % h for h in headers))
    return head.encode("latin-1") + body


_date = [0, ""]


def http_date():
    """The Date header's value, formatted once a second."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, email.utils.formatdate(now, usegmt=True)]
    return _date[1]


def busy_error():
    return Busy("every HTTP thread is busy; retry in a moment", retry_after=1)


def timeout_error(limits):
    return RequestTimeout("the request arrived too slowly: its headers and first %d KB must arrive within %g s, "
                          "the rest of a body at %d KB/s or faster"
                          % (limits.body_prefetch // 1024, limits.header_timeout, limits.min_body_rate // 1024))


def server_error(status, msg, limits):
    """The edgeapp error for an answer the HTTP layer gives by itself (status as cheroot's
    request parser says it: 400, 408, 413 for headers over the limit, 414, 501, 505, ...)."""
    if status == 408:
        return timeout_error(limits)
    if status == 414:
        err = TooLarge("the request line (URL) is too long: the request line and headers may take "
                       "%d bytes at most" % limits.max_header_bytes)
        err.status = 414
        return err
    if status == 413:  # the parser says 413 when the headers are over max_header_bytes
        err = TooLarge("the request headers are too large: the request line and headers may take "
                       "%d bytes at most" % limits.max_header_bytes)
        err.status = 431
        return err
    if status == 405:
        return MethodNotAllowed("method not allowed: %s" % (msg or "use GET or POST"))
    if status == 503:
        return busy_error()
    if status >= 500 and status not in (501, 505):
        return Internal("internal error; the details are in the server log")
    # 400 and the protocol refusals (501 unknown Transfer-Encoding, 505 HTTP version): the
    # client sent something malformed, and the envelope says what.
    return BadRequest("malformed HTTP request: %s" % (msg or http.HTTPStatus(status).phrase))
