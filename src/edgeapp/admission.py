"""Refusing inference before it costs anything: the accelerator's admission of a request.

Two doors, one answer (Busy, with a Retry-After from the queue's depth): shedder() for the HTTP
server's selector thread, from the request line alone, and shed_if_full() for a request thread
before it reads or decodes the body. These are the only places that ask the accelerator for room
(refuses_now, reserve); the reservation shed_if_full makes lives in the request's environ, goes
with the request's first job (Api.infer) and is released by envelope.EnvelopePlugin and
deepstack.DeepStack.run (release()) if that job did not take it.
"""
import math

from edgeapp.errors import Busy

RESERVATION = "edgeapp.reservation"  # the request's accel.reserve(), in its WSGI environ

INFERENCE_PATHS = (b"/api/model/service/", b"/v1/vision/")
# DeepStack routes under INFERENCE_PATHS that never use the accelerator: the face gallery's list
# and delete (a person asking to be forgotten is not refused because inference is busy).
NO_INFERENCE_PATHS = (b"/v1/vision/face/list", b"/v1/vision/face/delete")


def shedder(accel):
    """shed(method, target, waiting) for httpd.Server: the 503 an inference request gets at once,
    from its request line alone, when the accelerator queue is full (counting the `waiting`
    requests the server's threads have not started yet); else None. Never waits."""
    def shed(method, target, waiting=0):
        if (method == b"POST" and target.startswith(INFERENCE_PATHS) and not target.startswith(NO_INFERENCE_PATHS)
                and accel.refuses_now(waiting)):
            return busy(accel)
        return None
    return shed


def shed_if_full(accel, environ, deadline):
    """Busy before decoding when every accelerator slot is taken or reserved by requests admitted
    before this one (after a short wait for one when jobs are short): under overload a request
    would otherwise pay for its decoding and preprocessing only to be refused. On success the
    request holds a reservation (in environ; a second call renews it) until its first job takes
    a slot or release()."""
    reservation = accel.reserve(deadline, renew=environ.get(RESERVATION))
    if reservation is None:
        raise busy(accel)
    environ[RESERVATION] = reservation


def reservation(environ):
    """The request's reservation, for its first job (None: it has none, or a job took it)."""
    return environ.get(RESERVATION)


def release(accel, environ):
    """The request lets go of a reservation its job did not take (an error, or it is done)."""
    accel.release(environ.pop(RESERVATION, None))


def busy(accel):
    """The Busy error for a full queue: Retry-After is the time the queued jobs will take."""
    st = accel.status() or {}
    capacity, depth = st.get("queue_capacity") or 0, st.get("queue_depth") or 0
    per_job = (st.get("service_ms") or 1000.0) / 1000.0
    return Busy("the accelerator queue is full (%d jobs); retry later" % capacity,
                retry_after=max(1, int(math.ceil(depth * per_job))))
