"""DeepStack's face recognition routes, over the face-recognition model and the face gallery.

    POST /v1/vision/face/register   userid + one or more pictures (image, image1, image2, ...)
                                    -> message "face added" (a new person) or "face updated"
    POST /v1/vision/face/recognize  image, min_confidence -> predictions: [{userid or "unknown",
                                    confidence, x_min, y_min, x_max, y_max}]
    POST /v1/vision/face/list       -> faces: [userid]
    POST /v1/vision/face/delete     userid -> message
    POST /v1/vision/face/match      image1, image2 -> similarity

Forms are multipart (list and delete also URL-encoded), with api_key as on every DeepStack
route. confidence and similarity are the cosine similarity of the face vectors, 0 to 1 (the scale
of the EdgeBoard API's score and of the threshold; DeepStack's own model printed (1 + cosine) / 2,
which puts two strangers near 0.5). A face is named only from the threshold up (the face model's
measured one, or EDGEAPP_FACE_THRESHOLD): a client's min_confidence may raise that bar, never
lower it (deepstack-python sends 0.45 whatever the model, which could name a stranger after the
nearest person). A registered picture gives its largest face; a picture without a face is
refused (NoFace), so a registration is all of its pictures or none. list and delete need only
the gallery: they work while the face model is not ready (failed, dropped by the memory budget).

The model is the bundle named FACE_MODEL (type face_rec, edgeapp.models.face_rec): faces() (run
through Engine.faces), identify(), bar(), and model_key and dim, which say which of the gallery's
vectors it may be compared with.
"""
import re

from bottle import request

from edgeapp import admission, deepstack
from edgeapp.envelope import request_timing
from edgeapp.errors import BadRequest, FaceDbUnavailable, NoFace
from edgeapp.facedb import UNKNOWN

FACE_MODEL = "face-recognition"
ROUTE = deepstack.ROUTE


class DeepStackFace:
    """The face routes over a deepstack.DeepStack (its Api, forms and api_key). The gallery is the
    engine's (engine.gallery: the one the face_rec model names faces from; none: the face routes
    answer FaceDbUnavailable)."""

    def __init__(self, ds):
        self.ds, self.api = ds, ds.api
        self.gallery = ds.api.engine.gallery

    def routes(self):
        return [
            ("POST", "/v1/vision/face/register", self.face_register, ROUTE),
            ("POST", "/v1/vision/face/recognize", self.face_recognize, ROUTE),
            ("POST", "/v1/vision/face/list", self.face_list, ROUTE),
            ("POST", "/v1/vision/face/delete", self.face_delete, ROUTE),
            ("POST", "/v1/vision/face/match", self.face_match, ROUTE),
        ]

    def status(self):
        """The gallery's figures for /api/status (None without a gallery)."""
        return None if self.gallery is None else self.gallery.status()

    # ---- the handlers ----

    def face_register(self):
        fields, files = self.form()
        pictures = _pictures(files)
        if not pictures:
            raise BadRequest("send the person's pictures as multipart file parts (image, or image1, image2, ...)")
        mid, model = self.face_model()
        gallery = self.open_gallery()
        # The limits before any inference: a refused registration costs nothing.
        userid = gallery.check_room(deepstack.field(fields, "userid"), len(pictures), model.model_key, model.dim)
        vectors = [self.main_face(mid, name, data).vector for name, data in pictures]
        total = gallery.register(userid, vectors, model.model_key)
        return {"message": "face added" if total == len(vectors) else "face updated", "faces": total}

    def face_recognize(self):
        fields, files = self.form()
        data = deepstack.picture(files)
        asked = deepstack.min_confidence(deepstack.field(fields, "min_confidence"), 0.0)
        mid, model = self.face_model()
        self.open_gallery()
        faces = self.faces(mid, data)
        named = model.identify([f.vector for f in faces], max(model.bar(), asked))
        return {"predictions": [_recognised(f, userid, cosine) for f, (userid, cosine) in zip(faces, named)]}

    def face_list(self):
        """The people the face model in use (the one built last) recognises."""
        self.form()
        gallery = self.open_gallery()
        return {"faces": gallery.users(gallery.model_key, gallery.dim) if gallery.model_key else []}

    def face_delete(self):
        fields, _ = self.form()
        userid = deepstack.field(fields, "userid")
        if self.open_gallery().delete(userid):
            return {"message": "face deleted"}
        return {"message": "no person %r was registered" % userid.strip()}

    def face_match(self):
        pictures = _pictures(self.form()[1])
        if len(pictures) != 2:
            raise BadRequest("send two pictures, image1 and image2 (got %d)" % len(pictures))
        mid, model = self.face_model()
        a, b = (self.main_face(mid, name, data).vector for name, data in pictures)  # unit vectors
        return {"similarity": round(confidence(float(a @ b)), 4)}

    # ---- the steps ----

    def form(self):
        """(fields, files) of the request's form, once its api_key passed."""
        fields, files = self.ds.read_form()
        self.ds.check_api_key(deepstack.field(fields, "api_key"))
        return fields, files

    def face_model(self):
        """(mid, model) of the face recognition model, UnknownModel if it is not installed or not
        ready."""
        mid = self.ds.by_name(FACE_MODEL)
        return mid, self.api.engine.model(mid)

    def open_gallery(self):
        """The face gallery, FaceDbUnavailable without one."""
        if self.gallery is None:
            raise FaceDbUnavailable("this service has no face database (EDGEAPP_FACE_DB)")
        return self.gallery

    def faces(self, mid, data):
        """[Face] in the picture data (boxes in its full-size pixels)."""
        def work(decoded, until):
            image, _ = decoded  # full size: a face_rec model is never decoded reduced (Engine.faces)
            return self.api.engine.faces(mid, image, deadline=until, timing=request_timing(),
                                         reservation=admission.reservation(request.environ))
        return self.ds.on_picture(mid, data, work)

    def main_face(self, mid, name, data):
        """The largest face in the picture named name (faces come biggest first); NoFace if it has none."""
        found = self.faces(mid, data)
        if not found:
            raise NoFace("no face found in %s: send a picture in which the face is clearly visible" % name)
        return found[0]


def confidence(cosine):
    """DeepStack's confidence and similarity: the cosine similarity of the two vectors, from 0
    (unrelated faces, or less) to 1 (the same picture); the scale the threshold is on."""
    return min(1.0, max(0.0, cosine))


def _recognised(face, userid, cosine):
    """One prediction: the person (DeepStack: "unknown" with confidence 0) and the box."""
    named = userid != UNKNOWN
    out = {"userid": userid, "confidence": round(confidence(cosine), 4) if named else 0}
    out.update(deepstack.box(*face.box))
    return out


def _pictures(files):
    """[(name, bytes)] of the form's file parts in a person's order: image, image1, image2, ..., image10."""
    def order(name):
        stem, digits = re.match(r"^(.*?)([0-9]{0,9})$", name, re.S).groups()
        return stem, int(digits) if digits else -1, name
    return [(name, files[name]) for name in sorted(files, key=order)]
