"""edgeapp-diag: what a person on the board's serial console needs to know, within 2 seconds.

    edgeapp-diag [summary]          version, board, addresses and URLs, service state, models,
                                    queue, latency, memory, temperature, disk, last log lines;
                                    exit status 1 when the service is not healthy
    edgeapp-diag selftest           every model on the sample image in its bundle, through the
                                    running service (in-process when it is down), checked against
                                    the result the bundle expects
    edgeapp-diag config [--shell]   the settings in force and where each comes from

Plain ASCII within 80 columns, colour only on a terminal. The service is asked over HTTP on the
loopback address with short timeouts, so a hung service costs about a second; the pidfile, /proc,
the listening sockets and the log explain a service that is down or hung. This module imports
neither numpy nor Paddle Lite (only an in-process selftest does), so it starts fast on a board.
"""
import argparse
import http.client
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import textwrap
import time

from edgeapp import __version__, config, netinfo, pidfile, sysinfo

WIDTH = 80
LABEL = 10            # "memory   : " - labels are padded to this, then ": "
BUDGET_S = 1.7        # the whole summary, leaving margin under the promised 2 s
HEALTH_TIMEOUT = 0.8  # a service that cannot answer /api/health in this time is hung
LOG_LINES = 6

COLOURS = {"green": "\033[32m", "red": "\033[31m", "yellow": "\033[33m"}
WORD_COLOUR = {
    "READY": "green", "HEALTHY": "green", "PASS": "green", "ready": "green",
    "DOWN": "red", "HUNG": "red", "FAILED": "red", "FAIL": "red", "UNHEALTHY": "red", "ERROR": "red",
    "MISSING": "red", "STARTING": "yellow", "NOT-READY": "yellow", "SKIP": "yellow", "WARNING": "yellow",
}


# ---- talking to the service ------------------------------------------------------------------

class Answer:
    """One HTTP exchange: status and JSON body, or why there was none (refused, timeout)."""

    def __init__(self, status=None, body=None, error=None, timed_out=False):
        self.status, self.body, self.error, self.timed_out = status, body, error, timed_out

    @property
    def data(self):
        return (self.body or {}).get("data") if isinstance(self.body, dict) else None

    @property
    def msg(self):
        return (self.body or {}).get("msg", "") if isinstance(self.body, dict) else ""


def _request(host, port, method, path, timeout, token=None, body=None):
    headers = {"Connection": "close"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn = http.client.HTTPConnection(host, port, timeout=max(0.05, timeout))
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
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except ValueError:
        parsed = None
    return Answer(resp.status, parsed)


def _local_host(settings):
    """Where to reach the service from the board itself."""
    if settings.host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if settings.host == "::":
        return "::1"
    return settings.host


# ---- gathering -------------------------------------------------------------------------------

def gather(settings, deadline):
    """Every fact the summary shows, as a dict; nothing here waits past deadline (monotonic)."""
    files = config.service_files(settings)
    f = {"settings": settings, "files": files}
    f["pid"] = pidfile.read(files["pidfile"])
    f["pid_alive"] = pidfile.alive(f["pid"])
    f["pid_state"] = pidfile.state(f["pid"]) if f["pid_alive"] else None
    f["uptime_s"] = pidfile.uptime_s(f["pid"]) if f["pid_alive"] else None
    f["supervisor"] = pidfile.read(files["supervisor"])
    f["supervisor_alive"] = pidfile.alive(f["supervisor"])
    f["listening"] = netinfo.listening(settings.port)
    f["interfaces"] = netinfo.ipv4_interfaces()

    host = _local_host(settings)
    f["health"] = f["status"] = f["models"] = None
    if f["listening"]:
        f["health"] = _request(host, settings.port, "GET", "/api/health", min(HEALTH_TIMEOUT, _left(deadline)))
        if f["health"].status is not None and not f["health"].timed_out:
            # Both answer from memory (no accelerator round trip), so they are quick when health is.
            f["status"] = _request(host, settings.port, "GET", "/api/status", _left(deadline, 0.5), settings.token)
            f["models"] = _request(host, settings.port, "GET", "/api/models", _left(deadline, 0.5), settings.token)
    f["state"], f["why"] = _classify(f)
    if f["models"] is None or f["models"].status != 200:
        f["installed"] = _installed_models(settings.model_dir)
    f["log_lines"] = read_log(settings, files, _left(deadline, 0.8))
    f["temperatures"] = sysinfo.temperatures()
    f["memory"] = sysinfo.memory_mb()
    f["disks"] = [d for d in (sysinfo.disk(settings.model_dir), sysinfo.disk(os.path.dirname(files["pidfile"])))
                  if d]
    f["runtime"] = _runtime()
    return f


def _left(deadline, cap=None):
    left = max(0.05, deadline - time.monotonic())
    return min(left, cap) if cap else left


def _classify(f):
    """(state word, why) for the service: READY, STARTING, NOT-READY, HUNG or DOWN."""
    h = f["health"]
    if h is not None and h.status == 200:
        return "READY", ""
    if h is not None and h.status is not None:
        if "starting" in h.msg:
            return "STARTING", "loading and warming up the models"
        return "NOT-READY", h.msg or "HTTP %d from /api/health" % h.status
    pid, supervisor = f["pid"], f["supervisor"]
    if h is not None and h.timed_out:
        state = f["pid_state"]
        how = " (process state T: stopped)" if state == "T" else ""
        return "HUNG", ("port %d accepts connections but /api/health gave no answer in %.1f s%s"
                        % (f["settings"].port, HEALTH_TIMEOUT, how))
    if f["pid_alive"]:
        if h is not None:
            return "HUNG", "pid %d runs but /api/health failed: %s" % (pid, h.error)
        return "STARTING", "pid %d runs but does not listen on port %d yet" % (pid, f["settings"].port)
    if f["listening"]:
        return "DOWN", "something else listens on port %d: %s" % (f["settings"].port, h.error if h else "")
    if pid:
        why = "the pidfile names pid %d, which is not running: the service died" % pid
    else:
        why = "not running (no pidfile %s)" % f["files"]["pidfile"]
    if f["supervisor_alive"]:
        why += "; the supervisor (pid %d) restarts it, see the log" % supervisor
    elif supervisor:
        why += "; its supervisor (pid %d) is gone too" % supervisor
    return "DOWN", why


def _installed_models(model_dir):
    from edgeapp.bundle import BundleError, load_bundles  # json only: cheap

    try:
        return {mid: b.name for mid, b in load_bundles(model_dir).items()}
    except BundleError as e:
        return str(e)


def _runtime():
    found = []
    for mod in ("numpy", "cv2", "paddlelite"):
        try:
            ok = importlib.util.find_spec(mod) is not None  # looks on disk, imports nothing
        except (ImportError, ValueError):
            ok = False
        found.append((mod, ok))
    return "Python %s" % platform.python_version(), found


# ---- the log ---------------------------------------------------------------------------------

def read_log(settings, files, timeout):
    """The service's last log lines from wherever they go: a file, syslog or the journal."""
    target = files["log"]
    if target == "journal":
        return _command(["journalctl", "-u", "edgeapp.service", "-n", str(LOG_LINES), "--no-pager", "-o", "cat"],
                        timeout, None)
    if target == "syslog":
        lines = _command(["logread"], timeout, "edgeapp")
        if lines is None:
            lines = _tail(settings.root + "/var/log/messages", "edgeapp")
        return lines
    lines = _tail(target)
    if lines is not None and len(lines) < LOG_LINES:
        older = _tail(target + ".1") or []  # the file was just rotated
        lines = older + lines
    return lines


def _command(argv, timeout, grep):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout,
                             universal_newlines=True, errors="replace").stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [l for l in out.splitlines() if grep is None or grep in l][-LOG_LINES:]


def _tail(path, grep=None, chunk=16384):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chunk))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [l for l in text.splitlines()[1 if len(text) >= chunk else 0:] if l.strip()]
    return [l for l in lines if grep is None or grep in l][-LOG_LINES:]


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d)[,.]\d+ (\S+) ([A-Z]+) (.*)$")


def _short_log_line(line):
    """'2024-05-01 10:00:00,123 edgeapp.server INFO msg' -> '10:00:00 INFO msg' (the date is in the header)."""
    m = _LOG_LINE.match(line)
    return "%s %s %s" % (m.group(1), m.group(3), m.group(4)) if m else line


# ---- presenting ------------------------------------------------------------------------------

def ascii(text):
    """Console-safe text: non-ASCII (e.g. OCR text in a log line) becomes '?', controls are dropped."""
    text = text.encode("ascii", "replace").decode("ascii")
    return "".join(c for c in text if c == "\t" or " " <= c <= "~").replace("\t", " ")


def wrap(text, first="", indent=0):
    """text wrapped to WIDTH: the first line starts with first, the others are indented."""
    return textwrap.wrap(ascii(text), WIDTH, initial_indent=first, subsequent_indent=" " * indent,
                         break_on_hyphens=False) or [first.rstrip()]


def field(label, text):
    """'label     : text', continuation lines under the text."""
    return wrap(text, label.ljust(LABEL) + ": ", LABEL + 2)


def more(text):
    """A further line of the field above."""
    return wrap(text, " " * (LABEL + 2), LABEL + 2)


def _duration(s):
    s = int(s)
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm %02ds" % (s // 60, s % 60)
    if s < 86400:
        return "%dh %02dm" % (s // 3600, s % 3600 // 60)
    return "%dd %02dh" % (s // 86400, s % 86400 // 3600)


def _mb(x):
    return "%.0f MB" % x if x < 10240 else "%.1f GB" % (x / 1024.0)


def summary_lines(f):
    """The summary as plain lines (each at most WIDTH columns) and the verdict (ok, reason)."""
    s, out = f["settings"], []
    out.append(ascii("edgeapp %s - board %s - %s" % (__version__, s.board or "unknown",
                                                     time.strftime("%Y-%m-%d %H:%M:%S")))[:WIDTH])
    out.append("-" * WIDTH)
    if getattr(s, "config_error", None):
        out += field("config", "ERROR %s (showing defaults)" % s.config_error)

    # Service
    bits = [f["state"]]
    if f["pid_alive"]:
        bits.append("pid %d" % f["pid"])
        if f["uptime_s"] is not None:
            bits.append("up %s" % _duration(f["uptime_s"]))
    if f["supervisor_alive"]:
        bits.append("supervisor %d" % f["supervisor"])
    bits.append("port %d %s" % (s.port, "listening" if f["listening"] else "closed"))
    out += field("service", ", ".join(bits))
    if f["why"]:
        out += more(f["why"])
    urls = netinfo.service_urls(s.host, s.port)
    out += field("urls", "  ".join(urls))
    addrs = ", ".join("%s %s" % a for a in f["interfaces"]) or "none: no network interface is up with an IPv4 address"
    out += field("addresses", addrs)

    # Models
    failed = []
    models = f["models"]
    if models is not None and models.status == 200 and isinstance(models.data, list):
        stats = {}
        if f["status"] is not None and f["status"].status == 200:
            stats = {m["id"]: m for m in (f["status"].data or {}).get("models", [])}
        ready = [m for m in models.data if m.get("ready")]
        failed = [m for m in models.data if not m.get("ready")]
        out += field("models", "%d ready, %d failed" % (len(ready), len(failed)))
        for m in models.data:
            out += _model_lines(m, stats.get(m["id"], {}))
    elif models is not None and models.status == 401:
        out += field("models", "the service wants the access token: run as root so %s can be read"
                     % (s.sources.get("token") or "the config"))
    else:
        inst = f.get("installed")
        if isinstance(inst, dict):
            names = ", ".join("%d %s" % kv for kv in sorted(inst.items())) or "none"
            out += field("models", "%d installed in %s: %s" % (len(inst), s.model_dir, names))
        else:
            out += field("models", "ERROR %s" % inst)

    # Queue, memory
    st = f["status"].data if f["status"] is not None and f["status"].status == 200 else None
    if isinstance(st, dict):
        svc = st.get("service_ms")
        out += field("queue", "%s of %s jobs in flight, %s per job, worker pid %s, %s restarts, %s requests "
                     "in flight" % (st.get("queue_depth"), st.get("queue_capacity"),
                                    "%.0f ms" % svc if svc is not None else "no job yet",
                                    st.get("worker_pid") or "-", st.get("restarts"), st.get("requests_in_flight")))
    total, avail = f["memory"]
    mem = []
    fig = (st or {}).get("memory") if isinstance(st, dict) else None
    if isinstance(fig, dict):
        mem.append("edgeapp %s (budget %s; HTTP %.0f, worker %.0f, slots %.0f, bodies %.0f)" % (
            _mb(fig["total_mb"]), _mb(fig["budget_mb"]) if fig.get("budget_mb") else "not set",
            fig["http_mb"], fig["worker_mb"], fig["slots_mb"], fig["bodies_mb"]))
    if total:
        mem.append("system %s available of %s" % (_mb(avail or 0), _mb(total)))
    out += field("memory", "; ".join(mem) or "unknown")
    temps = ", ".join("%s %.1f C" % t for t in f["temperatures"]) or "not exposed by this board"
    out += field("temp", temps)
    out += field("disk", "; ".join("%s %.0f%% used, %s free" % (p, used, _mb(free))
                                   for p, used, free in f["disks"]) or "unknown")
    py, mods = f["runtime"]
    out += field("runtime", "%s; %s" % (py, ", ".join("%s %s" % (m, "ok" if ok else "MISSING") for m, ok in mods)))

    # Log
    where = f["files"]["log"]
    lines = f["log_lines"]
    if lines is None:
        out += field("log", "%s: nothing to read" % where)
    else:
        out += field("log", "%s, last %d lines:" % (where, len(lines)))
        for line in lines:
            out += [("  " + l) for l in textwrap.wrap(ascii(_short_log_line(line)), WIDTH - 4,
                                                     subsequent_indent="  ")[:3]]

    ok = f["state"] == "READY" and not failed and not getattr(s, "config_error", None)
    if ok:
        reason = "service ready, every model ready"
    elif f["state"] != "READY":
        reason = "service %s" % f["state"].lower().replace("-", " ")
    elif failed:
        reason = "%d model(s) failed to load" % len(failed)
    else:
        reason = "the config has an error"
    out.append("-" * WIDTH)
    out += wrap("%s: %s" % ("HEALTHY" if ok else "UNHEALTHY", reason), "", 2)
    return out, ok


def _model_lines(m, st):
    head = "  %3d %-16s " % (m["id"], ascii(m.get("name", ""))[:16])
    if not m.get("ready"):
        return wrap(head + "FAILED " + (m.get("reason") or ""), "", len(head) + 7)
    mem = "%4.0f MB" % m["memory_mb"] if m.get("memory_mb") is not None else "    - MB"
    lat = st.get("latency_ms") or {}
    line = head + "ready  %s  %5d req %4d err" % (mem, st.get("requests", 0), st.get("errors", 0))
    if lat.get("p50") is not None:
        line += "  p50 %.0f p95 %.0f ms" % (lat["p50"], lat.get("p95") or 0)
    return [line[:WIDTH]]


def use_colour(stream):
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def colourise(line):
    def paint(m):
        return COLOURS[WORD_COLOUR[m.group(0)]] + m.group(0) + "\033[0m"
    return re.sub(r"\b(%s)\b" % "|".join(re.escape(w) for w in WORD_COLOUR), paint, line)


def emit(lines, stream, log_from=None):
    """Print lines; on a terminal colour the state words (never inside log lines)."""
    colour = use_colour(stream)
    for i, line in enumerate(lines):
        if colour and (log_from is None or i < log_from or line.startswith("-") or i >= len(lines) - 2):
            line = colourise(line)
        stream.write(line + "\n")
    stream.flush()


# ---- commands --------------------------------------------------------------------------------

def load_settings(config_file):
    """The settings in force; a broken config is reported, not fatal (the defaults stand in)."""
    try:
        s = config.load(config_file)
        s.config_error = None
    except config.ConfigError as e:
        s = config.load(None, environ={config.ROOT_ENV: os.environ.get(config.ROOT_ENV, "")})
        s.config_error = str(e)
    return s


def cmd_summary(args):
    deadline = time.monotonic() + BUDGET_S
    settings = load_settings(args.config)
    facts = gather(settings, deadline)
    lines, ok = summary_lines(facts)
    log_from = next((i for i, l in enumerate(lines) if l.startswith("log ")), None)
    emit(lines, sys.stdout, log_from)
    return 0 if ok else 1


def cmd_config(args):
    try:
        s = config.load(args.config)
    except config.ConfigError as e:
        print("edgeapp: %s" % e, file=sys.stderr)
        return 2
    if args.shell:
        print(config.shell_assignments(s))
        return 0
    for name in config.FIELDS:
        value = getattr(s, name)
        if name == "token":
            value = "set" if value else None
        text = "%-16s %s  (%s)" % (name, "-" if value is None else value, s.sources[name])
        print("\n".join(textwrap.wrap(ascii(text), WIDTH, subsequent_indent=" " * 17, break_on_hyphens=False,
                                       break_long_words=False)))
    return 0


def cmd_selftest(args):
    from edgeapp.selftest import run

    settings = load_settings(args.config)
    if settings.config_error:
        print("config: ERROR %s" % settings.config_error)
        return 1
    lines, ok = run(settings, in_process=args.in_process)
    emit(lines, sys.stdout)
    return 0 if ok else 1


def main(argv=None):
    p = argparse.ArgumentParser(prog="edgeapp-diag", description="edgeapp diagnostics for the serial console")
    p.add_argument("--config", metavar="FILE", help="settings file (default: $EDGEAPP_CONFIG)")
    p.add_argument("--version", action="version", version="edgeapp " + __version__)
    sub = p.add_subparsers(dest="command")
    sub.add_parser("summary", help="service state, models, memory, temperature, log (the default)")
    ps = sub.add_parser("selftest", help="run every model on its bundled sample and check the result")
    ps.add_argument("--in-process", action="store_true", help="load the models here even if the service runs")
    pc = sub.add_parser("config", help="the settings in force and where each comes from")
    pc.add_argument("--shell", action="store_true", help="as cfg_<name>='value' lines for the init script")
    args = p.parse_args(argv)
    handlers = {None: cmd_summary, "summary": cmd_summary, "selftest": cmd_selftest, "config": cmd_config}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `edgeapp-diag | head`: the reader has all it wanted
        sys.stderr.close()
        return 1


if __name__ == "__main__":
    sys.exit(main())
