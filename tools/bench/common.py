"""What every measurement of the benchmark shares: percentiles, units, the bounded timing loop,
the log line, and how the benchmark runs one of its own modes in a subprocess."""
import math
import statistics
import sys
import time

from tools.launch import REPO

OVERLOAD_GAP = 1.5  # seconds between the overload bursts


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(math.ceil(p / 100.0 * len(sorted_values))) - 1))
    return sorted_values[k]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def mb(n):
    return n / 1048576.0


def ms(seconds):
    return None if seconds is None else 1000.0 * seconds


def f1(x, fmt="%.1f"):
    return "–" if x is None else fmt % x


def hard_cap(seconds):
    """The longest a raw loop or a case may run, whatever --min-requests asks for."""
    return 10 * seconds + 60


def timed_loop(step, seconds, min_runs, max_runs):
    """step() back to back for seconds (at least min_runs, at most max_runs, never past the hard
    cap): (sorted seconds per step, elapsed seconds)."""
    times = []
    start = time.perf_counter()
    end, cap = start + seconds, start + hard_cap(max(seconds, 1.0))
    now = start
    while len(times) < max_runs and now < cap and (now < end or len(times) < min_runs):
        step()
        t = time.perf_counter()
        times.append(t - now)
        now = t
    times.sort()
    return times, now - start


MODE_CWD = str(REPO)


def mode_command(mode, *args, python=None):
    """The command line of one of the benchmark's own modes (raw, load, chart: see __main__),
    to run with cwd=MODE_CWD so that `-m tools.bench` finds the package."""
    return [python or sys.executable, "-m", "tools.bench", mode] + [str(a) for a in args]


def log(msg):
    print(msg, file=sys.stderr, flush=True)
