"""The service's last log lines, from wherever the board sends them: a file, syslog or the journal."""
import os
import re
import subprocess

LOG_LINES = 6

_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d)[,.]\d+ (\S+) ([A-Z]+) (.*)$")


def read_log(target, root, timeout):
    """The last LOG_LINES lines, or None when there is nothing to read.

    target is a file, "syslog" or "journal" (config.service_files); root is the staging root
    that /var/log/messages lives under; a command that takes longer than timeout is given up."""
    if target == "journal":
        return _command(["journalctl", "-u", "edgeapp.service", "-n", str(LOG_LINES), "--no-pager", "-o", "cat"],
                        timeout, None)
    if target == "syslog":
        lines = _command(["logread"], timeout, "edgeapp")
        if lines is None:
            lines = _tail(root + "/var/log/messages", "edgeapp")
        return lines
    lines = _tail(target)
    if lines is not None and len(lines) < LOG_LINES:
        older = _tail(target + ".1") or []  # the file was just rotated
        lines = older + lines
    return lines


def short_log_line(line):
    """'2024-05-01 10:00:00,123 edgeapp.server INFO msg' -> '10:00:00 INFO msg' (the date is in the header)."""
    m = _LOG_LINE.match(line)
    return "%s %s %s" % (m.group(1), m.group(3), m.group(4)) if m else line


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
    # A full chunk most likely starts inside a line: drop that part line.
    lines = [l for l in text.splitlines()[1 if len(text) >= chunk else 0:] if l.strip()]
    return [l for l in lines if grep is None or grep in l][-LOG_LINES:]
