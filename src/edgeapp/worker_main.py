"""The accelerator worker process itself: `python -m edgeapp.worker_main` (started by worker_process).

ONE loop owns every predictor, on either engine (a LocalAccelerator): it reads a job message, runs the
model on the tensors in the job's shared-memory slot, writes the outputs back into that slot and
replies. The protocol is edgeapp.protocol's; the process that starts, watches and restarts this
one is edgeapp.worker_process.
"""
import argparse
import json
import logging
import os
import signal
import sys
import time
from multiprocessing.connection import Connection

from edgeapp.memory import tame_malloc
from edgeapp.protocol import (Channel, Done, Failed, Fatal, Loading, Ready, Reload, Reloaded, Run, Skipped,
                              SlotMemory, Stop, digest)

log = logging.getLogger("edgeapp.worker")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="edgeapp.worker_main")
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--engine", default="paddlelite", help="engine of the bundles that name none")
    p.add_argument("--threads", type=int, help="Paddle Lite threads")
    p.add_argument("--power-mode", help="Paddle Lite ARM power mode: high, low, full, no_bind, ...")
    p.add_argument("--ort-threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: the default)")
    p.add_argument("--cpus", default="", help="comma-separated CPUs to run on (default: any)")
    p.add_argument("--spin-ms", type=float, default=0.0,
                   help="after each job, poll for the next one this long before sleeping")
    p.add_argument("--skip", default="", help="comma-separated model ids not to load")
    p.add_argument("--only", help="comma-separated model ids to load (default: every bundle in the folder)")
    p.add_argument("--warmed", default="",
                   help="comma-separated mid=digest of models the parent has warm-up figures for: such a "
                        "model, if its bundle still has that digest, is loaded and checked but not warmed")
    p.add_argument("--probe", action="store_true",
                   help="load and warm the models, print why one failed, exit 0 if all are ready")
    p.add_argument("--fd", type=int)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.probe:
        return probe_main(args)
    _become_worker(args)
    chan = Channel(Connection(args.fd))
    accel, cold = _load_models(args, chan)
    if accel is None:
        return 3
    chan.send(Ready(os.getpid(), accel.model_status(), max(accel.output_bytes.values() or [4]), cold))
    attach = chan.recv()  # the slots' Layout, then their memfd
    mem = SlotMemory.attach(attach, chan.recv_fd())
    return _serve(chan, accel, mem, args)


def _become_worker(args):
    """The process-wide settings of a worker, before Paddle Lite starts any thread."""
    _die_with_parent(args.parent)
    if args.cpus:  # before Paddle Lite starts its threads: they inherit it
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    tame_malloc(mmap_threshold=None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")


def _load_models(args, chan):
    """(LocalAccelerator with every selected model, [models not warmed]); (None, None) after
    telling the parent why nothing can be served."""
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles

    try:
        bundles = _select(load_bundles(args.model_dir, errors={}), args)
        cold = cold_models(bundles, args.warmed)
        accel = LocalAccelerator(bundles, engine_settings(args), cold=cold,
                                 on_load=lambda mid: chan.send(Loading(mid)))
    except Exception as e:  # the runtime self-check, or unreadable bundles
        chan.send(Fatal(str(e)))
        return None, None
    return accel, [mid for mid in cold if accel.model_status().get(mid, {}).get("ready")]


def engine_settings(args):
    """The engines' settings from the command line (after the CPUs are set: they count them)."""
    from edgeapp import engines

    cpus = [int(c) for c in args.cpus.split(",") if c]
    return engines.Settings(args.engine, args.threads, args.power_mode,
                            args.ort_threads or engines.ort_threads_default(cpus))


def cold_models(bundles, warmed):
    """The models not to warm up: those of `warmed` ("mid=digest,...") whose bundle is the same
    now (bundle.json and model file), so the parent's figures from their warm-up still hold."""
    known = dict(item.split("=", 1) for item in warmed.split(",") if item)
    return sorted(mid for mid, b in bundles.items() if known.get(str(mid)) == digest(b))


def _serve(chan, accel, mem, args):
    """The loop: one job at a time, in the order they came."""
    spin = args.spin_ms / 1000.0
    while True:
        if spin:
            _spin(chan, spin)
        try:
            msg = chan.recv()
        except EOFError:
            return 0
        if isinstance(msg, Stop):
            return 0
        if isinstance(msg, Reload):
            _reload(accel, args.model_dir, msg, chan)
        elif isinstance(msg, Run):
            chan.send(_run_job(accel, mem, msg))


def _spin(chan, seconds):
    """Poll for the next job a moment before sleeping in recv(). A CPU that goes idle between jobs
    runs the next one slower (measured on x86: a 2 ms model 1.1-1.45x slower after 2.5 ms asleep,
    1.0-1.2x after 2.5 ms busy); a client that sends one request at a time leaves such gaps."""
    end = time.monotonic() + seconds
    while not chan.poll(0) and time.monotonic() < end:
        pass


def _run_job(accel, mem, job):
    """The reply to one job; its outputs are in its slot when it is Done."""
    if mem.cancelled(job.slot) or (job.deadline is not None and time.monotonic() > job.deadline):
        return Skipped(job.job_id)
    try:
        outs = accel.run(job.mid, mem.inputs(job.slot, job.shapes))
        shapes = mem.put_outputs(job.slot, outs)
    except Exception as e:
        log.exception("job on model %d failed", job.mid)
        return Failed(job.job_id, str(e))
    return Done(job.job_id, shapes, accel.last_run_ms(job.mid))


def _reload(accel, model_dir, msg, chan):
    """Between jobs: (re)load some bundles from the model folder (warmed: they are new) and drop others."""
    from edgeapp.bundle import load_bundles

    for mid in msg.drop:
        accel.unload(mid)
    if msg.load:
        bundles = load_bundles(model_dir, errors={})  # the server has reported unreadable ones
        for mid in msg.load:
            if mid in bundles:
                accel.load(bundles[mid])
    chan.send(Reloaded(accel.model_status(), dict(accel.output_bytes)))


def _select(bundles, args):
    skip = {int(x) for x in args.skip.split(",") if x}
    only = None if args.only is None else {int(x) for x in args.only.split(",") if x}
    return {mid: b for mid, b in bundles.items() if mid not in skip and (only is None or mid in only)}


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


def probe_main(args):
    """Load and warm some bundles in this throwaway process: exit 0 if every one is ready. Prints
    why one failed (a line, empty if none did), then each model's status as JSON (a line)."""
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles

    _die_with_parent(args.parent)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    accel = LocalAccelerator(_select(load_bundles(args.model_dir, errors={}), args), engine_settings(args))
    failed = ["model %d: %s" % (mid, st["reason"]) for mid, st in sorted(accel.model_status().items())
              if not st["ready"]]
    print("; ".join(failed))  # the first line: why (trial_load reads it)
    figures = {str(mid): dict(st, output_bytes=accel.output_bytes.get(mid)) for mid, st in accel.model_status().items()}
    print(json.dumps(figures))  # the second: the figures
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
