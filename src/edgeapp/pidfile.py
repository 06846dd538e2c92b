"""Pidfiles: written atomically by the service, read by the init script and edgeapp-diag."""
import errno
import os


def write(path, pid=None):
    """Write pid (default: ours) to path, creating its folder; a reader never sees half a file."""
    pid = os.getpid() if pid is None else pid
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        os.makedirs(folder, 0o755)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % pid)
    os.rename(tmp, path)


def read(path):
    """The pid in path, or None if there is no file or it holds no number."""
    try:
        with open(path) as f:
            text = f.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def remove(path, pid=None):
    """Remove path if it still names pid (default: ours): a newer instance may own it by now."""
    pid = os.getpid() if pid is None else pid
    if read(path) == pid:
        try:
            os.unlink(path)
        except OSError:
            pass


def alive(pid):
    """True if a process with this pid runs (a zombie, dead but not yet reaped, does not)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError as e:
        if e.errno != errno.EPERM:
            return False
    return state(pid) != "Z"


def state(pid):
    """The process state letter from /proc (R, S, D, T stopped, Z zombie, ...), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: the state follows the last ')'.
    return stat[stat.rfind(")") + 2:][:1] or None


def uptime_s(pid):
    """Seconds since the process started (Linux /proc), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            system_up = float(f.read().split()[0])
        start_ticks = int(fields[19])  # field 22 of stat, counted after the command name
    except (OSError, IndexError, ValueError):
        return None
    return max(0.0, system_up - start_ticks / float(os.sysconf("SC_CLK_TCK")))
