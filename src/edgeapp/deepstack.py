"""DeepStack / CodeProject.AI compatible endpoints.

Home Assistant, Blue Iris, Frigate and Double Take all speak DeepStack's HTTP API, so a board that
speaks it drops into their set-ups unchanged. The same models and accelerator serve these routes
(DeepStack runs them through the Api it is given); only the request and answer shapes differ:

    POST /v1/vision/detection       multipart `image`, `min_confidence`, `api_key` -> predictions
    POST /v1/vision/face            the face model
    POST /v1/vision/custom/<name>   any bundle by name
    POST /v1/vision/custom/list     the bundle names
    GET  /v1/status/updateavailable

and the face recognition routes (/v1/vision/face/register, recognize, list, delete, match), in
deepstack_face.py, over this class's forms, api_key check and pictures.

Answers (AnswerPlugin): {"success": true, "predictions": [{"label", "confidence", "x_min", "y_min",
"x_max", "y_max"}], "duration": ms} or {"success": false, "error": "..."} with a 4xx/5xx status.
"""
import functools
import json
import logging
import time

import bottle
from bottle import request, response

from edgeapp import __version__, admission, parsing
from edgeapp.errors import BadRequest, EdgeError, UnknownModel

log = logging.getLogger("edgeapp.deepstack")

DEFAULT_MIN_CONFIDENCE = 0.4
# min_confidence=0 would return every candidate box: clamp it, so a client cannot flood itself.
MIN_CONFIDENCE_FLOOR = 0.05
FACE_MODEL = "face"
ROUTE = {"answer": "deepstack"}  # the route config AnswerPlugin wraps


class DeepStack:
    """The DeepStack routes over an edgeapp.api.Api: its engine, settings, accelerator and its
    decode and infer steps."""

    def __init__(self, api):
        self.api = api

    def routes(self):
        """(method, path, handler, route config) of every DeepStack route."""
        return [
            ("POST", "/v1/vision/detection", self.vision_detection, ROUTE),
            ("POST", "/v1/vision/face", self.vision_face, ROUTE),
            ("POST", "/v1/vision/custom/list", self.vision_custom_list, ROUTE),
            ("POST", "/v1/vision/custom/<name>", self.vision_custom, ROUTE),
            ("GET", "/v1/status/updateavailable", self.update_available, ROUTE),
        ]

    # ---- the handlers: each returns the answer's fields besides "success" ----

    def vision_detection(self):
        return self.detect(self.by_name(self.api.settings.deepstack_detection))

    def vision_face(self):
        return self.detect(self.by_name(FACE_MODEL))

    def vision_custom_list(self):
        fields, _ = self.read_form()
        self.check_api_key(field(fields, "api_key"))
        engine = self.api.engine
        return {"models": sorted(engine.bundles[mid].name for mid in engine.models)}

    def vision_custom(self, name):
        return self.detect(self.by_name(name))

    def update_available(self):
        return {"message": "edgeapp %s" % __version__, "version": __version__, "current": __version__,
                "latest": __version__, "updateAvailable": False}

    # ---- the steps ----

    def detect(self, mid):
        fields, files = self.read_form()
        self.check_api_key(field(fields, "api_key"))
        data = picture(files)
        floor = max(MIN_CONFIDENCE_FLOOR, min_confidence(field(fields, "min_confidence"), DEFAULT_MIN_CONFIDENCE))
        results = self.run(mid, data)
        return {"predictions": [_prediction(r) for r in results if r["score"] >= floor]}

    def by_name(self, name):
        """The id of the model named name (the bundle's name)."""
        for mid, b in self.api.engine.bundles.items():
            if b.name == name:
                return mid
        raise UnknownModel("no model named %r; see POST /v1/vision/custom/list" % name)

    def read_form(self):
        """(fields, files) of the request's form body, multipart or URL-encoded (no files then);
        ({}, {}) for none."""
        limit = self.api.settings.max_body_bytes
        parsing.check_length(limit)
        body = parsing.read_body(limit)
        if not body:
            return {}, {}
        if not request.content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
            raise BadRequest("send multipart/form-data with the picture in a part named 'image'")
        return parsing.form(body)

    def check_api_key(self, api_key):
        """DeepStack clients send the token as the api_key field; the usual headers work too."""
        token = self.api.settings.token
        if not token:
            return
        if api_key and parsing.same_token(api_key, token):
            return
        parsing.check_token(token)  # or the usual headers; raises Unauthorized

    def run(self, mid, data):
        """The results of model mid on the image bytes data, no image rendered."""
        return self.on_picture(mid, data, lambda decoded, until: self.api.infer(mid, decoded, False, until)["result"])

    def on_picture(self, mid, data, work):
        """work(decoded, until) on the image bytes data decoded for model mid (Api.decode: after
        the accelerator's admission), until being the request's deadline."""
        api = self.api
        api.check_model(mid)
        until = time.monotonic() + api.settings.request_timeout
        try:
            return work(api.decode(data, [mid], False, until), until)
        finally:
            admission.release(api.accel, request.environ)  # if its job did not take it


class AnswerPlugin:
    """DeepStack's answer shape around every route whose config has answer="deepstack": the
    handler's fields with success true and the duration in ms (as every DeepStack answer has), or
    success false with the error and its status. Always a JSON body with a Content-Length."""
    name = "deepstack"
    api = 2

    def apply(self, callback, route):
        if route.config.get("answer") != "deepstack":
            return callback

        @functools.wraps(callback)
        def wrapper(*args, **kwargs):
            t0 = time.monotonic()
            out, status = _outcome(callback, args, kwargs)
            if out["success"]:
                out["duration"] = int(round((time.monotonic() - t0) * 1000))
            response.status = status
            response.content_type = "application/json; charset=utf-8"
            return json.dumps(out).encode("utf-8")  # bytes: Content-Length, never chunked

        return wrapper


def _outcome(callback, args, kwargs):
    """(answer fields, status) of one call of a handler."""
    try:
        return dict({"success": True}, **callback(*args, **kwargs)), 200
    except EdgeError as e:
        log.info("%s %s -> %d: %s", request.method, request.path, e.status, e.msg)
        return {"success": False, "error": e.msg, "code": e.code}, e.status
    except bottle.HTTPResponse:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return {"success": False, "error": "internal error; see the server log"}, 500


def field(fields, name):
    """The first value of a form field, or None."""
    values = fields.get(name) or [None]
    return values[0]


def picture(files, name="image"):
    """The picture of a one-picture request: the file part `name`, or the form's only file."""
    data = files.get(name) or (next(iter(files.values())) if len(files) == 1 else None)
    if not data:
        raise BadRequest("send the picture as a multipart file part named %r" % name)
    return data


def min_confidence(text, default):
    """min_confidence, a number from 0 to 1; default when the field is absent or empty."""
    if text is None or str(text).strip() == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest("min_confidence must be a number from 0 to 1, got %r" % str(text)[:40])
    if not 0.0 <= value <= 1.0:
        raise BadRequest("min_confidence must be from 0 to 1, got %s" % value)
    return value


def box(x1, y1, x2, y2):
    """DeepStack's box fields: integer pixels."""
    return {"x_min": int(round(x1)), "y_min": int(round(y1)), "x_max": int(round(x2)), "y_max": int(round(y2))}


def _prediction(r):
    loc = r["location"]
    out = {"label": r["label"], "confidence": round(float(r["score"]), 4)}
    out.update(box(loc["left"], loc["top"], loc["left"] + loc["width"], loc["top"] + loc["height"]))
    return out
