"""The accelerator worker's life, owned by the HTTP process (as Frigate's detector process is).

WorkerProcess starts `python -m edgeapp.worker_main`, waits until it has loaded its models, hands
it the shared-memory slots, reads its replies on a thread of its own, restarts it (with back-off)
when it dies, kills it when it holds jobs and answers nothing (the watchdog), and carries reloads,
probing each new model file in a throwaway process first. What the worker loaded, and what is
known about each model, is LoadedModels'.

A restart does not warm up again the models whose figures the first start measured: that takes
seconds (PP-OCR det: ~2 s of its first run allocating ~550 MB on x86), and the first job of each
reaches the same memory, because every tensor has the model's one fixed input shape.
"""
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

import numpy as np

from edgeapp.protocol import (JOB_REPLIES, Channel, Fatal, Layout, Loading, Reload, Reloaded, SlotMemory, Stop,
                              digest, fingerprint)

log = logging.getLogger("edgeapp.worker")

WORKER_MODULE = "edgeapp.worker_main"


class WorkerFailed(Exception):
    """The worker could not start (e.g. the runtime self-check refused)."""


class ModelCrashed(Exception):
    """The worker died while loading one model: Paddle Lite aborts on a corrupt .nb file."""

    def __init__(self, mid, code):
        super().__init__("model %d crashed the worker (exit code %s)" % (mid, code))
        self.mid, self.code = mid, code


class WorkerOptions:
    """How the worker is started and watched.

    env: its environment. start_timeout: seconds for loading every model. hang_timeout: seconds
    without any reply while jobs are in flight before the watchdog kills it. cpus: the CPUs it
    runs on (None: wherever the kernel puts it). spin_ms: after each job it polls for the next one
    this long before it sleeps. engine: the engine of the bundles that name none; threads,
    power_mode: Paddle Lite's; ort_threads: ONNX Runtime's (0: engines.ort_threads_default)."""

    def __init__(self, model_dir, env, threads=None, power_mode=None, cpus=None, spin_ms=0,
                 start_timeout=600.0, hang_timeout=30.0, engine="paddlelite", ort_threads=0):
        self.model_dir = model_dir
        self.env = env
        self.engine = engine
        self.ort_threads = int(ort_threads or 0)
        self.threads = threads
        self.power_mode = power_mode
        self.cpus = sorted(cpus) if cpus else None
        self.spin_ms = int(spin_ms)
        self.start_timeout = float(start_timeout)
        self.hang_timeout = float(hang_timeout)

    def worker_args(self):
        """The worker's command-line arguments for these options."""
        cmd = ["--model-dir", self.model_dir] + self.engine_args()
        if self.cpus:
            cmd += ["--cpus", ",".join(str(c) for c in self.cpus)]
        if self.spin_ms:
            cmd += ["--spin-ms", str(self.spin_ms)]
        return cmd

    def engine_args(self):
        """The arguments that say which engine runs a model, and how: the worker's, and a probe's."""
        cmd = ["--engine", self.engine]
        if self.ort_threads:
            cmd += ["--ort-threads", str(self.ort_threads)]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.power_mode:
            cmd += ["--power-mode", self.power_mode]
        return cmd


class LoadedModels:
    """The bundles the worker serves, the models it must not load (and why), their status as the
    worker reported it, and the warm-up figures known per model (kept for a restart)."""

    def __init__(self, bundles, excluded=None):
        self.bundles = dict(bundles)
        self.excluded = dict(excluded or {})  # mid -> why it is not loaded
        self.status = {}
        self._known = {}                      # mid -> (digest of its bundle, status after warm-up)
        self._cold = set()                    # models the running worker did not warm

    def spawn_args(self):
        """The worker's --only, --skip and --warmed arguments: it loads the bundles it was given
        (not whatever else the folder holds now), but not the excluded ones."""
        args = ["--only", ",".join(str(m) for m in sorted(self.bundles))]
        if self.excluded:
            args += ["--skip", ",".join(str(m) for m in sorted(self.excluded))]
        warmed = ["%d=%s" % (mid, d) for mid, (d, _) in sorted(self._known.items()) if mid not in self.excluded]
        if warmed:
            args += ["--warmed", ",".join(warmed)]
        return args

    def started(self, status, cold):
        """A worker is ready with `status`; it loaded the models `cold` without warming them."""
        self._cold = set(cold)
        self.status = self._with_known(status)
        self._remember(m for m in status if m not in self._cold)

    def reloaded(self, bundles, changed, removed, failed, status):
        """The worker now serves `bundles`: `changed` ones (re)loaded and warmed unless `failed`."""
        self.bundles = dict(bundles)
        for mid in removed + changed:
            self.excluded.pop(mid, None)
            self._known.pop(mid, None)
        self.excluded.update(failed)
        self._cold -= set(changed)
        self.status = {mid: st for mid, st in self._with_known(status).items() if mid not in failed}
        self._remember(m for m in changed if m not in failed)

    def model_status(self):
        st = dict(self.status)
        for mid, why in self.excluded.items():
            st[mid] = {"ready": False, "reason": why, "memory_mb": None, "warmup_ms": None}
        return st

    def _with_known(self, status):
        """The worker's status, with the measured figures of the models it did not warm."""
        return {mid: self._known[mid][1] if mid in self._cold and mid in self._known else st
                for mid, st in status.items()}

    def _remember(self, mids):
        for mid in mids:
            st = self.status.get(mid)
            if st and st.get("ready") and mid in self.bundles:
                self._known[mid] = (digest(self.bundles[mid]), st)


class _Backoff:
    """Deaths in the last minute, and how long to wait before the next start: none after one
    death, then 0.5 s doubling up to 30 s while the worker keeps dying."""

    def __init__(self):
        self._deaths = []

    def after_death(self):
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < 60.0] + [now]
        return min(30.0, 0.5 * 2 ** (len(self._deaths) - 1)) if len(self._deaths) > 1 else 0.0

    def last_minute(self):
        now = time.monotonic()
        return len([t for t in self._deaths if now - t < 60.0])


class WorkerProcess:
    """The worker process and everything about its life.

    on_reply(msg): a job's reply (protocol.Done, Skipped or Failed), on the reader thread.
    on_death(why): the worker is gone; every job in flight must fail with why.
    busy_since(): since when jobs have been in flight (None: none are), for the watchdog.
    """

    def __init__(self, models, options, slots, in_bytes, out_bytes, on_reply, on_death, busy_since):
        self.models = models
        self.options = options
        self._layout_args = (int(slots), int(in_bytes), int(out_bytes))  # out_bytes: at least
        self._on_reply, self._on_death, self._busy_since = on_reply, on_death, busy_since
        self.memory = None           # SlotMemory, sized at the first start
        self.channel = None
        self.state = "stopped"
        self.restarts = 0
        self.last_exit = None
        self.watchdog_kills = 0
        self.last_start_s = None     # how long the last (re)start took, spawn to ready
        self._proc = None
        self._backoff = _Backoff()
        self._stopping = threading.Event()
        self._last_heard = time.monotonic()
        self._answers = queue.Queue()
        self._asking = False         # a reload is under way: a long load is not a hang
        self._reload_lock = threading.Lock()

    @property
    def pid(self):
        return self._proc.pid if self._proc is not None and self.state != "stopped" else None

    def deaths_last_minute(self):
        return self._backoff.last_minute()

    # -- start and stop ----------------------------------------------------------------------
    def start(self):
        """Start the worker (blocks until every model is loaded), then its reader and watchdog."""
        self.state = "starting"
        self._start_worker()
        threading.Thread(target=self._read_loop, name="accelerator-reader", daemon=True).start()
        threading.Thread(target=self._watchdog, name="accelerator-watchdog", daemon=True).start()

    def stop(self):
        self._stopping.set()
        self.state = "stopped"
        chan, proc = self.channel, self._proc
        if chan is not None:
            try:
                chan.send(Stop())
            except (OSError, ValueError):
                pass
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if chan is not None:
            chan.close()
        self._on_death("the server is shutting down")

    def _start_worker(self):
        """_spawn(), leaving out every model whose file makes Paddle Lite abort the worker."""
        while True:
            try:
                return self._spawn()
            except ModelCrashed as e:
                why = ("loading its model file crashed Paddle Lite (worker exit code %s): the file is "
                       "corrupt or was built for another target or version; rebuild it (make models)" % e.code)
                log.error("model %d: %s. Starting without it.", e.mid, why)
                self.models.excluded[e.mid] = why

    def _spawn(self):
        """Start a worker and wait until it has loaded (and warmed) its models."""
        t0 = time.monotonic()
        parent_sock, child_sock = socket.socketpair()
        args = ["--fd", str(child_sock.fileno())] + self.options.worker_args() + self.models.spawn_args()
        cmd = worker_command(*args)
        proc = subprocess.Popen(cmd, pass_fds=(child_sock.fileno(),),
                                env=self.options.env, stdin=subprocess.DEVNULL)
        child_sock.close()
        chan = Channel(Connection(parent_sock.detach()))
        try:
            ready = self._await_ready(proc, chan)
            self._attach(chan, ready)
        except BaseException:
            proc.kill()
            proc.wait()
            chan.close()
            raise
        self._proc, self.channel = proc, chan
        self.models.started(ready.status, ready.cold)
        self.last_start_s = round(time.monotonic() - t0, 2)
        self._last_heard = time.monotonic()
        self.state = "ready"
        log.info("accelerator worker %d ready in %.2f s (%d of its models not warmed again: known): "
                 "%d slots of %.1f MB", ready.pid, self.last_start_s, len(ready.cold), self.memory.layout.slots,
                 self.memory.layout.slot_size / 1048576.0)

    def _await_ready(self, proc, chan):
        """The worker's Ready message; which model it was loading if it died."""
        end = time.monotonic() + self.options.start_timeout
        loading = None
        while True:
            if not chan.poll(max(0.0, end - time.monotonic())):
                raise WorkerFailed("the accelerator worker did not become ready within %.0f s"
                                   % self.options.start_timeout)
            try:
                msg = chan.recv()
            except EOFError:
                code = proc.wait()
                if loading is not None:
                    raise ModelCrashed(loading, code)
                raise WorkerFailed("the accelerator worker exited (code %s) before it was ready" % code)
            if isinstance(msg, Fatal):
                raise WorkerFailed(msg.reason)
            if not isinstance(msg, Loading):
                return msg
            loading = msg.mid

    def _attach(self, chan, ready):
        """Hand the worker the slots (made at the first start, to fit the largest outputs)."""
        if self.memory is None:
            slots, in_bytes, out_bytes = self._layout_args
            self.memory = SlotMemory.create(Layout(slots, in_bytes, max(ready.out_bytes, out_bytes, 4)))
        elif ready.out_bytes > self.memory.layout.out_bytes:
            raise WorkerFailed("model outputs grew to %d bytes, slots hold %d"
                               % (ready.out_bytes, self.memory.layout.out_bytes))
        chan.send(self.memory.layout.attach_message())
        chan.send_fd(self.memory.fd, ready.pid)

    # -- the reader thread, the watchdog, restarts ------------------------------------------
    def _read_loop(self):
        while not self._stopping.is_set():
            try:
                msg = self.channel.recv()
            except (EOFError, OSError):
                if self._stopping.is_set():
                    return
                self._restart_after_death()
                continue
            except ValueError as e:  # not our protocol: a bug, which must not stop the replies
                log.error("accelerator worker sent %s", e)
                continue
            self._last_heard = time.monotonic()
            if isinstance(msg, JOB_REPLIES):
                self._on_reply(msg)
            elif isinstance(msg, Reloaded):
                self._answers.put(msg)

    def _watchdog(self):
        """Kill a worker that holds jobs and answers nothing (hung in native code, or stopped)."""
        while not self._stopping.wait(0.25):
            since = self._busy_since()
            if since is None or self._asking or self.state != "ready" or self._proc is None:
                continue
            if time.monotonic() - max(since, self._last_heard) > self.options.hang_timeout:
                self._last_heard = time.monotonic()  # one kill per hang
                log.error("accelerator worker %d answered nothing for %.1f s with jobs in flight: killing it",
                          self._proc.pid, self.options.hang_timeout)
                self.watchdog_kills += 1
                self._proc.kill()  # the reader thread sees the death and restarts it

    def _restart_after_death(self):
        code = self._proc.wait()
        self.last_exit = code
        self.state = "restarting"
        self.restarts += 1
        log.error("accelerator worker %d died (exit code %s); restarting", self._proc.pid, code)
        self._on_death("the accelerator worker died (exit code %s) during this request; "
                       "it is being restarted, retry in a few seconds" % code)
        self.channel.close()
        while not self._stopping.is_set():
            if self._stopping.wait(self._backoff.after_death()):
                return
            try:
                self._start_worker()
                return
            except Exception as e:
                log.error("accelerator worker failed to start: %s", e)

    # -- reloading models while serving ------------------------------------------------------
    def reload(self, bundles):
        """Bring the running worker to `bundles`: load new or changed ones, drop removed ones,
        between jobs — nothing in flight is restarted or lost. Returns what changed:
        {"added": [...], "replaced": [...], "removed": [...], "failed": {mid: reason}}.

        Each new or changed model file is first loaded in a short-lived probe process, because
        Paddle Lite aborts the process that loads a corrupt file. (Peak memory while reloading:
        the worker plus the largest new model.)
        """
        with self._reload_lock:
            old = self.models.bundles
            changed = sorted(mid for mid, b in bundles.items()
                             if mid not in old or fingerprint(b) != fingerprint(old[mid]))
            removed = sorted(mid for mid in old if mid not in bundles)
            failed = {}
            for mid in changed:
                why = self._unfit(bundles[mid]) or probe(bundles[mid], self.options)
                if why:
                    failed[mid] = why
            load = [mid for mid in changed if mid not in failed]
            reply = self.ask(Reload(load, removed + sorted(failed)))
            room = self.memory.layout.out_bytes
            for mid in load:
                if reply.out_bytes.get(mid, 0) > room:
                    failed[mid] = ("its outputs (%d bytes) do not fit the shared-memory slots (%d bytes); "
                                   "restart the service to load it" % (reply.out_bytes[mid], room))
                    self.ask(Reload([], [mid]))
            self.models.reloaded(bundles, changed, removed, failed, reply.status)
            done = {"added": [m for m in load if m not in old and m not in failed],
                    "replaced": [m for m in load if m in old and m not in failed],
                    "removed": removed, "failed": failed}
            log.info("models reloaded: %s", done)
            return done

    def _unfit(self, b):
        need = 4 * int(np.prod(b.input_shape))
        if need > self.memory.layout.in_bytes:
            return ("its input tensor (%d bytes) is larger than the shared-memory slots (%d bytes); "
                    "restart the service to load it" % (need, self.memory.layout.in_bytes))
        return None

    def ask(self, msg):
        """Send a control message; wait for the worker's answer (the reader thread hands it over)."""
        while not self._answers.empty():
            self._answers.get_nowait()  # a late answer to a question given up on
        self._asking = True
        try:
            self.channel.send(msg)
            return self._answers.get(timeout=self.options.start_timeout)
        except queue.Empty:
            raise WorkerFailed("the worker did not finish reloading within %.0f s" % self.options.start_timeout)
        finally:
            self._asking = False
            self._last_heard = time.monotonic()


def worker_command(*args):
    """`python -m edgeapp.worker_main` with args, as a child of this process."""
    return [sys.executable, "-m", WORKER_MODULE, "--parent", str(os.getpid())] + list(args)


def probe(b, options):
    """Load and warm one bundle in a throwaway process, on the worker's engine; None if it works,
    else why not."""
    return trial_load(b, options)[0]


def trial_load(b, options):
    """probe(), and what the probe measured: (None or why not, the model's status there, with its
    memory_mb after warm-up, or {})."""
    cmd = worker_command("--probe", "--model-dir", os.path.dirname(b.folder), "--only", str(b.id),
                         *options.engine_args())
    try:
        p = subprocess.run(cmd, env=options.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=options.start_timeout)
    except subprocess.TimeoutExpired:
        return "loading it took longer than %.0f s" % options.start_timeout, {}
    lines = p.stdout.decode("utf-8", "replace").split("\n")
    if p.returncode != 0:
        why = lines[0].strip()
        return why or ("loading its model file crashed Paddle Lite (exit code %s): the file is corrupt "
                       "or was built for another target or version" % p.returncode), {}
    try:
        status = json.loads(lines[1]).get(str(b.id), {})
    except (IndexError, ValueError, AttributeError):
        status = {}
    return None, status
