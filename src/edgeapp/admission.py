"""Refusing inference before it costs anything: the accelerator's admission of a request.

Two doors, one answer (Busy, with Retry-After the predicted wait): shedder() for the HTTP
server's selector thread, from the request line alone, and shed_if_full() for a request thread
before it reads or decodes the body. These are the only places that ask the accelerator for room
(refuses_now, reserve); the reservation shed_if_full makes lives in the request's environ, goes
with the request's first job (Api.infer) and is released by envelope.EnvelopePlugin and
deepstack.DeepStack.run (release()) if that job did not take it.
"""
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
            return busy(accel, waiting)
        return None
    return shed


def shed_if_full(accel, environ, deadline):
    """Busy before decoding when every accelerator slot is taken or reserved by requests admitted
    before this one (after waiting in line, when the predicted wait allows): under overload a request
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


def busy(accel, waiting=0):
    """The Busy error for a full queue, behind `waiting` requests not counted by the accelerator."""
    return queue_full((accel.status() or {}).get("queue_capacity") or 0, accel.retry_after(waiting))


def queue_full(capacity, retry_after):
    """Busy: Retry-After is the predicted wait of a request arriving now."""
    return Busy("the accelerator queue is full (%d jobs) and the wait for room would be about %d s, longer "
                "than this board lets a request wait (queue_wait_ms); retry in %d s"
                % (capacity, retry_after, retry_after), retry_after=retry_after)
