"""The load balancers that check this board: who asked GET /api/health?balancer=NAME (the check
`edgeapp-fleet haproxy` configures), from where, how often, and what they were told.

/api/status reports it and edgeapp-diag turns it into one line: whether the board is in a fleet.
Recorded by the HTTP server's selector thread (Api.quick), so it must stay cheap: a dict of a few
entries, replaced whole per check (no lock: one assignment is atomic, readers copy the items)."""
import time
from urllib.parse import parse_qs

__all__ = ["BalancerChecks", "balancer_name"]

MAX_BALANCERS = 8  # a site has one or two; anyone may send ?balancer=, so only the latest few are kept
NAME_CHARS = 40


def balancer_name(target):
    """The NAME of a health-check target `/api/health?balancer=NAME` (bytes), or None."""
    path, _, query = target.partition(b"?")
    if b"balancer=" not in query:
        return None
    values = parse_qs(query.decode("latin-1")).get("balancer")
    name = values[0] if values else ""
    return "".join(c for c in name if c.isalnum() or c in "._-")[:NAME_CHARS] or None


class BalancerChecks:
    """The last check of each balancer (name, address), with the interval between its last two."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.last = {}  # (name, address) -> (when, interval or None, status, answer, checks)

    def saw(self, name, address, status, answer):
        """A check by balancer name from address was answered status ('ready' or why not)."""
        now = self.clock()
        key = (name, address or "")
        before = self.last.get(key)
        interval = now - before[0] if before else None
        checks = before[4] + 1 if before else 1
        if before is None and len(self.last) >= MAX_BALANCERS:
            oldest = min(self.last.items(), key=lambda kv: kv[1][0])[0]
            self.last.pop(oldest, None)
        self.last[key] = (now, interval, status, answer, checks)

    def report(self):
        """[{balancer, address, last_s_ago, interval_s, status, answer, checks}], latest first."""
        now = self.clock()
        out = [{"balancer": name, "address": address, "last_s_ago": round(now - when, 1),
                "interval_s": round(interval, 1) if interval is not None else None,
                "status": status, "answer": answer, "checks": checks}
               for (name, address), (when, interval, status, answer, checks) in list(self.last.items())]
        return sorted(out, key=lambda r: r["last_s_ago"])
