"""edgeapp-fleet push: install a model bundle on every board (POST /api/models), or remove one
(DELETE /api/models/<id>), then show what each board has.

    edgeapp-fleet push BUNDLE BOARD... [--token T] [--parallel N] [--keep-going]
    edgeapp-fleet push --delete ID BOARD... [same options]
    edgeapp-fleet push --list BOARD...

BUNDLE is the .tar.gz of a bundle folder (tar czf NAME.tar.gz -C PARENT NAME), or the folder
itself (packed here first). BOARD is host:port (port 9876 if left out), or @FILE of them. The token
is --token, else $EDGEAPP_TOKEN: a board refuses pushes without one. Boards are done one after
another (--parallel N: N at a time); the first failure stops the rest unless --keep-going. Then a
table of every board's models with each bundle's sha256 (edgeapp.bundle_digest: the archive's is
computed here too, so the table shows which boards have it). Exit code 0 when every board did it.
Standard library only, Python 3.8+.
"""
import argparse
import concurrent.futures
import json
import os
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request

from tools.fleet.boards import BoardError, board_name, read_boards  # tools.fleet puts src/ on the path
from edgeapp.bundle_archive import ArchiveError, archive_digest  # standard library only

TIMEOUT = 600.0  # seconds for one board's answer: it loads and warms the model twice before it answers
SHORT = 12       # sha256 characters shown in the table


class Board:
    """One board's API: host, port, token."""

    def __init__(self, address, token, timeout=TIMEOUT):
        self.address, self.token, self.timeout = address, token, timeout
        self.url = "http://%s" % board_name(address)

    def call(self, method, path, body=None, length=None):
        """(HTTP status, the envelope as a dict) of one request; status None when nothing answered."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if body is not None:
            headers.update({"Content-Type": "application/gzip", "Content-Length": str(length)})
        req = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, _envelope(r.read())
        except urllib.error.HTTPError as e:
            return e.code, _envelope(e.read())
        except (OSError, ValueError) as e:  # refused, unreachable, reset, timed out
            return None, {"code": -1, "msg": "no answer from %s: %s" % (self.url, getattr(e, "reason", e))}

    def push(self, archive):
        with open(archive, "rb") as f:
            return self.call("POST", "/api/models", f, os.fstat(f.fileno()).st_size)

    def delete(self, mid):
        return self.call("DELETE", "/api/models/%d" % mid)

    def models(self):
        status, env = self.call("GET", "/api/models")
        return env.get("data") if status == 200 and isinstance(env.get("data"), list) else None


def _envelope(raw):
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {"code": -1, "msg": "the answer is not edgeapp's JSON: %r" % raw[:120]}
    return doc if isinstance(doc, dict) else {"code": -1, "msg": "the answer is not edgeapp's envelope"}


def pack(folder, out):
    """The .tar.gz of a bundle folder, as the board expects it: the folder's name at the top,
    regular files and folders only."""
    folder = os.path.abspath(folder)
    top = os.path.basename(folder)
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=top, recursive=False)
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(root, name)
                if os.path.islink(path):
                    raise ArchiveError("%s is a symbolic link; a bundle holds regular files only" % path)
                tar.add(path, arcname=os.path.join(top, os.path.relpath(path, folder)), recursive=False)
    return out


def what_was_done(status, env):
    """(True if it was done, one line for the table)."""
    data = env.get("data") if status == 200 else None
    if isinstance(data, dict) and env.get("code") == 0:
        failed = (data.get("reload") or {}).get("failed") or {}
        line = "%s %s %s" % (data.get("action"), data.get("id"), data.get("name"))
        return True, line + ("; failed after the reload: %s" % failed if failed else "")
    code = "HTTP %s code %s" % (status, env.get("code")) if status else "no answer"
    return False, "FAILED (%s): %s" % (code, env.get("msg"))


def run_all(boards, task, parallel, keep_going):
    """{board: (done, line)} of task(board) over the boards, `parallel` at a time; after the
    first failure no further board is started unless keep_going."""
    results, stop = {}, threading.Event()

    def one(board):
        if stop.is_set():
            results[board.address] = (False, "skipped: an earlier board failed (--keep-going goes on)")
            return
        done, line = what_was_done(*task(board))
        results[board.address] = (done, line)
        print("%-22s %s" % (board_name(board.address), line), flush=True)
        if not done and not keep_going:
            stop.set()

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(one, boards))
    return results


def table(boards, results, sha=None):
    """Lines: each board's models (GET /api/models), id, name, ready, sha256 (marked when it is sha)."""
    lines = ["", "%-22s %-30s %4s  %-20s %-6s %s" % ("BOARD", "RESULT", "ID", "NAME", "READY", "SHA256")]
    for board in boards:
        result = results.get(board.address, (True, "-"))[1]
        models = board.models()
        rows = [model_row(m, sha) for m in models or []]
        if models is None:
            rows = ["      models unknown: GET /api/models did not answer (or the token is wrong)"]
        first = "%-22s %-30s " % (board_name(board.address), result[:30])
        lines += [first + (rows[0] if rows else "      no model installed")]
        lines += [" " * len(first) + row for row in rows[1:]]
        if len(result) > 30:
            lines.append("    " + result)
    return lines


def model_row(m, sha=None):
    """One model of GET /api/models as a table row; '<- pushed' when its bundle is sha."""
    pushed = " <- pushed" if sha and m.get("sha256") == sha else ""
    return "%4s  %-20s %-6s %s%s" % (m.get("id"), str(m.get("name"))[:20], "yes" if m.get("ready") else "NO",
                                     (m.get("sha256") or "-")[:SHORT], pushed)


def parser():
    p = argparse.ArgumentParser(prog="edgeapp-fleet push", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("items", nargs="+", metavar="BUNDLE|BOARD",
                   help="the bundle archive or folder, then the boards (host:port or @FILE)")
    p.add_argument("--delete", type=int, metavar="ID", help="remove the bundle with this model id instead")
    p.add_argument("--list", action="store_true", help="only show what each board has")
    p.add_argument("--token", default=os.environ.get("EDGEAPP_TOKEN"),
                   help="the boards' access token (default: $EDGEAPP_TOKEN)")
    p.add_argument("--parallel", type=int, default=1, metavar="N", help="boards done at once (default 1)")
    p.add_argument("--keep-going", action="store_true", help="go on with the other boards after a failure")
    p.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds for one board's answer")
    return p


def main(argv):
    args = parser().parse_args(argv)
    pushing = args.delete is None and not args.list
    items = args.items[1:] if pushing else args.items
    try:
        boards = [Board(a, args.token, args.timeout) for a in read_boards(items)]
    except BoardError as e:
        print("edgeapp-fleet push: %s" % e, file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(table(boards, {})))
        return 0
    if not pushing:
        results = run_all(boards, lambda b: b.delete(args.delete), args.parallel, args.keep_going)
        print("\n".join(table(boards, results)))
        return 0 if all(r[0] for r in results.values()) else 1
    with tempfile.TemporaryDirectory(prefix="edgeapp-push-") as scratch:
        return push_bundle(args.items[0], boards, args, scratch)


def push_bundle(bundle, boards, args, scratch):
    """Pack (a folder), check and digest the archive here, push it to the boards, print the table."""
    try:
        archive = pack(bundle, os.path.join(scratch, os.path.basename(os.path.abspath(bundle)) + ".tar.gz")) \
            if os.path.isdir(bundle) else bundle
        name, sha = archive_digest(archive)
    except (ArchiveError, OSError) as e:
        print("edgeapp-fleet push: %s: %s" % (bundle, e), file=sys.stderr)
        return 2
    print("pushing %s (sha256 %s) to %d board(s)" % (name, sha, len(boards)), flush=True)
    results = run_all(boards, lambda b: b.push(archive), args.parallel, args.keep_going)
    print("\n".join(table(boards, results, sha)))
    done = sum(1 for r in results.values() if r[0])
    print("\n%s: on %d of %d board(s)" % (name, done, len(boards)))
    return 0 if done == len(boards) else 1
