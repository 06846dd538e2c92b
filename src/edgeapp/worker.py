"""The accelerator worker: ONE process that owns every Paddle Lite predictor.

    HTTP process (WorkerAccelerator)                        worker (python -m edgeapp.worker)
    request thread: tensor -> free slot (shared memory) --job-->  loop: slot -> predictor -> slot
                    waits, with a timeout          <--done--
    reader thread:  replies; worker death -> errors for in-flight jobs, then a restart

Why a process: predictor.run() holds the GIL for the whole inference, and a native crash or hang
must not take the HTTP server with it (DESIGN.md). Slots are preallocated in one memfd: their
count is the queue bound, so a full queue is an immediate Busy, never an unbounded wait.
"""
import argparse
import json
import logging
import math
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle

import numpy as np

from edgeapp.accelerator import Accelerator, check_shape
from edgeapp.errors import AcceleratorFailed, Busy, Internal, Timeout, UnknownModel
from edgeapp.memory import tame_malloc

log = logging.getLogger("edgeapp.worker")

HEADER = 64          # per slot: byte 0 is the "cancelled" flag the worker checks before running
PAGE = 4096


class WorkerFailed(Exception):
    """The worker could not start (e.g. the runtime self-check refused)."""


class ModelCrashed(Exception):
    """The worker died while loading one model: Paddle Lite aborts on a corrupt .nb file."""

    def __init__(self, mid, code):
        super().__init__("model %d crashed the worker (exit code %s)" % (mid, code))
        self.mid, self.code = mid, code


class Layout:
    """Where a slot's header, inputs and outputs sit in the shared buffer."""

    def __init__(self, slots, in_bytes, out_bytes):
        self.slots = slots
        self.in_bytes = in_bytes
        self.out_bytes = out_bytes
        self.slot_size = _round_up(HEADER + in_bytes + out_bytes, PAGE)
        self.total = self.slot_size * slots

    def header(self, slot):
        return slot * self.slot_size

    def inputs(self, slot):
        return slot * self.slot_size + HEADER

    def outputs(self, slot):
        return slot * self.slot_size + HEADER + self.in_bytes

    def args(self):
        return (self.slots, self.in_bytes, self.out_bytes)


def write_arrays(buf, offset, limit, arrays):
    """Copy float32 arrays one after another into buf; returns their shapes."""
    shapes, pos = [], offset
    for a in arrays:
        a = np.asarray(a, dtype=np.float32)
        if pos + a.nbytes > offset + limit:
            raise ValueError("%d bytes of tensors do not fit a %d-byte slot" % (pos - offset + a.nbytes, limit))
        np.ndarray(a.shape, np.float32, buffer=buf, offset=pos)[...] = a
        shapes.append(tuple(a.shape))
        pos += a.nbytes
    return shapes


def read_arrays(buf, offset, shapes, copy):
    out, pos = [], offset
    for shape in shapes:
        a = np.ndarray(shape, np.float32, buffer=buf, offset=pos)
        out.append(a.copy() if copy else a)
        pos += a.nbytes
    return out


class _Job:
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


CLAIM_SECONDS = 30.0  # a request's claim on a slot lapses after this (see WorkerAccelerator._room)


class WorkerAccelerator(Accelerator):
    """The HTTP process's handle on the worker: same run() as LocalAccelerator, plus lifecycle."""

    def __init__(self, bundles, slots=4, job_timeout=30.0, threads=None, start_timeout=600.0, model_dir=None,
                 excluded=None, hang_timeout=None, power_mode=None, queue_wait=0.0, cpus=None, spin_ms=0):
        """excluded: {mid: reason} for models the worker must not load (e.g. over the memory budget).
        hang_timeout: seconds without any reply while jobs are in flight before the watchdog kills
        the worker (default: job_timeout).
        queue_wait: seconds a job that finds every slot taken may wait for one, when jobs are
        shorter than that (a short model at high concurrency); otherwise it is Busy at once.
        cpus: the CPUs the worker runs on (a set; None: wherever the kernel puts it).
        spin_ms: after each job the worker polls for the next one this long before it sleeps
        (only worth it on CPUs of its own: elsewhere it takes CPU from the HTTP process)."""
        super().__init__()
        self._bundles = bundles
        self._excluded = dict(excluded or {})
        self._model_dir = model_dir or (os.path.dirname(next(iter(bundles.values())).folder) if bundles else ".")
        self._threads = threads
        self._power_mode = power_mode
        self._cpus = sorted(cpus) if cpus else None
        self._spin_ms = int(spin_ms)
        self._job_timeout = float(job_timeout)
        self._hang_timeout = float(hang_timeout or job_timeout)
        self._last_progress = time.monotonic()  # last reply, or when the queue stopped being empty
        self._watchdog_kills = 0
        self._last_exit = None
        self._start_timeout = float(start_timeout)
        self._in_bytes = max([4 * int(np.prod(b.input_shape)) for b in bundles.values()] or [4])
        self._nslots = int(slots)
        self._layout = None
        self._mem = None
        self._memfd = None
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._queue_wait = float(queue_wait)
        self._send_lock = threading.Lock()
        self._free = list(range(self._nslots))
        # Requests admitted that have no slot yet (reading their body, decoding): request thread
        # -> when. They count against the free slots, so that a burst of uploads is refused at
        # the door, not after each was read and decoded (see wait_for_slot).
        self._claims = {}
        self._jobs = {}
        self._next_id = 0
        self._proc = None
        self._conn = None
        self._state = "stopped"
        self._stopping = threading.Event()
        self._restarts = 0
        self._deaths = []            # monotonic times of recent deaths, for the back-off
        self._status = {}
        self._service_ms = None      # moving average of the worker's time per job
        self._model_ms = {}          # the same per model
        self._reader = None
        self._reload_lock = threading.Lock()
        self._reloaded = None        # (Event, reply) while a reload waits for the worker
        self._reloading = False

    # -- lifecycle --------------------------------------------------------------------------
    def start(self):
        self._state = "starting"
        self._start_worker()
        self._reader = threading.Thread(target=self._read_loop, name="accelerator-reader", daemon=True)
        self._reader.start()
        threading.Thread(target=self._watchdog, name="accelerator-watchdog", daemon=True).start()

    def stop(self):
        self._stopping.set()
        self._state = "stopped"
        conn, proc = self._conn, self._proc
        if conn is not None:
            try:
                with self._send_lock:
                    conn.send(("stop",))
            except (OSError, ValueError):
                pass
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if conn is not None:
            conn.close()
        self._fail_all("the server is shutting down")

    @property
    def shared_bytes(self):
        """Size of the preallocated slots (all of them): a term of the memory formula."""
        return self._layout.total if self._layout is not None else 0

    @property
    def pid(self):
        return self._proc.pid if self._proc is not None and self._state != "stopped" else None

    def _spawn(self):
        """Start a worker and wait until it has loaded and warmed every model."""
        parent_sock, child_sock = socket.socketpair()
        env = _child_env(self._threads)
        cmd = [sys.executable, "-m", "edgeapp.worker", "--fd", str(child_sock.fileno()),
               "--parent", str(os.getpid()), "--model-dir", self._model_dir]
        if self._threads:
            cmd += ["--threads", str(self._threads)]
        if self._power_mode:
            cmd += ["--power-mode", self._power_mode]
        if self._cpus:
            cmd += ["--cpus", ",".join(str(c) for c in self._cpus)]
        if self._spin_ms:
            cmd += ["--spin-ms", str(self._spin_ms)]
        if self._excluded:
            cmd += ["--skip", ",".join(str(m) for m in sorted(self._excluded))]
        proc = subprocess.Popen(cmd, pass_fds=(child_sock.fileno(),), env=env, stdin=subprocess.DEVNULL)
        child_sock.close()
        conn = Connection(parent_sock.detach())
        try:
            end = time.monotonic() + self._start_timeout
            loading = None
            while True:
                if not conn.poll(max(0.0, end - time.monotonic())):
                    raise WorkerFailed("the accelerator worker did not become ready within %.0f s"
                                       % self._start_timeout)
                try:
                    msg = conn.recv()
                except EOFError:
                    code = proc.wait()
                    if loading is not None:
                        raise ModelCrashed(loading, code)
                    raise WorkerFailed("the accelerator worker exited (code %s) before it was ready" % code)
                if msg[0] != "loading":
                    break
                loading = msg[1]
            if msg[0] == "fatal":
                raise WorkerFailed(msg[1])
            _, pid, status, out_bytes = msg
            if self._layout is None:
                self._layout = Layout(self._nslots, self._in_bytes, max(out_bytes, 4))
                self._memfd = os.memfd_create("edgeapp-slots")
                os.ftruncate(self._memfd, self._layout.total)
                self._mem = mmap.mmap(self._memfd, self._layout.total)
            elif out_bytes > self._layout.out_bytes:
                raise WorkerFailed("model outputs grew to %d bytes, slots hold %d" % (out_bytes, self._layout.out_bytes))
            conn.send(("attach",) + self._layout.args())
            send_handle(conn, self._memfd, pid)
        except BaseException:
            proc.kill()
            proc.wait()
            conn.close()
            raise
        self._proc, self._conn, self._status = proc, conn, status
        self._state = "ready"
        log.info("accelerator worker %d ready: %d slots of %.1f MB", pid, self._nslots,
                 self._layout.slot_size / 1048576.0)

    def _start_worker(self):
        """_spawn(), leaving out every model whose file makes Paddle Lite abort the worker."""
        while True:
            try:
                return self._spawn()
            except ModelCrashed as e:
                why = ("loading its model file crashed Paddle Lite (worker exit code %s): the file is "
                       "corrupt or was built for another target or version; rebuild it (make models)" % e.code)
                log.error("model %d: %s. Starting without it.", e.mid, why)
                self._excluded[e.mid] = why

    # -- reloading models while serving -------------------------------------------------------
    def reload(self, bundles):
        """Bring the running worker to `bundles`: load new or changed ones, drop removed ones,
        between jobs — nothing in flight is restarted or lost. Returns what changed:
        {"added": [...], "replaced": [...], "removed": [...], "failed": {mid: reason}}.

        Each new or changed model file is first loaded in a short-lived probe process, because
        Paddle Lite aborts the process that loads a corrupt file. (Peak memory while reloading:
        the worker plus the largest new model.)
        """
        with self._reload_lock:
            old = self._bundles
            changed = sorted(mid for mid, b in bundles.items()
                             if mid not in old or fingerprint(b) != fingerprint(old[mid]))
            removed = sorted(mid for mid in old if mid not in bundles)
            failed = {}
            for mid in changed:
                why = self._unfit(bundles[mid]) or self._probe(bundles[mid])
                if why:
                    failed[mid] = why
            load = [mid for mid in changed if mid not in failed]
            reply = self._ask_worker(("reload", load, removed + sorted(failed)))
            status, out_bytes = reply[2], reply[3]
            for mid in load:
                if out_bytes.get(mid, 0) > self._layout.out_bytes:
                    failed[mid] = ("its outputs (%d bytes) do not fit the shared-memory slots (%d bytes); "
                                   "restart the service to load it" % (out_bytes[mid], self._layout.out_bytes))
                    self._ask_worker(("reload", [], [mid]))
            self._bundles = dict(bundles)
            for mid in removed:
                self._excluded.pop(mid, None)
            for mid in changed:
                self._excluded.pop(mid, None)
            self._excluded.update(failed)
            self._status = {mid: st for mid, st in status.items() if mid not in failed}
            done = {"added": [m for m in load if m not in old and m not in failed],
                    "replaced": [m for m in load if m in old and m not in failed],
                    "removed": removed, "failed": failed}
            log.info("models reloaded: %s", done)
            return done

    def _unfit(self, b):
        need = 4 * int(np.prod(b.input_shape))
        if need > self._in_bytes:
            return ("its input tensor (%d bytes) is larger than the shared-memory slots (%d bytes); "
                    "restart the service to load it" % (need, self._in_bytes))
        return None

    def _probe(self, b):
        """Load and warm one bundle in a throwaway process; None if it works, else why not."""
        cmd = [sys.executable, "-m", "edgeapp.worker", "--probe", "--parent", str(os.getpid()),
               "--model-dir", os.path.dirname(b.folder), "--only", str(b.id)]
        try:
            p = subprocess.run(cmd, env=_child_env(self._threads), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=self._start_timeout)
        except subprocess.TimeoutExpired:
            return "loading it took longer than %.0f s" % self._start_timeout
        if p.returncode != 0:
            why = p.stdout.decode("utf-8", "replace").strip()
            return why or ("loading its model file crashed Paddle Lite (exit code %s): the file is corrupt "
                           "or was built for another target or version" % p.returncode)
        return None

    def _ask_worker(self, msg):
        """Send a control message; wait for the worker's reply (the reader thread hands it over)."""
        event = threading.Event()
        self._reloaded = (event, None)
        self._reloading = True  # a long load is not a hang
        try:
            with self._send_lock:
                self._conn.send(msg)
            if not event.wait(self._start_timeout):
                raise WorkerFailed("the worker did not finish reloading within %.0f s" % self._start_timeout)
            return self._reloaded[1]
        finally:
            self._reloading = False
            self._last_progress = time.monotonic()

    # -- the request side -------------------------------------------------------------------
    def run(self, mid, inputs, deadline=None, timing=None):
        if self._state != "ready":
            raise Busy("the accelerator is %s; retry in a few seconds" % self._state, retry_after=5)
        st = self._status.get(mid)
        if not st or not st.get("ready") or mid in self._excluded:
            raise UnknownModel("model %d is not loaded on the accelerator" % mid)
        check_shape(self._bundles[mid], inputs[0].shape)
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise Timeout("the request's deadline passed before model %d was queued" % mid)
        with self._lock:
            if not self._wait_for_slot(deadline):
                raise Busy("the accelerator queue is full (%d jobs); retry later" % self._nslots,
                           retry_after=self._retry_after())
            self._claims.pop(threading.get_ident(), None)  # the claim becomes the slot
            slot = self._free.pop()
            if not self._jobs:
                self._last_progress = time.monotonic()  # the watchdog's clock starts with the first job
            self._next_id += 1
            job = _Job(self._next_id, slot, mid)
            self._jobs[job.id] = job
        lay, mem = self._layout, self._mem
        try:
            mem[lay.header(slot)] = 0
            shapes = write_arrays(mem, lay.inputs(slot), lay.in_bytes, inputs)
            with self._send_lock:
                self._conn.send(("job", job.id, slot, mid, shapes, deadline))
        except (OSError, ValueError) as e:
            self._finish(job, AcceleratorFailed("could not hand the job to the accelerator: %s" % e))
            raise job.error
        wait = self._job_timeout if deadline is None else min(self._job_timeout, deadline - now)
        if not job.done.wait(max(0.0, wait)):
            with self._lock:
                if not job.finished:
                    # The worker skips it if it has not started; the slot comes back with its reply.
                    job.abandoned = True
                    mem[lay.header(slot)] = 1
            if job.abandoned:
                raise Timeout("model %d did not answer within %.1f s" % (mid, wait))
        if job.error is not None:
            raise job.error
        outs = read_arrays(mem, lay.outputs(slot), job.shapes, copy=True)
        with self._lock:
            self._free.append(slot)
            self._slot_freed.notify()
        # Everything but the worker's own run time is waiting: queue, hand-over, copies.
        wall = (time.monotonic() - now) * 1000.0
        self._record_run(mid, job.run_ms, inputs[0].shape, timing, max(0.0, wall - job.run_ms))
        return outs

    def refuses_now(self, waiting=0):
        """True when a job now would be Busy even after the queue wait, behind `waiting` requests
        that have not claimed their room yet; never waits."""
        with self._lock:
            if self._room(None, waiting):
                return False
            return self._head_is_long()

    def wait_for_slot(self, deadline=None):
        """True when there is room for the calling request thread's job now (or within the queue
        wait): a free slot not claimed by another request. The room is then claimed for this
        thread until its job takes a slot (run) or it lets go (drop_claim). Without claims, every
        upload of a burst found the slots free, was read and decoded, and only then refused
        (measured: 64 clients x 4 MB, 10% of the 503s after 0.6 s)."""
        with self._lock:
            if not self._wait_for_slot(deadline):
                return False
            self._claims[threading.get_ident()] = time.monotonic()
            return True

    def drop_claim(self):
        """The calling request thread will not run a job after all (an error, or it is done)."""
        with self._lock:
            if self._claims.pop(threading.get_ident(), None) is not None:
                self._slot_freed.notify()

    def _room(self, me, waiting=0):
        """With self._lock held: free slots that other requests have not claimed (and `waiting`
        more are about to). A claim older than CLAIM_SECONDS no longer counts (its request is
        stuck on a slow upload)."""
        if len(self._free) > len(self._claims) + waiting:
            return True  # the common case: nothing to count
        now = time.monotonic()
        for ident in [k for k, t in self._claims.items() if now - t > CLAIM_SECONDS]:
            del self._claims[ident]
        return len(self._free) > sum(1 for ident in self._claims if ident != me) + waiting

    def _wait_for_slot(self, deadline):
        """With self._lock held. Waiting is worth it only when the job the worker runs now (the
        oldest in flight) is short: behind a 0.5 s model a request would wait in vain, and its
        client is better told at once (503 + Retry-After)."""
        me = threading.get_ident()
        end = time.monotonic() + self._queue_wait
        if deadline is not None:
            end = min(end, deadline)
        while not self._room(me):
            left = end - time.monotonic()
            if self._head_is_long() or left <= 0 or self._state != "ready":
                return False
            self._slot_freed.wait(left)
        return True

    def _head_is_long(self):
        """With self._lock held: is the oldest job in flight longer than the queue wait (or of a
        model not timed yet)? With none in flight, a slot taken is a requester copying its outputs
        (back in a moment); else the room is held by claims (requests still reading or decoding),
        whose jobs are judged by the recent ones."""
        head = next(iter(self._jobs.values()), None)
        if head is None:
            if self._queue_wait <= 0:
                return True
            if len(self._free) < self._nslots:
                return False  # a slot comes back as soon as its outputs are copied
            ms = self._service_ms
            return ms is None or ms > self._queue_wait * 1000.0
        ms = self._model_ms.get(head.mid)
        return ms is None or ms > self._queue_wait * 1000.0

    def _retry_after(self):
        busy = self._nslots - len(self._free)
        per_job = (self._service_ms or 1000.0) / 1000.0
        return max(1, int(math.ceil(busy * per_job)))

    def _finish(self, job, error=None, shapes=None, run_ms=0.0):
        """Record a job's outcome. Slots of failed or abandoned jobs are freed here; the
        requester frees the slot of a successful job after copying its outputs."""
        with self._lock:
            if job.finished:
                return
            job.finished = True
            job.error, job.shapes, job.run_ms = error, shapes, run_ms
            self._last_progress = time.monotonic()
            self._jobs.pop(job.id, None)
            if error is not None or job.abandoned:
                self._free.append(job.slot)
                self._slot_freed.notify()
        job.done.set()

    def _fail_all(self, why):
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self._finish(job, AcceleratorFailed(why))

    # -- the reader thread ------------------------------------------------------------------
    def _read_loop(self):
        while not self._stopping.is_set():
            try:
                msg = self._conn.recv()
            except (EOFError, OSError):
                if self._stopping.is_set():
                    return
                self._on_death()
                continue
            kind, job_id = msg[0], msg[1]
            if kind == "reloaded":
                event = self._reloaded[0]
                self._reloaded = (event, msg)
                event.set()
                continue
            job = self._jobs.get(job_id)
            if job is None:
                continue
            if kind == "done":
                _, _, shapes, ms = msg
                self._service_ms = ms if self._service_ms is None else 0.8 * self._service_ms + 0.2 * ms
                avg = self._model_ms.get(job.mid)
                self._model_ms[job.mid] = ms if avg is None else 0.8 * avg + 0.2 * ms
                self._finish(job, shapes=shapes, run_ms=ms)
            elif kind == "skipped":
                self._finish(job, Timeout("the request's deadline passed before the accelerator reached it"))
            else:
                self._finish(job, Internal("inference failed on model %d: %s" % (job.mid, msg[2])))

    def _watchdog(self):
        """Kill a worker that holds jobs and answers nothing (hung in native code, or stopped)."""
        while not self._stopping.wait(0.25):
            with self._lock:
                stuck = (bool(self._jobs) and not self._reloading
                         and time.monotonic() - self._last_progress > self._hang_timeout)
                if stuck:
                    self._last_progress = time.monotonic()  # one kill per hang
            if stuck and self._state == "ready" and self._proc is not None:
                log.error("accelerator worker %d answered nothing for %.1f s with jobs in flight: killing it",
                          self._proc.pid, self._hang_timeout)
                self._watchdog_kills += 1
                self._proc.kill()  # the reader thread sees the death and restarts it

    def _on_death(self):
        code = self._proc.wait()
        self._last_exit = code
        self._state = "restarting"
        self._restarts += 1
        log.error("accelerator worker %d died (exit code %s); restarting", self._proc.pid, code)
        self._fail_all("the accelerator worker died (exit code %s) during this request; "
                       "it is being restarted, retry in a few seconds" % code)
        self._conn.close()
        while not self._stopping.is_set():
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if now - t < 60.0] + [now]
            delay = min(30.0, 0.5 * 2 ** (len(self._deaths) - 1)) if len(self._deaths) > 1 else 0.0
            if self._stopping.wait(delay):
                return
            try:
                self._start_worker()
                return
            except Exception as e:
                log.error("accelerator worker failed to start: %s", e)

    # -- reporting --------------------------------------------------------------------------
    def model_status(self):
        st = dict(self._status)
        for mid, why in self._excluded.items():
            st[mid] = {"ready": False, "reason": why, "memory_mb": None, "warmup_ms": None}
        return st

    def status(self):
        with self._lock:
            in_flight = self._nslots - len(self._free)
        return {
            "state": self._state,
            "worker_pid": self.pid,
            "restarts": self._restarts,
            "queue_depth": in_flight,
            "queue_capacity": self._nslots,
            "service_ms": round(self._service_ms, 1) if self._service_ms is not None else None,
            "last_exit_code": self._last_exit,
            "deaths_last_minute": len([t for t in self._deaths if time.monotonic() - t < 60.0]),
            "watchdog_kills": self._watchdog_kills,
        }


def _round_up(n, k):
    return (n + k - 1) // k * k


def fingerprint(b):
    """What makes a bundle 'changed' for a reload: its bundle.json and its model file."""
    try:
        st = os.stat(b.model_path) if b.model_path else None
    except OSError:
        st = None
    return (json.dumps(b.spec, sort_keys=True), b.folder, st and (st.st_size, st.st_mtime_ns))


def threads_env(threads):
    """Environment for a process that runs Paddle Lite with `threads` threads: the x86 wheel has
    no set_threads(), its OpenMP runtime (libiomp5) takes them from here; ARM builds take them
    from MobileConfig.set_threads() as well."""
    return {"OMP_NUM_THREADS": str(int(threads))} if threads else {}


def _child_env(threads=None):
    """The environment of a worker or probe process: this package importable, whatever the cwd,
    and Paddle Lite's threads (threads_env)."""
    env = dict(os.environ)
    env.update(threads_env(threads))
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# -- the worker process ----------------------------------------------------------------------
def _die_with_parent(parent_pid):
    """Linux: the kernel kills us when the server process dies, so no worker is ever orphaned."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() != parent_pid:
        os._exit(0)


def worker_main(argv=None):
    p = argparse.ArgumentParser(prog="edgeapp.worker")
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--threads", type=int)
    p.add_argument("--power-mode", help="Paddle Lite ARM power mode: high, low, full, no_bind, ...")
    p.add_argument("--cpus", default="", help="comma-separated CPUs to run on (default: any)")
    p.add_argument("--spin-ms", type=float, default=0.0,
                   help="after each job, poll for the next one this long before sleeping")
    p.add_argument("--skip", default="", help="comma-separated model ids not to load")
    p.add_argument("--only", default="", help="comma-separated model ids to load (default: all)")
    p.add_argument("--probe", action="store_true",
                   help="load and warm the models, print why one failed, exit 0 if all are ready")
    p.add_argument("--fd", type=int)
    args = p.parse_args(argv)
    if args.probe:
        return _probe_main(args)
    _die_with_parent(args.parent)
    if args.cpus:  # before Paddle Lite starts its threads: they inherit it
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    tame_malloc(mmap_threshold=None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
    conn = Connection(args.fd)

    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles

    try:
        bundles = _select(load_bundles(args.model_dir, errors={}), args)
        accel = LocalAccelerator(bundles, threads=args.threads, power_mode=args.power_mode,
                                 on_load=lambda mid: conn.send(("loading", mid)))
    except Exception as e:  # the runtime self-check, or unreadable bundles
        conn.send(("fatal", str(e)))
        return 3
    conn.send(("ready", os.getpid(), accel.model_status(), max(accel.output_bytes.values() or [4])))
    msg = conn.recv()
    layout = Layout(*msg[1:])
    fd = recv_handle(conn)
    mem = mmap.mmap(fd, layout.total)
    spin = args.spin_ms / 1000.0
    while True:
        if spin:
            # A CPU that goes idle between jobs runs the next one slower (measured on x86: a 2 ms
            # model 1.1-1.45x slower after 2.5 ms asleep, 1.0-1.2x after 2.5 ms busy); a client
            # that sends one request at a time leaves such gaps.
            end = time.monotonic() + spin
            while not conn.poll(0) and time.monotonic() < end:
                pass
        try:
            msg = conn.recv()
        except EOFError:
            return 0
        if msg[0] == "stop":
            return 0
        if msg[0] == "reload":
            _reload(accel, args.model_dir, msg[1], msg[2], conn)
            continue
        _, job_id, slot, mid, shapes, deadline = msg
        if mem[layout.header(slot)] or (deadline is not None and time.monotonic() > deadline):
            conn.send(("skipped", job_id))
            continue
        try:
            outs = accel.run(mid, read_arrays(mem, layout.inputs(slot), shapes, copy=False))
            out_shapes = write_arrays(mem, layout.outputs(slot), layout.out_bytes, outs)
        except Exception as e:
            log.exception("job on model %d failed", mid)
            conn.send(("error", job_id, str(e)))
            continue
        conn.send(("done", job_id, out_shapes, accel.last_run_ms(mid)))


def _select(bundles, args):
    skip = {int(x) for x in args.skip.split(",") if x}
    only = {int(x) for x in args.only.split(",") if x}
    return {mid: b for mid, b in bundles.items() if mid not in skip and (not only or mid in only)}


def _reload(accel, model_dir, load, drop, conn):
    """Between jobs: (re)load some bundles from the model folder and drop others."""
    from edgeapp.bundle import load_bundles

    for mid in drop:
        accel.unload(mid)
    if load:
        bundles = load_bundles(model_dir, errors={})  # the server has reported unreadable ones
        for mid in load:
            if mid in bundles:
                accel.load(bundles[mid])
    conn.send(("reloaded", None, accel.model_status(), dict(accel.output_bytes)))


def _probe_main(args):
    """Load and warm some bundles in this throwaway process: exit 0 if every one is ready."""
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles

    _die_with_parent(args.parent)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    accel = LocalAccelerator(_select(load_bundles(args.model_dir, errors={}), args))
    failed = ["model %d: %s" % (mid, st["reason"]) for mid, st in sorted(accel.model_status().items())
              if not st["ready"]]
    print("; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(worker_main())
