"""The accelerator behind a worker process: WorkerAccelerator, the same run() as LocalAccelerator.

    HTTP process (WorkerAccelerator)                        worker (python -m edgeapp.worker_main)
    request thread: tensor -> slot (shared memory) --Run-->  loop: slot -> predictor -> slot
                    waits, with a timeout          <--Done--
    reader thread:  replies; worker death -> errors for in-flight jobs, then a restart

Why a process: predictor.run() holds the GIL for the whole inference, and a native crash or hang
must not take the HTTP server with it (DESIGN.md). Slots are preallocated in one memfd: their
count is the queue bound, so a full queue is a bounded wait in line or an immediate Busy, never
an unbounded wait.

Three rooms, one job each: edgeapp.slots admits jobs to the slots (reservations, the line, Busy);
edgeapp.worker_process owns the process (start, restart, watchdog, reload); edgeapp.protocol
is what the two processes say. This module joins them into the Accelerator interface.
"""
import os
import time

import numpy as np

from edgeapp.accelerator import Accelerator, check_shape
from edgeapp.admission import queue_full
from edgeapp.errors import AcceleratorFailed, Busy, Internal, Timeout, UnknownModel
from edgeapp.protocol import Done, Run, Skipped
from edgeapp.slots import SlotPool
from edgeapp.worker_process import LoadedModels, WorkerOptions, WorkerProcess


class WorkerAccelerator(Accelerator):
    """The HTTP process's handle on the worker: same run() as LocalAccelerator, plus lifecycle."""

    def __init__(self, bundles, slots=4, job_timeout=30.0, threads=None, start_timeout=600.0, model_dir=None,
                 excluded=None, hang_timeout=None, power_mode=None, queue_wait=0.0, cpus=None, spin_ms=0,
                 engine="paddlelite", ort_threads=0, slot_bytes=0):
        """excluded: {mid: reason} for models the worker must not load (e.g. over the memory budget).
        hang_timeout: seconds without any reply while jobs are in flight before the watchdog kills
        the worker (default: job_timeout).
        queue_wait: seconds of predicted wait a job that finds every slot taken may wait in line
        for one (a burst is served, slower); a longer predicted wait is Busy at once.
        cpus: the CPUs the worker runs on (a set; None: wherever the kernel puts it).
        spin_ms: after each job the worker polls for the next one this long before it sleeps
        (only worth it on CPUs of its own: elsewhere it takes CPU from the HTTP process).
        engine, ort_threads: the engine of bundles that name none, ONNX Runtime's threads.
        slot_bytes: room each slot keeps at least for inputs and for outputs (models pushed later
        may be larger than those it starts with)."""
        super().__init__()
        self._job_timeout = float(job_timeout)
        if model_dir is None:
            model_dir = os.path.dirname(next(iter(bundles.values())).folder) if bundles else "."
        self.options = WorkerOptions(model_dir, _child_env(threads), threads=threads, power_mode=power_mode,
                                     cpus=cpus, spin_ms=spin_ms, start_timeout=start_timeout,
                                     hang_timeout=hang_timeout or job_timeout, engine=engine,
                                     ort_threads=ort_threads)
        in_bytes = max([4 * int(np.prod(b.input_shape)) for b in bundles.values()] + [4, int(slot_bytes)])
        self._pool = SlotPool(slots, queue_wait, ready=lambda: self._process.state == "ready")
        self._process = WorkerProcess(LoadedModels(bundles, excluded), self.options, slots, in_bytes, slot_bytes,
                                      on_reply=self._on_reply, on_death=self._fail_all,
                                      busy_since=self._pool.busy_since)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self):
        """Start the worker: blocks until every model is loaded and warmed up."""
        self._process.start()

    def stop(self):
        self._process.stop()

    def reload(self, bundles):
        """WorkerProcess.reload(): load new or changed bundles, drop removed ones, while serving."""
        return self._process.reload(bundles)

    @property
    def bundles(self):
        return self._process.models.bundles

    @property
    def shared_bytes(self):
        """Size of the preallocated slots (all of them): a term of the memory formula."""
        memory = self._process.memory
        return memory.layout.total if memory is not None else 0

    def slot_room(self):
        """(input bytes, output bytes) each slot holds: the largest model this worker can take."""
        layout = self._process.memory.layout
        return layout.in_bytes, layout.out_bytes

    @property
    def pid(self):
        return self._process.pid

    # -- the request side -------------------------------------------------------------------
    def reserve(self, deadline=None, renew=None):
        return self._pool.reserve(deadline, renew)

    def release(self, reservation):
        if reservation is not None:
            self._pool.release(reservation)

    def refuses_now(self, waiting=0):
        return self._pool.refuses_now(waiting)

    def retry_after(self, waiting=0):
        return self._pool.retry_after(waiting)

    def run(self, mid, inputs, deadline=None, timing=None, reservation=None):
        self._check_runnable(mid, inputs)
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise Timeout("the request's deadline passed before model %d was queued" % mid)
        job = self._pool.take(mid, deadline, reservation)
        if job is None:
            raise queue_full(self._pool.capacity, self._pool.retry_after())
        self._hand_over(job, inputs, deadline)
        self._await(job, deadline, now)
        outs = self._process.memory.outputs(job.slot, job.shapes)
        self._pool.give_back(job)
        # Everything but the worker's own run time is waiting: queue, hand-over, copies.
        wall = (time.monotonic() - now) * 1000.0
        self.record_run(mid, job.run_ms, inputs[0].shape, timing, max(0.0, wall - job.run_ms))
        return outs

    def _check_runnable(self, mid, inputs):
        if self._process.state != "ready":
            raise Busy("the accelerator is %s; retry in a few seconds" % self._process.state, retry_after=5)
        models = self._process.models
        st = models.status.get(mid)
        if not st or not st.get("ready") or mid in models.excluded:
            raise UnknownModel("model %d is not loaded on the accelerator" % mid)
        check_shape(models.bundles[mid], inputs[0].shape)

    def _hand_over(self, job, inputs, deadline):
        """The job's tensors into its slot, and its message to the worker."""
        try:
            shapes = self._process.memory.put_inputs(job.slot, inputs)
            self._process.channel.send(Run(job.id, job.slot, job.mid, shapes, deadline))
        except (OSError, ValueError) as e:
            self._pool.finish(job, AcceleratorFailed("could not hand the job to the accelerator: %s" % e))
            raise job.error

    def _await(self, job, deadline, queued_at):
        """Wait for the job's reply; raises its error, or Timeout."""
        wait = self._job_timeout if deadline is None else min(self._job_timeout, deadline - queued_at)
        if not job.done.wait(max(0.0, wait)):
            # The worker skips it if it has not started; the slot comes back with its reply.
            if self._pool.abandon(job, self._process.memory.cancel):
                raise Timeout("model %d did not answer within %.1f s" % (job.mid, wait))
        if job.error is not None:
            raise job.error

    def _on_reply(self, msg):
        """A job's reply, on the reader thread."""
        job = self._pool.job(msg.job_id)
        if job is None:
            return
        if isinstance(msg, Done):
            self._pool.finish(job, shapes=msg.shapes, run_ms=msg.run_ms)
        elif isinstance(msg, Skipped):
            self._pool.finish(job, Timeout("the request's deadline passed before the accelerator reached it"))
        else:
            self._pool.finish(job, Internal("inference failed on model %d: %s" % (job.mid, msg.reason)))

    def _fail_all(self, why):
        self._pool.fail_all(lambda: AcceleratorFailed(why))

    # -- reporting --------------------------------------------------------------------------
    def model_status(self):
        return self._process.models.model_status()

    def status(self):
        p, service_ms = self._process, self._pool.service_ms
        return {
            "state": p.state,
            "worker_pid": p.pid,
            "restarts": p.restarts,
            "queue_depth": self._pool.in_use(),
            "queue_capacity": self._pool.capacity,
            "queue_line": self._pool.in_line(),
            "service_ms": round(service_ms, 1) if service_ms is not None else None,
            "last_exit_code": p.last_exit,
            "deaths_last_minute": p.deaths_last_minute(),
            "watchdog_kills": p.watchdog_kills,
            "last_start_s": p.last_start_s,
        }


def threads_env(threads):
    """Environment for a process that runs Paddle Lite with `threads` threads: the x86 wheel has
    no set_threads(), its OpenMP runtime (libiomp5) takes them from here; ARM builds take them
    from MobileConfig.set_threads() as well."""
    return {"OMP_NUM_THREADS": str(int(threads))} if threads else {}


def _child_env(threads=None):
    """The environment of a worker or probe process: ours (the same interpreter finds the same
    installed package) with Paddle Lite's threads (threads_env)."""
    env = dict(os.environ)
    env.update(threads_env(threads))
    return env
