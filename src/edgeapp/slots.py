"""Admission to the accelerator's queue: a fixed number of slots, reservations, jobs in flight.

The slot count is the queue bound. A request that finds every slot taken (or reserved by requests
admitted before it) gets in line when its predicted wait (the measured times of the jobs ahead of
its place) is within the queue wait; else it is refused at once as Busy, told that predicted wait.
So a burst the worker can finish is served, slower; sustained overload is refused fast. Requests in
line hold a thread and what it has read (bounded by the HTTP threads), no slot, no tensor.
Nothing here knows about processes or shared memory: a slot is a number, handed to a job.

    request admitted  --reserve()-->  Reservation (counts against the free slots)
    its first job     --take()----->  Job on a slot (the reservation is spent)
    reply arrives     --finish()--->  the requester copies the outputs, then give_back()
"""
import math
import threading
import time

RESERVATION_SECONDS = 30.0  # a reservation lapses after this: its request is stuck on a slow upload
LINE_SLACK = 2.0            # a request in line waits at most this many times the queue wait
PERIOD_SECONDS = 10.0       # a measured period_ms older than this no longer predicts: the load changed


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

    queue_wait: seconds of predicted wait a request that finds no room may wait in line for it
    (never past its deadline); a longer one is refused at once.
    ready(): False while the worker is down: nobody waits for room then.
    """

    def __init__(self, slots, queue_wait=0.0, ready=lambda: True):
        self.capacity = int(slots)
        self._queue_wait = float(queue_wait)
        self._ready = ready
        self._lock = threading.Lock()
        self._room_freed = threading.Condition(self._lock)
        self._free = list(range(self.capacity))
        self._reserved = set()      # Reservations that hold room
        self._line = []             # requests waiting for room, first come first
        self._jobs = {}             # job id -> Job, oldest first
        self._next_id = 0
        self._busy_since = None     # when the jobs in flight stopped being none
        self.service_ms = None      # moving average of the worker's time per job
        self._model_ms = {}         # the same per model
        self.period_ms = None       # moving average of the time between room coming back, while in demand
        self._came_back_at = None   # when room last came back with requests in line
        self._period_at = None      # when period_ms was last measured

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
                self._room_came_back()

    def refuses_now(self, waiting=0):
        """True when a job now would be refused even after the queue wait, behind `waiting`
        requests that have not reserved their room yet; never waits."""
        with self._lock:
            place = len(self._line) + waiting
            if self._room(None, place):
                return False
            return not self._may_wait(place, time.monotonic() + self._queue_wait)

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
                self._room_came_back()
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
            self._room_came_back()

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

    def in_line(self):
        """Requests waiting in line for room."""
        with self._lock:
            return len(self._line)

    def busy_since(self):
        """When the jobs now in flight started being in flight (None: none are)."""
        return self._busy_since

    def retry_after(self, waiting=0):
        """Whole seconds until a request arriving now (behind `waiting` more) would find room: its
        predicted wait, at least 1."""
        with self._lock:
            wait = self._predicted_wait(len(self._line) + waiting)
        if wait is None:  # nothing timed yet: one second per slot taken
            wait = float(self.capacity)
        return max(1, int(math.ceil(wait)))

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
        """True when there is room for `mine` (its reservation, or None) now, or after waiting in
        line for it; False at once when the predicted wait is longer than the queue wait (or the
        deadline), or the worker is down. First come, first served: a newcomer does not take
        room that those in line are waiting for. Once in line a request is not sent away because
        the prediction moved (measured: a few in each overload then waited only to be refused);
        only when the worker goes down, its deadline passes or it waited LINE_SLACK times the
        queue wait."""
        now = time.monotonic()
        end = now + LINE_SLACK * self._queue_wait if deadline is None else min(now + LINE_SLACK * self._queue_wait,
                                                                               deadline)
        if mine is not None and mine in self._reserved:
            return True  # its room is held for it (the line waits for such room)
        place = len(self._line)
        if self._room(mine, place):
            return True
        if not self._may_wait(place, min(now + self._queue_wait, end)):
            return False
        me = object()
        self._line.append(me)
        try:
            while not self._room(mine, self._line.index(me)):
                left = end - time.monotonic()
                if left <= 0 or not self._ready():
                    return False
                self._room_freed.wait(left)
            return True
        finally:
            self._line.remove(me)
            self._room_freed.notify_all()  # those behind move up a place

    def _room_came_back(self):
        """A slot or a reservation is free: wake the line. While requests wait, the time between
        such moments is what one place in line really costs (inference, and the decoding and
        copying around it on a busy CPU): measured, it keeps the predicted wait honest."""
        now = time.monotonic()
        if not self._line:
            self._came_back_at = None
        elif self._came_back_at is None:
            self._came_back_at = now
        else:
            ms = (now - self._came_back_at) * 1000.0
            self._came_back_at = self._period_at = now
            self.period_ms = ms if self.period_ms is None else 0.8 * self.period_ms + 0.2 * ms
        self._room_freed.notify_all()

    def _may_wait(self, place, end):
        """May the request at `place` in line (0: first) wait for room until `end`? Not when the
        worker is down, the time is up, or the predicted wait goes past it (not measured yet:
        it may wait, bounded by `end`)."""
        left = end - time.monotonic()
        if left <= 0 or not self._ready():
            return False
        wait = self._predicted_wait(place)
        return wait is None or wait <= left

    def _predicted_wait(self, place):
        """Seconds until the request at `place` in line finds room: room comes back as the jobs in
        flight finish, oldest first (one worker runs them in turn), each taking its model's
        measured time; beyond them (room held by reservations, or more in line) each takes the
        recent average; and no place comes sooner than room has been coming back lately (period_ms).
        None until a job has been timed."""
        total = 0.0
        jobs = list(self._jobs.values())[:place + 1]
        for job in jobs:
            ms = self._model_ms.get(job.mid, self.service_ms)
            if ms is None:
                return None
            total += ms
        if len(jobs) < place + 1:
            if self.service_ms is None:
                return None
            total += (place + 1 - len(jobs)) * self.service_ms
        if self.period_ms is not None and time.monotonic() - self._period_at < PERIOD_SECONDS:
            total = max(total, (place + 1) * self.period_ms)
        return total / 1000.0
