"""Refusals under overload, paced: answered at once while they are few, else held back a little."""
import heapq
import threading
import time


class HeldRefusals:
    """Refusals answered at once while they are few (shed_burst at once, shed_rate a second: a
    burst of uploads gets its 503s in milliseconds), else after shed_delay. Clients that retry at
    once (wrk, naive scripts) otherwise turn a full queue into thousands of connect-503-close
    rounds a second, and those took the CPU that /api/health and the accelerator need (measured:
    2700 refusals/s, health p99 39 ms). Any thread may hold one; the selector thread answers them."""

    def __init__(self, limits):
        self.limits = limits
        self.bucket = TokenBucket(limits.shed_burst, limits.shed_rate)
        self.lock = threading.Lock()
        self._due = []  # (time, n, conn, err)
        self._n = 0

    def hold(self, conn, err, now):
        """False: answer it now; True: it is held until due() hands it back."""
        with self.lock:
            if self.bucket.take(now) or len(self._due) >= self.limits.max_parked:
                return False
            self._n += 1
            heapq.heappush(self._due, (now + self.limits.shed_delay, self._n, conn, err))
            return True

    def next_due(self, default):
        with self.lock:
            return self._due[0][0] if self._due else default

    def due(self, now):
        out = []
        with self.lock:
            while self._due and self._due[0][0] <= now:
                _, _, conn, err = heapq.heappop(self._due)
                out.append((conn, err))
        return out

    def take_all(self):
        with self.lock:
            out, self._due = [entry[2] for entry in self._due], []
        return out


class TokenBucket:
    """take() is True for up to `burst` calls at once and `rate` a second on average."""

    def __init__(self, burst, rate):
        self.burst, self.rate = float(burst), float(rate)
        self.tokens, self.t = self.burst, time.monotonic()

    def take(self, now):
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.t) * self.rate)
        self.t = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True
