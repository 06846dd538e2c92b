"""The board's own page (src/edgeapp/ui/): its files, read once at start and served from memory.

Only the files that were in the folder at start are served, by name: no path from a client ever
reaches the file system. Each answer carries an ETag and `Cache-Control: no-cache`, so a browser
keeps the files and asks again with If-None-Match (a 304 of a few hundred bytes); after an upgrade
it gets the new page at once instead of mixing old and new modules. The content security policy
lets the page load nothing from outside the board: its own scripts and styles, images it draws
(data: and blob: URLs of the user's own pictures), and requests to the board itself.
"""
import hashlib
import os

UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PAGE_HEADERS = [("Cache-Control", "no-cache"), ("Content-Security-Policy", CSP),
                ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY")]


class PageFile:
    __slots__ = ("body", "content_type", "etag")

    def __init__(self, body, content_type):
        self.body, self.content_type = body, content_type
        self.etag = '"%s"' % hashlib.sha256(body).hexdigest()[:20]


class Webpage:
    """The page's files by name; answer(name, if_none_match) is (status, headers, body) or None."""

    def __init__(self, folder=UI_DIR):
        self.files = {}
        for name in sorted(os.listdir(folder)):
            kind = TYPES.get(os.path.splitext(name)[1])
            path = os.path.join(folder, name)
            if kind and os.path.isfile(path):
                with open(path, "rb") as f:
                    self.files[name] = PageFile(f.read(), kind)

    def answer(self, name, if_none_match=None):
        page = self.files.get(name)
        if page is None:
            return None
        headers = [("ETag", page.etag)] + PAGE_HEADERS
        if if_none_match and page.etag in (t.strip() for t in if_none_match.split(",")):
            return 304, headers, b""
        return 200, headers + [("Content-Type", page.content_type)], page.body
