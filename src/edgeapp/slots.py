"""Admission to the accelerator's queue: a fixed number of slots, reservations, jobs in flight.

The slot count is the queue bound: a request that finds every slot taken (or reserved by requests
admitted before it) is refused at once as Busy, or waits a little when the jobs ahead are short.
Nothing here knows about processes or shared memory: a slot is a number, handed to a job.

    request admitted  --reserve()-->  Reservation (counts against the free slots)
    its first job     --take()----->  Job on a slot (the reservation is spent)
    reply arrives     --finish()--->  the requester copies the outputs, then give_back()
"""
import math
import threading
import time

RESERVATION_SECONDS = 30.0  # a reservation lapses after this: its request is stuck on a slow upload


class Reservation:
    """Room for one request's job in the pool, from its admission until that job takes a slot
    (or the request lets go: SlotPool.release). Without it, every upload of a burst found the slots
    free, was read and decoded, and only then refused (measured: 64 clients x 4 MB, 10% of the 503s
    after 0.6 s). An in-process accelerator hands out reservations that hold nothing."""
    __slots__ = ("since",)  # when it was made or last renewed

    def __init__(self):
        self.since = time.monotonic()


class Job:
    """One run of one model in one slot, from take() to its reply."""
    __slots__ = ("id", "slot", "mid", "done", "finished", "abandoned", "error", "shapes", "run_ms")

    def __init__(self, job_id, slot, mid):
        self.id = job_id
        self.slot = slot
        self.mid = mid
        self.done = threading.Event()
        self.finished = False
        self.abandoned = False
        self.error = None
        self.shapes = None
        self.run_ms = 0.0


class SlotPool:
    """`slots` slots, the reservations of admitted requests, and the jobs that hold slots.

    queue_wait: seconds a job that finds no room may wait for it, when the jobs ahead are shorter
    than that (a short model at high concurrency); otherwise it is refused at once.
    ready(): False while the worker is down: nobody waits for room then.
    """

    def __init__(self, slots, queue_wait=0.0, ready=lambda: True):
        self.capacity = int(slots)
        self._queue_wait = float(queue_wait)
        self._ready = ready
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._free = list(range(self.capacity))
        self._reserved = set()      # Reservations that hold room
        self._jobs = {}             # job id -> Job, oldest first
        self._next_id = 0
        self._busy_since = None     # when the jobs in flight stopped being none
        self.service_ms = None      # moving average of the worker's time per job
        self._model_ms = {}         # the same per model

    # -- admission ---------------------------------------------------------------------------
    def reserve(self, deadline=None, renew=None):
        """A Reservation when there is room for one more request's job now (or within the queue
        wait), else None. renew: this request's earlier reservation, which is kept (and does not
        count against itself) instead of a second one being made."""
        with self._lock:
            if not self._wait_for_room(deadline, renew):
                return None
            r = renew if renew is not None else Reservation()
            r.since = time.monotonic()
            self._reserved.add(r)
            return r

    def release(self, reservation):
        """The request will not run a job after all (an error, or it is done): its room is free."""
        with self._lock:
            if reservation in self._reserved:
                self._reserved.discard(reservation)
                self._slot_freed.notify()

    def refuses_now(self, waiting=0):
        """True when a job now would be refused even after the queue wait, behind `waiting`
        requests that have not reserved their room yet; never waits."""
        with self._lock:
            if self._room(None, waiting):
                return False
            return self._head_is_long()

    # -- jobs --------------------------------------------------------------------------------
    def take(self, mid, deadline=None, reservation=None):
        """A Job on a free slot for model `mid` (spending `reservation`), or None: no room."""
        with self._lock:
            if not self._wait_for_room(deadline, reservation):
                return None
            self._reserved.discard(reservation)  # the reservation becomes the slot
            if not self._jobs:
                self._busy_since = time.monotonic()
            self._next_id += 1
            job = Job(self._next_id, self._free.pop(), mid)
            self._jobs[job.id] = job
            return job

    def job(self, job_id):
        return self._jobs.get(job_id)

    def finish(self, job, error=None, shapes=None, run_ms=None):
        """Record a job's outcome (run_ms: it ran, in that time). The slot of a failed or abandoned
        job is free at once; the requester gives back the slot of a successful one (give_back)
        after copying its outputs."""
        with self._lock:
            if job.finished:
                return
            job.finished = True
            job.error, job.shapes, job.run_ms = error, shapes, run_ms or 0.0
            if run_ms is not None:
                self._time(job.mid, run_ms)
            self._jobs.pop(job.id, None)
            if not self._jobs:
                self._busy_since = None
            if error is not None or job.abandoned:
                self._free.append(job.slot)
                self._slot_freed.notify()
        job.done.set()

    def abandon(self, job, cancel):
        """The requester gives up waiting: True if the job had not finished, and then cancel(slot)
        runs under the lock, before the slot can be anyone else's (its reply frees it)."""
        with self._lock:
            if job.finished:
                return False
            job.abandoned = True
            cancel(job.slot)
            return True

    def give_back(self, job):
        with self._lock:
            self._free.append(job.slot)
            self._slot_freed.notify()

    def fail_all(self, error):
        """Every job in flight fails with error() (the worker is gone)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self.finish(job, error())

    # -- figures -----------------------------------------------------------------------------
    def in_use(self):
        """Slots taken by jobs (in flight, or whose outputs are being copied)."""
        with self._lock:
            return self.capacity - len(self._free)

    def busy_since(self):
        """When the jobs now in flight started being in flight (None: none are)."""
        return self._busy_since

    def retry_after(self):
        """Seconds until the slots taken now are likely free again."""
        per_job = (self.service_ms or 1000.0) / 1000.0
        return max(1, int(math.ceil(self.in_use() * per_job)))

    # -- with the lock held ------------------------------------------------------------------
    def _time(self, mid, ms):
        self.service_ms = ms if self.service_ms is None else 0.8 * self.service_ms + 0.2 * ms
        avg = self._model_ms.get(mid)
        self._model_ms[mid] = ms if avg is None else 0.8 * avg + 0.2 * ms

    def _room(self, mine, waiting=0):
        """Free slots that other requests have not reserved (and `waiting` more are about to).
        A reservation older than RESERVATION_SECONDS no longer counts (its request is stuck on a slow
        upload)."""
        if len(self._free) > len(self._reserved) + waiting:
            return True  # the common case: nothing to count
        now = time.monotonic()
        self._reserved -= {r for r in self._reserved if now - r.since > RESERVATION_SECONDS}
        return len(self._free) > sum(1 for r in self._reserved if r is not mine) + waiting

    def _wait_for_room(self, deadline, mine):
        """Waiting is worth it only when the job the worker runs now (the oldest in flight) is
        short: behind a 0.5 s model a request would wait in vain, and its client is better told at
        once (503 + Retry-After)."""
        end = time.monotonic() + self._queue_wait
        if deadline is not None:
            end = min(end, deadline)
        while not self._room(mine):
            left = end - time.monotonic()
            if self._head_is_long() or left <= 0 or not self._ready():
                return False
            self._slot_freed.wait(left)
        return True

    def _head_is_long(self):
        """Is the oldest job in flight longer than the queue wait (or of a model not timed yet)?
        With none in flight, a slot taken is a requester copying its outputs (back in a moment);
        else the room is held by reservations (requests still reading or decoding), whose jobs
        are judged by the recent ones."""
        head = next(iter(self._jobs.values()), None)
        if head is None:
            if self._queue_wait <= 0:
                return True
            if len(self._free) < self.capacity:
                return False  # a slot comes back as soon as its outputs are copied
            ms = self.service_ms
            return ms is None or ms > self._queue_wait * 1000.0
        ms = self._model_ms.get(head.mid)
        return ms is None or ms > self._queue_wait * 1000.0
