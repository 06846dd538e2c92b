"""Every timeout and limit of the HTTP server, with the reasons for their defaults.

Server(..., limits=Limits(header_timeout=5.0)) changes one; the module constants are the defaults.
"""
import socket
import sys
from dataclasses import dataclass

MAX_HEADER_BYTES = 8 * 1024  # request line + headers; browsers and curl send well under 2 KB
HEADER_TIMEOUT = 10.0        # seconds from a request's first byte to its head and body prefix
BODY_PREFETCH = 64 * 1024    # body bytes gathered before a thread takes the request
BODY_GRACE = 10.0            # seconds a body (or an answer) may take before MIN_BODY_RATE applies
MIN_BODY_RATE = 16 * 1024    # bytes per second, on average, after the grace (128 kbit/s)
IDLE_TIMEOUT = 10.0          # seconds a connection may stay silent (idle keep-alive, one wait for input)
LINGER_SECONDS = 10.0        # how long input is read and dropped after an early answer
DRAIN_BURST = 16 * 1024 * 1024  # bytes dropped per turn of one lingering connection
DRAINS_PER_TURN = 4          # lingering connections drained per selector turn (about 0.6 ms each)
SHED_DELAY = 0.03            # seconds a refused inference request waits for its 503 (back-pressure)...
SHED_BURST = 64              # ...once this many were refused at once (a token bucket:
SHED_RATE = 100.0            # ...refilled at this many per second)
LIGHT_THREADS = 2            # threads for requests without a body
LIGHT_QUEUE = 16             # such requests waiting for one of them (then they try the main pool)
ACCEPT_BURST = 64            # connections accepted per selector turn
MAX_PARKED = 256             # connections waiting in the selector; beyond it the longest idle are closed
KEEP_ALIVE_LIMIT = 128       # idle connections kept open for another request (cheroot's default: 10)
SWEEP_INTERVAL = 0.5         # seconds between two rounds of the reapers (late heads, idle, excess)
# The selector thread's CPU priority (nice; the other threads keep 0). It accepts, reads heads and
# refuses, a little work each time, but under a burst of uploads it queued behind the admitted
# requests' decodes on the same CPU and new connections waited in the listen backlog. At -5 it
# still waited for that CPU as long as it ran (CFS shares it by weight: -5 against four decoding
# threads is 43%); at -10, 70%. Needs root (the init scripts run the service as root) or
# RLIMIT_NICE (ulimit -e 30); without either it keeps 0, and says so.
SELECTOR_NICE = -10
# recv flags that drop input without copying it (Linux, TCP); elsewhere it lands in a scratch buffer
DROP_FLAGS = getattr(socket, "MSG_TRUNC", 0) if sys.platform.startswith("linux") else 0


@dataclass(frozen=True)
class Limits:
    """The server's timeouts and limits (see the module constants for what each one is)."""
    max_header_bytes: int = MAX_HEADER_BYTES
    header_timeout: float = HEADER_TIMEOUT
    body_prefetch: int = BODY_PREFETCH
    body_grace: float = BODY_GRACE
    min_body_rate: int = MIN_BODY_RATE
    idle_timeout: float = IDLE_TIMEOUT
    linger_seconds: float = LINGER_SECONDS
    drain_burst: int = DRAIN_BURST
    drains_per_turn: int = DRAINS_PER_TURN
    shed_delay: float = SHED_DELAY
    shed_burst: int = SHED_BURST
    shed_rate: float = SHED_RATE
    light_threads: int = LIGHT_THREADS
    light_queue: int = LIGHT_QUEUE
    accept_burst: int = ACCEPT_BURST
    max_parked: int = MAX_PARKED
    keep_alive_limit: int = KEEP_ALIVE_LIMIT
    sweep_interval: float = SWEEP_INTERVAL
    selector_nice: int = SELECTOR_NICE
    drop_flags: int = DROP_FLAGS
