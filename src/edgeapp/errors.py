"""The one error table of edgeapp: every failure a client can cause or see.

Each error carries its envelope code, its HTTP status and a message a person can act on.
The README's error table is written from this module; keep them in agreement.
"""


class EdgeError(Exception):
    code = 1000
    status = 500

    def __init__(self, msg):
        super().__init__(msg)
        self.msg = msg


class BadRequest(EdgeError):
    """A parameter, the JSON body or the base64 text is malformed."""
    code = 1001
    status = 400


class BadImage(EdgeError):
    """The bytes are not an image OpenCV can decode."""
    code = 1002
    status = 400


class UnknownModel(EdgeError):
    """No model has that id, or it failed to load."""
    code = 1003
    status = 404


class TooLarge(EdgeError):
    """The body or the image's pixel count is over the configured limit."""
    code = 1004
    status = 413


class Busy(EdgeError):
    """The accelerator queue is full (or the worker is restarting); retry_after is in seconds."""
    code = 1005
    status = 503

    def __init__(self, msg, retry_after=1):
        super().__init__(msg)
        self.retry_after = max(1, int(retry_after))


class Timeout(EdgeError):
    """The inference did not finish within the request timeout, or its deadline passed."""
    code = 1006
    status = 504


class AcceleratorFailed(EdgeError):
    """The accelerator worker died or refused the job."""
    code = 1007
    status = 503


class Unauthorized(EdgeError):
    """An access token is configured and the request did not carry it."""
    code = 1008
    status = 401


class NotFound(EdgeError):
    """No endpoint at that path."""
    code = 1009
    status = 404


class MethodNotAllowed(EdgeError):
    """The endpoint exists but not for that HTTP method."""
    code = 1010
    status = 405


class NotReady(EdgeError):
    """The service is starting (models loading and warming up) or no model is ready."""
    code = 1011
    status = 503


class RequestTimeout(EdgeError):
    """The client sent its request too slowly: headers or body did not arrive in time."""
    code = 1012
    status = 408


class FaceLimit(EdgeError):
    """The face database is full: the most users, or the most faces of one user, the settings allow."""
    code = 1013
    status = 409


class NoFace(EdgeError):
    """A picture sent to register or match has no face the face detectors find (recognize answers
    no prediction instead, as DeepStack does)."""
    code = 1014
    status = 400


class FaceDbUnavailable(EdgeError):
    """The face database cannot be opened or written (disk full, read-only, damaged, newer schema)."""
    code = 1015
    status = 503


class BadBundle(EdgeError):
    """A pushed bundle archive is refused: unsafe or malformed archive, bad bundle.json, a model
    file that does not load (POST /api/models)."""
    code = 1016
    status = 400


class BundleUnfit(EdgeError):
    """A pushed bundle is sound but not for this board: another target, over the memory budget,
    larger than the worker's slots."""
    code = 1017
    status = 422


class ModelConflict(EdgeError):
    """A pushed bundle's id, name or folder is another installed bundle's."""
    code = 1018
    status = 409


class PushDisabled(EdgeError):
    """Pushing or deleting models needs an access token, and the board has none configured."""
    code = 1019
    status = 403


class ModelDirFailed(EdgeError):
    """The model folder cannot be written (read-only, full)."""
    code = 1020
    status = 507


class Internal(EdgeError):
    """Anything unexpected; details go to the log, never to the client."""
    code = 1099
    status = 500
