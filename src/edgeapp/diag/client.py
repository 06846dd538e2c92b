"""The running service, asked over HTTP from the board itself with short timeouts.

http.client and json only (no requests, no numpy): edgeapp-diag has to start fast on a board, and a
hung service may cost it no more than the timeout it gives each request.
"""
import http.client
import json
from dataclasses import dataclass
from typing import Any, Optional

HEALTH_TIMEOUT = 0.8  # a service that cannot answer /api/health in this time is hung


@dataclass
class Answer:
    """One HTTP exchange: the status and the JSON body, or why there was none (refused, timeout)."""

    status: Optional[int] = None
    body: Any = None          # the parsed JSON, None when the body was not JSON
    error: Optional[str] = None
    timed_out: bool = False

    @property
    def data(self):
        """The envelope's `data`, or None."""
        return self.body.get("data") if isinstance(self.body, dict) else None

    @property
    def msg(self):
        """The envelope's `msg`, or ''."""
        return self.body.get("msg", "") if isinstance(self.body, dict) else ""


def local_host(bind_host):
    """Where the board itself reaches a service bound to bind_host."""
    if bind_host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind_host == "::":
        return "::1"
    return bind_host


class ServiceClient:
    """Requests to one edgeapp service; each opens and closes its own connection."""

    def __init__(self, host, port, token=None):
        self.host, self.port, self.token = host, port, token

    @classmethod
    def for_settings(cls, settings):
        """The service these settings start, reached from the board itself."""
        return cls(local_host(settings.host), settings.port, settings.token)

    def health(self, timeout=HEALTH_TIMEOUT):
        """GET /api/health: it needs no token, so it tells a hung service from a locked one."""
        return self.request("GET", "/api/health", timeout, authorise=False)

    def get(self, path, timeout):
        return self.request("GET", path, timeout)

    def post(self, path, body, timeout):
        return self.request("POST", path, timeout, body=body)

    def request(self, method, path, timeout, body=None, authorise=True):
        """An Answer, never an exception: refusals, resets and timeouts are answers too."""
        headers = {"Connection": "close"}
        if authorise and self.token:
            headers["Authorization"] = "Bearer " + self.token
        conn = http.client.HTTPConnection(self.host, self.port, timeout=max(0.05, timeout))
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except OSError as e:  # refused, reset, timeout (socket.timeout is an OSError)
            return Answer(error=str(e) or e.__class__.__name__, timed_out="timed out" in str(e))
        except http.client.HTTPException as e:
            return Answer(error="bad HTTP answer: %s" % (e.__class__.__name__,))
        finally:
            conn.close()
        return Answer(resp.status, _json_or_none(raw))


def _json_or_none(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
