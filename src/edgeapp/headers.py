"""The headers every answer of the application gets, as a WSGI wrapper around it: SECURITY_HEADERS
always, and CORS for the origins the settings allow (off by default: a page from another origin
cannot read the answers). A browser's CORS preflight is answered here, before any token check."""
from edgeapp.parsing import DEADLINE_HEADER, TOKEN_HEADER
from edgeapp.results import SECURITY_HEADERS

CORS_ALLOW_HEADERS = "Authorization, Content-Type, %s, %s" % (TOKEN_HEADER, DEADLINE_HEADER)


class AnswerHeaders:
    """app (WSGI) with SECURITY_HEADERS on every answer, and CORS when cors_origins (a comma-separated
    list of origins, or "*") is set."""

    def __init__(self, app, cors_origins=None, on_status=None):
        self.app = app
        self.on_status = on_status  # on_status(status line) for every answer of app (Api.answered)
        self.allowed = {o.strip().rstrip("/") for o in (cors_origins or "").split(",") if o.strip()}

    def cors(self, origin):
        """The CORS headers an answer to origin carries ([] if that origin may not read it)."""
        if not origin or not self.allowed:
            return []
        if "*" in self.allowed:
            out = [("Access-Control-Allow-Origin", "*")]
        elif origin.rstrip("/") in self.allowed:
            out = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        else:
            return []
        return out + [("Access-Control-Expose-Headers", "Retry-After, Server-Timing")]

    def __call__(self, environ, start_response):
        extra = self.cors(environ.get("HTTP_ORIGIN"))
        if extra and environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            # A browser's preflight carries no credentials: answered here, before the token check.
            start_response("204 No Content", extra + SECURITY_HEADERS + [
                ("Access-Control-Allow-Methods", "GET, POST"), ("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                ("Access-Control-Max-Age", "600"), ("Content-Length", "0")])
            return [b""]

        def start(status, headers, exc_info=None):
            if self.on_status is not None:
                self.on_status(status)
            given = {name.lower() for name, _ in headers}  # the page's files set their own caching
            return start_response(status, list(headers) + [h for h in SECURITY_HEADERS if h[0].lower() not in given]
                                  + extra, exc_info)

        return self.app(environ, start)
