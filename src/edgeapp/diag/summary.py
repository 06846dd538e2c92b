"""The summary as console lines, one section per function, made from the gathered Facts."""
import textwrap
import time

from edgeapp import __version__, netinfo
from edgeapp import verdict as health
from edgeapp.diag.console import WIDTH, field, more, table_row, to_ascii, wrap
from edgeapp.diag.logs import short_log_line

NAMED = 5  # people to register again named on the console, at most


def summary_lines(facts):
    """(lines, each at most WIDTH columns; True when the service and every model are healthy)."""
    out = _header(facts)
    for section in (_service, _network, _fleet, _models, _faces, _queue, _memory, _board, _log):
        out += section(facts)
    ok, reason = verdict(facts)
    out.append("-" * WIDTH)
    out += wrap("%s: %s" % (health.word(ok), reason), "", 2)
    return out, ok


def verdict(facts):
    """(healthy, the reason in a few words): edgeapp.verdict over the gathered facts."""
    return health.verdict(facts.state, len(facts.failed_models()), facts.config_error,
                          (facts.answers.status_data() or {}).get("faces"))


def _header(facts):
    s = facts.settings
    out = [to_ascii("edgeapp %s - board %s - %s" % (__version__, s.board or "unknown",
                                                     time.strftime("%Y-%m-%d %H:%M:%S")))[:WIDTH],
           "-" * WIDTH]
    if facts.config_error:
        out += field("config", "ERROR %s (showing defaults)" % facts.config_error)
    return out


def _service(facts):
    p, port = facts.process, facts.settings.port
    bits = [facts.state]
    if p.alive:
        bits.append("pid %d" % p.pid)
        if p.uptime_s is not None:
            bits.append("up %s" % duration(p.uptime_s))
    if p.supervisor_alive:
        bits.append("supervisor %d" % p.supervisor)
    bits.append("port %d %s" % (port, "listening" if facts.listening else "closed"))
    out = field("service", ", ".join(bits))
    return out + more(facts.why) if facts.why else out


def _network(facts):
    s = facts.settings
    addrs = ", ".join("%s %s" % a for a in facts.board.interfaces)
    return (field("urls", "  ".join(netinfo.service_urls(s.host, s.port)))
            + field("addresses", addrs or "none: no network interface is up with an IPv4 address"))


def _fleet(facts):
    """Whether a load balancer (edgeapp-fleet haproxy) sends this board requests: from its health
    checks, as the service recorded them (/api/status). Nothing when the service did not answer."""
    st = facts.answers.status_data()
    if not isinstance(st, dict) or "balancers" not in st:
        return []
    checks = st["balancers"] or []
    if not checks:
        return field("fleet", "no balancer has checked this board")
    out = field("fleet", fleet_text(checks[0]))
    for other in checks[1:]:
        out += more(fleet_text(other))
    return out


def fleet_text(check):
    """'in (checked by lb1 at 10.0.0.2 every 2 s, last 1 s ago: ready)', or 'out: ...' and why."""
    who = "%s at %s" % (check["balancer"], check["address"] or "?")
    every = "every %.0f s" % check["interval_s"] if check.get("interval_s") else "first check"
    ago = "%.0f s ago" % check["last_s_ago"]
    # HAProxy checks every few seconds: three intervals (at least 10 s) without one means it stopped.
    if check["last_s_ago"] > max(3 * (check.get("interval_s") or 2), 10):
        return "out? %s last checked %s (%s): it stopped checking or cannot reach this board" % (who, ago, every)
    if check["status"] == 200:
        return "in (checked by %s %s, last %s: ready)" % (who, every, ago)
    return "out: %s was told %d %s (%s, last %s)" % (who, check["status"], check["answer"], every, ago)


def _models(facts):
    models = facts.answers.model_list()
    if models is not None:
        return _served_models(models, facts.answers.status_data() or {})
    if facts.answers.wants_token():
        return field("models", "the service wants the access token: run as root so %s can be read"
                     % (facts.settings.sources.get("token") or "the config"))
    inst = facts.installed
    if isinstance(inst, dict):
        names = ", ".join("%d %s" % kv for kv in sorted(inst.items())) or "none"
        return (field("models", "%d installed in %s: %s" % (len(inst), facts.settings.model_dir, names))
                + field("engine", "%s (the setting; a bundle may name its own)" % facts.settings.engine))
    return field("models", "ERROR %s" % inst)


def _served_models(models, status):
    stats = {m["id"]: m for m in status.get("models", [])}
    ready = sum(1 for m in models if m.get("ready"))
    out = field("models", "%d ready, %d failed" % (ready, len(models) - ready))
    for m in models:
        out += _model_row(m, stats.get(m["id"], {}))
    return out + _engines(models, status.get("engines") or {}) + _digests(models)


def _digests(models):
    """Which bundle each model is (its sha256, first 12 characters: GET /api/models has it whole),
    so a person can tell a pushed bundle, or which one a board kept after a power cut mid-push."""
    known = ["%d %s" % (m["id"], m["sha256"][:12]) for m in models if m.get("sha256")]
    return field("bundles", "sha256 " + ", ".join(known)) if known else []


def _engines(models, versions):
    """Which engine runs which models: "onnxruntime 1.19.2: 1, 2, 3; paddlelite 2.13rc0: 4"."""
    runs = {}
    for m in models:
        if m.get("engine") and m.get("ready"):
            runs.setdefault(m["engine"], []).append(str(m["id"]))
    if not runs:
        return []
    return field("engines", "; ".join("%s %s: %s" % (name, versions.get(name, ""), ", ".join(mids))
                                      for name, mids in sorted(runs.items())).replace("  ", " "))


def _model_row(m, st):
    head = "  %3d %-16s " % (m["id"], to_ascii(m.get("name", ""))[:16])
    if not m.get("ready"):
        return table_row(head, "FAILED " + (m.get("reason") or ""))
    mem = "%4.0f MB" % m["memory_mb"] if m.get("memory_mb") is not None else "    - MB"
    lat = st.get("latency_ms") or {}
    line = head + "ready  %s  %5d req %4d err" % (mem, st.get("requests", 0), st.get("errors", 0))
    if lat.get("p50") is not None:
        line += "  p50 %.0f p95 %.0f ms" % (lat["p50"], lat.get("p95") or 0)
    return [line[:WIDTH]]


def _faces(facts):
    """The face database: people and faces of the face model in use, their memory, the model,
    the file; or why it cannot be opened; and who must be registered again after a model change."""
    f = facts.answers.face_db()
    if f is None:
        return []
    if f.error:
        return field("faces", "ERROR " + f.error)
    if not f.model:
        return field("faces", "no face model serves; %s holds %s, %s" % (
            f.path, count(f.to_register, "person", "people"), count(f.other_faces, "face", "faces")))
    people = count(f.people or 0, "person", "people")
    if f.max_people:
        people += " (at most %d)" % f.max_people
    # The model's key last: it is long (package==version:file:crop) and only it may be cut.
    out = field("faces", "%s, %s (%s in memory) in %s; model %s" % (
        people, count(f.faces or 0, "face", "faces"), size(f.memory_bytes or 0), f.path, f.model))
    if f.to_register:
        names = ", ".join(f.to_register_names[:NAMED])
        if f.to_register > NAMED:
            names += ", ..."
        out += more("WARNING %s to register again (%s of other models kept, never matched): %s" % (
            count(f.to_register, "person", "people"), count(f.other_faces, "face", "faces"), names))
    return out


def _queue(facts):
    st = facts.answers.status_data()
    if st is None:
        return []
    svc = st.get("service_ms")
    return field("queue", "%s of %s jobs in flight, %s in line, %s, worker pid %s, %s restarts, %s requests in "
                 "flight" % (st.get("queue_depth"), st.get("queue_capacity"), st.get("queue_line", 0),
                             "%.0f ms per job" % svc if svc is not None else "no job yet",
                             st.get("worker_pid") or "-", st.get("restarts"), st.get("requests_in_flight")))


def _memory(facts):
    mem = []
    fig = (facts.answers.status_data() or {}).get("memory")
    if isinstance(fig, dict):
        mem.append("edgeapp %s (budget %s; HTTP %.0f, worker %.0f, slots %.0f, bodies %.0f)" % (
            mb(fig["total_mb"]), mb(fig["budget_mb"]) if fig.get("budget_mb") else "not set",
            fig["http_mb"], fig["worker_mb"], fig["slots_mb"], fig["bodies_mb"]))
    total, avail = facts.board.memory_mb
    if total:
        mem.append("system %s available of %s" % (mb(avail or 0), mb(total)))
    return field("memory", "; ".join(mem) or "unknown")


def _board(facts):
    b = facts.board
    temps = ", ".join("%s %.1f C" % t for t in b.temperatures) or "not exposed by this board"
    disks = "; ".join("%s %.0f%% used, %s free" % (p, used, mb(free)) for p, used, free in b.disks)
    engine = facts.settings.engine
    mods = ", ".join("%s %s" % (m, "ok" if found else "not installed" if _other_engine(m, engine) else "MISSING")
                     for m, found in b.modules)
    return field("temp", temps) + field("disk", disks or "unknown") + field("runtime", "%s; %s" % (b.python, mods))


def _other_engine(module, engine):
    """An engine's package that the service is not set to use: not having it is no fault."""
    return module in ("paddlelite", "onnxruntime") and module != engine


def _log(facts):
    where, lines = facts.files["log"], facts.log_lines
    if lines is None:
        return field("log", "%s: nothing to read" % where)
    out = field("log", "%s, last %d lines:" % (where, len(lines)))
    for line in lines:  # at most 3 screen lines each: a traceback line must not fill the screen
        out += [("  " + l) for l in textwrap.wrap(to_ascii(short_log_line(line)), WIDTH - 4,
                                                 subsequent_indent="  ")[:3]]
    return out


def duration(s):
    """Seconds as the two largest units: '59s', '5m 03s', '2h 05m', '3d 04h'."""
    s = int(s)
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm %02ds" % (s // 60, s % 60)
    if s < 86400:
        return "%dh %02dm" % (s // 3600, s % 3600 // 60)
    return "%dd %02dh" % (s // 86400, s % 86400 // 3600)


def count(n, one, many):
    """'1 person', '3 people'."""
    return "%d %s" % (n, one if n == 1 else many)


def size(n):
    """Bytes as '512 bytes', '28 KB', then as mb()."""
    if n < 1024:
        return "%d bytes" % n
    if n < 1048576:
        return "%.0f KB" % (n / 1024.0)
    return mb(n / 1048576.0)


def mb(x):
    """Megabytes as '512 MB', or '12.5 GB' from 10 GB on."""
    return "%.0f MB" % x if x < 10240 else "%.1f GB" % (x / 1024.0)
