"""What the HTTP process and the accelerator worker say to each other, and where tensors lie.

Two channels: named messages over one socket (Channel: each message a small named tuple, encoded
and decoded here and nowhere else), and the tensors themselves in shared-memory slots (SlotMemory,
laid out by Layout) that both processes map. A Run names its job and slot; the reply names the job.

    parent -> worker: Attach (then the memfd), Run, Reload, Stop
    worker -> parent: Loading, Fatal, Ready (before Attach); Done, Skipped, Failed (per job); Reloaded
"""
import collections
import hashlib
import json
import mmap
import os
import threading
from multiprocessing.reduction import recv_handle, send_handle

import numpy as np


# ---- the messages ------------------------------------------------------------------------------

def _message(name, fields, doc):
    cls = collections.namedtuple(name, fields)
    cls.__doc__ = doc
    return cls


Loading = _message("Loading", "mid",
                   "worker: about to load model `mid` (if it dies now, that model's file crashed it).")
Fatal = _message("Fatal", "reason", "worker: nothing can be served (the runtime self-check refused); it exits.")
Ready = _message("Ready", "pid status out_bytes cold",
                 "worker: every model loaded. status: model_status(); out_bytes: the largest outputs of a job; "
                 "cold: models loaded without warm-up (the parent named them --warmed: it has their figures).")
Attach = _message("Attach", "slots in_bytes out_bytes",
                  "parent: map the shared slots with this Layout; the memfd follows on the socket.")
Run = _message("Run", "job_id slot mid shapes deadline",
               "parent: run model `mid` on the tensors (of `shapes`) in `slot`, unless `deadline` passed.")
Done = _message("Done", "job_id shapes run_ms", "worker: the job's outputs (of `shapes`) are in its slot.")
Skipped = _message("Skipped", "job_id", "worker: the job was cancelled or its deadline passed before it ran.")
Failed = _message("Failed", "job_id reason", "worker: the runtime raised on this job.")
Reload = _message("Reload", "load drop", "parent: between jobs, (re)load the models `load` and forget `drop`.")
Reloaded = _message("Reloaded", "status out_bytes",
                    "worker: the reload is done; status and out_bytes per model as they are now.")
Stop = _message("Stop", "", "parent: exit.")

MESSAGES = {cls.__name__: cls for cls in (Loading, Fatal, Ready, Attach, Run, Done, Skipped, Failed, Reload,
                                          Reloaded, Stop)}
JOB_REPLIES = (Done, Skipped, Failed)


def encode(msg):
    """A message as it travels: its kind's name, then its fields (plain data: no class is pickled)."""
    return (type(msg).__name__,) + tuple(msg)


def decode(raw):
    try:
        return MESSAGES[raw[0]](*raw[1:])
    except (KeyError, TypeError, IndexError):
        raise ValueError("not an edgeapp worker message: %r" % (raw[:1],))


class Channel:
    """One end of the parent-worker socket (a multiprocessing Connection): messages in and out.
    send() may be called from any thread; recv() from one."""

    def __init__(self, conn):
        self._conn = conn
        self._send_lock = threading.Lock()

    def send(self, msg):
        with self._send_lock:
            self._conn.send(encode(msg))

    def recv(self):
        """The next message; EOFError when the other end is gone."""
        return decode(self._conn.recv())

    def poll(self, timeout=0.0):
        return self._conn.poll(timeout)

    def send_fd(self, fd, pid):
        with self._send_lock:
            send_handle(self._conn, fd, pid)

    def recv_fd(self):
        return recv_handle(self._conn)

    def close(self):
        self._conn.close()


# ---- which bundle is which -------------------------------------------------------------------

def fingerprint(b):
    """What makes a bundle 'changed' (for a reload, or a restart's warm-up): its bundle.json and
    its model files."""
    return (json.dumps(b.spec, sort_keys=True), b.folder,
            [(name, _file_stamp(path)) for name, path in sorted(b.model_files.items())])


def _file_stamp(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def digest(b):
    """fingerprint() in a few characters, for a command line."""
    return hashlib.sha1(repr(fingerprint(b)).encode("utf-8")).hexdigest()[:16]


# ---- the shared-memory slots -----------------------------------------------------------------

HEADER = 64          # per slot: byte 0 is the "cancelled" flag the worker checks before running
PAGE = 4096


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

    def attach_message(self):
        return Attach(self.slots, self.in_bytes, self.out_bytes)


class SlotMemory:
    """The slots of a Layout in one memfd, mapped by the parent (create) and by each worker (attach)."""

    def __init__(self, layout, fd, mem):
        self.layout, self.fd, self._mem = layout, fd, mem

    @classmethod
    def create(cls, layout):
        fd = os.memfd_create("edgeapp-slots")
        os.ftruncate(fd, layout.total)
        return cls(layout, fd, mmap.mmap(fd, layout.total))

    @classmethod
    def attach(cls, msg, fd):
        layout = Layout(msg.slots, msg.in_bytes, msg.out_bytes)
        return cls(layout, fd, mmap.mmap(fd, layout.total))

    def put_inputs(self, slot, arrays):
        """A job's tensors into its slot, its cancelled flag cleared; returns their shapes."""
        self._mem[self.layout.header(slot)] = 0
        return write_arrays(self._mem, self.layout.inputs(slot), self.layout.in_bytes, arrays)

    def inputs(self, slot, shapes):
        """The worker's view of a job's tensors (no copy)."""
        return read_arrays(self._mem, self.layout.inputs(slot), shapes, copy=False)

    def put_outputs(self, slot, arrays):
        return write_arrays(self._mem, self.layout.outputs(slot), self.layout.out_bytes, arrays)

    def outputs(self, slot, shapes):
        """A finished job's outputs, copied out: the slot is reused as soon as it is given back."""
        return read_arrays(self._mem, self.layout.outputs(slot), shapes, copy=True)

    def cancel(self, slot):
        self._mem[self.layout.header(slot)] = 1

    def cancelled(self, slot):
        return bool(self._mem[self.layout.header(slot)])


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


def _round_up(n, k):
    return (n + k - 1) // k * k
