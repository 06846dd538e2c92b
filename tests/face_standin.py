"""A stand-in for the face-recognition model (type face_rec) whose "faces" and vectors a test
draws at will, for the tests of the face routes' logic (limits, thresholds, errors, several faces:
tests/test_deepstack_face.py; the real model's are tests/test_deepstack.py's); and a server that
serves the real Api (every route, the real face database) over it: `python tests/face_standin.py --host H --port P`,
settings from the EDGEAPP_* environment like `edgeapp serve` (tools/launch.py starts it).

What it "recognises": every coloured blob on a black picture is a face; the person is the blob's
colour (its vector a random unit vector seeded by the colour) and each size of blob is another
"photo" of them (a little seeded noise: cosine about 0.92 between two sizes). Two colours are two
people (cosine about 0). A black picture has no face.
"""
import argparse
import logging
import sys

import cv2
import numpy as np

from edgeapp import config, facedb
from edgeapp.accelerator import Accelerator
from edgeapp.api import make_app
from edgeapp.engine import Engine
from edgeapp.models.face_rec import Face, FaceRecognizer
from edgeapp.server import make_http_server

MID = 9
NAME = "face-recognition"
DIM = 1024
PHOTO_NOISE = 0.3  # size of the per-photo noise next to the person's unit vector


class StandInFaceRec(FaceRecognizer):
    """edgeapp.models.face_rec's type with faces() of its own: bar() and identify() are the real
    ones, against the real gallery."""

    threshold = 0.6  # cosine: two photos of one person are about 0.92, two people about 0

    def __init__(self, model_key="standin@1", dim=DIM, gallery=None):  # no bundle: nothing to run
        self.model_key, self.dim, self.gallery = model_key, dim, gallery
        if gallery is not None:
            gallery.use_model(model_key, dim)

    def reduction(self, w, h):
        return 1  # Engine.decode asks: decode at full size

    def faces(self, image, accel):
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        n, labels, stats, _ = cv2.connectedComponentsWithStats((gray > 0).astype(np.uint8))
        out = []
        for i in range(1, n):
            x, y, w, h, _ = stats[i]
            colour = tuple(int(c) for c in image[labels == i].mean(axis=0).round())
            out.append(Face((float(x), float(y), float(x + w), float(y + h)), 0.9,
                            person_vector(colour, self.dim, photo=(int(w), int(h)))))
        return sorted(out, key=lambda f: -(f.box[2] - f.box[0]))  # biggest first, as FaceRecognizer


def person_vector(colour, dim=DIM, photo=None):
    """The unit vector of the person `colour` (b, g, r), in one photo of them (None: no noise)."""
    seed = colour[0] * 65536 + colour[1] * 256 + colour[2]
    v = np.random.default_rng(seed).standard_normal(dim)
    v /= np.linalg.norm(v)
    if photo is not None:
        noise = np.random.default_rng([seed, photo[0], photo[1]]).standard_normal(dim)
        v = v + PHOTO_NOISE * noise / np.linalg.norm(noise)
    return (v / np.linalg.norm(v)).astype(np.float32)


def picture(colours, size=64, width=320, height=240):
    """A black picture with one square blob of each colour (b, g, r), left to right, as PNG bytes;
    size: the squares' side, or a list of one side per colour."""
    sizes = size if isinstance(size, (list, tuple)) else [size] * len(colours)
    img = np.zeros((height, width, 3), np.uint8)
    x = 10
    for colour, side in zip(colours, sizes):
        img[40:40 + side, x:x + side] = colour
        x += side + 10
    return cv2.imencode(".png", img)[1].tobytes()


class StandInAccel(Accelerator):
    """No accelerator work: the stand-in computes everything in the request thread."""

    def model_status(self):
        return {MID: {"ready": True, "reason": None, "memory_mb": None, "warmup_ms": None}}


class StandInBundle:
    name = NAME
    input_shape = [1, 3, 224, 224]
    folder = None  # no files: GET /api/models gives it no sha256


def engine(settings, model_key="standin@1"):
    """A real Engine serving the stand-in as model MID, named like the real bundle, with the face
    gallery of the settings, as the service makes it."""
    gallery = facedb.FaceGallery(settings.face_db, settings.face_max_users, settings.face_max_per_user,
                                 settings.face_threshold)
    e = Engine({}, StandInAccel(), gallery=gallery)
    e.bundles, e.models = {MID: StandInBundle()}, {MID: StandInFaceRec(model_key, gallery=gallery)}
    return e


def gallery_after_a_model_change(path, max_users=100):
    """A face gallery at path as a model change leaves it: alice (2 faces) and bob (1) registered
    with "standin==1", then "standin==2" in use and alice registered again with it (1 face):
    bob is to be registered again, and 3 faces of the older model are kept, never matched."""
    gallery = facedb.FaceGallery(path, max_users, 10)
    gallery.use_model("standin==1", DIM)
    gallery.register("alice", [person_vector((0, 0, 200), photo=(50, 50)), person_vector((0, 0, 200), photo=(60, 60))],
                     "standin==1")
    gallery.register("bob", person_vector((200, 0, 0)), "standin==1")
    gallery.use_model("standin==2", DIM)
    gallery.register("alice", person_vector((0, 0, 201)), "standin==2")
    return gallery


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model-key", default="standin@1")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    settings = config.load(flags={"host": args.host, "port": str(args.port)})
    e = engine(settings, args.model_key)
    server = make_http_server(settings, make_app(e, e.accel, settings))
    server.prepare()
    server.serve()


if __name__ == "__main__":
    main()
