"""The OpenAPI 3 description of every endpoint, served at GET /api/openapi.json.

Written by hand next to the routes it describes (api.py, deepstack.py, deepstack_face.py);
tests/test_openapi.py validates it and fuzzes the running service against it with schemathesis.
"""
from edgeapp import __version__


def _envelope(data_schema):
    return {"type": "object", "required": ["code", "data", "msg"],
            "properties": {"code": {"type": "integer"}, "data": data_schema, "msg": {"type": "string"}}}


ERROR = _envelope({"nullable": True})
LOCATION = {"type": "object", "required": ["height", "left", "top", "width"],
            "properties": {k: {"type": "number"} for k in ("height", "left", "top", "width")}}
RESULT = {"type": "object", "required": ["extended", "index", "label", "location", "score"],
          "properties": {"extended": {"type": "object"}, "index": {"type": "integer"}, "label": {"type": "string"},
                         "location": LOCATION, "score": {"type": "number"}}}
RESULTS = {"type": "object", "required": ["result"],
           "properties": {"result": {"type": "array", "items": RESULT},
                          "image": {"type": "string", "description": "rendered result, base64 JPEG (show on)"}}}
DS_ANSWER = {"type": "object", "required": ["success"],
             "properties": {"success": {"type": "boolean"}, "error": {"type": "string"},
                            "predictions": {"type": "array", "items": {"type": "object"}},
                            "models": {"type": "array", "items": {"type": "string"}},
                            "faces": {"type": "array", "items": {"type": "string"}},
                            "similarity": {"type": "number"}, "message": {"type": "string"},
                            "duration": {"type": "integer"}}}

_MID = {"name": "mid", "in": "query", "required": True, "schema": {"type": "integer"},
        "description": "model id (GET /api/models)"}
_SHOW = {"name": "show", "in": "query", "schema": {"type": "string"},
         "description": "1 or true: also return the rendered result image"}
_DEADLINE = {"name": "X-Edgeapp-Deadline-Ms", "in": "header", "schema": {"type": "number"},
             "description": "drop the work if it has not reached the accelerator within this many ms"}


def _responses(ok_schema, *error_statuses, json_ok=True):
    out = {"200": {"description": "success",
                   "content": {"application/json": {"schema": ok_schema}} if json_ok else
                   {"text/plain": {"schema": {"type": "string"}}}}}
    for status in error_statuses:
        out[str(status)] = {"description": "error (see the README's error table)",
                            "content": {"application/json": {"schema": ERROR}}}
    return out


_INFER_ERRORS = (400, 401, 404, 408, 413, 503, 504)
_DS_ERRORS = {str(s): {"description": "error", "content": {"application/json": {"schema": DS_ANSWER}}}
              for s in (400, 401, 404, 409, 413, 500, 503, 504)}
_BINARY = {"type": "string", "format": "binary"}
_PUSH_ERRORS = (400, 401, 403, 404, 408, 409, 413, 422, 503, 507)


def _face_routes():
    """DeepStack's face recognition routes (deepstack_face.py)."""
    def post(summary, fields, urlencoded=False):
        content = {"multipart/form-data": {"schema": {"type": "object", "properties": dict(
            fields, api_key={"type": "string"})}}}
        if urlencoded:
            content["application/x-www-form-urlencoded"] = content["multipart/form-data"]
        return {"post": {"summary": summary, "requestBody": {"content": content}, "responses": dict(
            {"200": {"description": "done", "content": {"application/json": {"schema": DS_ANSWER}}}}, **_DS_ERRORS)}}

    userid = {"type": "string", "description": "the person's name"}
    return {
        "/v1/vision/face/register": post("DeepStack: register a person's face (one or more pictures)",
                                         {"userid": userid, "image": _BINARY, "image1": _BINARY, "image2": _BINARY}),
        "/v1/vision/face/recognize": post("DeepStack: who is in the picture (userid or unknown per face)",
                                          {"image": _BINARY, "min_confidence": {"type": "number", "minimum": 0,
                                                                                "maximum": 1}}),
        "/v1/vision/face/list": post("DeepStack: the registered people", {}, urlencoded=True),
        "/v1/vision/face/delete": post("DeepStack: delete a person and their faces", {"userid": userid},
                                       urlencoded=True),
        "/v1/vision/face/match": post("DeepStack: similarity of the faces in two pictures",
                                      {"image1": _BINARY, "image2": _BINARY}),
    }


def document():
    multipart_file = {"multipart/form-data": {"schema": {
        "type": "object", "properties": {"file": {"type": "string", "format": "binary"},
                                         "mids": {"type": "string", "example": "[1,2]"}}}}}
    ds_form = {"multipart/form-data": {"schema": {
        "type": "object", "properties": {"image": {"type": "string", "format": "binary"},
                                         "min_confidence": {"type": "number", "minimum": 0, "maximum": 1},
                                         "api_key": {"type": "string"}}}}}
    ds_post = {"requestBody": {"content": ds_form},
               "responses": dict({"200": {"description": "predictions",
                                          "content": {"application/json": {"schema": DS_ANSWER}}}}, **_DS_ERRORS)}
    paths = {
        "/api/model/service/base64": {"post": {
            "summary": "Infer on a base64 image (EdgeBoard)",
            "parameters": [_MID, _SHOW, _DEADLINE],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {"image": {"type": "string"}, "show": {}}}}}},
            "responses": _responses(_envelope(RESULTS), *_INFER_ERRORS)}},
        "/api/model/service/binary": {"post": {
            "summary": "Infer on the raw image body (EdgeBoard)",
            "parameters": [_MID, _SHOW, _DEADLINE],
            "requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": _responses(_envelope(RESULTS), *_INFER_ERRORS)}},
        "/api/model/service/multipart": {"post": {
            "summary": "One image, several models (EdgeBoard)",
            "parameters": [_SHOW, _DEADLINE],
            "requestBody": {"required": True, "content": multipart_file},
            "responses": _responses(_envelope({"type": "array", "items": {
                "type": "object", "required": ["model_id", "result"],
                "properties": dict(RESULTS["properties"], model_id={"type": "integer"})}}), *_INFER_ERRORS)}},
        "/api/models": {"get": {"summary": "Installed models, each with its bundle's sha256", "responses": _responses(
            _envelope({"type": "array", "items": {"type": "object"}}), 401)},
            "post": {"summary": "Install a bundle archive (.tar.gz of a bundle folder), checked first, then reload "
                                "(needs the board's token)",
                     "requestBody": {"required": True, "content": {"application/gzip": {"schema": _BINARY},
                                                                   "application/octet-stream": {"schema": _BINARY}}},
                     "responses": _responses(_envelope({"type": "object"}), *_PUSH_ERRORS)}},
        "/api/models/{mid}": {"delete": {
            "summary": "Remove one bundle from the model folder, then reload (needs the board's token)",
            "parameters": [{"name": "mid", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": _responses(_envelope({"type": "object"}), *_PUSH_ERRORS)}},
        "/api/models/reload": {"post": {"summary": "Re-read the model folder while serving",
                                        "responses": _responses(_envelope({"type": "object"}), 401, 404, 503)}},
        "/api/health": {"get": {"summary": "Liveness and readiness",
                                "responses": _responses(_envelope({"type": "object"}), 503)}},
        "/api/status": {"get": {"summary": "Queue, worker, memory, per-model figures and the face database (faces)",
                                "responses": _responses(_envelope({"type": "object"}), 401)}},
        "/api/status/history": {"get": {
            "summary": "The last 10 minutes of figures, a sample every 2 s (the page's plots)",
            "parameters": [{"name": "since", "in": "query", "required": False, "schema": {"type": "number"},
                            "description": "only the samples taken after this time (a sample's t)"}],
            "responses": _responses(_envelope({"type": "object"}), 400, 401)}},
        "/api/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3",
                                                            "content": {"application/json": {"schema": {}}}}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (text format 0.0.4)",
                             "responses": _responses(None, 401, json_ok=False)}},
        "/v1/vision/detection": {"post": dict(ds_post, summary="DeepStack object detection")},
        "/v1/vision/face": {"post": dict(ds_post, summary="DeepStack face detection")},
        "/v1/vision/custom/list": {"post": {"summary": "DeepStack: the model names", "responses": {
            "200": {"description": "models", "content": {"application/json": {"schema": DS_ANSWER}}},
            "401": _DS_ERRORS["401"]}}},
        "/v1/vision/custom/{name}": {"post": dict(ds_post, summary="DeepStack custom model (any bundle by name)",
                                                  parameters=[{"name": "name", "in": "path", "required": True,
                                                               "schema": {"type": "string"}}])},
        "/v1/status/updateavailable": {"get": {"summary": "DeepStack update check", "responses": {
            "200": {"description": "never an update from here",
                    "content": {"application/json": {"schema": DS_ANSWER}}}}}},
    }
    paths.update(_face_routes())
    return {"openapi": "3.0.3",
            "info": {"title": "edgeapp", "version": __version__,
                     "description": "HTTP model inference on EdgeBoard boards: the EdgeBoard document's API, "
                                    "status and metrics, and a DeepStack-compatible profile."},
            "paths": paths,
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}
