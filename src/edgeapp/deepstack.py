"""DeepStack / CodeProject.AI compatible endpoints.

Home Assistant, Blue Iris, Frigate and Double Take all speak DeepStack's HTTP API, so a board that
speaks it drops into their set-ups unchanged. The same models and accelerator serve these routes;
only the request and answer shapes differ:

    POST /v1/vision/detection       multipart `image`, `min_confidence`, `api_key` -> predictions
    POST /v1/vision/face            the face model
    POST /v1/vision/custom/<name>   any bundle by name
    POST /v1/vision/custom/list     the bundle names
    GET  /v1/status/updateavailable

Answers: {"success": true, "predictions": [{"label", "confidence", "x_min", "y_min", "x_max",
"y_max"}], "duration": ms} or {"success": false, "error": "..."} with a 4xx/5xx status.
"""
import functools
import json
import logging
import time

import bottle
from bottle import request, response

from edgeapp import __version__
from edgeapp.errors import BadRequest, EdgeError, UnknownModel

log = logging.getLogger("edgeapp.deepstack")

DEFAULT_MIN_CONFIDENCE = 0.4
# min_confidence=0 would return every candidate box: clamp it, so a client cannot flood itself.
MIN_CONFIDENCE_FLOOR = 0.05
FACE_MODEL = "face"


def add_routes(app, engine, settings, read_form, check_token, run):
    """Register the routes on app. read_form() -> (fields, files) of the request body;
    check_token(given) raises Unauthorized; run(mid, image_bytes) -> (results, width, height)."""

    def answer(fn):
        @functools.wraps(fn)
        def handler(**kw):
            t0 = time.monotonic()
            try:
                out = fn(**kw)
                out = dict({"success": True}, **out)
                status = 200
            except EdgeError as e:
                log.info("%s %s -> %d: %s", request.method, request.path, e.status, e.msg)
                out, status = {"success": False, "error": e.msg, "code": e.code}, e.status
            except bottle.HTTPResponse:
                raise
            except Exception:
                log.exception("%s %s failed", request.method, request.path)
                out, status = {"success": False, "error": "internal error; see the server log"}, 500
            if "predictions" in out:
                out["duration"] = int(round((time.monotonic() - t0) * 1000))
            response.status = status
            response.content_type = "application/json; charset=utf-8"
            return json.dumps(out).encode("utf-8")  # bytes: Content-Length, never chunked

        return handler

    def by_name(name):
        for mid, b in engine.bundles.items():
            if b.name == name:
                return mid
        raise UnknownModel("no model named %r; see POST /v1/vision/custom/list" % name)

    def detect(mid):
        fields, files = read_form()
        check_token(_field(fields, "api_key"))
        data = files.get("image") or (next(iter(files.values())) if len(files) == 1 else None)
        if not data:
            raise BadRequest("send the picture as a multipart file part named 'image'")
        floor = _min_confidence(_field(fields, "min_confidence"))
        results, _, _ = run(mid, data)
        return {"predictions": [_prediction(r) for r in results if r["score"] >= floor]}

    @app.post("/v1/vision/detection")
    @answer
    def vision_detection():
        return detect(by_name(getattr(settings, "deepstack_detection", None) or FACE_MODEL))

    @app.post("/v1/vision/face")
    @answer
    def vision_face():
        return detect(by_name(FACE_MODEL))

    @app.post("/v1/vision/custom/list")
    @answer
    def vision_custom_list():
        fields, _ = read_form()
        check_token(_field(fields, "api_key"))
        return {"models": sorted(engine.bundles[mid].name for mid in engine.models)}

    @app.post("/v1/vision/custom/<name>")
    @answer
    def vision_custom(name):
        return detect(by_name(name))

    @app.get("/v1/status/updateavailable")
    @answer
    def update_available():
        return {"message": "edgeapp %s" % __version__, "version": __version__, "current": __version__,
                "latest": __version__, "updateAvailable": False}


def _field(fields, name):
    values = fields.get(name) or [None]
    return values[0]


def _min_confidence(text):
    if text is None or str(text).strip() == "":
        return DEFAULT_MIN_CONFIDENCE
    try:
        value = float(text)
    except ValueError:
        raise BadRequest("min_confidence must be a number from 0 to 1, got %r" % str(text)[:40])
    if not 0.0 <= value <= 1.0:
        raise BadRequest("min_confidence must be from 0 to 1, got %s" % value)
    return max(MIN_CONFIDENCE_FLOOR, value)


def _prediction(r):
    loc = r["location"]
    return {"label": r["label"], "confidence": round(float(r["score"]), 4),
            "x_min": int(round(loc["left"])), "y_min": int(round(loc["top"])),
            "x_max": int(round(loc["left"] + loc["width"])), "y_max": int(round(loc["top"] + loc["height"]))}
