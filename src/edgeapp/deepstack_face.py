"""DeepStack's face recognition routes, over the face-recognition model and the face gallery.

    POST /v1/vision/face/register   userid + one or more pictures (image, image1, image2, ...)
                                    -> message "face added" (a new person) or "face updated"
    POST /v1/vision/face/recognize  image, min_confidence -> predictions: [{userid or "unknown",
                                    confidence, x_min, y_min, x_max, y_max}]
    POST /v1/vision/face/list       -> faces: [userid]
    POST /v1/vision/face/delete     userid -> message
    POST /v1/vision/face/match      image1, image2 -> similarity

Forms are multipart (list and delete also URL-encoded), with api_key as on every DeepStack
route. confidence and similarity are on DeepStack's scale, (1 + cosine) / 2 from 0 to 1. A face is
named only from EDGEAPP_FACE_THRESHOLD up: a client's min_confidence may raise that bar, never
lower it (deepstack-python sends 0.45 whatever the model, which would name a stranger after the
nearest person). A registered picture gives its largest face; a picture without a face is
refused (NoFace), so a registration is all of its pictures or none.

The model is the bundle named FACE_MODEL (type face_rec): model.faces(image, accel) ->
[face with .box (x1, y1, x2, y2), .score, .vector (unit float32)], and .model_key, .dim, which
key the gallery (facedb: vectors of another model are never compared).
"""
import collections
import re

import numpy as np
from bottle import request

from edgeapp import admission, deepstack, facedb
from edgeapp.envelope import request_timing
from edgeapp.errors import BadRequest, FaceDbUnavailable, NoFace

FACE_MODEL = "face-recognition"
ROUTE = deepstack.ROUTE
DEFAULT_THRESHOLD = 0.67  # config's face_threshold, for an Api built with settings that lack it

# A face found in a picture, its box in the full picture's pixels.
Found = collections.namedtuple("Found", "box score vector")


class DeepStackFace:
    """The face routes over a deepstack.DeepStack (its Api, forms and api_key). The gallery is
    facedb.FaceStore over the settings' face_db (none: the face routes answer FaceDbUnavailable)."""

    def __init__(self, ds):
        self.ds, self.api = ds, ds.api
        settings = ds.api.settings
        path = getattr(settings, "face_db", None)
        self.store = facedb.FaceStore(path, settings.face_max_users, settings.face_max_per_user) if path else None
        self.threshold = getattr(settings, "face_threshold", DEFAULT_THRESHOLD)

    def routes(self):
        return [
            ("POST", "/v1/vision/face/register", self.face_register, ROUTE),
            ("POST", "/v1/vision/face/recognize", self.face_recognize, ROUTE),
            ("POST", "/v1/vision/face/list", self.face_list, ROUTE),
            ("POST", "/v1/vision/face/delete", self.face_delete, ROUTE),
            ("POST", "/v1/vision/face/match", self.face_match, ROUTE),
        ]

    def open_if_ready(self):
        """Open the gallery now if the face model is ready (start-up: its vectors are read, and
        a model change is logged, before the first request); errors are logged, not raised."""
        engine = self.api.engine
        mids = [mid for mid in engine.models if engine.bundles[mid].name == FACE_MODEL]
        if mids and self.store is not None:
            model = engine.models[mids[0]]
            try:
                self.store.gallery(model.model_key, model.dim)
            except Exception:  # FaceStore has logged why; the face routes will say it again
                pass

    def status(self):
        """The gallery's figures for /api/status (None before it is opened)."""
        return None if self.store is None else self.store.status()

    # ---- the handlers ----

    def face_register(self):
        fields, files = self.form()
        pictures = _pictures(files)
        if not pictures:
            raise BadRequest("send the person's pictures as multipart file parts (image, or image1, image2, ...)")
        mid, gallery = self.gallery()
        userid = gallery.check_room(deepstack.field(fields, "userid"), len(pictures))  # before any inference
        vectors = [self.main_face(mid, name, data).vector for name, data in pictures]
        total = gallery.register(userid, vectors)
        return {"message": "face added" if total == len(vectors) else "face updated", "faces": total}

    def face_recognize(self):
        fields, files = self.form()
        data = deepstack.picture(files)
        bar = max(self.threshold,
                  deepstack.min_confidence(deepstack.field(fields, "min_confidence"), 0.0))
        mid, gallery = self.gallery()
        faces = self.faces(mid, data)
        nearest = gallery.match_many([f.vector for f in faces]) if faces else []
        return {"predictions": [_recognised(f, userid, cosine, bar) for f, (userid, cosine) in zip(faces, nearest)]}

    def face_list(self):
        self.form()
        return {"faces": self.gallery()[1].users()}

    def face_delete(self):
        fields, _ = self.form()
        userid = deepstack.field(fields, "userid")
        if self.gallery()[1].delete(userid):
            return {"message": "face deleted"}
        return {"message": "no person %r was registered" % userid.strip()}

    def face_match(self):
        pictures = _pictures(self.form()[1])
        if len(pictures) != 2:
            raise BadRequest("send two pictures, image1 and image2 (got %d)" % len(pictures))
        mid = self.face_model()[0]
        a, b = (self.main_face(mid, name, data) for name, data in pictures)
        return {"similarity": round(confidence(float(np.dot(a.vector, b.vector))), 4)}

    # ---- the steps ----

    def form(self):
        """(fields, files) of the request's form, once its api_key passed."""
        fields, files = self.ds.read_form()
        self.ds.check_api_key(deepstack.field(fields, "api_key"))
        return fields, files

    def face_model(self):
        """(mid, model) of the face recognition model: UnknownModel if it is not installed or
        not ready."""
        mid = self.ds.by_name(FACE_MODEL)
        return mid, self.api.engine.model(mid)

    def gallery(self):
        """(mid, the gallery of the model in use)."""
        mid, model = self.face_model()
        if self.store is None:
            raise FaceDbUnavailable("no face database is configured (EDGEAPP_FACE_DB)")
        return mid, self.store.gallery(model.model_key, model.dim)

    def faces(self, mid, data):
        """[Found] in the picture data (boxes in its full-size pixels)."""
        def work(decoded, until):
            image, size = decoded
            found = self.api.engine.faces(mid, image, deadline=until, timing=request_timing(),
                                          reservation=admission.reservation(request.environ))
            return [_full_size(f, image.shape, size) for f in found]
        return self.ds.on_picture(mid, data, work)

    def main_face(self, mid, name, data):
        """The largest face in the picture named name; NoFace if it has none."""
        found = self.faces(mid, data)
        if not found:
            raise NoFace("no face found in %s: send a picture in which the face is clearly visible" % name)
        return max(found, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def confidence(cosine):
    """DeepStack's confidence and similarity, (1 + cosine) / 2: 0 to 1."""
    return min(1.0, max(0.0, (1.0 + cosine) / 2.0))


def _recognised(face, userid, cosine, bar):
    """One prediction: the person (DeepStack: "unknown" and confidence 0 under the bar) and the box."""
    c = confidence(cosine)
    named = userid is not None and c >= bar
    out = {"userid": userid if named else "unknown", "confidence": round(c, 4) if named else 0}
    out.update(deepstack.box(*face.box))
    return out


def _full_size(face, shape, size):
    """face with its box scaled from the decoded image (shape) to the full picture (size = w, h)
    and kept inside it."""
    sx, sy = size[0] / float(shape[1]), size[1] / float(shape[0])
    x1, y1, x2, y2 = (float(v) for v in face.box)
    box = (_clip(x1 * sx, size[0]), _clip(y1 * sy, size[1]), _clip(x2 * sx, size[0]), _clip(y2 * sy, size[1]))
    return Found(box, float(face.score), np.asarray(face.vector, np.float32))


def _clip(v, high):
    return min(max(v, 0.0), float(high))


def _pictures(files):
    """[(name, bytes)] of the form's file parts in a person's order: image, image1, image2, ..., image10."""
    def order(name):
        stem, digits = re.match(r"^(.*?)([0-9]{0,9})$", name, re.S).groups()
        return stem, int(digits) if digits else -1, name
    return [(name, files[name]) for name in sorted(files, key=order)]
