"""Process memory readings (Linux /proc), for warm-up figures and tests."""


def rss_bytes(pid=None):
    """Resident set size of a process in bytes, 0 where /proc is unavailable."""
    path = "/proc/%s/status" % (pid or "self")
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def mb(n):
    return round(n / (1024.0 * 1024.0), 1)
